//! The Prometheus text a scrape serves, exactly, and reading it back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use zilla_metrics::catalog::{
    HTTP_DURATION, HTTP_REQUEST_PATH, STREAM_ACTIVE_RECEIVED, STREAM_OPENS_RECEIVED,
};
use zilla_metrics::exposition::{self, ParsedSample};
use zilla_metrics::{Attribute, AttributeValue, Registry, Selection};

fn registry() -> Registry {
    let registry = Registry::new("example", &[]).unwrap();
    let selection = Selection {
        metrics: vec![
            &STREAM_OPENS_RECEIVED,
            &STREAM_ACTIVE_RECEIVED,
            &HTTP_DURATION,
        ],
        attributes: vec![Attribute {
            name: "path".into(),
            value: AttributeValue::Source(&HTTP_REQUEST_PATH),
        }],
    };
    let metrics = registry.binding("north", selection).unwrap();
    metrics.counter(0, &STREAM_OPENS_RECEIVED).add(3);
    metrics.counter(1, &STREAM_OPENS_RECEIVED).add(2);
    metrics.gauge(1, &STREAM_ACTIVE_RECEIVED).add(-1);
    let durations = metrics.histograms(0, &HTTP_DURATION);
    // 3 µs and 1.5 s, on a path with a quote and a backslash.
    let odd = durations.get(&["GET", "/a\"b\\c"]);
    odd.record(3);
    odd.record(1_500_000);
    registry
}

#[test]
fn text_format() {
    let text = exposition::write(&registry().snapshot());
    let mut expected = String::from(
        "# HELP http_duration_seconds Duration of HTTP requests\n\
         # TYPE http_duration_seconds histogram\n",
    );
    let labels = r#"namespace="example",binding="north",path="/a\"b\\c""#;
    // 2^i µs in seconds, written out.
    let bounds = [
        "0.000001",
        "0.000002",
        "0.000004",
        "0.000008",
        "0.000016",
        "0.000032",
        "0.000064",
        "0.000128",
        "0.000256",
        "0.000512",
        "0.001024",
        "0.002048",
        "0.004096",
        "0.008192",
        "0.016384",
        "0.032768",
        "0.065536",
        "0.131072",
        "0.262144",
        "0.524288",
        "1.048576",
        "2.097152",
        "4.194304",
        "8.388608",
        "16.777216",
        "33.554432",
        "67.108864",
        "134.217728",
        "268.435456",
        "536.870912",
        "1073.741824",
        "2147.483648",
        "4294.967296",
    ];
    for le in bounds {
        let bound: f64 = le.parse().unwrap();
        let cumulative = [0.000003, 1.5].iter().filter(|v| **v <= bound).count();
        expected.push_str(&format!(
            "http_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}\n"
        ));
    }
    expected.push_str(&format!(
        "http_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 2\n\
         http_duration_seconds_sum{{{labels}}} 1.500003\n\
         http_duration_seconds_count{{{labels}}} 2\n\
         # HELP stream_active_received Number of active streams received\n\
         # TYPE stream_active_received gauge\n\
         stream_active_received{{namespace=\"example\",binding=\"north\"}} -1\n\
         # HELP stream_opens_received_total Number of opened streams received\n\
         # TYPE stream_opens_received_total counter\n\
         stream_opens_received_total{{namespace=\"example\",binding=\"north\"}} 5\n"
    ));
    assert_eq!(text, expected);
}

#[test]
fn scrapes_read_back() {
    let text = exposition::write(&registry().snapshot());
    let samples = exposition::parse(&text).unwrap();
    assert_eq!(samples.len(), 34 + 2 + 2);
    let sum = samples
        .iter()
        .find(|s| s.name == "http_duration_seconds_sum")
        .unwrap();
    assert_eq!(sum.label("path"), Some("/a\"b\\c"));
    assert_eq!(sum.value, 1.500003);
    assert_eq!(
        samples.last(),
        Some(&ParsedSample {
            name: "stream_opens_received_total".into(),
            labels: vec![
                ("namespace".into(), "example".into()),
                ("binding".into(), "north".into())
            ],
            value: 5.0,
        })
    );
    let inf = exposition::parse("x_bucket{le=\"+Inf\"} 2\ny 1 1700000000\n").unwrap();
    assert_eq!((inf[0].label("le"), inf[1].value), (Some("+Inf"), 1.0));
    let err = exposition::parse("# ok\nx{a=\"1} 2\n").unwrap_err();
    assert_eq!(err.line, 2);
    assert!(exposition::parse("x{a=\"1\"} two\n").is_err());
    assert!(exposition::parse("x{a} 1\n").is_err());
}

mod properties {
    use proptest::prelude::*;
    use zilla_metrics::catalog::STREAM_OPENS_RECEIVED;
    use zilla_metrics::exposition;
    use zilla_metrics::{Attribute, AttributeValue, Registry, Selection};

    proptest! {
        /// Whatever a scrape answers, reading it ends in samples or an error.
        #[test]
        fn any_text_reads_or_fails(text in "(?s).{0,200}") {
            let _ = exposition::parse(&text);
        }

        /// Any label value is escaped so that it reads back as it was.
        #[test]
        fn label_values_read_back(value in prop_oneof![any::<String>(), "[a\\\\\"\n\r{}=, ]{0,16}"]) {
            let registry = Registry::new("ns", &[]).unwrap();
            let selection = Selection {
                metrics: vec![&STREAM_OPENS_RECEIVED],
                attributes: vec![Attribute {
                    name: "value".into(),
                    value: AttributeValue::Literal(value.clone()),
                }],
            };
            let metrics = registry.binding("b", selection).unwrap();
            metrics.counter(0, &STREAM_OPENS_RECEIVED).add(2);
            let text = exposition::write(&registry.snapshot());
            let samples = exposition::parse(&text).unwrap();
            prop_assert_eq!(samples.len(), 1);
            prop_assert_eq!(samples[0].label("value"), Some(value.as_str()));
            prop_assert_eq!(samples[0].value, 2.0);
        }
    }
}

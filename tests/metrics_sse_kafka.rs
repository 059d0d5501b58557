//! Metrics of the SSE–Kafka path, scraped over HTTP from the real binary while curl
//! subscribers read records produced to a real broker
//! (`tests/configs/sse.kafka.metrics.yaml`): every value checked against what the test did.
//! And `/health`: 503 while the Kafka cluster has not answered, 200 once it has.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e_tests::kafka::{self, Record};
use e2e_tests::sse::{curl, curl_status, events};
use e2e_tests::zilla::Zilla;
use zilla_metrics::exposition::{self, ParsedSample};

const CONFIG: &str = "tests/configs/sse.kafka.metrics.yaml";

/// Zilla on free ports with `bootstrap` as its broker; the port and the metrics port.
fn start(bootstrap: &str) -> (Zilla, u16, u16) {
    let (port, metrics_port) = (e2e_tests::free_port(), e2e_tests::free_port());
    let env = [
        ("PORT", port.to_string()),
        ("METRICS_PORT", metrics_port.to_string()),
        ("KAFKA_BOOTSTRAP", bootstrap.to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Two workers: what a scrape shows is summed over both.
    let zilla = Zilla::start_with_args(Path::new(CONFIG), &["-w", "2"], &env);
    (zilla, port, metrics_port)
}

/// A scrape's samples.
fn scrape(metrics_port: u16) -> Vec<ParsedSample> {
    let (code, body) = curl_status(&format!("http://127.0.0.1:{metrics_port}/metrics"), &[]);
    assert_eq!(code, 200, "{body}");
    exposition::parse(&body).expect("the text format")
}

/// The value of `name` on `binding` with `labels`, if scraped.
fn value(
    samples: &[ParsedSample],
    name: &str,
    binding: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && s.label("binding") == Some(binding)
                && labels.iter().all(|(l, v)| s.label(l) == Some(v))
        })
        .map(|s| s.value)
}

/// One expected value: metric, binding, labels, value.
type Expected<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, f64);

/// Scrapes until every expected value is there (workers record as streams move), within 15 s.
fn scrape_until(metrics_port: u16, expected: &[Expected<'_>]) -> Vec<ParsedSample> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let samples = scrape(metrics_port);
        let missing: Vec<_> = expected
            .iter()
            .filter(|(name, binding, labels, want)| {
                value(&samples, name, binding, labels) != Some(*want)
            })
            .map(|(name, binding, labels, want)| {
                let got = value(&samples, name, binding, labels);
                format!("{name}{{binding={binding},{labels:?}}}: want {want}, got {got:?}")
            })
            .collect();
        if missing.is_empty() {
            return samples;
        }
        assert!(
            Instant::now() < deadline,
            "not scraped:\n{}",
            missing.join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A curl subscriber reading `url` for `seconds`.
fn subscriber(url: &str, seconds: u32) -> Child {
    Command::new("curl")
        .args(["-sN", "--max-time", &seconds.to_string(), url])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("curl must be installed")
}

fn health(metrics_port: u16) -> (u16, String) {
    curl_status(&format!("http://127.0.0.1:{metrics_port}/health"), &[])
}

#[test]
fn scraped_values_follow_subscribers_records_resumes_and_bad_ids() {
    const SUBSCRIBERS: usize = 3;
    const RECORDS: usize = 5;
    let topic = kafka::unique_topic("metrics");
    kafka::create_topic(&topic, 1, &[]);
    let (zilla, port, metrics_port) = start(kafka::bootstrap());
    let deadline = Instant::now() + Duration::from_secs(15);
    while health(metrics_port).0 != 200 {
        assert!(
            Instant::now() < deadline,
            "/health: {:?}",
            health(metrics_port)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(health(metrics_port), (200, "ready\n".to_owned()));
    let broker = kafka::bootstrap();
    scrape_until(
        metrics_port,
        &[(
            "kafka_broker_connected",
            "south_kafka_client",
            vec![("broker", broker)],
            1.0,
        )],
    );

    let url = format!("http://127.0.0.1:{port}/{topic}");
    let subscribers: Vec<Child> = (0..SUBSCRIBERS).map(|_| subscriber(&url, 8)).collect();
    let n = SUBSCRIBERS as f64;
    scrape_until(
        metrics_port,
        &[
            ("sse_subscribers_active", "north_sse_server", vec![], n),
            (
                "sse_subscribers_opened_total",
                "north_sse_server",
                vec![],
                n,
            ),
            (
                "http_active_requests",
                "north_http_server",
                vec![("method", "GET")],
                n,
            ),
            ("stream_active_received", "north_tcp_server", vec![], n),
        ],
    );
    let records: Vec<Record> = (0..RECORDS).map(|i| Record::new(format!("r{i}"))).collect();
    kafka::produce(&topic, records);
    let t = topic.as_str();
    let samples = scrape_until(
        metrics_port,
        &[
            (
                "sse_events_sent_total",
                "north_sse_server",
                vec![],
                (RECORDS * SUBSCRIBERS) as f64,
            ),
            (
                "kafka_cache_records",
                "south_kafka_cache_server",
                vec![("topic", t)],
                RECORDS as f64,
            ),
            (
                "kafka_consumer_lag",
                "south_kafka_cache_server",
                vec![("topic", t)],
                0.0,
            ),
            (
                "kafka_cache_evictions_total",
                "south_kafka_cache_server",
                vec![("topic", t)],
                0.0,
            ),
        ],
    );
    let cached = value(
        &samples,
        "kafka_cache_size_bytes",
        "south_kafka_cache_server",
        &[("topic", t)],
    );
    assert!(
        cached.is_some_and(|bytes| bytes >= (2 * RECORDS) as f64),
        "{cached:?}"
    );
    let fetches = value(
        &samples,
        "kafka_fetches_total",
        "south_kafka_client",
        &[("topic", t)],
    );
    assert!(fetches.is_some_and(|f| f >= 1.0), "{fetches:?}");
    let sent = value(
        &samples,
        "sse_data_sent_bytes_total",
        "north_sse_server",
        &[],
    );
    assert!(
        sent.is_some_and(|bytes| bytes >= (RECORDS * SUBSCRIBERS * "data:r0\n\n".len()) as f64),
        "{sent:?}"
    );

    // The subscribers leave (curl's time is up): ended by the client.
    let mut ids = Vec::new();
    for child in subscribers {
        let out = child.wait_with_output().expect("curl");
        let received = events(&String::from_utf8_lossy(&out.stdout));
        let data: Vec<&str> = received.iter().map(|e| e.data.as_str()).collect();
        assert_eq!(data, ["r0", "r1", "r2", "r3", "r4"]);
        ids.push(received[1].id.clone().expect("an id"));
    }
    scrape_until(
        metrics_port,
        &[
            ("sse_subscribers_active", "north_sse_server", vec![], 0.0),
            (
                "sse_subscribers_ended_total",
                "north_sse_server",
                vec![("reason", "client")],
                n,
            ),
            (
                "http_active_requests",
                "north_http_server",
                vec![("method", "GET")],
                0.0,
            ),
        ],
    );

    // A reconnect with the id of the second record resumes after it.
    let resumed = events(&curl(
        &url,
        &["-H", &format!("last-event-id: {}", ids[0])],
        3,
    ));
    let data: Vec<&str> = resumed.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(data, ["r2", "r3", "r4"]);
    // An id that is not one of ours: 400, counted where it was read.
    let (status, _) = curl_status(&url, &["-H", "last-event-id: AwQABAIC"]);
    assert_eq!(status, 400);
    scrape_until(
        metrics_port,
        &[
            ("sse_resumes_total", "north_sse_kafka_mapping", vec![], 1.0),
            ("sse_resumes_total", "north_sse_server", vec![], 1.0),
            (
                "sse_ids_rejected_total",
                "north_sse_kafka_mapping",
                vec![],
                1.0,
            ),
            ("sse_ids_rejected_total", "north_sse_server", vec![], 1.0),
            (
                "sse_subscribers_opened_total",
                "north_sse_server",
                vec![],
                n + 1.0,
            ),
            (
                "sse_events_sent_total",
                "north_sse_server",
                vec![],
                (RECORDS * SUBSCRIBERS + 3) as f64,
            ),
            (
                "stream_opens_sent_total",
                "north_http_server",
                vec![],
                n + 2.0,
            ),
            // Every request the application answered is in the histograms once it is over.
            (
                "http_active_requests",
                "north_http_server",
                vec![("method", "GET")],
                0.0,
            ),
            (
                "http_duration_seconds_count",
                "north_http_server",
                vec![("method", "GET")],
                n + 2.0,
            ),
        ],
    );
    let (status, _) = zilla.terminate();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn health_waits_for_the_kafka_metadata() {
    // A bootstrap address nothing listens on: the bindings start, the cluster never answers.
    let nowhere = format!("127.0.0.1:{}", e2e_tests::free_port());
    let (zilla, _, metrics_port) = start(&nowhere);
    for _ in 0..10 {
        let (code, body) = health(metrics_port);
        assert_eq!(
            (code, body.as_str()),
            (
                503,
                "waiting for: kafka metadata from 'south_kafka_client'\n"
            )
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let samples = scrape(metrics_port);
    assert_eq!(
        value(
            &samples,
            "kafka_broker_connected",
            "south_kafka_client",
            &[("broker", &nowhere)]
        ),
        Some(0.0),
        "the failed connection is a 0"
    );
    let (status, _) = zilla.terminate();
    assert_eq!(status.code(), Some(0));
}

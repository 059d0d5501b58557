//! The Grafana dashboard in `examples/grafana` queries only metrics this crate exposes, under
//! their exposition names (a renamed metric would leave a panel silently empty).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use zilla_metrics::catalog;

/// Every query of the dashboard.
fn queries() -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/grafana/zilla-rs-dashboard.json"
    );
    let text = std::fs::read_to_string(path).expect("the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            queries.push(target["expr"].as_str().expect("expr").to_owned());
        }
    }
    queries
}

/// The metric names a query mentions: words of ours, before a `{`.
fn metrics_in(query: &str) -> Vec<&str> {
    query
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| {
            ["sse_", "kafka_", "http_", "stream_"]
                .iter()
                .any(|prefix| word.starts_with(prefix))
        })
        .filter(|word| query.contains(&format!("{word}{{")))
        .collect()
}

#[test]
fn every_query_names_metrics_the_catalog_exposes() {
    let exposed: BTreeSet<String> = catalog::names()
        .filter_map(catalog::find)
        .map(|metric| metric.exposition_name())
        .collect();
    let queries = queries();
    assert!(queries.len() >= 10, "{} queries", queries.len());
    let mut seen = 0;
    for query in &queries {
        let metrics = metrics_in(query);
        assert!(!metrics.is_empty(), "no metric in {query}");
        for metric in metrics {
            // A histogram's series: its _count, _sum and _bucket.
            let base = ["_count", "_sum", "_bucket"]
                .iter()
                .find_map(|suffix| metric.strip_suffix(suffix))
                .unwrap_or(metric);
            assert!(
                exposed.contains(metric) || exposed.contains(base),
                "{metric} (in {query}) is not exposed; exposed: {exposed:?}"
            );
            seen += 1;
        }
    }
    assert!(seen >= queries.len());
}

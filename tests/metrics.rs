//! The prometheus exporter of the real binary: `examples/http.metrics` on free ports, two
//! workers, connections made with curl and held open with a socket; `/metrics` scraped with
//! curl shows what the test did, `/health` is 200, and `zilla metrics` prints the same values.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use e2e_tests::sse::curl_status;
use e2e_tests::zilla::{self, Zilla};

/// `examples/http.metrics/zilla.yaml` with its ports replaced, in a file of its own.
fn config(name: &str, port: u16, metrics_port: u16) -> PathBuf {
    let text =
        std::fs::read_to_string(e2e_tests::repo_root().join("examples/http.metrics/zilla.yaml"))
            .expect("example")
            .replace("7114", &port.to_string())
            .replace("7190", &metrics_port.to_string());
    let path =
        std::env::temp_dir().join(format!("zilla-{name}-{}-{port}.yaml", std::process::id()));
    std::fs::write(&path, text).expect("write config");
    path
}

/// The scrape once `line` is in it (the workers may still be counting a close).
fn scrape_until(metrics_url: &str, lines: &[String]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, body) = curl_status(metrics_url, &[]);
        if code == 200 && lines.iter().all(|l| body.contains(l.as_str())) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{lines:#?} not in ({code}):\n{body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn series(metric: &str, value: u64) -> String {
    format!("{metric}{{namespace=\"example\",binding=\"north_tcp_server\"}} {value}\n")
}

fn zilla_metrics(config: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(zilla::binary())
        .args(["metrics", "-c"])
        .arg(config)
        .args(args)
        .output()
        .expect("zilla metrics");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn scraped_values_are_what_the_test_did() {
    let (port, metrics_port) = (e2e_tests::free_port(), e2e_tests::free_port());
    let config = config("metrics", port, metrics_port);
    let zilla = Zilla::start_with_args(&config, &["-w", "2"], &[]);
    let metrics_url = format!("http://127.0.0.1:{metrics_port}/metrics");

    let (code, body) = curl_status(&format!("http://127.0.0.1:{metrics_port}/health"), &[]);
    assert_eq!((code, body.as_str()), (200, "ready\n"));
    // Before any connection, the series are there at zero.
    let body = scrape_until(&metrics_url, &[series("stream_opens_received_total", 0)]);
    for line in [
        "# HELP stream_opens_received_total Number of opened streams received\n",
        "# TYPE stream_opens_received_total counter\n",
        "# TYPE stream_active_received gauge\n",
        "# TYPE stream_closes_received_total counter\n",
    ] {
        assert!(body.contains(line), "{line:?} in\n{body}");
    }

    // Three requests, a connection each, closed; two connections held open.
    for _ in 0..3 {
        let (code, body) = curl_status(
            &format!("http://127.0.0.1:{port}/items"),
            &["-d", "Hello, world"],
        );
        assert_eq!((code, body.as_str()), (200, "Hello, world"));
    }
    let held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
        .collect();
    scrape_until(
        &metrics_url,
        &[
            series("stream_opens_received_total", 5),
            series("stream_closes_received_total", 3),
            series("stream_active_received", 2),
        ],
    );

    let (code, table, stderr) = zilla_metrics(&config, &["--binding", "north_tcp_server"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        table,
        "METRIC                  NAMESPACE  BINDING           VALUE\n\
         stream.active.received  example    north_tcp_server  2\n\
         stream.opens.received   example    north_tcp_server  5\n\
         stream.closes.received  example    north_tcp_server  3\n"
    );
    let (code, table, stderr) = zilla_metrics(&config, &["--namespace", "other"]);
    assert_eq!((code, table.as_str()), (Some(0), ""));
    assert!(stderr.contains("no series match"), "{stderr}");

    drop(held);
    scrape_until(
        &metrics_url,
        &[
            series("stream_closes_received_total", 5),
            series("stream_active_received", 0),
        ],
    );
    let (status, _) = zilla.terminate();
    assert_eq!(status.code(), Some(0));

    let (code, _, stderr) = zilla_metrics(&config, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: cannot reach {metrics_url}: ")),
        "{stderr}"
    );
    assert!(
        stderr.contains("is zilla running with this configuration?"),
        "{stderr}"
    );
    let _ = std::fs::remove_file(&config);
}

#[test]
fn zilla_metrics_needs_a_prometheus_exporter() {
    let output = zilla::run(&["metrics", "-c", "examples/tcp.echo/zilla.yaml"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(
            "error: examples/tcp.echo/zilla.yaml: no prometheus exporter in telemetry.exporters"
        ),
        "{stderr}"
    );
}

#[test]
fn an_exporter_port_in_use_stops_start_up() {
    let taken = std::net::TcpListener::bind("0.0.0.0:0").expect("a port");
    let metrics_port = taken.local_addr().expect("address").port();
    let config = config("metrics-taken", e2e_tests::free_port(), metrics_port);
    let output = zilla::run(&["start", "-c", config.to_str().expect("utf-8 path")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: prometheus exporter 'prometheus_metric_exporter': cannot listen on port {metrics_port}: "
        )),
        "{stderr}"
    );
    assert!(!stderr.contains(" started"), "{stderr}");
    let _ = std::fs::remove_file(&config);
}

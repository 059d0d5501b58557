//! Runs `zilla-loadgen` against an in-process `sse-baseline` and checks that every event is
//! delivered exactly once, over HTTP/1.1 and over h2c with several streams per connection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use sse_baseline::HubLimits;

/// Starts the baseline on a free port in a background runtime; returns its address.
fn start_baseline() -> String {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        runtime.block_on(sse_baseline::serve(
            listener,
            HubLimits {
                channel_capacity: 4096,
                key_capacity: 4096,
                history: 65_536,
            },
        ));
    });
    addr
}

fn json_number(json: &str, key: &str) -> Option<f64> {
    let at = json.find(&format!("\"{key}\": "))? + key.len() + 4;
    let rest = &json[at..];
    let end = rest.find([',', '\n']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

fn run_loadgen(scenario: &str, extra: &[&str]) -> String {
    run_loadgen_on(scenario, "/events/{key}", extra)
}

fn run_loadgen_on(scenario: &str, path: &str, extra: &[&str]) -> String {
    let addr = start_baseline();
    let dir = std::env::temp_dir().join(format!(
        "loadgen-test-{}-{scenario}-{}",
        std::process::id(),
        extra.len()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("out.json");
    let output = Command::new(env!("CARGO_BIN_EXE_zilla-loadgen"))
        .arg(scenario)
        .arg("--url")
        .arg(format!("http://{addr}{path}"))
        .arg("--produce")
        .arg(format!("http://{addr}/publish-stream"))
        .args([
            "--rate",
            "500",
            "--size",
            "128",
            "--duration",
            "2",
            "--warmup",
            "0.2",
        ])
        .arg("--json")
        .arg(&json)
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "loadgen failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&json).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    text
}

fn assert_all_delivered(json: &str, subscribers: f64) {
    assert_eq!(json_number(json, "connected"), Some(subscribers), "{json}");
    assert_eq!(json_number(json, "produced"), Some(1000.0), "{json}");
    assert_eq!(
        json_number(json, "expected"),
        json_number(json, "delivered"),
        "{json}"
    );
    assert_eq!(json_number(json, "lost"), Some(0.0), "{json}");
    assert_eq!(json_number(json, "duplicated"), Some(0.0), "{json}");
    assert_eq!(json_number(json, "errors"), Some(0.0), "{json}");
    assert!(
        json_number(json, "delivered_per_s").unwrap() > 0.0,
        "{json}"
    );
    assert!(json_number(json, "p99_us").unwrap() > 0.0, "{json}");
}

#[test]
fn fanout_over_http1_delivers_every_event_once() {
    let json = run_loadgen("fanout", &["-n", "50"]);
    assert_eq!(json_number(&json, "expected"), Some(50_000.0), "{json}");
    assert_all_delivered(&json, 50.0);
}

#[test]
fn filtered_over_h2c_streams_delivers_every_event_once() {
    let json = run_loadgen(
        "filtered",
        &[
            "-n",
            "60",
            "--keys",
            "20",
            "--http",
            "2",
            "--streams-per-conn",
            "7",
        ],
    );
    // 1000 messages over 20 keys, 3 subscribers per key.
    assert_eq!(json_number(&json, "expected"), Some(3_000.0), "{json}");
    assert_all_delivered(&json, 60.0);
}

#[test]
fn reconnect_resumes_without_loss() {
    let json = run_loadgen(
        "reconnect",
        &["-n", "40", "--keys", "4", "--reconnect-at", "1"],
    );
    assert!(json_number(&json, "resume_ms").is_some(), "{json}");
    assert_eq!(json_number(&json, "resumed"), Some(40.0), "{json}");
    assert_all_delivered(&json, 40.0);
}

#[test]
fn replay_reads_the_prefilled_history() {
    let json = run_loadgen_on(
        "replay",
        "/events",
        &[
            "--keys",
            "4",
            "--prefill",
            "3000",
            "--header",
            "Last-Event-ID: 0",
        ],
    );
    assert_eq!(json_number(&json, "replayed"), Some(3000.0), "{json}");
    assert_eq!(json_number(&json, "lost"), Some(0.0), "{json}");
    assert_eq!(json_number(&json, "duplicated"), Some(0.0), "{json}");
    assert!(
        json_number(&json, "replay_records_per_s").unwrap() > 0.0,
        "{json}"
    );
}

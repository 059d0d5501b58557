//! Runs `zilla-loadgen` against an in-process `sse-baseline` and checks that every event is
//! delivered exactly once, over HTTP/1.1 and over h2c with several streams per connection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use sse_baseline::{Baseline, HubLimits};

/// A self-signed certificate for localhost / 127.0.0.1, made with the openssl CLI: (cert, key).
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        // A CA certificate cannot be an end entity: webpki refuses one.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    (cert, key)
}

/// Starts the baseline on free ports in a background runtime: plain, and TLS when given a
/// certificate. Returns the addresses.
fn start_baseline(tls: Option<(&Path, &Path)>) -> (String, Option<String>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let bind = || {
        runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap()
    };
    let plain = bind();
    let addr = plain.local_addr().unwrap().to_string();
    let secure = tls.map(|(cert, key)| (bind(), sse_baseline::tls_config(cert, key).unwrap()));
    let tls_addr = secure
        .as_ref()
        .map(|(l, _)| l.local_addr().unwrap().to_string());
    let baseline = Baseline::new(HubLimits {
        channel_capacity: 4096,
        key_capacity: 4096,
        history: 65_536,
    });
    std::thread::spawn(move || {
        runtime.block_on(async move {
            match secure {
                None => baseline.serve(plain, None).await,
                Some((listener, config)) => {
                    tokio::join!(
                        baseline.serve(plain, None),
                        baseline.serve(listener, Some(config))
                    );
                }
            }
        });
    });
    (addr, tls_addr)
}

fn json_number(json: &str, key: &str) -> Option<f64> {
    let at = json.find(&format!("\"{key}\": "))? + key.len() + 4;
    let rest = &json[at..];
    let end = rest.find([',', '\n']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

fn run_loadgen(scenario: &str, extra: &[&str]) -> String {
    let (addr, _) = start_baseline(None);
    run_loadgen_at(
        scenario,
        &format!("http://{addr}/events/{{key}}"),
        &addr,
        extra,
    )
}

fn run_loadgen_at(scenario: &str, url: &str, addr: &str, extra: &[&str]) -> String {
    let dir = temp_dir(&format!("{scenario}-{}", extra.len()));
    let json = dir.join("out.json");
    let output = Command::new(env!("CARGO_BIN_EXE_zilla-loadgen"))
        .arg(scenario)
        .arg("--url")
        .arg(url)
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

fn temp_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "loadgen-test-{}-{name}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
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
    // The baseline runs in this process: its CPU is this process's.
    let pid = std::process::id().to_string();
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
            "--pid",
            &pid,
        ],
    );
    // 1000 messages over 20 keys, 3 subscribers per key.
    assert_eq!(json_number(&json, "expected"), Some(3_000.0), "{json}");
    assert_all_delivered(&json, 60.0);
    let cpu_seconds = json_number(&json, "cpu_seconds").expect("cpu_seconds");
    let per_delivery = json_number(&json, "cpu_us_per_delivery").expect("cpu_us_per_delivery");
    assert!(
        (per_delivery - cpu_seconds * 1e6 / 3_000.0).abs() <= 1.0,
        "{json}"
    );
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
    let (addr, _) = start_baseline(None);
    let json = run_loadgen_at(
        "replay",
        &format!("http://{addr}/events"),
        &addr,
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

#[test]
fn fanout_over_https_h1_and_h2_delivers_every_event_once() {
    let dir = temp_dir("tls");
    let (cert, key) = certificate(&dir);
    let (addr, tls_addr) = start_baseline(Some((&cert, &key)));
    let port = tls_addr.unwrap().rsplit(':').next().unwrap().to_string();
    let url = format!("https://localhost:{port}/events/{{key}}");
    let ca = cert.to_str().unwrap();
    let json = run_loadgen_at("fanout", &url, &addr, &["-n", "30", "--ca", ca]);
    assert_eq!(json_number(&json, "expected"), Some(30_000.0), "{json}");
    assert_all_delivered(&json, 30.0);
    let json = run_loadgen_at(
        "fanout",
        &url,
        &addr,
        &[
            "-n",
            "30",
            "--http",
            "2",
            "--streams-per-conn",
            "10",
            "--insecure",
        ],
    );
    assert_all_delivered(&json, 30.0);
    // Trusting another certificate, nobody connects.
    let other = temp_dir("tls-other");
    let (other_ca, _) = certificate(&other);
    let other_ca = other_ca.to_str().unwrap();
    let json = run_loadgen_at(
        "idle",
        &url,
        &addr,
        &["-n", "2", "--connect-timeout", "1", "--ca", other_ca],
    );
    assert_eq!(json_number(&json, "connected"), Some(0.0), "{json}");
    assert!(json_number(&json, "errors").unwrap() > 0.0, "{json}");
    let _ = std::fs::remove_dir_all(&other);
    let _ = std::fs::remove_dir_all(&dir);
}

//! Real SSE clients against the real `zilla` binary: tcp → http → sse → ticker (a test
//! source of numbered events whose id is the number). curl over HTTP/1.1 and h2c, Node's
//! `eventsource` package (reconnecting with Last-Event-ID as a browser does) and Python's
//! standard library read the streams.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

use e2e_tests::repo_root;
use e2e_tests::zilla::Zilla;

const CONFIG: &str = "tests/configs/sse.ticker.yaml";

/// A free port on 127.0.0.1 (free when asked; the OS does not hand it out again at once).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// zilla with a ticker sending `count` events in all, `batch` per connection, every
/// `interval_ms`.
fn start(count: u64, batch: u64, interval_ms: u64) -> (Zilla, u16) {
    let port = free_port();
    let env = [
        ("PORT", port.to_string()),
        ("COUNT", count.to_string()),
        ("BATCH", batch.to_string()),
        ("INTERVAL", interval_ms.to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    (Zilla::start(Path::new(CONFIG), &env), port)
}

fn curl(args: &[&str]) -> String {
    let output = Command::new("curl")
        .args(["-sS", "-N", "-i", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl must be installed");
    assert!(output.status.success(), "curl failed: {output:?}");
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// The body after the header block (curl -i), with CRLF header lines.
fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

fn events(from: u64, to: u64) -> String {
    (from..=to)
        .map(|n| format!("id:{n}\ndata:{{\"n\":{n}}}\n\n"))
        .collect()
}

fn assert_event_stream_head(response: &str, status_line: &str) {
    let head = response.split("\r\n\r\n").next().unwrap_or_default();
    assert!(head.starts_with(status_line), "status: {head}");
    let head = head.to_ascii_lowercase();
    for header in [
        "content-type: text/event-stream",
        "cache-control: no-cache",
        "x-accel-buffering: no",
    ] {
        assert!(head.contains(header), "{header} missing in {head}");
    }
}

#[test]
fn curl_http11_reads_the_whole_stream() {
    let (_zilla, port) = start(3, 100, 20);
    let response = curl(&[&format!("http://127.0.0.1:{port}/ticks")]);
    assert_event_stream_head(&response, "HTTP/1.1 200");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{response}"
    );
    assert_eq!(body(&response), format!("retry:300\n\n{}", events(1, 3)));
}

#[test]
fn curl_h2c_prior_knowledge_reads_the_stream() {
    let (_zilla, port) = start(3, 100, 20);
    let url = format!("http://127.0.0.1:{port}/ticks");
    let response = curl(&["--http2-prior-knowledge", &url]);
    assert_event_stream_head(&response, "HTTP/2 200");
    assert_eq!(body(&response), format!("retry:300\n\n{}", events(1, 3)));
}

#[test]
fn curl_h2c_upgrade_reads_the_stream() {
    let (_zilla, port) = start(2, 100, 20);
    let url = format!("http://127.0.0.1:{port}/ticks");
    let response = curl(&["--http2", &url]);
    // The 101 Switching Protocols head comes first, then the HTTP/2 response.
    let h2 = response
        .find("HTTP/2 200")
        .map(|at| &response[at..])
        .unwrap_or_else(|| panic!("no HTTP/2 response in {response}"));
    assert_event_stream_head(h2, "HTTP/2 200");
    assert_eq!(body(h2), format!("retry:300\n\n{}", events(1, 2)));
}

#[test]
fn curl_resumes_after_last_event_id_header_and_parameter() {
    let (_zilla, port) = start(4, 100, 20);
    let url = format!("http://127.0.0.1:{port}/ticks");
    let response = curl(&["-H", "Last-Event-ID: 2", &url]);
    assert_eq!(body(&response), format!("retry:300\n\n{}", events(3, 4)));
    let response = curl(&[&format!("{url}?lastEventId=%33")]);
    assert_eq!(body(&response), format!("retry:300\n\n{}", events(4, 4)));
}

#[test]
fn curl_sees_the_refusals() {
    let (_zilla, port) = start(1, 100, 20);
    let url = format!("http://127.0.0.1:{port}/ticks");
    let post = curl(&["-X", "POST", "-H", "content-length: 0", &url]);
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    assert!(post.to_ascii_lowercase().contains("allow: get"), "{post}");
    let long_id = format!("Last-Event-ID: {}", "a".repeat(255));
    let overflow = curl(&["-H", &long_id, &url]);
    assert!(overflow.starts_with("HTTP/1.1 400"), "{overflow}");
}

fn run_checked(command: &mut Command) -> Output {
    let output = command.output().expect("cannot run the client");
    assert!(
        output.status.success(),
        "client failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Installs tests/node's locked dependencies when they are not there yet.
fn node_modules() -> std::path::PathBuf {
    let dir = repo_root().join("tests/node");
    if !dir.join("node_modules/eventsource").exists() {
        run_checked(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir),
        );
    }
    dir
}

#[test]
fn node_eventsource_reads_and_reconnects_with_last_event_id() {
    let dir = node_modules();
    // Two events per connection: the client must reconnect twice, resuming each time.
    let (_zilla, port) = start(6, 2, 20);
    let url = format!("http://127.0.0.1:{port}/ticks");
    let output = run_checked(
        Command::new("node")
            .arg("eventsource.mjs")
            .arg(&url)
            .arg("6")
            .current_dir(&dir),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let want_events: Vec<String> = (1..=6)
        .map(|n| format!("{{\"id\":\"{n}\",\"data\":\"{{\\\"n\\\":{n}}}\"}}"))
        .collect();
    let want = format!("{{\"opens\":3,\"events\":[{}]}}", want_events.join(","));
    assert_eq!(stdout.trim(), want);
}

fn python(port: u16, count: u64, last_id: Option<&str>) -> String {
    let script = repo_root().join("tests/python/sse_client.py");
    let mut command = Command::new("python3");
    command
        .arg(script)
        .arg("127.0.0.1")
        .arg(port.to_string())
        .arg("/ticks")
        .arg(count.to_string());
    if let Some(id) = last_id {
        command.arg(id);
    }
    String::from_utf8_lossy(&run_checked(&mut command).stdout)
        .trim()
        .to_owned()
}

#[test]
fn python_reads_and_resumes() {
    let (_zilla, port) = start(5, 100, 20);
    let first = python(port, 2, None);
    assert!(
        first.starts_with(
            "{\"status\": 200, \"content_type\": \"text/event-stream\", \"retry\": 300, \"events\": ["
        ),
        "{first}"
    );
    assert!(
        first.contains("{\"id\": \"1\", \"type\": \"message\", \"data\": \"{\\\"n\\\":1}\"}"),
        "{first}"
    );
    assert!(first.contains("{\"id\": \"2\","), "{first}");
    let resumed = python(port, 10, Some("2"));
    for n in 3..=5 {
        assert!(
            resumed.contains(&format!("{{\"id\": \"{n}\",")),
            "{resumed}"
        );
    }
    assert!(!resumed.contains("{\"id\": \"2\","), "{resumed}");
}

//! Real SSE clients against the real `zilla` binary: tcp → http → sse → ticker (a test
//! source of numbered events whose id is the number). curl over HTTP/1.1 and h2c, Node's
//! `eventsource` package (reconnecting with Last-Event-ID as a browser does) and Python's
//! standard library read the streams.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use e2e_tests::repo_root;
use e2e_tests::zilla::Zilla;

const CONFIG: &str = "tests/configs/sse.ticker.yaml";

/// zilla with a ticker sending `count` events in all, `batch` per connection, every
/// `interval_ms`.
fn start(count: u64, batch: u64, interval_ms: u64) -> (Zilla, u16) {
    start_with(count, batch, interval_ms, 30_000, r#"{"n":{counter}}"#)
}

/// The same with sse's stall timeout and the ticker's data template.
fn start_with(count: u64, batch: u64, interval_ms: u64, stall_ms: u64, data: &str) -> (Zilla, u16) {
    let port = e2e_tests::free_port();
    let env = [
        ("PORT", port.to_string()),
        ("COUNT", count.to_string()),
        ("BATCH", batch.to_string()),
        ("INTERVAL", interval_ms.to_string()),
        ("STALL", stall_ms.to_string()),
        ("DATA", data.to_owned()),
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
    let long_id = format!("Last-Event-ID: {}", "a".repeat(4097));
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

#[test]
fn node_eventsource_reads_and_reconnects_with_last_event_id() {
    let dir = e2e_tests::node_modules();
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

#[test]
fn a_client_that_stops_reading_is_ended_and_resumes_by_id() {
    // 8 KiB events every millisecond: the socket buffers fill within a second.
    let template = format!("{}{{counter}}", "x".repeat(8192));
    let (_zilla, port) = start_with(1_000_000, 1_000_000, 1, 500, &template);
    let mut socket = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    socket
        .write_all(b"GET /ticks HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("request");
    // Not reading: the server's buffers fill, then the stall timeout (500 ms) runs out.
    std::thread::sleep(Duration::from_secs(3));
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut received = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    // Reading again, the client gets what was buffered, then the end of the response.
    while !received.ends_with(b"\r\n0\r\n\r\n") {
        let n = socket.read(&mut buf).expect("the response ends");
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buf[..n]);
        assert!(
            received.len() < 64 << 20,
            "{} bytes and no end",
            received.len()
        );
    }
    assert!(
        received.ends_with(b"\r\n0\r\n\r\n"),
        "the chunked response ended cleanly"
    );
    let text = String::from_utf8_lossy(&received);
    // What arrived is bounded (socket buffers plus the server's bound), not the whole day's
    // worth, and ends with whole events up to some id.
    assert!(received.len() < 64 << 20, "{} bytes", received.len());
    let last_id: u64 = text
        .rmatch_indices("\nid:")
        .find_map(|(at, _)| {
            let rest = &text[at + 4..];
            let line = rest.split('\n').next()?;
            // Only an id whose event was complete (its data line and blank line arrived).
            rest.contains(&format!("{}{line}\n\n", "x".repeat(8192)))
                .then(|| line.parse().ok())
                .flatten()
        })
        .expect("at least one whole event");
    let mut again = TcpStream::connect(("127.0.0.1", port)).expect("reconnect");
    let request =
        format!("GET /ticks HTTP/1.1\r\nHost: localhost\r\nLast-Event-ID: {last_id}\r\n\r\n");
    again.write_all(request.as_bytes()).expect("request");
    again
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&head).contains("\nid:") || head.len() < 2048 {
        let n = again.read(&mut buf).expect("the resumed stream");
        assert!(n > 0, "the resumed stream ended early");
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let first = head
        .split("\nid:")
        .nth(1)
        .and_then(|rest| rest.split('\n').next())
        .unwrap_or_default();
    assert_eq!(first, (last_id + 1).to_string(), "resumes after {last_id}");
}

#[test]
fn shutdown_ends_open_streams_cleanly() {
    let (zilla, port) = start(1_000_000, 1_000_000, 50);
    let child = Command::new("curl")
        .args(["-sS", "-N", &format!("http://127.0.0.1:{port}/ticks")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("curl");
    std::thread::sleep(Duration::from_millis(800));
    let (status, elapsed) = zilla.terminate();
    assert_eq!(status.code(), Some(0));
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    let output = child.wait_with_output().expect("curl output");
    assert!(
        output.status.success(),
        "curl saw a clean end: {:?}",
        output.status
    );
    let body = String::from_utf8_lossy(&output.stdout);
    assert!(body.starts_with("retry:300\n\nid:1\n"), "{body}");
    assert!(body.ends_with("\n\n"), "whole events only: {body}");
}

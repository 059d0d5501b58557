//! The stdout telemetry exporter's Kafka events, from the real binary: a broker that cannot
//! be reached gives one `kafka_connection_failed` JSON line; once it can be reached again,
//! `kafka_connection_restored` names it and counts the failures, and records flow.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use e2e_tests::kafka;

/// Forwards every connection on `listener` to `target`, both ways, until the process ends.
fn forward(listener: TcpListener, target: String) {
    std::thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let Ok(broker) = TcpStream::connect(&target) else {
                continue;
            };
            for (mut from, mut to) in [
                (client.try_clone().unwrap(), broker.try_clone().unwrap()),
                (broker, client),
            ] {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
}

/// Zilla with one worker (one view of the cluster) and its stdout lines.
fn zilla(config: &std::path::Path) -> (Child, Receiver<String>) {
    let mut child = Command::new(e2e_tests::zilla::binary())
        .args(["start", "-w", "1", "-c"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("zilla");
    let lines = e2e_tests::stdout_lines(&mut child);
    (child, lines)
}

/// The first line with `needle`, among those already seen (the worker may log before
/// `started`) or those still to come.
fn until(lines: &Receiver<String>, needle: &str, seen: &mut Vec<String>) -> String {
    if let Some(line) = seen.iter().find(|l| l.contains(needle)) {
        return line.clone();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no stdout line with {needle}: {seen:#?}"));
        seen.push(line.clone());
        if line.contains(needle) {
            return line;
        }
    }
}

fn curl(url: &str) -> String {
    let out = Command::new("curl")
        .args(["-sN", "--max-time", "4", url])
        .output()
        .expect("curl must be installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn kafka_connection_failed_then_restored_as_json_lines() {
    let topic = kafka::unique_topic("telemetry");
    kafka::create_topic(&topic, 1, &[]);
    kafka::produce(&topic, ["after the outage"]);
    let port = e2e_tests::free_port();
    // Nothing listens there yet: the broker is "down". Below the ephemeral range, so that no
    // connection (not even one to this very port) takes it before the test listens there.
    let gate_addr = std::net::SocketAddr::from(([127, 0, 0, 1], e2e_tests::stable_port()));

    let dir = std::env::temp_dir().join(format!("zilla-telemetry-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("zilla.yaml");
    std::fs::write(
        &config,
        format!(
            "name: telemetry\n\
             bindings:\n\
             \x20 tcp: {{type: tcp, kind: server, options: {{host: 127.0.0.1, port: {port}}}, exit: http}}\n\
             \x20 http: {{type: http, kind: server, exit: sse}}\n\
             \x20 sse: {{type: sse, kind: server, exit: mapping}}\n\
             \x20 mapping: {{type: sse-kafka, kind: proxy, routes: [{{when: [{{path: '/{{topic}}'}}], with: {{topic: '${{params.topic}}'}}, exit: kafka}}]}}\n\
             \x20 kafka: {{type: kafka, kind: client, options: {{servers: ['{gate_addr}']}}, exit: south}}\n\
             \x20 south: {{type: tcp, kind: client}}\n\
             telemetry:\n  exporters:\n    out:\n      type: stdout\n"
        ),
    )
    .expect("config");
    let (mut child, lines) = zilla(&config);
    let mut seen = Vec::new();
    until(&lines, "\"event\":\"started\"", &mut seen);

    let url = format!("http://127.0.0.1:{port}/{topic}");
    let down = curl(&url);
    assert!(!down.contains("after the outage"), "{down}");
    let failed = until(&lines, "\"event\":\"kafka_connection_failed\"", &mut seen);
    assert!(
        failed.contains(&format!("\"broker\":\"{gate_addr}\"")),
        "{failed}"
    );
    assert!(failed.contains("\"level\":\"WARN\""), "{failed}");
    // A second failure in a row is not another event.
    let _ = curl(&url);

    // The "broker" is back: its address now leads to the real one.
    let listener = TcpListener::bind(gate_addr).expect("the gate's port is free again");
    forward(listener, kafka::bootstrap().to_owned());
    let up = curl(&url);
    assert!(up.contains("data:after the outage"), "{up}\n{seen:#?}");
    let restored = until(&lines, "\"event\":\"kafka_connection_restored\"", &mut seen);
    assert!(
        restored.contains(&format!("\"broker\":\"{gate_addr}\"")),
        "{restored}"
    );
    assert!(restored.contains("\"failures\":"), "{restored}");
    let failures = seen
        .iter()
        .filter(|l| l.contains("\"event\":\"kafka_connection_failed\""))
        .count();
    assert_eq!(failures, 1, "one event per streak of failures: {seen:#?}");
    let _ = child.kill();
    let _ = child.wait();
}

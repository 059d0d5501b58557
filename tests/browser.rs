//! Headless Chromium (Debian's package, driven by playwright-core from tests/node) opens the
//! sse.kafka.fanout page served by zilla itself — over https (HTTP/2 by ALPN, self-signed
//! keystore from the example's `tls/create`) and over http — sees records produced to Kafka
//! appear, and keeps seeing them, none lost and none twice, across a proxy restart: the
//! page's EventSource reconnects with Last-Event-ID.
//!
//! The example's configuration is used as it is, with its ports, keystore path and file
//! location rewritten to free ports and temporary paths.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use e2e_tests::zilla::Zilla;
use e2e_tests::{example, kafka};

const PASSWORD: &str = "browser-test";

/// The example's configuration on free ports, with a fresh keystore, files from the example's
/// `www/`, and the test's topics routed like `events`; returns its path.
fn config(tls_port: u16, http_port: u16) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zilla-browser-{}-{tls_port}", std::process::id()));
    // The test's topics are named browser-…: `/events` and `/events/*` become `/browser-*`
    // and `/browser-*/*`.
    let text = example::fanout_config(&dir, tls_port, http_port, PASSWORD)
        .replace(":path: /events", ":path: /browser-*");
    example::write_config(&dir, &text)
}

fn start(config: &Path) -> Zilla {
    let env = [
        ("KAFKA_BOOTSTRAP", kafka::bootstrap()),
        ("KEYSTORE_PASSWORD", PASSWORD),
    ];
    Zilla::start(config, &env)
}

fn produce(topic: &str, values: &[String]) {
    let records = values
        .iter()
        .enumerate()
        .map(|(i, v)| kafka::Record::new(v.clone()).with_key(format!("k{i}")));
    kafka::produce(topic, records);
}

/// The node driver, and its stdout lines as they come.
fn browser(url: &str, count: usize) -> (Child, Receiver<String>) {
    let dir = e2e_tests::node_modules();
    let mut child = Command::new("node")
        .args(["browser.mjs", url, &count.to_string(), "90"])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node must be installed");
    let lines = e2e_tests::stdout_lines(&mut child);
    (child, lines)
}

/// Lines until one contains `needle` (at once if one already did).
fn until(lines: &Receiver<String>, needle: &str, seen: &mut Vec<String>) {
    if seen.iter().any(|l| l.contains(needle)) {
        return;
    }
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no '{needle}' from the browser; saw {seen:#?}"));
        let done = line.contains(needle);
        seen.push(line);
        if done {
            return;
        }
    }
}

fn page_sees_records_across_a_restart(scheme: &str) {
    let topic = kafka::unique_topic("browser");
    kafka::create_topic(&topic, 2, &[]);
    let before: Vec<String> = (1..=3).map(|n| format!("before-{n}")).collect();
    let after: Vec<String> = (1..=3).map(|n| format!("after-{n}")).collect();
    produce(&topic, &before);
    // Ports below the ephemeral range: while zilla restarts, the page keeps reconnecting, and
    // a connection to an ephemeral port nobody listens on can take that very port as its own
    // source (TCP connects to itself), which stopped zilla from listening there again.
    let tls_port = e2e_tests::stable_port();
    let http_port = e2e_tests::stable_port();
    let config = config(tls_port, http_port);

    let zilla = start(&config);
    let port = if scheme == "https" {
        tls_port
    } else {
        http_port
    };
    let url = format!("{scheme}://localhost:{port}/index.html?path=/{topic}");
    let (mut child, lines) = browser(&url, before.len() + after.len());
    let mut seen = Vec::new();
    until(&lines, "\"ready\"", &mut seen);
    let expected_protocol = if scheme == "https" {
        "\"h2\""
    } else {
        "\"http/1.1\""
    };
    assert!(
        seen.iter()
            .any(|l| l.contains("\"ready\"") && l.contains(expected_protocol)),
        "{seen:?}"
    );
    until(&lines, "before-3", &mut seen);

    let (status, _) = zilla.terminate();
    assert_eq!(status.code(), Some(0));
    produce(&topic, &after);
    let _zilla = start(&config);

    until(&lines, "\"opens\"", &mut seen);
    let status = child.wait().expect("node");
    assert!(
        status.success(),
        "the page did not show every record: {seen:#?}"
    );
    let mut shown: Vec<String> = seen
        .iter()
        .filter_map(|l| l.split("\"data\":\"").nth(1))
        .filter_map(|rest| rest.split('"').next().map(str::to_owned))
        .collect();
    shown.sort();
    let mut expected: Vec<String> = before.iter().chain(&after).cloned().collect();
    expected.sort();
    assert_eq!(shown, expected, "every record exactly once: {seen:#?}");
    assert!(
        seen.iter().any(|l| l.contains("\"opens\":2")),
        "reconnected once: {seen:#?}"
    );
}

#[test]
fn chromium_over_https_h2_and_http_sees_every_record_across_a_restart() {
    // Not at the same time as the seed's configuration (tests/seed_config.rs) on the same
    // example ports, nor as another browser run.
    let _ports = e2e_tests::lock("ports-7143-7114");
    page_sees_records_across_a_restart("https");
    page_sees_records_across_a_restart("http");
}

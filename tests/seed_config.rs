//! The seed's configuration, the repository's root `zilla.yaml`, runs as it is written:
//! its bytes unchanged (copied next to a fresh `tls/localhost.p12`, the path it names
//! relative to itself), its `kafka:29092` pointed at the test's broker with
//! `zilla start --resolve kafka:29092:<broker>`, its fixed ports 7143 (https) and 7114 (http).
//! Records produced to its `events` topic reach curl over https with HTTP/2 and over http.
//! Its page is served from `/var/www` when `/var/www/index.html` exists (CI creates it; the
//! test says so when it does not).
//!
//! Ports 7143 and 7114 are fixed, so this test holds the machine-wide lock
//! `ports-7143-7114` (the browser test takes it too).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use e2e_tests::kafka::{self, Record};
use e2e_tests::zilla::Zilla;

const PASSWORD: &str = "seed-config-test";
const PAGE: &str = "/var/www/index.html";

/// The root zilla.yaml, byte for byte, in a fresh directory with `tls/localhost.p12`.
fn seed_copy() -> PathBuf {
    let root = e2e_tests::repo_root();
    let dir = std::env::temp_dir().join(format!("zilla-seed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let status = Command::new(root.join("examples/sse.kafka.fanout/tls/create"))
        .arg(dir.join("tls"))
        .env("KEYSTORE_PASSWORD", PASSWORD)
        .stdout(Stdio::null())
        .status()
        .expect("tls/create runs (needs openssl)");
    assert!(status.success(), "tls/create failed");
    let seed = std::fs::read(root.join("zilla.yaml")).expect("root zilla.yaml");
    let copy = dir.join("zilla.yaml");
    std::fs::write(&copy, &seed).expect("copy");
    assert_eq!(std::fs::read(&copy).expect("copy"), seed);
    copy
}

/// A streaming curl that prints the response head (`-D -`) and then the body.
fn subscribe(url: &str, extra: &[&str]) -> Child {
    Command::new("curl")
        .args(["-sN", "-k", "-D", "-", "--max-time", "15"])
        .args(extra)
        .arg(url)
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl must be installed")
}

fn curl(url: &str, extra: &[&str]) -> Output {
    Command::new("curl")
        .args(["-s", "-k", "--max-time", "5", "-D", "-"])
        .args(extra)
        .arg(url)
        .output()
        .expect("curl must be installed")
}

fn check_stream(output: &Output, status_line: &str, values: &[String], zilla: &Zilla) {
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with(status_line),
        "expected {status_line:?}: {text}\nzilla:\n{}",
        zilla.log().join("\n")
    );
    assert!(
        text.to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{text}"
    );
    // The topic is shared with earlier runs: ours are the last records, in order.
    let data: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter(|data| values.iter().any(|v| v == data))
        .collect();
    assert_eq!(data, values, "{text}\nzilla:\n{}", zilla.log().join("\n"));
}

#[test]
fn the_root_zilla_yaml_streams_over_https_h2_and_http_and_serves_the_page() {
    let _ports = e2e_tests::lock("ports-7143-7114");
    for port in [7143, 7114] {
        if let Err(err) = std::net::TcpListener::bind(("0.0.0.0", port)) {
            panic!(
                "port {port}, fixed in the seed's zilla.yaml, is held by another process ({err}): \
                 stop it (`ss -ltnp | grep {port}`) and run this test again"
            );
        }
    }
    let config = seed_copy();
    kafka::ensure_events_topic();
    let zilla = Zilla::start_with_args(
        Path::new(&config),
        &["--resolve", &kafka::resolve_seed_broker()],
        &[("KEYSTORE_PASSWORD", PASSWORD)],
    );

    let https = subscribe("https://localhost:7143/events", &["--http2"]);
    let http = subscribe("http://localhost:7114/events", &["--http1.1"]);
    std::thread::sleep(Duration::from_secs(3));
    let run = std::process::id();
    let values: Vec<String> = (1..=3).map(|n| format!("seed-{run}-{n}")).collect();
    kafka::produce(
        "events",
        values
            .iter()
            .map(|v| Record::new(v.clone()).with_key("seed")),
    );
    check_stream(
        &https.wait_with_output().expect("curl"),
        "HTTP/2 200",
        &values,
        &zilla,
    );
    check_stream(
        &http.wait_with_output().expect("curl"),
        "HTTP/1.1 200",
        &values,
        &zilla,
    );

    if Path::new(PAGE).exists() {
        for (url, status_line, extra) in [
            ("https://localhost:7143/index.html", "HTTP/2 200", "--http2"),
            (
                "http://localhost:7114/index.html",
                "HTTP/1.1 200",
                "--http1.1",
            ),
        ] {
            let out = curl(url, &[extra]);
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.starts_with(status_line), "{url}: {text}");
            assert!(text.contains("text/html"), "{url}: {text}");
        }
    } else {
        eprintln!(
            "NOTE: {PAGE} does not exist: the page the seed serves from /var/www was not checked \
             (CI creates it; as root: mkdir -p /var/www && cp examples/sse.kafka.fanout/www/index.html /var/www/)"
        );
        let out = curl("http://localhost:7114/index.html", &["--http1.1"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("HTTP/1.1 404"), "{text}");
    }
}

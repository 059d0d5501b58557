//! `examples/sse.kafka.fanout` exposes the topic it means and no other: its documented URLs
//! stream `events` (over http and over https with HTTP/2), while a topic whose name merely
//! starts with `events` is a 404, though its sse-kafka route takes any topic from the path.
//!
//! The example's configuration is used as it is, moved to free ports and temporary paths.

use std::process::Command;

use e2e_tests::example;
use e2e_tests::kafka::{self, Record};
use e2e_tests::zilla::Zilla;

const PASSWORD: &str = "example-test";

/// The status line curl saw for `url` (read for at most two seconds: streams do not end).
fn status(url: &str, extra: &[&str]) -> String {
    let output = Command::new("curl")
        .args(["-sN", "-k", "-D", "-", "-o", "/dev/null", "--max-time", "2"])
        .args(extra)
        .arg(url)
        .output()
        .expect("curl must be installed");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.lines().next().unwrap_or_default().trim().to_owned()
}

#[test]
fn only_events_is_streamed_and_a_topic_named_like_it_is_404() {
    let private = kafka::unique_topic("eventsprivate");
    kafka::create_topic(&private, 1, &[]);
    kafka::produce(&private, [Record::new("secret").with_key("AAPL")]);
    kafka::ensure_events_topic();
    // Below the ephemeral range: zilla listens on 0.0.0.0, where an outgoing connection
    // could otherwise take a port between the choice and the listen.
    let (tls_port, http_port) = (e2e_tests::stable_port(), e2e_tests::stable_port());
    let dir = std::env::temp_dir().join(format!("zilla-example-{}", std::process::id()));
    let text = example::fanout_config(&dir, tls_port, http_port, PASSWORD);
    let config = example::write_config(&dir, &text);
    let zilla = Zilla::start(
        &config,
        &[
            ("KAFKA_BOOTSTRAP", kafka::bootstrap()),
            ("KEYSTORE_PASSWORD", PASSWORD),
        ],
    );
    let http = format!("http://localhost:{http_port}");
    let https = format!("https://localhost:{tls_port}");
    let h1 = ["--http1.1"];
    let h2 = ["--http2"];

    // The documented URLs.
    for (url, extra, expected) in [
        (format!("{http}/events"), &h1, "HTTP/1.1 200 OK"),
        (
            format!("{http}/events?lastEventId=AQIAAg=="),
            &h1,
            "HTTP/1.1 200 OK",
        ),
        (format!("{http}/events/AAPL/nasdaq"), &h1, "HTTP/1.1 200 OK"),
        (format!("{https}/events"), &h2, "HTTP/2 200"),
        (format!("{https}/events/AAPL/nasdaq"), &h2, "HTTP/2 200"),
        (format!("{http}/index.html"), &h1, "HTTP/1.1 200 OK"),
    ] {
        let got = status(&url, extra);
        assert_eq!(got, expected, "{url}\nzilla:\n{}", zilla.log().join("\n"));
    }
    // A topic whose name starts with `events`, however asked for.
    for (url, extra, expected) in [
        (format!("{http}/{private}"), &h1, "HTTP/1.1 404 Not Found"),
        (
            format!("{http}/{private}?x=1"),
            &h1,
            "HTTP/1.1 404 Not Found",
        ),
        (
            format!("{http}/{private}/AAPL/nasdaq"),
            &h1,
            "HTTP/1.1 404 Not Found",
        ),
        (format!("{https}/{private}"), &h2, "HTTP/2 404"),
    ] {
        let got = status(&url, extra);
        assert_eq!(got, expected, "{url}\nzilla:\n{}", zilla.log().join("\n"));
    }
}

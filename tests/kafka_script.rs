//! `scripts/kafka`'s extras on every broker: the SSL listener (kcat verifies the broker's
//! certificate with the CA `scripts/kafka ca` names, and is refused without it) and
//! `scripts/kafka fetch-requests`, the Fetch requests the broker has served, from JMX.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use e2e_tests::kafka;

fn kcat_metadata(ssl: &str, ca: Option<&std::path::Path>) -> std::process::Output {
    let mut command = Command::new("kcat");
    command.args(["-L", "-b", ssl, "-m", "10", "-X", "security.protocol=ssl"]);
    if let Some(ca) = ca {
        command
            .arg("-X")
            .arg(format!("ssl.ca.location={}", ca.display()));
    } else {
        // Only the system's authorities, which never signed the throw-away CA.
        command.args(["-X", "ssl.ca.location=/dev/null"]);
    }
    command.output().expect("kcat must be installed")
}

#[test]
fn ssl_listener_is_verified_with_its_ca() {
    let (ssl, ca) = kafka::ssl();
    let trusted = kcat_metadata(&ssl, Some(&ca));
    let text = String::from_utf8_lossy(&trusted.stdout);
    assert!(
        trusted.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    assert!(
        text.contains(&format!("at {ssl}")),
        "advertised on the SSL port: {text}"
    );
    let untrusted = kcat_metadata(&ssl, None);
    assert!(!untrusted.status.success(), "{untrusted:?}");
}

#[test]
fn fetch_requests_counts_what_consumers_ask() {
    let topic = kafka::unique_topic("fetch-requests");
    kafka::create_topic(&topic, 1, &[]);
    kafka::produce(&topic, ["one"]);
    let before = kafka::fetch_requests();
    assert_eq!(kafka::consume(&topic, 1, Duration::from_secs(15)), ["one"]);
    let after = kafka::fetch_requests();
    assert!(after > before, "{before} → {after}");
}

//! Zilla's published ways of writing our bindings run as written (issue 13): a kafka client
//! bootstrapped by its tcp client's `host` and `port`, and kafka cache bindings routing by
//! `when: [{topic: …}]`, against a real broker and read with curl.

use std::path::Path;
use std::process::Command;

use e2e_tests::kafka::{self, Record};
use e2e_tests::zilla::Zilla;

/// Reads `url` with curl for at most `seconds`: the status code and the `data:` lines.
fn subscribe(url: &str, seconds: u32) -> (String, Vec<String>) {
    let output = Command::new("curl")
        .args([
            "-sN",
            "--max-time",
            &seconds.to_string(),
            "-w",
            "\n%{http_code}",
        ])
        .arg(url)
        .output()
        .expect("curl must be installed");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let status = text.lines().last().unwrap_or_default().to_owned();
    let data = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::to_owned)
        .collect();
    (status, data)
}

fn start(config: &str, args: &[&str]) -> (Zilla, u16) {
    let port = e2e_tests::free_port().to_string();
    let env = [
        ("PORT", port.as_str()),
        ("KAFKA_BOOTSTRAP", kafka::bootstrap()),
    ];
    let zilla = Zilla::start_with_args(Path::new(config), args, &env);
    (zilla, port.parse().expect("port"))
}

#[test]
fn a_kafka_client_without_servers_bootstraps_at_its_tcp_clients_host_and_port() {
    let topic = kafka::unique_topic("bootstrap");
    kafka::create_topic(&topic, 1, &[]);
    kafka::produce(&topic, [Record::new("one"), Record::new("two")]);
    let resolve = kafka::resolve_seed_broker();
    let (zilla, port) = start(
        "tests/configs/kafka.client.tcp.bootstrap.yaml",
        &["--resolve", &resolve],
    );
    let (status, data) = subscribe(&format!("http://127.0.0.1:{port}/{topic}"), 5);
    assert_eq!(
        (status.as_str(), data.as_slice()),
        ("200", ["one".to_owned(), "two".to_owned()].as_slice()),
        "zilla:\n{}",
        zilla.log().join("\n")
    );
}

#[test]
fn kafka_cache_bindings_route_by_topic_and_refuse_the_rest() {
    let routed = kafka::unique_topic("routed");
    let unrouted = kafka::unique_topic("unrouted");
    for topic in [&routed, &unrouted] {
        kafka::create_topic(topic, 1, &[]);
        kafka::produce(topic, [Record::new("record")]);
    }
    let (zilla, port) = start("tests/configs/kafka.cache.when.topic.yaml", &[]);
    let (status, data) = subscribe(&format!("http://127.0.0.1:{port}/{routed}"), 5);
    assert_eq!(
        (status.as_str(), data.as_slice()),
        ("200", ["record".to_owned()].as_slice()),
        "a topic the cache_server routes streams; zilla:\n{}",
        zilla.log().join("\n")
    );
    let (status, data) = subscribe(&format!("http://127.0.0.1:{port}/{unrouted}"), 5);
    assert_eq!(
        (status.as_str(), data.len()),
        ("404", 0),
        "a topic no cache_server route takes is refused"
    );
}

//! `examples/asyncapi.sse.kafka.proxy` runs as written: its configuration (on a free port, with
//! `--resolve kafka.examples.dev:29092:<broker>`), its two AsyncAPI documents (the Kafka one
//! pointed at a fresh topic, so the event id is that of a first record); curl over h2c
//! subscribes, kcat produces.

use std::process::Command;

use e2e_tests::kafka;
use e2e_tests::repo_root;
use e2e_tests::sse::{curl, events};
use e2e_tests::zilla::{self, Zilla};

const EXAMPLE: &str = "examples/asyncapi.sse.kafka.proxy";

fn kcat(topic: &str, key: &str, value: &str) {
    let mut child = Command::new("kcat")
        .args(["-P", "-b", kafka::bootstrap(), "-t", topic, "-k", key])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("kcat must be installed");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(value.as_bytes())
        .expect("write to kcat");
    assert!(child.wait().expect("kcat ends").success(), "kcat failed");
}

#[test]
fn the_example_streams_its_topic_and_each_order_on_its_own() {
    let topic = kafka::unique_topic("asyncapi-events");
    kafka::create_topic(&topic, 1, &[]);
    let port = e2e_tests::stable_port();
    let dir = std::env::temp_dir().join(format!("zilla-asyncapi-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("specs")).expect("temp dir");
    let example = repo_root().join(EXAMPLE);
    let read = |file: &str| std::fs::read_to_string(example.join(file)).expect(file);
    std::fs::write(
        dir.join("zilla.yaml"),
        read("zilla.yaml").replace("7114", &port.to_string()),
    )
    .expect("write config");
    std::fs::write(
        dir.join("specs/sse-asyncapi.yaml"),
        read("specs/sse-asyncapi.yaml"),
    )
    .expect("write sse spec");
    std::fs::write(
        dir.join("specs/kafka-asyncapi.yaml"),
        read("specs/kafka-asyncapi.yaml").replace("address: events", &format!("address: {topic}")),
    )
    .expect("write kafka spec");

    // The expansion, as `zilla validate -v` prints it.
    let validated = zilla::run(&[
        "validate",
        "-v",
        "-c",
        &dir.join("zilla.yaml").to_string_lossy(),
    ]);
    let listing = String::from_utf8_lossy(&validated.stdout);
    assert!(validated.status.success(), "{listing}");
    for line in [
        "north_sse_server: tcp server → north_sse_server.http",
        "north_sse_server.sse: sse server → south_kafka_proxy",
        "south_kafka_proxy: sse-kafka proxy → south_kafka_client",
        "south_kafka_client.kafka: kafka client → south_kafka_client.tcp",
    ] {
        assert!(listing.contains(line), "{line:?} not in:\n{listing}");
    }

    let broker = kafka::resolve_seed_broker();
    let address = broker
        .strip_prefix("kafka:29092:")
        .expect("resolved address");
    let resolve = format!("kafka.examples.dev:29092:{address}");
    let zilla = Zilla::start_with_args(&dir.join("zilla.yaml"), &["--resolve", &resolve], &[]);
    let base = format!("http://localhost:{port}");
    let (all, one, cors) = std::thread::scope(|s| {
        let all = s.spawn(|| curl(&format!("{base}/events"), &["--http2"], 8));
        let one = s.spawn(|| curl(&format!("{base}/events/1"), &["--http2"], 8));
        let cors = s.spawn(|| {
            curl(
                &format!("{base}/events/2"),
                &["-i", "-H", "Origin: https://app.example"],
                8,
            )
        });
        std::thread::sleep(std::time::Duration::from_secs(3));
        kcat(&topic, "1", r#"{"id": 1,"name":"Hello World!"}"#);
        kcat(&topic, "2", r#"{"id": 2,"name":"Other order"}"#);
        (
            all.join().unwrap(),
            one.join().unwrap(),
            cors.join().unwrap(),
        )
    });
    let log = zilla.log().join("\n");
    let all = events(&all);
    let first = all
        .iter()
        .find(|e| !e.data.is_empty())
        .unwrap_or_else(|| panic!("no event:\n{log}"));
    assert_eq!(first.data, r#"{"id": 1,"name":"Hello World!"}"#);
    assert_eq!(
        first.id.as_deref(),
        Some("AQIAAg=="),
        "Zilla's id for offset 0 of one partition"
    );
    assert_eq!(
        all.iter().filter(|e| !e.data.is_empty()).count(),
        2,
        "{all:?}"
    );
    let one: Vec<_> = events(&one)
        .into_iter()
        .filter(|e| !e.data.is_empty())
        .collect();
    assert_eq!(one.len(), 1, "only order 1's record: {one:?}");
    assert_eq!(one[0].data, r#"{"id": 1,"name":"Hello World!"}"#);
    let cors_head = cors.to_ascii_lowercase();
    assert!(
        cors_head.contains("access-control-allow-origin: "),
        "{cors}"
    );
    assert!(
        cors.contains(r#"data:{"id": 2,"name":"Other order"}"#),
        "{cors}"
    );
}

//! The product path end to end: Kafka records produced with the Java producer and kcat reach
//! curl (HTTP/1.1 and h2c), Node's `eventsource` and Python through
//! tcp → http → sse → sse-kafka → kafka, with Zilla's event ids, key and header filters, and
//! exact resume with Last-Event-ID — through the shared cache and straight to the client.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use e2e_tests::kafka::{self, Record};
use e2e_tests::sse::{curl, events};
use e2e_tests::zilla::Zilla;

/// The configuration through the cache, and the one straight to the Kafka client.
const CACHE: &str = "tests/configs/sse.kafka.cache.yaml";
const DIRECT: &str = "tests/configs/sse.kafka.direct.yaml";

fn start(config: &str) -> (Zilla, u16) {
    start_on(config, e2e_tests::free_port())
}

fn start_on(config: &str, port: u16) -> (Zilla, u16) {
    start_with_kafka(config, port, kafka::bootstrap())
}

fn start_with_kafka(config: &str, port: u16, bootstrap: &str) -> (Zilla, u16) {
    let env = [
        ("PORT", port.to_string()),
        ("KAFKA_BOOTSTRAP", bootstrap.to_owned()),
        (
            "ZILLA_LOG",
            std::env::var("ZILLA_LOG").unwrap_or_else(|_| "info".to_owned()),
        ),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    (Zilla::start(Path::new(config), &env), port)
}

fn ticker(symbol: &str, tag: &str, value: &str) -> Record {
    Record::new(value).with_key(symbol).with_header("tag", tag)
}

#[test]
fn records_reach_curl_filtered_and_resume_exactly_through_the_cache() {
    records_reach_curl_filtered_and_resume_exactly(CACHE);
}

#[test]
fn records_reach_curl_filtered_and_resume_exactly_without_cache() {
    records_reach_curl_filtered_and_resume_exactly(DIRECT);
}

fn records_reach_curl_filtered_and_resume_exactly(config: &str) {
    let topic = kafka::unique_topic("events");
    kafka::create_topic(&topic, 2, &[]);
    kafka::produce(
        &topic,
        [
            ticker("AAPL", "nasdaq", r#"{"id":1,"price":100}"#),
            ticker("MSFT", "nasdaq", r#"{"id":2,"price":200}"#),
            ticker("AAPL", "nyse", r#"{"id":3,"price":101}"#),
            ticker("AAPL", "nasdaq", r#"{"id":4,"price":102}"#),
            ticker("AAPL", "nasdaq", r#"{"id":5,"price":103}"#),
        ],
    );
    let (_zilla, port) = start(config);
    let url = format!("http://127.0.0.1:{port}/{topic}/AAPL/nasdaq");

    let received = events(&curl(&url, &["--http1.1"], 4));
    let data: Vec<&str> = received.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(
        data,
        [
            r#"{"id":1,"price":100}"#,
            r#"{"id":4,"price":102}"#,
            r#"{"id":5,"price":103}"#
        ],
        "only AAPL on nasdaq, in order: {received:?}"
    );
    assert!(
        received
            .iter()
            .all(|e| e.id.is_some() && e.event_type.is_none())
    );

    // Resume after the second event: only the third arrives, nothing twice.
    let resume_from = received[1].id.clone().expect("id");
    let header = format!("last-event-id: {resume_from}");
    let resumed = events(&curl(&url, &["--http2-prior-knowledge", "-H", &header], 4));
    let data: Vec<&str> = resumed.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(
        data,
        [r#"{"id":5,"price":103}"#],
        "resumed over h2c: {resumed:?}"
    );
    assert_eq!(
        resumed[0].id, received[2].id,
        "the same id for the same record"
    );

    // The lastEventId query parameter works too, and a record produced now arrives live.
    let url_with_id = format!("{url}?lastEventId={}", received[2].id.clone().expect("id"));
    let live = std::thread::spawn(move || events(&curl(&url_with_id, &[], 8)));
    std::thread::sleep(Duration::from_secs(2));
    kafka::produce(
        &topic,
        [ticker("AAPL", "nasdaq", r#"{"id":6,"price":104}"#)],
    );
    let live = live.join().expect("curl thread");
    let data: Vec<&str> = live.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(data, [r#"{"id":6,"price":104}"#], "live: {live:?}");
}

#[test]
fn tombstones_become_delete_events_and_bad_ids_get_400() {
    let topic = kafka::unique_topic("deletes");
    kafka::create_topic(&topic, 1, &[]);
    kafka::produce(
        &topic,
        [Record::new("v1").with_key("key"), Record::tombstone("key")],
    );
    let (_zilla, port) = start("tests/configs/sse.kafka.direct.yaml");
    let url = format!("http://127.0.0.1:{port}/{topic}");

    let received = events(&curl(&url, &[], 4));
    assert_eq!(received.len(), 2, "{received:?}");
    assert_eq!(received[0].data, "v1");
    assert_eq!(received[0].id.as_deref(), Some("AQIAAg=="));
    assert_eq!(received[1].event_type.as_deref(), Some("delete"));
    assert_eq!(received[1].data, "a2V5", "base64url of the key");
    assert_eq!(received[1].id.as_deref(), Some("AQIABA=="));

    let status = curl(
        &url,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "last-event-id: AwQABAIC",
        ],
        4,
    );
    assert_eq!(status, "400", "a malformed id is refused");
    let missing = format!("http://127.0.0.1:{port}/{}", kafka::unique_topic("missing"));
    let status = curl(&missing, &["-o", "/dev/null", "-w", "%{http_code}"], 6);
    assert_eq!(
        status, "404",
        "an unknown topic is refused before any header"
    );
}

/// Produces one record with kcat (`-k` key, `-H` header), as users of the seed do.
fn kcat(topic: &str, key: &str, value: &str) {
    kcat_to(kafka::bootstrap(), topic, key, value);
}

fn kcat_to(bootstrap: &str, topic: &str, key: &str, value: &str) {
    use std::io::Write;
    let mut child = Command::new("kcat")
        .args([
            "-P",
            "-b",
            bootstrap,
            "-t",
            topic,
            "-k",
            key,
            "-H",
            "tag=nasdaq",
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("kcat must be installed");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(value.as_bytes()).expect("write to kcat");
    drop(stdin);
    assert!(child.wait().expect("kcat").success(), "kcat failed");
}

#[test]
fn node_eventsource_misses_nothing_across_a_proxy_restart() {
    let dir = e2e_tests::node_modules();
    let topic = kafka::unique_topic("restart");
    kafka::create_topic(&topic, 2, &[]);
    for n in 1..=4 {
        kcat(&topic, &format!("k{n}"), &format!("before-{n}"));
    }
    let port = e2e_tests::stable_port();
    let (zilla, _) = start_on(CACHE, port);
    let url = format!("http://127.0.0.1:{port}/{topic}");
    let node = Command::new("node")
        .args(["eventsource.mjs", &url, "8"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node must be installed");

    // Let the client read the first records, then stop the proxy; produce while it is down.
    std::thread::sleep(Duration::from_secs(3));
    let (status, _) = zilla.terminate();
    assert_eq!(status.code(), Some(0));
    for n in 1..=4 {
        kcat(&topic, &format!("k{n}"), &format!("after-{n}"));
    }
    let (_zilla, _) = start_on(CACHE, port);

    let output = node.wait_with_output().expect("node output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "node: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut values: Vec<String> = stdout
        .split("\"data\":\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next().map(str::to_owned))
        .collect();
    assert!(stdout.contains("\"opens\":2"), "reconnected once: {stdout}");
    values.sort();
    let mut expected: Vec<String> = (1..=4)
        .flat_map(|n| [format!("after-{n}"), format!("before-{n}")])
        .collect();
    expected.sort();
    assert_eq!(values, expected, "every record exactly once: {stdout}");
}

#[test]
fn python_reads_and_resumes() {
    let topic = kafka::unique_topic("python");
    kafka::create_topic(&topic, 1, &[]);
    kafka::produce(&topic, (1..=3).map(|n| Record::new(format!("p{n}"))));
    let (_zilla, port) = start(CACHE);
    let script = e2e_tests::repo_root().join("tests/python/sse_client.py");
    let python = |count: &str, last_event_id: Option<&str>| -> String {
        let mut command = Command::new("python3");
        command
            .arg(&script)
            .args(["127.0.0.1", &port.to_string(), &format!("/{topic}"), count]);
        command.args(last_event_id);
        let output = command.output().expect("python3 must be installed");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let first = python("2", None);
    assert!(first.contains("\"status\": 200"), "{first}");
    assert!(
        first.contains("\"data\": \"p1\"") && first.contains("\"data\": \"p2\""),
        "{first}"
    );
    let second_id = first
        .split("\"id\": \"")
        .nth(2)
        .and_then(|rest| rest.split('"').next())
        .expect("the second event's id")
        .to_owned();
    let rest = python("1", Some(&second_id));
    assert!(
        rest.contains("\"data\": \"p3\""),
        "resumed after p2: {rest}"
    );
    assert!(!rest.contains("\"data\": \"p2\""), "nothing twice: {rest}");
}

#[test]
fn a_live_start_skips_history() {
    let topic = kafka::unique_topic("live");
    kafka::create_topic(&topic, 1, &[]);
    // More history than one fetch brings (4 MiB), so that the cache is still catching up when
    // the subscriber arrives: live must mean the broker's end, not the cache's.
    let pad = "x".repeat(1000);
    kafka::produce(
        &topic,
        (0..6000).map(|n| Record::new(format!("old-{n}-{pad}"))),
    );
    let (_zilla, port) = start(CACHE);
    let url = format!("http://127.0.0.1:{port}/{topic}?start=live");
    let reader = std::thread::spawn(move || events(&curl(&url, &[], 8)));
    std::thread::sleep(Duration::from_secs(3));
    kafka::produce(&topic, [Record::new("new")]);
    let received = reader.join().expect("curl thread");
    let data: Vec<&str> = received
        .iter()
        .map(|e| &e.data[..e.data.len().min(12)])
        .collect();
    assert_eq!(data, ["new"], "only what was produced after subscribing");
}

/// A broker of this test's own, stopped (and its data deleted) when dropped.
struct OwnBroker(String);

impl OwnBroker {
    fn start() -> OwnBroker {
        let stdout = kafka::script_output(&["start"]);
        OwnBroker(
            stdout
                .lines()
                .last()
                .expect("bootstrap address")
                .trim()
                .to_owned(),
        )
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = Command::new(kafka::script())
            .args(["stop", &self.0])
            .output();
    }
}

#[test]
fn a_broker_restart_shows_to_subscribers_only_as_delay_through_the_cache() {
    a_broker_restart_shows_to_subscribers_only_as_delay(CACHE);
}

#[test]
fn a_broker_restart_shows_to_subscribers_only_as_delay_without_cache() {
    a_broker_restart_shows_to_subscribers_only_as_delay(DIRECT);
}

fn a_broker_restart_shows_to_subscribers_only_as_delay(config: &str) {
    let dir = e2e_tests::node_modules();
    let broker = OwnBroker::start();
    let topic = kafka::unique_topic("restarted");
    kafka::script_output(&[
        "topics",
        "--bootstrap-server",
        &broker.0,
        "--create",
        "--topic",
        &topic,
        "--partitions",
        "2",
    ]);
    for n in 1..=3 {
        kcat_to(&broker.0, &topic, &format!("k{n}"), &format!("r{n}"));
    }
    let (_zilla, port) = start_with_kafka(config, e2e_tests::free_port(), &broker.0);
    let url = format!("http://127.0.0.1:{port}/{topic}");
    let node = Command::new("node")
        .args(["eventsource.mjs", &url, "6", "60000"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node must be installed");
    std::thread::sleep(Duration::from_secs(2));

    kafka::script_output(&["restart", &broker.0]);
    for n in 4..=6 {
        kcat_to(&broker.0, &topic, &format!("k{n}"), &format!("r{n}"));
    }

    let output = node.wait_with_output().expect("node output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "node: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("\"opens\":1"),
        "one stream throughout: {stdout}"
    );
    let mut values: Vec<&str> = stdout
        .split("\"data\":\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    values.sort_unstable();
    assert_eq!(
        values,
        ["r1", "r2", "r3", "r4", "r5", "r6"],
        "every record once: {stdout}"
    );
}

#[test]
fn an_offset_past_the_end_resumes_per_the_route_with_a_gap_through_the_cache() {
    an_offset_past_the_end_resumes_per_the_route_with_a_gap(CACHE);
}

#[test]
fn an_offset_past_the_end_resumes_per_the_route_with_a_gap_without_cache() {
    an_offset_past_the_end_resumes_per_the_route_with_a_gap(DIRECT);
}

/// An id from before the topic was deleted and recreated: offset 1000 of a partition that now
/// ends at 2. The route's start is historical, so the partition is read from its start, after
/// a gap event that says so (it was silent forever, or skipped records, before).
fn an_offset_past_the_end_resumes_per_the_route_with_a_gap(config: &str) {
    let topic = kafka::unique_topic("recreated");
    kafka::create_topic(&topic, 1, &[]);
    kafka::produce(&topic, [Record::new("r0"), Record::new("r1")]);
    let (_zilla, port) = start(config);
    let url = format!("http://127.0.0.1:{port}/{topic}");
    // [p0 → 1000]
    let received = events(&curl(&url, &["-H", "last-event-id: AQIA0A8="], 6));
    let gap = r#"{"partition":0,"requested":1000,"earliest":0}"#;
    let seen: Vec<(Option<&str>, &str)> = received
        .iter()
        .map(|e| (e.event_type.as_deref(), e.data.as_str()))
        .collect();
    assert_eq!(
        seen,
        [(Some("gap"), gap), (None, "r0"), (None, "r1")],
        "{received:?}"
    );
}

/// Ids Zilla would emit and then refuse (over 254 bytes): a 300-byte etag, a topic of 120
/// partitions. Each is accepted back and resumes exactly; an etag too long for any id is
/// left out of it.
#[test]
fn every_id_emitted_is_accepted_back_and_resumes_exactly() {
    let topic = kafka::unique_topic("wide");
    kafka::create_topic(&topic, 120, &[]);
    let long_etag = "e".repeat(300);
    let huge_etag = "h".repeat(5000);
    kafka::produce(
        &topic,
        [
            Record::new("first")
                .with_key("k")
                .with_header("etag", &long_etag),
            Record::new("second")
                .with_key("k")
                .with_header("etag", &huge_etag),
            Record::new("third").with_key("k"),
        ],
    );
    let (_zilla, port) = start(CACHE);
    let url = format!("http://127.0.0.1:{port}/{topic}");
    let received = events(&curl(&url, &[], 6));
    let data: Vec<&str> = received.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(data, ["first", "second", "third"], "{received:?}");
    let ids: Vec<&str> = received.iter().filter_map(|e| e.id.as_deref()).collect();
    assert_eq!(ids.len(), 3, "{received:?}");
    assert!(ids[0].len() > 254 && ids[0].ends_with(&format!("/{long_etag}")));
    assert!(
        !ids[1].contains('/'),
        "the huge etag is left out: {}",
        ids[1]
    );
    for (i, id) in ids.iter().enumerate() {
        let header = format!("last-event-id: {id}");
        let status = curl(
            &url,
            &["-o", "/dev/null", "-w", "%{http_code}", "-H", &header],
            2,
        );
        assert_eq!(status, "200", "id {i} ({} bytes) is accepted", id.len());
        let resumed = events(&curl(&url, &["-H", &header], 4));
        let data: Vec<&str> = resumed.iter().map(|e| e.data.as_str()).collect();
        assert_eq!(data, ["first", "second", "third"][i + 1..], "after id {i}");
    }
}

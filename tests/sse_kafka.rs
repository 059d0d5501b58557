//! The product path end to end: Kafka records produced with the Java producer reach curl over
//! HTTP/1.1 and h2c through tcp → http → sse → sse-kafka → kafka, with Zilla's event ids,
//! key and header filters, and exact resume with Last-Event-ID.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use e2e_tests::kafka::{self, Record};
use e2e_tests::zilla::Zilla;

/// One SSE event as curl printed it.
#[derive(Debug, Default, Clone, PartialEq)]
struct Event {
    id: Option<String>,
    event_type: Option<String>,
    data: String,
}

/// Parses an event stream (enough of the WHATWG rules for our encoder's output).
fn events(text: &str) -> Vec<Event> {
    let mut events = Vec::new();
    let mut current = Event::default();
    let mut has_data = false;
    for line in text.split('\n') {
        if line.is_empty() {
            if has_data {
                events.push(std::mem::take(&mut current));
            }
            current = Event::default();
            has_data = false;
        } else if let Some(id) = line.strip_prefix("id:") {
            current.id = Some(id.to_owned());
        } else if let Some(kind) = line.strip_prefix("event:") {
            current.event_type = Some(kind.to_owned());
        } else if let Some(data) = line.strip_prefix("data:") {
            if has_data {
                current.data.push('\n');
            }
            current.data.push_str(data);
            has_data = true;
        }
    }
    events
}

/// Reads `url` with curl for at most `seconds`, returning what arrived.
fn curl(url: &str, extra: &[&str], seconds: u32) -> String {
    let output = Command::new("curl")
        .args(["-sN", "--max-time", &seconds.to_string()])
        .args(extra)
        .arg(url)
        .output()
        .expect("curl must be installed");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn start(config: &str) -> (Zilla, u16) {
    let port = e2e_tests::free_port();
    let env = [
        ("PORT", port.to_string()),
        ("KAFKA_BOOTSTRAP", kafka::bootstrap().to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    (Zilla::start(Path::new(config), &env), port)
}

fn ticker(symbol: &str, tag: &str, value: &str) -> Record {
    Record::new(value).with_key(symbol).with_header("tag", tag)
}

#[test]
fn records_reach_curl_filtered_and_resume_exactly() {
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
    let (_zilla, port) = start("tests/configs/sse.kafka.direct.yaml");
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
            "last-event-id: AgQABAIC",
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

//! The real Kafka broker of the end-to-end tests works: records produced with keys and
//! headers by the Java console producer come back, in order, through the console consumer.

use std::time::Duration;

use e2e_tests::kafka::{self, Record};

#[test]
fn records_with_keys_and_headers_round_trip_through_the_broker() {
    let address = kafka::bootstrap();
    assert_eq!(kafka::bootstrap(), address, "one broker per test process");

    let topic = kafka::unique_topic("kafka-broker");
    kafka::create_topic(&topic, 1, &[("cleanup.policy", "delete")]);
    let listed = kafka::tool(&["topics", "--bootstrap-server", address, "--list"]);
    assert!(
        listed.lines().any(|line| line == topic),
        "{topic} not in {listed:?}"
    );

    let records = vec![
        Record::new("first value")
            .with_key("key-1")
            .with_header("trace", "a1"),
        Record::new("second: with spaces, tabs\tand ü")
            .with_key("key-2")
            .with_header("trace", "b2")
            .with_header("content-type", "text/plain"),
        Record::new("third, without key").with_header("trace", "c3"),
        Record::new("fourth, without headers").with_key("key-4"),
        Record::tombstone("key-1"),
    ];
    kafka::produce(&topic, records.clone());

    let consumed = kafka::consume_records(&topic, records.len(), Duration::from_secs(15));
    assert_eq!(consumed, records);

    let values = kafka::consume(&topic, 2, Duration::from_secs(15));
    assert_eq!(values, ["first value", "second: with spaces, tabs\tand ü"]);
}

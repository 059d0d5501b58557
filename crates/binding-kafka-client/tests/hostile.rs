//! The client against hostile or broken brokers (issue 12, item 4), scripted: metadata
//! claiming too many partitions, responses announced large over many node ids, fetches that
//! never advance, and broken answers — bounded, backed off and reported.

mod script;
mod support;

use std::sync::Arc;
use std::time::Duration;

use binding_kafka_client::config::Limits;
use script::{Script, consume, consume_for, warnings};
use support::Outcome;

fn refused_reason(outcome: Outcome) -> String {
    match outcome {
        Outcome::Refused(_, reason) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_topic_with_more_partitions_than_allowed_is_refused_and_reported() {
    let script = Arc::new(Script {
        partitions: 20_000,
        ..Script::default()
    });
    let ((values, outcome), warned) = warnings(|| consume(script, usize::MAX));
    assert!(values.is_empty());
    let reason = refused_reason(outcome);
    assert!(
        reason.contains("20000 partitions") && reason.contains("maxTopicPartitions"),
        "{reason}"
    );
    let lines: Vec<&String> = warned
        .iter()
        .filter(|l| l.contains("maxTopicPartitions"))
        .collect();
    assert_eq!(lines.len(), 1, "{warned:?}");
    for part in ["scripted:9092", "topic=t", "count=20000", "limit=10000"] {
        assert!(lines[0].contains(part), "{part} in {}", lines[0]);
    }
}

#[test]
fn a_metadata_response_listing_more_partitions_than_allowed_is_refused() {
    let script = Arc::new(Script {
        other_topics: vec![("u".into(), 1000)],
        limits: Limits {
            partitions: 1000,
            ..Limits::default()
        },
        ..Script::default()
    });
    let ((_, outcome), warned) = warnings(|| consume(script, usize::MAX));
    let reason = refused_reason(outcome);
    assert!(
        reason.contains("1001 partitions for topic 'u'") && reason.contains("maxPartitions"),
        "{reason}"
    );
    assert!(
        warned
            .iter()
            .any(|l| l.contains("maxPartitions") && l.contains("count=1001")),
        "{warned:?}"
    );
}

#[test]
fn many_node_ids_do_not_multiply_what_responses_may_hold() {
    // 16 partitions, each led by another node id (all one address); every fetch is answered
    // by a response announcing 8 MiB that never completes. The worker's connections may
    // receive 16 MiB of responses at once, plus a read window (1 MiB) each: not 16 × 8 MiB.
    let script = Arc::new(Script {
        partitions: 16,
        nodes: 16,
        fetch_announces: Some(8 << 20),
        limits: Limits {
            buffered_bytes: 16 << 20,
            ..Limits::default()
        },
        ..Script::default()
    });
    let (_, outcome) = consume_for(script.clone(), usize::MAX, Duration::from_secs(3));
    assert!(matches!(outcome, Outcome::Timeout), "{outcome:?}");
    let sent = *script.sent.lock().expect("lock");
    assert!(
        sent > 16 << 20 && sent <= (16 << 20) + 17 * (1 << 20),
        "{} MiB accepted",
        sent >> 20
    );
}

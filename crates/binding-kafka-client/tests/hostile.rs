//! The client against hostile or broken brokers (issue 12, item 4), scripted: metadata
//! claiming too many partitions, responses announced large over many node ids, fetches that
//! never advance, and broken answers — bounded, backed off and reported.

mod script;
mod support;

use std::sync::Arc;
use std::time::Duration;

use binding_api::ext::kafka::KafkaBeginEx;
use binding_kafka_client::config::Limits;
use binding_kafka_client::proto::fetch::PartitionData;
use bytes::Bytes;
use script::{
    RawFetch, Script, batch, client, consume, consume_for, partition, partition_at, scripted,
    warnings,
};
use support::{Outcome, merged, open, read, run};

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
        raw_fetch: Some(RawFetch::Announce(8 << 20)),
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

/// Reads a merged stream of `t` for `time`, past its caught-up flush: the records' values,
/// the fetches the broker saw, and the warnings logged.
fn read_for(script: Arc<Script>, time: Duration) -> (Vec<String>, usize, Vec<String>) {
    let counted = script.clone();
    let (values, warned) = warnings(|| {
        run(|worker| async move {
            let client = client(script);
            let mut stream = open(&client, &worker, KafkaBeginEx::Merged(merged("t")));
            let mut out = Vec::new();
            read(&mut stream, 65536, usize::MAX, false, time, &mut out).await;
            out.iter().map(|r| r.value_str()).collect::<Vec<_>>()
        })
    });
    let fetches = *counted.fetches.lock().expect("lock");
    (values, fetches, warned)
}

/// Within 2.5 s a partition that never advances is fetched a handful of times (100 ms
/// doubling: 6 at most), not thousands, and the cause is warned about once.
fn backs_off(script: Arc<Script>, cause: &str) -> Vec<String> {
    let (values, fetches, warned) = read_for(script, Duration::from_millis(2500));
    assert!(fetches <= 8, "{fetches} fetches");
    let lines = warned.iter().filter(|l| l.contains(cause)).count();
    assert_eq!(lines, 1, "'{cause}' in {warned:?}");
    assert!(
        warned
            .iter()
            .any(|l| l.contains("scripted:9092") && l.contains("topic=t")),
        "{warned:?}"
    );
    values
}

#[test]
fn an_empty_answer_below_the_high_watermark_backs_off() {
    let script = scripted(|_, o| partition(0, Bytes::new(), o + 10));
    backs_off(script, "no records though the high watermark is ahead");
}

#[test]
fn the_same_stale_batch_again_backs_off() {
    let script = scripted(|_, _| partition(0, batch(0, &["a", "b"]), 10));
    let values = backs_off(script, "only records before the fetch offset");
    assert_eq!(values, ["a", "b"], "delivered once");
}

#[test]
fn an_incomplete_batch_only_backs_off() {
    let script = scripted(|_, o| {
        let whole = batch(o, &["a", "b"]);
        partition(0, whole.slice(..whole.len() - 3), o + 2)
    });
    backs_off(
        script,
        "only records before the fetch offset or an incomplete batch",
    );
}

#[test]
fn another_partitions_data_is_not_read_and_backs_off() {
    let script = scripted(|_, o| partition_at(1, 0, batch(o, &["x"]), o + 1));
    let values = backs_off(script, "no answer for the partition");
    assert!(values.is_empty(), "{values:?}");
}

#[test]
fn offsets_near_the_end_of_i64_back_off_without_overflow() {
    // Records at i64::MAX - 1 and i64::MAX, the high watermark at i64::MAX, answered at once
    // whatever the offset asked.
    let script = scripted(|_, _| {
        let mut data: PartitionData = partition(0, batch(i64::MAX - 1, &["y", "z"]), i64::MAX);
        data.last_stable_offset = i64::MAX;
        data
    });
    let values = backs_off(script, "nothing new, answered without waiting");
    assert_eq!(values, ["y"], "none at or past the high watermark");
}

#[test]
fn a_corrupt_batch_is_warned_about_once_per_interval() {
    let script = scripted(|_, _| {
        let mut bad = batch(0, &["x"]).to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        partition(0, Bytes::from(bad), 1)
    });
    let (reasons, warned) = warnings(|| {
        run(|worker| async move {
            let client = client(script);
            let mut reasons = Vec::new();
            for _ in 0..3 {
                let mut stream = open(&client, &worker, KafkaBeginEx::Merged(merged("t")));
                let mut out = Vec::new();
                let outcome = read(
                    &mut stream,
                    65536,
                    1,
                    true,
                    Duration::from_secs(10),
                    &mut out,
                );
                reasons.push(refused_reason(outcome.await));
            }
            reasons
        })
    });
    assert!(reasons.iter().all(|r| r.contains("CRC32C")), "{reasons:?}");
    let lines: Vec<&String> = warned.iter().filter(|l| l.contains("bad CRC")).collect();
    assert_eq!(lines.len(), 1, "{warned:?}");
    assert!(lines[0].contains("scripted:9092"), "{}", lines[0]);
}

#[test]
fn an_unparseable_fetch_response_is_warned_about_and_backed_off() {
    // A response promising 2^31 - 1 topics in a few bytes.
    let body = Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff]);
    let script = Arc::new(Script {
        raw_fetch: Some(RawFetch::Body(body)),
        ..Script::default()
    });
    let (_, fetches, warned) = read_for(script, Duration::from_millis(2500));
    assert!(fetches <= 8, "{fetches} fetches");
    let lines = warned
        .iter()
        .filter(|l| l.contains("unparseable fetch response"))
        .count();
    assert_eq!(lines, 1, "{warned:?}");
}

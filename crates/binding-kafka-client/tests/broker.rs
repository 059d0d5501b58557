//! The kafka client against a real Kafka broker: codecs from the Java producer and kcat,
//! headers, tombstones, eight partitions, filters, start positions and failures.

mod support;

use std::process::Command;
use std::time::Duration;

use binding_api::ext::kafka::{
    Condition, Filter, KafkaBeginEx, KafkaFetchBeginEx, KafkaResetEx, StartPosition,
};
use bytes::Bytes;
use e2e_tests::kafka::{Record, create_topic, produce, unique_topic};
use support::{Outcome, Rec, bootstrap, client, merged, open, produce_with, read, run};

const T: Duration = Duration::from_secs(30);

fn read_all(topic: &str, begin: KafkaBeginEx, window: u32) -> (Vec<Rec>, Outcome) {
    let servers = vec![bootstrap()];
    run(|worker| async move {
        let client = client(servers);
        let mut stream = open(&client, &worker, begin);
        let mut out = Vec::new();
        let outcome = read(&mut stream, window, usize::MAX, true, T, &mut out).await;
        let _ = topic;
        (out, outcome)
    })
}

fn values(records: &[Rec]) -> Vec<String> {
    records.iter().map(Rec::value_str).collect()
}

#[test]
fn every_codec_from_the_java_producer() {
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = unique_topic(&format!("codec-{codec}"));
        create_topic(&topic, 1, &[]);
        let lines: Vec<String> = (0..200).map(|i| format!("k{i}\tvalue-{i}")).collect();
        produce_with(
            &topic,
            &lines,
            &[
                &format!("compression.type={codec}"),
                "linger.ms=50",
                "batch.size=65536",
            ],
        );
        let (records, outcome) = read_all(&topic, KafkaBeginEx::Merged(merged(&topic)), 64 * 1024);
        assert!(
            matches!(outcome, Outcome::CaughtUp(_)),
            "{codec}: {outcome:?}"
        );
        let want: Vec<String> = (0..200).map(|i| format!("value-{i}")).collect();
        assert_eq!(values(&records), want, "{codec}");
        let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (0..200).collect::<Vec<i64>>(), "{codec}");
    }
}

#[test]
fn every_codec_from_kcat() {
    if Command::new("kcat").arg("-V").output().is_err() {
        eprintln!("kcat is not installed: skipped (apt-get install kcat)");
        return;
    }
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = unique_topic(&format!("kcat-{codec}"));
        create_topic(&topic, 1, &[]);
        let input: String = (0..100).map(|i| format!("k{i}:kcat-{i}\n")).collect();
        let mut child = Command::new("kcat")
            .args([
                "-P",
                "-b",
                e2e_tests::kafka::bootstrap(),
                "-t",
                &topic,
                "-K:",
            ])
            .args(["-z", codec, "-X", "linger.ms=50"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("kcat");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
        assert!(child.wait().expect("kcat").success(), "kcat {codec}");
        let (records, outcome) = read_all(&topic, KafkaBeginEx::Merged(merged(&topic)), 65536);
        assert!(
            matches!(outcome, Outcome::CaughtUp(_)),
            "{codec}: {outcome:?}"
        );
        let want: Vec<String> = (0..100).map(|i| format!("kcat-{i}")).collect();
        assert_eq!(values(&records), want, "{codec}");
        assert_eq!(records[5].key.as_deref(), Some("k5"));
    }
}

#[test]
fn headers_keys_and_tombstones() {
    let topic = unique_topic("headers");
    create_topic(&topic, 1, &[]);
    produce(
        &topic,
        [
            Record::new("one")
                .with_key("a")
                .with_header("h", "1")
                .with_header("x", "y")
                .with_header("h", "2"),
            Record::tombstone("a"),
            Record::new("").with_key("b"),
            Record::new("no key"),
        ],
    );
    let (records, outcome) = read_all(&topic, KafkaBeginEx::Merged(merged(&topic)), 65536);
    assert!(matches!(outcome, Outcome::CaughtUp(_)), "{outcome:?}");
    assert_eq!(records.len(), 4);
    let h = |n: &str, v: &str| (n.to_owned(), Some(v.to_owned()));
    assert_eq!(
        records[0].headers,
        vec![h("h", "1"), h("x", "y"), h("h", "2")]
    );
    assert_eq!(records[0].key.as_deref(), Some("a"));
    assert_eq!(records[1].value, None, "a tombstone");
    assert_eq!(records[2].value, Some(Vec::new()), "empty is not null");
    assert_eq!(records[3].key, None);
}

#[test]
fn eight_partitions_merged_with_progress_and_filters() {
    let topic = unique_topic("eight");
    create_topic(&topic, 8, &[]);
    let records: Vec<Record> = (0..80)
        .map(|i| {
            Record::new(format!("v{i}"))
                .with_key(format!("k{i}"))
                .with_header("parity", if i % 2 == 0 { "even" } else { "odd" })
        })
        .collect();
    produce(&topic, records);
    let (got, outcome) = read_all(&topic, KafkaBeginEx::Merged(merged(&topic)), 65536);
    let Outcome::CaughtUp(progress) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(got.len(), 80);
    assert_eq!(progress.partitions.len(), 8);
    let total: i64 = progress.partitions.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 80);
    for p in 0..8 {
        let offsets: Vec<i64> = got
            .iter()
            .filter(|r| r.partition == p)
            .map(|r| r.offset)
            .collect();
        assert_eq!(offsets, (0..offsets.len() as i64).collect::<Vec<_>>());
    }
    // Each record's progress has advanced its own partition past it.
    for r in &got {
        let progress = r.progress.as_ref().expect("merged records carry progress");
        assert_eq!(progress.get(r.partition), Some(r.offset + 1));
    }
    // key k3 OR (parity even AND key k10)
    let mut begin = merged(&topic);
    begin.filters = vec![
        Filter {
            conditions: vec![Condition::Key(Bytes::from_static(b"k3"))],
        },
        Filter {
            conditions: vec![
                Condition::Header {
                    name: Bytes::from_static(b"parity"),
                    value: Bytes::from_static(b"even"),
                },
                Condition::Key(Bytes::from_static(b"k10")),
            ],
        },
    ];
    let (got, outcome) = read_all(&topic, KafkaBeginEx::Merged(begin), 65536);
    assert!(matches!(outcome, Outcome::CaughtUp(_)), "{outcome:?}");
    let mut v = values(&got);
    v.sort();
    assert_eq!(v, vec!["v10", "v3"]);
}

#[test]
fn start_positions_and_fetch_stream() {
    let topic = unique_topic("starts");
    create_topic(&topic, 1, &[]);
    produce(&topic, (0..10).map(|i| format!("r{i}")));
    let fetch = |start| {
        KafkaBeginEx::Fetch(KafkaFetchBeginEx {
            topic: topic.clone(),
            partition: 0,
            start,
            ..Default::default()
        })
    };
    let (got, _) = read_all(&topic, fetch(StartPosition::Offset(7)), 65536);
    assert_eq!(values(&got), vec!["r7", "r8", "r9"]);
    let (got, outcome) = read_all(&topic, fetch(StartPosition::Latest), 65536);
    assert!(got.is_empty() && matches!(outcome, Outcome::CaughtUp(_)));
    let (got, _) = read_all(&topic, fetch(StartPosition::Timestamp(0)), 65536);
    assert_eq!(got.len(), 10);
    let (got, _) = read_all(&topic, fetch(StartPosition::Timestamp(i64::MAX / 2)), 65536);
    assert!(got.is_empty());
}

#[test]
fn a_value_larger_than_the_window_is_split() {
    let topic = unique_topic("large");
    create_topic(&topic, 1, &[]);
    let big = "x".repeat(100_000);
    produce(&topic, [big.clone(), "small".to_owned()]);
    let (got, outcome) = read_all(&topic, KafkaBeginEx::Merged(merged(&topic)), 16 * 1024);
    assert!(matches!(outcome, Outcome::CaughtUp(_)), "{outcome:?}");
    assert_eq!(got[0].value_str(), big);
    assert!(got[0].frames >= 7, "{} frames", got[0].frames);
    assert_eq!(got[1].value_str(), "small");
    assert_eq!(got[1].frames, 1);
}

#[test]
fn unknown_topic_is_refused() {
    let topic = unique_topic("missing");
    let (_, outcome) = read_all(&topic, KafkaBeginEx::Merged(merged(&topic)), 65536);
    match outcome {
        Outcome::Refused(Some(KafkaResetEx::UnknownTopic { topic: t }), reason) => {
            assert_eq!(t, topic);
            assert!(reason.contains("unknown topic"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn offset_out_of_range_reports_earliest_and_latest() {
    let topic = unique_topic("range");
    create_topic(&topic, 1, &[]);
    produce(&topic, ["a", "b", "c"]);
    let begin = KafkaBeginEx::Fetch(KafkaFetchBeginEx {
        topic: topic.clone(),
        partition: 0,
        start: StartPosition::Offset(1000),
        ..Default::default()
    });
    let (_, outcome) = read_all(&topic, begin, 65536);
    match outcome {
        Outcome::Refused(Some(ext), _) => assert_eq!(
            ext,
            KafkaResetEx::OffsetOutOfRange {
                partition: 0,
                requested: 1000,
                earliest: 0,
                latest: 3
            }
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn live_records_arrive_after_the_flush() {
    let topic = unique_topic("live");
    create_topic(&topic, 2, &[]);
    produce(&topic, ["before"]);
    let servers = vec![bootstrap()];
    let topic2 = topic.clone();
    let got = run(|worker| async move {
        let client = client(servers);
        let mut stream = open(&client, &worker, KafkaBeginEx::Merged(merged(&topic2)));
        let mut out = Vec::new();
        let outcome = read(&mut stream, 65536, usize::MAX, true, T, &mut out).await;
        assert!(matches!(outcome, Outcome::CaughtUp(_)), "{outcome:?}");
        let producer = tokio::task::spawn_blocking(move || produce(&topic2, ["after"]));
        let outcome = read(&mut stream, 0, 2, false, T, &mut out).await;
        producer.await.expect("producer");
        assert!(matches!(outcome, Outcome::Enough), "{outcome:?}");
        out
    });
    assert_eq!(values(&got), vec!["before", "after"]);
}

#[test]
fn a_merged_stream_picks_up_partitions_added_later() {
    let topic = unique_topic("grow");
    create_topic(&topic, 1, &[]);
    produce(&topic, ["first"]);
    let servers = vec![bootstrap()];
    let t = topic.clone();
    let got = run(|worker| async move {
        let client = client(servers);
        let mut stream = open(&client, &worker, KafkaBeginEx::Merged(merged(&t)));
        let mut out = Vec::new();
        let outcome = read(&mut stream, 65536, usize::MAX, true, T, &mut out).await;
        assert!(matches!(outcome, Outcome::CaughtUp(_)), "{outcome:?}");
        let grow = tokio::task::spawn_blocking(move || {
            e2e_tests::kafka::tool(&[
                "topics",
                "--bootstrap-server",
                e2e_tests::kafka::bootstrap(),
                "--alter",
                "--topic",
                &t,
                "--partitions",
                "3",
            ]);
            // Keys spread records over the three partitions.
            let records: Vec<Record> = (0..30)
                .map(|i| Record::new(format!("later-{i}")).with_key(format!("key-{i}")))
                .collect();
            produce(&t, records);
        });
        let outcome = read(&mut stream, 0, 31, false, Duration::from_secs(60), &mut out).await;
        grow.await.expect("grow");
        assert!(matches!(outcome, Outcome::Enough), "{outcome:?}");
        out
    });
    let partitions: std::collections::BTreeSet<i32> = got.iter().map(|r| r.partition).collect();
    assert_eq!(partitions.len(), 3, "{partitions:?}");
    let last = got
        .last()
        .and_then(|r| r.progress.clone())
        .expect("progress");
    assert_eq!(last.partitions.len(), 3);
}

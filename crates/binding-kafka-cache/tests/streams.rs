//! The cache bindings driven with streams: a scripted kafka client below, subscribers above.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use binding_api::binding::Binding;
use binding_api::ext::ResetEx;
use binding_api::ext::kafka::{Condition, Filter, KafkaGapEx, KafkaResetEx, StartPosition};
use binding_api::frame::{Reason, ReasonKind, Reset};
use binding_kafka_cache::config::{
    CacheOptions, CleanupPolicy, DefaultOffset, RetentionOverrides, TopicOptions,
};
use binding_kafka_cache::{CacheServer, cache::Cache};
use bytes::Bytes;
use support::*;

fn server(options: CacheOptions, exit: Arc<Scripted>) -> (Arc<dyn Binding>, Arc<Cache>) {
    let server = CacheServer::new("cache", options, exit);
    let cache = server.cache().clone();
    (Arc::new(server), cache)
}

/// Topic `t` in segments of one record each, the whole cache capped at 600 bytes (three
/// records of these tests): evictions come quickly.
fn one_record_segments_capped_at_600_bytes() -> CacheOptions {
    let overrides = RetentionOverrides {
        segment_bytes: Some(1),
        ..RetentionOverrides::default()
    };
    CacheOptions {
        max_bytes: 3 * 200,
        topics: vec![TopicOptions {
            name: "t".into(),
            default_offset: DefaultOffset::Historical,
            overrides,
        }],
        ..CacheOptions::default()
    }
}

#[test]
fn one_upstream_for_many_subscribers_historical_then_live() {
    run(|worker| async move {
        let (kafka, mut upstreams) = Scripted::new();
        let (cache_server, cache) = server(CacheOptions::default(), kafka.clone());
        let mut subs: Vec<_> = (0..50)
            .map(|_| {
                subscribe(
                    &cache_server,
                    &worker,
                    "items",
                    StartPosition::Earliest,
                    vec![],
                )
            })
            .collect();
        let mut up = upstreams.recv().await.unwrap();
        let begin = upstream_begin(&up);
        assert_eq!(begin.default_start, StartPosition::Earliest);
        reply_begin(&mut up, "items", &[0, 1]);
        send(&mut up, 0, 0, None, "a");
        send(&mut up, 1, 0, None, "b");
        caught_up(&mut up, &[(0, 1), (1, 1)]);
        for sub in &mut subs {
            let seen = read(sub, |s| matches!(s, Seen::CaughtUp(_))).await;
            assert_eq!(seen[0], Seen::Begin(vec![0, 1]));
            let mut got = offsets(&seen);
            got.sort_unstable();
            assert_eq!(got, vec![(0, 0), (1, 0)]);
            assert_eq!(seen.last(), Some(&Seen::CaughtUp(vec![(0, 1), (1, 1)])));
        }
        send(&mut up, 1, 1, None, "c");
        for sub in &mut subs {
            let seen = read(sub, |s| matches!(s, Seen::Record { .. })).await;
            assert_eq!(
                seen,
                vec![Seen::Record {
                    partition: 1,
                    offset: 1,
                    value: "c".into(),
                    progress: vec![(0, 1), (1, 2)],
                }]
            );
        }
        assert_eq!(kafka.count(), 1);
        assert_eq!(
            cache
                .stats()
                .upstream_streams
                .load(std::sync::atomic::Ordering::SeqCst),
            1
        );
    });
}

#[test]
fn start_positions_and_filters() {
    run(|worker| async move {
        let (kafka, mut upstreams) = Scripted::new();
        let (cache_server, _) = server(CacheOptions::default(), kafka);
        let mut first = subscribe(&cache_server, &worker, "t", StartPosition::Earliest, vec![]);
        let mut up = upstreams.recv().await.unwrap();
        reply_begin(&mut up, "t", &[0]);
        for (o, k) in ["a", "b", "a"].iter().enumerate() {
            send(&mut up, 0, o as i64, Some(k), k);
        }
        caught_up(&mut up, &[(0, 3)]);
        read(&mut first, |s| matches!(s, Seen::CaughtUp(_))).await;
        let key_a = Filter {
            conditions: vec![Condition::Key(Bytes::from_static(b"a"))],
        };
        let mut filtered = subscribe(
            &cache_server,
            &worker,
            "t",
            StartPosition::Earliest,
            vec![key_a],
        );
        let seen = read(&mut filtered, |s| matches!(s, Seen::CaughtUp(_))).await;
        assert_eq!(offsets(&seen), vec![(0, 0), (0, 2)]);
        assert_eq!(seen.last(), Some(&Seen::CaughtUp(vec![(0, 3)])));
        let mut latest = subscribe(&cache_server, &worker, "t", StartPosition::Latest, vec![]);
        let seen = read(&mut latest, |s| matches!(s, Seen::CaughtUp(_))).await;
        assert_eq!(offsets(&seen), vec![]);
        let mut at = subscribe(
            &cache_server,
            &worker,
            "t",
            StartPosition::Offset(1),
            vec![],
        );
        let seen = read(&mut at, |s| matches!(s, Seen::CaughtUp(_))).await;
        assert_eq!(offsets(&seen), vec![(0, 1), (0, 2)]);
        let mut ts = subscribe(
            &cache_server,
            &worker,
            "t",
            StartPosition::Timestamp(2),
            vec![],
        );
        let seen = read(&mut ts, |s| matches!(s, Seen::CaughtUp(_))).await;
        assert_eq!(offsets(&seen), vec![(0, 2)]);
    });
}

#[test]
fn slow_subscriber_gets_a_gap_and_never_holds_the_upstream() {
    run(|worker| async move {
        let (kafka, mut upstreams) = Scripted::new();
        let options = one_record_segments_capped_at_600_bytes();
        let (cache_server, _) = server(options, kafka);
        let mut slow = subscribe_with(
            &cache_server,
            &worker,
            "t",
            StartPosition::Earliest,
            vec![],
            1,
        );
        let mut up = upstreams.recv().await.unwrap();
        reply_begin(&mut up, "t", &[0]);
        send(&mut up, 0, 0, None, "x");
        let seen = read(&mut slow, |s| matches!(s, Seen::Record { .. })).await;
        assert_eq!(offsets(&seen), vec![(0, 0)]);
        // The slow subscriber reads nothing while ten records arrive; the cap keeps three.
        for o in 1..=10 {
            send(&mut up, 0, o, None, "x");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        caught_up(&mut up, &[(0, 11)]);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let seen = read(&mut slow, |s| matches!(s, Seen::CaughtUp(_))).await;
        let gap = seen.iter().find_map(|s| match s {
            Seen::Gap(g) => Some(*g),
            _ => None,
        });
        let Some(KafkaGapEx {
            partition: 0,
            from,
            to,
        }) = gap
        else {
            panic!("expected a gap, saw {seen:?}");
        };
        // What was already handed out arrives, then the gap, then what the cache still holds.
        let expected: Vec<(i32, i64)> = (1..from).chain(to..=10).map(|o| (0, o)).collect();
        assert_eq!(offsets(&seen), expected);
        assert!(
            11 - to <= 6,
            "the cap (600 bytes) holds at most 6 records: {from}..{to}"
        );
        assert_eq!(seen.last(), Some(&Seen::CaughtUp(vec![(0, 11)])));
    });
}

#[test]
fn unknown_topic_is_refused_like_the_client() {
    run(|worker| async move {
        let (kafka, mut upstreams) = Scripted::new();
        let (cache_server, _) = server(CacheOptions::default(), kafka.clone());
        let mut sub = subscribe(
            &cache_server,
            &worker,
            "nope",
            StartPosition::Earliest,
            vec![],
        );
        let up = upstreams.recv().await.unwrap();
        up.refuse(Reset {
            reason: Reason::new(ReasonKind::Refused, "unknown topic"),
            ext: ResetEx::Kafka(KafkaResetEx::UnknownTopic {
                topic: "nope".into(),
            }),
        });
        let seen = read(&mut sub, |_| false).await;
        assert_eq!(
            seen,
            vec![Seen::Refused(Some(KafkaResetEx::UnknownTopic {
                topic: "nope".into()
            }))]
        );
        // A later subscriber asks Kafka again (the topic may exist by then).
        let _again = subscribe(
            &cache_server,
            &worker,
            "nope",
            StartPosition::Earliest,
            vec![],
        );
        assert!(upstreams.recv().await.is_some());
        assert_eq!(kafka.count(), 2);
    });
}

#[test]
fn kafka_down_at_start_then_recovers_and_resumes_after_a_failure() {
    run(|worker| async move {
        let (kafka, mut upstreams) = Scripted::new();
        let options = CacheOptions {
            bootstrap: vec!["t".into()],
            ..CacheOptions::default()
        };
        let (cache_server, _) = server(options, kafka.clone());
        cache_server.start(&worker);
        let down = upstreams.recv().await.unwrap();
        down.refuse(Reset::new(ReasonKind::Unreachable, "connection refused"));
        let mut sub = subscribe(&cache_server, &worker, "t", StartPosition::Earliest, vec![]);
        let mut up = upstreams.recv().await.unwrap();
        reply_begin(&mut up, "t", &[0]);
        send(&mut up, 0, 5, None, "a");
        let seen = read(&mut sub, |s| matches!(s, Seen::Record { .. })).await;
        assert_eq!(offsets(&seen), vec![(0, 5)]);
        // The stream fails mid-way: the cache reopens it where the log ends.
        let _ = up
            .output
            .abort(Reason::new(ReasonKind::ConnectionLost, "broker restarted"));
        let mut again = upstreams.recv().await.unwrap();
        let begin = upstream_begin(&again);
        assert_eq!(begin.partitions, vec![(0, StartPosition::Offset(6))]);
        reply_begin(&mut again, "t", &[0]);
        send(&mut again, 0, 6, None, "b");
        let seen = read(&mut sub, |s| matches!(s, Seen::Record { .. })).await;
        assert_eq!(offsets(&seen), vec![(0, 6)]);
        assert_eq!(kafka.count(), 3);
    });
}

/// Kafka never compacts the active segment: a late subscriber gets it whole (the newest per
/// key in older segments is the log's unit tests', which need segments closed for a while).
#[test]
fn compacted_topic_gives_a_late_subscriber_the_newest_segment_whole() {
    run(|worker| async move {
        let (kafka, mut upstreams) = Scripted::new();
        let overrides = RetentionOverrides {
            cleanup: Some(CleanupPolicy {
                compact: true,
                delete: false,
            }),
            ..RetentionOverrides::default()
        };
        let options = CacheOptions {
            topics: vec![TopicOptions {
                name: "state".into(),
                default_offset: DefaultOffset::Historical,
                overrides,
            }],
            ..CacheOptions::default()
        };
        let (cache_server, _) = server(options, kafka);
        let mut early = subscribe(
            &cache_server,
            &worker,
            "state",
            StartPosition::Earliest,
            vec![],
        );
        let mut up = upstreams.recv().await.unwrap();
        reply_begin(&mut up, "state", &[0]);
        for (o, (k, v)) in [("a", "1"), ("b", "1"), ("a", "2")].iter().enumerate() {
            send(&mut up, 0, o as i64, Some(k), v);
        }
        caught_up(&mut up, &[(0, 3)]);
        read(&mut early, |s| matches!(s, Seen::CaughtUp(_))).await;
        let mut late = subscribe(
            &cache_server,
            &worker,
            "state",
            StartPosition::Earliest,
            vec![],
        );
        let seen = read(&mut late, |s| matches!(s, Seen::CaughtUp(_))).await;
        assert_eq!(offsets(&seen), vec![(0, 0), (0, 1), (0, 2)]);
        send(&mut up, 0, 3, Some("b"), "2");
        let seen = read(&mut late, |s| matches!(s, Seen::Record { .. })).await;
        assert_eq!(offsets(&seen), vec![(0, 3)]);
    });
}

#[test]
fn two_workers_share_one_upstream() {
    let (kafka, mut upstreams) = Scripted::new();
    let (cache_server, _) = server(CacheOptions::default(), kafka.clone());
    let other = {
        let cache_server = cache_server.clone();
        std::thread::spawn(move || {
            run(|worker| async move {
                let mut sub =
                    subscribe(&cache_server, &worker, "t", StartPosition::Earliest, vec![]);
                let seen = read(&mut sub, |s| matches!(s, Seen::CaughtUp(_))).await;
                offsets(&seen)
            })
        })
    };
    let other_ref = &other;
    run(|worker| async move {
        let mut sub = subscribe(&cache_server, &worker, "t", StartPosition::Earliest, vec![]);
        let mut up = tokio::time::timeout(Duration::from_secs(5), upstreams.recv())
            .await
            .unwrap()
            .unwrap();
        reply_begin(&mut up, "t", &[0]);
        send(&mut up, 0, 0, None, "a");
        caught_up(&mut up, &[(0, 1)]);
        let seen = read(&mut sub, |s| matches!(s, Seen::CaughtUp(_))).await;
        assert_eq!(offsets(&seen), vec![(0, 0)]);
        // Keep the upstream open until the other worker has read.
        while !other_ref.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    assert_eq!(other.join().unwrap(), vec![(0, 0)]);
    assert_eq!(kafka.count(), 1);
}

#[test]
fn live_subscriber_gets_only_new_records() {
    run(|worker| async move {
        let (kafka, mut upstreams) = Scripted::new();
        let (cache_server, _) = server(CacheOptions::default(), kafka);
        let mut sub = subscribe(&cache_server, &worker, "t", StartPosition::Latest, vec![]);
        let mut up = upstreams.recv().await.unwrap();
        reply_begin(&mut up, "t", &[0]);
        caught_up(&mut up, &[(0, 0)]);
        let seen = read(&mut sub, |s| matches!(s, Seen::CaughtUp(_))).await;
        assert_eq!(seen.last(), Some(&Seen::CaughtUp(vec![(0, 0)])));
        send(&mut up, 0, 0, None, "live");
        let seen = read(&mut sub, |s| matches!(s, Seen::Record { .. })).await;
        assert_eq!(offsets(&seen), vec![(0, 0)]);
    });
}

#[test]
fn a_partition_gained_later_is_read_from_its_start() {
    run(|worker| async move {
        let (kafka, mut upstreams) = Scripted::new();
        let (cache_server, _) = server(CacheOptions::default(), kafka);
        let mut sub = subscribe(&cache_server, &worker, "t", StartPosition::Latest, vec![]);
        let mut up = upstreams.recv().await.unwrap();
        reply_begin(&mut up, "t", &[0]);
        caught_up(&mut up, &[(0, 0)]);
        read(&mut sub, |s| matches!(s, Seen::CaughtUp(_))).await;
        // The kafka client picked up partition 1 and reads it from its earliest offset.
        send(&mut up, 1, 0, None, "new");
        let seen = read(&mut sub, |s| matches!(s, Seen::Record { .. })).await;
        assert_eq!(offsets(&seen), vec![(1, 0)]);
        // A later subscriber sees both partitions and still gets its caught-up flush.
        let mut late = subscribe(&cache_server, &worker, "t", StartPosition::Earliest, vec![]);
        let seen = read(&mut late, |s| matches!(s, Seen::CaughtUp(_))).await;
        assert_eq!(seen[0], Seen::Begin(vec![0, 1]));
        assert_eq!(seen.last(), Some(&Seen::CaughtUp(vec![(0, 0), (1, 1)])));
    });
}

#[test]
fn a_topic_deleted_later_aborts_its_subscribers() {
    run(|worker| async move {
        let (kafka, mut upstreams) = Scripted::new();
        let (cache_server, _) = server(CacheOptions::default(), kafka);
        let mut sub = subscribe(&cache_server, &worker, "t", StartPosition::Earliest, vec![]);
        let mut up = upstreams.recv().await.unwrap();
        reply_begin(&mut up, "t", &[0]);
        caught_up(&mut up, &[(0, 0)]);
        read(&mut sub, |s| matches!(s, Seen::CaughtUp(_))).await;
        let _ = up
            .output
            .abort(Reason::new(ReasonKind::ConnectionLost, "lost"));
        let again = upstreams.recv().await.unwrap();
        again.refuse(Reset {
            reason: Reason::new(ReasonKind::Refused, "unknown topic"),
            ext: ResetEx::Kafka(KafkaResetEx::UnknownTopic { topic: "t".into() }),
        });
        let seen = read(&mut sub, |_| false).await;
        assert!(matches!(seen.last(), Some(Seen::Refused(_))), "{seen:?}");
    });
}

#[test]
fn an_offset_past_the_end_is_refused_as_out_of_range_and_one_just_ahead_is_not() {
    run(|worker| async move {
        let (kafka, mut upstreams) = Scripted::new();
        let (cache_server, _) = server(CacheOptions::default(), kafka);
        let mut early = subscribe(&cache_server, &worker, "t", StartPosition::Earliest, vec![]);
        let mut up = upstreams.recv().await.unwrap();
        reply_begin(&mut up, "t", &[0]);
        send(&mut up, 0, 0, None, "a");
        send(&mut up, 0, 1, None, "b");
        caught_up(&mut up, &[(0, 2)]);
        read(&mut early, |s| matches!(s, Seen::CaughtUp(_))).await;
        // An id from a topic deleted and recreated: offset 1000 of a partition that ends at 2.
        let mut beyond = subscribe(
            &cache_server,
            &worker,
            "t",
            StartPosition::Offset(1000),
            vec![],
        );
        // Another proxy's id, one record ahead of this cache: the record arrives in time.
        let mut ahead = subscribe(
            &cache_server,
            &worker,
            "t",
            StartPosition::Offset(3),
            vec![],
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        send(&mut up, 0, 2, None, "c");
        send(&mut up, 0, 3, None, "d");
        let seen = read(&mut ahead, |s| matches!(s, Seen::Record { .. })).await;
        assert_eq!(offsets(&seen), vec![(0, 3)]);
        let seen = read(&mut beyond, |s| matches!(s, Seen::Refused(_))).await;
        assert_eq!(
            seen.last(),
            Some(&Seen::Refused(Some(KafkaResetEx::OffsetOutOfRange {
                partition: 0,
                requested: 1000,
                earliest: 0,
                latest: 4,
            })))
        );
    });
}

#[test]
fn an_upstream_that_begins_then_fails_keeps_backing_off_until_it_delivers() {
    run(|worker| async move {
        let (kafka, mut upstreams) = Scripted::new();
        let options = CacheOptions {
            bootstrap: vec!["t".into()],
            ..CacheOptions::default()
        };
        let (cache_server, _) = server(options, kafka.clone());
        cache_server.start(&worker);
        let broken = Reason::new(ReasonKind::ProtocolViolation, "CRC32C mismatch");
        let mut opened = Vec::new();
        for _ in 0..5 {
            let mut up = upstreams.recv().await.unwrap();
            opened.push(std::time::Instant::now());
            reply_begin(&mut up, "t", &[0]);
            let _ = up.output.abort(broken.clone());
        }
        let gaps: Vec<Duration> = opened.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps[3] >= Duration::from_millis(700), "{gaps:?}");
        // A stream that delivers ends the streak.
        let mut up = upstreams.recv().await.unwrap();
        reply_begin(&mut up, "t", &[0]);
        send(&mut up, 0, 0, None, "a");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let failed = std::time::Instant::now();
        let _ = up.output.abort(broken);
        let _again = upstreams.recv().await.unwrap();
        assert!(failed.elapsed() < Duration::from_millis(400));
    });
}

#[test]
fn parked_filtered_subscribers_get_their_records_and_no_gap_for_others_evicted() {
    run(|worker| async move {
        let (kafka, mut upstreams) = Scripted::new();
        let options = one_record_segments_capped_at_600_bytes();
        let (cache_server, cache) = server(options, kafka);
        let key = |k: &'static str| Filter {
            conditions: vec![Condition::Key(Bytes::from_static(k.as_bytes()))],
        };
        let mut a = subscribe(
            &cache_server,
            &worker,
            "t",
            StartPosition::Earliest,
            vec![key("a")],
        );
        let mut b = subscribe(
            &cache_server,
            &worker,
            "t",
            StartPosition::Earliest,
            vec![key("b")],
        );
        let mut up = upstreams.recv().await.unwrap();
        reply_begin(&mut up, "t", &[0, 1]);
        caught_up(&mut up, &[(0, 0), (1, 0)]);
        for sub in [&mut a, &mut b] {
            let seen = read(sub, |s| matches!(s, Seen::CaughtUp(_))).await;
            assert_eq!(seen.last(), Some(&Seen::CaughtUp(vec![(0, 0), (1, 0)])));
        }
        // Both park; twenty records of another key go by (most evicted by the cap), then
        // one for a.
        let topic = cache.topic("t", &worker).unwrap();
        for _ in 0..100 {
            if topic.parked() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(topic.parked(), 2, "both caught up and parked");
        for o in 0..20 {
            send(&mut up, 0, o, Some("z"), "other");
        }
        send(&mut up, 1, 0, Some("a"), "for a");
        send(&mut up, 0, 20, Some("a"), "for a again");
        let seen = read(&mut a, |s| matches!(s, Seen::Record { offset: 20, .. })).await;
        assert!(
            !seen.iter().any(|s| matches!(s, Seen::Gap(_))),
            "records a did not match were evicted, not missed: {seen:?}"
        );
        let records: Vec<&Seen> = seen
            .iter()
            .filter(|s| matches!(s, Seen::Record { .. }))
            .collect();
        assert_eq!(records.len(), 2, "{seen:?}");
        for record in records {
            let Seen::Record {
                partition,
                offset,
                value,
                progress,
            } = record
            else {
                unreachable!()
            };
            assert!(value.starts_with("for a"));
            // The id carries the other partition past what a skipped, so a resume does
            // not scan it again.
            match (partition, offset) {
                (1, 0) => assert_eq!(progress, &vec![(0, 20), (1, 1)]),
                (0, 20) => assert_eq!(progress, &vec![(0, 21), (1, 1)]),
                other => panic!("unexpected record {other:?}"),
            }
        }
        // b saw nothing and stays parked.
        let seen = read(&mut b, |s| matches!(s, Seen::Record { .. })).await;
        assert!(offsets(&seen).is_empty(), "{seen:?}");
    });
}

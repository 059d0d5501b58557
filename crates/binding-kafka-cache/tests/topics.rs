//! Per-topic life of the cache with a scripted kafka client below it: retention from the
//! topic's Kafka config (a describe stream), options over it, idle topics dropped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use binding_api::binding::Binding;
use binding_api::ext::kafka::{
    KafkaBeginEx, KafkaConfigsEx, KafkaDataEx, KafkaReplyBeginEx, StartPosition,
};
use binding_api::ext::{BeginEx, DataEx};
use binding_api::frame::{Begin, Data, Frame};
use binding_api::stream::Acceptor;
use binding_kafka_cache::config::{
    CacheOptions, CleanupPolicy, DefaultOffset, RetentionOverrides, TopicOptions,
};
use binding_kafka_cache::{Cache, CacheServer};
use bytes::Bytes;
use support::{Scripted, Seen, caught_up, offsets, read, reply_begin, run, send, subscribe};

fn server(options: CacheOptions, exit: Arc<Scripted>) -> (Arc<dyn Binding>, Arc<Cache>) {
    let server = CacheServer::new("cache", options, exit);
    let cache = server.cache().clone();
    (Arc::new(server), cache)
}

/// Answers a describe stream with these configs.
fn describe_reply(describe: &mut Acceptor, configs: &[(&str, &str)]) {
    let BeginEx::Kafka(KafkaBeginEx::Describe(asked)) = &describe.begin.ext else {
        panic!("not a describe stream");
    };
    for name in ["cleanup.policy", "retention.ms", "retention.bytes"] {
        assert!(asked.configs.iter().any(|c| c == name), "{name} asked for");
    }
    let topic = asked.topic.clone();
    let reply = KafkaReplyBeginEx {
        topic,
        partitions: Vec::new(),
    };
    describe
        .output
        .begin(Begin {
            ext: BeginEx::Kafka(KafkaBeginEx::Reply(reply)),
        })
        .unwrap();
    let configs = KafkaConfigsEx {
        configs: configs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), Some((*v).to_owned())))
            .collect(),
    };
    describe
        .output
        .data(Data {
            payload: Bytes::new(),
            ext: DataEx::Kafka(KafkaDataEx::Configs(configs)),
        })
        .unwrap();
}

/// Waits until `check` holds, up to `within`.
async fn eventually(within: Duration, check: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

#[test]
fn a_topic_compacted_in_kafka_is_compacted_in_the_cache_unless_options_say_otherwise() {
    run(|worker| async move {
        let (kafka, mut upstreams) = Scripted::new();
        let overridden = TopicOptions {
            name: "plain".into(),
            default_offset: DefaultOffset::Historical,
            overrides: RetentionOverrides {
                cleanup: Some(CleanupPolicy {
                    compact: false,
                    delete: true,
                }),
                ..RetentionOverrides::default()
            },
        };
        let options = CacheOptions {
            topics: vec![overridden],
            ..CacheOptions::default()
        };
        let (cache_server, cache) = server(options, kafka.clone());
        let mut keep = Vec::new();
        for topic in ["state", "plain"] {
            let mut early = subscribe(
                &cache_server,
                &worker,
                topic,
                StartPosition::Earliest,
                vec![],
            );
            let mut up = upstreams.recv().await.unwrap();
            let mut describes = kafka.take_describes();
            assert_eq!(
                describes.len(),
                1,
                "one describe stream beside the merged one"
            );
            describe_reply(&mut describes[0], &[("cleanup.policy", "compact")]);
            reply_begin(&mut up, topic, &[0]);
            send(&mut up, 0, 0, Some("a"), "1");
            send(&mut up, 0, 1, Some("b"), "1");
            send(&mut up, 0, 2, Some("a"), "2");
            caught_up(&mut up, &[(0, 3)]);
            let early = read(&mut early, |s| matches!(s, Seen::CaughtUp(_))).await;
            let mut late = subscribe(
                &cache_server,
                &worker,
                topic,
                StartPosition::Earliest,
                vec![],
            );
            let seen = read(&mut late, |s| matches!(s, Seen::CaughtUp(_))).await;
            let retention = cache
                .topic(topic, &worker)
                .expect("routed")
                .lock()
                .retention;
            if topic == "state" {
                assert!(retention.compact && !retention.delete);
                assert_eq!(
                    offsets(&seen),
                    vec![(0, 0), (0, 1), (0, 2)],
                    "the newest segment is never compacted"
                );
            } else {
                assert!(!retention.compact && retention.delete, "the option wins");
                assert_eq!(offsets(&seen), vec![(0, 0), (0, 1), (0, 2)]);
            }
            assert_eq!(offsets(&early), offsets(&seen), "{topic}");
            // Kept open to the end of the test.
            keep.extend(describes);
        }
    });
}

#[test]
fn small_retention_bytes_from_kafka_evicts_and_a_late_subscriber_is_told() {
    run(|worker| async move {
        let (kafka, mut upstreams) = Scripted::new();
        let (cache_server, cache) = server(CacheOptions::default(), kafka.clone());
        let _first = subscribe(
            &cache_server,
            &worker,
            "small",
            StartPosition::Latest,
            vec![],
        );
        let mut up = upstreams.recv().await.unwrap();
        let mut describes = kafka.take_describes();
        describe_reply(&mut describes[0], &[("retention.bytes", "1000")]);
        reply_begin(&mut up, "small", &[0]);
        for offset in 0..40 {
            send(&mut up, 0, offset, None, "0123456789");
        }
        caught_up(&mut up, &[(0, 40)]);
        let topic = cache.topic("small", &worker).expect("routed");
        assert!(
            eventually(Duration::from_secs(3), || {
                let state = topic.lock();
                state
                    .partitions
                    .get(&0)
                    .and_then(|l| l.start())
                    .is_some_and(|s| s > 0)
            })
            .await,
            "evicted by retention.bytes"
        );
        let held = topic.lock().partitions[&0].bytes();
        assert!(held <= 1000 + 250, "held {held} bytes");
        let mut late = subscribe(
            &cache_server,
            &worker,
            "small",
            StartPosition::Offset(0),
            vec![],
        );
        let seen = read(&mut late, |s| matches!(s, Seen::CaughtUp(_))).await;
        let gap = seen.iter().find_map(|s| match s {
            Seen::Gap(g) => Some(*g),
            _ => None,
        });
        let gap = gap.expect("a gap flush");
        assert_eq!((gap.partition, gap.from), (0, 0));
        assert_eq!(offsets(&seen).first(), Some(&(0, gap.to)));
        assert_eq!(offsets(&seen).last(), Some(&(0, 39)));
        drop(describes);
    });
}

#[test]
fn an_idle_topic_is_dropped_and_a_bootstrap_topic_is_not() {
    run(|worker| async move {
        let (kafka, mut upstreams) = Scripted::new();
        let options = CacheOptions {
            bootstrap: vec!["boot".into()],
            idle_topic_ms: 300,
            ..CacheOptions::default()
        };
        let cache_server = CacheServer::new("cache", options, kafka.clone());
        let cache = cache_server.cache().clone();
        cache_server.start(&worker);
        let cache_server: Arc<dyn Binding> = Arc::new(cache_server);
        let mut boot = upstreams.recv().await.unwrap();
        reply_begin(&mut boot, "boot", &[0]);
        send(&mut boot, 0, 0, None, "b");

        let mut sub = subscribe(
            &cache_server,
            &worker,
            "items",
            StartPosition::Earliest,
            vec![],
        );
        let mut up = upstreams.recv().await.unwrap();
        reply_begin(&mut up, "items", &[0]);
        send(&mut up, 0, 0, None, "hello");
        caught_up(&mut up, &[(0, 1)]);
        let seen = read(&mut sub, |s| matches!(s, Seen::CaughtUp(_))).await;
        assert_eq!(offsets(&seen), vec![(0, 0)]);
        // Held by a subscriber: kept, however long.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(cache.stats().dropped_topics.load(Ordering::SeqCst), 0);
        let before = cache.stats().bytes.load(Ordering::SeqCst);
        drop(sub);
        assert!(
            eventually(Duration::from_secs(3), || {
                cache.stats().dropped_topics.load(Ordering::SeqCst) == 1
            })
            .await,
            "dropped once idle"
        );
        let ended = tokio::time::timeout(Duration::from_secs(1), up.input.frame()).await;
        assert!(
            matches!(ended, Ok(Some(Frame::End(_)))),
            "its upstream ended cleanly: {ended:?}"
        );
        let after = cache.stats().bytes.load(Ordering::SeqCst);
        assert!(after < before, "its log freed ({before} → {after})");
        assert_eq!(
            kafka.count(),
            2,
            "the bootstrap topic still has its one upstream"
        );

        // A later subscriber starts it afresh.
        let mut again = subscribe(
            &cache_server,
            &worker,
            "items",
            StartPosition::Earliest,
            vec![],
        );
        let mut up = upstreams.recv().await.unwrap();
        assert_eq!(kafka.count(), 3);
        reply_begin(&mut up, "items", &[0]);
        send(&mut up, 0, 0, None, "hello");
        send(&mut up, 0, 1, None, "again");
        caught_up(&mut up, &[(0, 2)]);
        let seen = read(&mut again, |s| matches!(s, Seen::CaughtUp(_))).await;
        assert_eq!(offsets(&seen), vec![(0, 0), (0, 1)]);
        assert!(
            tokio::time::timeout(Duration::from_millis(100), boot.input.frame())
                .await
                .is_err(),
            "the bootstrap upstream is still open"
        );
    });
}

//! The cache in front of the kafka client, against a real broker
//! (`e2e_tests::kafka::bootstrap()`): many subscribers, one upstream fetch per partition.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use binding_api::binding::Binding;
use binding_api::ext::kafka::StartPosition;
use binding_kafka_cache::{CacheOptions, CacheServer};
use e2e_tests::kafka::{Record, create_topic, produce, unique_topic};
use support::{collect, kafka_client, run, subscribe};

#[test]
fn a_thousand_subscribers_one_upstream_every_record() {
    const SUBSCRIBERS: usize = 1000;
    let topic = unique_topic("cache-fanout");
    create_topic(&topic, 2, &[]);
    produce(
        &topic,
        (0..40).map(|i| Record::new(format!("h{i}")).with_key(format!("k{i}"))),
    );
    let (got_all, upstreams) = run(|worker| {
        let topic = topic.clone();
        async move {
            let server = CacheServer::new("cache", CacheOptions::default(), kafka_client());
            let cache = server.cache().clone();
            let server: Arc<dyn Binding> = Arc::new(server);
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..SUBSCRIBERS {
                let sub = subscribe(&server, &worker, &topic, StartPosition::Earliest, vec![]);
                tasks.spawn_local(collect(sub, 40, true));
            }
            let mut subs = Vec::new();
            while let Some(done) = tasks.join_next().await {
                let (got, sub) = done.unwrap();
                let mut sorted = got.clone();
                sorted.sort_unstable();
                sorted.dedup();
                assert_eq!(sorted.len(), 40, "every historical record, once");
                subs.push(sub);
            }
            // Live records reach every subscriber too.
            let producer = {
                let topic = topic.clone();
                std::thread::spawn(move || {
                    produce(&topic, (0..10).map(|i| Record::new(format!("l{i}"))));
                })
            };
            for sub in subs {
                tasks.spawn_local(collect(sub, 10, false));
            }
            let mut all = true;
            while let Some(done) = tasks.join_next().await {
                all &= done.unwrap().0.len() >= 10;
            }
            producer.join().unwrap();
            (all, cache.stats().upstream_streams.load(Ordering::SeqCst))
        }
    });
    assert!(got_all);
    assert_eq!(
        upstreams, 1,
        "one upstream merged stream: one fetch per partition"
    );
}

/// Reads `sub` until its caught-up flush: the records' (key, value) and any gap.
async fn until_caught_up(
    sub: &mut binding_api::stream::Initiator,
) -> (Vec<(i32, i64)>, Option<binding_api::ext::kafka::KafkaGapEx>) {
    let seen = support::read(sub, |s| matches!(s, support::Seen::CaughtUp(_))).await;
    let gap = seen.iter().find_map(|s| match s {
        support::Seen::Gap(g) => Some(*g),
        _ => None,
    });
    assert!(
        matches!(seen.last(), Some(support::Seen::CaughtUp(_))),
        "caught up: {seen:?}"
    );
    (support::offsets(&seen), gap)
}

#[test]
fn retention_comes_from_the_topics_own_kafka_config() {
    let compacted = unique_topic("cache-compacted");
    create_topic(&compacted, 1, &[("cleanup.policy", "compact")]);
    produce(
        &compacted,
        (0..6).map(|i| Record::new(format!("v{i}")).with_key(format!("k{}", i % 2))),
    );
    let small = unique_topic("cache-small");
    create_topic(&small, 1, &[("retention.bytes", "2000")]);
    produce(
        &small,
        (0..60).map(|i| Record::new(format!("value-{i:04}"))),
    );
    run(|worker| async move {
        let server = CacheServer::new("cache", CacheOptions::default(), kafka_client());
        let cache = server.cache().clone();
        let server: Arc<dyn Binding> = Arc::new(server);

        // No cache option: compacted because Kafka says so.
        let mut first = subscribe(
            &server,
            &worker,
            &compacted,
            StartPosition::Earliest,
            vec![],
        );
        until_caught_up(&mut first).await;
        let mut late = subscribe(
            &server,
            &worker,
            &compacted,
            StartPosition::Earliest,
            vec![],
        );
        let (got, gap) = until_caught_up(&mut late).await;
        assert_eq!(
            got,
            (0..6).map(|o| (0, o)).collect::<Vec<_>>(),
            "every record: the newest segment is never compacted, as Kafka's active segment"
        );
        assert!(gap.is_none());
        assert!(
            cache
                .topic(&compacted, &worker)
                .expect("routed")
                .lock()
                .retention
                .compact
        );

        // retention.bytes 2000: the cache keeps about that much, a late reader from offset 0
        // is told of the gap, then reads on to the end.
        let mut first = subscribe(&server, &worker, &small, StartPosition::Latest, vec![]);
        until_caught_up(&mut first).await;
        let topic = cache.topic(&small, &worker).expect("routed");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while topic.lock().partitions.get(&0).and_then(|l| l.start()) == Some(0)
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let held = topic.lock().partitions.get(&0).map(|l| l.bytes());
        assert!(held.is_some_and(|b| b <= 2000), "held {held:?} bytes");
        let mut late = subscribe(&server, &worker, &small, StartPosition::Offset(0), vec![]);
        let (got, gap) = until_caught_up(&mut late).await;
        let gap = gap.expect("a gap flush");
        assert_eq!((gap.partition, gap.from), (0, 0));
        assert!(gap.to > 0);
        assert_eq!(got.first(), Some(&(0, gap.to)));
        assert_eq!(got.last(), Some(&(0, 59)));
    });
}

#[test]
fn a_live_subscriber_to_a_compacted_topic_gets_every_record() {
    let topic = unique_topic("cache-compacted-live");
    create_topic(&topic, 1, &[("cleanup.policy", "compact")]);
    produce(&topic, [Record::new("h0").with_key("AAPL")]);
    let got = run(|worker| {
        let topic = topic.clone();
        async move {
            let server: Arc<dyn Binding> = Arc::new(CacheServer::new(
                "cache",
                CacheOptions::default(),
                kafka_client(),
            ));
            let mut sub = subscribe(&server, &worker, &topic, StartPosition::Latest, vec![]);
            until_caught_up(&mut sub).await;
            // Ticks of two keys, each superseded by the next of its key. Produced while the
            // worker is held (the producer sends one record per request): the cache fetches
            // them together and appends them before the subscriber reads any, as under load.
            produce(
                &topic,
                (1..=20).map(|i| {
                    Record::new(format!("t{i}")).with_key(if i % 2 == 0 { "AAPL" } else { "MSFT" })
                }),
            );
            // Until the 20th record, or 5 s with nothing more.
            let records = std::cell::Cell::new(0);
            let seen = support::read(&mut sub, |s| {
                records.set(records.get() + usize::from(matches!(s, support::Seen::Record { .. })));
                records.get() == 20
            })
            .await;
            support::offsets(&seen)
        }
    });
    assert_eq!(got, (1..=20).map(|o| (0, o)).collect::<Vec<_>>());
}

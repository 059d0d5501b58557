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

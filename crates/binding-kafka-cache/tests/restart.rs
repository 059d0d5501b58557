//! The broker restarts while subscribers read through the cache: they see a delay, then
//! every record once, in order. Its own test binary, so that restarting the broker disturbs
//! no other test.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;
use std::sync::Arc;

use binding_api::binding::Binding;
use binding_api::ext::kafka::StartPosition;
use binding_kafka_cache::{CacheOptions, CacheServer};
use e2e_tests::kafka::{Record, create_topic, produce, unique_topic};
use support::{collect, kafka_client, run, subscribe};

#[test]
fn broker_restart_is_only_a_delay_for_subscribers() {
    let address = e2e_tests::kafka::bootstrap().to_owned();
    let status = Command::new(e2e_tests::kafka::script())
        .arg("status")
        .output()
        .unwrap();
    if !String::from_utf8_lossy(&status.stdout).contains(&address) {
        eprintln!("{address} was not started by scripts/kafka: cannot restart it, skipped");
        return;
    }
    let topic = unique_topic("cache-restart");
    create_topic(&topic, 2, &[]);
    produce(&topic, (0..20).map(|i| Record::new(format!("before-{i}"))));
    let t = topic.clone();
    let per_subscriber = run(|worker| async move {
        let server = CacheServer::new("cache", CacheOptions::default(), kafka_client());
        let cache = server.cache().clone();
        let server: Arc<dyn Binding> = Arc::new(server);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let sub = subscribe(&server, &worker, &t, StartPosition::Earliest, vec![]);
            tasks.spawn_local(collect(sub, 20, true));
        }
        let mut subs = Vec::new();
        let mut seen = Vec::new();
        while let Some(done) = tasks.join_next().await {
            let (got, sub) = done.unwrap();
            seen.push(got);
            subs.push(sub);
        }
        let restart = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let out = Command::new(e2e_tests::kafka::script())
                .args(["restart", &address])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "restart failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            eprintln!("restarted in {:?}", started.elapsed());
            produce(&t, (0..20).map(|i| Record::new(format!("after-{i}"))));
            eprintln!("produced after {:?}", started.elapsed());
        });
        for sub in subs {
            tasks.spawn_local(collect(sub, 20, false));
        }
        let mut i = 0;
        while let Some(done) = tasks.join_next().await {
            seen[i].extend(done.unwrap().0);
            i += 1;
        }
        restart.await.unwrap();
        let stats = cache.stats();
        eprintln!(
            "upstream streams {}, appended {}",
            stats
                .upstream_streams
                .load(std::sync::atomic::Ordering::Relaxed),
            stats.appended.load(std::sync::atomic::Ordering::Relaxed)
        );
        seen
    });
    for got in per_subscriber {
        assert_eq!(got.len(), 40, "every record once");
        for p in 0..2 {
            let offsets: Vec<i64> = got
                .iter()
                .filter(|(q, _)| *q == p)
                .map(|(_, o)| *o)
                .collect();
            let want: Vec<i64> = (0..offsets.len() as i64).collect();
            assert_eq!(
                offsets, want,
                "partition {p}: in order, no gap, no duplicate"
            );
        }
    }
}

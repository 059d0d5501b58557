//! The broker restarted in the middle of a fetch: the stream sees every record once, in
//! order, with no gap and no duplicate. Its own test binary, so that restarting the broker
//! disturbs no other test (cargo runs test binaries one at a time).

mod support;

use std::process::Command;
use std::time::Duration;

use binding_api::ext::kafka::KafkaBeginEx;
use e2e_tests::kafka::{create_topic, produce, unique_topic};
use support::{Outcome, bootstrap, client, merged, open, produce_with, read, run};

#[test]
fn broker_restarted_mid_fetch_loses_nothing_and_repeats_nothing() {
    let address = e2e_tests::kafka::bootstrap().to_owned();
    let status = Command::new(e2e_tests::kafka::script())
        .arg("status")
        .output()
        .expect("scripts/kafka status");
    if !String::from_utf8_lossy(&status.stdout).contains(&address) {
        eprintln!("{address} was not started by scripts/kafka: cannot restart it, skipped");
        return;
    }
    let topic = unique_topic("restart");
    create_topic(&topic, 2, &[]);
    produce(&topic, (0..40).map(|i| format!("before-{i}")));
    let servers = vec![bootstrap()];
    let t = topic.clone();
    let got = run(|worker| async move {
        let client = client(servers);
        let mut stream = open(&client, &worker, KafkaBeginEx::Merged(merged(&t)));
        let mut out = Vec::new();
        // A small window: the stream stops part way through the backlog.
        let outcome = read(
            &mut stream,
            64,
            15,
            false,
            Duration::from_secs(30),
            &mut out,
        )
        .await;
        assert!(matches!(outcome, Outcome::Enough), "{outcome:?}");
        let restart = tokio::task::spawn_blocking(move || {
            let out = Command::new(e2e_tests::kafka::script())
                .args(["restart", &address])
                .output()
                .expect("scripts/kafka restart");
            assert!(
                out.status.success(),
                "restart failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            // Right after a restart the broker answers NOT_LEADER_OR_FOLLOWER until it has
            // loaded its partitions: an idempotent producer that keeps retrying.
            let lines: Vec<String> = (0..40).map(|i| format!("k{i}\tafter-{i}")).collect();
            produce_with(
                &t,
                &lines,
                &[
                    "enable.idempotence=true",
                    "acks=all",
                    "retries=1000",
                    "retry.backoff.ms=200",
                ],
            );
        });
        // Keep reading while the broker goes and comes back.
        let outcome = read(
            &mut stream,
            64 * 1024,
            80,
            false,
            Duration::from_secs(120),
            &mut out,
        )
        .await;
        restart.await.expect("restart");
        assert!(matches!(outcome, Outcome::Enough), "{outcome:?}");
        out
    });
    assert_eq!(got.len(), 80);
    for p in 0..2 {
        let offsets: Vec<i64> = got
            .iter()
            .filter(|r| r.partition == p)
            .map(|r| r.offset)
            .collect();
        assert_eq!(
            offsets,
            (0..offsets.len() as i64).collect::<Vec<_>>(),
            "partition {p}"
        );
    }
    let mut values: Vec<String> = got.iter().map(|r| r.value_str()).collect();
    values.sort();
    values.dedup();
    assert_eq!(values.len(), 80);
}

//! Transactions from the Java producer: committed records delivered, aborted ones dropped
//! under read-committed (the default), and an open transaction holds delivery at the last
//! stable offset until it commits.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use binding_api::ext::kafka::{Isolation, KafkaBeginEx};
use e2e_tests::kafka::{create_topic, unique_topic};
use support::{Outcome, Rec, bootstrap, client, merged, open, read, run};

const T: Duration = Duration::from_secs(30);

fn txn_producer(topic: &str, steps: &[&str]) -> Child {
    let source = e2e_tests::repo_root().join("tests/java/TxnProducer.java");
    Command::new(e2e_tests::kafka::script())
        .arg("run")
        .arg(source)
        .args([e2e_tests::kafka::bootstrap(), topic])
        .args(steps)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("scripts/kafka run TxnProducer.java")
}

fn values(records: &[Rec]) -> Vec<String> {
    records.iter().map(Rec::value_str).collect()
}

fn read_all(topic: &str, isolation: Isolation) -> (Vec<Rec>, Outcome) {
    let servers = vec![bootstrap()];
    let mut begin = merged(topic);
    begin.isolation = isolation;
    run(|worker| async move {
        let client = client(servers);
        let mut stream = open(&client, &worker, KafkaBeginEx::Merged(begin));
        let mut out = Vec::new();
        let outcome = read(&mut stream, 65536, usize::MAX, true, T, &mut out).await;
        (out, outcome)
    })
}

#[test]
fn committed_and_aborted_transactions() {
    let topic = unique_topic("txn");
    create_topic(&topic, 1, &[]);
    let steps = [
        "begin", "send:c1", "send:c2", "commit", "begin", "send:a1", "send:a2", "flush", "abort",
        "begin", "send:c3", "commit",
    ];
    let status = txn_producer(&topic, &steps).wait().expect("producer");
    assert!(status.success());
    let (got, outcome) = read_all(&topic, Isolation::ReadCommitted);
    assert!(matches!(outcome, Outcome::CaughtUp(_)), "{outcome:?}");
    assert_eq!(values(&got), vec!["c1", "c2", "c3"]);
    // Control records take offsets: c3 is not at offset 2.
    assert_eq!(got[2].offset, 6);
    let (got, _) = read_all(&topic, Isolation::ReadUncommitted);
    assert_eq!(values(&got), vec!["c1", "c2", "a1", "a2", "c3"]);
}

#[test]
fn an_open_transaction_holds_delivery_at_the_last_stable_offset() {
    let topic = unique_topic("txn-open");
    create_topic(&topic, 1, &[]);
    let mut producer = txn_producer(
        &topic,
        &[
            "begin",
            "send:done",
            "commit",
            "begin",
            "send:pending",
            "flush",
            "wait",
            "commit",
        ],
    );
    let mut stdout = BufReader::new(producer.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read");
    assert_eq!(line.trim(), "waiting");
    let servers = vec![bootstrap()];
    let t = topic.clone();
    let (first, after) = run(|worker| async move {
        let client = client(servers);
        let mut stream = open(&client, &worker, KafkaBeginEx::Merged(merged(&t)));
        let mut out = Vec::new();
        let outcome = read(&mut stream, 65536, usize::MAX, true, T, &mut out).await;
        let Outcome::CaughtUp(progress) = outcome else {
            panic!("{outcome:?}")
        };
        // Caught up at the last stable offset: before the open transaction.
        assert_eq!(progress.get(0), Some(2));
        let first = values(&out);
        let mut stdin = producer.stdin.take().expect("stdin");
        writeln!(stdin, "go").expect("write");
        drop(stdin);
        let outcome = read(&mut stream, 0, 2, false, T, &mut out).await;
        assert!(matches!(outcome, Outcome::Enough), "{outcome:?}");
        assert!(producer.wait().expect("producer").success());
        (first, values(&out))
    });
    assert_eq!(first, vec!["done"]);
    assert_eq!(after, vec!["done", "pending"]);
}

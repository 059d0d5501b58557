//! Produce and DescribeConfigs through the cluster API, against the real broker: batches of
//! every codec written by our encoder read back by our client and by the console consumer.

mod support;

use std::sync::Arc;
use std::time::Duration;

use binding_api::binding::Binding;
use binding_api::ext::kafka::{KafkaBeginEx, KafkaHeader};
use binding_kafka_client::cluster::Cluster;
use binding_kafka_client::record::{BatchBuilder, Compression, RecordBuilder};
use binding_tcp::{TcpClient, TcpOptions};
use bytes::Bytes;
use e2e_tests::kafka::{consume_records, create_topic, unique_topic};
use support::{Outcome, Rec, bootstrap, client, merged, open, read, run};

fn record(i: i32, value: String) -> RecordBuilder {
    RecordBuilder {
        offset_delta: i,
        timestamp_delta: i64::from(i),
        key: Some(Bytes::from(format!("k{i}"))),
        value: Some(Bytes::from(value)),
        headers: vec![KafkaHeader {
            name: Bytes::from_static(b"n"),
            value: Some(Bytes::from(i.to_string())),
        }],
    }
}

#[test]
fn batches_of_every_codec_produced_and_read_back() {
    let topic = unique_topic("produce");
    create_topic(&topic, 1, &[("cleanup.policy", "compact")]);
    let servers = vec![bootstrap()];
    let t = topic.clone();
    let (offsets, configs, got) = run(|worker| async move {
        let tcp: Arc<dyn Binding> = Arc::new(TcpClient::new("tcp", TcpOptions::default(), vec![]));
        let cluster = Cluster::new(tcp, &worker, servers.clone(), None);
        let mut offsets = Vec::new();
        for (n, codec) in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ]
        .into_iter()
        .enumerate()
        {
            let records = (0..3)
                .map(|i| record(i, format!("{codec:?}-{i}")))
                .collect();
            let batch = BatchBuilder {
                compression: codec,
                ..BatchBuilder::new(0, records)
            };
            let offset = cluster
                .produce(&t, 0, &batch.encode().expect("batch"))
                .await
                .unwrap_or_else(|e| panic!("{codec:?}: {e}"));
            offsets.push((n, offset));
        }
        let configs = cluster.topic_configs(&t, &[]).await.expect("configs");
        let client = client(servers);
        let mut stream = open(&client, &worker, KafkaBeginEx::Merged(merged(&t)));
        let mut out = Vec::new();
        let outcome = read(
            &mut stream,
            65536,
            usize::MAX,
            true,
            Duration::from_secs(30),
            &mut out,
        )
        .await;
        assert!(matches!(outcome, Outcome::CaughtUp(_)), "{outcome:?}");
        (offsets, configs, out)
    });
    assert_eq!(
        offsets.iter().map(|(_, o)| *o).collect::<Vec<_>>(),
        vec![0, 3, 6, 9, 12]
    );
    let policy = configs.iter().find(|(k, _)| k == "cleanup.policy");
    assert_eq!(policy.and_then(|(_, v)| v.as_deref()), Some("compact"));
    assert_eq!(got.len(), 15);
    assert_eq!(got[4].value_str(), "Gzip-1");
    assert_eq!(got[14].value_str(), "Zstd-2");
    assert_eq!(got[14].key.as_deref(), Some("k2"));
    assert_eq!(
        got[14].headers,
        vec![("n".to_owned(), Some("2".to_owned()))]
    );
    // The Java consumer reads what we wrote, too.
    let java = consume_records(&topic, 15, Duration::from_secs(20));
    let values: Vec<String> = java.into_iter().filter_map(|r| r.value).collect();
    assert_eq!(values, got.iter().map(Rec::value_str).collect::<Vec<_>>());
}

//! The client against a scripted broker (an exit binding that answers Kafka requests from a
//! script): leadership errors refresh metadata and fetch again from the same offset; corrupt
//! record batches refuse the stream instead of panicking.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use binding_api::binding::{Binding, Worker};
use binding_api::ext::DataEx;
use binding_api::ext::kafka::KafkaBeginEx;
use binding_api::ext::kafka::KafkaDataEx;
use binding_api::frame::{Begin, Data, Frame, Window};
use binding_api::stream::Acceptor;
use binding_kafka_client::proto::fetch::{self, FetchResponse, PartitionData};
use binding_kafka_client::proto::list_offsets::{self, PartitionOffset};
use binding_kafka_client::proto::metadata::{
    self, Broker, MetadataResponse, PartitionMeta, TopicMeta,
};
use binding_kafka_client::proto::wire::Decoder;
use binding_kafka_client::record::{BatchBuilder, RecordBuilder};
use binding_kafka_client::{KafkaClient, KafkaOptions};
use bytes::{BufMut, Bytes, BytesMut};
use support::{Outcome, merged, open, read, run};

/// What the script does with a fetch at `offset`, the `n`th fetch seen.
type FetchScript = dyn Fn(usize, i64) -> PartitionData + Send + Sync;

struct Script {
    fetch: Box<FetchScript>,
    /// The topic's partitions, all led by node 1.
    partitions: i32,
    log: Mutex<Vec<String>>,
    fetches: Mutex<usize>,
    connections: Mutex<usize>,
    /// `(api key, connection number, partitions asked)` of every ListOffsets and Fetch.
    requests: Mutex<Vec<(i16, usize, usize)>>,
}

/// The exit binding: every stream opened to it is a connection to the scripted broker.
struct ScriptedBroker(Arc<Script>);

fn partition(error_code: i16, records: Bytes, hw: i64) -> PartitionData {
    PartitionData {
        topic: "t".into(),
        partition: 0,
        error_code,
        high_watermark: hw,
        last_stable_offset: hw,
        log_start_offset: 0,
        aborted: vec![],
        records,
    }
}

fn batch(base: i64, values: &[&str]) -> Bytes {
    let records = values
        .iter()
        .enumerate()
        .map(|(i, v)| RecordBuilder {
            offset_delta: i as i32,
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
            ..Default::default()
        })
        .collect();
    BatchBuilder::new(base, records).encode().expect("batch")
}

impl Script {
    fn answer(&self, conn: usize, api: i16, version: i16, mut body: Decoder) -> Bytes {
        match api {
            18 => {
                let mut b = BytesMut::new();
                b.put_i16(0);
                let apis: [(i16, i16, i16); 6] = [
                    (0, 3, 8),
                    (1, 4, 11),
                    (2, 1, 4),
                    (3, 1, 8),
                    (18, 0, 3),
                    (32, 1, 3),
                ];
                b.put_i32(apis.len() as i32);
                for (k, min, max) in apis {
                    b.put_i16(k);
                    b.put_i16(min);
                    b.put_i16(max);
                }
                b.freeze()
            }
            3 => {
                self.log.lock().expect("lock").push("metadata".into());
                let response = MetadataResponse {
                    brokers: vec![Broker {
                        node_id: 1,
                        host: "scripted".into(),
                        port: 9092,
                    }],
                    topics: vec![TopicMeta {
                        error_code: 0,
                        name: "t".into(),
                        partitions: (0..self.partitions)
                            .map(|partition| PartitionMeta {
                                error_code: 0,
                                partition,
                                leader: 1,
                                leader_epoch: 0,
                            })
                            .collect(),
                    }],
                };
                metadata::encode_response(version, &response)
            }
            2 => {
                // replica, isolation (v2+), topics, topic, partitions, then each partition
                // (id, leader epoch from v4, timestamp).
                let skip = |d: &mut Decoder, n| d.bytes_exact(n, "skip").expect("request");
                skip(&mut body, 4 + usize::from(version >= 2) + 4);
                body.string("topic").expect("topic");
                let count = body.i32("partitions").expect("count");
                let answers: Vec<PartitionOffset> = (0..count)
                    .map(|_| {
                        let partition = body.i32("partition").expect("partition");
                        skip(&mut body, if version >= 4 { 12 } else { 8 });
                        PartitionOffset {
                            partition,
                            error_code: 0,
                            offset: 0,
                        }
                    })
                    .collect();
                self.requests
                    .lock()
                    .expect("lock")
                    .push((2, conn, answers.len()));
                list_offsets::encode_response(version, "t", &answers)
            }
            1 => {
                // replica, max wait, min bytes, max bytes, isolation, session id and epoch,
                // topics, topic, partitions, partition, leader epoch, then the offset.
                let skip = |d: &mut Decoder, n| d.bytes_exact(n, "skip").expect("request");
                skip(&mut body, 4 + 4 + 4 + 4 + 1 + 4 + 4 + 4);
                body.string("topic").expect("topic");
                skip(&mut body, 4 + 4 + 4);
                let offset = body.i64("offset").expect("offset");
                let n = {
                    let mut f = self.fetches.lock().expect("lock");
                    *f += 1;
                    *f
                };
                self.log
                    .lock()
                    .expect("lock")
                    .push(format!("fetch {offset}"));
                self.requests.lock().expect("lock").push((1, conn, 1));
                let data = (self.fetch)(n, offset);
                fetch::encode_response(
                    version,
                    &FetchResponse {
                        error_code: 0,
                        partitions: vec![data],
                    },
                )
            }
            other => panic!("unexpected api {other}"),
        }
    }
}

impl Binding for ScriptedBroker {
    fn name(&self) -> &str {
        "scripted"
    }

    fn new_stream(&self, mut stream: Acceptor, _worker: &Worker) {
        let conn = {
            let mut connections = self.0.connections.lock().expect("lock");
            *connections += 1;
            *connections
        };
        let _ = stream.reply.begin(Begin::default());
        let _ = stream.initial.window(Window {
            credit: 1 << 20,
            padding: 0,
        });
        let mut buf = BytesMut::new();
        let this = self.0.clone();
        tokio::task::spawn_local(async move {
            while let Some(frame) = stream.initial.frame().await {
                let Frame::Data(data) = frame else { break };
                buf.extend_from_slice(&data.payload);
                stream.initial.replenish();
                while buf.len() >= 4 {
                    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                    if buf.len() < 4 + size {
                        break;
                    }
                    let frame = buf.split_to(4 + size).freeze().slice(4..);
                    let mut d = Decoder::new(frame);
                    let api = d.i16("api").expect("api");
                    let version = d.i16("version").expect("version");
                    let id = d.i32("id").expect("id");
                    d.nullable_string("client id").expect("client id");
                    let body = this.answer(conn, api, version, d);
                    let mut out = BytesMut::new();
                    out.put_i32(body.len() as i32 + 4);
                    out.put_i32(id);
                    out.put_slice(&body);
                    stream.reply.ready(out.len()).await.expect("credit");
                    stream.reply.data(Data::new(out.freeze())).expect("send");
                }
            }
        });
    }
}

fn fetch_count(script: &Script) -> usize {
    let requests = script.requests.lock().expect("lock");
    requests.iter().filter(|r| r.0 == 1).count()
}

fn scripted(fetch: Box<FetchScript>) -> Arc<Script> {
    scripted_with(1, fetch)
}

fn scripted_with(partitions: i32, fetch: Box<FetchScript>) -> Arc<Script> {
    Arc::new(Script {
        fetch,
        partitions,
        log: Mutex::new(vec![]),
        fetches: Mutex::new(0),
        connections: Mutex::new(0),
        requests: Mutex::new(vec![]),
    })
}

fn consume(script: Arc<Script>, want: usize) -> (Vec<String>, Outcome) {
    run(|worker| async move {
        let exit: Arc<dyn Binding> = Arc::new(ScriptedBroker(script));
        let client: Arc<dyn Binding> = Arc::new(KafkaClient::new(
            "kafka",
            KafkaOptions {
                servers: vec![("scripted".into(), 9092)],
                sasl: None,
            },
            exit,
        ));
        let mut stream = open(&client, &worker, KafkaBeginEx::Merged(merged("t")));
        let mut out = Vec::new();
        let outcome = read(
            &mut stream,
            65536,
            want,
            true,
            Duration::from_secs(20),
            &mut out,
        )
        .await;
        (out.iter().map(|r| r.value_str()).collect(), outcome)
    })
}

#[test]
fn not_leader_refreshes_metadata_and_fetches_again_from_the_same_offset() {
    let broker = scripted(Box::new(|n, offset| match (n, offset) {
        (1, 0) => partition(0, batch(0, &["a", "b"]), 5),
        (2, 2) => partition(6, Bytes::new(), 5), // NOT_LEADER_OR_FOLLOWER
        (3, 2) => partition(74, Bytes::new(), 5), // FENCED_LEADER_EPOCH
        (_, 2) => partition(0, batch(2, &["c", "d", "e"]), 5),
        (_, o) => partition(0, Bytes::new(), o),
    }));
    let (values, outcome) = consume(broker.clone(), usize::MAX);
    assert!(matches!(outcome, Outcome::CaughtUp(_)), "{outcome:?}");
    assert_eq!(values, vec!["a", "b", "c", "d", "e"]);
    let log = broker.log.lock().expect("lock").clone();
    let metadata = log.iter().filter(|l| *l == "metadata").count();
    assert!(
        metadata >= 3,
        "metadata refreshed after each error: {log:?}"
    );
    let fetches: Vec<&String> = log.iter().filter(|l| l.starts_with("fetch")).collect();
    assert_eq!(fetches[..4], ["fetch 0", "fetch 2", "fetch 2", "fetch 2"]);
}

#[test]
fn streams_share_the_connections_to_a_broker() {
    let script = scripted(Box::new(|_, offset| match offset {
        0 => partition(0, batch(0, &["a", "b"]), 2),
        o => partition(0, Bytes::new(), o),
    }));
    let counted = script.clone();
    let values = run(|worker| async move {
        let exit: Arc<dyn Binding> = Arc::new(ScriptedBroker(script));
        let client: Arc<dyn Binding> = Arc::new(KafkaClient::new(
            "kafka",
            KafkaOptions {
                servers: vec![("scripted".into(), 9092)],
                sasl: None,
            },
            exit,
        ));
        let mut all = Vec::new();
        let mut streams: Vec<_> = (0..3)
            .map(|_| open(&client, &worker, KafkaBeginEx::Merged(merged("t"))))
            .collect();
        for stream in &mut streams {
            let mut out = Vec::new();
            let outcome = read(
                stream,
                65536,
                usize::MAX,
                true,
                Duration::from_secs(20),
                &mut out,
            )
            .await;
            assert!(matches!(outcome, Outcome::CaughtUp(_)), "{outcome:?}");
            all.extend(out.iter().map(|r| r.value_str()));
        }
        all
    });
    assert_eq!(values, ["a", "b", "a", "b", "a", "b"]);
    // One bootstrap connection (metadata) and two to the leader, node 1: one for ListOffsets,
    // one for the fetches of all three streams.
    assert_eq!(*counted.connections.lock().expect("lock"), 3);
}

#[test]
fn starts_are_asked_in_one_request_per_leader_beside_the_fetches() {
    // 64 partitions led by one broker: one ListOffsets for all of them (not one each), on a
    // connection no Fetch uses, so a start never waits behind another stream's long poll.
    let script = scripted_with(64, Box::new(|_, o| partition(0, Bytes::new(), o)));
    let counted = script.clone();
    let watched = script.clone();
    run(|worker| async move {
        let exit: Arc<dyn Binding> = Arc::new(ScriptedBroker(script));
        let client: Arc<dyn Binding> = Arc::new(KafkaClient::new(
            "kafka",
            KafkaOptions {
                servers: vec![("scripted".into(), 9092)],
                sasl: None,
            },
            exit,
        ));
        let mut streams = Vec::new();
        for _ in 0..2 {
            let mut stream = open(&client, &worker, KafkaBeginEx::Merged(merged("t")));
            let begin = tokio::time::timeout(Duration::from_secs(10), stream.reply.frame()).await;
            assert!(matches!(begin, Ok(Some(Frame::Begin(_)))), "{begin:?}");
            stream
                .reply
                .window(Window {
                    credit: 65536,
                    padding: 0,
                })
                .expect("window");
            streams.push(stream);
        }
        // Until both streams have fetched.
        for _ in 0..200 {
            let fetches = fetch_count(&watched);
            if fetches >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let requests = counted.requests.lock().expect("lock").clone();
    let list_offsets: Vec<_> = requests.iter().filter(|r| r.0 == 2).collect();
    assert_eq!(list_offsets.len(), 2, "one per stream: {requests:?}");
    assert!(list_offsets.iter().all(|r| r.2 == 64), "{requests:?}");
    let fetch_conns: Vec<usize> = requests.iter().filter(|r| r.0 == 1).map(|r| r.1).collect();
    assert!(!fetch_conns.is_empty(), "{requests:?}");
    assert!(
        list_offsets.iter().all(|r| !fetch_conns.contains(&r.1)),
        "ListOffsets shares a connection with Fetch: {requests:?}"
    );
}

#[test]
fn a_corrupt_batch_refuses_the_stream() {
    let broker = scripted(Box::new(|_, _| {
        let mut bad = batch(0, &["x"]).to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        partition(0, Bytes::from(bad), 1)
    }));
    let (values, outcome) = consume(broker, usize::MAX);
    assert!(values.is_empty());
    match outcome {
        Outcome::Refused(_, reason) => assert!(reason.contains("CRC32C"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Whatever the window and padding, every record arrives whole and in order, in one frame
    /// when its value fits the room the window leaves, else split into continuations.
    #[test]
    fn any_credit_delivers_every_record_whole(
        sizes in proptest::collection::vec(0usize..3000, 1..10),
        window in 64u32..4096,
        padding in 0u32..64,
    ) {
        let values: Vec<String> = sizes
            .iter()
            .enumerate()
            .map(|(i, n)| char::from(b'a' + (i % 26) as u8).to_string().repeat(*n))
            .collect();
        let count = values.len() as i64;
        let batch_values = values.clone();
        let script = scripted(Box::new(move |n, offset| {
            if n == 1 && offset == 0 {
                let refs: Vec<&str> = batch_values.iter().map(String::as_str).collect();
                partition(0, batch(0, &refs), count)
            } else {
                partition(0, Bytes::new(), count)
            }
        }));
        let got = run(|worker| async move {
            let exit: Arc<dyn Binding> = Arc::new(ScriptedBroker(script));
            let client: Arc<dyn Binding> = Arc::new(KafkaClient::new(
                "kafka",
                KafkaOptions { servers: vec![("scripted".into(), 9092)], sasl: None },
                exit,
            ));
            let mut stream = open(&client, &worker, KafkaBeginEx::Merged(merged("t")));
            stream.reply.window(Window { credit: window, padding }).expect("window");
            let mut got: Vec<(Vec<u8>, usize)> = Vec::new();
            loop {
                let frame = tokio::time::timeout(Duration::from_secs(10), stream.reply.frame())
                    .await
                    .expect("a frame in time");
                stream.reply.replenish();
                match frame {
                    Some(Frame::Data(data)) => {
                        assert!(data.payload.len() as u64 + u64::from(padding) <= u64::from(window));
                        match data.ext {
                            DataEx::Kafka(KafkaDataEx::Record(_)) => got.push((data.payload.to_vec(), 1)),
                            DataEx::Kafka(KafkaDataEx::Continuation) => {
                                let last = got.last_mut().expect("a record first");
                                last.0.extend_from_slice(&data.payload);
                                last.1 += 1;
                            }
                            other => panic!("{other:?}"),
                        }
                    }
                    Some(Frame::Flush(_)) => break got,
                    Some(Frame::Begin(_)) => {}
                    other => panic!("{other:?}"),
                }
            }
        });
        proptest::prop_assert_eq!(got.len(), values.len());
        let room = (window - padding) as usize;
        for ((bytes, frames), want) in got.iter().zip(&values) {
            proptest::prop_assert_eq!(bytes, want.as_bytes());
            proptest::prop_assert_eq!(*frames == 1, want.len() <= room, "{} bytes in {} frames, room {}", want.len(), frames, room);
        }
    }
}

//! A scripted broker: an exit binding whose every stream is a connection to a broker that
//! answers Kafka requests from a script. Nodes `1..=nodes` are advertised, all at the same
//! address; partition `p` of topic `t` is led by node `p % nodes + 1`.
#![allow(dead_code)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use binding_api::binding::{Binding, Worker};
use binding_api::ext::kafka::KafkaBeginEx;
use binding_api::frame::{Begin, Data, Frame, Window};
use binding_api::stream::{Acceptor, Writer};
use binding_kafka_client::config::Limits;
use binding_kafka_client::proto::fetch::{self, FetchResponse, PartitionData};
use binding_kafka_client::proto::list_offsets::{self, PartitionOffset};
use binding_kafka_client::proto::metadata::{
    self, Broker, MetadataResponse, PartitionMeta, TopicMeta,
};
use binding_kafka_client::proto::wire::Decoder;
use binding_kafka_client::record::{BatchBuilder, RecordBuilder};
use binding_kafka_client::{KafkaClient, KafkaOptions};
use bytes::{BufMut, Bytes, BytesMut};

use crate::support::{Outcome, merged, open, read, run};

/// What the script answers to the `n`th fetch, given the `(partition, offset)`s asked.
pub type FetchScript = dyn Fn(usize, &[(i32, i64)]) -> Vec<PartitionData> + Send + Sync;

pub struct Script {
    pub fetch: Box<FetchScript>,
    /// The partitions of topic `t`.
    pub partitions: i32,
    /// Node ids advertised.
    pub nodes: i32,
    /// Other topics the metadata lists, with their partition counts.
    pub other_topics: Vec<(String, i32)>,
    /// When set, how every fetch is answered instead.
    pub raw_fetch: Option<RawFetch>,
    /// The client's limits.
    pub limits: Limits,
    pub log: Mutex<Vec<String>>,
    pub fetches: Mutex<usize>,
    pub connections: Mutex<usize>,
    /// `(api key, connection number, partitions asked)` of every ListOffsets and Fetch.
    pub requests: Mutex<Vec<(i16, usize, usize)>>,
    /// Response bytes written, over all connections.
    pub sent: Mutex<usize>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            fetch: Box::new(|_, asked| {
                asked
                    .iter()
                    .map(|(p, o)| partition_at(*p, 0, Bytes::new(), *o))
                    .collect()
            }),
            partitions: 1,
            nodes: 1,
            other_topics: vec![],
            raw_fetch: None,
            limits: Limits::default(),
            log: Mutex::new(vec![]),
            fetches: Mutex::new(0),
            connections: Mutex::new(0),
            requests: Mutex::new(vec![]),
            sent: Mutex::new(0),
        }
    }
}

/// A fetch answered out of script.
pub enum RawFetch {
    /// A response announcing this many bytes, all sent but the last: the connection hangs.
    Announce(usize),
    /// This response body.
    Body(Bytes),
}

/// The exit binding: every stream opened to it is a connection to the scripted broker.
pub struct ScriptedBroker(pub Arc<Script>);

/// Partition `p` of `t`, with its high watermark as the last stable offset.
pub fn partition_at(p: i32, error_code: i16, records: Bytes, hw: i64) -> PartitionData {
    PartitionData {
        topic: "t".into(),
        partition: p,
        error_code,
        high_watermark: hw,
        last_stable_offset: hw,
        log_start_offset: 0,
        aborted: vec![],
        records,
    }
}

/// Partition 0 of `t`.
pub fn partition(error_code: i16, records: Bytes, hw: i64) -> PartitionData {
    partition_at(0, error_code, records, hw)
}

/// A batch of `values` from offset `base`.
pub fn batch(base: i64, values: &[&str]) -> Bytes {
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

fn api_versions() -> Bytes {
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

fn topic(name: &str, partitions: i32, nodes: i32) -> TopicMeta {
    TopicMeta {
        error_code: 0,
        name: name.into(),
        partitions: (0..partitions)
            .map(|partition| PartitionMeta {
                error_code: 0,
                partition,
                leader: partition % nodes + 1,
                leader_epoch: 0,
            })
            .collect(),
    }
}

fn skip(d: &mut Decoder, n: usize) {
    d.bytes_exact(n, "skip").expect("request");
}

impl Script {
    fn answer(&self, conn: usize, api: i16, version: i16, mut body: Decoder) -> Bytes {
        match api {
            18 => api_versions(),
            3 => {
                self.log.lock().expect("lock").push("metadata".into());
                let mut topics = vec![topic("t", self.partitions, self.nodes)];
                for (name, n) in &self.other_topics {
                    topics.push(topic(name, *n, self.nodes));
                }
                let response = MetadataResponse {
                    brokers: (1..=self.nodes)
                        .map(|node_id| Broker {
                            node_id,
                            host: "scripted".into(),
                            port: 9092,
                        })
                        .collect(),
                    topics,
                };
                metadata::encode_response(version, &response)
            }
            2 => {
                // replica, isolation (v2+), topics, topic, partitions, then each partition
                // (id, leader epoch from v4, timestamp).
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
                // topics, topic, partitions; then each partition: id, leader epoch (v9+),
                // offset, log start offset, max bytes.
                skip(&mut body, 4 + 4 + 4 + 4 + 1 + 4 + 4 + 4);
                body.string("topic").expect("topic");
                let count = body.i32("partitions").expect("count");
                let asked: Vec<(i32, i64)> = (0..count)
                    .map(|_| {
                        let partition = body.i32("partition").expect("partition");
                        skip(&mut body, if version >= 9 { 4 } else { 0 });
                        let offset = body.i64("offset").expect("offset");
                        skip(&mut body, 8 + 4);
                        (partition, offset)
                    })
                    .collect();
                let n = {
                    let mut f = self.fetches.lock().expect("lock");
                    *f += 1;
                    *f
                };
                for (_, offset) in &asked {
                    self.log
                        .lock()
                        .expect("lock")
                        .push(format!("fetch {offset}"));
                }
                self.requests
                    .lock()
                    .expect("lock")
                    .push((1, conn, asked.len()));
                let partitions = (self.fetch)(n, &asked);
                fetch::encode_response(
                    version,
                    &FetchResponse {
                        error_code: 0,
                        partitions,
                    },
                )
            }
            other => panic!("unexpected api {other}"),
        }
    }
}

/// Writes `bytes` within the credit the client grants; false once the stream is gone.
async fn write(writer: &mut Writer, mut bytes: Bytes, sent: &Mutex<usize>) -> bool {
    while !bytes.is_empty() {
        if writer.ready(1).await.is_err() {
            return false;
        }
        let room = writer.credit().saturating_sub(u64::from(writer.padding()));
        let n = (room.min(64 * 1024) as usize).clamp(1, bytes.len());
        if writer.data(Data::new(bytes.split_to(n))).is_err() {
            return false;
        }
        *sent.lock().expect("lock") += n;
    }
    true
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
        let _ = stream.output.begin(Begin::default());
        let _ = stream.input.window(Window {
            credit: 1 << 20,
            padding: 0,
        });
        let mut buf = BytesMut::new();
        let this = self.0.clone();
        tokio::task::spawn_local(async move {
            while let Some(frame) = stream.input.frame().await {
                let Frame::Data(data) = frame else { break };
                buf.extend_from_slice(&data.payload);
                stream.input.replenish();
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
                    let mut out = BytesMut::new();
                    match &this.raw_fetch {
                        Some(RawFetch::Announce(size)) if api == 1 => {
                            out.put_i32(*size as i32);
                            out.put_i32(id);
                            out.resize(size + 4 - 1, 0);
                        }
                        Some(RawFetch::Body(body)) if api == 1 => {
                            *this.fetches.lock().expect("lock") += 1;
                            out.put_i32(body.len() as i32 + 4);
                            out.put_i32(id);
                            out.put_slice(body);
                        }
                        _ => {
                            let body = this.answer(conn, api, version, d);
                            out.put_i32(body.len() as i32 + 4);
                            out.put_i32(id);
                            out.put_slice(&body);
                        }
                    }
                    if !write(&mut stream.output, out.freeze(), &this.sent).await {
                        return;
                    }
                }
            }
        });
    }
}

pub fn fetch_count(script: &Script) -> usize {
    let requests = script.requests.lock().expect("lock");
    requests.iter().filter(|r| r.0 == 1).count()
}

/// A script of one partition, answering a fetch of partition 0 at `offset`, the `n`th fetch
/// seen, with `fetch(n, offset)`.
pub fn scripted(
    fetch: impl Fn(usize, i64) -> PartitionData + Send + Sync + 'static,
) -> Arc<Script> {
    scripted_with(1, fetch)
}

/// As [`scripted`], for a topic of `partitions` partitions (each fetch answered for its first).
pub fn scripted_with(
    partitions: i32,
    fetch: impl Fn(usize, i64) -> PartitionData + Send + Sync + 'static,
) -> Arc<Script> {
    Arc::new(Script {
        fetch: Box::new(move |n, asked| {
            asked
                .first()
                .map(|(_, offset)| fetch(n, *offset))
                .into_iter()
                .collect()
        }),
        partitions,
        ..Script::default()
    })
}

/// The kafka client reaching `script`.
pub fn client(script: Arc<Script>) -> Arc<dyn Binding> {
    let limits = script.limits;
    let exit: Arc<dyn Binding> = Arc::new(ScriptedBroker(script));
    Arc::new(KafkaClient::new(
        "kafka",
        KafkaOptions {
            servers: vec![("scripted".into(), 9092)],
            limits,
            ..KafkaOptions::default()
        },
        exit,
    ))
}

/// Reads a merged stream of `t` until `want` records, caught up, refused, or `timeout`.
pub fn consume_for(script: Arc<Script>, want: usize, timeout: Duration) -> (Vec<String>, Outcome) {
    run(|worker| async move {
        let client = client(script);
        let mut stream = open(&client, &worker, KafkaBeginEx::Merged(merged("t")));
        let mut out = Vec::new();
        let outcome = read(&mut stream, 65536, want, true, timeout, &mut out).await;
        (out.iter().map(|r| r.value_str()).collect(), outcome)
    })
}

/// [`consume_for`] within 20 s.
pub fn consume(script: Arc<Script>, want: usize) -> (Vec<String>, Outcome) {
    consume_for(script, want, Duration::from_secs(20))
}

/// A writer into a shared buffer, for captured logs.
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What `f` returns, and the warnings logged on this thread meanwhile, one a line.
pub fn warnings<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || Captured(sink.clone()))
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&buf.lock().expect("lock")).into_owned();
    (out, text.lines().map(str::to_owned).collect())
}

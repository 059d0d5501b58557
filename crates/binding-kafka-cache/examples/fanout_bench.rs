//! Fan-out benchmark: N subscribers on one topic of a cache server. Prints, per N: the
//! upstream streams the cache opened (each is one fetch per partition in the kafka client),
//! resident memory per idle subscriber, and the latency from an append to each subscriber
//! receiving it.
//!
//! ```sh
//! cargo run --release -p binding-kafka-cache --example fanout_bench -- 1 100 10000
//! cargo run --release -p binding-kafka-cache --example fanout_bench -- --broker 1 100 10000
//! cargo run --release -p binding-kafka-cache --example fanout_bench -- --keyed 1000 10000
//! ```
//!
//! With `--keyed`, subscriber `i` filters on the key `k{i}` and the stand-in appends 200
//! records keyed `k{j mod N}`: each record is for one subscriber, and the figure is what the
//! others cost it (every subscriber woken and reading, or only the one it is for).
//!
//! By default the cache's upstream is an in-process stand-in for the kafka client, which
//! appends 20 records one by one: the latency is the cache's own (append → every subscriber
//! woken and sent the record).
//!
//! With `--broker`, the cache reads a real broker (`KAFKA_BOOTSTRAP`, else one started with
//! `scripts/kafka start` for this run) through the real kafka client, and 20 records are
//! produced 100 ms apart: the latency is then produce → broker → fetch → cache → subscriber.
//! It also prints the Fetch requests the **broker** served during a fixed 5 s window around
//! those records (`scripts/kafka fetch-requests`, read over JMX): the goal is that this count
//! is the same whatever N. Use a broker no other client reads from.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use binding_api::binding::{Binding, Worker};
use binding_api::ext::kafka::{
    Condition, Filter, KafkaBeginEx, KafkaDataEx, KafkaFlushEx, KafkaMergedBeginEx, KafkaRecordEx,
    KafkaReplyBeginEx, Progress, StartPosition,
};
use binding_api::ext::{BeginEx, DataEx, FlushEx};
use binding_api::frame::{Begin, Data, Flush, Frame, ReasonKind, Reset, Window};
use binding_api::stream::{self, Acceptor};
use binding_kafka_cache::{Cache, CacheOptions, CacheServer};
use binding_kafka_client::cluster::Cluster;
use binding_kafka_client::record::{BatchBuilder, RecordBuilder};
use binding_kafka_client::{KafkaClient, KafkaOptions};
use binding_tcp::{TcpClient, TcpOptions};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const RECORDS: i64 = 20;
/// Records appended with `--keyed`, one subscriber each.
const KEYED_RECORDS: i64 = 200;
/// The window over which the broker's fetch requests are counted.
const WINDOW: Duration = Duration::from_secs(5);

struct Upstream(mpsc::UnboundedSender<Acceptor>);

impl Binding for Upstream {
    fn name(&self) -> &str {
        "upstream"
    }
    fn new_stream(&self, stream: Acceptor, _worker: &Worker) {
        // No topic config here: the cache keeps its defaults.
        if let BeginEx::Kafka(KafkaBeginEx::Describe(_)) = &stream.begin.ext {
            return stream.refuse(Reset::new(ReasonKind::Refused, "no describe"));
        }
        let _ = self.0.send(stream);
    }
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn nanos(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// What the subscribers saw: latencies (ns) and how many caught up.
#[derive(Default)]
struct Seen {
    latencies: RefCell<Vec<u64>>,
    caught_up: Cell<usize>,
}

/// Opens `n` subscribers on `topic` from now on; each records the latency of every record
/// (whose value is the nanoseconds since `epoch` when it was appended or produced).
/// With `keyed`, subscriber `i` reads only the key `k{i}`.
fn subscribe(
    server: &Arc<dyn Binding>,
    worker: &Worker,
    topic: &str,
    n: usize,
    epoch: Instant,
    keyed: bool,
) -> Rc<Seen> {
    let seen = Rc::new(Seen::default());
    for i in 0..n {
        let filters = if keyed {
            vec![Filter {
                conditions: vec![Condition::Key(Bytes::from(format!("k{i}")))],
            }]
        } else {
            Vec::new()
        };
        let (mut sub, acceptor) = stream::open(Begin {
            ext: BeginEx::Kafka(KafkaBeginEx::Merged(KafkaMergedBeginEx {
                topic: topic.into(),
                default_start: StartPosition::Latest,
                filters,
                ..Default::default()
            })),
        });
        server.new_stream(acceptor, worker);
        sub.input
            .window(Window {
                credit: 65536,
                padding: 0,
            })
            .unwrap();
        let seen = seen.clone();
        worker.spawn(async move {
            // Own the whole stream: dropping its initial writer would end the subscription.
            let mut sub = sub;
            while let Some(frame) = sub.input.frame().await {
                match frame {
                    Frame::Data(data) if data.payload.len() >= 8 => {
                        let sent = u64::from_be_bytes(data.payload[..8].try_into().unwrap());
                        let latency = nanos(epoch).saturating_sub(sent);
                        seen.latencies.borrow_mut().push(latency);
                    }
                    Frame::Flush(_) => seen.caught_up.set(seen.caught_up.get() + 1),
                    _ => {}
                }
                sub.input.replenish();
            }
        });
    }
    seen
}

async fn wait_for(within: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !done() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

fn report(n: usize, expected: usize, cache: &Cache, rss_per_sub: f64, seen: &Seen, extra: &str) {
    let mut l = seen.latencies.borrow().clone();
    l.sort_unstable();
    let pct = |p: f64| {
        l.get(((l.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0) as f64
            / 1e6
    };
    println!(
        "subscribers {n:>6}  upstream streams {}{extra}  rss/idle subscriber {rss_per_sub:>6.0} B  received {}/{}  append→wake p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        cache.stats().upstream_streams.load(Ordering::Relaxed),
        l.len(),
        expected,
        pct(0.5),
        pct(0.99),
        pct(1.0),
    );
}

fn record(up: &mut Acceptor, offset: i64, key: Option<Bytes>, epoch: Instant) {
    let value = Bytes::copy_from_slice(&nanos(epoch).to_be_bytes());
    let mut progress = Progress::default();
    progress.set(0, offset + 1);
    let ex = KafkaRecordEx {
        partition: 0,
        offset,
        timestamp: 0,
        key,
        headers: Default::default(),
        value_len: Some(8),
        high_watermark: offset + 1,
        progress: Some(Arc::new(progress)),
    };
    up.output
        .data(Data {
            payload: value,
            ext: DataEx::Kafka(KafkaDataEx::Record(ex)),
        })
        .unwrap();
}

/// The cache over an in-process stand-in for the kafka client.
async fn bench(n: usize, keyed: bool, worker: Worker) {
    let epoch = Instant::now();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = CacheServer::new("cache", CacheOptions::default(), Arc::new(Upstream(tx)));
    let cache = server.cache().clone();
    let server: Arc<dyn Binding> = Arc::new(server);
    let rss_before = rss_bytes();
    let seen = subscribe(&server, &worker, "bench", n, epoch, keyed);
    let mut up = rx.recv().await.unwrap();
    up.output
        .begin(Begin {
            ext: BeginEx::Kafka(KafkaBeginEx::Reply(KafkaReplyBeginEx {
                topic: "bench".into(),
                partitions: vec![0],
            })),
        })
        .unwrap();
    up.output
        .flush(Flush {
            ext: FlushEx::Kafka(KafkaFlushEx {
                progress: Arc::new(Progress {
                    partitions: vec![(0, 0)],
                }),
            }),
        })
        .unwrap();
    // Let every subscriber begin, catch up and go idle.
    wait_for(Duration::from_secs(60), || seen.caught_up.get() >= n).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_idle = rss_bytes();
    let records = if keyed { KEYED_RECORDS } else { RECORDS };
    for offset in 0..records {
        let key = keyed.then(|| Bytes::from(format!("k{}", offset as usize % n)));
        record(&mut up, offset, key, epoch);
        let want = if keyed {
            offset as usize + 1
        } else {
            n * (offset as usize + 1)
        };
        wait_for(Duration::from_secs(30), || {
            seen.latencies.borrow().len() >= want
        })
        .await;
    }
    let expected = if keyed {
        records as usize
    } else {
        n * records as usize
    };
    let rss_per_sub = rss_idle.saturating_sub(rss_before) as f64 / n as f64;
    report(n, expected, &cache, rss_per_sub, &seen, "");
    worker.shutdown().cancel();
}

/// The broker's Fetch requests so far (`scripts/kafka fetch-requests`, a JVM: a second or two).
async fn broker_fetches() -> u64 {
    tokio::task::spawn_blocking(e2e_tests::kafka::fetch_requests)
        .await
        .unwrap()
}

/// The cache over the real kafka client and a real broker.
async fn bench_broker(n: usize, worker: Worker) {
    let epoch = Instant::now();
    let address = e2e_tests::kafka::bootstrap();
    let (host, port) = address.rsplit_once(':').unwrap();
    let servers = vec![(host.to_owned(), port.parse::<u16>().unwrap())];
    let topic = e2e_tests::kafka::unique_topic("fanout");
    let t = topic.clone();
    tokio::task::spawn_blocking(move || e2e_tests::kafka::create_topic(&t, 1, &[]))
        .await
        .unwrap();
    let tcp: Arc<dyn Binding> = Arc::new(TcpClient::new("tcp", TcpOptions::default(), vec![]));
    let options = KafkaOptions {
        servers: servers.clone(),
        ..KafkaOptions::default()
    };
    let kafka: Arc<dyn Binding> = Arc::new(KafkaClient::new("kafka", options, tcp.clone()));
    let server = CacheServer::new("cache", CacheOptions::default(), kafka);
    let cache = server.cache().clone();
    let server: Arc<dyn Binding> = Arc::new(server);
    let rss_before = rss_bytes();
    let seen = subscribe(&server, &worker, &topic, n, epoch, false);
    wait_for(Duration::from_secs(120), || seen.caught_up.get() >= n).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_idle = rss_bytes();
    let producer = Cluster::new(tcp, &worker, servers, None);
    let before = broker_fetches().await;
    let window = Instant::now();
    for offset in 0..RECORDS {
        let value = Bytes::copy_from_slice(&nanos(epoch).to_be_bytes());
        let record = RecordBuilder {
            value: Some(value),
            ..Default::default()
        };
        let batch = BatchBuilder::new(0, vec![record]).encode().unwrap();
        producer.produce(&topic, 0, &batch).await.unwrap();
        let want = n * (offset as usize + 1);
        wait_for(Duration::from_millis(100), || {
            seen.latencies.borrow().len() >= want
        })
        .await;
    }
    wait_for(Duration::from_secs(10), || {
        seen.latencies.borrow().len() >= n * RECORDS as usize
    })
    .await;
    tokio::time::sleep(WINDOW.saturating_sub(window.elapsed())).await;
    let after = broker_fetches().await;
    let rss_per_sub = rss_idle.saturating_sub(rss_before) as f64 / n as f64;
    let extra = format!(
        "  broker fetches in {:.1} s {}",
        window.elapsed().as_secs_f64(),
        after.saturating_sub(before)
    );
    report(n, n * RECORDS as usize, &cache, rss_per_sub, &seen, &extra);
    worker.shutdown().cancel();
}

fn main() {
    let broker = std::env::args().any(|a| a == "--broker");
    let keyed = std::env::args().any(|a| a == "--keyed");
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let counts = if counts.is_empty() {
        vec![1, 100, 10_000]
    } else {
        counts
    };
    for n in counts {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        let worker = Worker::new(0, 1, CancellationToken::new());
        if broker {
            local.block_on(&rt, bench_broker(n, worker));
        } else {
            local.block_on(&rt, bench(n, keyed, worker));
        }
    }
}

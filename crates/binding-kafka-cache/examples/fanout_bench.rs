//! Fan-out benchmark: N subscribers on one topic of a cache server whose upstream is an
//! in-process stand-in for the kafka client. Prints, per N: the upstream streams the cache
//! opened (each is one fetch per partition in the kafka client), resident memory per idle
//! subscriber, and the latency from an append upstream to each subscriber receiving it.
//!
//! ```sh
//! cargo run --release -p binding-kafka-cache --example fanout_bench -- 1 100 10000
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use binding_api::binding::{Binding, Worker};
use binding_api::ext::kafka::{
    KafkaBeginEx, KafkaDataEx, KafkaFlushEx, KafkaMergedBeginEx, KafkaRecordEx, KafkaReplyBeginEx,
    Progress, StartPosition,
};
use binding_api::ext::{BeginEx, DataEx, FlushEx};
use binding_api::frame::{Begin, Data, Flush, Frame, ReasonKind, Reset, Window};
use binding_api::stream::{self, Acceptor};
use binding_kafka_cache::{CacheOptions, CacheServer};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

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

fn record(up: &mut Acceptor, offset: i64, epoch: Instant) {
    let nanos = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let value = Bytes::copy_from_slice(&nanos.to_be_bytes());
    let mut progress = Progress::default();
    progress.set(0, offset + 1);
    let ex = KafkaRecordEx {
        partition: 0,
        offset,
        timestamp: 0,
        key: None,
        headers: Vec::new(),
        value_len: Some(8),
        high_watermark: offset + 1,
        progress: Some(Arc::new(progress)),
    };
    up.reply
        .data(Data {
            payload: value,
            ext: DataEx::Kafka(KafkaDataEx::Record(ex)),
        })
        .unwrap();
}

async fn bench(n: usize, worker: Worker) {
    let epoch = Instant::now();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = CacheServer::new("cache", CacheOptions::default(), Arc::new(Upstream(tx)));
    let cache = server.cache().clone();
    let server: Arc<dyn Binding> = Arc::new(server);
    let latencies: Rc<RefCell<Vec<u64>>> = Rc::default();
    let rss_before = rss_bytes();
    let mut up: Option<Acceptor> = None;
    for i in 0..n {
        let (mut sub, acceptor) = stream::open(Begin {
            ext: BeginEx::Kafka(KafkaBeginEx::Merged(KafkaMergedBeginEx {
                topic: "bench".into(),
                default_start: StartPosition::Latest,
                ..Default::default()
            })),
        });
        server.new_stream(acceptor, &worker);
        sub.reply
            .window(Window {
                credit: 65536,
                padding: 0,
            })
            .unwrap();
        let latencies = latencies.clone();
        worker.spawn(async move {
            // Own the whole stream: dropping its initial writer would end the subscription.
            let mut sub = sub;
            while let Some(frame) = sub.reply.frame().await {
                if let Frame::Data(data) = frame {
                    let sent = u64::from_be_bytes(data.payload[..8].try_into().unwrap());
                    let now = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    latencies.borrow_mut().push(now.saturating_sub(sent));
                }
                sub.reply.replenish();
            }
        });
        if i == 0 {
            let mut stream = rx.recv().await.unwrap();
            stream
                .reply
                .begin(Begin {
                    ext: BeginEx::Kafka(KafkaBeginEx::Reply(KafkaReplyBeginEx {
                        topic: "bench".into(),
                        partitions: vec![0],
                    })),
                })
                .unwrap();
            stream
                .reply
                .flush(Flush {
                    ext: FlushEx::Kafka(KafkaFlushEx {
                        progress: Arc::new(Progress {
                            partitions: vec![(0, 0)],
                        }),
                    }),
                })
                .unwrap();
            up = Some(stream);
        }
    }
    // Let every subscriber begin, catch up and go idle.
    tokio::time::sleep(Duration::from_millis(200 + n as u64 / 20)).await;
    let rss_idle = rss_bytes();
    let mut up = up.expect("upstream");
    const RECORDS: i64 = 20;
    for offset in 0..RECORDS {
        record(&mut up, offset, epoch);
        let want = n * (offset as usize + 1);
        let deadline = Instant::now() + Duration::from_secs(30);
        while latencies.borrow().len() < want && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    let mut l = latencies.borrow().clone();
    l.sort_unstable();
    let pct = |p: f64| {
        l.get(((l.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0) as f64
            / 1e6
    };
    println!(
        "subscribers {n:>6}  upstream streams {}  rss/idle subscriber {:>6.0} B  received {}/{}  append→wake p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        cache.stats().upstream_streams.load(Ordering::Relaxed),
        rss_idle.saturating_sub(rss_before) as f64 / n as f64,
        l.len(),
        n * RECORDS as usize,
        pct(0.5),
        pct(0.99),
        pct(1.0),
    );
    worker.shutdown().cancel();
}

fn main() {
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
        local.block_on(&rt, bench(n, worker));
    }
}

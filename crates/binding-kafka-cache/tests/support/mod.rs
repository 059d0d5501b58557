//! Helpers: a scripted kafka client below the cache, subscribers above it.
#![allow(dead_code, clippy::unwrap_used)]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use binding_api::binding::{Binding, Worker};
use binding_api::ext::kafka::{
    Filter, KafkaBeginEx, KafkaDataEx, KafkaFlushEx, KafkaGapEx, KafkaMergedBeginEx, KafkaRecordEx,
    KafkaReplyBeginEx, KafkaResetEx, Progress, StartPosition,
};
use binding_api::ext::{BeginEx, DataEx, FlushEx, ResetEx};
use binding_api::frame::{Begin, Data, Flush, Frame, Window};
use binding_api::stream::{self, Acceptor, Initiator};
use binding_kafka_client::{KafkaClient, KafkaOptions};
use binding_tcp::{TcpClient, TcpOptions};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Runs `f` on a current-thread runtime with a local set, as on a worker.
pub fn run<F: Future>(f: impl FnOnce(Worker) -> F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let worker = Worker::new(0, 1, CancellationToken::new());
    local.block_on(&rt, f(worker))
}

/// A kafka client stand-in: hands every merged or fetch stream opened to it to the test,
/// and keeps describe streams apart (unanswered unless a test takes them).
pub struct Scripted {
    pub opened: AtomicUsize,
    tx: mpsc::UnboundedSender<Acceptor>,
    describes: Mutex<Vec<Acceptor>>,
}

impl Scripted {
    pub fn new() -> (Arc<Scripted>, mpsc::UnboundedReceiver<Acceptor>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Arc::new(Scripted {
                opened: AtomicUsize::new(0),
                tx,
                describes: Mutex::new(Vec::new()),
            }),
            rx,
        )
    }

    pub fn count(&self) -> usize {
        self.opened.load(Ordering::SeqCst)
    }

    /// The describe streams opened so far, taken.
    pub fn take_describes(&self) -> Vec<Acceptor> {
        std::mem::take(&mut *self.describes.lock().unwrap())
    }
}

impl Binding for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }

    fn new_stream(&self, stream: Acceptor, _worker: &Worker) {
        if let BeginEx::Kafka(KafkaBeginEx::Describe(_)) = &stream.begin.ext {
            self.describes.lock().unwrap().push(stream);
            return;
        }
        self.opened.fetch_add(1, Ordering::SeqCst);
        let _ = self.tx.send(stream);
    }
}

/// The merged begin the cache sent upstream.
pub fn upstream_begin(acceptor: &Acceptor) -> KafkaMergedBeginEx {
    match &acceptor.begin.ext {
        BeginEx::Kafka(KafkaBeginEx::Merged(m)) => m.clone(),
        other => panic!("expected a merged begin, got {other:?}"),
    }
}

pub fn reply_begin(acceptor: &mut Acceptor, topic: &str, partitions: &[i32]) {
    acceptor
        .output
        .begin(Begin {
            ext: BeginEx::Kafka(KafkaBeginEx::Reply(KafkaReplyBeginEx {
                topic: topic.into(),
                partitions: partitions.to_vec(),
            })),
        })
        .unwrap();
}

/// Sends one record upstream (needs credit).
pub fn send(acceptor: &mut Acceptor, partition: i32, offset: i64, key: Option<&str>, value: &str) {
    let mut progress = Progress::default();
    progress.set(partition, offset + 1);
    let ex = KafkaRecordEx {
        partition,
        offset,
        timestamp: offset,
        key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
        headers: Default::default(),
        value_len: Some(value.len() as u32),
        high_watermark: offset + 1,
        progress: Some(Arc::new(progress)),
    };
    acceptor
        .output
        .data(Data {
            payload: Bytes::copy_from_slice(value.as_bytes()),
            ext: DataEx::Kafka(KafkaDataEx::Record(ex)),
        })
        .unwrap();
}

/// Sends the caught-up flush upstream.
pub fn caught_up(acceptor: &mut Acceptor, next: &[(i32, i64)]) {
    acceptor
        .output
        .flush(Flush {
            ext: FlushEx::Kafka(KafkaFlushEx {
                progress: Arc::new(Progress {
                    partitions: next.to_vec(),
                }),
            }),
        })
        .unwrap();
}

/// Opens a merged subscription on `binding`.
pub fn subscribe(
    binding: &Arc<dyn Binding>,
    worker: &Worker,
    topic: &str,
    start: StartPosition,
    filters: Vec<Filter>,
) -> Initiator {
    subscribe_with(binding, worker, topic, start, filters, 1 << 20)
}

/// Opens a merged subscription on `binding` with `credit` bytes of window.
pub fn subscribe_with(
    binding: &Arc<dyn Binding>,
    worker: &Worker,
    topic: &str,
    start: StartPosition,
    filters: Vec<Filter>,
    credit: u32,
) -> Initiator {
    let (mut initiator, acceptor) = stream::open(Begin {
        ext: BeginEx::Kafka(KafkaBeginEx::Merged(KafkaMergedBeginEx {
            topic: topic.into(),
            default_start: start,
            filters,
            ..Default::default()
        })),
    });
    binding.new_stream(acceptor, worker);
    initiator
        .input
        .window(Window { credit, padding: 0 })
        .unwrap();
    initiator
}

/// What a subscriber saw.
#[derive(Clone, Debug, PartialEq)]
pub enum Seen {
    Begin(Vec<i32>),
    Record {
        partition: i32,
        offset: i64,
        value: String,
        progress: Vec<(i32, i64)>,
    },
    CaughtUp(Vec<(i32, i64)>),
    Gap(KafkaGapEx),
    Refused(Option<KafkaResetEx>),
    End,
}

/// Reads frames until `until` holds for the last one seen or a second passes with nothing.
pub async fn read(initiator: &mut Initiator, until: impl Fn(&Seen) -> bool) -> Vec<Seen> {
    let mut out = Vec::new();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), initiator.input.frame()).await;
        let seen = match frame {
            Err(_) => return out,
            Ok(None) => {
                let ext = initiator.output.reset_reason().and_then(|r| match r.ext {
                    ResetEx::Kafka(k) => Some(k),
                    _ => None,
                });
                out.push(Seen::Refused(ext));
                return out;
            }
            Ok(Some(frame)) => match frame {
                Frame::Begin(b) => match b.ext {
                    BeginEx::Kafka(KafkaBeginEx::Reply(r)) => Seen::Begin(r.partitions),
                    _ => continue,
                },
                Frame::Data(d) => match d.ext {
                    DataEx::Kafka(KafkaDataEx::Record(r)) => Seen::Record {
                        partition: r.partition,
                        offset: r.offset,
                        value: String::from_utf8_lossy(&d.payload).into_owned(),
                        progress: r.progress.map(|p| p.partitions.clone()).unwrap_or_default(),
                    },
                    _ => continue,
                },
                Frame::Flush(f) => match f.ext {
                    FlushEx::Kafka(k) => Seen::CaughtUp(k.progress.partitions.clone()),
                    FlushEx::KafkaGap(g) => Seen::Gap(g),
                    _ => continue,
                },
                Frame::End(_) => Seen::End,
                Frame::Abort(_) => {
                    let ext = initiator.output.reset_reason().and_then(|r| match r.ext {
                        ResetEx::Kafka(k) => Some(k),
                        _ => None,
                    });
                    Seen::Refused(ext)
                }
            },
        };
        initiator.input.replenish();
        let stop = until(&seen) || matches!(seen, Seen::Refused(_) | Seen::End);
        out.push(seen);
        if stop {
            return out;
        }
    }
}

/// Offsets of the records seen.
pub fn offsets(seen: &[Seen]) -> Vec<(i32, i64)> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Record {
                partition, offset, ..
            } => Some((*partition, *offset)),
            _ => None,
        })
        .collect()
}

/// A kafka client binding for the broker of `e2e_tests::kafka::bootstrap()`.
pub fn kafka_client() -> Arc<dyn Binding> {
    let addr = e2e_tests::kafka::bootstrap();
    let (host, port) = addr.rsplit_once(':').unwrap();
    let tcp: Arc<dyn Binding> = Arc::new(TcpClient::new("tcp", TcpOptions::default(), vec![]));
    let options = KafkaOptions {
        servers: vec![(host.to_owned(), port.parse().unwrap())],
        ..KafkaOptions::default()
    };
    Arc::new(KafkaClient::new("kafka", options, tcp))
}

/// Reads until `want` records arrived (and, if `flush`, the caught-up flush); returns the
/// values in arrival order per partition.
pub async fn collect(
    mut sub: binding_api::stream::Initiator,
    want: usize,
    flush: bool,
) -> (Vec<(i32, i64)>, binding_api::stream::Initiator) {
    let mut got = Vec::new();
    let mut flushed = !flush;
    let deadline = Instant::now() + Duration::from_secs(150);
    while got.len() < want || !flushed {
        let left = deadline.saturating_duration_since(Instant::now());
        let seen = read(&mut sub, |_| true).await;
        for s in seen {
            match s {
                Seen::Record {
                    partition, offset, ..
                } => got.push((partition, offset)),
                Seen::CaughtUp(_) => flushed = true,
                Seen::Refused(e) => panic!("refused: {e:?}"),
                _ => {}
            }
        }
        if left.is_zero() {
            eprintln!("timed out with {} of {want}", got.len());
            break;
        }
    }
    (got, sub)
}

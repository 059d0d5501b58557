//! The state shared by every worker: one [`Topic`] per topic read, each a mutex over its
//! partition logs plus a version counter that wakes subscribers, and the one upstream task
//! per topic that fills it.
//!
//! Subscribers on any worker lock a topic only to copy out a few record references
//! (`Arc`s) and their cursor positions; the upstream task locks it to append what one
//! stream read brought. Neither waits for the other for longer than that.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use binding_api::binding::{Binding, Worker};
use binding_api::ext::kafka::{
    Isolation, KafkaBeginEx, KafkaDataEx, KafkaMergedBeginEx, KafkaRecordEx, KafkaResetEx,
    StartPosition,
};
use binding_api::ext::{BeginEx, DataEx, FlushEx, ResetEx};
use binding_api::frame::{Begin, Frame, ReasonKind, Reset, Window};
use binding_api::stream::{self, Initiator};
use bytes::{Bytes, BytesMut};
use tokio::sync::watch;

use crate::config::{CacheOptions, DefaultOffset, TopicOptions};
use crate::log::{CachedRecord, PartitionLog};

/// Credit granted to the upstream merged stream.
const UPSTREAM_WINDOW: u32 = 8 * 1024 * 1024;
/// Frames handled between two wake-ups of the subscribers.
const UPSTREAM_BATCH: usize = 256;
/// How often retention runs.
const EVICT_EVERY_MS: u64 = 1000;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Where a topic stands.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    /// Waiting for the upstream stream to begin.
    Starting,
    /// Partitions known; records flow.
    Ready,
    /// Kafka refused the topic; subscribers are refused the same way.
    Refused(Reset),
}

/// A topic's logs and status, under the topic's lock.
#[derive(Debug)]
pub struct TopicState {
    /// Where the topic stands.
    pub status: Status,
    /// One log per partition.
    pub partitions: BTreeMap<i32, PartitionLog>,
    last_evict: u64,
    /// The upstream caught up once: partitions that appear later start live.
    live: bool,
}

/// One cached topic.
#[derive(Debug)]
pub struct Topic {
    name: String,
    options: TopicOptions,
    state: Mutex<TopicState>,
    version: watch::Sender<u64>,
}

impl Topic {
    /// The topic name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Locks the topic's state.
    pub fn lock(&self) -> MutexGuard<'_, TopicState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A receiver woken whenever something is appended or the status changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    fn wake(&self) {
        self.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn set_status(&self, status: Status) {
        self.lock().status = status;
        self.wake();
    }
}

/// Counters of the cache, for tests and benchmarks.
#[derive(Debug, Default)]
pub struct Stats {
    /// Upstream streams opened (one per topic, plus one per reconnection).
    pub upstream_streams: AtomicU64,
    /// Records appended.
    pub appended: AtomicU64,
    /// Bytes held by every log.
    pub bytes: AtomicU64,
}

/// The cache of one `cache_server` binding, shared by every worker.
pub struct Cache {
    name: String,
    options: CacheOptions,
    exit: Arc<dyn Binding>,
    topics: Mutex<HashMap<String, Arc<Topic>>>,
    stats: Stats,
    epoch: Instant,
}

impl Cache {
    /// A cache fetching through `exit` (a kafka `client` binding).
    pub fn new(name: impl Into<String>, options: CacheOptions, exit: Arc<dyn Binding>) -> Self {
        Cache {
            name: name.into(),
            options,
            exit,
            topics: Mutex::new(HashMap::new()),
            stats: Stats::default(),
            epoch: Instant::now(),
        }
    }

    /// The binding's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The options.
    pub fn options(&self) -> &CacheOptions {
        &self.options
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn topics(&self) -> MutexGuard<'_, HashMap<String, Arc<Topic>>> {
        self.topics.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The topic `name`, starting its upstream on `worker` when it is new: exactly one
    /// upstream per topic, whichever worker asks first.
    pub fn topic(self: &Arc<Self>, name: &str, worker: &Worker) -> Arc<Topic> {
        let mut topics = self.topics();
        if let Some(topic) = topics.get(name) {
            return topic.clone();
        }
        let options = self.options.topic(name);
        let (version, _) = watch::channel(0);
        let topic = Arc::new(Topic {
            name: name.to_owned(),
            options,
            state: Mutex::new(TopicState {
                status: Status::Starting,
                partitions: BTreeMap::new(),
                last_evict: 0,
                live: false,
            }),
            version,
        });
        topics.insert(name.to_owned(), topic.clone());
        drop(topics);
        worker.spawn(upstream(self.clone(), topic.clone(), worker.clone()));
        topic
    }

    /// Drops a topic Kafka no longer has: its records no longer count towards the cap.
    fn forget(&self, topic: &Arc<Topic>) {
        let mut topics = self.topics();
        if topics
            .get(&topic.name)
            .is_some_and(|t| Arc::ptr_eq(t, topic))
        {
            topics.remove(&topic.name);
        }
        drop(topics);
        let freed: u64 = std::mem::take(&mut topic.lock().partitions)
            .values()
            .map(PartitionLog::bytes)
            .sum();
        self.stats.bytes.fetch_sub(freed, Ordering::Relaxed);
    }

    /// Evicts the globally oldest segments until the cache is under its cap.
    fn enforce_cap(&self) {
        while self.stats.bytes.load(Ordering::Relaxed) > self.options.max_bytes {
            let topics: Vec<Arc<Topic>> = self.topics().values().cloned().collect();
            let oldest = topics
                .iter()
                .filter_map(|t| {
                    let state = t.lock();
                    state
                        .partitions
                        .iter()
                        .filter_map(|(p, log)| log.oldest_at().map(|at| (at, *p)))
                        .min()
                        .map(|(at, p)| (at, p, t.clone()))
                })
                .min_by_key(|(at, p, _)| (*at, *p));
            let Some((_, partition, topic)) = oldest else {
                return;
            };
            let freed = topic
                .lock()
                .partitions
                .get_mut(&partition)
                .map_or(0, PartitionLog::evict_oldest);
            self.stats.bytes.fetch_sub(freed, Ordering::Relaxed);
            topic.wake();
        }
    }
}

/// How one upstream stream ended.
enum Outcome {
    /// Kafka refused the stream before it began.
    Refused(Reset),
    /// It ended or failed after it began (or before, for want of a broker): retry.
    Lost,
    /// The worker is shutting down.
    Shutdown,
}

/// The one reader of a topic: opens a merged stream through the exit, appends what it
/// brings, and reopens it (from where the logs end) when it fails, with backoff.
async fn upstream(cache: Arc<Cache>, topic: Arc<Topic>, worker: Worker) {
    let bootstrap = cache.options.bootstrap.iter().any(|t| *t == topic.name);
    let mut backoff = BACKOFF_MIN;
    loop {
        let begin = resume_begin(&topic);
        let (mut initiator, acceptor) = stream::open(Begin {
            ext: BeginEx::Kafka(KafkaBeginEx::Merged(begin)),
        });
        cache.stats.upstream_streams.fetch_add(1, Ordering::Relaxed);
        cache.exit.new_stream(acceptor, &worker);
        let _ = initiator.reply.window(Window {
            credit: UPSTREAM_WINDOW,
            padding: 0,
        });
        let (outcome, began) = tokio::select! {
            r = pump(&cache, &topic, &mut initiator) => r,
            () = worker.shutdown().cancelled() => (Outcome::Shutdown, false),
        };
        match outcome {
            Outcome::Shutdown => return,
            Outcome::Refused(reset) if !bootstrap && is_unknown_topic(&reset) => {
                tracing::debug!(topic = %topic.name, "kafka cache: unknown topic");
                cache.forget(&topic);
                topic.set_status(Status::Refused(reset));
                return;
            }
            Outcome::Refused(_) | Outcome::Lost => {}
        }
        if began {
            backoff = BACKOFF_MIN;
        }
        tracing::debug!(topic = %topic.name, ?backoff, "kafka cache: upstream lost, retrying");
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = worker.shutdown().cancelled() => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

fn is_unknown_topic(reset: &Reset) -> bool {
    matches!(reset.ext, ResetEx::Kafka(KafkaResetEx::UnknownTopic { .. }))
}

/// The begin of an upstream stream: where every log ends, else the topic's default.
fn resume_begin(topic: &Topic) -> KafkaMergedBeginEx {
    let state = topic.lock();
    KafkaMergedBeginEx {
        topic: topic.name.clone(),
        partitions: state
            .partitions
            .iter()
            .filter(|(_, log)| log.start().is_some())
            .map(|(p, log)| (*p, StartPosition::Offset(log.end())))
            .collect(),
        default_start: match topic.options.default_offset {
            DefaultOffset::Historical => StartPosition::Earliest,
            DefaultOffset::Live => StartPosition::Latest,
        },
        filters: Vec::new(),
        isolation: Isolation::ReadCommitted,
    }
}

/// A record whose value is still arriving in continuation frames.
struct Partial {
    ex: KafkaRecordEx,
    value: BytesMut,
    len: usize,
}

/// Reads the upstream stream until it ends; returns how, and whether it had begun.
async fn pump(cache: &Cache, topic: &Topic, initiator: &mut Initiator) -> (Outcome, bool) {
    let mut began = false;
    let mut partial: Option<Partial> = None;
    loop {
        let Some(first) = initiator.reply.frame().await else {
            return (Outcome::Lost, began);
        };
        let mut frames = vec![first];
        while frames.len() < UPSTREAM_BATCH
            && let Some(frame) = initiator.reply.try_frame()
        {
            frames.push(frame);
        }
        let now = cache.now();
        let mut state = topic.lock();
        let before: u64 = state.partitions.values().map(PartitionLog::bytes).sum();
        let mut done = None;
        for frame in frames {
            match frame {
                Frame::Begin(begin) => {
                    if let BeginEx::Kafka(KafkaBeginEx::Reply(reply)) = begin.ext {
                        for p in reply.partitions {
                            let retention = topic.options.retention;
                            state
                                .partitions
                                .entry(p)
                                .or_insert_with(|| PartitionLog::new(retention));
                        }
                    }
                    state.status = Status::Ready;
                    began = true;
                }
                Frame::Data(data) => match data.ext {
                    DataEx::Kafka(KafkaDataEx::Record(ex)) => {
                        let len = ex.value_len.map_or(0, |l| l as usize);
                        if data.payload.len() >= len {
                            append(cache, topic, &mut state, ex, data.payload);
                        } else {
                            let mut value = BytesMut::with_capacity(data.payload.len());
                            value.extend_from_slice(&data.payload);
                            partial = Some(Partial { ex, value, len });
                        }
                    }
                    DataEx::Kafka(KafkaDataEx::Continuation) => {
                        if let Some(mut p) = partial.take() {
                            p.value.extend_from_slice(&data.payload);
                            if p.value.len() >= p.len {
                                append(cache, topic, &mut state, p.ex, p.value.freeze());
                            } else {
                                partial = Some(p);
                            }
                        }
                    }
                    _ => {}
                },
                Frame::Flush(flush) => {
                    if let FlushEx::Kafka(flush) = flush.ext {
                        state.live = true;
                        for (p, next) in &flush.progress.partitions {
                            if let Some(log) = state.partitions.get_mut(p) {
                                log.advance(*next);
                                log.set_live();
                            }
                        }
                    }
                }
                Frame::End(_) => done = Some(Outcome::Lost),
                Frame::Abort(_) => {
                    done = Some(match initiator.initial.reset_reason() {
                        Some(reset) if !began => Outcome::Refused(reset),
                        _ => Outcome::Lost,
                    });
                }
            }
        }
        if now.saturating_sub(state.last_evict) >= EVICT_EVERY_MS {
            state.last_evict = now;
            for log in state.partitions.values_mut() {
                log.evict(now);
            }
        }
        let after: u64 = state.partitions.values().map(PartitionLog::bytes).sum();
        drop(state);
        if after >= before {
            cache
                .stats
                .bytes
                .fetch_add(after - before, Ordering::Relaxed);
        } else {
            cache
                .stats
                .bytes
                .fetch_sub(before - after, Ordering::Relaxed);
        }
        cache.enforce_cap();
        topic.wake();
        initiator.reply.replenish();
        if let Some(outcome) = done {
            return (outcome, began);
        }
    }
}

fn append(cache: &Cache, topic: &Topic, state: &mut TopicState, ex: KafkaRecordEx, value: Bytes) {
    let (retention, now, live) = (topic.options.retention, cache.now(), state.live);
    let log = state.partitions.entry(ex.partition).or_insert_with(|| {
        // A partition the topic gained after the upstream caught up.
        let mut log = PartitionLog::new(retention);
        if live {
            log.set_live();
        }
        log
    });
    let record = CachedRecord {
        offset: ex.offset,
        timestamp: ex.timestamp,
        key: ex.key,
        headers: ex.headers,
        value: ex.value_len.map(|_| value),
    };
    if log.append(record, now).is_ok() {
        cache.stats.appended.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(progress) = &ex.progress
        && let Some(next) = progress.get(ex.partition)
    {
        log.advance(next);
    }
}

/// Refusal for a stream naming no partition the topic has.
pub fn unknown_partition(topic: &str, partition: i32) -> Reset {
    Reset {
        reason: binding_api::frame::Reason::new(
            ReasonKind::Refused,
            format!("topic '{topic}' has no partition {partition}"),
        ),
        ext: ResetEx::Kafka(KafkaResetEx::Error { code: 3 }),
    }
}

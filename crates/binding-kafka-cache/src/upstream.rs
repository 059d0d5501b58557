//! The one reader of a topic: a merged stream through the topic's exit (one fetch per
//! partition in the kafka client) that fills the partition logs, and beside it a describe
//! stream that gives the topic's Kafka config, by which the logs are retained.
//!
//! Both are reopened, from where each log ends, with backoff when the merged stream fails.
//! Every second (and after each batch of frames) retention runs and the cache's cap is
//! enforced; a topic idle for `idleTopicMs` is dropped and its streams ended.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use binding_api::binding::Worker;
use binding_api::ext::kafka::{
    Isolation, KafkaBeginEx, KafkaDataEx, KafkaDescribeBeginEx, KafkaMergedBeginEx, KafkaRecordEx,
    StartPosition,
};
use binding_api::ext::{BeginEx, DataEx, FlushEx};
use binding_api::frame::{Begin, End, Frame, Reset, Window};
use binding_api::stream::{self, Initiator};
use bytes::{Bytes, BytesMut};

use crate::cache::{Cache, Status, Topic, TopicState, is_unknown_topic, notify};
use crate::config::{DefaultOffset, TOPIC_CONFIGS};
use crate::log::{CachedRecord, PartitionLog};
use crate::signal::Signal;

/// Credit granted to the upstream merged stream.
const UPSTREAM_WINDOW: u32 = 8 * 1024 * 1024;
/// Credit granted to the describe stream (its frames carry no payload).
const DESCRIBE_WINDOW: u32 = 64 * 1024;
/// Frames handled between two wake-ups of the subscribers.
const UPSTREAM_BATCH: usize = 256;
/// How often retention runs, and idleness is checked.
pub const EVICT_EVERY_MS: u64 = 1000;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How one upstream stream ended.
enum Outcome {
    /// Kafka refused the stream before it began.
    Refused(Reset),
    /// It ended or failed after it began (or before, for want of a broker): retry.
    Lost,
    /// The topic had no subscriber for too long.
    Dropped,
    /// The worker is shutting down.
    Shutdown,
}

/// Reads `topic` until it is dropped, Kafka says it does not exist, or the worker stops.
pub(crate) async fn run(cache: Arc<Cache>, topic: Arc<Topic>, worker: Worker) {
    let bootstrap = cache.is_bootstrap(&topic);
    let mut backoff = BACKOFF_MIN;
    loop {
        let mut merged = open(&topic, &worker, merged_begin(&topic), UPSTREAM_WINDOW);
        cache
            .stats()
            .upstream_streams
            .fetch_add(1, Ordering::Relaxed);
        let describe = KafkaBeginEx::Describe(KafkaDescribeBeginEx {
            topic: topic.name().to_owned(),
            configs: TOPIC_CONFIGS.iter().map(|c| (*c).to_owned()).collect(),
        });
        let mut describe = Some(open(&topic, &worker, describe, DESCRIBE_WINDOW));
        let (outcome, delivered) = tokio::select! {
            r = pump(&cache, &topic, &mut merged, &mut describe) => r,
            () = worker.shutdown().cancelled() => (Outcome::Shutdown, false),
        };
        match outcome {
            Outcome::Shutdown => return,
            Outcome::Dropped => {
                let _ = merged.initial.end(End::default());
                if let Some(mut describe) = describe {
                    let _ = describe.initial.end(End::default());
                }
                return;
            }
            Outcome::Refused(reset) if !bootstrap && is_unknown_topic(&reset) => {
                tracing::debug!(topic = %topic.name(), "kafka cache: unknown topic");
                cache.forget(&topic);
                topic.set_status(Status::Refused(reset));
                return;
            }
            Outcome::Refused(_) | Outcome::Lost => {}
        }
        drop((merged, describe));
        // Only a stream that delivered ends the streak: one that begins and then fails (a
        // corrupt batch, say) keeps the wait growing.
        if delivered {
            backoff = BACKOFF_MIN;
        }
        tracing::debug!(topic = %topic.name(), ?backoff, "kafka cache: upstream lost, retrying");
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = worker.shutdown().cancelled() => return,
        }
        if cache.drop_if_idle(&topic) {
            return;
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

fn open(topic: &Topic, worker: &Worker, begin: KafkaBeginEx, credit: u32) -> Initiator {
    let (mut initiator, acceptor) = stream::open(Begin {
        ext: BeginEx::Kafka(begin),
    });
    topic.exit.new_stream(acceptor, worker);
    let _ = initiator.reply.window(Window { credit, padding: 0 });
    initiator
}

/// The begin of a merged stream: where every log ends, else the topic's default.
fn merged_begin(topic: &Topic) -> KafkaBeginEx {
    let state = topic.lock();
    KafkaBeginEx::Merged(KafkaMergedBeginEx {
        topic: topic.name().to_owned(),
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
    })
}

/// The next frame of the describe stream; never, once it is gone.
async fn describe_frame(describe: &mut Option<Initiator>) -> Option<Frame> {
    match describe {
        Some(d) => d.reply.frame().await,
        None => std::future::pending().await,
    }
}

/// A record whose value is still arriving in continuation frames.
struct Partial {
    ex: KafkaRecordEx,
    value: BytesMut,
    len: usize,
}

/// Reads the upstream streams until the merged one ends or the topic is dropped; returns
/// how, and whether the merged stream delivered (a record, or the caught-up flush).
async fn pump(
    cache: &Cache,
    topic: &Arc<Topic>,
    merged: &mut Initiator,
    describe: &mut Option<Initiator>,
) -> (Outcome, bool) {
    let mut began = false;
    let mut delivered = false;
    let mut partial: Option<Partial> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(EVICT_EVERY_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // The config first: records appended under it are segmented by it.
        let first = tokio::select! {
            biased;
            frame = describe_frame(describe) => {
                match frame {
                    Some(Frame::Data(data)) => {
                        if let DataEx::Kafka(KafkaDataEx::Configs(configs)) = data.ext {
                            let mut state = topic.lock();
                            state.configure(&topic.options, configs);
                            state.last_evict = 0;
                            drop(state);
                            maintain(cache, topic);
                        }
                        if let Some(d) = describe {
                            d.reply.replenish();
                        }
                    }
                    Some(_) => {}
                    None => *describe = None,
                }
                continue;
            }
            frame = merged.reply.frame() => match frame {
                Some(frame) => frame,
                None => return (Outcome::Lost, delivered),
            },
            _ = tick.tick() => {
                if cache.drop_if_idle(topic) {
                    return (Outcome::Dropped, delivered);
                }
                maintain(cache, topic);
                continue;
            }
        };
        let mut frames = vec![first];
        while frames.len() < UPSTREAM_BATCH
            && let Some(frame) = merged.reply.try_frame()
        {
            frames.push(frame);
        }
        let now = cache.now();
        let mut state = topic.lock();
        let before = held(&state);
        let mut done = None;
        let mut woken = Vec::new();
        for frame in frames {
            match frame {
                Frame::Begin(begin) => {
                    if let BeginEx::Kafka(KafkaBeginEx::Reply(reply)) = begin.ext {
                        let retention = state.retention;
                        for p in reply.partitions {
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
                        delivered = true;
                        let len = ex.value_len.map_or(0, |l| l as usize);
                        if data.payload.len() >= len {
                            append(cache, &mut state, ex, data.payload, now, &mut woken);
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
                                append(cache, &mut state, p.ex, p.value.freeze(), now, &mut woken);
                            } else {
                                partial = Some(p);
                            }
                        }
                    }
                    _ => {}
                },
                Frame::Flush(flush) => {
                    if let FlushEx::Kafka(flush) = flush.ext {
                        delivered = true;
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
                    done = Some(match merged.initial.reset_reason() {
                        Some(reset) if !began => Outcome::Refused(reset),
                        _ => Outcome::Lost,
                    });
                }
            }
        }
        let after = held(&state);
        drop(state);
        notify(woken);
        account(cache, before, after);
        maintain(cache, topic);
        topic.wake();
        merged.reply.replenish();
        if let Some(outcome) = done {
            return (outcome, delivered);
        }
    }
}

fn held(state: &TopicState) -> u64 {
    state.partitions.values().map(PartitionLog::bytes).sum()
}

fn account(cache: &Cache, before: u64, after: u64) {
    let bytes = &cache.stats().bytes;
    if after >= before {
        bytes.fetch_add(after - before, Ordering::Relaxed);
    } else {
        bytes.fetch_sub(before - after, Ordering::Relaxed);
    }
}

/// Runs retention when it is due, then the cache's cap; wakes subscribers when something
/// was evicted (they learn of gaps on their next read).
fn maintain(cache: &Cache, topic: &Topic) {
    let now = cache.now();
    let mut state = topic.lock();
    let mut freed = 0;
    if now.saturating_sub(state.last_evict) >= EVICT_EVERY_MS || state.last_evict == 0 {
        state.last_evict = now.max(1);
        for log in state.partitions.values_mut() {
            freed += log.evict(now);
        }
    }
    drop(state);
    account(cache, freed, 0);
    cache.enforce_cap();
    if freed > 0 {
        topic.wake();
    }
}

/// Appends one record to its partition's log, and notes it for the parked subscribers it
/// matches (their wakers go to `woken`).
fn append(
    cache: &Cache,
    state: &mut TopicState,
    ex: KafkaRecordEx,
    value: Bytes,
    now: u64,
    woken: &mut Vec<Arc<Signal>>,
) {
    let (retention, live) = (state.retention, state.live);
    let log = state.partitions.entry(ex.partition).or_insert_with(|| {
        // A partition the topic gained after the upstream caught up.
        let mut log = PartitionLog::new(retention);
        if live {
            log.set_live();
        }
        log
    });
    log.note_high_watermark(ex.high_watermark);
    if ex.offset >= log.end() {
        let key = ex.key.as_ref();
        state
            .parked
            .append(ex.partition, ex.offset, key, &ex.headers, woken);
    }
    let record = CachedRecord {
        offset: ex.offset,
        timestamp: ex.timestamp,
        key: ex.key,
        headers: ex.headers,
        value: ex.value_len.map(|_| value),
    };
    if log.append(record, now).is_ok() {
        cache.stats().appended.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(progress) = &ex.progress
        && let Some(next) = progress.get(ex.partition)
    {
        log.advance(next);
    }
}

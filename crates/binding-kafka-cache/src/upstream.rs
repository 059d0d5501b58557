//! The one reader of a topic: a merged stream through the topic's exit (one fetch per
//! partition in the kafka client) that fills the partition logs, and beside it a describe
//! stream that gives the topic's Kafka config, by which the logs are retained.
//!
//! Both are reopened, from where each log ends, with backoff when the merged stream fails.
//! Every second (and after each batch of frames) retention runs and the cache's cap is
//! enforced; a topic idle for `idleTopicMs` is dropped and its streams ended.
//!
//! What a frame does to the topic is [`TopicState::apply`]'s, without I/O; this module reads
//! the stream ends, keeps the clock and the tick, returns credit, and wakes subscribers once
//! the topic's lock is released.
//!
//! [`TopicState::apply`]: crate::cache::TopicState::apply

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use binding_api::binding::Worker;
use binding_api::ext::BeginEx;
use binding_api::ext::kafka::{KafkaBeginEx, KafkaDescribeBeginEx};
use binding_api::frame::{Begin, End, Frame, Reset, Window};
use binding_api::stream::{self, Initiator};

use crate::cache::{
    Cache, EVICT_EVERY_MS, Effects, Status, StreamEnd, Topic, Upstream, is_unknown_topic, notify,
};
use crate::config::TOPIC_CONFIGS;
use crate::metrics::TopicMeter;

/// Credit granted to the upstream merged stream.
const UPSTREAM_WINDOW: u32 = 8 * 1024 * 1024;
/// Credit granted to the describe stream (its frames carry no payload).
const DESCRIBE_WINDOW: u32 = 64 * 1024;
/// Frames handled between two wake-ups of the subscribers.
const UPSTREAM_BATCH: usize = 256;
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
    let mut meter = TopicMeter::new(cache.metrics(), worker.index(), topic.name());
    let mut backoff = BACKOFF_MIN;
    loop {
        let begin = KafkaBeginEx::Merged(topic.lock().open_merged());
        let mut merged = open(&topic, &worker, begin, UPSTREAM_WINDOW);
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
            r = pump(&cache, &topic, &mut merged, &mut describe, &mut meter) => r,
            () = worker.shutdown().cancelled() => (Outcome::Shutdown, false),
        };
        match outcome {
            Outcome::Shutdown => return,
            Outcome::Dropped => {
                meter.iter().for_each(TopicMeter::gone);
                let _ = merged.output.end(End::default());
                if let Some(mut describe) = describe {
                    let _ = describe.output.end(End::default());
                }
                return;
            }
            Outcome::Refused(reset) if !bootstrap && is_unknown_topic(&reset) => {
                tracing::debug!(topic = %topic.name(), "kafka cache: unknown topic");
                cache.forget(&topic);
                meter.iter().for_each(TopicMeter::gone);
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
            meter.iter().for_each(TopicMeter::gone);
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
    let _ = initiator.input.window(Window { credit, padding: 0 });
    initiator
}

/// The next frame of the describe stream; never, once it is gone.
async fn describe_frame(describe: &mut Option<Initiator>) -> Option<Frame> {
    match describe {
        Some(d) => d.input.frame().await,
        None => std::future::pending().await,
    }
}

/// Reads the upstream streams until the merged one ends or the topic is dropped; returns
/// how, and whether the merged stream delivered (a record, or the caught-up flush).
async fn pump(
    cache: &Cache,
    topic: &Arc<Topic>,
    merged: &mut Initiator,
    describe: &mut Option<Initiator>,
    meter: &mut Option<TopicMeter>,
) -> (Outcome, bool) {
    let mut delivered = false;
    let mut tick = tokio::time::interval(Duration::from_millis(EVICT_EVERY_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // The config first: records appended under it are segmented by it.
        let first = tokio::select! {
            biased;
            frame = describe_frame(describe) => {
                match frame {
                    Some(frame) => {
                        let mut effects = Effects::default();
                        topic.lock().apply(Upstream::Describe(frame), cache.now(), &mut effects);
                        if effects.retention_changed {
                            maintain(cache, topic);
                        }
                        if let Some(d) = describe {
                            d.input.replenish();
                        }
                    }
                    None => *describe = None,
                }
                continue;
            }
            frame = merged.input.frame() => match frame {
                Some(frame) => frame,
                None => return (Outcome::Lost, delivered),
            },
            _ = tick.tick() => {
                if cache.drop_if_idle(topic) {
                    return (Outcome::Dropped, delivered);
                }
                maintain(cache, topic);
                observe(meter, topic, 0);
                continue;
            }
        };
        let mut frames = vec![first];
        while frames.len() < UPSTREAM_BATCH
            && let Some(frame) = merged.input.try_frame()
        {
            frames.push(frame);
        }
        let now = cache.now();
        let mut effects = Effects::default();
        let mut state = topic.lock();
        for frame in frames {
            state.apply(Upstream::Merged(frame), now, &mut effects);
        }
        drop(state);
        delivered |= effects.delivered;
        let stats = cache.stats();
        stats
            .appended
            .fetch_add(effects.appended, Ordering::Relaxed);
        notify(effects.woken);
        stats.bytes.fetch_add(effects.grown, Ordering::Relaxed);
        maintain(cache, topic);
        observe(meter, topic, effects.appended);
        topic.wake();
        merged.input.replenish();
        match effects.ended {
            None => {}
            Some(StreamEnd::Lost) => return (Outcome::Lost, delivered),
            Some(StreamEnd::Refused) => {
                let outcome = merged
                    .output
                    .reset_reason()
                    .map_or(Outcome::Lost, Outcome::Refused);
                return (outcome, delivered);
            }
        }
    }
}

/// Reports what the topic holds now to its metrics, `appended` records after the last report.
fn observe(meter: &mut Option<TopicMeter>, topic: &Topic, appended: u64) {
    if let Some(meter) = meter {
        let totals = topic.lock().totals();
        meter.update(appended, totals);
    }
}

/// Runs retention when it is due, then the cache's cap; wakes subscribers when something
/// was evicted (they learn of gaps on their next read).
fn maintain(cache: &Cache, topic: &Topic) {
    let freed = topic.lock().apply_retention(cache.now());
    cache.stats().bytes.fetch_sub(freed, Ordering::Relaxed);
    cache.enforce_cap();
    if freed > 0 {
        topic.wake();
    }
}

//! The state shared by every worker: one [`Topic`] per topic read, each a mutex over its
//! [`TopicState`] (the partition logs) plus a version counter that wakes subscribers; the one
//! upstream task per topic that fills it lives in the crate's `upstream` module, and applies
//! what it reads with [`TopicState::apply`].
//!
//! Subscribers on any worker lock a topic only to copy out a few record references
//! (`Arc`s) and their cursor positions; the upstream task locks it to append what one
//! stream read brought. Neither waits for the other for longer than that.
//!
//! A subscriber holds a [`Subscription`]: while a topic has none for `idleTopicMs`, and is
//! not a bootstrap topic, its upstream task drops it (ends the upstream streams, frees the
//! log); a later subscriber starts it afresh.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use binding_api::binding::{Binding, Worker};
use binding_api::ext::ResetEx;
use binding_api::ext::kafka::KafkaResetEx;
use binding_api::frame::{ReasonKind, Reset};

use zilla_metrics::BindingMetrics;

use crate::TopicRoutes;
use crate::config::CacheOptions;
use crate::log::PartitionLog;
use crate::signal::{Changes, Signal};

mod topic_state;

pub use topic_state::{EVICT_EVERY_MS, Effects, Status, StreamEnd, TopicState, Totals, Upstream};

/// One cached topic.
pub struct Topic {
    pub(crate) name: String,
    /// The binding the topic is read through (its route's exit).
    pub(crate) exit: Arc<dyn Binding>,
    state: Mutex<TopicState>,
    changes: Changes,
    subscribers: AtomicUsize,
    /// When the last subscriber left (the cache's clock).
    idle_since: AtomicU64,
}

impl std::fmt::Debug for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topic")
            .field("name", &self.name)
            .field("exit", &self.exit.name())
            .field("subscribers", &self.subscribers)
            .finish_non_exhaustive()
    }
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

    /// Moved whenever something is appended or the status changes.
    pub(crate) fn changes(&self) -> &Changes {
        &self.changes
    }

    pub(crate) fn wake(&self) {
        self.changes.bump();
    }

    /// Caught-up filtered subscribers waiting for a record that matches them.
    pub fn parked(&self) -> usize {
        self.lock().parked.len()
    }

    /// Subscribers now.
    pub fn subscribers(&self) -> usize {
        self.subscribers.load(Ordering::SeqCst)
    }

    pub(crate) fn set_status(&self, status: Status) {
        let mut woken = Vec::new();
        let mut state = self.lock();
        state.status = status;
        state.parked.wake_all(&mut woken);
        drop(state);
        notify(woken);
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
    /// Topics dropped for want of subscribers.
    pub dropped_topics: AtomicU64,
}

/// A subscriber's hold on a topic: while one exists, the topic is not dropped.
pub struct Subscription {
    topic: Arc<Topic>,
    cache: Arc<Cache>,
}

impl std::ops::Deref for Subscription {
    type Target = Arc<Topic>;

    fn deref(&self) -> &Arc<Topic> {
        &self.topic
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.topic
            .idle_since
            .store(self.cache.now(), Ordering::SeqCst);
        self.topic.subscribers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The cache of one `cache_server` binding, shared by every worker.
pub struct Cache {
    name: String,
    options: CacheOptions,
    routes: TopicRoutes,
    topics: Mutex<HashMap<String, Arc<Topic>>>,
    stats: Stats,
    epoch: Instant,
    metrics: BindingMetrics,
}

impl Cache {
    /// A cache reading each topic through the exit `routes` give it (a kafka `client`
    /// binding).
    pub fn new(name: impl Into<String>, options: CacheOptions, routes: TopicRoutes) -> Self {
        Cache {
            name: name.into(),
            options,
            routes,
            topics: Mutex::new(HashMap::new()),
            stats: Stats::default(),
            epoch: Instant::now(),
            metrics: BindingMetrics::default(),
        }
    }

    /// The same cache recording in `metrics`.
    pub fn with_metrics(mut self, metrics: BindingMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// What the binding records.
    pub fn metrics(&self) -> &BindingMetrics {
        &self.metrics
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

    pub(crate) fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn topics(&self) -> MutexGuard<'_, HashMap<String, Arc<Topic>>> {
        self.topics.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The routes by topic.
    pub fn routes(&self) -> &TopicRoutes {
        &self.routes
    }

    /// The topic `name`, starting its upstream on `worker` when it is new: exactly one
    /// upstream per topic, whichever worker asks first; `None` when no route takes the topic.
    /// For bootstrap topics, which are never dropped; subscribers use [`Cache::subscribe`].
    pub fn topic(self: &Arc<Self>, name: &str, worker: &Worker) -> Option<Arc<Topic>> {
        self.get_or_start(name, worker, false)
    }

    /// The topic `name` (started as [`Cache::topic`] does), held by a new subscriber; `None`
    /// when no route takes the topic.
    pub fn subscribe(self: &Arc<Self>, name: &str, worker: &Worker) -> Option<Subscription> {
        Some(Subscription {
            topic: self.get_or_start(name, worker, true)?,
            cache: self.clone(),
        })
    }

    fn get_or_start(
        self: &Arc<Self>,
        name: &str,
        worker: &Worker,
        hold: bool,
    ) -> Option<Arc<Topic>> {
        let mut topics = self.topics();
        if let Some(topic) = topics.get(name) {
            // Counted under the map's lock, which dropping an idle topic also takes.
            if hold {
                topic.subscribers.fetch_add(1, Ordering::SeqCst);
            }
            return Some(topic.clone());
        }
        let exit = self
            .routes
            .resolve(|when| when.matches(name))?
            .exit()
            .clone();
        let topic = Arc::new(Topic {
            name: name.to_owned(),
            state: Mutex::new(TopicState::new(self.options.topic(name))),
            exit,
            changes: Changes::default(),
            subscribers: AtomicUsize::new(usize::from(hold)),
            idle_since: AtomicU64::new(self.now()),
        });
        topics.insert(name.to_owned(), topic.clone());
        drop(topics);
        // The topic's upstream outlives the subscriber that started it: a task of its own.
        worker.spawn_task(crate::upstream::run(
            self.clone(),
            topic.clone(),
            worker.clone(),
        ));
        Some(topic)
    }

    /// Whether `topic` is a bootstrap topic (read with no subscriber, never dropped).
    pub(crate) fn is_bootstrap(&self, topic: &Topic) -> bool {
        self.options.bootstrap.contains(&topic.name)
    }

    /// Drops `topic` when it is not a bootstrap topic and has had no subscriber for
    /// `idleTopicMs`: it leaves the map (a later subscriber starts it afresh) and its log is
    /// freed. Returns whether it was dropped; its upstream task then ends its streams.
    pub(crate) fn drop_if_idle(&self, topic: &Arc<Topic>) -> bool {
        if self.is_bootstrap(topic) {
            return false;
        }
        let now = self.now();
        let mut topics = self.topics();
        let idle = topic.subscribers.load(Ordering::SeqCst) == 0
            && now.saturating_sub(topic.idle_since.load(Ordering::SeqCst))
                >= self.options.idle_topic_ms;
        if !idle
            || !topics
                .get(&topic.name)
                .is_some_and(|t| Arc::ptr_eq(t, topic))
        {
            return false;
        }
        topics.remove(&topic.name);
        drop(topics);
        self.free(topic);
        self.stats.dropped_topics.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(topic = %topic.name, "kafka cache: idle topic dropped");
        true
    }

    fn free(&self, topic: &Topic) {
        let freed: u64 = std::mem::take(&mut topic.lock().partitions)
            .values()
            .map(PartitionLog::bytes)
            .sum();
        self.stats.bytes.fetch_sub(freed, Ordering::Relaxed);
    }

    /// Drops a topic Kafka no longer has: its records no longer count towards the cap.
    pub(crate) fn forget(&self, topic: &Arc<Topic>) {
        let mut topics = self.topics();
        if topics
            .get(&topic.name)
            .is_some_and(|t| Arc::ptr_eq(t, topic))
        {
            topics.remove(&topic.name);
        }
        drop(topics);
        self.free(topic);
    }

    /// Evicts the globally oldest segments until the cache is under its cap.
    pub(crate) fn enforce_cap(&self) {
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

/// Wakes the parked subscribers an append or a status change concerned (after the topic's
/// lock is released).
pub(crate) fn notify(woken: Vec<Arc<Signal>>) {
    for signal in woken {
        signal.raise();
    }
}

/// Whether a refusal says the topic does not exist.
pub(crate) fn is_unknown_topic(reset: &Reset) -> bool {
    matches!(reset.ext, ResetEx::Kafka(KafkaResetEx::UnknownTopic { .. }))
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

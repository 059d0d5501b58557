//! # binding-kafka-cache
//!
//! Zilla's `kafka` cache bindings: the fan-out point that lets any number of subscribers
//! cost Kafka what one costs. A `cache_server` reads each topic **once per process** through
//! its exit (a `kafka` `client` binding), keeps the records in memory, and serves every
//! subscriber from there; a `cache_client` routes subscribers to it by topic.
//!
//! ## Configuration
//!
//! ```yaml
//! bindings:
//!   south_kafka_cache_client:
//!     type: kafka
//!     kind: cache_client
//!     routes:
//!       - when:
//!           - topic: items*            # `*` matches any run of characters
//!         exit: south_kafka_cache_server
//!   south_kafka_cache_server:
//!     type: kafka
//!     kind: cache_server
//!     options:
//!       bootstrap: [items-snapshots]   # read from start, before any subscriber; never dropped
//!       maxBytes: 268435456            # hard cap on the whole cache (default 256 MiB)
//!       idleTopicMs: 300000            # drop a topic this long without subscribers (5 min)
//!       topics:
//!         - name: items-snapshots
//!           defaultOffset: historical  # or live: an empty cache starts at the end
//!           # Each of these overrides the topic's own Kafka config:
//!           cleanupPolicy: compact     # cleanup.policy: delete, compact, or compact,delete
//!           retentionMs: 604800000     # retention.ms, by append time, whole segments
//!           retentionBytes: 10485760   # retention.bytes, per partition
//!           deleteRetentionMs: 86400000 # delete.retention.ms: tombstones on compacted topics
//!           segmentBytes: 1048576      # the cache's segment size
//!     routes:                          # optional: the exit by topic, as the cache_client
//!       - when:
//!           - topic: items*
//!         exit: south_kafka_client
//!     exit: south_kafka_client         # topics no route takes (without it they are refused)
//!   south_kafka_client:
//!     type: kafka
//!     kind: client
//!     options: { servers: [localhost:9092] }
//!     exit: south_tcp_client
//! ```
//!
//! **Retention** is the topic's own, as Zilla's cache does it: beside each topic's merged
//! stream the cache opens a **describe** stream through the same exit (the kafka client
//! answers with DescribeConfigs, and again whenever a value changes) for `cleanup.policy`,
//! `retention.ms`, `retention.bytes`, `delete.retention.ms` and `segment.bytes`
//! ([`config::TOPIC_CONFIGS`]). Any of `cleanupPolicy`, `retentionMs`, `retentionBytes`,
//! `deleteRetentionMs` and `segmentBytes` given in `options.topics[]` wins over Kafka's
//! value; what neither gives takes Kafka's defaults (delete, 7 days, no size limit, 1 day
//! for tombstones). A `defaultOffset: live` topic keeps at most 30 s (Zilla's
//! `cache.retention.ms.max`) unless `retentionMs` says otherwise. The cache's segments are at
//! most 1 MiB, and at most a quarter of `retention.bytes`, so a partition holds no more than
//! about 1¼ × `retention.bytes`. Until the config arrives (or when the exit refuses describe
//! streams) the options and defaults apply; a config that arrives later applies to what is
//! held already. Whatever the topics say, `maxBytes` bounds the whole cache: past it the
//! oldest segment of any partition goes.
//!
//! **Idle topics**: a topic that had no subscriber for `idleTopicMs` (default 5 minutes,
//! checked every second) is dropped: its upstream streams end, its log is freed, and a later
//! subscriber starts it afresh (from Kafka, by its `defaultOffset`). Bootstrap topics are never
//! dropped.
//!
//! `maxBytes` and `idleTopicMs` are ours. Zilla's `deltaType`, `transforms`, `key` and
//! `value` are accepted and not applied. A `cache_client` accepts `options.topics[]` (`name`,
//! `key`, `value`, for models) and ignores it.
//!
//! ## Streams
//!
//! **Compacted topics** are served as Kafka serves them: a subscriber reading live gets every
//! record, those superseded by a later record of their key included, since Kafka never
//! compacts the active segment; a subscriber catching up from history skips records a newer
//! one of their key supersedes in segments closed for at least 10 s, so it gets about the
//! newest record per key, then every recent record ([`log`] says exactly when). Tombstones
//! are kept `delete.retention.ms` once compactable.
//!
//! Both kinds take the streams of [`binding_api::ext::kafka`] — **merged** (every partition
//! of a topic) and **fetch** (one partition) — and answer them exactly as the kafka client
//! would, so a binding above (sse-kafka) can exit to either:
//!
//! - the reply begins once the topic's partitions are known (the upstream began);
//! - start positions per partition: an offset, `Earliest` (the oldest record the cache
//!   holds), `Latest` (from now on) or a timestamp (the first held record at or after it);
//! - each record's first frame carries its [`KafkaRecordEx`](binding_api::ext::kafka::KafkaRecordEx)
//!   and, on merged streams, the progress of every partition; values larger than the credit
//!   continue in further frames;
//! - filters (OR of ANDs) are evaluated in the cache, at read time; a caught-up subscriber
//!   whose filters all have a key or header condition waits in the topic's [`wake`] index
//!   and is woken only by a record that matches it;
//! - one flush with the progress once the subscriber read everything the cache holds and
//!   the upstream caught up with Kafka (historical → live);
//! - a flush with [`FlushEx::KafkaGap`](binding_api::ext::FlushEx::KafkaGap) when the cache
//!   evicted records the subscriber had not read: it continues at the oldest record held;
//! - partitions the topic gains (the kafka client discovers them) reach subscribers, which
//!   read a new partition from its first record;
//! - isolation: the cache reads `read_committed` (the client drops aborted records), and
//!   serves that to every subscriber;
//! - an unknown topic refuses the subscriber with `KafkaResetEx::UnknownTopic`; a topic that
//!   no route of the cache client or server takes (and no top-level `exit`) is refused with
//!   `NoRoute` (an SSE subscriber gets a 404). A `bootstrap` topic that no route takes is a
//!   configuration error.
//!
//! Upstream, the cache server opens **one merged stream per topic** through the topic's exit (one
//! fetch per partition in the kafka client), plus its describe stream, whatever the number of
//! subscribers and on whichever worker they live. Describe streams opened *to* the cache are
//! refused (ask the kafka client). When Kafka is unreachable (also at start, Zilla #2116) or the
//! stream fails, it reopens it from where each partition's log ends, with backoff from
//! 100 ms to 5 s (reset only once the stream delivered a record or caught up, so a stream
//! that begins and then fails waits longer each time); subscribers only see a delay.
//!
//! The upstream runs on one worker, subscribers on all of them. What it appends reaches them
//! without a wake per subscriber across threads: a subscriber filtered by key or header
//! waits in the topic's wake index and is raised only by a record it matches
//! ([`wake`]); every other one waits on its own worker's list for the topic, and one relay
//! task per worker and topic waits on the topic and wakes that list on its thread.
//!
//! ## Memory
//!
//! Records are kept as received (`Bytes` slices of the fetch responses) and shared by
//! reference with every subscriber; a subscriber holds a cursor per partition and at most 64
//! record references. Retention drops whole segments by age and size; the global cap
//! (`maxBytes`) drops the oldest segment of any partition. A slow subscriber only lags, and
//! is told of a gap if the cache evicts past it; it never slows the upstream or the others.
//!
//! `maxBytes` counts the bytes of the records the logs hold. What the process holds for the
//! cache can be more, within this bound:
//! - records evicted while a subscriber still holds them: at most 64 per subscriber, plus
//!   what its stream has queued within its window (64 KiB from sse-kafka);
//! - a record is a slice of the fetch response (or inflated batch) it arrived in, and keeps
//!   that buffer alive: where eviction cuts through a response, the part before the cut stays
//!   until the last record of it goes, at most one response (4 MiB) per partition.
//!
//! So a burst read by slow subscribers shows as more than `maxBytes` (about 1.7× in issue
//! 12's measurement with many slow readers); size `maxBytes` with that headroom.
//!
//! ## Metrics
//!
//! A `cache_server` with `telemetry: {metrics: [kafka.cache.*, kafka.consumer.lag]}` records
//! per topic: `kafka.cache.size` and `kafka.cache.records` (what is held) and
//! `kafka.consumer.lag` (high watermark less the log's end, over the partitions), levels set
//! by the topic's upstream after each batch and each second from
//! [`TopicState::totals`](cache::TopicState::totals); `kafka.cache.evictions` (records
//! appended and no longer held: retention, the cap, compaction); `kafka.cache.gaps` (gaps
//! read by subscribers). docs/metrics.md lists them.
//!
//! ## Example
//!
//! ```
//! use binding_kafka_cache::log::{CachedRecord, Cursor, PartitionLog, Read, Retention};
//! use binding_api::ext::kafka::StartPosition;
//!
//! let mut log = PartitionLog::new(Retention::default());
//! let record = |offset| CachedRecord {
//!     offset,
//!     timestamp: 0,
//!     key: None,
//!     headers: Default::default(),
//!     value: Some(bytes::Bytes::from_static(b"hello")),
//! };
//! log.append(record(0), 0).unwrap();
//! let mut cursor = Cursor::new(StartPosition::Earliest);
//! assert!(matches!(log.read(&mut cursor, &[]), Read::Record(r) if r.offset == 0));
//! assert_eq!(log.read(&mut cursor, &[]), Read::Empty);
//! ```

pub mod cache;
pub mod config;
mod follow;
pub mod key_index;
pub mod log;
mod metrics;
pub mod progress_memo;
pub mod serve;
pub mod signal;
mod upstream;
pub mod wake;

use std::sync::Arc;

use binding_api::binding::{Binding, Worker};
use binding_api::frame::{ReasonKind, Reset};
use binding_api::route::{Route, Routes};
use binding_api::stream::Acceptor;
use zilla_config::factory::{BindingConfig, BindingFactory, ExitRule, Kind};
use zilla_config::{ConfigError, ConfigErrorKind};
use zilla_metrics::{Counter, PerBinding};

pub use cache::Cache;
pub use config::CacheOptions;

/// Builds `kafka` bindings of kinds `cache_client` and `cache_server`.
#[derive(Debug, Default)]
pub struct KafkaCacheFactory;

impl BindingFactory for KafkaCacheFactory {
    fn type_name(&self) -> &'static str {
        "kafka"
    }

    fn kinds(&self) -> &[Kind] {
        &[Kind::CacheClient, Kind::CacheServer]
    }

    fn exit_rule(&self, _kind: Kind) -> ExitRule {
        ExitRule::Required
    }

    fn build(&self, config: &BindingConfig<'_>) -> Result<Arc<dyn Binding>, ConfigError> {
        match config.kind {
            Kind::CacheServer => build_server(config),
            _ => build_client(config),
        }
    }
}

fn build_server(config: &BindingConfig<'_>) -> Result<Arc<dyn Binding>, ConfigError> {
    let options = config::parse_options(config.options)?;
    let routes = parse_routes(config)?;
    for topic in &options.bootstrap {
        if routes.resolve(|when| when.matches(topic)).is_none() {
            let mark = config
                .options
                .and_then(|o| o.get("bootstrap"))
                .map_or(config.mark, |b| b.mark);
            return Err(ConfigError::at(
                mark,
                ConfigErrorKind::Custom(format!("bootstrap topic '{topic}' matches no route")),
            )
            .with_help("add a route whose when.topic matches it, or a top-level 'exit'"));
        }
    }
    let cache = Cache::new(config.name, options, routes).with_metrics(config.metrics.clone());
    Ok(Arc::new(CacheServer::from_cache(cache)))
}

fn build_client(config: &BindingConfig<'_>) -> Result<Arc<dyn Binding>, ConfigError> {
    // Validates options (topics models), which the cache client does not apply.
    config::parse_options(config.options)?;
    Ok(Arc::new(CacheClient {
        name: config.name.to_owned(),
        routes: parse_routes(config)?,
    }))
}

/// Where a cache binding sends each topic, as Zilla's `routes[].when[].topic`: the first
/// route with a matching condition (`*` matches any run of characters; a route without
/// `when` matches every topic), else the top-level `exit`, else nowhere.
pub type TopicRoutes = Routes<config::TopicCondition>;

fn parse_routes(config: &BindingConfig<'_>) -> Result<TopicRoutes, ConfigError> {
    let mut routes = Vec::with_capacity(config.routes.len());
    for route in config.routes {
        let mut when = Vec::with_capacity(route.when.len());
        for node in &route.when {
            when.push(config::parse_condition(node)?);
        }
        let Some(exit) = &route.exit else {
            return Err(ConfigError::at(
                route.mark,
                ConfigErrorKind::Custom(format!("a kafka {} route needs an exit", config.kind)),
            )
            .with_help("add exit: <binding name> to the route"));
        };
        routes.push(Route {
            when,
            exit: config.exit_binding(exit, route.mark)?,
            with: (),
        });
    }
    let fallback = config
        .exit
        .map(|exit| config.exit_binding(exit, config.mark))
        .transpose()?;
    Ok(Routes::new(routes, fallback))
}

/// A `cache_server`: owns the cache and serves subscribers from it.
pub struct CacheServer {
    cache: Arc<Cache>,
}

impl CacheServer {
    /// A cache server reading every topic through `exit`.
    pub fn new(name: &str, options: CacheOptions, exit: Arc<dyn Binding>) -> Self {
        Self::with_routes(name, options, Routes::new(Vec::new(), Some(exit)))
    }

    /// A cache server reading each topic through the exit `routes` give it.
    pub fn with_routes(name: &str, options: CacheOptions, routes: TopicRoutes) -> Self {
        Self::from_cache(Cache::new(name, options, routes))
    }

    /// A cache server serving `cache`.
    pub fn from_cache(cache: Cache) -> Self {
        CacheServer {
            cache: Arc::new(cache),
        }
    }

    /// The shared cache (for its counters).
    pub fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }
}

impl Binding for CacheServer {
    fn name(&self) -> &str {
        self.cache.name()
    }

    fn start(&self, worker: &Worker) {
        if worker.index() == 0 {
            for topic in &self.cache.options().bootstrap {
                self.cache.topic(topic, worker);
            }
        }
    }

    fn new_stream(&self, stream: Acceptor, worker: &Worker) {
        let Some(plan) = serve::Plan::of_begin(&stream.begin) else {
            return stream.refuse(Reset::new(
                ReasonKind::Refused,
                format!(
                    "kafka cache '{}': expected a Kafka fetch or merged begin",
                    self.cache.name()
                ),
            ));
        };
        let Some(topic) = self.cache.subscribe(&plan.topic, worker) else {
            return stream.refuse(Reset::new(
                ReasonKind::NoRoute,
                format!(
                    "kafka cache '{}': topic '{}' is not routed",
                    self.cache.name(),
                    plan.topic
                ),
            ));
        };
        let changes = worker.local::<follow::Relays>().changes(&topic, worker);
        let gaps = worker
            .local::<PerBinding<metrics::Gaps>>()
            .get(self.cache.metrics(), worker.index(), metrics::Gaps::on)
            .map_or_else(Counter::default, |gaps| gaps.of(&plan.topic));
        let worker_state = (worker.local(), changes);
        worker.spawn(serve::serve(topic, plan, worker_state, gaps, stream));
    }
}

/// A `cache_client`: routes subscribers by topic to a cache server.
pub struct CacheClient {
    name: String,
    routes: TopicRoutes,
}

impl Binding for CacheClient {
    fn name(&self) -> &str {
        &self.name
    }

    fn new_stream(&self, stream: Acceptor, worker: &Worker) {
        let Some(plan) = serve::Plan::of_begin(&stream.begin) else {
            return stream.refuse(Reset::new(
                ReasonKind::Refused,
                format!(
                    "kafka cache_client '{}': expected a Kafka fetch or merged begin",
                    self.name
                ),
            ));
        };
        match self.routes.resolve(|when| when.matches(&plan.topic)) {
            Some(resolved) => resolved.exit().new_stream(stream, worker),
            None => stream.refuse(Reset::new(
                ReasonKind::NoRoute,
                format!(
                    "kafka cache_client '{}': topic '{}' is not routed",
                    self.name, plan.topic
                ),
            )),
        }
    }
}

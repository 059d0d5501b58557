//! # binding-kafka-client
//!
//! Zilla's `kafka` binding, `kind: client`: reads Kafka topics for the bindings routed to it
//! (sse-kafka, the Kafka cache), reaching the brokers through its `exit` — a `tcp` client, or
//! a `tls` client in front of one — as Zilla composes `kafka client → tcp client`.
//!
//! ## Configuration
//!
//! ```yaml
//! bindings:
//!   south_kafka_client:
//!     type: kafka
//!     kind: client
//!     options:
//!       servers: [localhost:9092]   # bootstrap brokers, host:port
//!     exit: south_tcp_client
//!   south_tcp_client:
//!     type: tcp
//!     kind: client
//! ```
//!
//! Without `options.servers` the client bootstraps where its exit connects by default, as
//! Zilla does: a tcp client's `options.host` and `port` (through a tls client too). Brokers
//! named by Metadata are then reached at their advertised addresses.
//!
//! SASL, as Zilla 1.x spells it or as 2.x does (one guard's credentials; the values are
//! taken as written — guard expressions such as `{credentials}` are not resolved):
//!
//! ```yaml
//!     options:
//!       servers: [broker:9094]
//!       sasl: {mechanism: scram-sha-256, username: alice, password: secret}  # 1.x
//!       # authorization: {my_guard: {credentials: {mechanism: plain, username: alice, password: secret}}}
//! ```
//!
//! Limits on what a broker may make the client hold — options of ours, not Zilla's (the
//! defaults shown):
//!
//! ```yaml
//!     options:
//!       servers: [broker:9092]
//!       maxTopicPartitions: 10000     # a topic with more: its streams are refused
//!       maxPartitions: 100000         # per Metadata response, and per worker's metadata cache
//!       maxBufferedBytes: 268435456   # responses being received at once, per worker
//! ```
//!
//! A topic over a partition limit refuses its streams, with a warning naming the broker, the
//! topic, the count and the option to raise. `maxBufferedBytes` is shared by every connection
//! of a worker to the cluster: a response reserves its announced size before more than a 1 MiB
//! read window of it is taken (a connection that cannot waits), so what responses being
//! received hold is at most that plus 1 MiB per connection, however many node ids a broker
//! advertises; a single response over it (or over 128 MiB) closes the connection.
//!
//! Mechanisms: `plain`, `scram-sha-256`, `scram-sha-512` (SaslHandshake v1 then
//! SaslAuthenticate v1 on every connection, after ApiVersions). A failure refuses the streams
//! with a reason naming the mechanism and the user.
//!
//! ## Streams
//!
//! Takes the Kafka streams of [`binding_api::ext::kafka`]: a **fetch** stream per
//! topic-partition and a **merged** stream per topic, with start positions (offset, earliest,
//! latest, timestamp), filters (evaluated here, before anything is sent) and isolation
//! (read-committed by default). The reply begins once every partition's start is resolved,
//! then carries one record per data frame (split when a value exceeds the credit), each with
//! its [`KafkaRecordEx`](binding_api::ext::kafka::KafkaRecordEx); merged records carry the
//! progress of every partition. A flush marks the moment the stream caught up.
//!
//! Towards the brokers it opens one stream through its exit per broker per worker
//! (`BeginEx::Tcp` naming the broker), shared by every Kafka stream of the binding on that
//! worker: requests are pipelined with correlation ids. It negotiates versions with ApiVersions
//! (see [`proto`]), reads Metadata (cached, refreshed on leadership errors), ListOffsets for
//! start positions and Fetch for records, which [`record`] decodes without copying (every
//! codec: gzip, snappy, lz4, zstd).
//!
//! A **describe** stream answers with the topic's configuration (DescribeConfigs, the names
//! asked for), then again whenever a value changes (asked every 30 s): the Kafka cache retains
//! each topic by it.
//!
//! A merged stream checks the topic's partitions every 5 s and reads those added since it
//! began from their earliest offset, so records written to a new partition are not missed.
//!
//! Failures: NOT_LEADER_OR_FOLLOWER, leader-epoch and similar errors refresh metadata and
//! re-fetch from the same offset; a lost connection is reopened with backoff (100 ms to 5 s)
//! and fetching resumes at the next undelivered offset, so nothing is lost or repeated; an
//! unknown topic, or an offset out of range, refuses the stream with a
//! [`KafkaResetEx`](binding_api::ext::kafka::KafkaResetEx) saying so.
//!
//! Memory: each fetch asks for no more than the downstream credit (at most
//! [`MAX_FETCH_BYTES`]); a broker may still return one whole batch larger than that, as Kafka
//! guarantees progress. Inflated batches are capped at 64 MiB.
//!
//! Broken or hostile brokers: a fetch that brings a partition nothing new while its high
//! watermark says there is more (an empty answer, a stale or incomplete batch, another
//! partition's data, no answer), or that comes back at once with nothing ignoring
//! `max_wait_ms`, makes that partition wait 100 ms doubling to 5 s until a fetch advances it;
//! records at or past the high watermark are not read. Such fetches, and answers that cannot
//! be read (bad CRC, decompression refused, malformed batches or responses), are warned about
//! once per cause per broker a minute ([`report`]); a batch that cannot be read refuses the
//! stream, a response that cannot be parsed closes the connection and is retried with the
//! backoff, which grows until a fetch delivers.
//!
//! [`cluster::Cluster`] also offers DescribeConfigs ([`cluster::Cluster::topic_configs`], which
//! describe streams use) and Produce ([`cluster::Cluster::produce`]) to tests and tools.
//!
//! ## Metrics and readiness
//!
//! With `telemetry: {metrics: [kafka.fetches, kafka.broker.connected]}`, per worker:
//! `kafka.fetches` (Fetch requests sent, by topic) and `kafka.broker.connected` (1 when a
//! connection to a broker last opened, 0 when one last failed to; by `broker`). Whatever it
//! records, the client holds the engine's readiness (`/health`) until its cluster answers
//! Metadata: worker 0 asks for the brokers as it starts, retrying with backoff (100 ms to
//! 5 s).
//!
//! ## Modules
//!
//! - sans I/O, no tokio: [`proto`] (one module per API over the primitives of
//!   [`proto::wire`]; every decoder total), [`record`] (record batches and their codecs),
//!   [`scram`] (the SCRAM client), [`config`] (`options`), [`report`] (warnings rate-limited);
//! - the edges: [`connection`] (one broker connection over an exit stream, pipelined),
//!   [`cluster`] (a worker's connections and metadata), and the stream service that reads
//!   partitions for fetch and merged streams, its planning a sans-I/O core of its own (which
//!   partitions to fetch from which leader at which offset, what each response does to them,
//!   the progress reported).
//!
//! ## Example
//!
//! `examples/consume.rs` reads a topic of a running broker until caught up and prints the
//! rate: `cargo run --release -p binding-kafka-client --example consume -- HOST:PORT TOPIC`.
//! The sans-I/O pieces run anywhere; a batch built and decoded back:
//!
//! ```
//! use binding_kafka_client::record::{
//!     BatchBuilder, Compression, RecordBuilder, RecordOptions, decode_records,
//! };
//! use bytes::Bytes;
//!
//! let record = RecordBuilder { value: Some(Bytes::from("hello")), ..Default::default() };
//! let batch = BatchBuilder { compression: Compression::Zstd, ..BatchBuilder::new(42, vec![record]) };
//! let options = RecordOptions {
//!     fetch_offset: 42,
//!     read_committed: true,
//!     last_stable_offset: -1,
//!     aborted: vec![],
//!     max_decompressed: 1 << 20,
//! };
//! let records = decode_records(batch.encode()?, &options)?;
//! assert_eq!(records.records[0].value.as_deref(), Some(&b"hello"[..]));
//! assert_eq!(records.next_offset, 43);
//! # Ok::<(), binding_kafka_client::record::RecordError>(())
//! ```

pub mod cluster;
pub mod config;
pub mod connection;
mod metrics;
pub mod proto;
pub mod record;
pub mod report;
pub mod scram;
mod stream;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Weak};

use binding_api::binding::{Binding, Worker};
use binding_api::ext::BeginEx;
use binding_api::ext::kafka::KafkaBeginEx;
use binding_api::ext::tcp::Endpoint;
use binding_api::frame::{ReasonKind, Reset};
use binding_api::stream::Acceptor;
use thiserror::Error;
use zilla_config::factory::{BindingConfig, BindingFactory, ExitRule, Kind};
use zilla_config::{ConfigError, ConfigErrorKind};
use zilla_metrics::{BindingMetrics, ReadyGate};

pub use config::KafkaOptions;
pub use stream::MAX_FETCH_BYTES;

use crate::cluster::Cluster;
use crate::metrics::ClientMetrics;
use crate::proto::ApiKey;
use crate::proto::wire::DecodeError;
use crate::record::RecordError;

/// What went wrong talking to Kafka.
#[derive(Clone, Debug, Error)]
pub enum ClientError {
    /// A broker could not be reached.
    #[error("kafka broker {endpoint} unreachable: {detail}")]
    Unreachable {
        /// `host:port`.
        endpoint: String,
        /// Why.
        detail: String,
    },
    /// A connection closed with requests in flight.
    #[error("connection to kafka broker {endpoint} lost")]
    ConnectionLost {
        /// `host:port`.
        endpoint: String,
    },
    /// A broker sent what is not a response to what was asked; the connection was closed.
    #[error("kafka broker {endpoint} sent an unparseable response: {detail}")]
    Protocol {
        /// `host:port`.
        endpoint: String,
        /// What was wrong.
        detail: String,
    },
    /// A topic has more partitions than the options allow.
    #[error(
        "kafka broker {broker} lists {count} partitions for topic '{topic}', over the limit of {limit} (option {option})"
    )]
    TooManyPartitions {
        /// `host:port` of the broker that answered.
        broker: String,
        /// The topic.
        topic: String,
        /// Partitions listed.
        count: usize,
        /// The limit.
        limit: usize,
        /// The option that sets it.
        option: &'static str,
    },
    /// Metadata named no such broker.
    #[error("kafka broker {node} is not in the metadata")]
    UnknownBroker {
        /// Node id.
        node: i32,
    },
    /// The broker answered ApiVersions with an error.
    #[error("kafka broker {endpoint} refused ApiVersions with error {code}")]
    Broker {
        /// `host:port`.
        endpoint: String,
        /// Error code.
        code: i16,
    },
    /// No version of an API both sides support.
    #[error("the kafka broker supports no version of {api:?} this client implements")]
    Unsupported {
        /// The API.
        api: ApiKey,
    },
    /// The topic does not exist.
    #[error("unknown topic '{topic}'")]
    UnknownTopic {
        /// The topic.
        topic: String,
    },
    /// The offset is out of range.
    #[error(
        "offset {requested} of partition {partition} is out of range (earliest {earliest}, latest {latest})"
    )]
    OffsetOutOfRange {
        /// Partition.
        partition: i32,
        /// Offset asked for.
        requested: i64,
        /// Earliest offset.
        earliest: i64,
        /// Latest offset.
        latest: i64,
    },
    /// A Kafka error code.
    #[error("kafka error code {code}")]
    Kafka {
        /// The code.
        code: i16,
    },
    /// SASL authentication failed.
    #[error("SASL {mechanism} authentication of user '{user}' failed: {detail}")]
    Sasl {
        /// The mechanism.
        mechanism: &'static str,
        /// The user.
        user: String,
        /// Why.
        detail: String,
    },
    /// A response did not decode.
    #[error("malformed kafka response: {0}")]
    Decode(#[from] DecodeError),
    /// Record batches did not decode.
    #[error("malformed record batch: {0}")]
    Records(#[from] RecordError),
}

/// Builds kafka client bindings.
#[derive(Debug, Default)]
pub struct KafkaFactory;

impl BindingFactory for KafkaFactory {
    fn type_name(&self) -> &'static str {
        "kafka"
    }

    fn kinds(&self) -> &[Kind] {
        &[Kind::Client]
    }

    fn exit_rule(&self, _kind: Kind) -> ExitRule {
        ExitRule::Required
    }

    fn build(&self, config: &BindingConfig<'_>) -> Result<Arc<dyn Binding>, ConfigError> {
        let mut options = config::parse_options(config.options)?;
        if let Some(route) = config.routes.first() {
            return Err(ConfigError::at(
                route.mark,
                ConfigErrorKind::Custom("a kafka client takes no routes".into()),
            )
            .with_help("use a top-level 'exit' naming the tcp (or tls) client"));
        }
        let Some(exit) = config.exit else {
            return Err(config
                .error("a kafka client needs an exit")
                .with_help("add exit: <a tcp client binding>"));
        };
        let exit = config.exit_binding(exit, config.mark)?;
        if options.servers.is_empty() {
            // As Zilla: without servers, bootstrap where the exit (a tcp client) connects.
            let Some(bootstrap) = exit.default_destination() else {
                return Err(config
                    .error(
                        "a kafka client needs options.servers, or an exit tcp client with options.host and port",
                    )
                    .with_help("add options: {servers: [localhost:9092]}"));
            };
            options.servers = vec![match bootstrap {
                Endpoint::Addr(addr) => (addr.ip().to_string(), addr.port()),
                Endpoint::Host { host, port } => (host, port),
            }];
        }
        let ready = config
            .metrics
            .ready_gate(format!("kafka metadata from '{}'", config.name));
        Ok(Arc::new(
            KafkaClient::new(config.name, options, exit)
                .with_metrics(config.metrics.clone(), ready),
        ))
    }
}

/// A kafka client binding.
pub struct KafkaClient {
    name: String,
    /// Also the binding's identity among the clusters of a worker ([`Clusters`]).
    options: Arc<KafkaOptions>,
    exit: Arc<dyn Binding>,
    metrics: BindingMetrics,
    /// Opened by the first Metadata answer (worker 0 asks as it starts).
    ready: ReadyGate,
}

/// The clusters of every kafka client on one worker ([`Worker::local`]), by client.
///
/// A client is known by its options, which it alone holds: each entry keeps a weak reference
/// to them, which keeps their allocation, so no other client's options can take that address
/// while the entry lives, and which tells when the client has gone. No counter shared by the
/// process is needed; a worker serves a handful of clients, so a list does.
#[derive(Default)]
struct Clusters(RefCell<Vec<(Weak<KafkaOptions>, Rc<Cluster>)>>);

impl KafkaClient {
    /// A client bootstrapped from `options.servers`, reaching brokers through `exit`.
    pub fn new(name: impl Into<String>, options: KafkaOptions, exit: Arc<dyn Binding>) -> Self {
        KafkaClient {
            name: name.into(),
            options: Arc::new(options),
            exit,
            metrics: BindingMetrics::default(),
            ready: ReadyGate::default(),
        }
    }

    /// The same client recording in `metrics`, opening `ready` once the cluster answered
    /// Metadata.
    pub fn with_metrics(mut self, metrics: BindingMetrics, ready: ReadyGate) -> Self {
        self.metrics = metrics;
        self.ready = ready;
        self
    }

    /// This client's cluster on `worker`, made on first use.
    fn cluster(&self, worker: &Worker) -> Rc<Cluster> {
        let clusters = worker.local::<Clusters>();
        let mut clusters = clusters.0.borrow_mut();
        let mine = |options: &Weak<KafkaOptions>| options.as_ptr() == Arc::as_ptr(&self.options);
        if let Some((_, cluster)) = clusters.iter().find(|(options, _)| mine(options)) {
            return cluster.clone();
        }
        // Forget the clusters of clients that have gone.
        clusters.retain(|(options, _)| options.strong_count() > 0);
        let cluster = Rc::new(
            Cluster::new(
                self.exit.clone(),
                worker,
                self.options.servers.clone(),
                self.options.sasl.clone(),
            )
            .with_limits(self.options.limits)
            .with_metrics(
                ClientMetrics::on(&self.metrics, worker.index()).map(Rc::new),
                self.ready.clone(),
            ),
        );
        clusters.push((Arc::downgrade(&self.options), cluster.clone()));
        cluster
    }
}

impl Binding for KafkaClient {
    fn name(&self) -> &str {
        &self.name
    }

    fn start(&self, worker: &Worker) {
        // Worker 0 asks for the brokers at once, so readiness does not wait for a stream.
        if worker.index() == 0 && !self.ready.is_open() {
            let cluster = self.cluster(worker);
            let shutdown = worker.shutdown().clone();
            worker.spawn_task(async move {
                tokio::select! {
                    () = cluster.probe() => {}
                    () = shutdown.cancelled() => {}
                }
            });
        }
    }

    fn new_stream(&self, stream: Acceptor, worker: &Worker) {
        if let BeginEx::Kafka(KafkaBeginEx::Describe(describe)) = &stream.begin.ext {
            let (topic, keys) = (describe.topic.clone(), describe.configs.clone());
            worker.spawn(stream::describe::serve(
                self.cluster(worker),
                topic,
                keys,
                stream,
            ));
            return;
        }
        let Some(plan) = stream::Plan::of_begin(&stream.begin) else {
            stream.refuse(Reset::new(
                ReasonKind::Refused,
                format!(
                    "kafka client '{}': expected a Kafka fetch, merged or describe begin",
                    self.name
                ),
            ));
            return;
        };
        worker.spawn(stream::serve(self.cluster(worker), plan, stream));
    }
}

//! A worker's view of the Kafka cluster: two connections per broker, shared by every stream of
//! the binding on that worker, and a metadata cache refreshed on demand.
//!
//! A broker answers the requests of one connection in order, and a Fetch may be held there for
//! up to its `max_wait_ms` waiting for records. Fetches therefore have a connection of their own
//! ([`Lane::Fetch`]); Metadata, ListOffsets, DescribeConfigs and Produce go on the other
//! ([`Lane::Control`]), so a stream starting never waits behind another stream's long poll.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use binding_api::binding::{Binding, WeakWorker, Worker};
use futures_util::future::{FutureExt, LocalBoxFuture, Shared};
use zilla_metrics::{Counter, ReadyGate};

use crate::ClientError;
use crate::config::{Limits, Sasl};
use crate::connection::{Common, Connection, ResponseBudget};
use crate::metrics::{ClientMetrics, PROBE_BACKOFF_MAX, PROBE_BACKOFF_MIN};
use crate::proto::error as kerr;
use crate::proto::metadata::{self, TopicMeta};
use crate::proto::wire::DecodeError;
use crate::proto::{Request, api_versions::Versions};
use crate::proto::{describe_configs, produce};

/// The node id under which bootstrap connections are kept.
const BOOTSTRAP: i32 = -1;
/// How long metadata stays fresh without a refresh asked for.
const METADATA_MAX_AGE: Duration = Duration::from_secs(300);

/// How long opening a connection (TCP, ApiVersions, SASL) may take. A broker that is still
/// starting can accept a connection and answer nothing: without a bound, that connection
/// (and every other one waiting to connect) would wait forever.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request may wait for its response (Kafka's default `request.timeout.ms`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection being opened, shared by every stream that waits for it and driven by whichever
/// of them is polled: no stream holds a lock that another must wait for, so a stream busy
/// elsewhere can never stall the others (nor itself) on a connect.
type Opening = Shared<LocalBoxFuture<'static, Result<Rc<Connection>, ClientError>>>;

/// Which of a broker's two connections a request takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Fetch requests, which the broker may hold for their `max_wait_ms`.
    Fetch,
    /// Everything else: answered at once, never queued behind a long poll.
    Control,
}

/// Connections and metadata for one binding on one worker.
pub struct Cluster {
    exit: Arc<dyn Binding>,
    /// Weak: the worker keeps the cluster among its values ([`Worker::local`]).
    worker: WeakWorker,
    servers: Vec<(String, u16)>,
    sasl: Option<Sasl>,
    conns: RefCell<HashMap<(i32, Lane), Rc<Connection>>>,
    opening: RefCell<HashMap<(i32, Lane), Opening>>,
    brokers: RefCell<HashMap<i32, (String, u16)>>,
    topics: RefCell<HashMap<String, (TopicMeta, Instant)>>,
    attempts: Rc<Attempts>,
    limits: Limits,
    shared: Common,
    /// Opened at the first Metadata answer: the engine's readiness waits for it.
    ready: ReadyGate,
}

/// Connect attempts in a row that failed, by broker address, until one succeeds (one entry per
/// bootstrap server or broker: bounded by the cluster's size), for telemetry.
struct Attempts {
    worker: usize,
    failures: RefCell<HashMap<String, u32>>,
    /// Where the state of each broker's connection is set.
    metrics: Option<Rc<ClientMetrics>>,
}

impl Attempts {
    /// The first failure of a streak is a warning, success after failures an event.
    fn note(&self, endpoint: &str, error: Option<&ClientError>) {
        if let Some(metrics) = &self.metrics {
            metrics.broker(endpoint, error.is_none());
        }
        let mut failures = self.failures.borrow_mut();
        let worker = self.worker;
        match error {
            Some(error) => {
                let count = failures.entry(endpoint.to_owned()).or_default();
                *count = count.saturating_add(1);
                if *count == 1 {
                    tracing::warn!(
                        event = "kafka_connection_failed",
                        broker = %endpoint,
                        worker,
                        %error,
                        "kafka connection failed"
                    );
                } else {
                    tracing::debug!(
                        broker = %endpoint,
                        failures = *count,
                        %error,
                        "kafka connection failed again"
                    );
                }
            }
            None => {
                if let Some(count) = failures.remove(endpoint) {
                    tracing::info!(
                        event = "kafka_connection_restored",
                        broker = %endpoint,
                        worker,
                        failures = count,
                        "kafka connection restored"
                    );
                }
            }
        }
    }
}

/// Opens a connection to the first of `targets` that answers, each within [`CONNECT_TIMEOUT`].
async fn open_first(
    exit: Arc<dyn Binding>,
    worker: Worker,
    targets: Vec<(String, u16)>,
    sasl: Option<Sasl>,
    attempts: Rc<Attempts>,
    shared: Common,
    node: i32,
) -> Result<Rc<Connection>, ClientError> {
    let mut last = ClientError::UnknownBroker { node };
    for (host, port) in targets {
        let open = Connection::open(&exit, &worker, &host, port, sasl.as_ref(), &shared);
        let opened = tokio::time::timeout(CONNECT_TIMEOUT, open)
            .await
            .unwrap_or_else(|_| {
                Err(ClientError::Unreachable {
                    endpoint: format!("{host}:{port}"),
                    detail: format!("no answer within {CONNECT_TIMEOUT:?}"),
                })
            });
        attempts.note(&format!("{host}:{port}"), opened.as_ref().err());
        match opened {
            Ok(conn) => return Ok(conn),
            Err(e @ ClientError::Sasl { .. }) => return Err(e),
            Err(e) => last = e,
        }
    }
    Err(last)
}

impl Cluster {
    /// A cluster reached through `exit`, bootstrapped from `servers`.
    pub fn new(
        exit: Arc<dyn Binding>,
        worker: &Worker,
        servers: Vec<(String, u16)>,
        sasl: Option<Sasl>,
    ) -> Self {
        let attempts = Rc::new(Attempts {
            worker: worker.index(),
            failures: RefCell::default(),
            metrics: None,
        });
        Cluster {
            exit,
            worker: worker.downgrade(),
            servers,
            sasl,
            conns: RefCell::default(),
            opening: RefCell::default(),
            brokers: RefCell::default(),
            topics: RefCell::default(),
            attempts,
            limits: Limits::default(),
            shared: Common {
                budget: ResponseBudget::new(Limits::default().buffered_bytes),
                reports: Rc::default(),
            },
            ready: ReadyGate::default(),
        }
    }

    /// The same cluster recording in `metrics`, opening `ready` at its first Metadata answer.
    pub(crate) fn with_metrics(
        mut self,
        metrics: Option<Rc<ClientMetrics>>,
        ready: ReadyGate,
    ) -> Self {
        self.attempts = Rc::new(Attempts {
            worker: self.attempts.worker,
            failures: RefCell::default(),
            metrics,
        });
        self.ready = ready;
        self
    }

    /// The counter of Fetch requests for `topic` (disabled when not recorded).
    pub(crate) fn fetches(&self, topic: &str) -> Counter {
        self.attempts
            .metrics
            .as_ref()
            .map_or_else(Counter::default, |m| m.fetches(topic))
    }

    /// Asks the bootstrap servers for the brokers (Metadata for no topic) until one answers,
    /// backing off between attempts; opens the readiness gate.
    pub(crate) async fn probe(&self) {
        let mut backoff = PROBE_BACKOFF_MIN;
        loop {
            let answer = self
                .send(BOOTSTRAP, |v| metadata::request(v.metadata, &[]))
                .await
                .and_then(|(versions, body)| {
                    Ok(metadata::decode(
                        versions.metadata,
                        body,
                        self.limits.partitions,
                    )?)
                });
            match answer {
                Ok(response) => {
                    self.learn_brokers(&response.brokers);
                    return;
                }
                Err(err) => {
                    tracing::debug!(%err, ?backoff, "kafka: no metadata yet");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(PROBE_BACKOFF_MAX);
                }
            }
        }
    }

    /// Keeps the brokers a Metadata answer names; the cluster is known: readiness may go on.
    fn learn_brokers(&self, brokers: &[metadata::Broker]) {
        let mut known = self.brokers.borrow_mut();
        for b in brokers {
            let port = u16::try_from(b.port).unwrap_or(0);
            known.insert(b.node_id, (b.host.clone(), port));
        }
        self.ready.open();
    }

    /// The same cluster under `limits`.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self.shared.budget = ResponseBudget::new(limits.buffered_bytes);
        self
    }

    /// `host:port` of `node`, as the metadata names it, for messages.
    pub(crate) fn endpoint(&self, node: i32) -> String {
        self.brokers
            .borrow()
            .get(&node)
            .map_or_else(|| format!("node {node}"), |(h, p)| format!("{h}:{p}"))
    }

    /// Whether `cause` about `subject` is to be warned about now (once per cause and subject
    /// per [`REPORT_INTERVAL`](crate::report::REPORT_INTERVAL), whatever the stream).
    pub(crate) fn report_due(&self, cause: &'static str, subject: &str) -> bool {
        self.shared.reports.due(cause, subject, Instant::now())
    }

    fn live(&self, slot: (i32, Lane)) -> Option<Rc<Connection>> {
        let conns = self.conns.borrow();
        conns.get(&slot).filter(|c| c.is_alive()).cloned()
    }

    /// The `lane` connection to `node` (`-1`: any bootstrap server), opened when needed.
    /// Streams that ask while it is being opened wait for the same attempt.
    pub async fn connection(&self, node: i32, lane: Lane) -> Result<Rc<Connection>, ClientError> {
        let slot = (node, lane);
        if let Some(conn) = self.live(slot) {
            return Ok(conn);
        }
        let existing = self.opening.borrow().get(&slot).cloned();
        let opening = match existing {
            Some(opening) if opening.peek().is_none() => opening,
            // None under way, or one that ended after its waiters went away (stale).
            _ => {
                let targets: Vec<(String, u16)> = if node == BOOTSTRAP {
                    self.servers.clone()
                } else {
                    let known = self.brokers.borrow().get(&node).cloned();
                    known
                        .map(|b| vec![b])
                        .ok_or(ClientError::UnknownBroker { node })?
                };
                let worker = self.worker.upgrade().ok_or(ClientError::Unreachable {
                    endpoint: format!("node {node}"),
                    detail: "the worker has stopped".into(),
                })?;
                let opening = open_first(
                    self.exit.clone(),
                    worker,
                    targets,
                    self.sasl.clone(),
                    self.attempts.clone(),
                    self.shared.clone(),
                    node,
                )
                .boxed_local()
                .shared();
                self.opening.borrow_mut().insert(slot, opening.clone());
                opening
            }
        };
        let result = opening.clone().await;
        let mut pending = self.opening.borrow_mut();
        if pending.get(&slot).is_some_and(|o| o.ptr_eq(&opening)) {
            pending.remove(&slot);
            if let Ok(conn) = &result {
                self.conns.borrow_mut().insert(slot, conn.clone());
            }
        }
        result
    }

    /// Sends a request built for the negotiated versions to `node`, on its control lane.
    pub async fn send(
        &self,
        node: i32,
        build: impl FnOnce(&Versions) -> Request,
    ) -> Result<(Versions, bytes::Bytes), ClientError> {
        self.send_on(node, Lane::Control, build).await
    }

    /// Sends a request built for the negotiated versions to `node` on `lane`.
    pub async fn send_on(
        &self,
        node: i32,
        lane: Lane,
        build: impl FnOnce(&Versions) -> Request,
    ) -> Result<(Versions, bytes::Bytes), ClientError> {
        let (versions, body, _) = self.send_from(node, lane, build).await?;
        Ok((versions, body))
    }

    /// As [`Cluster::send_on`], with the `host:port` that answered.
    async fn send_from(
        &self,
        node: i32,
        lane: Lane,
        build: impl FnOnce(&Versions) -> Request,
    ) -> Result<(Versions, bytes::Bytes, String), ClientError> {
        let conn = self.connection(node, lane).await?;
        let versions = conn.versions;
        match tokio::time::timeout(REQUEST_TIMEOUT, conn.send(build(&versions))).await {
            Ok(body) => Ok((versions, body?, conn.endpoint.clone())),
            Err(_) => {
                // The broker stopped answering on this connection: forget it, so the next
                // request opens a fresh one.
                let mut conns = self.conns.borrow_mut();
                if conns
                    .get(&(node, lane))
                    .is_some_and(|c| Rc::ptr_eq(c, &conn))
                {
                    conns.remove(&(node, lane));
                }
                Err(ClientError::Unreachable {
                    endpoint: format!("node {node}"),
                    detail: format!("no response within {REQUEST_TIMEOUT:?}"),
                })
            }
        }
    }

    /// The metadata of `topic`, from the cache unless `refresh` or stale.
    pub async fn topic(&self, topic: &str, refresh: bool) -> Result<TopicMeta, ClientError> {
        if !refresh
            && let Some((meta, at)) = self.topics.borrow().get(topic)
            && at.elapsed() < METADATA_MAX_AGE
        {
            return Ok(meta.clone());
        }
        let (versions, body, broker) = self
            .send_from(BOOTSTRAP, Lane::Control, |v| {
                metadata::request(v.metadata, &[topic])
            })
            .await?;
        let limits = self.limits;
        let response = match metadata::decode(versions.metadata, body, limits.partitions) {
            Err(DecodeError::OverLimit { within, count, .. }) => {
                return Err(self.too_many(
                    broker,
                    within,
                    count,
                    limits.partitions,
                    "maxPartitions",
                ));
            }
            decoded => decoded?,
        };
        self.learn_brokers(&response.brokers);
        let meta = response
            .topics
            .into_iter()
            .find(|t| t.name == topic)
            .ok_or_else(|| ClientError::UnknownTopic {
                topic: topic.to_owned(),
            })?;
        let count = meta.partitions.len();
        if count > limits.topic_partitions {
            let (topic, limit) = (topic.to_owned(), limits.topic_partitions);
            return Err(self.too_many(broker, topic, count, limit, "maxTopicPartitions"));
        }
        let mut topics = self.topics.borrow_mut();
        topics.remove(topic);
        // The oldest entries make room: they are asked again when needed.
        let mut cached: usize = topics.values().map(|(m, _)| m.partitions.len()).sum();
        while cached + count > limits.partitions {
            let Some(oldest) = topics
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(name, _)| name.clone())
            else {
                break;
            };
            if let Some((gone, _)) = topics.remove(&oldest) {
                cached -= gone.partitions.len();
            }
        }
        topics.insert(topic.to_owned(), (meta.clone(), Instant::now()));
        Ok(meta)
    }

    /// The error for a topic over a partition limit, warned about once per topic per interval.
    fn too_many(
        &self,
        broker: String,
        topic: String,
        count: usize,
        limit: usize,
        option: &'static str,
    ) -> ClientError {
        if self.report_due(option, &topic) {
            tracing::warn!(
                %broker,
                %topic,
                count,
                limit,
                option,
                "kafka broker lists more partitions than allowed: streams of the topic are refused (raise {option} in the kafka client's options if they are real)"
            );
        }
        ClientError::TooManyPartitions {
            broker,
            topic,
            count,
            limit,
            option,
        }
    }
}

impl Cluster {
    /// The configuration `keys` (every one when empty) of `topic` (`cleanup.policy`,
    /// `retention.ms`, ...), from any broker.
    pub async fn topic_configs(
        &self,
        topic: &str,
        keys: &[&str],
    ) -> Result<Vec<(String, Option<String>)>, ClientError> {
        let (v, body) = self
            .send(BOOTSTRAP, |v| {
                describe_configs::request(v.describe_configs, topic, keys)
            })
            .await?;
        let results = describe_configs::decode(v.describe_configs, body)?;
        let result =
            results
                .into_iter()
                .find(|r| r.name == topic)
                .ok_or(ClientError::UnknownTopic {
                    topic: topic.to_owned(),
                })?;
        match result.error_code {
            0 => Ok(result.configs),
            kerr::UNKNOWN_TOPIC_OR_PARTITION => Err(ClientError::UnknownTopic {
                topic: topic.to_owned(),
            }),
            code => Err(ClientError::Kafka { code }),
        }
    }

    /// Writes one record batch to `topic`/`partition` on its leader (acks = all); returns the
    /// offset of its first record.
    pub async fn produce(
        &self,
        topic: &str,
        partition: i32,
        batch: &[u8],
    ) -> Result<i64, ClientError> {
        let meta = self.topic(topic, false).await?;
        let leader = meta
            .partitions
            .iter()
            .find(|p| p.partition == partition)
            .map(|p| p.leader)
            .ok_or(ClientError::Kafka {
                code: kerr::UNKNOWN_TOPIC_OR_PARTITION,
            })?;
        let (v, body) = self
            .send(leader, |v| {
                produce::request(v.produce, -1, 30_000, topic, partition, batch)
            })
            .await?;
        let answers = produce::decode(v.produce, body)?;
        let p = partition_answer(answers, partition, |p| (p.partition, p.error_code))?;
        Ok(p.base_offset)
    }
}

/// The answer for `partition` among a response's per-partition answers (`key` reads an
/// answer's partition and error code): none is UNKNOWN_TOPIC_OR_PARTITION, an error code
/// is that Kafka error.
pub(crate) fn partition_answer<T>(
    answers: Vec<T>,
    partition: i32,
    key: impl Fn(&T) -> (i32, i16),
) -> Result<T, ClientError> {
    let answer = answers
        .into_iter()
        .find(|a| key(a).0 == partition)
        .ok_or(ClientError::Kafka {
            code: kerr::UNKNOWN_TOPIC_OR_PARTITION,
        })?;
    match key(&answer).1 {
        0 => Ok(answer),
        code => Err(ClientError::Kafka { code }),
    }
}

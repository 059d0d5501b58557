//! A worker's view of the Kafka cluster: one connection per broker, shared by every stream of
//! the binding on that worker, and a metadata cache refreshed on demand.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use binding_api::binding::{Binding, Worker};

use crate::ClientError;
use crate::config::Sasl;
use crate::connection::Connection;
use crate::proto::error as kerr;
use crate::proto::metadata::{self, TopicMeta};
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

/// Connections and metadata for one binding on one worker.
pub struct Cluster {
    exit: Arc<dyn Binding>,
    worker: Worker,
    servers: Vec<(String, u16)>,
    sasl: Option<Sasl>,
    conns: RefCell<HashMap<i32, Rc<Connection>>>,
    brokers: RefCell<HashMap<i32, (String, u16)>>,
    topics: RefCell<HashMap<String, (TopicMeta, Instant)>>,
    connecting: tokio::sync::Mutex<()>,
    /// Failed attempts in a row, by broker address, until one succeeds (one entry per
    /// bootstrap server or broker: bounded by the cluster's size).
    failures: RefCell<HashMap<String, u32>>,
}

impl Cluster {
    /// A cluster reached through `exit`, bootstrapped from `servers`.
    pub fn new(
        exit: Arc<dyn Binding>,
        worker: Worker,
        servers: Vec<(String, u16)>,
        sasl: Option<Sasl>,
    ) -> Self {
        Cluster {
            exit,
            worker,
            servers,
            sasl,
            conns: RefCell::default(),
            brokers: RefCell::default(),
            topics: RefCell::default(),
            connecting: tokio::sync::Mutex::new(()),
            failures: RefCell::default(),
        }
    }

    /// Telemetry: the first failure of a streak is a warning, success after failures an event.
    fn note_attempt(&self, endpoint: &str, error: Option<&ClientError>) {
        let mut failures = self.failures.borrow_mut();
        let worker = self.worker.index();
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

    fn live(&self, node: i32) -> Option<Rc<Connection>> {
        let conns = self.conns.borrow();
        conns.get(&node).filter(|c| c.is_alive()).cloned()
    }

    /// The connection to `node` (`-1`: any bootstrap server), opened when needed.
    pub async fn connection(&self, node: i32) -> Result<Rc<Connection>, ClientError> {
        if let Some(conn) = self.live(node) {
            return Ok(conn);
        }
        tracing::debug!(node, "DBG connecting wait");
        let _guard = self.connecting.lock().await;
        tracing::debug!(node, "DBG connecting locked");
        if let Some(conn) = self.live(node) {
            return Ok(conn);
        }
        let targets: Vec<(String, u16)> = if node == BOOTSTRAP {
            self.servers.clone()
        } else {
            let known = self.brokers.borrow().get(&node).cloned();
            known
                .map(|b| vec![b])
                .ok_or(ClientError::UnknownBroker { node })?
        };
        let mut last = ClientError::UnknownBroker { node };
        for (host, port) in targets {
            let open = Connection::open(&self.exit, &self.worker, &host, port, self.sasl.as_ref());
            let opened = tokio::time::timeout(CONNECT_TIMEOUT, open)
                .await
                .unwrap_or_else(|_| {
                    Err(ClientError::Unreachable {
                        endpoint: format!("{host}:{port}"),
                        detail: format!("no answer within {CONNECT_TIMEOUT:?}"),
                    })
                });
            let endpoint = format!("{host}:{port}");
            self.note_attempt(&endpoint, opened.as_ref().err());
            match opened {
                Ok(conn) => {
                    self.conns.borrow_mut().insert(node, conn.clone());
                    return Ok(conn);
                }
                Err(e @ ClientError::Sasl { .. }) => return Err(e),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Sends a request built for the negotiated versions to `node`.
    pub async fn send(
        &self,
        node: i32,
        build: impl FnOnce(&Versions) -> Request,
    ) -> Result<(Versions, bytes::Bytes), ClientError> {
        let conn = self.connection(node).await?;
        let versions = conn.versions;
        match tokio::time::timeout(REQUEST_TIMEOUT, conn.send(build(&versions))).await {
            Ok(body) => Ok((versions, body?)),
            Err(_) => {
                // The broker stopped answering on this connection: forget it, so the next
                // request opens a fresh one.
                let mut conns = self.conns.borrow_mut();
                if conns.get(&node).is_some_and(|c| Rc::ptr_eq(c, &conn)) {
                    conns.remove(&node);
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
        let (versions, body) = self
            .send(BOOTSTRAP, |v| metadata::request(v.metadata, &[topic]))
            .await?;
        let response = metadata::decode(versions.metadata, body)?;
        {
            let mut brokers = self.brokers.borrow_mut();
            for b in &response.brokers {
                let port = u16::try_from(b.port).unwrap_or(0);
                brokers.insert(b.node_id, (b.host.clone(), port));
            }
        }
        let meta = response
            .topics
            .into_iter()
            .find(|t| t.name == topic)
            .ok_or_else(|| ClientError::UnknownTopic {
                topic: topic.to_owned(),
            })?;
        self.topics
            .borrow_mut()
            .insert(topic.to_owned(), (meta.clone(), Instant::now()));
        Ok(meta)
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
        let answer = produce::decode(v.produce, body)?;
        let p = answer
            .into_iter()
            .find(|p| p.partition == partition)
            .ok_or(ClientError::Kafka {
                code: kerr::UNKNOWN_TOPIC_OR_PARTITION,
            })?;
        if p.error_code != 0 {
            return Err(ClientError::Kafka { code: p.error_code });
        }
        Ok(p.base_offset)
    }
}

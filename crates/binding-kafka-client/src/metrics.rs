//! What the client records, per worker: `kafka.fetches` (Fetch requests sent, by topic) and
//! `kafka.broker.connected` (a level per broker, set where connection attempts are noted: 1
//! when one opens, 0 when one fails), and the readiness gate it opens once the cluster has
//! answered Metadata.

use std::time::Duration;

use zilla_metrics::catalog::{KAFKA_BROKER_CONNECTED, KAFKA_FETCHES};
use zilla_metrics::{BindingMetrics, Counter, Family, Level};

/// First wait between two attempts at the cluster's first metadata; doubles to
/// [`PROBE_BACKOFF_MAX`].
pub(crate) const PROBE_BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest wait between two attempts at the cluster's first metadata.
pub(crate) const PROBE_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The client's handles on one worker.
pub(crate) struct ClientMetrics {
    fetches: Family<Counter>,
    brokers: Family<Level>,
}

impl ClientMetrics {
    /// The handles on `worker`; `None` when the binding records neither metric.
    pub(crate) fn on(metrics: &BindingMetrics, worker: usize) -> Option<Self> {
        let records = metrics.records(&KAFKA_FETCHES) || metrics.records(&KAFKA_BROKER_CONNECTED);
        records.then(|| ClientMetrics {
            fetches: metrics.counters(worker, &KAFKA_FETCHES),
            brokers: metrics.levels(worker, &KAFKA_BROKER_CONNECTED),
        })
    }

    /// The fetch counter of `topic` (a stream takes it once and counts each fetch with it).
    pub(crate) fn fetches(&self, topic: &str) -> Counter {
        self.fetches.get(&[topic])
    }

    /// A connection to `broker` (`host:port`) opened (`true`) or failed to.
    pub(crate) fn broker(&self, broker: &str, up: bool) {
        self.brokers.get(&[broker]).set(i64::from(up));
    }
}

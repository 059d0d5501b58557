//! What the proxy records that the sse server in front of it cannot know, per worker:
//! `sse.resumes` (a last event id decoded into Kafka positions the subscription resumes
//! from) and `sse.ids.rejected` (a last event id that is not one of ours: `400`).

use zilla_metrics::catalog::{SSE_IDS_REJECTED, SSE_RESUMES};
use zilla_metrics::{BindingMetrics, Counter};

/// The proxy's handles on one worker.
pub(crate) struct ProxyMetrics {
    pub(crate) resumes: Counter,
    pub(crate) ids_rejected: Counter,
}

impl ProxyMetrics {
    /// The handles on `worker`.
    pub(crate) fn on(metrics: &BindingMetrics, worker: usize) -> Self {
        ProxyMetrics {
            resumes: metrics.counter(worker, &SSE_RESUMES),
            ids_rejected: metrics.counter(worker, &SSE_IDS_REJECTED),
        }
    }
}

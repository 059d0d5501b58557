//! What an sse server records, per worker: subscriptions opened, active and ended by reason,
//! events and bytes written, resumes from a last event id, and requests refused (400) for
//! their id. A subscription holds a [`Meter`]; recording is a relaxed load and store in the
//! worker's own cells, nothing when the binding records nothing.

use std::rc::Rc;

use binding_api::frame::ReasonKind;
use zilla_metrics::catalog::{
    SSE_DATA_SENT, SSE_EVENTS_SENT, SSE_IDS_REJECTED, SSE_RESUMES, SSE_SUBSCRIBERS_ACTIVE,
    SSE_SUBSCRIBERS_ENDED, SSE_SUBSCRIBERS_OPENED,
};
use zilla_metrics::{BindingMetrics, Counter, Gauge};

/// Why a subscription ended: the `reason` label of `sse.subscribers.ended`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EndReason {
    /// The client went away.
    Client,
    /// The client fell behind its bound (`stall-timeout`).
    SlowClient,
    /// The session its guard admitted it with expired.
    GuardExpired,
    /// The application ended or aborted it, or the engine shut down.
    Server,
}

impl EndReason {
    const ALL: [EndReason; 4] = [
        EndReason::Client,
        EndReason::SlowClient,
        EndReason::GuardExpired,
        EndReason::Server,
    ];

    /// The label value.
    pub(crate) fn label(self) -> &'static str {
        match self {
            EndReason::Client => "client",
            EndReason::SlowClient => "slow_client",
            EndReason::GuardExpired => "guard_expired",
            EndReason::Server => "server",
        }
    }

    /// The reason the subscription ends for when it ends the response with `kind`.
    pub(crate) fn of(kind: ReasonKind) -> Self {
        match kind {
            ReasonKind::Timeout => EndReason::SlowClient,
            ReasonKind::Unauthorized => EndReason::GuardExpired,
            _ => EndReason::Server,
        }
    }
}

/// The binding's handles on one worker.
pub(crate) struct SseMetrics {
    active: Gauge,
    opened: Counter,
    /// By [`EndReason`], in [`EndReason::ALL`] order.
    ended: [Counter; 4],
    events: Counter,
    data: Counter,
    resumes: Counter,
    ids_rejected: Counter,
}

impl SseMetrics {
    /// The handles on `worker`.
    pub(crate) fn on(metrics: &BindingMetrics, worker: usize) -> Self {
        let ended = metrics.counters(worker, &SSE_SUBSCRIBERS_ENDED);
        SseMetrics {
            active: metrics.gauge(worker, &SSE_SUBSCRIBERS_ACTIVE),
            opened: metrics.counter(worker, &SSE_SUBSCRIBERS_OPENED),
            ended: EndReason::ALL.map(|reason| ended.get(&[reason.label()])),
            events: metrics.counter(worker, &SSE_EVENTS_SENT),
            data: metrics.counter(worker, &SSE_DATA_SENT),
            resumes: metrics.counter(worker, &SSE_RESUMES),
            ids_rejected: metrics.counter(worker, &SSE_IDS_REJECTED),
        }
    }

    /// A request refused with 400 for its last event id.
    pub(crate) fn id_rejected(&self) {
        self.ids_rejected.increment();
    }
}

/// One subscription's view of the metrics: counted opened when its response begins, ended
/// once (by the first reason given, else `server` when dropped running).
#[derive(Default)]
pub(crate) struct Meter {
    metrics: Option<Rc<SseMetrics>>,
    /// The request carried a last event id.
    resuming: bool,
    running: bool,
}

impl Meter {
    /// A meter recording in `metrics` for a request that carried a last event id or not.
    pub(crate) fn new(metrics: Option<Rc<SseMetrics>>, resuming: bool) -> Self {
        Meter {
            metrics,
            resuming,
            running: false,
        }
    }

    /// The application refused the subscription: answered with `status`.
    pub(crate) fn refused(&self, status: u16) {
        if let Some(metrics) = &self.metrics
            && status == 400
            && self.resuming
        {
            metrics.id_rejected();
        }
    }

    /// The response began.
    pub(crate) fn started(&mut self) {
        if let Some(metrics) = &self.metrics {
            metrics.opened.increment();
            metrics.active.increment();
            if self.resuming {
                metrics.resumes.increment();
            }
            self.running = true;
        }
    }

    /// The subscription ended for `reason` (once; later calls are ignored).
    pub(crate) fn ended(&mut self, reason: EndReason) {
        if let Some(metrics) = &self.metrics
            && std::mem::take(&mut self.running)
        {
            metrics.active.decrement();
            let index = EndReason::ALL
                .iter()
                .position(|r| *r == reason)
                .unwrap_or(EndReason::ALL.len() - 1);
            metrics.ended[index].increment();
        }
    }

    /// A whole event was queued for the client.
    #[inline]
    pub(crate) fn event(&self) {
        if let Some(metrics) = &self.metrics {
            metrics.events.increment();
        }
    }

    /// `bytes` were written to the response.
    #[inline]
    pub(crate) fn sent(&self, bytes: usize) {
        if let Some(metrics) = &self.metrics {
            metrics.data.add(bytes as u64);
        }
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.ended(EndReason::Server);
    }
}

#[cfg(test)]
mod tests {
    use zilla_metrics::{Registry, Selection, Value};

    use super::*;

    #[test]
    fn a_subscription_is_counted_once_opened_and_once_ended() {
        let registry = Registry::new("ns", &[]).expect("registry");
        let selection = Selection {
            metrics: zilla_metrics::catalog::CATALOG
                .iter()
                .copied()
                .filter(|m| m.name.starts_with("sse."))
                .collect(),
            attributes: Vec::new(),
        };
        let binding = registry.binding("sse", selection).expect("binding");
        let metrics = Rc::new(SseMetrics::on(&binding, 0));
        let mut resumed = Meter::new(Some(metrics.clone()), true);
        resumed.started();
        resumed.event();
        resumed.sent(10);
        resumed.ended(EndReason::SlowClient);
        resumed.ended(EndReason::Client);
        drop(resumed);
        let mut fresh = Meter::new(Some(metrics.clone()), false);
        fresh.started();
        Meter::new(Some(metrics.clone()), true).refused(400);
        Meter::new(Some(metrics.clone()), false).refused(400);
        Meter::new(Some(metrics), true).refused(404);
        let snapshot = registry.snapshot();
        let value =
            |metric: &str, labels: &[(&str, &str)]| snapshot.value(metric, "sse", labels).cloned();
        assert_eq!(
            value("sse.subscribers.opened", &[]),
            Some(Value::Counter(2))
        );
        assert_eq!(value("sse.subscribers.active", &[]), Some(Value::Gauge(1)));
        assert_eq!(
            value("sse.subscribers.ended", &[("reason", "slow_client")]),
            Some(Value::Counter(1))
        );
        assert_eq!(
            value("sse.subscribers.ended", &[("reason", "client")]),
            Some(Value::Counter(0))
        );
        assert_eq!(value("sse.resumes", &[]), Some(Value::Counter(1)));
        assert_eq!(value("sse.ids.rejected", &[]), Some(Value::Counter(1)));
        assert_eq!(value("sse.events.sent", &[]), Some(Value::Counter(1)));
        assert_eq!(value("sse.data.sent", &[]), Some(Value::Counter(10)));
        drop(fresh);
        assert_eq!(
            registry
                .snapshot()
                .value("sse.subscribers.ended", "sse", &[("reason", "server")])
                .cloned(),
            Some(Value::Counter(1))
        );
        assert_eq!(EndReason::of(ReasonKind::Timeout), EndReason::SlowClient);
        assert_eq!(
            EndReason::of(ReasonKind::Unauthorized),
            EndReason::GuardExpired
        );
        assert_eq!(EndReason::of(ReasonKind::Shutdown), EndReason::Server);
    }
}

//! A server's connection metrics on one worker: `stream.opens.received` (connections
//! accepted), `stream.closes.received` (connections closed: their task ended) and
//! `stream.active.received` (accepted, not yet closed).

use std::rc::Rc;

use zilla_metrics::catalog::{
    STREAM_ACTIVE_RECEIVED, STREAM_CLOSES_RECEIVED, STREAM_OPENS_RECEIVED,
};
use zilla_metrics::{BindingMetrics, Counter, Gauge};

/// The handles, made as the server starts on a worker.
pub(crate) struct Connections {
    opens: Counter,
    closes: Counter,
    active: Gauge,
}

impl Connections {
    /// The handles on worker `worker`; `None` when the binding records none of them.
    pub(crate) fn on(worker: usize, metrics: &BindingMetrics) -> Option<Rc<Self>> {
        let connections = Connections {
            opens: metrics.counter(worker, &STREAM_OPENS_RECEIVED),
            closes: metrics.counter(worker, &STREAM_CLOSES_RECEIVED),
            active: metrics.gauge(worker, &STREAM_ACTIVE_RECEIVED),
        };
        let any = connections.opens.is_enabled()
            || connections.closes.is_enabled()
            || connections.active.is_enabled();
        any.then(|| Rc::new(connections))
    }

    /// Counts an accepted connection; dropping what it returns counts it closed.
    pub(crate) fn opened(self: &Rc<Self>) -> Open {
        self.opens.increment();
        self.active.increment();
        Open(self.clone())
    }
}

/// An open connection, counted closed when dropped.
pub(crate) struct Open(Rc<Connections>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.closes.increment();
        self.0.active.decrement();
    }
}

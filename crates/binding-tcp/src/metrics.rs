//! A server's connection metrics on one worker: `stream.opens.received` (connections
//! accepted), `stream.closes.received` (connections closed: their task ended),
//! `stream.active.received` (accepted, not yet closed), `stream.data.received` and
//! `stream.data.sent` (bytes read from and written to the sockets), `stream.errors.received`
//! (connections the network failed: a reset or a socket error) and `stream.errors.sent`
//! (connections closed abruptly because the application aborted or refused them).

use std::rc::Rc;

use zilla_metrics::catalog::{
    STREAM_ACTIVE_RECEIVED, STREAM_CLOSES_RECEIVED, STREAM_DATA_RECEIVED, STREAM_DATA_SENT,
    STREAM_ERRORS_RECEIVED, STREAM_ERRORS_SENT, STREAM_OPENS_RECEIVED,
};
use zilla_metrics::{BindingMetrics, Counter, Gauge};

/// The handles, made as the server starts on a worker.
pub(crate) struct Connections {
    opens: Counter,
    closes: Counter,
    active: Gauge,
    data_received: Counter,
    data_sent: Counter,
    errors_received: Counter,
    errors_sent: Counter,
}

/// Which side failed a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The network: a reset, or a socket error.
    Network,
    /// The application aborted or refused the connection.
    Application,
}

impl Connections {
    /// The handles on worker `worker`; `None` when the binding records none of them.
    pub(crate) fn on(worker: usize, metrics: &BindingMetrics) -> Option<Rc<Self>> {
        let connections = Connections {
            opens: metrics.counter(worker, &STREAM_OPENS_RECEIVED),
            closes: metrics.counter(worker, &STREAM_CLOSES_RECEIVED),
            active: metrics.gauge(worker, &STREAM_ACTIVE_RECEIVED),
            data_received: metrics.counter(worker, &STREAM_DATA_RECEIVED),
            data_sent: metrics.counter(worker, &STREAM_DATA_SENT),
            errors_received: metrics.counter(worker, &STREAM_ERRORS_RECEIVED),
            errors_sent: metrics.counter(worker, &STREAM_ERRORS_SENT),
        };
        let any = connections.opens.is_enabled()
            || connections.closes.is_enabled()
            || connections.active.is_enabled()
            || connections.data_received.is_enabled()
            || connections.data_sent.is_enabled()
            || connections.errors_received.is_enabled()
            || connections.errors_sent.is_enabled();
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

impl Open {
    /// Counts bytes read from the socket.
    pub(crate) fn received(&self, bytes: usize) {
        self.0.data_received.add(bytes as u64);
    }

    /// Counts bytes written to the socket.
    pub(crate) fn sent(&self, bytes: usize) {
        self.0.data_sent.add(bytes as u64);
    }

    /// Counts the connection failed, once, by the side that failed it.
    pub(crate) fn failed(&self, by: Failure) {
        match by {
            Failure::Network => self.0.errors_received.increment(),
            Failure::Application => self.0.errors_sent.increment(),
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.closes.increment();
        self.0.active.decrement();
    }
}

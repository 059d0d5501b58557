//! What an http server records, per worker: Zilla's `http.*` for each request the
//! application answers (labelled, when configured, by `${http.request.method}` and
//! `${http.request.path}`), and `stream.*` for the streams it takes (network connections:
//! `*.received`) and gives (one per request: `*.sent`).
//!
//! A request holds a [`RequestMeter`] from its dispatch to the application until its
//! exchange is over; dropping it records the request's size, its response's size and its
//! duration. Requests the binding answers itself (404, 405, CORS preflights, malformed
//! requests) are not counted: no stream was opened for them.

use std::rc::Rc;

use tokio::time::Instant;
use zilla_metrics::catalog::{
    HTTP_ACTIVE_REQUESTS, HTTP_DURATION, HTTP_REQUEST_SIZE, HTTP_RESPONSE_SIZE,
    STREAM_ACTIVE_RECEIVED, STREAM_ACTIVE_SENT, STREAM_CLOSES_RECEIVED, STREAM_CLOSES_SENT,
    STREAM_OPENS_RECEIVED, STREAM_OPENS_SENT,
};
use zilla_metrics::{BindingMetrics, Counter, Family, Gauge, Histogram};

/// The binding's handles on one worker.
pub(crate) struct HttpMetrics {
    request_size: Family<Histogram>,
    response_size: Family<Histogram>,
    duration: Family<Histogram>,
    active: Family<Gauge>,
    connections: Streams,
    requests: Streams,
}

/// Opens, closes and open streams of one direction.
struct Streams {
    opens: Counter,
    closes: Counter,
    active: Gauge,
}

impl Streams {
    fn open(&self) {
        self.opens.increment();
        self.active.increment();
    }

    fn close(&self) {
        self.closes.increment();
        self.active.decrement();
    }
}

impl HttpMetrics {
    /// The handles on `worker`.
    pub(crate) fn on(metrics: &BindingMetrics, worker: usize) -> Self {
        HttpMetrics {
            request_size: metrics.histograms(worker, &HTTP_REQUEST_SIZE),
            response_size: metrics.histograms(worker, &HTTP_RESPONSE_SIZE),
            duration: metrics.histograms(worker, &HTTP_DURATION),
            active: metrics.gauges(worker, &HTTP_ACTIVE_REQUESTS),
            connections: Streams {
                opens: metrics.counter(worker, &STREAM_OPENS_RECEIVED),
                closes: metrics.counter(worker, &STREAM_CLOSES_RECEIVED),
                active: metrics.gauge(worker, &STREAM_ACTIVE_RECEIVED),
            },
            requests: Streams {
                opens: metrics.counter(worker, &STREAM_OPENS_SENT),
                closes: metrics.counter(worker, &STREAM_CLOSES_SENT),
                active: metrics.gauge(worker, &STREAM_ACTIVE_SENT),
            },
        }
    }

    /// A network connection taken: counted closed when what this returns drops.
    pub(crate) fn connection(self: &Rc<Self>) -> ConnectionMeter {
        self.connections.open();
        ConnectionMeter(self.clone())
    }

    /// A request with `method` and `path` (its query is not a label) dispatched to the
    /// application.
    pub(crate) fn request(self: &Rc<Self>, method: &str, path: &str) -> Box<RequestMeter> {
        let path = path.split_once('?').map_or(path, |(path, _)| path);
        let labels = [method, path];
        let active = self.active.get(&labels);
        active.increment();
        self.requests.open();
        Box::new(RequestMeter {
            request_size: self.request_size.get(&labels),
            response_size: self.response_size.get(&labels),
            duration: self.duration.get(&labels),
            active,
            metrics: self.clone(),
            began: Instant::now(),
            request_bytes: 0,
            response_bytes: 0,
        })
    }
}

/// A network connection, counted closed when dropped.
pub(crate) struct ConnectionMeter(Rc<HttpMetrics>);

impl Drop for ConnectionMeter {
    fn drop(&mut self) {
        self.0.connections.close();
    }
}

/// One request to the application, recorded when dropped (its exchange is over).
pub(crate) struct RequestMeter {
    request_size: Histogram,
    response_size: Histogram,
    duration: Histogram,
    active: Gauge,
    metrics: Rc<HttpMetrics>,
    began: Instant,
    request_bytes: u64,
    response_bytes: u64,
}

impl RequestMeter {
    /// `bytes` more of the request's body passed on.
    #[inline]
    pub(crate) fn request_body(&mut self, bytes: usize) {
        self.request_bytes += bytes as u64;
    }

    /// `bytes` more of the response's body.
    #[inline]
    pub(crate) fn response_body(&mut self, bytes: usize) {
        self.response_bytes += bytes as u64;
    }
}

impl Drop for RequestMeter {
    fn drop(&mut self) {
        self.request_size.record(self.request_bytes);
        self.response_size.record(self.response_bytes);
        let micros = u64::try_from(self.began.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.duration.record(micros);
        self.active.decrement();
        self.metrics.requests.close();
    }
}

#[cfg(test)]
mod tests {
    use zilla_metrics::{Attribute, AttributeValue, Registry, Selection, Value};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_request_is_recorded_by_method_and_path_when_its_exchange_ends() {
        let registry = Registry::new("ns", &[]).expect("registry");
        let selection = Selection {
            metrics: zilla_metrics::catalog::CATALOG
                .iter()
                .copied()
                .filter(|m| m.name.starts_with("http.") || m.name.starts_with("stream."))
                .collect(),
            attributes: vec![
                Attribute {
                    name: "method".into(),
                    value: AttributeValue::parse("${http.request.method}").expect("method"),
                },
                Attribute {
                    name: "path".into(),
                    value: AttributeValue::parse("${http.request.path}").expect("path"),
                },
            ],
        };
        let binding = registry.binding("http", selection).expect("binding");
        let metrics = Rc::new(HttpMetrics::on(&binding, 0));
        let connection = metrics.connection();
        let mut request = metrics.request("POST", "/items?x=1");
        request.request_body(12);
        request.response_body(5);
        request.response_body(7);
        tokio::time::advance(std::time::Duration::from_millis(1500)).await;
        let labels = [("method", "POST"), ("path", "/items")];
        let value = |metric: &str, labels: &[(&str, &str)]| {
            registry.snapshot().value(metric, "http", labels).cloned()
        };
        assert_eq!(
            value("http.active.requests", &labels),
            Some(Value::Gauge(1))
        );
        assert_eq!(value("stream.active.sent", &[]), Some(Value::Gauge(1)));
        drop(request);
        assert_eq!(
            value("http.active.requests", &labels),
            Some(Value::Gauge(0))
        );
        let Some(Value::Histogram(size)) = value("http.response.size", &labels) else {
            panic!("a histogram");
        };
        assert_eq!((size.count(), size.sum), (1, 12));
        let Some(Value::Histogram(duration)) = value("http.duration", &labels) else {
            panic!("a histogram");
        };
        assert_eq!(duration.sum, 1_500_000, "microseconds");
        assert_eq!(value("stream.closes.sent", &[]), Some(Value::Counter(1)));
        assert_eq!(value("stream.active.received", &[]), Some(Value::Gauge(1)));
        drop(connection);
        assert_eq!(
            value("stream.closes.received", &[]),
            Some(Value::Counter(1))
        );
        assert_eq!(value("stream.active.received", &[]), Some(Value::Gauge(0)));
    }
}

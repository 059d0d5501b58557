//! `kind: server`: each request stream refused at once or opened as a [`Subscription`] to the
//! route's exit (a part of its connection's task).

use std::rc::Rc;
use std::sync::Arc;
use std::time::SystemTime;

use binding_api::binding::{Binding, Worker};
use binding_api::ext::BeginEx;
use binding_api::ext::http::{Header, HttpBeginEx};
use binding_api::frame::{Begin, Reason, ReasonKind, Reset};
use binding_api::guard::Guarded;
use binding_api::route::{Pattern, Resolved, Route, Routes};
use binding_api::stream::{self, Acceptor};
use zilla_metrics::{BindingMetrics, PerBinding};

use crate::config::SseOptions;
use crate::metrics::{Meter, SseMetrics};
use crate::request::{self, Rejection};
use crate::subscription::{Refusal, Subscription};

/// A running sse server.
pub struct SseServer {
    name: String,
    options: Arc<SseOptions>,
    routes: Arc<Routes<Pattern, Guarded>>,
    metrics: BindingMetrics,
}

impl SseServer {
    /// A server with `options` that sends subscriptions by `routes` (whose conditions are
    /// path patterns, matched against the path without its query string, and whose `with` is
    /// what their `guarded` requires), then to `exit`.
    pub fn new(
        name: impl Into<String>,
        options: SseOptions,
        routes: Vec<Route<Pattern, Guarded>>,
        exit: Option<Arc<dyn Binding>>,
    ) -> Self {
        SseServer {
            name: name.into(),
            options: Arc::new(options),
            routes: Arc::new(Routes::new(routes, exit)),
            metrics: BindingMetrics::default(),
        }
    }

    /// The same server recording its subscriptions in `metrics`.
    pub fn with_metrics(mut self, metrics: BindingMetrics) -> Self {
        self.metrics = metrics;
        self
    }
}

impl Binding for SseServer {
    fn name(&self) -> &str {
        &self.name
    }

    fn start(&self, worker: &Worker) {
        // Made now, so that the series are exposed (at zero) before the first subscriber.
        self.worker_metrics(worker);
    }

    fn new_stream(&self, stream: Acceptor, worker: &Worker) {
        let metrics = self.worker_metrics(worker);
        serve(stream, self.options.clone(), &self.routes, metrics, worker);
    }
}

impl SseServer {
    /// The binding's handles on `worker`, when it records anything.
    fn worker_metrics(&self, worker: &Worker) -> Option<Rc<SseMetrics>> {
        worker
            .local::<PerBinding<SseMetrics>>()
            .get(&self.metrics, worker.index(), SseMetrics::on)
    }
}

pub use binding_api::ext::http::refusal_status;

/// The response headers of an event stream.
pub fn stream_headers(timestamps: bool) -> HttpBeginEx {
    let content_type = if timestamps {
        "text/event-stream;ext=timestamp"
    } else {
        "text/event-stream"
    };
    HttpBeginEx::response(
        200,
        [
            Header::new("content-type", content_type),
            Header::new("cache-control", "no-cache"),
            Header::new("x-accel-buffering", "no"),
        ],
    )
}

/// Opens one request stream from an http server: refused at once, or a subscription to the
/// route's exit. A route whose `guarded` refuses the request's authorization is skipped;
/// when no other route nor the `exit` takes it, its refusal is the answer (401 or 403).
fn serve(
    net: Acceptor,
    options: Arc<SseOptions>,
    routes: &Routes<Pattern, Guarded>,
    metrics: Option<Rc<SseMetrics>>,
    worker: &Worker,
) {
    let Acceptor {
        begin,
        input: mut net_in,
        output: mut net_out,
    } = net;
    let BeginEx::Http(request) = begin.ext else {
        net_in.reset(Reset::new(ReasonKind::Refused, "sse takes http streams"));
        let _ = net_out.abort(Reason::new(ReasonKind::Refused, "sse takes http streams"));
        return;
    };
    let subscription = match request::subscription(&request) {
        Ok(subscription) => subscription,
        Err(rejection) => {
            // Every 400 of the request's own is about its last event id.
            if let Some(metrics) = metrics.as_ref().filter(|_| rejection.status == 400) {
                metrics.id_rejected();
            }
            return worker.spawn(Refusal::new(&rejection, net_in, net_out));
        }
    };
    let now = SystemTime::now();
    let resolved = routes.resolve_admitted(
        |pattern| pattern.matches(&subscription.path).then_some(()),
        |guarded| guarded.admit_at(&subscription.authorization, now),
    );
    let (exit, leases) = match resolved {
        Ok(resolved) => {
            // A stream a guard admitted holds the sessions it was admitted with: challenged
            // before they expire, renewed by re-authorization, ended when they expire.
            let leases = match &resolved {
                Resolved::Route { with, .. } => with.hold(&subscription.authorization),
                Resolved::Fallback(_) => Vec::new(),
            };
            (resolved.exit(), leases)
        }
        Err(refused) => {
            let rejection = match refused {
                Some(refusal) => {
                    tracing::debug!(path = %subscription.path, %refusal, "sse: refused by its guard");
                    Rejection::guarded(&refusal)
                }
                None => {
                    tracing::debug!(path = %subscription.path, "sse: no route");
                    Rejection::NOT_FOUND
                }
            };
            return worker.spawn(Refusal::new(&rejection, net_in, net_out));
        }
    };
    let timestamps = subscription.timestamp;
    let meter = Meter::new(metrics, subscription.last_event_id.is_some());
    let (app, acceptor) = stream::open(Begin {
        ext: BeginEx::Sse(Box::new(subscription)),
    });
    exit.new_stream(acceptor, worker);
    worker.spawn(
        Subscription::new(
            (net_in, net_out),
            (app.output, app.input),
            options,
            timestamps,
            worker,
        )
        .guarded_by(leases)
        .metered(meter),
    );
}

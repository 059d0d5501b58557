//! # binding-sse-kafka
//!
//! Zilla's `sse-kafka` binding, `kind: proxy`: each SSE subscription becomes a merged Kafka
//! fetch of a topic, and each Kafka record an SSE event whose id carries the progress of every
//! partition, so a client that reconnects with `Last-Event-ID` resumes exactly where it left
//! off.
//!
//! ## Configuration
//!
//! ```yaml
//! bindings:
//!   north_sse_kafka_mapping:
//!     type: sse-kafka
//!     kind: proxy
//!     routes:
//!       - when:
//!           - path: /{topic}/{key}/{tag}      # Zilla's patterns: `*`, `{name}` (greedy)
//!         exit: north_kafka_cache_client      # a kafka cache_client, or a kafka client
//!         with:
//!           topic: ${params.topic}
//!           filters:                          # OR-ed; key and headers AND-ed inside one
//!             - key: ${params.key}
//!               headers:
//!                 tag: ${params.tag}
//!           event:
//!             id: '["${base64(key)}","${etag}"]'   # or "${etag}" (the default)
//!           start: historical                 # ours: historical (default) or live
//!       - when:
//!           - path: /mine/{topic}
//!         guarded:                            # optional: a session of this guard, these roles
//!           authn_jwt: [proxy:stream]
//!         exit: north_kafka_cache_client
//!         with:
//!           topic: ${params.topic}
//!           filters:
//!             - key: ${guarded['authn_jwt'].identity}   # each user gets their own records
//! ```
//!
//! Every route needs `with` (Zilla fails at run time without one; we refuse the
//! configuration). Values take `${params.NAME}` (a capture of every path of the route) and
//! `${guarded['GUARD'].identity}` / `${guarded['GUARD'].attributes.NAME}`: the identity and
//! the attributes of the subscription's session (verified by the http server's
//! `options.authorization`, carried by the sse server in
//! [`SseBeginEx::authorization`](binding_api::ext::sse::SseBeginEx)). As in Zilla, an unknown
//! guard, no session of that guard, or an unset identity or attribute gives `""`: a key
//! filter of `${guarded['g'].identity}` on a route that is not guarded matches only the
//! records whose key is empty. An `event.id` other than Zilla's two formats is a
//! configuration error (Zilla silently uses the default).
//!
//! A route with `guarded` takes a subscription only with a session of each guard holding
//! every role listed; otherwise the next routes are tried. When none takes it, the
//! subscription is refused with the guard's refusal
//! ([`ResetEx::Guard`](binding_api::ext::ResetEx::Guard)), which the sse server answers
//! `401` (no credentials, or rejected ones) or `403` (a role missing) with its
//! `WWW-Authenticate` challenge; Zilla answers `404`.
//!
//! ## Streams
//!
//! Takes SSE streams ([`SseBeginEx`](binding_api::ext::sse::SseBeginEx)) from an sse server
//! and opens a merged Kafka stream
//! ([`KafkaMergedBeginEx`](binding_api::ext::kafka::KafkaMergedBeginEx)) to the route's exit:
//!
//! - **Start**: with a `Last-Event-ID`, each partition it names starts at its next offset and
//!   every other partition at the earliest offset (nothing is lost when partitions were added).
//!   Without one, the request's `?start=historical|live|<time>` or `?since=<time>` chooses
//!   (see [`start`]), else the route's `start`: `historical` (the earliest offset the cache or
//!   broker holds, as Zilla) or `live` (only new records).
//! - **Malformed `Last-Event-ID`** → refused with reason `invalid`: the sse server answers
//!   `400` (Zilla silently replays everything).
//! - **Response headers** leave as soon as the Kafka stream begins (the topic is known and
//!   each partition's start resolved), or after `START_TIMEOUT` when Kafka is slow or
//!   unreachable: the client then holds a `200` stream with heartbeats, and events flow once
//!   Kafka answers (Zilla waits for every partition, #1628). An unknown topic refuses the
//!   subscription before any header (`404`).
//! - **Records** → events: `data:` is the value's bytes as they are, streamed frame by frame
//!   for large values; the id is [`event_id`]'s encoding of the progress (plus `/etag` from an
//!   `etag` header, and the key in the key format). A **tombstone** → `event: delete` with
//!   `data:` the base64url key (empty when the key is null too: unlike Zilla, whose
//!   data-less event a browser never dispatches, the delete reaches `EventSource` listeners).
//! - **Caught up** (the Kafka flush) → an id-only checkpoint when records were filtered out
//!   since the last event, so a reconnect does not scan them again, then a flush.
//! - **An offset not in the partition**: older than retention, or past the partition's end (a
//!   topic deleted and recreated, a forged or foreign id). The Kafka stream is refused with
//!   the partition's earliest and latest offsets; the subscription reopens with that partition
//!   at the earliest offset (past the end on a `start: live` route: at the end, as Kafka's
//!   `auto.offset.reset`), every other partition after what the client was already sent, and
//!   sends an `event: gap` with `data: {"partition":P,"requested":R,"earliest":E}` first, E
//!   being where the partition resumes. The same event tells a subscriber that the cache
//!   evicted records before it read them (a slow reader). `EventSource` dispatches it only to
//!   listeners of `gap`, so clients that do not care see nothing; those that do know records
//!   between R and E were missed (or, when E < R, that the partition restarted).
//! - **Kafka ends or fails** after the response began → the response ends cleanly (not an
//!   error status: browsers stop reconnecting after any non-200), so clients resume by id.
//! - **The client goes away** → the Kafka stream is reset and ended.
//!
//! ## Metrics
//!
//! With `telemetry: {metrics: [sse.resumes, sse.ids.rejected]}`, per worker, what the sse
//! server in front cannot tell: `sse.resumes` (a last event id decoded into the positions
//! the subscription resumes from) and `sse.ids.rejected` (an id that is not one of ours, 400).
//!
//! ## Inside
//!
//! What a Kafka frame becomes is decided by [`relay::Relay`], a state machine with no I/O
//! (tested frame by frame, and by a property test over any cutting of records into frames);
//! [`proxy`] is its async edge, moving frames and waiting for credit. Ids come from [`ids`]
//! (shared by subscribers at the same position through [`id_memo`]), their encoding from
//! [`event_id`].

pub mod config;
pub mod event_id;
pub mod id_memo;
pub mod ids;
mod metrics;
pub mod proxy;
pub mod relay;
pub mod start;
pub mod template;

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use binding_api::binding::{Binding, Worker};
use binding_api::ext::BeginEx;
use binding_api::ext::kafka::{Condition, Filter, Isolation, KafkaMergedBeginEx, StartPosition};
use binding_api::frame::{Begin, ReasonKind, Reset};
use binding_api::guard::Authorization;
use binding_api::route::{Captures, Resolved};
use binding_api::stream::Acceptor;
use bytes::Bytes;
use zilla_config::ConfigError;
use zilla_config::factory::{BindingConfig, BindingFactory, ExitRule, Kind};
use zilla_metrics::{BindingMetrics, PerBinding};

use crate::config::{ProxyRoutes, Start};
use crate::ids::Ids;
use crate::metrics::ProxyMetrics;
pub use crate::proxy::resume_offset;
use crate::proxy::{SseSide, Subscription};
use crate::relay::Relay;
use crate::template::Source;

/// How long a subscription waits for Kafka before its response begins anyway.
pub const START_TIMEOUT: Duration = Duration::from_secs(2);

/// Builds sse-kafka bindings.
#[derive(Debug, Default)]
pub struct SseKafkaFactory;

impl BindingFactory for SseKafkaFactory {
    fn type_name(&self) -> &'static str {
        "sse-kafka"
    }

    fn kinds(&self) -> &[Kind] {
        &[Kind::Proxy]
    }

    fn exit_rule(&self, _kind: Kind) -> ExitRule {
        ExitRule::Required
    }

    fn build(&self, config: &BindingConfig<'_>) -> Result<Arc<dyn Binding>, ConfigError> {
        let routes = config::parse_routes(config)?;
        Ok(Arc::new(SseKafkaProxy {
            name: config.name.to_owned(),
            routes: Arc::new(routes),
            start_timeout: START_TIMEOUT,
            metrics: config.metrics.clone(),
        }))
    }
}

/// A running sse-kafka proxy.
pub struct SseKafkaProxy {
    name: String,
    routes: Arc<ProxyRoutes>,
    start_timeout: Duration,
    metrics: BindingMetrics,
}

/// Template values of one subscription: its path's captures and its session.
struct Values<'a> {
    params: Captures<'a>,
    authorization: &'a Authorization,
}

impl Source for Values<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name)
    }

    fn identity(&self, guard: &str) -> Option<&str> {
        self.authorization.session(guard)?.identity.as_deref()
    }

    fn attribute(&self, guard: &str, name: &str) -> Option<&str> {
        self.authorization.session(guard)?.attribute(name)
    }
}

/// What a subscription asks of Kafka, resolved from its route and request.
struct Request {
    route: usize,
    merged: KafkaMergedBeginEx,
}

impl SseKafkaProxy {
    /// Resolves the route and the Kafka stream for an SSE begin, or the reset that refuses
    /// it. A route whose `guarded` refuses the subscription's authorization is skipped; when
    /// no other takes it, its guard's refusal is the answer.
    fn subscribe(&self, begin: &Begin, meter: Option<&ProxyMetrics>) -> Result<Request, Reset> {
        let BeginEx::Sse(sse) = &begin.ext else {
            return Err(Reset::new(
                ReasonKind::Refused,
                "sse-kafka takes sse streams",
            ));
        };
        let resolved = self.routes.resolve_admitted(
            |p| p.captures(&sse.path),
            |with| with.guarded.admit(&sse.authorization),
        );
        let (index, route, captures) = match resolved {
            Ok(Resolved::Route {
                index,
                with,
                matched,
                ..
            }) => (index, with, matched),
            Ok(Resolved::Fallback(_)) | Err(None) => {
                return Err(Reset::new(
                    ReasonKind::NoRoute,
                    format!("no route for {}", sse.path),
                ));
            }
            Err(Some(refusal)) => return Err(refusal.into_reset()),
        };
        let values = Values {
            params: captures.unwrap_or_default(),
            authorization: &sse.authorization,
        };
        let resume = match sse.last_event_id.as_deref() {
            Some(id) => event_id::parse(id).map_err(|err| {
                meter.inspect(|m| m.ids_rejected.increment());
                Reset::new(ReasonKind::Invalid, err.to_string())
            })?,
            None => None,
        };
        let requested = start::from_query(sse.query.as_deref())
            .map_err(|err| Reset::new(ReasonKind::Invalid, err.to_string()))?;
        let resuming = resume.is_some();
        let (partitions, default_start) = match (resume, requested) {
            (Some(last), _) => (
                proxy::resume_positions(&last.progress),
                StartPosition::Earliest,
            ),
            (None, Some(position)) => (Vec::new(), position),
            (None, None) => (
                Vec::new(),
                match route.start {
                    Start::Historical => StartPosition::Earliest,
                    Start::Live => StartPosition::Latest,
                },
            ),
        };
        let filters = route
            .filters
            .iter()
            .map(|f| {
                let mut conditions = Vec::with_capacity(1 + f.headers.len());
                if let Some(key) = &f.key {
                    conditions.push(Condition::Key(Bytes::from(key.resolve(&values))));
                }
                for (name, value) in &f.headers {
                    conditions.push(Condition::Header {
                        name: Bytes::copy_from_slice(name.as_bytes()),
                        value: Bytes::from(value.resolve(&values)),
                    });
                }
                Filter { conditions }
            })
            .collect();
        if resuming {
            meter.inspect(|m| m.resumes.increment());
        }
        Ok(Request {
            route: index,
            merged: KafkaMergedBeginEx {
                topic: route.topic.resolve(&values),
                partitions,
                default_start,
                filters,
                isolation: Isolation::ReadCommitted,
            },
        })
    }
}

impl SseKafkaProxy {
    /// The proxy's handles on `worker`, when it records anything.
    fn worker_metrics(&self, worker: &Worker) -> Option<Rc<ProxyMetrics>> {
        worker.local::<PerBinding<ProxyMetrics>>().get(
            &self.metrics,
            worker.index(),
            ProxyMetrics::on,
        )
    }
}

impl Binding for SseKafkaProxy {
    fn name(&self) -> &str {
        &self.name
    }

    fn start(&self, worker: &Worker) {
        // Made now, so that the series are exposed (at zero) before the first subscriber.
        self.worker_metrics(worker);
    }

    fn new_stream(&self, stream: Acceptor, worker: &Worker) {
        let meter = self.worker_metrics(worker);
        let request = match self.subscribe(&stream.begin, meter.as_deref()) {
            Ok(request) => request,
            Err(reset) => {
                tracing::debug!(binding = %self.name, reason = %reset.reason, "subscription refused");
                stream.refuse(reset);
                return;
            }
        };
        let format = self.routes[request.route].with.id_format;
        let relay = Relay::new(Ids::new(format, worker.local()));
        let sse = SseSide {
            input: stream.input,
            output: stream.output,
        };
        if let Some(subscription) = Subscription::start(
            sse,
            self.routes.clone(),
            request.route,
            request.merged,
            self.start_timeout,
            worker,
            relay,
        ) {
            worker.spawn(subscription);
        }
    }
}

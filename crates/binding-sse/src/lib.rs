//! # binding-sse
//!
//! Zilla's `sse` binding. `kind: server` turns HTTP requests into Server-Sent Events
//! subscriptions, and the application's events into a `text/event-stream` response.
//! `kind: client` ([`client`]) subscribes to an SSE upstream through an http client and
//! gives its events back as the frames a server consumes, so `sse server → sse client →
//! http client → tcp client` proxies an upstream event stream (see [Client](#client)).
//!
//! ## Configuration
//!
//! ```yaml
//! bindings:
//!   north_sse_server:
//!     type: sse
//!     kind: server
//!     options:
//!       retry: 2000            # ms, sent as `retry:` when a stream starts (default 2000)
//!       heartbeat: 15000       # ms without a write before an empty comment; 0 = off (default 15000)
//!       initial-comment: false # an empty comment right after `retry:` (default false)
//!       buffer: 65536          # bytes that may wait to be written per stream (default 65536)
//!       stall-timeout: 30000   # ms a client may leave them waiting before it is disconnected
//!     routes:
//!       - when:
//!           - path: /events/*  # `*` matches any text; the query string is ignored
//!         guarded:             # optional: a session of this guard with every role
//!           authn_jwt: [proxy:stream]
//!         exit: ticker
//!     exit: fallback           # when no route matches (else 404)
//! ```
//!
//! `retry` is Zilla's option (Zilla never sends it; we do). `heartbeat`, `initial-comment`,
//! `buffer` and `stall-timeout` are ours. Zilla's `options.requests` (event validation
//! with models) is refused with a configuration error: not supported yet. Routes take no
//! `with`.
//!
//! ## Guarded routes
//!
//! A route with `guarded: {GUARD: [roles]}` takes a request only when the http server in
//! front verified its credentials with that guard (`options.authorization`, the outcome in
//! [`HttpBeginEx::authorization`](binding_api::ext::http::HttpBeginEx::authorization)) and
//! the session holds every role listed. Otherwise the route does not match and later routes,
//! then the `exit`, are tried, as in Zilla. When none takes the request:
//!
//! - no credentials, or credentials the guard rejected (expired, bad signature, ...) →
//!   `401` with `WWW-Authenticate: Bearer realm="GUARD"`, plus `error="invalid_token"` and
//!   the guard's `error_description` for rejected ones (RFC 6750);
//! - a verified session lacking a role → `403` with
//!   `WWW-Authenticate: Bearer realm="GUARD", error="insufficient_scope"`.
//!
//! **Zilla answers both with `404`** (an unauthorized route is simply one that does not
//! match). 401 tells an `EventSource` page to fetch a fresh token rather than to look for a
//! wrong URL; 403 that the token is fine but not enough. The session travels on to the
//! application in [`SseBeginEx::authorization`](binding_api::ext::sse::SseBeginEx), so that
//! sse-kafka can filter by its identity. A session that has already expired (a token
//! within the guard's clock skew) is refused like rejected credentials: `401`,
//! `error_description="the token expired"`.
//!
//! A stream a guard admitted holds a [`Lease`](binding_api::guard::Lease) on its session,
//! kept by the guard's live sessions. When the guard has a `challenge` (seconds), that long
//! before the session expires the stream gets, between events, Zilla's challenge event
//! ([`challenge::CHALLENGE`]):
//!
//! ```text
//! event:challenge
//! data:{"method":"POST","headers":{"content-type":"application/x-challenge-response"}}
//! ```
//!
//! The client answers with a `POST` of fresh credentials with that content type, to the http
//! server in front (any path, any connection: an HTTP/1.1 connection is busy with the
//! stream); the guard then extends every live stream of the same identity that the fresh
//! token would still admit (the roles the route required, the same attributes), and the
//! stream goes on, challenged again before its new expiry. Otherwise the stream ends cleanly
//! at the expiry, so the client reconnects with its last event id and fresh credentials.
//! The stream's one timer serves pacing, the challenge and the expiry; it reads the lease
//! when it fires, so a re-authorization wakes nothing.
//!
//! ## Streams
//!
//! Takes HTTP request streams (`BeginEx::Http`, from an http server):
//!
//! - Not `GET` → `405` with `allow: GET`. A last event id over 4096 bytes
//!   ([`MAX_EVENT_ID`](binding_api::ext::sse::MAX_EVENT_ID); Zilla: 254), a `last-event-id`
//!   header that is not UTF-8 or is repeated with different values (it is not a list, RFC
//!   9110 §5.3; repeated with one value it is taken), or a `lastEventId` parameter that is
//!   not valid percent-encoded UTF-8 → `400`. No route → `404`; refused by its guard →
//!   `401`/`403` (above). Every refusal has `content-length: 0`.
//! - A data frame that says `continues: true` followed by the application's end leaves that
//!   event unfinished: it is not completed, so clients discard it (as at any EOF).
//! - Otherwise opens a stream to the route's exit with
//!   [`BeginEx::Sse`](binding_api::ext::BeginEx) ([`SseBeginEx`](binding_api::ext::sse::SseBeginEx)):
//!   scheme, authority, path without its query, the last event id (the `last-event-id`
//!   header, else the `lastEventId` query parameter, percent-decoded; the header wins) and
//!   whether `accept` asked for `ext=timestamp`, and the request's authorization.
//! - The application refuses (reset or abort before its reply begins) → `404`, or `502`,
//!   `503`, `504`, `400` when the reason is `unreachable`, `shutdown`, `timeout`, `invalid`;
//!   `401`/`403` with the challenge when its reset carries a guard's refusal
//!   ([`ResetEx::Guard`](binding_api::ext::ResetEx::Guard), a guarded sse-kafka route).
//! - The application's reply begin → `200` with `content-type: text/event-stream`,
//!   `cache-control: no-cache`, `x-accel-buffering: no`; then `retry:` and the optional
//!   initial comment.
//! - Its data frames are events ([`SseDataEx`](binding_api::ext::sse::SseDataEx); a frame with
//!   `continues: true` is followed by more of the same event), encoded by [`encoder`] as they
//!   come. A whole event of up to 4 KiB in one frame is encoded once per worker and its bytes
//!   shared by every subscription sent the same payload with the same id ([`event_memo`]),
//!   so fanning a record out to many subscribers costs one encoding. Flush → an id-only block if the flush carries an id, then a flush of the response.
//!   End → an id-only block if the end carries one, then the end of the response. Abort →
//!   abort of the response.
//! - The client goes away (request aborted, response reset) → the application's reply is
//!   reset and its initial direction aborted.
//!
//! ## Memory and slow clients
//!
//! The application gets `buffer` bytes of credit; its frames are taken one at a time and
//! encoded at most 16 KiB ahead of what the response's credit lets through, and its credit
//! comes back only as its bytes are encoded. A stream therefore holds at most `buffer` +
//! 16 KiB whatever the client does. When encoded bytes wait and the response has had no
//! credit for them for `stall-timeout`, the response is **ended** (not aborted): the client
//! reconnects with its last event id and resumes. Heartbeats are written only between events.
//! The shared events are held per worker in 1,024 slots of at most twice 4 KiB each (about
//! 0.6 MB for events of 256 bytes, 8 MiB at most), whatever the number of subscriptions.
//!
//! ## Refused events
//!
//! An id with CR, LF or NUL, or a type with CR or LF, cannot be written as one field: that
//! event (all its fragments) is dropped with a warning. Resetting instead would make the
//! client reconnect and meet the same event again. Payload bytes are passed as they are: a
//! payload that is not UTF-8 shows U+FFFD to browsers.
//!
//! ## Metrics
//!
//! With `telemetry: {metrics: [sse.*]}`, per worker: `sse.subscribers.opened` and `.active`
//! (from the reply's begin), `sse.subscribers.ended` by `reason` (`client` gone,
//! `slow_client` past `stall-timeout`, `guard_expired`, `server`: the application's end or
//! abort, shutdown), `sse.events.sent` (whole events queued), `sse.data.sent` (bytes
//! written), `sse.resumes` (accepted with a last event id) and `sse.ids.rejected` (400 for
//! the id, by this binding or by the application). docs/metrics.md lists them.
//!
//! ## Client
//!
//! ```yaml
//! bindings:
//!   south_sse_client:
//!     type: sse
//!     kind: client
//!     options:
//!       max-event-size: 1048576  # ours: the largest upstream event, bytes (default 1 MiB)
//!     exit: south_http_client    # required: an http client
//! ```
//!
//! Zilla's sse client takes no options; `max-event-size` is ours. `routes` and a `vault`
//! are configuration errors.
//!
//! - **Takes** subscriptions ([`BeginEx::Sse`](binding_api::ext::BeginEx)), as an sse
//!   server opens them; anything else is refused.
//! - **Gives** one request stream to the exit: `GET` with the subscription's `:scheme`,
//!   `:authority` and `:path` (with its query), `accept: text/event-stream`, and
//!   `last-event-id` when the subscription resumes (not when it is empty). The request ends
//!   at once. The request's credentials are not forwarded.
//! - The response: `200` with `text/event-stream` → the reply begins. Otherwise the
//!   subscription is refused with a reason the sse server answers with the same status:
//!   400 → `invalid`, 401 → `unauthorized`, 403 → `forbidden`, 503 → `shutdown`, 504 →
//!   `timeout`, other 4xx → `refused` (404); 5xx, 3xx (redirects are not followed) and a
//!   200 that is not `text/event-stream` → `unreachable` (502). An http client's own
//!   refusals (upstream unreachable, lost) pass through (502).
//! - The body is parsed by [`client::parser`] as the WHATWG standard says (CR, LF and CRLF
//!   line ends, a leading BOM, comments, `data`/`id`/`event`; `retry` is dropped since the
//!   server in front sends its own). Each event becomes data with
//!   [`SseDataEx`](binding_api::ext::sse::SseDataEx) (its `id` and `event` when its block
//!   had them), in pieces with `continues: true` when larger than the server's credit or
//!   16 KiB; a block with an `id` and no `data` becomes a flush with
//!   [`SseFlushEx`](binding_api::ext::sse::SseFlushEx) (an id-only checkpoint).
//! - Memory: the response is granted 16 KiB of credit, taken only when what came before is
//!   passed on, and an event is held until its blank line up to `max-event-size`. A larger
//!   one: the events before it are passed on, then the reply is aborted
//!   (`protocol violation`, logged as a warning) and the upstream request dropped.
//! - Upstream end → reply end (an unfinished event is dropped, as browsers do); upstream
//!   abort → reply abort. The subscriber going away (the server resets the reply or aborts
//!   its request) drops the upstream request.
//!
//! See `examples/events.rs` for a runnable example.

pub mod challenge;
pub mod client;
pub mod config;
pub mod encoder;
pub mod event_memo;
mod metrics;
pub mod pacing;
pub mod request;
mod server;
mod subscription;

use std::sync::Arc;

use binding_api::binding::Binding;
use binding_api::guard::Guarded;
use binding_api::route::Route;
use zilla_config::factory::{BindingConfig, BindingFactory, ExitRule, Kind};
use zilla_config::{ConfigError, ConfigErrorKind};

pub use client::{SseClient, SseClientFactory};
pub use config::SseOptions;
pub use server::{SseServer, refusal_status, stream_headers};

/// Builds sse bindings from configuration.
#[derive(Debug, Default)]
pub struct SseFactory;

impl BindingFactory for SseFactory {
    fn type_name(&self) -> &'static str {
        "sse"
    }

    fn kinds(&self) -> &[Kind] {
        &[Kind::Server]
    }

    fn exit_rule(&self, _kind: Kind) -> ExitRule {
        ExitRule::Required
    }

    fn build(&self, config: &BindingConfig<'_>) -> Result<Arc<dyn Binding>, ConfigError> {
        if let Some(vault) = config.vault {
            return Err(config.error(format!("sse takes no vault (found '{vault}')")));
        }
        let options = config::parse_options(config.options)?;
        let mut routes = Vec::with_capacity(config.routes.len());
        for route in config.routes {
            if let Some(with) = &route.with {
                return Err(
                    ConfigError::custom_at(with.mark, "sse routes take no 'with'")
                        .with_help("remove 'with'"),
                );
            }
            let mut when = Vec::with_capacity(route.when.len());
            for node in &route.when {
                when.push(config::parse_condition(node)?);
            }
            let Some(exit) = &route.exit else {
                return Err(ConfigError::at(
                    route.mark,
                    ConfigErrorKind::MissingField {
                        field: "exit".into(),
                    },
                ));
            };
            routes.push(Route {
                when,
                exit: config.exit_binding(exit, route.mark)?,
                with: Guarded::new(route.guarded.clone()),
            });
        }
        let exit = match config.exit {
            Some(exit) => Some(config.exit_binding(exit, config.mark)?),
            None => None,
        };
        Ok(Arc::new(
            SseServer::new(config.name, options, routes, exit).with_metrics(config.metrics.clone()),
        ))
    }
}

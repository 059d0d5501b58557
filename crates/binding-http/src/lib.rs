//! # binding-http
//!
//! Zilla's `http` binding. `kind: server` takes the network streams of a tcp (or tls)
//! server, speaks HTTP/1.1 or HTTP/2 on each, and opens one stream per request towards the
//! route's exit. `kind: client` ([`client`]) takes request streams and sends each upstream
//! through its exit (a tcp or tls client), see [Client](#client) below.
//!
//! ## Configuration
//!
//! ```yaml
//! bindings:
//!   north_http_server:
//!     type: http
//!     kind: server
//!     options:
//!       versions: [http/1.1, h2]          # default: both
//!       access-control:
//!         policy: cross-origin            # default same-origin: no CORS headers
//!         allow:                          # each list omitted means "any"
//!           origins: [https://app.example.com]
//!           methods: [GET]
//!           headers: [authorization]      # last-event-id is always allowed
//!           credentials: true             # then nothing is "*": the origin is echoed
//!         max-age: 3600
//!         expose:
//!           headers: [x-trace]            # omitted: "*" (or the response's names with credentials)
//!       limits:                           # ours; Zilla sets these as engine properties
//!         max-request-line-size: 8192     # bytes; longer request line → 414
//!         max-header-list-size: 8192      # bytes after the request line → 431 (h2: SETTINGS)
//!         max-headers: 100                # header fields → 431
//!         request-header-timeout: 10      # seconds to complete a head (else 408, close) or the h2 preface
//!         max-pipelined-requests: 16      # HTTP/1.1 requests read ahead of their response
//!         concurrent-streams: 100         # SETTINGS_MAX_CONCURRENT_STREAMS
//!         max-frame-size: 16384           # SETTINGS_MAX_FRAME_SIZE
//!         initial-window-size: 65535      # SETTINGS_INITIAL_WINDOW_SIZE
//!         max-pending-accept-reset-streams: 20   # rapid reset (CVE-2023-44487) bound
//!         max-local-error-reset-streams: 1024    # GOAWAY after this many stream errors
//!       overrides:                        # request headers set towards every exit
//!         x-forwarded-proto: https
//!       authorization:                    # one guard (under `guards`, type jwt)
//!         authn_jwt:
//!           credentials:                  # where the token is, first found wins
//!             headers:
//!               authorization: Bearer {credentials}
//!             query:
//!               access_token: "{credentials}"
//!             cookies:
//!               access_token: "{credentials}"
//!     routes:
//!       - when:                           # OR-ed; the headers of one entry are AND-ed
//!           - headers:
//!               :method: GET
//!               :path: /events/{topic}    # Zilla patterns: * and {name}; a query still matches
//!         exit: sse_server
//!         with:
//!           headers:
//!             overrides:                  # this route's requests; wins over options.overrides
//!               :path: /stream/${params.topic}
//!               x-topic: ${params.topic}
//!     exit: fallback                      # when no route matches (else 404)
//! ```
//!
//! Unknown options are errors. `requests` (a Zilla feature not implemented yet) is rejected
//! as unknown.
//!
//! ## Authorization
//!
//! With `options.authorization`, each request routed to an exit has its credentials looked
//! for in the headers (the value must match the pattern around `{credentials}`, compared
//! without regard to ASCII case, so `bearer` matches `Bearer`), else the query parameters
//! (percent-decoded), else the cookies, and verified **once** by the guard. The outcome,
//! [`Authorization`](binding_api::guard::Authorization) (no credentials, a verified session,
//! or rejected with a short description for the client), travels in the request's
//! [`HttpBeginEx`](binding_api::ext::http::HttpBeginEx) for guarded routes further on (sse,
//! sse-kafka) to decide on; the http binding itself refuses no request for its credentials.
//! A rejected token is logged at debug level with the guard's reason, never the token; the
//! values of the query parameters that carry credentials are hidden in the request log. The
//! credentials stay in the request passed on (as in Zilla). Zilla's `{username}`/`{password}`
//! header patterns (basic authentication) are refused: a pattern must hold `{credentials}`
//! once. At most one guard; a pattern without `{credentials}`, an unknown guard or one that is
//! not a `jwt` guard, and a guard with no `headers`, `query` or `cookies` are configuration
//! errors.
//!
//! **Re-authorization.** With `options.authorization`, a `POST` with `content-type:
//! application/x-challenge-response` (the answer to an sse stream's `challenge` event) is
//! answered by the binding itself and routed nowhere: its credentials, found as above, go to
//! the guard's [`reauthorize`](binding_api::guard::Guard::reauthorize), which extends the
//! live streams of the same identity that they still admit (see the sse crate) → `204`;
//! no credentials → `401` with `WWW-Authenticate: Bearer realm="GUARD"`; rejected ones →
//! `401` with `error="invalid_token"` and the guard's description. Any path and any
//! connection will do: the streams are found by identity, and the POST of a browser whose
//! HTTP/1.1 connection carries the stream comes on another one. CORS headers are added as
//! to any response (a cross-origin POST with this content type is preflighted).
//!
//! ## Header overrides
//!
//! As in Zilla, `options.overrides` and a route's `with.headers.overrides` change the
//! **request** a `kind: server` sends towards the exit, never the response (Zilla's docs:
//! "request header overrides"; its server merges the binding's into every route's, the
//! binding `exit` included, and the route's win). An override replaces every field of its
//! name in the request stream's begin, or adds one; the binding itself still answers the
//! client's request as sent (`HEAD`, framing, keep-alive). Names are case-insensitive.
//! Allowed pseudo-headers: `:method`, `:scheme`, `:authority`, `:path`. Refused with a
//! configuration error: other pseudo-headers, connection-specific headers (`connection`,
//! `transfer-encoding`, `upgrade`, `te`, `keep-alive`, ...), `host` (override `:authority`),
//! `content-length`, control characters, and expressions other than `${params.NAME}`. That
//! one, only in a route's overrides, is what the matched condition's `:path` captured as
//! `{NAME}` (every condition of the route must capture it); as in Zilla a capture at the end
//! of the pattern takes the query string too (`/v1/{id}` on `/v1/7?a=b` gives `7?a=b`).
//! `:path` must start with `/`; `:method`, `:scheme` and `:authority` are literal.
//!
//! ## Streams
//!
//! - **Takes** network streams: tcp's (bytes, [`BeginEx::Tcp`](binding_api::ext::BeginEx::Tcp)) or a tls
//!   server's ([`BeginEx::Tls`](binding_api::ext::BeginEx::Tls): ALPN `h2` selects HTTP/2 at once, and `:scheme` is `https`). With
//!   both versions enabled a connection starting with the HTTP/2 preface is HTTP/2 (h2c by
//!   prior knowledge); otherwise it is HTTP/1.1, and `Upgrade: h2c` on a request without a
//!   body switches to HTTP/2 after `101` (requests with a body ignore the upgrade). Its
//!   `HTTP2-Settings` must be one base64url value of whole 6-byte settings: missing, repeated
//!   or malformed → `400` and close (RFC 7540 §3.2.1), never `101`.
//! - **Gives** one stream per request to the route's exit, beginning with
//!   [`HttpBeginEx`](binding_api::ext::http::HttpBeginEx): `:method`, `:scheme`,
//!   `:authority`, `:path`, then the request headers (lowercase; connection-specific ones
//!   such as `connection`, `transfer-encoding`, `upgrade` removed). The request body follows
//!   as data frames, no faster than the application grants credit; its end as end.
//! - The application's **reply** begin gives the response: `:status` and headers (a begin
//!   with no HTTP extension means `200` with no headers). Reply data is the body (chunked in
//!   HTTP/1.1 unless the reply names a `content-length`), reply end ends it, reply flush
//!   reaches the network at once (nothing is buffered), reply abort closes the HTTP/1.1
//!   connection or resets the HTTP/2 stream (RST_STREAM). Body bytes are never copied per
//!   connection: an HTTP/1.1 chunk of up to 4 KiB is framed once per worker for every
//!   connection sending the same payload (an event fanned out), a larger one goes out as its
//!   size, the payload itself and CRLF in one vectored write.
//! - A request the application refuses (reply abort before begin) gets `404`, as in Zilla,
//!   except reason `shutdown` → `503`, `unreachable`/`connection-lost` → `502`, `timeout`
//!   → `504`, `invalid` → `400`, and a guarded route's refusal: `unauthorized` → `401`,
//!   `forbidden` → `403`, with the `WWW-Authenticate` challenge the request's reset carries
//!   ([`ResetEx::Guard`](binding_api::ext::ResetEx::Guard)).
//!
//! ## Answers of the binding itself
//!
//! No route → `404`. A route condition matches everything but `:method` (and there is no
//! binding `exit`) → `405` with `Allow` listing the methods those conditions name.
//! Request line too long → `414`; header block too large or too many fields → `431`;
//! malformed request (bad syntax, missing `Host` in HTTP/1.1, both `Content-Length` and
//! `Transfer-Encoding`, ...) → `400`; unknown transfer coding → `501`; all of these close
//! the connection. A head begun and not complete within `request-header-timeout` → `408`
//! with `connection: close`, then close; a connection idle that long with no head begun is
//! closed without a response (a client may be sending a request on it at that moment).
//! CORS preflights (`OPTIONS` with `Access-Control-Request-Method`) are answered `204` under
//! `cross-origin`, `403` for an origin, method or header not allowed. HTTP/2 protocol errors
//! end in GOAWAY (the `h2` crate; it answers a header block HPACK cannot decode with
//! PROTOCOL_ERROR where RFC 9113 says COMPRESSION_ERROR, see docs/architecture.md).
//!
//! ## Metrics
//!
//! With `telemetry: {metrics: [http.*, stream.*]}` (and `attributes` such as `method:
//! ${http.request.method}`, `path: ${http.request.path}`), per worker: `http.request.size`,
//! `http.response.size` (body bytes), `http.duration` and `http.active.requests` for each
//! request handed to an application, recorded as its exchange ends; `stream.*.received` for
//! network connections taken, `stream.*.sent` for request streams opened (opens, closes,
//! active). Requests the binding answers itself are not counted. docs/metrics.md lists them.
//!
//! ## Client
//!
//! ```yaml
//! bindings:
//!   south_http_client:
//!     type: http
//!     kind: client
//!     options:
//!       versions: [http/1.1]        # default both; [h2] alone: HTTP/2 by prior knowledge
//!       overrides:                  # request headers set on every request sent upstream
//!         :authority: sse-server:8001
//!     exit: south_tcp_client        # a tcp client, or a tls client in front of one
//! ```
//!
//! Unknown options, `routes` and a `vault` are configuration errors; `exit` is required.
//!
//! - **Takes** request streams beginning with
//!   [`HttpBeginEx`](binding_api::ext::http::HttpBeginEx) (what an http server or an sse
//!   client gives): `:method`, `:scheme`, `:authority`, `:path` and fields; body as data, its
//!   end as end. `options.overrides` are applied first.
//! - **Gives** one network stream per request to the exit, beginning with
//!   [`BeginEx::Tcp`](binding_api::ext::BeginEx::Tcp) naming the exit's own destination (a
//!   tcp client's `options.host`/`port`; a tls client names its server by it). **One
//!   connection per request**, closed when the response ends: no pool, so connections are
//!   bounded by requests and nothing is shared between them.
//! - Version: over tls, what ALPN chose (`h2` → HTTP/2, anything else → HTTP/1.1; the tls
//!   client's `options.alpn` says what is offered); over plain tcp, HTTP/2 with prior
//!   knowledge when `versions` is `[h2]`, else HTTP/1.1. A version `versions` does not
//!   list is refused (`unreachable`).
//! - HTTP/1.1 ([`client::request`], [`client::response`], sans-IO): the request line and
//!   fields with `host` from `:authority` and `connection: close`; a body framed by its
//!   `content-length`, else chunked, except for GET, HEAD, DELETE, OPTIONS, TRACE and
//!   CONNECT, which have none. The response is decoded with `httparse` (head up to 16 KiB and
//!   100 fields; interim 1xx skipped; `content-length`, chunked, or until the connection
//!   closes; HEAD, 204 and 304 without a body) and streamed: body bytes are decoded only as
//!   the application grants credit, so at most 64 KiB wait per request. HTTP/2: the `h2`
//!   crate's client over the network stream, a 64 KiB stream window released as the
//!   application takes the bytes.
//! - The reply begins with `:status` and the response's fields (lowercase, hop-by-hop ones
//!   removed), then body as data and end as end. Trailers are dropped.
//! - **Failures**: the upstream unreachable (connect refused, no route) → the request is
//!   refused with reason `unreachable` (`timeout` when the connect timed out); the upstream
//!   closes, resets or sends a malformed response before its head → refused with
//!   `connection lost`. An http or sse server in front answers both with **502** (504 for a
//!   timeout). After the head, the same failures abort the reply. A request that cannot be
//!   written (no `:method` or `:path`, a field with CR/LF/NUL) → `invalid` (400).
//! - The application aborting its request, or resetting the reply, drops the connection
//!   (HTTP/2: RST_STREAM CANCEL). A response ending before the request body does resets the
//!   request.
//!
//! See `examples/http_echo.rs` for a runnable example.

pub mod authorization;
pub mod client;
pub mod config;
pub mod cors;
mod dispatch;
pub mod h1;
mod h2;
mod metrics;
mod net;
pub mod overrides;
pub mod request;
pub mod routes;
mod server;

use std::sync::Arc;

use binding_api::binding::Binding;
use binding_api::route::Route;
use zilla_config::factory::{BindingConfig, BindingFactory, ExitRule, Kind};
use zilla_config::{ConfigError, ConfigErrorKind};

pub use authorization::{Authorizer, CredentialPattern, CredentialSources};
pub use client::config::HttpClientOptions;
pub use client::{HttpClient, HttpClientFactory};
pub use config::{AccessControl, Condition, HttpOptions, Limits, Policy, Version};
pub use dispatch::refusal_status;
pub use overrides::Overrides;
pub use server::HttpServer;

/// Builds http bindings from configuration.
#[derive(Debug, Default)]
pub struct HttpFactory;

impl BindingFactory for HttpFactory {
    fn type_name(&self) -> &'static str {
        "http"
    }

    fn kinds(&self) -> &[Kind] {
        &[Kind::Server]
    }

    fn exit_rule(&self, _kind: Kind) -> ExitRule {
        ExitRule::Required
    }

    fn build(&self, config: &BindingConfig<'_>) -> Result<Arc<dyn Binding>, ConfigError> {
        if let Some(vault) = config.vault {
            return Err(config
                .error(format!("http takes no vault (found '{vault}')"))
                .with_help("remove 'vault'; TLS is a separate binding of type tls"));
        }
        let options =
            config::parse_options(config.options, &|name, mark| config.guard(name, mark))?;
        let mut routes = Vec::with_capacity(config.routes.len());
        for route in config.routes {
            let mut when = Vec::with_capacity(route.when.len());
            for node in &route.when {
                when.push(config::parse_condition(node)?);
            }
            let overrides = match &route.with {
                Some(with) => config::parse_with(with, &when)?,
                None => Overrides::default(),
            };
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
                with: overrides,
            });
        }
        let exit = match config.exit {
            Some(exit) => Some(config.exit_binding(exit, config.mark)?),
            None => None,
        };
        Ok(Arc::new(HttpServer::recording(
            config.name,
            options,
            routes,
            exit,
            config.metrics.clone(),
        )))
    }
}

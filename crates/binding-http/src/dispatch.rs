//! What both HTTP versions do with a request head and with the application's answer.

use std::rc::Rc;
use std::sync::Arc;
use std::time::SystemTime;

use binding_api::binding::{Binding, Worker};
use binding_api::ext::BeginEx;
use binding_api::ext::http::{Header, refusal_challenge};
use binding_api::frame::{Begin, Reason};
use binding_api::route::Routes;
use binding_api::shutdown::Retirement;
use binding_api::stream::{self, Initiator, Writer};

use crate::authorization::is_challenge_response;
use crate::config::{Condition, HttpOptions};
use zilla_metrics::{BindingMetrics, PerBinding};

use crate::cors::Cors;
use crate::metrics::{HttpMetrics, RequestMeter};
use crate::overrides::Overrides;
use crate::request::{HOP_BY_HOP, RequestHead};
use crate::routes::{self, Destination};

/// What a server binding shares with its connections.
pub struct Shared {
    /// The binding's name, for logs.
    pub name: String,
    /// Its options.
    pub options: HttpOptions,
    /// Its routes, each with its overrides (after `options.overrides`), then its exit.
    pub routes: Routes<Condition, Overrides>,
    /// What it records.
    pub metrics: BindingMetrics,
    /// Set when a configuration reload replaced the binding: its connections finish the
    /// requests they carry and close.
    pub retirement: Retirement,
}

/// What becomes of a request.
pub enum Dispatch {
    /// The binding answers it itself.
    Local {
        /// Status.
        status: u16,
        /// Headers.
        headers: Vec<Header>,
    },
    /// A stream to the application was opened.
    App {
        /// Our end of the request stream.
        stream: Initiator,
        /// CORS headers to add to the response.
        cors: Vec<Header>,
        /// Records the request when the exchange is over (when the binding records).
        meter: Option<Box<RequestMeter>>,
    },
}

impl Shared {
    /// Routes a request and, when it goes to the application, opens its stream. A challenge
    /// response, with `options.authorization`, is answered here: it re-authorizes the
    /// client's live streams and reaches no application.
    pub fn dispatch(&self, head: &RequestHead, worker: &Worker) -> Dispatch {
        let cors = match self.options.access_control.check(head) {
            Cors::Preflight(status, headers) => return Dispatch::Local { status, headers },
            Cors::Actual(headers) => headers,
            Cors::None => Vec::new(),
        };
        if let Some(authorizer) = &self.options.authorization
            && is_challenge_response(head)
        {
            let (status, mut headers) = authorizer.reauthorize(head, SystemTime::now());
            headers.extend(cors);
            return Dispatch::Local { status, headers };
        }
        let target = match routes::resolve(&self.routes, &self.options.overrides, head) {
            Destination::Exit(target) => target,
            Destination::NotFound => {
                return Dispatch::Local {
                    status: 404,
                    headers: cors,
                };
            }
            Destination::MethodNotAllowed(allow) => {
                let mut headers = cors;
                headers.push(Header::new("allow", allow.join(", ")));
                return Dispatch::Local {
                    status: 405,
                    headers,
                };
            }
        };
        let exit: &Arc<dyn Binding> = target.exit;
        let mut ex = head.begin_ex();
        match &self.options.authorization {
            Some(authorizer) => {
                let path = authorizer.loggable(&head.path);
                tracing::debug!(binding = %self.name, method = %head.method, %path, exit = exit.name(), "request");
                ex.authorization = authorizer.authorize(head, SystemTime::now());
            }
            None => {
                tracing::debug!(binding = %self.name, method = %head.method, path = %head.path, exit = exit.name(), "request");
            }
        }
        target
            .overrides
            .apply(&mut ex.headers, target.params.as_ref());
        let (initiator, acceptor) = stream::open(Begin {
            ext: BeginEx::Http(ex),
        });
        let meter = self
            .worker_metrics(worker)
            .map(|metrics| metrics.request(&head.method, &head.path));
        exit.new_stream(acceptor, worker);
        Dispatch::App {
            stream: initiator,
            cors,
            meter,
        }
    }

    /// The binding's handles on `worker`, when it records anything.
    pub fn worker_metrics(&self, worker: &Worker) -> Option<Rc<HttpMetrics>> {
        worker.local::<PerBinding<HttpMetrics>>().get(
            &self.metrics,
            worker.index(),
            HttpMetrics::on,
        )
    }

    /// The response head for the application's reply begin: `:status` (200 when the begin
    /// has no HTTP extension or no valid status) and headers, connection-specific ones
    /// dropped, CORS ones added.
    pub fn response_head(&self, begin: &Begin, cors: &[Header]) -> (u16, Vec<Header>) {
        let mut status = 200;
        let mut headers = Vec::new();
        if let BeginEx::Http(ex) = &begin.ext {
            if let Some(s) = ex.status().filter(|s| (200..=999).contains(s)) {
                status = s;
            }
            headers.extend(
                ex.headers
                    .iter()
                    .filter(|h| !h.name.starts_with(':') && !HOP_BY_HOP.contains(&h.name.as_str()))
                    .cloned(),
            );
        }
        if !cors.is_empty() {
            let expose = self.options.access_control.expose(&headers);
            headers.extend(cors.iter().cloned());
            headers.extend(expose);
        }
        (status, headers)
    }
}

/// The status answered when the application refuses a request before responding.
pub fn refusal_status(reason: &Reason) -> u16 {
    binding_api::ext::http::refusal_status(reason.kind)
}

/// The answer to a request the application refused (for `reason`) before responding: its
/// status, `cors` headers, `retry-after` with a 503, and `www-authenticate` when a guarded
/// route refused it (the reset of the request, written by `request`, says so).
pub fn refusal_head(reason: &Reason, request: &Writer, cors: &[Header]) -> (u16, Vec<Header>) {
    let status = refusal_status(reason);
    let mut headers = cors.to_vec();
    if status == 503 {
        headers.push(Header::new("retry-after", "1"));
    }
    if let Some(reset) = request.reset_reason()
        && let Some(challenge) = refusal_challenge(&reset.ext)
    {
        headers.push(challenge);
    }
    (status, headers)
}

//! `kind: client`: takes subscriptions ([`SseBeginEx`], as an sse server opens them), sends
//! `GET path` with `accept: text/event-stream` (and `last-event-id`) through its exit (an
//! http client), and turns the upstream's event stream back into the frames an sse server
//! consumes: events as data with [`SseDataEx`], id-only blocks as flushes with
//! [`SseFlushEx`](binding_api::ext::sse::SseFlushEx).

pub mod config;
pub mod parser;
mod relay;

use std::sync::Arc;

use binding_api::binding::{Binding, Worker};
use binding_api::ext::BeginEx;
use binding_api::ext::http::{Header, HttpBeginEx};
use binding_api::ext::sse::SseBeginEx;
use binding_api::frame::{Begin, End, ReasonKind, Reset};
use binding_api::stream::{self, Acceptor};
use zilla_config::ConfigError;
use zilla_config::factory::{BindingConfig, BindingFactory, ExitRule, Kind};

use self::config::SseClientOptions;
use self::relay::Relay;

/// An sse client binding.
pub struct SseClient {
    name: Arc<str>,
    options: SseClientOptions,
    exit: Arc<dyn Binding>,
}

impl SseClient {
    /// A client subscribing upstream through `exit` (an http client).
    pub fn new(name: &str, options: SseClientOptions, exit: Arc<dyn Binding>) -> Self {
        SseClient {
            name: name.into(),
            options,
            exit,
        }
    }
}

/// The request that subscribes upstream for `subscription`.
pub fn request(subscription: &SseBeginEx) -> HttpBeginEx {
    let scheme = if subscription.scheme.is_empty() {
        "http"
    } else {
        subscription.scheme.as_str()
    };
    let path = match &subscription.query {
        Some(query) => format!("{}?{query}", subscription.path),
        None => subscription.path.clone(),
    };
    let mut headers = vec![
        Header::new(":method", "GET"),
        Header::new(":scheme", scheme.to_owned()),
        Header::new(":authority", subscription.authority.clone()),
        Header::new(":path", path),
        Header::new("accept", "text/event-stream"),
    ];
    if let Some(id) = subscription
        .last_event_id
        .as_deref()
        .filter(|id| !id.is_empty())
    {
        headers.push(Header::new("last-event-id", id.to_owned()));
    }
    HttpBeginEx::new(headers)
}

impl Binding for SseClient {
    fn name(&self) -> &str {
        &self.name
    }

    fn new_stream(&self, stream: Acceptor, worker: &Worker) {
        let (begin, mut app) = stream.split();
        let BeginEx::Sse(subscription) = begin.ext else {
            app.refuse_in_place(Reset::new(
                ReasonKind::Refused,
                format!("sse client '{}' takes sse streams", self.name),
            ));
            return;
        };
        let (mut http, acceptor) = stream::open(Begin {
            ext: BeginEx::Http(request(&subscription)),
        });
        drop(subscription);
        self.exit.new_stream(acceptor, worker);
        // A GET has no body.
        let _ = http.output.end(End::default());
        worker.spawn(Relay::new(
            self.name.clone(),
            self.options.max_event_size as usize,
            app,
            http,
        ));
    }
}

/// Builds sse bindings of `kind: client` (the engine's registry merges it with
/// [`SseFactory`](crate::SseFactory)'s servers under the type `sse`).
#[derive(Debug, Default)]
pub struct SseClientFactory;

impl BindingFactory for SseClientFactory {
    fn type_name(&self) -> &'static str {
        "sse"
    }

    fn kinds(&self) -> &[Kind] {
        &[Kind::Client]
    }

    fn exit_rule(&self, _kind: Kind) -> ExitRule {
        ExitRule::Required
    }

    fn build(&self, config: &BindingConfig<'_>) -> Result<Arc<dyn Binding>, ConfigError> {
        if let Some(vault) = config.vault {
            return Err(config.error(format!("sse takes no vault (found '{vault}')")));
        }
        let options = config::parse_client_options(config.options)?;
        let exit = config.sole_exit("sse client", "an http client")?;
        Ok(Arc::new(SseClient::new(config.name, options, exit)))
    }
}

//! # binding-ticker
//!
//! `type: ticker`, `kind: server`: a **test and demo event source** to put behind an `sse`
//! server until a real one (sse-kafka) is there, and to test SSE clients end to end. Every
//! subscription gets numbered events at an interval; the event id is the number, so a client
//! that reconnects with `Last-Event-ID: 41` goes on at 42.
//!
//! ## Configuration
//!
//! ```yaml
//! bindings:
//!   ticker:
//!     type: ticker
//!     kind: server
//!     options:
//!       interval: 1000          # ms between events (default 1000); the first goes at once
//!       count: 10               # events in all, then the stream ends (default: no end)
//!       batch: 2                # events per subscription, then the stream ends and the
//!                               #   client reconnects with its last id (default: no limit)
//!       data: "tick {counter}"  # each event's data; {counter} is its number (the default)
//!       type: tick              # the event type (default: none, i.e. "message")
//! ```
//!
//! It takes no `routes` and no `exit`.
//!
//! ## Streams
//!
//! Takes SSE subscriptions ([`BeginEx::Sse`](binding_api::ext::BeginEx)); refuses anything
//! else. Begins its reply at once, then sends one data frame per event with
//! [`SseDataEx`](binding_api::ext::sse::SseDataEx) carrying the id, starting after the last
//! event id when it is a number (else at 1), waiting for credit before each. After event
//! number `count`, or after `batch` events on this subscription, it ends the reply (a client
//! that resumes after the last one gets an empty stream that ends). When the subscription's initial direction ends or aborts, it stops.
//!
//! See `examples/ticker.rs` for a runnable example.

pub mod schedule;
mod ticker;

use std::sync::Arc;
use std::time::Duration;

use binding_api::binding::{Binding, Worker};
use binding_api::stream::Acceptor;
use serde::Deserialize;
use zilla_config::factory::{BindingConfig, BindingFactory, ExitRule, Kind};
use zilla_config::{ConfigError, from_node_at};

pub use schedule::TickerOptions;

/// `options` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOptions {
    interval: Option<u64>,
    count: Option<u64>,
    batch: Option<u64>,
    data: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
}

/// Builds ticker bindings.
#[derive(Debug, Default)]
pub struct TickerFactory;

impl BindingFactory for TickerFactory {
    fn type_name(&self) -> &'static str {
        "ticker"
    }

    fn kinds(&self) -> &[Kind] {
        &[Kind::Server]
    }

    fn exit_rule(&self, _kind: Kind) -> ExitRule {
        ExitRule::Forbidden
    }

    fn build(&self, config: &BindingConfig<'_>) -> Result<Arc<dyn Binding>, ConfigError> {
        if let Some(route) = config.routes.first() {
            return Err(ConfigError::custom_at(route.mark, "ticker takes no routes")
                .with_help("remove 'routes'"));
        }
        let mut options = TickerOptions::default();
        if let Some(node) = config.options {
            let raw: RawOptions = from_node_at(node, "options")?;
            if let Some(ms) = raw.interval {
                options.interval = Duration::from_millis(ms);
            }
            options.count = raw.count;
            options.batch = raw.batch;
            if let Some(data) = raw.data {
                options.data = data;
            }
            options.event_type = raw.event_type;
        }
        Ok(Arc::new(Ticker::new(config.name, options)))
    }
}

/// A running ticker.
#[derive(Debug)]
pub struct Ticker {
    name: String,
    options: Arc<TickerOptions>,
}

impl Ticker {
    /// A ticker called `name`.
    pub fn new(name: impl Into<String>, options: TickerOptions) -> Self {
        Ticker {
            name: name.into(),
            options: Arc::new(options),
        }
    }
}

impl Binding for Ticker {
    fn name(&self) -> &str {
        &self.name
    }

    fn new_stream(&self, stream: Acceptor, worker: &Worker) {
        worker.spawn(ticker::serve(stream, self.options.clone()));
    }
}

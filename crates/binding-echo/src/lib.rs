//! # binding-echo
//!
//! `type: echo`, `kind: server`: every stream routed to it gets back, on its reply, exactly
//! the bytes it sent, in order, and ends when it ends. It exists to test the bindings in front
//! of it (`examples/tcp.echo` puts a tcp server in front of it).
//!
//! ## Configuration
//!
//! ```yaml
//! bindings:
//!   echo_server:
//!     type: echo
//!     kind: server
//! ```
//!
//! It takes no `options`, no `routes` and no `exit`.
//!
//! ## Streams
//!
//! Takes any stream. Answers with a reply begin, then echoes each data frame as the reply's
//! credit allows, granting credit back on the initial direction only as echoed bytes leave,
//! so a reader that stops reading stops the writer. End is echoed as end, abort as abort; a
//! reset of the reply resets the initial direction. Flushes are echoed.
//!
//! See `examples/echo.rs` for a runnable example.

use std::sync::Arc;

use binding_api::binding::{Binding, Worker};
use binding_api::frame::{Begin, Frame, Reset, Window};
use binding_api::stream::{Acceptor, WriterEvent};
use zilla_config::factory::{BindingConfig, BindingFactory, ExitRule, Kind};
use zilla_config::{ConfigError, ConfigErrorKind};

/// Credit the echo grants each stream: how many bytes may wait to be echoed.
pub const WINDOW: u32 = 64 * 1024;

/// Builds echo bindings.
#[derive(Debug, Default)]
pub struct EchoFactory;

impl BindingFactory for EchoFactory {
    fn type_name(&self) -> &'static str {
        "echo"
    }

    fn kinds(&self) -> &[Kind] {
        &[Kind::Server]
    }

    fn exit_rule(&self, _kind: Kind) -> ExitRule {
        ExitRule::Forbidden
    }

    fn build(&self, config: &BindingConfig<'_>) -> Result<Arc<dyn Binding>, ConfigError> {
        if let Some(options) = config.options {
            return Err(ConfigError::at(
                options.mark,
                ConfigErrorKind::Custom("echo takes no options".into()),
            )
            .with_help("remove 'options'"));
        }
        if let Some(route) = config.routes.first() {
            return Err(ConfigError::at(
                route.mark,
                ConfigErrorKind::Custom("echo takes no routes".into()),
            )
            .with_help("remove 'routes'"));
        }
        Ok(Arc::new(EchoServer {
            name: config.name.to_owned(),
        }))
    }
}

/// A running echo server.
#[derive(Debug)]
pub struct EchoServer {
    name: String,
}

impl EchoServer {
    /// An echo server called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        EchoServer { name: name.into() }
    }
}

impl Binding for EchoServer {
    fn name(&self) -> &str {
        &self.name
    }

    fn new_stream(&self, stream: Acceptor, worker: &Worker) {
        worker.spawn(echo(stream));
    }
}

/// Echoes one stream until it ends.
pub async fn echo(stream: Acceptor) {
    let Acceptor {
        input: mut initial,
        output: mut reply,
        ..
    } = stream;
    if reply.begin(Begin::default()).is_err()
        || initial
            .window(Window {
                credit: WINDOW,
                padding: 0,
            })
            .is_err()
    {
        return;
    }
    loop {
        let Some(frame) = initial.frame().await else {
            return;
        };
        let sent = match frame {
            Frame::Begin(_) => Ok(()),
            Frame::Data(data) => match reply.ready(data.payload.len()).await {
                Ok(()) => reply.data(data),
                Err(err) => Err(err),
            },
            Frame::Flush(flush) => match reply.ready(0).await {
                Ok(()) => reply.flush(flush),
                Err(err) => Err(err),
            },
            Frame::End(end) => {
                let _ = reply.end(end);
                return;
            }
            Frame::Abort(abort) => {
                let _ = reply.abort(abort.reason);
                return;
            }
        };
        if sent.is_err() {
            let reason = match reply.event().await {
                WriterEvent::Reset(reset) => reset.reason,
                _ => binding_api::frame::Reason::new(
                    binding_api::frame::ReasonKind::Dropped,
                    "reply closed",
                ),
            };
            tracing::debug!(%reason, "echo reply reset");
            initial.reset(Reset {
                reason,
                ext: Default::default(),
            });
            return;
        }
        initial.replenish();
    }
}

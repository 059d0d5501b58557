//! # binding-tcp
//!
//! Zilla's `tcp` binding: `kind: server` turns accepted connections into streams,
//! `kind: client` turns streams into outgoing connections.
//!
//! ## Configuration
//!
//! ```yaml
//! bindings:
//!   north_tcp_server:
//!     type: tcp
//!     kind: server
//!     options:
//!       host: 0.0.0.0          # default 0.0.0.0
//!       port: [7114, "8000-8010"]  # a number, a range "a-b", or a list of those
//!     routes:
//!       - when:
//!           - port: 7114       # local port
//!             cidr: 10.0.0.0/8 # peer address
//!         exit: north_http_server
//!     exit: fallback           # when no route matches (else the connection is closed)
//!   south_tcp_client:
//!     type: tcp
//!     kind: client             # connects to the address in the stream's begin
//! ```
//!
//! A server listens with `SO_REUSEADDR` on every port, sets `TCP_NODELAY` on every
//! connection, and needs an `exit` or routes with exits. `when` conditions are OR-ed; the
//! fields of one (`authority` — the local address the connection was made to, `cidr` —
//! the peer, `port` — the local port) are AND-ed. A client takes no `exit`; its optional
//! `options.host`/`port` give a destination for streams that name none, and its routes' `when`
//! conditions (`authority`, `cidr`, `port` of the destination) limit where it may connect.
//!
//! ## Streams
//!
//! - Server: opens one stream per connection with [`BeginEx::Tcp`](binding_api::ext::BeginEx)
//!   (local and remote addresses). Bytes read become data frames, no larger than the credit
//!   the application granted: **with no credit the socket is not read**, so a slow application
//!   pushes back on the peer through TCP. The reply's data frames are written to the socket
//!   and their credit returned as they leave. Peer EOF → end; reply end → write shutdown;
//!   errors and aborts → abort/reset and an RST. On engine shutdown the server stops
//!   accepting and ends every connection's stream, then closes when the reply ends.
//! - Client: accepts a stream whose begin names the destination, else connects to
//!   `options.host` and `port` (its `Binding::default_destination`, where a kafka client
//!   without `servers` bootstraps); on a failed connect the
//!   stream is reset with the reason (`connect to 127.0.0.1:9: Connection refused`). The
//!   [`Resolve`](zilla_config::resolve::Resolve) entries the factory is given (the engine's
//!   `--resolve HOST:PORT:ADDRESS[:PORT]`, [`TcpClient::resolving`]) send connections for a
//!   `host:port` to a fixed address instead of looking the host up.
//!
//! ## Metrics
//!
//! With `telemetry: {metrics: [stream.*]}`, a server records, per worker
//! ([`TcpServer::with_metrics`]): `stream.opens.received` (connections accepted, routed or
//! not), `stream.closes.received` (connections whose task ended),
//! `stream.active.received` (accepted and not yet closed), `stream.data.received` and
//! `stream.data.sent` (bytes read and written), `stream.errors.received` (connections the
//! network failed) and `stream.errors.sent` (connections closed abruptly because the
//! application aborted or refused them).
//!
//! See `examples/echo_server.rs` for a runnable example.

mod client;
mod config;
mod listeners;
mod metrics;
mod pump;
mod server;

use std::sync::Arc;

use binding_api::binding::Binding;
use binding_api::route::Route;
use zilla_config::factory::{BindingConfig, BindingFactory, ExitRule, Kind};
use zilla_config::{ConfigError, ConfigErrorKind};

pub use client::{CONNECT_TIMEOUT, TcpClient};
pub use config::{Condition, TcpOptions};
pub use listeners::Listeners;
pub use server::TcpServer;

/// Builds tcp bindings from configuration. The servers one factory builds share listening
/// sockets by address, so a server a configuration reload builds to replace another on the
/// same address takes over its socket.
#[derive(Debug, Default)]
pub struct TcpFactory {
    listeners: Arc<Listeners>,
}

impl BindingFactory for TcpFactory {
    fn type_name(&self) -> &'static str {
        "tcp"
    }

    fn kinds(&self) -> &[Kind] {
        &[Kind::Server, Kind::Client]
    }

    fn exit_rule(&self, kind: Kind) -> ExitRule {
        match kind {
            Kind::Server => ExitRule::Required,
            _ => ExitRule::Forbidden,
        }
    }

    fn build(&self, config: &BindingConfig<'_>) -> Result<Arc<dyn Binding>, ConfigError> {
        if let Some(vault) = config.vault {
            return Err(config
                .error(format!("tcp takes no vault (found '{vault}')"))
                .with_help("remove 'vault'; TLS is a separate binding of type tls"));
        }
        let options = config::parse_options(config.options)?;
        let mut conditions = Vec::with_capacity(config.routes.len());
        for route in config.routes {
            if let Some(with) = &route.with {
                return Err(ConfigError::at(
                    with.mark,
                    ConfigErrorKind::Custom("tcp routes take no 'with'".into()),
                )
                .with_help("remove 'with'"));
            }
            let mut when = Vec::with_capacity(route.when.len());
            for node in &route.when {
                when.push(config::parse_condition(node)?);
            }
            conditions.push(when);
        }
        match config.kind {
            Kind::Server => {
                if options.ports.is_empty() {
                    return Err(config
                        .error("a tcp server needs options.port")
                        .with_help("add options: {port: 7114} (a number, \"a-b\" or a list)"));
                }
                let mut routes = Vec::with_capacity(config.routes.len());
                for (route, when) in config.routes.iter().zip(conditions) {
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
                        with: (),
                    });
                }
                let exit = match config.exit {
                    Some(exit) => Some(config.exit_binding(exit, config.mark)?),
                    None => None,
                };
                let server = TcpServer::new(config.name, options, routes, exit)
                    .with_metrics(config.metrics.clone())
                    .with_listeners(self.listeners.clone());
                Ok(Arc::new(server))
            }
            _ => {
                let allowed = conditions.into_iter().flatten().collect();
                let client = TcpClient::new(config.name, options, allowed)
                    .resolving(config.run.resolve.iter().cloned().collect());
                Ok(Arc::new(client))
            }
        }
    }
}

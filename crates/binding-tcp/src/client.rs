//! `kind: client`: connects where the begin extension says, then carries the stream.

use std::net::SocketAddr;
use std::time::Duration;

use binding_api::binding::{Binding, Worker};
use binding_api::ext::BeginEx;
use binding_api::ext::tcp::{Endpoint, TcpBeginEx};
use binding_api::frame::{Begin, ReasonKind, Reset};
use binding_api::stream::Acceptor;
use tokio::net::TcpStream;

use crate::config::{Condition, TcpOptions};
use crate::{pump, resolve};

/// How long a connect may take before the stream is reset.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A tcp client binding.
pub struct TcpClient {
    name: String,
    options: TcpOptions,
    allowed: Vec<Condition>,
}

impl TcpClient {
    /// A client whose default destination comes from `options` and whose destinations are
    /// limited to those matching one of `allowed` (when not empty).
    pub fn new(name: impl Into<String>, options: TcpOptions, allowed: Vec<Condition>) -> Self {
        TcpClient {
            name: name.into(),
            options,
            allowed,
        }
    }

    fn destination(&self, begin: &Begin) -> Option<Endpoint> {
        match &begin.ext {
            BeginEx::Tcp(TcpBeginEx { remote, .. }) => Some(remote.clone()),
            _ => self.default_destination(),
        }
    }

    fn allows(&self, endpoint: &Endpoint) -> bool {
        if self.allowed.is_empty() {
            return true;
        }
        let (authority, addr, port) = match endpoint {
            Endpoint::Addr(addr) => (None, Some(addr.ip()), addr.port()),
            Endpoint::Host { host, port } => (Some(host.as_str()), host.parse().ok(), *port),
        };
        self.allowed
            .iter()
            .any(|c| c.matches(authority, addr, port))
    }
}

impl Binding for TcpClient {
    fn name(&self) -> &str {
        &self.name
    }

    fn new_stream(&self, stream: Acceptor, worker: &Worker) {
        let Some(endpoint) = self.destination(&stream.begin) else {
            stream.refuse(Reset::new(
                ReasonKind::Refused,
                format!(
                    "tcp client '{}': the stream names no destination and options give none",
                    self.name
                ),
            ));
            return;
        };
        if !self.allows(&endpoint) {
            stream.refuse(Reset::new(
                ReasonKind::NoRoute,
                format!("tcp client '{}': no route allows {endpoint}", self.name),
            ));
            return;
        }
        worker.spawn(connect(
            self.name.clone(),
            endpoint,
            stream,
            worker.shutdown().clone(),
        ));
    }

    fn default_destination(&self) -> Option<Endpoint> {
        let host = self.options.host.clone()?;
        let port = self.options.ports.first()?.first;
        Some(Endpoint::Host { host, port })
    }
}

async fn connect(
    name: String,
    endpoint: Endpoint,
    mut stream: Acceptor,
    stop: tokio_util::sync::CancellationToken,
) {
    // An address fixed by --resolve, else the endpoint's own, else a name to look up.
    let addr = resolve::resolve(&endpoint).or(match &endpoint {
        Endpoint::Addr(addr) => Some(*addr),
        Endpoint::Host { .. } => None,
    });
    let attempt = async {
        match (addr, &endpoint) {
            (Some(addr), _) => TcpStream::connect(addr).await,
            (None, Endpoint::Host { host, port }) => {
                TcpStream::connect((host.as_str(), *port)).await
            }
            (None, Endpoint::Addr(addr)) => TcpStream::connect(*addr).await,
        }
    };
    let connected = tokio::select! {
        biased;
        _ = stop.cancelled() => {
            stream.refuse(Reset::new(ReasonKind::Shutdown, "shutting down"));
            return;
        }
        result = tokio::time::timeout(CONNECT_TIMEOUT, attempt) => result,
    };
    let socket = match connected {
        Ok(Ok(socket)) => socket,
        Ok(Err(err)) => {
            tracing::info!(
                event = "connect_failed",
                binding = %name,
                %endpoint,
                %err,
                "connect failed"
            );
            stream.refuse(Reset::new(
                ReasonKind::Unreachable,
                format!("connect to {endpoint} failed: {err}"),
            ));
            return;
        }
        Err(_) => {
            stream.refuse(Reset::new(
                ReasonKind::Timeout,
                format!("connect to {endpoint} timed out after {CONNECT_TIMEOUT:?}"),
            ));
            return;
        }
    };
    let _ = socket.set_nodelay(true);
    let local: Option<SocketAddr> = socket.local_addr().ok();
    let remote = socket.peer_addr().map(Endpoint::Addr).unwrap_or(endpoint);
    let begin = Begin {
        ext: BeginEx::Tcp(TcpBeginEx { local, remote }),
    };
    if stream.reply.begin(begin).is_err() {
        return;
    }
    pump::run(socket, stream.reply, stream.initial, true, stop).await;
}

//! `kind: client`: connects where the begin extension says, then carries the stream.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use binding_api::binding::{Binding, Worker};
use binding_api::ext::BeginEx;
use binding_api::ext::tcp::{Endpoint, TcpBeginEx};
use binding_api::frame::{Begin, ReasonKind, Reset};
use binding_api::shutdown::ShutdownWatch;
use binding_api::stream::Acceptor;
use tokio::net::TcpStream;
use zilla_config::resolve::Resolve;

use crate::config::{Condition, TcpOptions};
use crate::pump;

/// How long a connect may take before the stream is reset.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A tcp client binding.
pub struct TcpClient {
    name: String,
    options: TcpOptions,
    allowed: Vec<Condition>,
    resolve: Arc<[Resolve]>,
}

impl TcpClient {
    /// A client whose default destination comes from `options` and whose destinations are
    /// limited to those matching one of `allowed` (when not empty).
    pub fn new(name: impl Into<String>, options: TcpOptions, allowed: Vec<Condition>) -> Self {
        TcpClient {
            name: name.into(),
            options,
            allowed,
            resolve: Arc::new([]),
        }
    }

    /// The same client, connecting to the fixed address of the first of `entries` that names
    /// a destination (the engine's `--resolve`) rather than looking its host up.
    pub fn resolving(mut self, entries: Arc<[Resolve]>) -> Self {
        self.resolve = entries;
        self
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
        // An address fixed by --resolve, else the endpoint's own, else a name to look up.
        let addr = match &endpoint {
            Endpoint::Addr(addr) => Some(*addr),
            Endpoint::Host { .. } => self.resolve.iter().find_map(|e| e.apply(&endpoint)),
        };
        worker.spawn(connect(
            self.name.clone(),
            endpoint,
            addr,
            stream,
            worker.shutdown_watch(),
        ));
    }

    fn default_destination(&self) -> Option<Endpoint> {
        let host = self.options.host.clone()?;
        let port = self.options.ports.first()?.first;
        Some(Endpoint::Host { host, port })
    }
}

/// Connects to `addr` when known, else looks `endpoint`'s host up.
async fn connect(
    name: String,
    endpoint: Endpoint,
    addr: Option<SocketAddr>,
    mut stream: Acceptor,
    mut stop: ShutdownWatch,
) {
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
        () = std::future::poll_fn(|cx| stop.poll(cx)) => {
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
    if stream.output.begin(begin).is_err() {
        return;
    }
    pump::run(socket, stream.output, stream.input, true, stop).await;
}

#[cfg(test)]
mod tests {
    use binding_api::frame::Frame;
    use binding_api::stream;
    use tokio_util::sync::CancellationToken;

    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_resolved_host_connects_to_its_fixed_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // A name that does not resolve: only the entry can make the connect succeed.
        let entry = Resolve::new("kafka.invalid", 29092, addr);
        let client =
            TcpClient::new("tcp", TcpOptions::default(), vec![]).resolving(Arc::new([entry]));
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let worker = Worker::new(0, 1, CancellationToken::new());
                let (mut initiator, acceptor) = stream::open(Begin {
                    ext: BeginEx::Tcp(TcpBeginEx {
                        local: None,
                        remote: Endpoint::Host {
                            host: "kafka.invalid".into(),
                            port: 29092,
                        },
                    }),
                });
                client.new_stream(acceptor, &worker);
                let (accepted, reply) = tokio::join!(listener.accept(), initiator.input.frame());
                assert!(accepted.is_ok());
                assert!(matches!(reply, Some(Frame::Begin(_))), "{reply:?}");
            })
            .await;
    }
}

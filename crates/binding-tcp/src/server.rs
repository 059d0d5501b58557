//! `kind: server`: listens, accepts, and opens a stream per connection.

use std::net::{SocketAddr, TcpListener as StdListener, ToSocketAddrs};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use binding_api::binding::{Binding, StartError, Worker};
use binding_api::ext::BeginEx;
use binding_api::ext::tcp::{Endpoint, TcpBeginEx};
use binding_api::frame::{Begin, ReasonKind, Reset};
use binding_api::route::{Route, Routes};
use binding_api::stream::{self, Acceptor};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use zilla_metrics::BindingMetrics;

use crate::config::{Condition, TcpOptions};
use crate::listeners::Listeners;
use crate::metrics::Connections;
use crate::pump;

/// A tcp server binding.
pub struct TcpServer {
    name: String,
    options: TcpOptions,
    routes: Arc<Routes<Condition>>,
    listeners: Mutex<Vec<Arc<StdListener>>>,
    /// Where it gets its listening sockets.
    shared: Arc<Listeners>,
    /// Cancelled when a configuration reload retires the server: its accept loops end.
    retired: CancellationToken,
    metrics: BindingMetrics,
}

impl TcpServer {
    /// A server that listens as `options` say and routes connections by `routes`, then to
    /// `exit`.
    pub fn new(
        name: impl Into<String>,
        options: TcpOptions,
        routes: Vec<Route<Condition>>,
        exit: Option<Arc<dyn Binding>>,
    ) -> Self {
        TcpServer {
            name: name.into(),
            options,
            routes: Arc::new(Routes::new(routes, exit)),
            listeners: Mutex::new(Vec::new()),
            shared: Arc::default(),
            retired: CancellationToken::new(),
            metrics: BindingMetrics::default(),
        }
    }

    /// The server, recording its connections in `metrics`.
    pub fn with_metrics(mut self, metrics: BindingMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The server, listening with sockets it shares with the other servers of `listeners`
    /// ([`Listeners`]): one that replaces another on the same address takes its socket.
    pub fn with_listeners(mut self, listeners: Arc<Listeners>) -> Self {
        self.shared = listeners;
        self
    }

    /// The addresses actually bound (after [`Binding::prepare`]), useful with port 0.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.lock_listeners()
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    fn lock_listeners(&self) -> std::sync::MutexGuard<'_, Vec<Arc<StdListener>>> {
        self.listeners.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn addresses(&self) -> Result<Vec<SocketAddr>, StartError> {
        let host = self.options.host.as_deref().unwrap_or("0.0.0.0");
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let mut addrs = Vec::new();
        for port in self.options.ports.iter().flat_map(|r| r.ports()) {
            let resolved = (host, port).to_socket_addrs().map_err(|err| StartError {
                binding: self.name.clone(),
                message: format!("cannot resolve host '{host}': {err}"),
            })?;
            addrs.extend(resolved.take(1));
        }
        Ok(addrs)
    }
}

impl Binding for TcpServer {
    fn name(&self) -> &str {
        &self.name
    }

    fn prepare(&self) -> Result<(), StartError> {
        let mut listeners = Vec::new();
        for addr in self.addresses()? {
            let listener = self.shared.listen(addr).map_err(|err| StartError {
                binding: self.name.clone(),
                message: format!(
                    "cannot listen on {addr}: {err}{}",
                    if err.kind() == std::io::ErrorKind::AddrInUse {
                        " (another process holds the port: stop it or choose another port)"
                    } else {
                        ""
                    }
                ),
            })?;
            tracing::info!(binding = %self.name, %addr, "listening");
            listeners.push(listener);
        }
        *self.lock_listeners() = listeners;
        Ok(())
    }

    fn retire(&self) {
        self.retired.cancel();
        self.lock_listeners().clear();
    }

    fn start(&self, worker: &Worker) {
        let connections = Connections::on(worker.index(), &self.metrics);
        for listener in self.lock_listeners().iter() {
            let listener = match listener.try_clone().and_then(TcpListener::from_std) {
                Ok(listener) => listener,
                Err(err) => {
                    tracing::error!(binding = %self.name, %err, "cannot accept on this worker");
                    continue;
                }
            };
            let server = ServerHandle {
                name: self.name.clone(),
                retired: self.retired.clone(),
                routes: self.routes.clone(),
                connections: connections.clone(),
            };
            worker.spawn_task(accept_loop(server, listener, worker.clone()));
        }
    }

    fn new_stream(&self, stream: Acceptor, _worker: &Worker) {
        stream.refuse(Reset::new(
            ReasonKind::Refused,
            format!("tcp server '{}' does not accept streams", self.name),
        ));
    }
}

/// What an accept loop needs from its server.
struct ServerHandle {
    name: String,
    retired: CancellationToken,
    routes: Arc<Routes<Condition>>,
    connections: Option<Rc<Connections>>,
}

async fn accept_loop(server: ServerHandle, listener: TcpListener, worker: Worker) {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = worker.shutdown().cancelled() => return,
            _ = server.retired.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((socket, remote)) => serve(&server, socket, remote, &worker),
            Err(err) => {
                // Out of file descriptors and the like: say so, pause, and go on.
                tracing::warn!(binding = %server.name, %err, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

fn serve(server: &ServerHandle, socket: TcpStream, remote: SocketAddr, worker: &Worker) {
    let open = server.connections.as_ref().map(Connections::opened);
    let Ok(local) = socket.local_addr() else {
        return;
    };
    let _ = socket.set_nodelay(true);
    let authority = local.ip().to_string();
    let Some(exit) = server
        .routes
        .resolve(|c| c.matches(Some(&authority), Some(remote.ip()), local.port()))
        .map(|resolved| resolved.exit())
    else {
        tracing::debug!(binding = %server.name, %remote, %local, "no route: closing");
        return;
    };
    let begin = Begin {
        ext: BeginEx::Tcp(TcpBeginEx {
            local: Some(local),
            remote: Endpoint::Addr(remote),
        }),
    };
    let (initiator, acceptor) = stream::open(begin);
    let stop = worker.shutdown_watch();
    // One task for the connection and every stream it leads to.
    worker.spawn_connection(|worker| {
        exit.new_stream(acceptor, worker);
        pump::run(socket, initiator.output, initiator.input, false, stop).counted(open)
    });
}

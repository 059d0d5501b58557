//! The `prometheus` exporter: the metrics in the text format, and the health check, served
//! over HTTP/1.1 (hyper) by a thread of its own, so that a scrape never runs on a worker.
//!
//! The ports are bound before the workers start (a port in use stops start-up, as a tcp
//! server's does); the health check answers 503 until the [`Readiness`] is ready: the engine
//! calls [`Readiness::set_started`] once every binding has started on every worker, and each
//! gate a binding declared is open (a kafka client's first metadata from its cluster); then
//! 200. A 503 says what is awaited (`starting`, or `waiting for: ...`). At most
//! [`MAX_CONNECTIONS`] connections are served at once; a request head must arrive within
//! [`HEAD_TIMEOUT`].

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
pub use zilla_metrics::Readiness;
use zilla_metrics::{Registry, exposition};

use crate::metrics_config::PrometheusEndpoint;

/// Connections served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 64;

/// How long a connection may take to send a request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the exporter cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    /// A port cannot be bound.
    #[error("prometheus exporter '{exporter}': cannot listen on port {port}: {source}{hint}")]
    Listen {
        /// The exporter.
        exporter: String,
        /// Its port.
        port: u16,
        /// Why.
        source: std::io::Error,
        /// The fix, when known.
        hint: &'static str,
    },
    /// Its thread or runtime cannot be made.
    #[error("prometheus exporter: cannot start: {0}")]
    Start(std::io::Error),
}

/// What one port serves.
#[derive(Debug, Default)]
struct Paths {
    metrics: Vec<String>,
    health: Vec<String>,
}

/// The exporter's ports, bound.
#[derive(Debug)]
pub struct Exporter {
    ports: Vec<(StdListener, Paths)>,
}

/// The exporter's thread; dropping it stops the thread.
#[derive(Debug)]
pub struct Serving {
    stop: CancellationToken,
    thread: Option<thread::JoinHandle<()>>,
}

impl Exporter {
    /// Binds every endpoint's port on all interfaces; `None` when there are no endpoints.
    pub fn bind(endpoints: &[PrometheusEndpoint]) -> Result<Option<Exporter>, ExporterError> {
        let mut by_port: BTreeMap<u16, (String, Paths)> = BTreeMap::new();
        for endpoint in endpoints {
            let (_, paths) = by_port
                .entry(endpoint.port)
                .or_insert_with(|| (endpoint.exporter.clone(), Paths::default()));
            paths.metrics.push(endpoint.path.clone());
            paths.health.extend(endpoint.health.clone());
        }
        let mut ports = Vec::with_capacity(by_port.len());
        for (port, (exporter, paths)) in by_port {
            let listener = StdListener::bind(SocketAddr::from(([0, 0, 0, 0], port)))
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .map_err(|source| ExporterError::Listen {
                    exporter,
                    port,
                    hint: match source.kind() {
                        std::io::ErrorKind::AddrInUse => {
                            " (another process or binding holds the port: choose another)"
                        }
                        _ => "",
                    },
                    source,
                })?;
            ports.push((listener, paths));
        }
        Ok((!ports.is_empty()).then_some(Exporter { ports }))
    }

    /// The addresses bound.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.ports
            .iter()
            .filter_map(|(l, _)| l.local_addr().ok())
            .collect()
    }

    /// Serves `registry` and `readiness` on a thread of its own until the [`Serving`] drops.
    pub fn serve(self, registry: Registry, readiness: Readiness) -> Result<Serving, ExporterError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ExporterError::Start)?;
        let stop = CancellationToken::new();
        let token = stop.clone();
        let thread = thread::Builder::new()
            .name("zilla-metrics".into())
            .spawn(move || {
                runtime.block_on(serve_ports(self.ports, registry, readiness, token));
            })
            .map_err(ExporterError::Start)?;
        Ok(Serving {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve_ports(
    ports: Vec<(StdListener, Paths)>,
    registry: Registry,
    readiness: Readiness,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut loops = tokio::task::JoinSet::new();
    for (listener, paths) in ports {
        let listener = match TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(err) => {
                tracing::error!(%err, "prometheus exporter cannot accept");
                continue;
            }
        };
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(exporter = "prometheus", %addr, "listening");
        }
        let site = Arc::new(Site {
            paths,
            registry: registry.clone(),
            readiness: readiness.clone(),
        });
        loops.spawn(accept(listener, site, slots.clone(), stop.clone()));
    }
    stop.cancelled().await;
    loops.shutdown().await;
}

/// What a port answers with.
struct Site {
    paths: Paths,
    registry: Registry,
    readiness: Readiness,
}

async fn accept(
    listener: TcpListener,
    site: Arc<Site>,
    slots: Arc<Semaphore>,
    stop: CancellationToken,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((socket, _)) = accepted else {
            // Out of descriptors and the like: the slot is given back; try again shortly.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let site = site.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| {
                let site = site.clone();
                async move { Ok::<_, Infallible>(site.answer(&request)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .serve_connection(TokioIo::new(socket), service)
                .await;
            drop(slot);
        });
        // Forget the connections that have ended.
        while connections.try_join_next().is_some() {}
    }
}

impl Site {
    fn answer(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path();
        let known = self
            .paths
            .metrics
            .iter()
            .chain(&self.paths.health)
            .any(|p| p == path);
        if !known {
            return text(StatusCode::NOT_FOUND, "not found\n");
        }
        if !matches!(*request.method(), Method::GET | Method::HEAD) {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
            response
                .headers_mut()
                .insert(ALLOW, hyper::header::HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        if self.paths.metrics.iter().any(|p| p == path) {
            let body = exposition::write(&self.registry.snapshot());
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response.headers_mut().insert(
                CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(exposition::CONTENT_TYPE),
            );
            return response;
        }
        if self.readiness.is_ready() {
            return text(StatusCode::OK, "ready\n");
        }
        let waiting = self.readiness.waiting_for();
        if !self.readiness.is_started() || waiting.is_empty() {
            return text(StatusCode::SERVICE_UNAVAILABLE, "starting\n");
        }
        let body = format!("waiting for: {}\n", waiting.join(", "));
        text(StatusCode::SERVICE_UNAVAILABLE, body)
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use zilla_metrics::Selection;
    use zilla_metrics::catalog::STREAM_OPENS_RECEIVED;

    use super::*;

    /// The status line and body of `METHOD path` on `port`.
    fn request(port: u16, method: &str, path: &str) -> (String, String) {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        let (head, body) = response.split_once("\r\n\r\n").expect("a response");
        (
            head.lines().next().unwrap_or_default().to_owned(),
            body.to_owned(),
        )
    }

    #[test]
    fn serves_metrics_and_health_on_its_own_thread() {
        let registry = Registry::new("ns", &[]).expect("registry");
        let selection = Selection {
            metrics: vec![&STREAM_OPENS_RECEIVED],
            attributes: Vec::new(),
        };
        let metrics = registry.binding("tcp", selection).expect("binding");
        metrics.counter(0, &STREAM_OPENS_RECEIVED).add(7);
        let endpoint = PrometheusEndpoint {
            exporter: "prom".into(),
            port: 0,
            path: "/metrics".into(),
            health: Some("/health".into()),
        };
        let exporter = Exporter::bind(&[endpoint])
            .expect("bind")
            .expect("an endpoint");
        let port = exporter.local_addrs()[0].port();
        let readiness = registry.readiness();
        let gate = metrics.ready_gate("kafka metadata");
        let serving = exporter.serve(registry, readiness.clone()).expect("serve");

        let (status, body) = request(port, "GET", "/health");
        assert_eq!(
            (status.as_str(), body.as_str()),
            ("HTTP/1.1 503 Service Unavailable", "starting\n")
        );
        readiness.set_started();
        assert_eq!(
            request(port, "GET", "/health"),
            (
                "HTTP/1.1 503 Service Unavailable".to_owned(),
                "waiting for: kafka metadata\n".to_owned()
            )
        );
        gate.open();
        assert_eq!(request(port, "GET", "/health").0, "HTTP/1.1 200 OK");
        let (status, body) = request(port, "GET", "/metrics");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(
            body.contains("stream_opens_received_total{namespace=\"ns\",binding=\"tcp\"} 7\n"),
            "{body}"
        );
        assert_eq!(request(port, "GET", "/other").0, "HTTP/1.1 404 Not Found");
        assert_eq!(
            request(port, "POST", "/metrics").0,
            "HTTP/1.1 405 Method Not Allowed"
        );
        drop(serving);
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "stopped with its owner"
        );
    }
}

//! `sse-baseline`: a plain Server-Sent Events broadcaster built on hyper 1 and tokio, with no
//! Kafka. It is the near-limit reference the benchmarks compare zilla-rs with: whatever it does,
//! it does the cheapest honest way hyper and tokio allow.
//!
//! Routes (HTTP/1.1, and h2c with prior knowledge, on one port):
//! - `GET /events/{key}`: the events published to `key`, as `text/event-stream`;
//!   `GET /events`: the events of every key. Each event carries `id: <seq>` (a global sequence);
//!   a `Last-Event-ID` header replays the newer events still in the bounded history first.
//! - `POST /publish?key=K`: publishes the body as one event to `K`; answers its `seq`.
//! - `POST /publish-stream`: a long-lived (chunked) body of `key\tdata\n` lines, each published
//!   as it arrives; answers the count at the end.
//!
//! Each key (and the all-stream) is a bounded `tokio::sync::broadcast` channel: a subscriber that
//! falls more than its capacity behind is disconnected.
//!
//! The binary: `sse-baseline --listen 127.0.0.1:7200 --workers 2` (the first line on stdout is
//! `listening on ADDR`, useful with port 0). In a program:
//!
//! ```
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use tokio::net::{TcpListener, TcpStream};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let addr = listener.local_addr().unwrap();
//! let limits = sse_baseline::HubLimits { channel_capacity: 64, key_capacity: 64, history: 64 };
//! let baseline = sse_baseline::Baseline::new(limits);
//! tokio::spawn(async move { baseline.serve(listener, None).await });
//!
//! let mut sub = TcpStream::connect(addr).await.unwrap();
//! sub.write_all(b"GET /events/k1 HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
//! let mut head = [0u8; 512];
//! let n = sub.read(&mut head).await.unwrap(); // the response head comes first
//! assert!(head[..n].starts_with(b"HTTP/1.1 200"));
//!
//! let mut publisher = TcpStream::connect(addr).await.unwrap();
//! let publish = b"POST /publish?key=k1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
//! publisher.write_all(publish).await.unwrap();
//!
//! let mut event = Vec::new();
//! while !event.windows(2).any(|w| w == b"\n\n") {
//!     let mut buf = [0u8; 512];
//!     let n = sub.read(&mut buf).await.unwrap();
//!     event.extend_from_slice(&buf[..n]);
//! }
//! let text = String::from_utf8_lossy(&event);
//! assert!(text.contains("id: 1\ndata: hello\n\n"), "{text}");
//! # });
//! ```

mod http;
mod hub;

use std::path::Path;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::hub::Hub;
pub use crate::hub::HubLimits;

/// The TLS certificate or key could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("TLS {what}: {message}")]
pub struct TlsError {
    what: &'static str,
    message: String,
}

/// A TLS server configuration from a PEM certificate chain and a PEM private key, offering
/// ALPN `h2` and `http/1.1`.
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let error = |what| {
        move |e: &dyn std::fmt::Display| TlsError {
            what,
            message: e.to_string(),
        }
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| error("certificate")(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error("certificate")(&e))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| error("key")(&e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| error("protocol versions")(&e))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| error("certificate and key")(&e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// One broadcaster, served on any number of listeners.
#[derive(Clone)]
pub struct Baseline {
    hub: Arc<Hub>,
    builder: Arc<auto::Builder<TokioExecutor>>,
}

impl Baseline {
    /// A broadcaster with these limits.
    pub fn new(limits: HubLimits) -> Self {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http2().max_concurrent_streams(100_000);
        Self {
            hub: Hub::new(limits),
            builder: Arc::new(builder),
        }
    }

    /// Serves the routes on `listener` (over TLS when `tls` is given) until the task is
    /// dropped.
    pub async fn serve(&self, listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>) {
        let acceptor = tls.map(TlsAcceptor::from);
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE and friends: back off briefly rather than spin.
                    eprintln!("sse-baseline: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let this = self.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    None => this.connection(stream).await,
                    Some(acceptor) => {
                        // A failed handshake only concerns that client.
                        if let Ok(tls) = acceptor.accept(stream).await {
                            this.connection(tls).await;
                        }
                    }
                }
            });
        }
    }

    async fn connection<S>(&self, io: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let hub = Arc::clone(&self.hub);
        let service = service_fn(move |req| http::route(Arc::clone(&hub), req));
        // A client going away mid-stream is normal here.
        let _ = self
            .builder
            .serve_connection(TokioIo::new(io), service)
            .await;
    }
}

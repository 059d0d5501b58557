//! `kind: proxy`: routes a connection by the server name and ALPN protocols of its
//! ClientHello without terminating TLS; the bytes, the hello first, pass through to the
//! exit both ways.

use std::fmt;
use std::sync::Arc;

use binding_api::binding::{Binding, Worker};
use binding_api::ext::BeginEx;
use binding_api::ext::tcp::TcpBeginEx;
use binding_api::ext::tls::TlsBeginEx;
use binding_api::frame::{Begin, Data, End, Frame, ReasonKind, Reset, Window};
use binding_api::route::{Route, Routes};
use binding_api::stream::{self, Acceptor, Reader, SendError, Writer};
use bytes::{Bytes, BytesMut};

use crate::config::Condition;
use crate::hello::{self, Hello, Parsed};
use crate::session::HANDSHAKE_TIMEOUT;

/// Credit granted to each side, and to the hello while it arrives.
const WINDOW: u32 = 20 * 1024;

/// A tls proxy binding.
pub struct TlsProxy {
    name: String,
    routes: Arc<Routes<Condition>>,
}

impl fmt::Debug for TlsProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsProxy")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TlsProxy {
    /// A proxy choosing among `routes` by the hello, else `exit`, else closing.
    pub fn new(
        name: impl Into<String>,
        routes: Vec<Route<Condition>>,
        exit: Option<Arc<dyn Binding>>,
    ) -> Self {
        TlsProxy {
            name: name.into(),
            routes: Arc::new(Routes::new(routes, exit)),
        }
    }
}

impl Binding for TlsProxy {
    fn name(&self) -> &str {
        &self.name
    }

    fn new_stream(&self, mut stream: Acceptor, worker: &Worker) {
        if stream.output.begin(Begin::default()).is_err() {
            return;
        }
        let tcp = match &stream.begin.ext {
            BeginEx::Tcp(tcp) => Some(tcp.clone()),
            _ => None,
        };
        let connection = Connection {
            binding: self.name.clone(),
            routes: self.routes.clone(),
            tcp,
            worker: worker.clone(),
        };
        worker.spawn(connection.run(stream.input, stream.output));
    }
}

/// One connection through the proxy.
struct Connection {
    binding: String,
    routes: Arc<Routes<Condition>>,
    tcp: Option<TcpBeginEx>,
    worker: Worker,
}

impl Connection {
    async fn run(self, mut net_in: Reader, mut net_out: Writer) {
        if net_in.window(window()).is_err() {
            return;
        }
        let Some((hello, buffered)) = self.hello(&mut net_in).await else {
            close(net_in, net_out, "tls proxy: no client hello");
            return;
        };
        let port = self.tcp.as_ref().and_then(|t| t.local.map(|a| a.port()));
        let offered: Vec<&[u8]> = hello.alpn.iter().map(Vec::as_slice).collect();
        let name = hello.server_name.as_deref();
        let Some(exit) = self
            .routes
            .resolve(|c| c.matches_offer(name, &offered, port))
            .map(|resolved| resolved.exit())
        else {
            tracing::info!(
                binding = %self.binding,
                server_name = ?hello.server_name,
                alpn = ?hello.alpn.iter().map(|p| String::from_utf8_lossy(p)).collect::<Vec<_>>(),
                "tls: no route for this connection"
            );
            close(net_in, net_out, "tls proxy: no route");
            return;
        };
        let (mut up, acceptor) = stream::open(Begin {
            ext: BeginEx::Tls(TlsBeginEx {
                alpn: None,
                server_name: hello.server_name,
                tcp: self.tcp,
            }),
        });
        exit.new_stream(acceptor, &self.worker);
        if up.input.window(window()).is_err() {
            return;
        }
        if send(&mut up.output, buffered).await.is_err() {
            let reset = refusal(&up.output);
            let _ = net_out.abort(reset.reason.clone());
            net_in.reset(reset);
            return;
        }
        tokio::join!(pipe(net_in, up.output), pipe(up.input, net_out));
    }

    /// Reads until the hello is complete; `None` (logged) when it is not a hello, does not
    /// come in time, or the client leaves first.
    async fn hello(&self, net_in: &mut Reader) -> Option<(Hello, Bytes)> {
        let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
        let mut buffered = BytesMut::new();
        let mut need = 1;
        loop {
            if buffered.len() >= need {
                match hello::parse(&buffered) {
                    Ok(Parsed::Complete { hello, .. }) => return Some((hello, buffered.freeze())),
                    Ok(Parsed::Incomplete { need: more }) => need = more,
                    Err(err) => {
                        self.failed(&err.to_string());
                        return None;
                    }
                }
            }
            let frame = tokio::select! {
                frame = net_in.frame() => frame,
                _ = tokio::time::sleep_until(deadline) => {
                    self.failed("no client hello within the handshake timeout");
                    return None;
                }
            };
            match frame {
                Some(Frame::Data(data)) => {
                    buffered.extend_from_slice(&data.payload);
                    net_in.replenish();
                }
                Some(Frame::Begin(_) | Frame::Flush(_)) => {}
                Some(Frame::End(_) | Frame::Abort(_)) | None => return None,
            }
        }
    }

    fn failed(&self, error: &str) {
        let peer = self.tcp.as_ref().map(|t| t.remote.to_string());
        tracing::info!(
            event = "tls_handshake_failed",
            binding = %self.binding,
            peer = peer.as_deref().unwrap_or("-"),
            error,
            "tls handshake failed"
        );
    }
}

fn window() -> Window {
    Window {
        credit: WINDOW,
        padding: 0,
    }
}

/// Ends the network stream and stops reading it.
fn close(mut net_in: Reader, mut net_out: Writer, why: &str) {
    let _ = net_out.end(End::default());
    net_in.reset(Reset::new(ReasonKind::Refused, why));
}

/// Why `to` stopped taking bytes.
fn refusal(to: &Writer) -> Reset {
    to.reset_reason()
        .unwrap_or_else(|| Reset::new(ReasonKind::Dropped, "tls proxy: the other side went away"))
}

/// Sends `bytes` in as many frames as the receiver's credit asks for.
async fn send(to: &mut Writer, mut bytes: Bytes) -> Result<(), SendError> {
    while !bytes.is_empty() {
        to.ready(1).await?;
        let room = to.credit().saturating_sub(u64::from(to.padding()));
        let n = usize::try_from(room).unwrap_or(usize::MAX).min(bytes.len());
        to.data(Data::new(bytes.split_to(n)))?;
    }
    Ok(())
}

/// Passes one direction on until it ends: data within credit, end as end, abort as abort,
/// and a reset of the receiver back to the sender.
async fn pipe(mut from: Reader, mut to: Writer) {
    while let Some(frame) = from.frame().await {
        match frame {
            Frame::Begin(_) | Frame::Flush(_) => {}
            Frame::Data(data) => {
                if send(&mut to, data.payload).await.is_err() {
                    from.reset(refusal(&to));
                    return;
                }
                from.replenish();
            }
            Frame::End(_) => {
                let _ = to.end(End::default());
                return;
            }
            Frame::Abort(abort) => {
                let _ = to.abort(abort.reason);
                return;
            }
        }
    }
}

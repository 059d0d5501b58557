//! `kind: server`: takes network streams (from tcp or tls), chooses HTTP/1.1 or HTTP/2 for
//! each, and runs it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use binding_api::binding::{Binding, Worker};
use binding_api::ext::BeginEx;
use binding_api::frame::{End, Frame, Window};
use binding_api::route::{Route, Routes};
use binding_api::shutdown::Retirement;
use binding_api::stream::Acceptor;
use binding_api::timer::Timer;
use bytes::BytesMut;
use tokio::time::Instant;

use zilla_metrics::BindingMetrics;

use crate::config::{Condition, HttpOptions, Version};
use crate::dispatch::Shared;
use crate::h1::server::{H1, Outcome, Run, Upgraded, begin_output};
use crate::h2;
use crate::net::Net;
use crate::overrides::Overrides;
use crate::request::RequestHead;

/// An http server binding.
pub struct HttpServer {
    shared: Arc<Shared>,
}

impl HttpServer {
    /// A server with `options` that routes requests by `routes`, then to `exit`. Requests
    /// towards an exit get `options.overrides`, then their route's overrides.
    pub fn new(
        name: impl Into<String>,
        options: HttpOptions,
        routes: Vec<Route<Condition, Overrides>>,
        exit: Option<Arc<dyn Binding>>,
    ) -> Self {
        Self::recording(name, options, routes, exit, BindingMetrics::default())
    }

    /// As [`HttpServer::new`], recording its connections and requests in `metrics`.
    pub fn recording(
        name: impl Into<String>,
        options: HttpOptions,
        mut routes: Vec<Route<Condition, Overrides>>,
        exit: Option<Arc<dyn Binding>>,
        metrics: BindingMetrics,
    ) -> Self {
        for route in &mut routes {
            route.with = options.overrides.then(&route.with);
        }
        HttpServer {
            shared: Arc::new(Shared {
                name: name.into(),
                options,
                routes: Routes::new(routes, exit),
                metrics,
                retirement: Retirement::default(),
            }),
        }
    }
}

impl Binding for HttpServer {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn start(&self, worker: &Worker) {
        // Made now, so that the series are exposed (at zero) before the first connection.
        self.shared.worker_metrics(worker);
    }

    /// A reload replaced this binding: each connection finishes the requests it carries (an
    /// event stream runs on) and closes, HTTP/1.1 at once when idle, HTTP/2 with `GOAWAY`;
    /// the client's next request opens a connection to the new binding.
    fn retire(&self) {
        self.shared.retirement.retire();
    }

    fn new_stream(&self, stream: Acceptor, worker: &Worker) {
        let connection = connection(self.shared.clone(), stream, worker.clone());
        match self.shared.worker_metrics(worker) {
            Some(metrics) => {
                let open = metrics.connection();
                worker.spawn(async move {
                    connection.await;
                    drop(open);
                });
            }
            None => worker.spawn(connection),
        }
    }
}

/// Sets one network connection up and returns it as a state machine; what fails here ends
/// the connection before it starts.
fn connection(shared: Arc<Shared>, stream: Acceptor, worker: Worker) -> Connection {
    let Acceptor {
        begin,
        input: initial,
        output: reply,
    } = stream;
    let mut net = Net {
        input: initial,
        output: reply,
    };
    if !begin_output(&mut net.output) {
        return Connection::Done;
    }
    let (h2_by_alpn, scheme) = match &begin.ext {
        BeginEx::Tls(tls) => (tls.alpn.as_deref() == Some("h2"), "https"),
        _ => (false, "http"),
    };
    let options = &shared.options;
    let window = options.limits.head.max_head() + 4096;
    let credit = u32::try_from(window).unwrap_or(u32::MAX);
    if net.input.window(Window { credit, padding: 0 }).is_err() {
        return Connection::Done;
    }
    let h1 = options.speaks(Version::Http11);
    let h2 = options.speaks(Version::H2);
    if h2_by_alpn || (h2 && !h1) {
        return Connection::http2(shared, net, worker, BytesMut::new(), None, scheme);
    }
    if h2 {
        // Prior knowledge: the client may start with the HTTP/2 preface.
        let deadline = Instant::now() + options.limits.request_header_timeout;
        return Connection::Sniffing(Box::new(Sniff {
            shared,
            worker,
            net,
            inbuf: BytesMut::new(),
            scheme,
            deadline,
            timer: Timer::default(),
        }));
    }
    Connection::Http1(H1::new(shared, worker, net, BytesMut::new(), scheme).run())
}

/// One network connection: which protocol it speaks, and its state in it.
#[expect(
    clippy::large_enum_variant,
    reason = "an HTTP/1.1 connection lives in `Http1`: boxing it would add an allocation to every connection to save none"
)]
enum Connection {
    /// Reading the first bytes to tell the HTTP/2 preface from an HTTP/1.1 request (boxed:
    /// a connection spends a moment here, and the rest of its life in another state).
    Sniffing(Box<Sniff>),
    Http1(Run),
    /// Boxed: an HTTP/1.1 connection should not be as large as the HTTP/2 one it does not
    /// run.
    Http2(Pin<Box<dyn Future<Output = ()>>>),
    Done,
}

/// What a connection holds while its first bytes are read.
struct Sniff {
    shared: Arc<Shared>,
    worker: Worker,
    net: Net,
    inbuf: BytesMut,
    scheme: &'static str,
    deadline: Instant,
    timer: Timer,
}

/// What the first bytes said.
enum Sniffed {
    Http1,
    Http2,
    /// The client went away or sent nothing in time.
    Nothing,
}

impl Sniff {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Sniffed> {
        while self.inbuf.len() < h2::PREFACE.len() && h2::PREFACE.starts_with(&self.inbuf) {
            match self.net.input.poll_frame(cx) {
                Poll::Ready(Some(Frame::Data(data))) => self.inbuf.extend_from_slice(&data.payload),
                Poll::Ready(Some(Frame::Begin(_) | Frame::Flush(_))) => {}
                Poll::Ready(Some(Frame::End(_))) if !self.inbuf.is_empty() => break,
                Poll::Ready(Some(Frame::End(_) | Frame::Abort(_)) | None) => {
                    return Poll::Ready(Sniffed::Nothing);
                }
                Poll::Pending => {
                    ready!(self.timer.poll_at(self.deadline, cx));
                    return Poll::Ready(Sniffed::Nothing);
                }
            }
        }
        Poll::Ready(if self.inbuf.starts_with(h2::PREFACE) {
            Sniffed::Http2
        } else {
            Sniffed::Http1
        })
    }
}

impl Connection {
    fn http2(
        shared: Arc<Shared>,
        net: Net,
        worker: Worker,
        prefix: BytesMut,
        upgrade: Option<Box<RequestHead>>,
        scheme: &'static str,
    ) -> Self {
        let prefix = prefix.freeze();
        Connection::Http2(Box::pin(h2::serve(
            shared, net, worker, prefix, upgrade, scheme,
        )))
    }
}

impl Future for Connection {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let connection = self.get_mut();
        loop {
            match connection {
                Connection::Sniffing(sniff) => {
                    let sniffed = ready!(sniff.poll(cx));
                    let Connection::Sniffing(sniff) =
                        std::mem::replace(connection, Connection::Done)
                    else {
                        return Poll::Ready(());
                    };
                    let Sniff {
                        shared,
                        worker,
                        mut net,
                        inbuf,
                        scheme,
                        ..
                    } = *sniff;
                    *connection = match sniffed {
                        Sniffed::Http2 => {
                            Connection::http2(shared, net, worker, inbuf, None, scheme)
                        }
                        Sniffed::Http1 => {
                            Connection::Http1(H1::new(shared, worker, net, inbuf, scheme).run())
                        }
                        Sniffed::Nothing => {
                            let _ = net.output.end(End::default());
                            Connection::Done
                        }
                    };
                }
                Connection::Http1(run) => {
                    let outcome = ready!(Pin::new(run).poll(cx));
                    *connection = match outcome {
                        Outcome::Closed => Connection::Done,
                        Outcome::Upgrade(upgraded) => {
                            let Upgraded {
                                shared,
                                worker,
                                net,
                                upgrade,
                                scheme,
                            } = *upgraded;
                            Connection::http2(
                                shared,
                                net,
                                worker,
                                upgrade.rest,
                                Some(upgrade.head),
                                scheme,
                            )
                        }
                    };
                }
                Connection::Http2(serve) => {
                    ready!(serve.as_mut().poll(cx));
                    *connection = Connection::Done;
                }
                Connection::Done => return Poll::Ready(()),
            }
        }
    }
}

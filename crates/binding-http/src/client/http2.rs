//! One request over one HTTP/2 connection to the upstream, with the `h2` crate's client run
//! over the network stream ([`NetIo`](crate::h2::io::NetIo)): prior knowledge over plain tcp,
//! or whatever ALPN chose over tls.

use std::future::{Future, poll_fn};
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use binding_api::binding::Worker;
use binding_api::ext::BeginEx;
use binding_api::ext::http::{Header, HttpBeginEx};
use binding_api::frame::{Begin, Data, End, Frame, Reason, ReasonKind, Reset, Window};
use binding_api::stream::{Duplex, Initiator, WriterEvent};
use bytes::Bytes;
use h2::client::ResponseFuture;
use h2::{RecvStream, SendStream};
use http::{HeaderName, HeaderValue, Method, Request, Uri};

use super::response::{MAX_HEAD, MAX_HEADERS};
use super::{APP_WINDOW, MAX_WRITE, upstream_lost};
use crate::h2::io::NetIo;
use crate::net::Net;
use crate::request::HOP_BY_HOP;

/// What `h2` may buffer to send on the connection.
const MAX_SEND_BUFFER: usize = 64 * 1024;

/// Methods whose requests carry no body unless they say `content-length`.
const BODILESS: [&str; 6] = ["GET", "HEAD", "DELETE", "OPTIONS", "TRACE", "CONNECT"];

/// Runs `request` over an HTTP/2 connection on `net`, whose begin has arrived.
pub(crate) async fn exchange(
    binding: Arc<str>,
    request: HttpBeginEx,
    mut app: Duplex,
    net: Initiator,
    worker: Worker,
) {
    let (request, end_of_stream) = match to_request(&request) {
        Ok(request) => request,
        Err(err) => {
            tracing::debug!(binding = %binding, %err, "http client: request refused");
            app.refuse_in_place(Reset::new(ReasonKind::Invalid, err));
            return;
        }
    };
    let io = NetIo::new(
        Net {
            input: net.input,
            output: net.output,
        },
        Bytes::new(),
        None,
    );
    let mut builder = h2::client::Builder::new();
    builder
        .initial_window_size(APP_WINDOW)
        .max_send_buffer_size(MAX_SEND_BUFFER)
        .max_header_list_size(MAX_HEAD as u32)
        .enable_push(false);
    let handshake = tokio::select! {
        handshake = builder.handshake::<_, Bytes>(io) => handshake,
        reset = app.output.reset_by_reader() => {
            app.input.reset(reset);
            return;
        }
    };
    let (send_request, connection) = match handshake {
        Ok(handshake) => handshake,
        Err(err) => {
            refuse(
                &mut app,
                &binding,
                upstream_lost(format!("HTTP/2 handshake: {err}")),
            );
            return;
        }
    };
    let name = binding.clone();
    worker.spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(binding = %name, %err, "http client: HTTP/2 connection error");
        }
    });
    let sent = async {
        let mut ready = send_request.ready().await?;
        ready.send_request(request, end_of_stream)
    };
    let (response, send) = match sent.await {
        Ok(sent) => sent,
        Err(err) => {
            refuse(
                &mut app,
                &binding,
                upstream_lost(format!("HTTP/2 request: {err}")),
            );
            return;
        }
    };
    let _ = app.input.window(Window {
        credit: APP_WINDOW,
        padding: 0,
    });
    let mut exchange = Exchange {
        binding,
        app,
        body: (!end_of_stream).then_some(RequestBody {
            send,
            pending: None,
        }),
        response: ResponseState::Awaiting(response),
    };
    poll_fn(|cx| exchange.poll(cx)).await;
}

/// Refuses the application's stream before any response, for `reason`.
fn refuse(app: &mut Duplex, binding: &str, reason: Reason) {
    tracing::debug!(binding = %binding, %reason, "http client: no response");
    app.refuse_in_place(Reset {
        reason,
        ext: Default::default(),
    });
}

/// The application's request as an `http::Request`, and whether it has no body.
fn to_request(head: &HttpBeginEx) -> Result<(Request<()>, bool), String> {
    let method = head
        .method()
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .ok_or("request has no usable :method")?;
    let path = head.path().ok_or("request has no :path")?;
    let scheme = head.get(":scheme").unwrap_or("http");
    let authority = head.get(":authority").or_else(|| head.get("host"));
    let uri = match authority {
        Some(authority) => Uri::builder()
            .scheme(scheme)
            .authority(authority)
            .path_and_query(path)
            .build(),
        None => Uri::builder().path_and_query(path).build(),
    }
    .map_err(|err| format!("request URI: {err}"))?;
    let no_body = BODILESS.contains(&method.as_str()) && head.get("content-length").is_none();
    let mut request = Request::builder().method(method).uri(uri);
    for Header { name, value } in &head.headers {
        if name.starts_with(':') || name == "host" || HOP_BY_HOP.contains(&name.as_str()) {
            continue;
        }
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("request header '{name}' cannot be sent"))?;
        let value = HeaderValue::from_bytes(value)
            .map_err(|_| format!("request header '{name}' has a value that cannot be sent"))?;
        request = request.header(name, value);
    }
    let request = request.body(()).map_err(|err| err.to_string())?;
    Ok((request, no_body))
}

/// The request body on its way to the upstream.
struct RequestBody {
    send: SendStream<Bytes>,
    /// What the upstream has no window for yet.
    pending: Option<Bytes>,
}

/// Where the response stands.
enum ResponseState {
    Awaiting(ResponseFuture),
    /// The body; `pending` waits for the application's credit, with the window to release
    /// once it is passed on.
    Streaming {
        body: RecvStream,
        pending: Option<(Bytes, usize)>,
    },
}

/// One request and its response between the application and an HTTP/2 stream.
struct Exchange {
    binding: Arc<str>,
    app: Duplex,
    /// `None` once the request body is over.
    body: Option<RequestBody>,
    response: ResponseState,
}

impl Exchange {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let request = self.poll_body(cx);
            let response = match self.poll_response(cx) {
                Poll::Ready(()) => return Poll::Ready(()),
                Poll::Pending => false,
            };
            if !request && !response {
                return Poll::Pending;
            }
        }
    }

    /// Passes the application's body on within the stream's window; `true` on progress.
    fn poll_body(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(body) = &mut self.body else {
            return false;
        };
        if let Some(payload) = &mut body.pending {
            body.send.reserve_capacity(payload.len());
            return match body.send.poll_capacity(cx) {
                Poll::Pending => false,
                Poll::Ready(Some(Ok(capacity))) => {
                    let chunk = payload.split_to(capacity.min(payload.len()));
                    if body.send.send_data(chunk, false).is_err() {
                        self.body = None;
                    } else if payload.is_empty() {
                        body.pending = None;
                        self.app.input.replenish();
                    }
                    true
                }
                Poll::Ready(_) => {
                    self.body = None;
                    self.app.input.reset(Reset::new(
                        ReasonKind::ConnectionLost,
                        "upstream stream closed",
                    ));
                    true
                }
            };
        }
        match self.app.input.poll_frame(cx) {
            Poll::Pending => false,
            Poll::Ready(Some(Frame::Data(data))) => {
                if !data.payload.is_empty() {
                    body.pending = Some(data.payload);
                } else {
                    self.app.input.replenish();
                }
                true
            }
            Poll::Ready(Some(Frame::Begin(_) | Frame::Flush(_))) => {
                self.app.input.replenish();
                true
            }
            Poll::Ready(Some(Frame::End(_))) => {
                let _ = body.send.send_data(Bytes::new(), true);
                self.body = None;
                true
            }
            Poll::Ready(Some(Frame::Abort(_)) | None) => {
                body.send.send_reset(h2::Reason::CANCEL);
                self.body = None;
                self.cancel(Reason::new(ReasonKind::Dropped, "the application aborted"));
                true
            }
        }
    }

    /// The application is gone: the upstream stream is reset (dropping the response).
    fn cancel(&mut self, reason: Reason) {
        if let Some(body) = &mut self.body {
            body.send.send_reset(h2::Reason::CANCEL);
        }
        self.body = None;
        let _ = self.app.output.abort(reason);
    }

    /// Moves the response on; `Ready` once the exchange is over.
    fn poll_response(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if let Poll::Ready(reset) = self.app.output.poll_reset(cx) {
                self.cancel(reset.reason.clone());
                self.app.input.reset(reset);
                return Poll::Ready(());
            }
            match &mut self.response {
                ResponseState::Awaiting(future) => {
                    let response = match ready!(std::pin::Pin::new(future).poll(cx)) {
                        Ok(response) => response,
                        Err(err) => {
                            refuse(&mut self.app, &self.binding, upstream_lost(err.to_string()));
                            return Poll::Ready(());
                        }
                    };
                    let (parts, body) = response.into_parts();
                    let mut head = HttpBeginEx::response(parts.status.as_u16(), []);
                    for (name, value) in parts.headers.iter().take(MAX_HEADERS) {
                        if HOP_BY_HOP.contains(&name.as_str()) {
                            continue;
                        }
                        head.headers.push(Header::new(
                            name.as_str(),
                            Bytes::copy_from_slice(value.as_bytes()),
                        ));
                    }
                    let end = body.is_end_stream();
                    let begin = Begin {
                        ext: BeginEx::Http(head),
                    };
                    if self.app.output.begin(begin).is_err() {
                        self.cancel(Reason::new(
                            ReasonKind::Dropped,
                            "the application went away",
                        ));
                        return Poll::Ready(());
                    }
                    if end {
                        let _ = self.app.output.end(End::default());
                        return self.finish();
                    }
                    self.response = ResponseState::Streaming {
                        body,
                        pending: None,
                    };
                }
                ResponseState::Streaming { body, pending } => {
                    if let Some((bytes, len)) = pending {
                        let room = self
                            .app
                            .output
                            .credit()
                            .saturating_sub(u64::from(self.app.output.padding()))
                            .min(MAX_WRITE);
                        if room == 0 {
                            match self.app.output.poll_event(cx) {
                                Poll::Pending => return Poll::Pending,
                                Poll::Ready(WriterEvent::Reset(reset)) => {
                                    self.cancel(reset.reason);
                                    return Poll::Ready(());
                                }
                                Poll::Ready(_) => continue,
                            }
                        }
                        let n = bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX));
                        if self.app.output.data(Data::new(bytes.split_to(n))).is_err() {
                            self.cancel(Reason::new(
                                ReasonKind::Dropped,
                                "the application went away",
                            ));
                            return Poll::Ready(());
                        }
                        if bytes.is_empty() {
                            let _ = body.flow_control().release_capacity(*len);
                            *pending = None;
                        }
                        continue;
                    }
                    match ready!(body.poll_data(cx)) {
                        Some(Ok(bytes)) => {
                            let len = bytes.len();
                            *pending = Some((bytes, len));
                        }
                        Some(Err(err)) => {
                            let reason = upstream_lost(err.to_string());
                            let _ = self.app.output.abort(reason.clone());
                            self.app.input.reset(Reset {
                                reason,
                                ext: Default::default(),
                            });
                            return Poll::Ready(());
                        }
                        None => {
                            let _ = self.app.output.end(End::default());
                            return self.finish();
                        }
                    }
                }
            }
        }
    }

    /// The response is complete: a request body still being sent is stopped.
    fn finish(&mut self) -> Poll<()> {
        if self.body.take().is_some() {
            self.app
                .input
                .reset(Reset::new(ReasonKind::Refused, "the response has ended"));
        }
        Poll::Ready(())
    }
}

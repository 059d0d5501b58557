//! One HTTP/2 request: its stream to the application, body both ways with credit, as a state
//! machine ([`Exchange`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use binding_api::binding::Worker;
use binding_api::ext::http::Header;
use binding_api::frame::{Data, End, Frame, Reason, ReasonKind, Reset, Window};
use binding_api::stream::{Reader, Writer};
use bytes::Bytes;
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};

use crate::dispatch::{Dispatch, Shared, refusal_head};
use crate::metrics::RequestMeter;
use crate::request::{HOP_BY_HOP, RequestHead};

/// Credit granted to the application's reply: what may wait to be sent on one stream.
const REPLY_WINDOW: u32 = 64 * 1024;

/// Starts serving one request: answered at once when the binding answers it itself, else
/// an [`Exchange`] with the application to run until its response is complete or reset.
pub(crate) fn start(
    shared: Arc<Shared>,
    request: Request<RecvStream>,
    respond: SendResponse<Bytes>,
    worker: &Worker,
    scheme: &'static str,
) -> Option<Exchange> {
    let (parts, body) = request.into_parts();
    let head = head(&parts, scheme, !body.is_end_stream());
    let dispatch = shared.dispatch(&head, worker);
    // The request's headers are not kept for the life of the exchange.
    drop((parts, head));
    match dispatch {
        Dispatch::Local { status, headers } => {
            let mut respond = respond;
            let _ = respond.send_response(response(status, &headers), true);
            None
        }
        Dispatch::App {
            stream,
            cors,
            meter,
        } => Some(Exchange {
            shared,
            cors,
            meter,
            output: stream.output,
            input: stream.input,
            body: Some(Body::Forwarding { body, chunk: None }),
            reply: Reply::AwaitingBegin(respond),
        }),
    }
}

/// One request and its response between the client's HTTP/2 stream and the application's
/// stream, as a state machine: the request body forwarded within the application's credit,
/// the response within the client's window.
pub(crate) struct Exchange {
    shared: Arc<Shared>,
    cors: Vec<Header>,
    /// The request, to the application.
    output: Writer,
    /// The response, from the application.
    input: Reader,
    /// `None` once the request body is over.
    body: Option<Body>,
    reply: Reply,
    /// Records the request as the exchange drops.
    meter: Option<Box<RequestMeter>>,
}

/// Where the request body stands.
enum Body {
    /// Passing the client's bytes on; `chunk` is what the application has no credit for yet,
    /// with the length to release to the client's window once it is passed on.
    Forwarding {
        body: RecvStream,
        chunk: Option<(Bytes, usize)>,
    },
    /// The application will not read it: read and drop the rest, releasing its window.
    Draining(RecvStream),
}

/// Where the response stands.
enum Reply {
    AwaitingBegin(SendResponse<Bytes>),
    /// Sending the application's body; `pending` waits for the client's window.
    Streaming {
        send: SendStream<Bytes>,
        pending: Option<Bytes>,
    },
    /// Complete, or stopped: `aborted` says why the request should be aborted too.
    Over {
        aborted: Option<Reason>,
    },
}

impl Future for Exchange {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let exchange = self.get_mut();
        if let Reply::Over { aborted } = exchange.poll_reply(cx) {
            if let Some(reason) = aborted.take() {
                // A response that was reset or aborted stops reading the body (dropping it
                // releases its window).
                exchange.body = None;
                let _ = exchange.output.abort(reason);
                return Poll::Ready(());
            }
            // A response that ended lets the body finish.
            if exchange.body.is_none() {
                return Poll::Ready(());
            }
        }
        exchange.poll_body(cx);
        match (&exchange.reply, &exchange.body) {
            (Reply::Over { .. }, None) => Poll::Ready(()),
            _ => Poll::Pending,
        }
    }
}

impl Exchange {
    /// Moves the response on as far as it can go now.
    fn poll_reply(&mut self, cx: &mut Context<'_>) -> &mut Reply {
        let lost = |why: String| Some(Reason::new(ReasonKind::ConnectionLost, why));
        loop {
            let next = match &mut self.reply {
                Reply::Over { .. } => break,
                Reply::AwaitingBegin(respond) => {
                    if let Poll::Ready(reason) = respond.poll_reset(cx) {
                        client_reset(&mut self.input, reason)
                    } else {
                        match self.input.poll_frame(cx) {
                            Poll::Pending => break,
                            Poll::Ready(frame) => self.on_head(frame),
                        }
                    }
                }
                Reply::Streaming { send, pending } => {
                    if let Some(payload) = pending {
                        match poll_send(send, payload, cx) {
                            Poll::Pending => break,
                            Poll::Ready(Ok(())) => {
                                *pending = None;
                                self.input.replenish();
                                continue;
                            }
                            Poll::Ready(Err(err)) => {
                                self.input
                                    .reset(Reset::new(ReasonKind::ConnectionLost, err));
                                Reply::Over {
                                    aborted: lost("the client went away".into()),
                                }
                            }
                        }
                    } else if let Poll::Ready(reason) = send.poll_reset(cx) {
                        client_reset(&mut self.input, reason)
                    } else {
                        match self.input.poll_frame(cx) {
                            Poll::Pending => break,
                            Poll::Ready(Some(Frame::Data(data))) => {
                                if let Some(meter) = &mut self.meter {
                                    meter.response_body(data.payload.len());
                                }
                                *pending = Some(data.payload);
                                continue;
                            }
                            Poll::Ready(Some(Frame::Flush(_))) => {
                                self.input.replenish();
                                continue;
                            }
                            Poll::Ready(Some(Frame::End(_))) => {
                                let _ = send.send_data(Bytes::new(), true);
                                Reply::Over { aborted: None }
                            }
                            Poll::Ready(Some(Frame::Abort(abort))) => {
                                send.send_reset(h2::Reason::INTERNAL_ERROR);
                                Reply::Over {
                                    aborted: Some(abort.reason),
                                }
                            }
                            Poll::Ready(Some(Frame::Begin(_)) | None) => {
                                send.send_reset(h2::Reason::INTERNAL_ERROR);
                                Reply::Over {
                                    aborted: lost("the application went away".into()),
                                }
                            }
                        }
                    }
                }
            };
            self.reply = next;
        }
        &mut self.reply
    }

    /// The application's first frame: the response's head, or its refusal.
    fn on_head(&mut self, frame: Option<Frame>) -> Reply {
        let lost = |why: String| Some(Reason::new(ReasonKind::ConnectionLost, why));
        let Reply::AwaitingBegin(respond) = &mut self.reply else {
            return Reply::Over { aborted: None };
        };
        let begin = match frame {
            Some(Frame::Begin(begin)) => begin,
            Some(Frame::Abort(abort)) => {
                let (status, headers) = refusal_head(&abort.reason, &self.output, &self.cors);
                let _ = respond.send_response(response(status, &headers), true);
                return Reply::Over {
                    aborted: Some(abort.reason),
                };
            }
            _ => {
                respond.send_reset(h2::Reason::INTERNAL_ERROR);
                return Reply::Over {
                    aborted: lost("the application replied without a begin".into()),
                };
            }
        };
        let (status, headers) = self.shared.response_head(&begin, &self.cors);
        match respond.send_response(response(status, &headers), false) {
            Ok(send) => {
                let window = Window {
                    credit: REPLY_WINDOW,
                    padding: 0,
                };
                if self.input.window(window).is_err() {
                    return Reply::Over { aborted: None };
                }
                Reply::Streaming {
                    send,
                    pending: None,
                }
            }
            Err(err) => {
                self.input
                    .reset(Reset::new(ReasonKind::ConnectionLost, err.to_string()));
                Reply::Over {
                    aborted: lost(err.to_string()),
                }
            }
        }
    }

    /// Passes the client's body on, no faster than the application grants credit; the
    /// HTTP/2 window is released only as bytes are passed on.
    fn poll_body(&mut self, cx: &mut Context<'_>) {
        loop {
            let step = match &mut self.body {
                None => return,
                Some(Body::Draining(body)) => match body.poll_data(cx) {
                    Poll::Ready(Some(Ok(chunk))) => {
                        let _ = body.flow_control().release_capacity(chunk.len());
                        BodyStep::Again
                    }
                    Poll::Ready(_) => BodyStep::Over,
                    Poll::Pending => return,
                },
                Some(Body::Forwarding {
                    body,
                    chunk: Some((bytes, len)),
                }) => {
                    if bytes.is_empty() {
                        let _ = body.flow_control().release_capacity(*len);
                        BodyStep::Passed
                    } else {
                        match self.output.poll_ready(cx, 1) {
                            Poll::Pending => return,
                            Poll::Ready(Ok(())) => {
                                let room = self.output.credit();
                                let room = room.saturating_sub(u64::from(self.output.padding()));
                                let n =
                                    bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX));
                                match self.output.data(Data::new(bytes.split_to(n))) {
                                    Ok(()) => BodyStep::Again,
                                    Err(_) => BodyStep::Drain,
                                }
                            }
                            Poll::Ready(Err(_)) => {
                                // The application will not read the body: drop the rest.
                                let _ = body.flow_control().release_capacity(*len);
                                BodyStep::Drain
                            }
                        }
                    }
                }
                Some(Body::Forwarding { body, chunk }) => match body.poll_data(cx) {
                    Poll::Pending => return,
                    Poll::Ready(Some(Ok(bytes))) => {
                        let len = bytes.len();
                        if let Some(meter) = &mut self.meter {
                            meter.request_body(len);
                        }
                        *chunk = Some((bytes, len));
                        BodyStep::Again
                    }
                    Poll::Ready(Some(Err(err))) => {
                        let reason = Reason::new(ReasonKind::ConnectionLost, err.to_string());
                        let _ = self.output.abort(reason);
                        BodyStep::Over
                    }
                    Poll::Ready(None) => {
                        let _ = self.output.end(End::default());
                        BodyStep::Over
                    }
                },
            };
            match step {
                BodyStep::Again => {}
                BodyStep::Passed => {
                    if let Some(Body::Forwarding { chunk, .. }) = &mut self.body {
                        *chunk = None;
                    }
                }
                BodyStep::Drain => {
                    if let Some(Body::Forwarding { body, .. }) = self.body.take() {
                        self.body = Some(Body::Draining(body));
                    }
                }
                BodyStep::Over => self.body = None,
            }
        }
    }
}

/// What the body does next, decided while its state is borrowed.
enum BodyStep {
    /// Look again.
    Again,
    /// The chunk was passed on whole (its window released).
    Passed,
    /// Stop passing it on; drain the rest.
    Drain,
    /// The body is over.
    Over,
}

/// The client reset its stream (or its `poll_reset` failed): the response is over, the
/// application's reply is reset and its request aborted.
fn client_reset(input: &mut Reader, reason: Result<h2::Reason, h2::Error>) -> Reply {
    input.reset(Reset::new(
        ReasonKind::ConnectionLost,
        "the client reset the stream",
    ));
    Reply::Over {
        aborted: Some(Reason::new(
            ReasonKind::ConnectionLost,
            format!("client reset: {reason:?}"),
        )),
    }
}

/// Sends as much of `payload` as the client's window allows; `Ready(Ok)` once all is sent.
fn poll_send(
    send: &mut SendStream<Bytes>,
    payload: &mut Bytes,
    cx: &mut Context<'_>,
) -> Poll<Result<(), String>> {
    while !payload.is_empty() {
        send.reserve_capacity(payload.len());
        let capacity = match ready!(send.poll_capacity(cx)) {
            Some(Ok(capacity)) => capacity,
            Some(Err(err)) => return Poll::Ready(Err(err.to_string())),
            None => return Poll::Ready(Err("stream closed".into())),
        };
        if capacity == 0 {
            continue;
        }
        let chunk = payload.split_to(capacity.min(payload.len()));
        if let Err(err) = send.send_data(chunk, false) {
            return Poll::Ready(Err(err.to_string()));
        }
    }
    Poll::Ready(Ok(()))
}

fn head(parts: &http::request::Parts, scheme: &'static str, has_body: bool) -> RequestHead {
    let uri = &parts.uri;
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            parts
                .headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let headers = parts
        .headers
        .iter()
        .filter(|(name, _)| !HOP_BY_HOP.contains(&name.as_str()) && *name != http::header::HOST)
        .map(|(name, value)| {
            Header::new(
                name.as_str().to_owned(),
                Bytes::copy_from_slice(value.as_bytes()),
            )
        })
        .collect();
    RequestHead {
        method: parts.method.as_str().to_owned(),
        scheme: uri.scheme_str().unwrap_or(scheme).to_owned(),
        authority,
        path: uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        headers,
        h1_minor: None,
        keep_alive: true,
        expect_continue: false,
        h2c_settings: None,
        has_body,
    }
}

fn response(status: u16, headers: &[Header]) -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let map = response.headers_mut();
    for header in headers {
        if header.name.starts_with(':') || HOP_BY_HOP.contains(&header.name.as_str()) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(header.name.as_bytes()),
            HeaderValue::from_bytes(&header.value),
        ) {
            map.append(name, value);
        }
    }
    response
}

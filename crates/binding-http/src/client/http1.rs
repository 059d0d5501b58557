//! One request over one HTTP/1.1 connection to the upstream, as a state machine
//! ([`Exchange`]): the request encoded within the network's credit, the response decoded
//! within the application's, end, abort and reset passed both ways.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use binding_api::ext::BeginEx;
use binding_api::frame::{Begin, Data, End, Frame, Reason, ReasonKind, Reset, Window};
use binding_api::stream::{Duplex, Initiator, WriterEvent};
use bytes::BytesMut;

use super::request::RequestEncoder;
use super::response::{MAX_HEAD, ResponseDecoder, ResponseEvent};
use super::{APP_WINDOW, MAX_WRITE, upstream_lost};

/// One request and its response between the application's stream and the upstream
/// connection.
pub(crate) struct Exchange {
    binding: Arc<str>,
    app: Duplex,
    net: Initiator,
    /// `None` once the application's request has ended (its bytes may still be in `outbuf`).
    encoder: Option<RequestEncoder>,
    decoder: ResponseDecoder,
    /// Whether the response's head went to the application.
    begun: bool,
    /// Bytes of the request waiting for the network's credit.
    outbuf: BytesMut,
    /// Bytes of the response not decoded yet.
    inbuf: BytesMut,
}

/// What one look at a direction did.
enum Step {
    /// Something moved: look again.
    Progress,
    /// Nothing can move until a waker fires.
    Idle,
    /// The exchange is over.
    Over,
}

impl Exchange {
    /// Starts the exchange of the request `encoder` wrote to `head` over `net`, whose begin
    /// has arrived.
    pub(crate) fn new(
        binding: Arc<str>,
        encoder: RequestEncoder,
        head: BytesMut,
        mut app: Duplex,
        net: Initiator,
    ) -> Self {
        let _ = app.input.window(Window {
            credit: APP_WINDOW,
            padding: 0,
        });
        Exchange {
            binding,
            decoder: ResponseDecoder::new(encoder.is_head()),
            encoder: Some(encoder),
            app,
            net,
            begun: false,
            outbuf: head,
            inbuf: BytesMut::new(),
        }
    }

    /// The upstream failed: the application learns why (a refusal before the response
    /// began, an abort after), the connection is dropped.
    fn fail(&mut self, reason: Reason) -> Step {
        tracing::debug!(binding = %self.binding, %reason, "http client: exchange failed");
        if self.begun {
            self.abandon(reason)
        } else {
            self.app.refuse_in_place(Reset {
                reason: reason.clone(),
                ext: Default::default(),
            });
            self.drop_connection(reason)
        }
    }

    /// The application went away: the connection is dropped.
    fn abandon(&mut self, reason: Reason) -> Step {
        let _ = self.app.output.abort(reason.clone());
        self.app.input.reset(Reset {
            reason: reason.clone(),
            ext: Default::default(),
        });
        self.drop_connection(reason)
    }

    /// Aborts the request towards the network and resets its response.
    fn drop_connection(&mut self, reason: Reason) -> Step {
        let _ = self.net.output.abort(reason.clone());
        self.net.input.reset(Reset {
            reason,
            ext: Default::default(),
        });
        Step::Over
    }

    /// Moves the request on: pending bytes to the network, then the application's next
    /// frame.
    fn poll_request(&mut self, cx: &mut Context<'_>) -> Step {
        if !self.outbuf.is_empty() {
            return match self.net.output.poll_ready(cx, 1) {
                Poll::Pending => Step::Idle,
                Poll::Ready(Err(err)) => {
                    self.fail(upstream_lost(format!("writing the request: {err}")))
                }
                Poll::Ready(Ok(())) => {
                    let room = self
                        .net
                        .output
                        .credit()
                        .saturating_sub(u64::from(self.net.output.padding()))
                        .min(MAX_WRITE);
                    let n = self
                        .outbuf
                        .len()
                        .min(usize::try_from(room).unwrap_or(usize::MAX))
                        .max(1);
                    let bytes = self.outbuf.split_to(n).freeze();
                    if let Err(err) = self.net.output.data(Data::new(bytes)) {
                        return self.fail(upstream_lost(format!("writing the request: {err}")));
                    }
                    if self.outbuf.is_empty() {
                        // Written out: the application may send as much again.
                        self.app.input.replenish();
                    }
                    Step::Progress
                }
            };
        }
        let Some(encoder) = &mut self.encoder else {
            return Step::Idle;
        };
        match self.app.input.poll_frame(cx) {
            Poll::Pending => Step::Idle,
            Poll::Ready(Some(Frame::Data(data))) => {
                if let Err(err) = encoder.data(&data.payload, &mut self.outbuf) {
                    let reason = Reason::new(ReasonKind::Invalid, err.to_string());
                    return self.abandon(reason);
                }
                if self.outbuf.is_empty() {
                    self.app.input.replenish();
                }
                Step::Progress
            }
            Poll::Ready(Some(Frame::Flush(_) | Frame::Begin(_))) => {
                self.app.input.replenish();
                Step::Progress
            }
            Poll::Ready(Some(Frame::End(_))) => {
                if let Err(err) = encoder.end(&mut self.outbuf) {
                    let reason = Reason::new(ReasonKind::Invalid, err.to_string());
                    return self.abandon(reason);
                }
                self.encoder = None;
                Step::Progress
            }
            Poll::Ready(Some(Frame::Abort(abort))) => self.abandon(abort.reason),
            Poll::Ready(None) => self.abandon(Reason::new(
                ReasonKind::Dropped,
                "the application went away",
            )),
        }
    }

    /// Moves the response on: decodes what has arrived within the application's credit,
    /// reads more when the decoder needs it.
    fn poll_response(&mut self, cx: &mut Context<'_>) -> Step {
        let room = if self.begun {
            let credit = self.app.output.credit();
            let room = credit.saturating_sub(u64::from(self.app.output.padding()));
            usize::try_from(room.min(MAX_WRITE)).unwrap_or(usize::MAX)
        } else {
            0
        };
        match self.decoder.decode(&mut self.inbuf, room) {
            Err(err) => return self.fail(upstream_lost(err.to_string())),
            Ok(Some(event)) => return self.deliver(event),
            Ok(None) => {}
        }
        if self.begun && room == 0 && !self.inbuf.is_empty() {
            // Body bytes wait for the application's credit.
            return match self.app.output.poll_event(cx) {
                Poll::Pending => Step::Idle,
                Poll::Ready(WriterEvent::Window { .. } | WriterEvent::Challenge(_)) => {
                    Step::Progress
                }
                Poll::Ready(WriterEvent::Reset(reset)) => self.abandon(reset.reason),
            };
        }
        if let Poll::Ready(reset) = self.app.output.poll_reset(cx) {
            return self.abandon(reset.reason);
        }
        if self.inbuf.len() > MAX_HEAD + APP_WINDOW as usize {
            return self.fail(upstream_lost("response bytes beyond any head".into()));
        }
        match self.net.input.poll_frame(cx) {
            Poll::Pending => Step::Idle,
            Poll::Ready(Some(Frame::Data(data))) => {
                self.inbuf.extend_from_slice(&data.payload);
                self.net.input.replenish();
                Step::Progress
            }
            Poll::Ready(Some(Frame::Begin(_) | Frame::Flush(_))) => Step::Progress,
            Poll::Ready(Some(Frame::End(_))) => {
                // Whatever is left is decoded first; the close then ends or truncates.
                let room = usize::MAX;
                loop {
                    match self.decoder.decode(&mut self.inbuf, room) {
                        Ok(Some(event)) => {
                            if let Step::Over = self.deliver_at_close(event) {
                                return Step::Over;
                            }
                        }
                        Ok(None) => break,
                        Err(err) => return self.fail(upstream_lost(err.to_string())),
                    }
                }
                match self.decoder.eof() {
                    Ok(Some(event)) => self.deliver(event),
                    Ok(None) => Step::Over,
                    Err(err) => self.fail(upstream_lost(err.to_string())),
                }
            }
            Poll::Ready(Some(Frame::Abort(abort))) => {
                self.fail(upstream_lost(abort.reason.to_string()))
            }
            Poll::Ready(None) => self.fail(upstream_lost("the connection went away".into())),
        }
    }

    /// Delivers what was decoded from the bytes left when the upstream closed: the body
    /// past the application's credit cannot be sent, so the response is cut (aborted).
    fn deliver_at_close(&mut self, event: ResponseEvent) -> Step {
        if let ResponseEvent::Body(bytes) = &event
            && self.app.output.credit() < self.app.output.cost(bytes.len())
        {
            return self.fail(upstream_lost(
                "the upstream closed with body bytes the application had no room for".into(),
            ));
        }
        self.deliver(event)
    }

    /// Passes one decoded event to the application.
    fn deliver(&mut self, event: ResponseEvent) -> Step {
        match event {
            ResponseEvent::Head(head) => {
                let begin = Begin {
                    ext: BeginEx::Http(head),
                };
                if self.app.output.begin(begin).is_err() {
                    return self.abandon(Reason::new(
                        ReasonKind::Dropped,
                        "the application went away",
                    ));
                }
                self.begun = true;
                Step::Progress
            }
            ResponseEvent::Body(bytes) => match self.app.output.data(Data::new(bytes)) {
                Ok(()) => Step::Progress,
                Err(err) => self.abandon(Reason::new(ReasonKind::Dropped, err.to_string())),
            },
            ResponseEvent::End => {
                let _ = self.app.output.end(End::default());
                if self.encoder.is_some() {
                    // The upstream answered before the request ended: it will not read more.
                    self.app
                        .input
                        .reset(Reset::new(ReasonKind::Refused, "the response has ended"));
                }
                // One request per connection: it closes now.
                let _ = self.net.output.end(End::default());
                self.net
                    .input
                    .reset(Reset::new(ReasonKind::Refused, "the response is complete"));
                Step::Over
            }
        }
    }
}

impl Future for Exchange {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let exchange = self.get_mut();
        loop {
            let request = exchange.poll_request(cx);
            if let Step::Over = request {
                return Poll::Ready(());
            }
            let response = exchange.poll_response(cx);
            match (request, response) {
                (_, Step::Over) => return Poll::Ready(()),
                (Step::Idle, Step::Idle) => return Poll::Pending,
                _ => {}
            }
        }
    }
}

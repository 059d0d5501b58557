//! An HTTP/1.1 connection: the decoder and encoder driven by the network stream's frames and
//! the request streams' replies.
//!
//! Requests are read ahead (pipelined) up to `max-pipelined-requests`; each gets its stream
//! to the application as soon as its head is read, and responses are written strictly in
//! request order. Input credit is returned to the network only as buffered bytes are
//! decoded and passed on, so a connection never holds more than one buffer of input; output
//! credit given to the front response mirrors the network's, so it never holds more than the
//! network accepts.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use binding_api::binding::Worker;
use binding_api::bytes_queue::ByteQueue;
use binding_api::ext::http::Header;
use binding_api::frame::{Begin, Data, End, Frame, Reason, ReasonKind, Window};
use binding_api::shutdown::ShutdownWatch;
use binding_api::stream::{Reader, Writer, WriterEvent};
use binding_api::timer::Timer;
use bytes::BytesMut;
use tokio::time::Instant;

use crate::dispatch::{Dispatch, Shared};
use crate::h1::chunk_memo::ChunkMemo;
use crate::h1::decode::{DecodeError, Event, RequestDecoder};
use crate::h1::encode::{self, ResponseEncoder};
use crate::metrics::RequestMeter;
use crate::net::Net;
use crate::request::RequestHead;

/// Why the connection handed over to HTTP/2.
pub(crate) struct Upgrade {
    /// The request that asked for it, answered on stream 1.
    pub head: Box<RequestHead>,
    /// Bytes the client sent after it.
    pub rest: BytesMut,
}

/// A request in the queue, in order.
struct Exchange {
    head_request: bool,
    minor: u8,
    keep_alive: bool,
    /// The request body was read to its end (or dropped).
    body_done: bool,
    kind: Kind,
}

enum Kind {
    /// The binding answers; `written` once its bytes are in the output buffer.
    Local {
        status: u16,
        headers: Vec<Header>,
        close: bool,
    },
    App(Box<AppExchange>),
}

struct AppExchange {
    /// The request, to the application.
    output: Writer,
    /// The response, from the application.
    input: Reader,
    cors: Vec<Header>,
    /// The application refused the request body: the rest of it is dropped.
    discard: bool,
    encoder: Option<ResponseEncoder>,
    /// Credit granted to the reply and not yet spent by frames received.
    inflight: u64,
    done: bool,
    /// Records the request as the exchange drops.
    meter: Option<Box<RequestMeter>>,
}

/// Credit left with the front response below which the network's windows wake the connection
/// to grant it more (above it, the response's own next frame does).
const REGRANT_BELOW: u64 = 32 * 1024;

/// Output waiting for network credit past which no more requests are read: a client that
/// pipelines requests and reads no responses stops being read.
const MAX_PENDING_OUTPUT: usize = 16 * 1024;

/// What woke the connection.
enum Wake {
    Net(Option<Frame>),
    Reply(Option<Frame>),
    NetEvent(WriterEvent),
    BodyCredit,
    Timeout,
    Retired,
}

/// The connection's state.
pub(crate) struct H1 {
    shared: Arc<Shared>,
    worker: Worker,
    net: Net,
    inbuf: BytesMut,
    /// Output not yet given to the network: response heads and chunk framing in its tail,
    /// body payloads as the application sent them.
    outbuf: ByteQueue,
    /// The worker's chunks, shared with its other connections.
    chunks: Rc<ChunkMemo>,
    decoder: RequestDecoder,
    queue: VecDeque<Exchange>,
    input_done: bool,
    /// No request after the queued ones will be read: close when they are answered.
    closing: bool,
    /// The binding's retirement by a reload: then, `closing`.
    retired: ShutdownWatch,
    /// Since when the connection waits for a request head with nothing queued.
    idle_since: Instant,
    /// The decoder last stopped for want of input (not of body credit).
    starved: bool,
    /// `:scheme` of requests on this connection.
    scheme: &'static str,
}

/// An HTTP/1.1 connection as a future, until it closes or upgrades.
pub(crate) struct Run {
    /// `None` once finished.
    h1: Option<H1>,
    /// Writing what is left before closing (`Some(None)`) or upgrading.
    draining: Option<Option<Upgrade>>,
    /// The request head timer, armed while the connection waits for a head.
    timer: Timer,
}

impl Future for Run {
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let run = self.get_mut();
        let Some(h1) = run.h1.as_mut() else {
            return Poll::Ready(Outcome::Closed);
        };
        loop {
            if let Some(then) = &mut run.draining {
                let drained = ready!(h1.poll_drain(cx));
                let upgrade = then.take();
                let Some(h1) = run.h1.take() else {
                    return Poll::Ready(Outcome::Closed);
                };
                return Poll::Ready(match upgrade {
                    Some(upgrade) if drained => Outcome::Upgrade(Box::new(Upgraded {
                        shared: h1.shared,
                        worker: h1.worker,
                        net: h1.net,
                        upgrade,
                        scheme: h1.scheme,
                    })),
                    Some(_) => Outcome::Closed,
                    None => {
                        if drained {
                            let mut net = h1.net;
                            let _ = net.output.end(End::default());
                        }
                        Outcome::Closed
                    }
                });
            }
            match h1.advance() {
                Ok(None) => {}
                Ok(Some(upgrade)) => {
                    run.draining = Some(Some(upgrade));
                    continue;
                }
                Err(()) => return Poll::Ready(Outcome::Closed),
            }
            if h1.finished() {
                run.draining = Some(None);
                continue;
            }
            let timer_on = h1.queue.is_empty() && h1.decoder.wants_head() && !h1.input_done;
            let head_deadline =
                timer_on.then(|| h1.idle_since + h1.shared.options.limits.request_header_timeout);
            if head_deadline.is_none() {
                // A stream being answered holds no timer.
                run.timer.clear();
            }
            let wake = ready!(h1.poll_wake(cx, head_deadline, &mut run.timer));
            if let Some(outcome) = h1.on_wake(wake) {
                return Poll::Ready(outcome);
            }
        }
    }
}

/// How the connection finished.
pub(crate) enum Outcome {
    /// Closed; nothing more to do.
    Closed,
    /// `Upgrade: h2c` was accepted and 101 written: continue in HTTP/2.
    Upgrade(Box<Upgraded>),
}

/// What an upgraded connection continues with in HTTP/2.
pub(crate) struct Upgraded {
    pub shared: Arc<Shared>,
    pub worker: Worker,
    pub net: Net,
    pub upgrade: Upgrade,
    pub scheme: &'static str,
}

impl H1 {
    pub(crate) fn new(
        shared: Arc<Shared>,
        worker: Worker,
        net: Net,
        inbuf: BytesMut,
        scheme: &'static str,
    ) -> Self {
        let limits = shared.options.limits.head;
        let retired = shared.retirement.watch(&worker);
        H1 {
            shared,
            chunks: worker.local(),
            worker,
            net,
            inbuf,
            outbuf: ByteQueue::default(),
            decoder: RequestDecoder::new(limits),
            queue: VecDeque::new(),
            input_done: false,
            closing: false,
            retired,
            idle_since: Instant::now(),
            starved: false,
            scheme,
        }
    }

    /// Runs the connection until it closes or upgrades.
    pub(crate) fn run(self) -> Run {
        Run {
            h1: Some(self),
            draining: None,
            timer: Timer::default(),
        }
    }

    /// Decodes and retires answered requests for as long as either frees the other (a queue
    /// that drains may let buffered requests in without any new input). `Err` when the
    /// connection closes; `Ok(Some)` when it upgrades.
    fn advance(&mut self) -> Result<Option<Upgrade>, ()> {
        loop {
            if let Some(upgrade) = self.decode()? {
                self.flush_out();
                return Ok(Some(upgrade));
            }
            if self.input_done && self.starved {
                self.cut_body();
            }
            let retired = self.progress();
            self.flush_out();
            if !retired || self.inbuf.is_empty() {
                return Ok(None);
            }
        }
    }

    /// What the connection waits for: network input, the network's windows (only when they
    /// are needed) or reset, the front response's next frame, body credit, the head timer.
    fn poll_wake(
        &mut self,
        cx: &mut Context<'_>,
        head_deadline: Option<Instant>,
        timer: &mut Timer,
    ) -> Poll<Wake> {
        if !self.input_done
            && let Poll::Ready(frame) = self.net.input.poll_frame(cx)
        {
            return Poll::Ready(Wake::Net(frame));
        }
        if self.wants_windows() {
            if let Poll::Ready(event) = self.net.output.poll_event(cx) {
                return Poll::Ready(Wake::NetEvent(event));
            }
        } else if let Poll::Ready(reset) = self.net.output.poll_reset(cx) {
            return Poll::Ready(Wake::NetEvent(WriterEvent::Reset(reset)));
        }
        if let Some(Exchange {
            kind: Kind::App(app),
            ..
        }) = self.queue.front_mut()
            && !app.done
            && let Poll::Ready(frame) = app.input.poll_frame(cx)
        {
            return Poll::Ready(Wake::Reply(frame));
        }
        if let Some(Exchange {
            kind: Kind::App(app),
            body_done: false,
            ..
        }) = self.queue.back_mut()
            && !app.discard
            && !self.inbuf.is_empty()
            && app.output.poll_event(cx).is_ready()
        {
            return Poll::Ready(Wake::BodyCredit);
        }
        if let Some(at) = head_deadline
            && timer.poll_at(at, cx).is_ready()
        {
            return Poll::Ready(Wake::Timeout);
        }
        if !self.closing && self.retired.poll(cx).is_ready() {
            return Poll::Ready(Wake::Retired);
        }
        Poll::Pending
    }

    /// Acts on what woke the connection; `Some` when it is over.
    fn on_wake(&mut self, wake: Wake) -> Option<Outcome> {
        match wake {
            Wake::Net(Some(Frame::Data(data))) => self.inbuf.extend_from_slice(&data.payload),
            Wake::Net(Some(Frame::Begin(_) | Frame::Flush(_))) => {}
            Wake::Net(Some(Frame::End(_))) => self.input_done = true,
            Wake::Net(Some(Frame::Abort(_)) | None) => return Some(Outcome::Closed),
            Wake::NetEvent(WriterEvent::Reset(_)) => return Some(Outcome::Closed),
            Wake::NetEvent(_) => {}
            Wake::BodyCredit => {
                if let Some(Exchange {
                    kind: Kind::App(app),
                    ..
                }) = self.queue.back_mut()
                    && app.output.is_closed()
                {
                    app.discard = true;
                }
            }
            Wake::Reply(frame) => {
                if self.on_reply(frame).is_err() {
                    return Some(Outcome::Closed);
                }
            }
            Wake::Timeout => return Some(self.head_timeout()),
            Wake::Retired => {
                tracing::debug!(binding = %self.shared.name, "retired by a reload: closing once the requests it carries are answered");
                self.closing = true;
            }
        }
        None
    }

    /// Writes what is buffered as the network's credit allows; `Ready(false)` when the
    /// network went away.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        while !self.outbuf.is_empty() {
            match self.net.output.poll_ready(cx, 1) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => return Poll::Ready(false),
                Poll::Ready(Ok(())) => self.flush_out(),
            }
        }
        Poll::Ready(true)
    }

    /// The head did not complete in time. A client that began one is answered `408` with
    /// `connection: close` (RFC 9110 §15.5.9) as far as the network's credit takes it now; an
    /// idle connection is closed without a word, as a client may be about to reuse it.
    fn head_timeout(&mut self) -> Outcome {
        let begun = !self.inbuf.is_empty();
        tracing::debug!(binding = %self.shared.name, begun, "request head timeout: closing");
        if begun {
            encode::simple(408, &[], true, self.outbuf.tail());
            self.flush_out();
        }
        let _ = self.net.output.end(End::default());
        Outcome::Closed
    }

    /// Whether the network's windows are needed now: to send buffered output, or to grant the
    /// front response more credit once it has little left. Otherwise only a reset wakes the
    /// connection, and the response's next frame brings the credit that came back meanwhile.
    fn wants_windows(&self) -> bool {
        !self.outbuf.is_empty()
            || matches!(
                self.queue.front(),
                Some(Exchange { kind: Kind::App(app), .. })
                    if app.encoder.is_some() && !app.done && app.inflight < REGRANT_BELOW
            )
    }

    /// Whether everything is answered and nothing more will be read.
    fn finished(&self) -> bool {
        self.queue.is_empty() && (self.closing || self.input_done || self.decoder.is_stopped())
    }

    /// Decodes what the input buffer holds, as far as queue room and body credit allow.
    fn decode(&mut self) -> Result<Option<Upgrade>, ()> {
        let before = self.inbuf.len();
        let result = self.decode_events();
        let consumed = before - self.inbuf.len();
        if consumed > 0 {
            let credit = u32::try_from(consumed).unwrap_or(u32::MAX);
            if self
                .net
                .input
                .window(Window { credit, padding: 0 })
                .is_err()
            {
                return Err(());
            }
        }
        Ok(result)
    }

    fn decode_events(&mut self) -> Option<Upgrade> {
        let max_queue = self.shared.options.limits.max_pipelined_requests;
        loop {
            if self.decoder.wants_head()
                && (self.closing
                    || self.queue.len() >= max_queue
                    || self.outbuf.len() >= MAX_PENDING_OUTPUT)
            {
                return None;
            }
            let room = match self.queue.back() {
                Some(Exchange {
                    kind: Kind::App(app),
                    body_done: false,
                    ..
                }) if !app.discard => {
                    let credit = app.output.credit();
                    credit.saturating_sub(u64::from(app.output.padding())) as usize
                }
                _ => usize::MAX,
            };
            match self.decoder.decode(&mut self.inbuf, room) {
                Ok(None) => {
                    self.starved = room > 0 || self.inbuf.is_empty();
                    return None;
                }
                Ok(Some(Event::Head(head))) => {
                    if let Some(upgrade) = self.on_head(head) {
                        return Some(upgrade);
                    }
                }
                Ok(Some(Event::Body(bytes))) => {
                    if let Some(Exchange {
                        kind: Kind::App(app),
                        ..
                    }) = self.queue.back_mut()
                        && !app.discard
                    {
                        if let Some(meter) = &mut app.meter {
                            meter.request_body(bytes.len());
                        }
                        if app.output.data(Data::new(bytes)).is_err() {
                            app.discard = true;
                        }
                    }
                }
                Ok(Some(Event::End)) => {
                    if let Some(ex) = self.queue.back_mut() {
                        ex.body_done = true;
                        if let Kind::App(app) = &mut ex.kind {
                            let _ = app.output.end(End::default());
                        }
                    }
                }
                Err(err) => {
                    tracing::debug!(binding = %self.shared.name, %err, "bad request");
                    self.on_error(&err);
                    return None;
                }
            }
        }
    }

    /// The client stopped sending in the middle of a request body: the request is aborted
    /// and nothing more is read.
    fn cut_body(&mut self) {
        if let Some(ex) = self.queue.back_mut()
            && !ex.body_done
        {
            ex.body_done = true;
            if let Kind::App(app) = &mut ex.kind {
                let _ = app.output.abort(Reason::new(
                    ReasonKind::ConnectionLost,
                    "the client closed in the middle of the request body",
                ));
            }
        }
        self.decoder.stop();
        self.closing = true;
    }

    fn on_error(&mut self, err: &DecodeError) {
        // A request whose body was being read is cut short: abort its stream.
        if let Some(Exchange {
            kind: Kind::App(app),
            body_done: false,
            ..
        }) = self.queue.back_mut()
        {
            let _ = app
                .output
                .abort(Reason::new(ReasonKind::ProtocolViolation, err.to_string()));
        }
        self.closing = true;
        self.queue.push_back(Exchange {
            head_request: false,
            minor: 1,
            keep_alive: false,
            body_done: true,
            kind: Kind::Local {
                status: err.status(),
                headers: Vec::new(),
                close: true,
            },
        });
    }

    fn on_head(&mut self, mut head: Box<RequestHead>) -> Option<Upgrade> {
        head.scheme = self.scheme.to_owned();
        let minor = head.h1_minor.unwrap_or(1);
        if let Some(settings) = &head.h2c_settings
            && !head.has_body
            && self.queue.is_empty()
            && self.shared.options.speaks(crate::config::Version::H2)
        {
            self.decoder.stop();
            if let Err(reason) = settings {
                // An upgrade that cannot be done as asked is refused, never half done.
                let err = DecodeError::Malformed((*reason).to_owned());
                tracing::debug!(binding = %self.shared.name, %err, "bad request");
                self.on_error(&err);
                return None;
            }
            self.outbuf.tail().extend_from_slice(
                b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: h2c\r\n\r\n",
            );
            return Some(Upgrade {
                head,
                rest: self.inbuf.split(),
            });
        }
        if head.expect_continue && self.queue.is_empty() {
            self.outbuf
                .tail()
                .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        if !head.keep_alive {
            self.closing = true;
        }
        let kind = match self.shared.dispatch(&head, &self.worker) {
            Dispatch::Local { status, headers } => Kind::Local {
                status,
                headers,
                close: !head.keep_alive,
            },
            Dispatch::App {
                stream,
                cors,
                meter,
            } => Kind::App(Box::new(AppExchange {
                output: stream.output,
                input: stream.input,
                cors,
                discard: false,
                encoder: None,
                inflight: 0,
                done: false,
                meter,
            })),
        };
        if self.queue.capacity() == 0 {
            // Room for the one request most connections carry at a time (an event stream for
            // hours), not the four a first push makes; a client that pipelines grows it.
            self.queue.reserve_exact(1);
        }
        self.queue.push_back(Exchange {
            head_request: head.method == "HEAD",
            minor,
            keep_alive: head.keep_alive,
            body_done: false,
            kind,
        });
        None
    }

    /// Writes local answers at the front and retires finished exchanges; returns whether
    /// any was retired.
    fn progress(&mut self) -> bool {
        let mut retired = false;
        while let Some(front) = self.queue.front_mut() {
            let answered = match &mut front.kind {
                Kind::Local {
                    status,
                    headers,
                    close,
                } => {
                    if *status != 0 {
                        encode::simple(*status, headers, *close, self.outbuf.tail());
                        *status = 0;
                    }
                    true
                }
                Kind::App(app) => app.done,
            };
            if !answered {
                self.grant_reply();
                return retired;
            }
            if !front.body_done {
                // Answered before its body was read: the connection cannot be reused.
                if matches!(front.kind, Kind::Local { .. }) && self.queue.len() == 1 {
                    // Keep reading (and dropping) the body of a request answered locally.
                    return retired;
                }
                self.decoder.stop();
                self.closing = true;
            }
            self.queue.pop_front();
            retired = true;
            if self.queue.is_empty() {
                self.idle_since = Instant::now();
            }
        }
        retired
    }
}

/// Starts a connection's output: its reply direction begins.
pub(crate) fn begin_output(output: &mut Writer) -> bool {
    output.begin(Begin::default()).is_ok()
}

mod output;

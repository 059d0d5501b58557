//! `kind: server`: one future per request stream (a part of its connection's task), gluing the
//! HTTP stream, the application stream, the encoder and the timers.

use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;

use binding_api::binding::{Binding, Worker};
use binding_api::bytes_queue::ByteQueue;
use binding_api::ext::http::{Header, HttpBeginEx};
use binding_api::ext::{BeginEx, DataEx, EndEx, FlushEx};
use binding_api::frame::{Begin, Data, End, Flush, Frame, Reason, ReasonKind, Reset, Window};
use binding_api::route::{Pattern, Route, Routes};
use binding_api::stream::{self, Acceptor, Reader, SendError, Writer};
use bytes::Bytes;
use tokio::time::{Instant as TokioInstant, Sleep};

use crate::config::SseOptions;
use crate::encoder::{self, Encoder, Head};
use crate::event_memo::{self, Event, EventMemo};
use crate::pacing::{Due, Pacer};
use crate::request::{self, Rejection};

/// The most bytes encoded at a time, before they are written.
const ENCODE_CHUNK: usize = 16 * 1024;

/// The most request-body bytes read (and discarded) after a refusal before giving up.
const MAX_DISCARD: u64 = 64 * 1024;

/// A running sse server.
pub struct SseServer {
    name: String,
    options: Arc<SseOptions>,
    routes: Arc<Routes<Pattern>>,
}

impl SseServer {
    /// A server with `options` that sends subscriptions by `routes` (whose conditions are
    /// path patterns, matched against the path without its query string), then to `exit`.
    pub fn new(
        name: impl Into<String>,
        options: SseOptions,
        routes: Vec<Route<Pattern>>,
        exit: Option<Arc<dyn Binding>>,
    ) -> Self {
        SseServer {
            name: name.into(),
            options: Arc::new(options),
            routes: Arc::new(Routes::new(routes, exit)),
        }
    }
}

impl Binding for SseServer {
    fn name(&self) -> &str {
        &self.name
    }

    fn new_stream(&self, stream: Acceptor, worker: &Worker) {
        worker.spawn(serve(
            stream,
            self.options.clone(),
            self.routes.clone(),
            worker.clone(),
        ));
    }
}

pub use binding_api::ext::http::refusal_status;

/// The response headers of an event stream.
pub fn stream_headers(timestamps: bool) -> HttpBeginEx {
    let content_type = if timestamps {
        "text/event-stream;ext=timestamp"
    } else {
        "text/event-stream"
    };
    HttpBeginEx::response(
        200,
        [
            Header::new("content-type", content_type),
            Header::new("cache-control", "no-cache"),
            Header::new("x-accel-buffering", "no"),
        ],
    )
}

/// Serves one request stream from an http server.
async fn serve(
    net: Acceptor,
    options: Arc<SseOptions>,
    routes: Arc<Routes<Pattern>>,
    worker: Worker,
) {
    let Acceptor {
        begin,
        initial: mut net_in,
        reply: mut net_out,
    } = net;
    let BeginEx::Http(request) = begin.ext else {
        net_in.reset(Reset::new(ReasonKind::Refused, "sse takes http streams"));
        let _ = net_out.abort(Reason::new(ReasonKind::Refused, "sse takes http streams"));
        return;
    };
    let subscription = request::subscription(&request);
    // The request's headers are not kept for the life of the subscription.
    drop(request);
    let subscription = match subscription {
        Ok(subscription) => subscription,
        Err(rejection) => return refuse(&rejection, net_in, net_out).await,
    };
    let Some(exit) = routes
        .resolve(|pattern| pattern.matches(&subscription.path))
        .map(|resolved| resolved.exit())
    else {
        tracing::debug!(path = %subscription.path, "sse: no route");
        return refuse(&Rejection::NOT_FOUND, net_in, net_out).await;
    };
    let timestamps = subscription.timestamp;
    let (app, acceptor) = stream::open(Begin {
        ext: BeginEx::Sse(subscription),
    });
    exit.new_stream(acceptor, &worker);
    let mut streams = Streams {
        net_in,
        net_out,
        net_in_done: false,
        app_out: app.initial,
        app_in: app.reply,
    };
    match streams.await_app_begin().await {
        AppStart::Begun => {}
        AppStart::Refused(reason) => {
            tracing::debug!(%reason, "sse: the application refused the subscription");
            let status = refusal_status(reason.kind);
            let rejection = Rejection {
                status,
                reason: "refused by the application",
            };
            return refuse(&rejection, streams.net_in, streams.net_out).await;
        }
        AppStart::ClientGone(reason) => return client_gone(&mut streams, reason),
    }
    if streams
        .net_out
        .begin(Begin {
            ext: BeginEx::Http(stream_headers(timestamps)),
        })
        .is_err()
        || streams
            .app_in
            .window(Window {
                credit: options.buffer,
                padding: 0,
            })
            .is_err()
    {
        let reason = Reason::new(ReasonKind::ConnectionLost, "client gone");
        return client_gone(&mut streams, reason);
    }
    // In the tail: a subscription that never gets an event never allocates the queue of
    // shared slices.
    let mut out = ByteQueue::default();
    out.tail()
        .extend_from_slice(&encoder::preamble(options.retry, options.initial_comment));
    let mut session = Session {
        encoder: Encoder::new(timestamps),
        events: worker.local(),
        out,
        current: None,
        dropping: false,
        flush_pending: false,
        ending: false,
        pacer: Pacer::new(now(), options.heartbeat, options.stall_timeout),
    };
    session.run(&mut streams, &worker).await;
}

fn now() -> std::time::Instant {
    TokioInstant::now().into_std()
}

/// Answers with a status and no body, then reads the rest of the request (if any) so the
/// connection stays usable.
async fn refuse(rejection: &Rejection, mut net_in: Reader, mut net_out: Writer) {
    tracing::debug!(
        status = rejection.status,
        reason = rejection.reason,
        "sse: refused"
    );
    let begun = net_out.begin(Begin {
        ext: BeginEx::Http(rejection.response()),
    });
    if begun.is_err() || net_out.end(End::default()).is_err() {
        return;
    }
    if net_in
        .window(Window {
            credit: 16 * 1024,
            padding: 0,
        })
        .is_err()
    {
        return;
    }
    let mut discarded = 0u64;
    while let Some(frame) = net_in.frame().await {
        match frame {
            Frame::Data(data) => {
                discarded += data.payload.len() as u64;
                if discarded > MAX_DISCARD {
                    net_in.reset(Reset::new(ReasonKind::Refused, "request body not read"));
                    return;
                }
                net_in.replenish();
            }
            Frame::End(_) | Frame::Abort(_) => return,
            Frame::Begin(_) | Frame::Flush(_) => {}
        }
    }
}

/// The four directions of one subscription.
struct Streams {
    /// The request (initial of the http stream).
    net_in: Reader,
    /// The response.
    net_out: Writer,
    /// Whether the request direction is over (it ends right after a GET's headers).
    net_in_done: bool,
    /// Towards the application.
    app_out: Writer,
    /// The application's events.
    app_in: Reader,
}

enum AppStart {
    Begun,
    Refused(Reason),
    ClientGone(Reason),
}

impl Streams {
    /// Waits for the application's reply begin, its refusal, or the client going away.
    async fn await_app_begin(&mut self) -> AppStart {
        tokio::select! {
            biased;
            frame = self.app_in.frame() => match frame {
                Some(Frame::Begin(_)) => AppStart::Begun,
                Some(Frame::Abort(abort)) => AppStart::Refused(abort.reason),
                _ => AppStart::Refused(Reason::new(ReasonKind::Refused, "no reply")),
            },
            reset = self.app_out.reset_by_reader() => AppStart::Refused(reset.reason),
            gone = request_aborted(&mut self.net_in, &mut self.net_in_done) => AppStart::ClientGone(gone),
            NetOut::Reset(gone) = response_event(&mut self.net_out, false) => AppStart::ClientGone(gone),
        }
    }
}

/// Waits until the request is aborted; a clean end of the request (right after a GET's
/// headers) is noted and waiting goes on.
async fn request_aborted(net_in: &mut Reader, net_in_done: &mut bool) -> Reason {
    loop {
        if *net_in_done {
            return std::future::pending().await;
        }
        match net_in.frame().await {
            Some(Frame::Abort(abort)) => return abort.reason,
            Some(Frame::End(_)) | None => *net_in_done = true,
            Some(_) => {}
        }
    }
}

/// What the response direction says.
enum NetOut {
    /// Credit for at least one byte (only when asked for).
    Credit,
    /// The client reset the response: it is gone.
    Reset(Reason),
}

/// Waits until the response is reset or, when `want_credit`, has credit for a byte.
async fn response_event(net_out: &mut Writer, want_credit: bool) -> NetOut {
    std::future::poll_fn(|cx| {
        // Windows wake this task only while it has bytes waiting for them.
        if let Poll::Ready(reset) = net_out.poll_reset(cx) {
            return Poll::Ready(NetOut::Reset(reset.reason));
        }
        if want_credit && let Poll::Ready(ready) = net_out.poll_ready(cx, 1) {
            return Poll::Ready(match ready {
                Ok(()) => NetOut::Credit,
                Err(SendError::Reset(reset)) => NetOut::Reset(reset.reason),
                Err(err) => NetOut::Reset(Reason::new(ReasonKind::ConnectionLost, err.to_string())),
            });
        }
        Poll::Pending
    })
    .await
}

/// One data frame of an event, being encoded.
struct Fragment {
    rest: Bytes,
    last: bool,
}

/// The state of a started subscription.
struct Session {
    encoder: Encoder,
    /// The worker's encoded events, shared with its other subscriptions.
    events: Rc<EventMemo>,
    /// Encoded bytes waiting for the response's credit: events shared with other
    /// subscriptions as they are, framing and pieces of large events in its tail.
    out: ByteQueue,
    current: Option<Fragment>,
    /// Skipping the rest of an event the encoder refused.
    dropping: bool,
    flush_pending: bool,
    ending: bool,
    pacer: Pacer,
}

/// What woke the session.
enum Wake {
    App(Option<Frame>),
    ClientGone(Reason),
    Timer,
    Shutdown,
    Credit,
}

impl Session {
    async fn run(&mut self, streams: &mut Streams, worker: &Worker) {
        // Registered once for the session, not on every wake.
        let mut shutdown = std::pin::pin!(worker.shutdown().cancelled());
        let mut timer = None;
        loop {
            if let Some(done) = self.progress(streams) {
                return done;
            }
            let idle = self.is_idle();
            let deadline = self.pacer.deadline(idle).map(TokioInstant::from_std);
            let wants_app = self.current.is_none()
                && self.out.is_empty()
                && !self.flush_pending
                && !self.ending;
            let Streams {
                net_in,
                net_out,
                net_in_done,
                app_in,
                ..
            } = streams;
            let wake = tokio::select! {
                biased;
                _ = &mut shutdown => Wake::Shutdown,
                gone = request_aborted(net_in, net_in_done) => Wake::ClientGone(gone),
                event = response_event(net_out, !self.out.is_empty() || self.flush_pending) => match event {
                    NetOut::Credit => Wake::Credit,
                    NetOut::Reset(gone) => Wake::ClientGone(gone),
                },
                _ = wait_timer(&mut timer, deadline) => Wake::Timer,
                frame = app_in.frame(), if wants_app => Wake::App(frame),
            };
            match wake {
                Wake::Credit => {}
                Wake::ClientGone(reason) => return client_gone(streams, reason),
                Wake::Shutdown => return finish(streams, ReasonKind::Shutdown, "shutting down"),
                Wake::Timer => match self.pacer.due(now(), self.is_idle()) {
                    Some(Due::Heartbeat) => self.out.tail().extend_from_slice(encoder::HEARTBEAT),
                    Some(Due::Stalled) => {
                        tracing::debug!("sse: client stalled; ending the response");
                        return finish(streams, ReasonKind::Timeout, "the client stalled");
                    }
                    None => {}
                },
                Wake::App(frame) => {
                    if let Err(reason) = self.on_app(frame, &mut streams.app_in) {
                        let _ = streams.net_out.abort(reason.clone());
                        let _ = streams.app_out.abort(reason);
                        return;
                    }
                }
            }
        }
    }

    /// Between events, with nothing waiting: when a heartbeat may be written.
    fn is_idle(&self) -> bool {
        !self.encoder.in_event()
            && self.out.is_empty()
            && self.current.is_none()
            && !self.flush_pending
            && !self.ending
    }

    /// Writes what credit allows, encodes more, sends a pending flush or end. Returns
    /// `Some(())` when the subscription is over.
    fn progress(&mut self, streams: &mut Streams) -> Option<()> {
        loop {
            // Encode before writing, so an event's head and data leave as one frame.
            if let Some(fragment) = &mut self.current {
                let before = self.out.len();
                if before < ENCODE_CHUNK {
                    self.encoder
                        .data(&mut fragment.rest, self.out.tail(), ENCODE_CHUNK - before);
                    if fragment.rest.is_empty() {
                        if fragment.last {
                            self.encoder.finish_event(self.out.tail());
                        }
                        self.current = None;
                        streams.app_in.replenish();
                        continue;
                    }
                    if self.out.len() > before {
                        continue;
                    }
                }
            }
            if !self.out.is_empty() {
                let net_out = &mut streams.net_out;
                let room = net_out
                    .credit()
                    .saturating_sub(u64::from(net_out.padding()));
                let Some(chunk) = self.out.take(usize::try_from(room).unwrap_or(usize::MAX)) else {
                    self.pacer.blocked(now());
                    return None;
                };
                if net_out.data(Data::new(chunk)).is_err() {
                    return None;
                }
                self.pacer.wrote(now());
                continue;
            }
            if self.flush_pending {
                if streams.net_out.cost(0) > streams.net_out.credit() {
                    self.pacer.blocked(now());
                    return None;
                }
                let _ = streams.net_out.flush(Flush::default());
                self.flush_pending = false;
                self.pacer.wrote(now());
                streams.app_in.replenish();
                continue;
            }
            if self.ending {
                let _ = streams.net_out.end(End::default());
                let _ = streams.app_out.end(End::default());
                return Some(());
            }
            return None;
        }
    }

    /// Takes one frame of the application's reply.
    fn on_app(&mut self, frame: Option<Frame>, app_in: &mut Reader) -> Result<(), Reason> {
        match frame {
            Some(Frame::Data(data)) => {
                self.on_data(data);
                if self.current.is_none() {
                    app_in.replenish();
                }
                Ok(())
            }
            Some(Frame::Flush(flush)) => {
                if let FlushEx::Sse(ex) = flush.ext
                    && let Some(id) = ex.id
                {
                    self.write_id(&id);
                }
                self.flush_pending = true;
                Ok(())
            }
            Some(Frame::End(end)) => {
                if let EndEx::Sse(ex) = end.ext
                    && let Some(id) = ex.id
                {
                    self.write_id(&id);
                }
                self.ending = true;
                Ok(())
            }
            Some(Frame::Begin(_)) => Ok(()),
            Some(Frame::Abort(abort)) => Err(abort.reason),
            None => Err(Reason::new(
                ReasonKind::Dropped,
                "the application went away",
            )),
        }
    }

    fn on_data(&mut self, data: Data) {
        let ex = match data.ext {
            DataEx::Sse(ex) => Some(ex),
            _ => None,
        };
        let continues = ex.as_ref().is_some_and(|ex| ex.continues);
        if self.dropping {
            self.dropping = continues;
            return;
        }
        if !self.encoder.in_event() {
            let head = ex.as_ref().map_or_else(Head::default, |ex| Head {
                id: ex.id.as_deref(),
                event_type: ex.event_type.as_deref(),
                timestamp: ex.timestamp,
            });
            if !continues && event_memo::shareable(&data.payload) {
                // A whole event: built once for every subscription sent the same one.
                let event = Event {
                    head,
                    shared_id: ex.as_ref().and_then(|ex| ex.id.as_ref()),
                    payload: &data.payload,
                    timestamps: self.encoder.timestamps(),
                };
                match self.events.encoded(&event) {
                    Ok(bytes) => self.out.push(bytes),
                    Err(refused) => tracing::warn!(%refused, "sse: event dropped"),
                }
                return;
            }
            if let Err(refused) = self.encoder.start_event(head, self.out.tail()) {
                tracing::warn!(%refused, "sse: event dropped");
                self.dropping = continues;
                return;
            }
        }
        self.current = Some(Fragment {
            rest: data.payload,
            last: !continues,
        });
    }

    /// An id-only block, between events only (inside one it would join the event).
    fn write_id(&mut self, id: &str) {
        if self.encoder.in_event() {
            tracing::warn!("sse: id ignored inside an unfinished event");
        } else if let Err(refused) = encoder::id_only(id, self.out.tail()) {
            tracing::warn!(%refused, "sse: id ignored");
        }
    }
}

/// Waits for `deadline` on the session's one timer, moved only when the deadline moves.
async fn wait_timer(timer: &mut Option<Pin<Box<Sleep>>>, deadline: Option<TokioInstant>) {
    let Some(at) = deadline else {
        return std::future::pending().await;
    };
    let sleep = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
    if sleep.deadline() != at {
        sleep.as_mut().reset(at);
    }
    sleep.as_mut().await;
}

/// The client went away: tell the application both ways.
fn client_gone(streams: &mut Streams, reason: Reason) {
    tracing::debug!(%reason, "sse: client gone");
    let _ = streams.app_out.abort(reason.clone());
    streams.app_in.reset(Reset {
        reason,
        ext: Default::default(),
    });
    let _ = streams
        .net_out
        .abort(Reason::new(ReasonKind::ConnectionLost, "client gone"));
}

/// Ends the response cleanly (the client resumes by id) and stops the application.
fn finish(streams: &mut Streams, kind: ReasonKind, detail: &str) {
    let _ = streams.net_out.end(End::default());
    let _ = streams.app_out.abort(Reason::new(kind, detail));
    streams.app_in.reset(Reset::new(kind, detail));
}

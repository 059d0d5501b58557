//! One subscription as a state machine ([`Subscription`], polled as a future): waiting for
//! the application to answer, then relaying its events to the response through the
//! encoder, with heartbeats and the stall timer; or answering a refusal and reading the rest of
//! the request ([`Refusal`]).
//!
//! Each poll looks at what the subscription waits for in its state; the shutdown signal and
//! the pacing timer are registered once and moved only when the deadline moves.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::SystemTime;

use binding_api::binding::Worker;
use binding_api::bytes_queue::ByteQueue;
use binding_api::ext::{BeginEx, DataEx, EndEx, FlushEx, ResetEx};
use binding_api::frame::{Begin, Data, End, Flush, Frame, Reason, ReasonKind, Reset, Window};
use binding_api::guard::Lease;
use binding_api::shutdown::ShutdownWatch;
use binding_api::stream::{Reader, SendError, Writer};
use binding_api::timer::Timer;
use bytes::Bytes;
use tokio::time::Instant as TokioInstant;

use crate::challenge::{self, Authorized, GuardDue};
use crate::config::SseOptions;
use crate::encoder::{self, Encoder, Head};
use crate::event_memo::{self, Event, EventMemo};
use crate::metrics::{EndReason, Meter};
use crate::pacing::{Due, Pacer};
use crate::request::Rejection;
use crate::server::{refusal_status, stream_headers};

/// The most bytes encoded at a time, before they are written.
const ENCODE_CHUNK: usize = 16 * 1024;

/// The most request-body bytes read (and discarded) after a refusal before giving up.
const MAX_DISCARD: u64 = 64 * 1024;

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
    /// What the binding records of the subscription.
    meter: Meter,
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

impl Session {
    /// Between events, with nothing waiting: when a heartbeat may be written.
    fn is_idle(&self) -> bool {
        self.is_between_events() && self.out.is_empty() && !self.flush_pending
    }

    /// Between events, so another may be written (a challenge), and not ending.
    fn is_between_events(&self) -> bool {
        !self.encoder.in_event() && self.current.is_none() && !self.ending
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
                let sent = chunk.len();
                if net_out.data(Data::new(chunk)).is_err() {
                    return None;
                }
                streams.meter.sent(sent);
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
                streams.meter.ended(EndReason::Server);
                return Some(());
            }
            return None;
        }
    }

    /// Takes one frame of the application's reply.
    fn on_app(
        &mut self,
        frame: Option<Frame>,
        app_in: &mut Reader,
        meter: &Meter,
    ) -> Result<(), Reason> {
        match frame {
            Some(Frame::Data(data)) => {
                if self.on_data(data) {
                    meter.event();
                }
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

    /// Takes one data frame; whether it completed an event that will be written.
    fn on_data(&mut self, data: Data) -> bool {
        let ex = match data.ext {
            DataEx::Sse(ex) => Some(ex),
            _ => None,
        };
        let continues = ex.as_ref().is_some_and(|ex| ex.continues);
        if self.dropping {
            self.dropping = continues;
            return false;
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
                return match self.events.encoded(&event) {
                    Ok(bytes) => {
                        self.out.push(bytes);
                        true
                    }
                    Err(refused) => {
                        tracing::warn!(%refused, "sse: event dropped");
                        false
                    }
                };
            }
            if let Err(refused) = self.encoder.start_event(head, self.out.tail()) {
                tracing::warn!(%refused, "sse: event dropped");
                self.dropping = continues;
                return false;
            }
        }
        self.current = Some(Fragment {
            rest: data.payload,
            last: !continues,
        });
        !continues
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

/// Where a subscription stands.
enum Phase {
    /// Waiting for the application's reply to begin (or its refusal).
    Starting,
    /// Relaying events.
    Running(Box<Session>),
    /// Refused: reading the rest of the request so the connection stays usable.
    Discarding(u64),
}

/// One subscription, from the application's answer to the end of the response.
pub(crate) struct Subscription {
    streams: Streams,
    phase: Phase,
    options: Arc<SseOptions>,
    timestamps: bool,
    events: Rc<EventMemo>,
    /// The engine's shutdown, registered once.
    shutdown: ShutdownWatch,
    /// The one timer: pacing (heartbeats, stalled clients), the challenge and the expiry.
    timer: Timer,
    /// The sessions a guarded route admitted the stream with: when to challenge the client,
    /// when to end (boxed: a stream that is not guarded pays a pointer).
    authorized: Option<Box<Authorized>>,
}

impl Subscription {
    /// A subscription whose request is `net_in`/`net_out` and whose application stream is
    /// `app_out`/`app_in`.
    pub(crate) fn new(
        net: (Reader, Writer),
        app: (Writer, Reader),
        options: Arc<SseOptions>,
        timestamps: bool,
        worker: &Worker,
    ) -> Self {
        Subscription {
            streams: Streams {
                net_in: net.0,
                net_out: net.1,
                net_in_done: false,
                app_out: app.0,
                app_in: app.1,
                meter: Meter::default(),
            },
            phase: Phase::Starting,
            options,
            timestamps,
            events: worker.local(),
            shutdown: worker.shutdown_watch(),
            timer: Timer::default(),
            authorized: None,
        }
    }

    /// Holds `leases`, the sessions a guarded route admitted the stream with: the client is
    /// challenged for fresh credentials before they expire, and the response ends cleanly
    /// when they do (the client resumes by id with fresh credentials) unless the client
    /// re-authorized.
    pub(crate) fn guarded_by(mut self, leases: Vec<Lease>) -> Self {
        self.authorized = Authorized::new(leases, SystemTime::now(), now()).map(Box::new);
        self
    }

    /// Records in `meter`.
    pub(crate) fn metered(mut self, meter: Meter) -> Self {
        self.streams.meter = meter;
        self
    }

    /// Waits for the application's reply begin, its refusal, or the client going away.
    fn poll_starting(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let streams = &mut self.streams;
        let (refused, reset) = if let Poll::Ready(frame) = streams.app_in.poll_frame(cx) {
            let reason = match frame {
                Some(Frame::Begin(_)) => return self.start(),
                Some(Frame::Abort(abort)) => abort.reason,
                _ => Reason::new(ReasonKind::Refused, "no reply"),
            };
            // A refusal resets the request before it aborts the reply: the reset says more.
            (reason, streams.app_out.reset_reason())
        } else if let Poll::Ready(reset) = streams.app_out.poll_reset(cx) {
            (reset.reason.clone(), Some(reset))
        } else if let Poll::Ready(gone) =
            poll_request_aborted(&mut streams.net_in, &mut streams.net_in_done, cx)
        {
            client_gone(streams, gone);
            return Poll::Ready(());
        } else if let Poll::Ready(NetOut::Reset(gone)) =
            poll_response_event(&mut streams.net_out, false, cx)
        {
            client_gone(streams, gone);
            return Poll::Ready(());
        } else {
            return Poll::Pending;
        };
        tracing::debug!(reason = %refused, "sse: the application refused the subscription");
        let rejection = match reset.map(|reset| reset.ext) {
            Some(ResetEx::Guard(refusal)) => Rejection::guarded(&refusal),
            _ => Rejection::new(refusal_status(refused.kind), "refused by the application"),
        };
        streams.meter.refused(rejection.status);
        if !answer_refusal(&rejection, &mut streams.net_in, &mut streams.net_out) {
            return Poll::Ready(());
        }
        self.phase = Phase::Discarding(0);
        Poll::Pending
    }

    /// The application began its reply: the response begins, events may flow.
    fn start(&mut self) -> Poll<()> {
        let streams = &mut self.streams;
        let begun = streams
            .net_out
            .begin(Begin {
                ext: BeginEx::Http(stream_headers(self.timestamps)),
            })
            .is_ok()
            && streams
                .app_in
                .window(Window {
                    credit: self.options.buffer,
                    padding: 0,
                })
                .is_ok();
        if !begun {
            client_gone(
                streams,
                Reason::new(ReasonKind::ConnectionLost, "client gone"),
            );
            return Poll::Ready(());
        }
        // In the tail: a subscription that never gets an event never allocates the queue of
        // shared slices.
        let mut out = ByteQueue::default();
        out.tail().extend_from_slice(&encoder::preamble(
            self.options.retry,
            self.options.initial_comment,
        ));
        self.phase = Phase::Running(Box::new(Session {
            encoder: Encoder::new(self.timestamps),
            events: self.events.clone(),
            out,
            current: None,
            dropping: false,
            flush_pending: false,
            ending: false,
            pacer: Pacer::new(now(), self.options.heartbeat, self.options.stall_timeout),
        }));
        streams.meter.started();
        Poll::Pending
    }

    /// Relays events until the subscription is over.
    fn poll_running(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Phase::Running(session) = &mut self.phase else {
            return Poll::Ready(());
        };
        let streams = &mut self.streams;
        loop {
            if session.progress(streams).is_some() {
                return Poll::Ready(());
            }
            if self.shutdown.poll(cx).is_ready() {
                finish(streams, ReasonKind::Shutdown, "shutting down");
                return Poll::Ready(());
            }
            if let Poll::Ready(gone) =
                poll_request_aborted(&mut streams.net_in, &mut streams.net_in_done, cx)
            {
                client_gone(streams, gone);
                return Poll::Ready(());
            }
            let want_credit = !session.out.is_empty() || session.flush_pending;
            match poll_response_event(&mut streams.net_out, want_credit, cx) {
                Poll::Ready(NetOut::Credit) => continue,
                Poll::Ready(NetOut::Reset(gone)) => {
                    client_gone(streams, gone);
                    return Poll::Ready(());
                }
                Poll::Pending => {}
            }
            let idle = session.is_idle();
            let between_events = session.is_between_events();
            let paced = session.pacer.deadline(idle);
            let guarded = self
                .authorized
                .as_ref()
                .and_then(|authorized| authorized.deadline(between_events));
            let deadline = match (paced, guarded) {
                (Some(paced), Some(guarded)) => Some(paced.min(guarded)),
                (paced, guarded) => paced.or(guarded),
            };
            if let Some(at) = deadline
                && self
                    .timer
                    .poll_at(TokioInstant::from_std(at), cx)
                    .is_ready()
            {
                let due = self
                    .authorized
                    .as_mut()
                    .and_then(|authorized| authorized.due(now(), between_events));
                match due {
                    Some(GuardDue::Expired) => {
                        tracing::debug!("sse: the authorization expired; ending the response");
                        finish(
                            streams,
                            ReasonKind::Unauthorized,
                            "the authorization expired",
                        );
                        return Poll::Ready(());
                    }
                    Some(GuardDue::Challenge) => {
                        tracing::debug!("sse: challenging the client for fresh credentials");
                        session.out.tail().extend_from_slice(challenge::CHALLENGE);
                    }
                    None => {}
                }
                match session.pacer.due(now(), session.is_idle()) {
                    Some(Due::Heartbeat) => {
                        session.out.tail().extend_from_slice(encoder::HEARTBEAT);
                    }
                    Some(Due::Stalled) => {
                        tracing::debug!("sse: client stalled; ending the response");
                        finish(streams, ReasonKind::Timeout, "the client stalled");
                        return Poll::Ready(());
                    }
                    None => {}
                }
                continue;
            }
            let wants_app = session.current.is_none()
                && session.out.is_empty()
                && !session.flush_pending
                && !session.ending;
            if wants_app && let Poll::Ready(frame) = streams.app_in.poll_frame(cx) {
                if let Err(reason) = session.on_app(frame, &mut streams.app_in, &streams.meter) {
                    let _ = streams.net_out.abort(reason.clone());
                    let _ = streams.app_out.abort(reason);
                    streams.meter.ended(EndReason::Server);
                    return Poll::Ready(());
                }
                continue;
            }
            return Poll::Pending;
        }
    }
}

impl Future for Subscription {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let subscription = self.get_mut();
        loop {
            match &mut subscription.phase {
                Phase::Starting => {
                    if subscription.poll_starting(cx).is_ready() {
                        return Poll::Ready(());
                    }
                    if matches!(subscription.phase, Phase::Starting) {
                        return Poll::Pending;
                    }
                    // Moved on: poll the new phase now.
                }
                Phase::Running(_) => return subscription.poll_running(cx),
                Phase::Discarding(discarded) => {
                    return poll_discard(discarded, &mut subscription.streams.net_in, cx);
                }
            }
        }
    }
}

/// A request refused before it reached an application: its status, then the rest of the
/// request read and dropped.
pub(crate) struct Refusal {
    net_in: Reader,
    discarded: Option<u64>,
}

impl Refusal {
    /// Answers `rejection` on `net_out` and reads what is left of `net_in`.
    pub(crate) fn new(rejection: &Rejection, mut net_in: Reader, mut net_out: Writer) -> Self {
        let answered = answer_refusal(rejection, &mut net_in, &mut net_out);
        Refusal {
            net_in,
            discarded: answered.then_some(0),
        }
    }
}

impl Future for Refusal {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let refusal = self.get_mut();
        match &mut refusal.discarded {
            Some(discarded) => poll_discard(discarded, &mut refusal.net_in, cx),
            None => Poll::Ready(()),
        }
    }
}

/// Answers with a status and no body, and opens the request for reading what is left of it;
/// `false` when nothing more is to be done.
fn answer_refusal(rejection: &Rejection, net_in: &mut Reader, net_out: &mut Writer) -> bool {
    tracing::debug!(
        status = rejection.status,
        reason = rejection.reason,
        "sse: refused"
    );
    let begun = net_out.begin(Begin {
        ext: BeginEx::Http(rejection.response()),
    });
    if begun.is_err() || net_out.end(End::default()).is_err() {
        return false;
    }
    net_in
        .window(Window {
            credit: 16 * 1024,
            padding: 0,
        })
        .is_ok()
}

/// Reads and drops the rest of a refused request, up to [`MAX_DISCARD`] bytes.
fn poll_discard(discarded: &mut u64, net_in: &mut Reader, cx: &mut Context<'_>) -> Poll<()> {
    loop {
        match ready!(net_in.poll_frame(cx)) {
            Some(Frame::Data(data)) => {
                *discarded += data.payload.len() as u64;
                if *discarded > MAX_DISCARD {
                    net_in.reset(Reset::new(ReasonKind::Refused, "request body not read"));
                    return Poll::Ready(());
                }
                net_in.replenish();
            }
            Some(Frame::End(_) | Frame::Abort(_)) | None => return Poll::Ready(()),
            Some(Frame::Begin(_) | Frame::Flush(_)) => {}
        }
    }
}

/// Whether the request was aborted; a clean end of the request (right after a GET's headers)
/// is noted and waiting goes on.
fn poll_request_aborted(
    net_in: &mut Reader,
    net_in_done: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<Reason> {
    while !*net_in_done {
        match ready!(net_in.poll_frame(cx)) {
            Some(Frame::Abort(abort)) => return Poll::Ready(abort.reason),
            Some(Frame::End(_)) | None => *net_in_done = true,
            Some(_) => {}
        }
    }
    Poll::Pending
}

/// What the response direction says.
enum NetOut {
    /// Credit for at least one byte (only when asked for).
    Credit,
    /// The client reset the response: it is gone.
    Reset(Reason),
}

/// Whether the response is reset or, when `want_credit`, has credit for a byte.
fn poll_response_event(
    net_out: &mut Writer,
    want_credit: bool,
    cx: &mut Context<'_>,
) -> Poll<NetOut> {
    // Windows wake the subscription only while it has bytes waiting for them.
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
}

fn now() -> std::time::Instant {
    TokioInstant::now().into_std()
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
    streams.meter.ended(EndReason::Client);
}

/// Ends the response cleanly (the client resumes by id) and stops the application.
fn finish(streams: &mut Streams, kind: ReasonKind, detail: &str) {
    streams.meter.ended(EndReason::of(kind));
    let _ = streams.net_out.end(End::default());
    let _ = streams.app_out.abort(Reason::new(kind, detail));
    streams.app_in.reset(Reset::new(kind, detail));
}

//! Streams: the in-memory channel two bindings talk through.
//!
//! [`open`] makes a stream and returns its two ends. The [`Initiator`] writes the *initial*
//! direction and reads the *reply*; the [`Acceptor`] does the opposite. Both ends name their
//! two directions alike: `input` is the [`Reader`] of what the other end writes, `output` the
//! [`Writer`] of what this end sends. Each direction is one [`Writer`] and one [`Reader`]:
//!
//! - the writer sends [`Begin`], [`Data`], [`Flush`], [`End`], [`Abort`], spending credit for
//!   every data and flush frame;
//! - the reader receives them and answers with [`Window`] (credit), [`Reset`] or
//!   [`Challenge`].
//!
//! Nothing is queued that the reader has not paid for with credit, so a direction holds at most
//! the credit its reader granted (plus one begin and one end or abort). Dropping a writer
//! without ending aborts its direction; dropping a reader without resetting resets it. Each end
//! is meant to be driven by one task; the channel is `Send` so that streams may cross to a
//! shared component (such as the Kafka cache) on another thread.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

use thiserror::Error;

use crate::credit::{Credit, CreditError};
use crate::ext::ResetEx;
use crate::frame::{
    Abort, Begin, Challenge, Data, End, Flush, Frame, Reason, ReasonKind, Reset, Window,
};

/// The most challenges kept waiting for a writer; older ones are dropped past this.
const MAX_PENDING_CHALLENGES: usize = 8;

/// Opens a stream whose initial direction begins with `begin`.
pub fn open(begin: Begin) -> (Initiator, Acceptor) {
    let initial = Arc::new(Half::default());
    let reply = Arc::new(Half::default());
    initial.lock().phase = Phase::Open;
    (
        Initiator {
            output: Writer {
                half: initial.clone(),
            },
            input: Reader {
                half: reply.clone(),
            },
        },
        Acceptor {
            begin,
            input: Reader { half: initial },
            output: Writer { half: reply },
        },
    )
}

/// The end of a stream held by the binding that opened it.
#[derive(Debug)]
pub struct Initiator {
    /// Writes the initial direction (its begin was already sent by [`open`]).
    pub output: Writer,
    /// Reads the reply direction.
    pub input: Reader,
}

/// The end of a stream handed to the binding that accepts it.
#[derive(Debug)]
pub struct Acceptor {
    /// The initial direction's begin.
    pub begin: Begin,
    /// Reads the initial direction.
    pub input: Reader,
    /// Writes the reply direction.
    pub output: Writer,
}

impl Acceptor {
    /// Refuses the stream: resets the initial direction and aborts the reply.
    pub fn refuse(mut self, reset: Reset) {
        self.refuse_in_place(reset);
    }

    /// Refuses the stream as [`Acceptor::refuse`] does, for a state machine that keeps its
    /// ends until it is dropped.
    pub fn refuse_in_place(&mut self, reset: Reset) {
        refuse(&mut self.input, &mut self.output, reset);
    }

    /// A handle that ends this stream from outside the binding that accepts it
    /// ([`Severance::sever`]): what the engine keeps to end the streams of a binding a
    /// configuration reload replaced. It does not keep the stream alive.
    pub fn severance(&self) -> Severance {
        Severance {
            initial: Arc::downgrade(&self.input.half),
            reply: Arc::downgrade(&self.output.half),
        }
    }

    /// The begin, and the two ends without it: for a state machine that keeps its ends for
    /// the stream's life once it has taken what it needs from the begin (a begin is 128 bytes
    /// and often owns more).
    pub fn split(self) -> (Begin, Duplex) {
        let Acceptor {
            begin,
            input,
            output,
        } = self;
        (begin, Duplex { input, output })
    }
}

/// An acceptor's two ends without its begin ([`Acceptor::split`]).
#[derive(Debug)]
pub struct Duplex {
    /// Reads the initial direction.
    pub input: Reader,
    /// Writes the reply direction.
    pub output: Writer,
}

impl Duplex {
    /// Refuses the stream as [`Acceptor::refuse`] does.
    pub fn refuse_in_place(&mut self, reset: Reset) {
        refuse(&mut self.input, &mut self.output, reset);
    }
}

/// Ends an accepted stream from outside ([`Acceptor::severance`]), on its acceptor's behalf.
#[derive(Debug)]
pub struct Severance {
    initial: Weak<Half>,
    reply: Weak<Half>,
}

impl Severance {
    /// Whether either direction is still held by an end.
    pub fn is_live(&self) -> bool {
        self.initial.strong_count() > 0 || self.reply.strong_count() > 0
    }

    /// Ends the stream as if its acceptor had: the initial direction is reset with `reason`
    /// and the reply ends cleanly (aborts, if it had not begun), so the initiator sees a clean
    /// end; the acceptor, woken, finds its input over and its output closed.
    pub fn sever(&self, reason: Reason) {
        if let Some(initial) = self.initial.upgrade() {
            let mut state = initial.lock();
            if state.reset().is_none() && !state.finished {
                state.frames.clear();
                state.credit.release();
                state.consumed = 0;
                state.set_reset(Reset {
                    reason: reason.clone(),
                    ext: ResetEx::None,
                });
                state.wake_writer();
            }
            state.wake_reader();
        }
        if let Some(reply) = self.reply.upgrade() {
            let mut state = reply.lock();
            if state.reset().is_none() && state.phase != Phase::Closed {
                let last = match state.phase {
                    Phase::Open => Frame::End(End::default()),
                    _ => Frame::Abort(Abort { reason }),
                };
                state.phase = Phase::Closed;
                state.credit.release();
                state.push(last, 0);
            }
            state.wake_writer();
        }
    }
}

fn refuse(input: &mut Reader, output: &mut Writer, reset: Reset) {
    let reason = reset.reason.clone();
    input.reset(reset);
    let _ = output.abort(reason);
}

/// Why a frame could not be sent.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum SendError {
    /// The direction has not begun: send [`Begin`] first.
    #[error("the stream has not begun")]
    NotBegun,
    /// Begin was already sent.
    #[error("the stream has already begun")]
    AlreadyBegun,
    /// End or abort was already sent.
    #[error("the stream is closed")]
    Closed,
    /// Not enough credit; wait with [`Writer::ready`].
    #[error(transparent)]
    Credit(#[from] CreditError),
    /// The reader reset the direction.
    #[error("the stream was reset: {}", .0.reason)]
    Reset(Reset),
}

/// What a writer learns from its reader.
#[derive(Clone, Debug, PartialEq)]
pub enum WriterEvent {
    /// More credit arrived.
    Window {
        /// Credit now available.
        available: u64,
        /// Padding now in force.
        padding: u32,
    },
    /// The reader challenges the writer.
    Challenge(Challenge),
    /// The reader reset the direction; this is the last event.
    Reset(Reset),
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Phase {
    #[default]
    Idle,
    Open,
    Closed,
}

#[derive(Debug, Default)]
struct Half {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    phase: Phase,
    /// Frames waiting for the reader, each with the credit it cost.
    frames: VecDeque<(Frame, u64)>,
    credit: Credit,
    /// Credit cost of frames the reader took and has not yet granted back.
    consumed: u64,
    /// The reset, or challenges waiting for the writer: rare, so boxed, and one box for
    /// both (a reset makes waiting challenges moot), so a quiet stream's state stays small.
    aside: Option<Box<Aside>>,
    window_seen: bool,
    reader_gone: bool,
    finished: bool,
    reader_waker: Option<Waker>,
    writer_waker: Option<Waker>,
    /// Whether the waiting writer wants windows too, or only a reset ([`Writer::poll_reset`]).
    writer_wants_windows: bool,
    /// The reader found nothing queued the last time it looked.
    found_empty: bool,
}

/// What a direction rarely holds, behind one box in [`State`].
#[derive(Debug)]
enum Aside {
    /// Challenges waiting for the writer, oldest first.
    Challenges(VecDeque<Challenge>),
    /// The reader reset the direction; the last thing the writer learns.
    Reset(Reset),
}

impl Half {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent state: every update is a few
        // assignments, so recover the guard instead of propagating the poison.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    /// The reset, if the reader reset the direction.
    #[inline]
    fn reset(&self) -> Option<&Reset> {
        match self.aside.as_deref() {
            Some(Aside::Reset(reset)) => Some(reset),
            _ => None,
        }
    }

    fn set_reset(&mut self, reset: Reset) {
        self.aside = Some(Box::new(Aside::Reset(reset)));
    }

    fn wake_reader(&mut self) {
        if let Some(waker) = self.reader_waker.take() {
            waker.wake();
        }
    }

    fn wake_writer(&mut self) {
        if let Some(waker) = self.writer_waker.take() {
            waker.wake();
        }
    }

    #[inline]
    fn check_open(&self) -> Result<(), SendError> {
        if let Some(reset) = self.reset() {
            return Err(SendError::Reset(Reset::clone(reset)));
        }
        match self.phase {
            Phase::Idle => Err(SendError::NotBegun),
            Phase::Open => Ok(()),
            Phase::Closed => Err(SendError::Closed),
        }
    }

    fn push(&mut self, frame: Frame, cost: u64) {
        if !self.reader_gone {
            // Room for one frame first, not the four a first push would make: most streams
            // carry a frame at a time and keep that buffer while quiet; busy ones grow it.
            if self.frames.capacity() == 0 {
                self.frames.reserve_exact(1);
            }
            self.frames.push_back((frame, cost));
            self.wake_reader();
        }
    }
}

/// Keeps `cx`'s waker in `slot`, cloning it only when it is not the one kept already (a
/// state machine polled by its task's part has the same waker every time).
fn keep_waker(slot: &mut Option<Waker>, cx: &Context<'_>) {
    if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
        *slot = Some(cx.waker().clone());
    }
}

/// Sends one direction of a stream.
#[derive(Debug)]
pub struct Writer {
    half: Arc<Half>,
}

impl Writer {
    /// Begins the direction (the reply; the initial direction begins in [`open`]).
    pub fn begin(&mut self, begin: Begin) -> Result<(), SendError> {
        let mut state = self.half.lock();
        if let Some(reset) = state.reset() {
            return Err(SendError::Reset(Reset::clone(reset)));
        }
        match state.phase {
            Phase::Idle => {
                state.phase = Phase::Open;
                state.push(Frame::Begin(begin), 0);
                Ok(())
            }
            Phase::Open => Err(SendError::AlreadyBegun),
            Phase::Closed => Err(SendError::Closed),
        }
    }

    /// Sends data, spending its cost; fails without sending when credit is short.
    pub fn data(&mut self, data: Data) -> Result<(), SendError> {
        let mut state = self.half.lock();
        state.check_open()?;
        let cost = state.credit.spend(data.payload.len())?;
        state.push(Frame::Data(data), cost);
        Ok(())
    }

    /// Sends a flush, which costs credit like an empty data frame.
    pub fn flush(&mut self, flush: Flush) -> Result<(), SendError> {
        let mut state = self.half.lock();
        state.check_open()?;
        let cost = state.credit.spend(0)?;
        state.push(Frame::Flush(flush), cost);
        Ok(())
    }

    /// Ends the direction cleanly.
    pub fn end(&mut self, end: End) -> Result<(), SendError> {
        let mut state = self.half.lock();
        state.check_open()?;
        state.phase = Phase::Closed;
        state.credit.release();
        state.push(Frame::End(end), 0);
        Ok(())
    }

    /// Aborts the direction; allowed before begin too.
    pub fn abort(&mut self, reason: Reason) -> Result<(), SendError> {
        let mut state = self.half.lock();
        if let Some(reset) = state.reset() {
            return Err(SendError::Reset(Reset::clone(reset)));
        }
        if state.phase == Phase::Closed {
            return Err(SendError::Closed);
        }
        state.phase = Phase::Closed;
        state.credit.release();
        state.push(Frame::Abort(Abort { reason }), 0);
        Ok(())
    }

    /// Credit available now.
    pub fn credit(&self) -> u64 {
        self.half.lock().credit.available()
    }

    /// Padding in force now.
    pub fn padding(&self) -> u32 {
        self.half.lock().credit.padding()
    }

    /// Whether a frame of `len` payload bytes can be sent now: the direction is open and
    /// has the credit (what [`Writer::poll_ready`] would say, without waiting).
    pub fn can_send(&self, len: usize) -> bool {
        let state = self.half.lock();
        state.check_open().is_ok() && state.credit.can_spend(len)
    }

    /// What a data frame of `len` bytes would cost now.
    pub fn cost(&self, len: usize) -> u64 {
        self.half.lock().credit.cost(len)
    }

    /// The reset, if the reader reset this direction.
    pub fn reset_reason(&self) -> Option<Reset> {
        self.half.lock().reset().cloned()
    }

    /// Whether end or abort was sent, or the reader reset.
    pub fn is_closed(&self) -> bool {
        let state = self.half.lock();
        state.phase == Phase::Closed || state.reset().is_some()
    }

    /// Waits until a data frame of `len` bytes can be sent.
    pub fn poll_ready(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<Result<(), SendError>> {
        let mut state = self.half.lock();
        if let Err(err) = state.check_open() {
            return Poll::Ready(Err(err));
        }
        if state.credit.can_spend(len) {
            return Poll::Ready(Ok(()));
        }
        keep_waker(&mut state.writer_waker, cx);
        state.writer_wants_windows = true;
        Poll::Pending
    }

    /// Waits until a data frame of `len` bytes can be sent.
    pub async fn ready(&mut self, len: usize) -> Result<(), SendError> {
        poll_fn(|cx| self.poll_ready(cx, len)).await
    }

    /// Waits for the next thing the reader says: more credit, a challenge, or a reset.
    pub fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<WriterEvent> {
        let mut state = self.half.lock();
        if let Some(reset) = state.reset() {
            return Poll::Ready(WriterEvent::Reset(Reset::clone(reset)));
        }
        if let Some(Aside::Challenges(challenges)) = state.aside.as_deref_mut()
            && let Some(challenge) = challenges.pop_front()
        {
            return Poll::Ready(WriterEvent::Challenge(challenge));
        }
        if state.window_seen {
            state.window_seen = false;
            return Poll::Ready(WriterEvent::Window {
                available: state.credit.available(),
                padding: state.credit.padding(),
            });
        }
        keep_waker(&mut state.writer_waker, cx);
        state.writer_wants_windows = true;
        Poll::Pending
    }

    /// Waits for the next thing the reader says.
    pub async fn event(&mut self) -> WriterEvent {
        poll_fn(|cx| self.poll_event(cx)).await
    }

    /// Waits for the reader to reset the direction, and for nothing else: a writer with
    /// nothing to send is not woken by every window the reader grants (as by
    /// [`Writer::poll_event`]), only when the reader goes away.
    pub fn poll_reset(&mut self, cx: &mut Context<'_>) -> Poll<Reset> {
        let mut state = self.half.lock();
        if let Some(reset) = state.reset() {
            return Poll::Ready(Reset::clone(reset));
        }
        // The same task may wait for credit too in this poll: it keeps its windows.
        if !state
            .writer_waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            state.writer_waker = Some(cx.waker().clone());
            state.writer_wants_windows = false;
        }
        Poll::Pending
    }

    /// Waits for the reader to reset the direction ([`Writer::poll_reset`]).
    pub async fn reset_by_reader(&mut self) -> Reset {
        poll_fn(|cx| self.poll_reset(cx)).await
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let mut state = self.half.lock();
        if state.phase != Phase::Closed && state.reset().is_none() {
            state.phase = Phase::Closed;
            state.credit.release();
            let reason = Reason::new(ReasonKind::Dropped, "the writer went away");
            state.push(Frame::Abort(Abort { reason }), 0);
        }
    }
}

/// Receives one direction of a stream.
#[derive(Debug)]
pub struct Reader {
    half: Arc<Half>,
}

impl Reader {
    /// Waits for the next frame; `None` once end or abort has been received, or after reset.
    pub fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
        let mut state = self.half.lock();
        if state.finished || state.reset().is_some() {
            return Poll::Ready(None);
        }
        match state.frames.pop_front() {
            Some((frame, cost)) => {
                state.consumed += cost;
                state.found_empty = false;
                if matches!(frame, Frame::End(_) | Frame::Abort(_)) {
                    state.finished = true;
                }
                // After a control frame a stream usually goes quiet (an SSE subscription
                // stays open for hours): its queue's buffer is given back rather than held.
                if state.frames.is_empty() && !matches!(frame, Frame::Data(_)) {
                    state.frames = VecDeque::new();
                }
                Poll::Ready(Some(frame))
            }
            None => {
                // Nothing twice in a row: the stream is idle, give the buffer back. A busy
                // stream finds a frame between two empty looks and keeps its buffer.
                if state.found_empty {
                    state.frames = VecDeque::new();
                }
                state.found_empty = true;
                keep_waker(&mut state.reader_waker, cx);
                Poll::Pending
            }
        }
    }

    /// Waits for the next frame.
    pub async fn frame(&mut self) -> Option<Frame> {
        poll_fn(|cx| self.poll_frame(cx)).await
    }

    /// Takes a frame if one is queued, without waiting. Finding none here does not count as
    /// the reader looking (a writer draining what is queued is not idle).
    pub fn try_frame(&mut self) -> Option<Frame> {
        let found_empty = self.half.lock().found_empty;
        let waker = Waker::noop();
        match self.poll_frame(&mut Context::from_waker(waker)) {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                let mut state = self.half.lock();
                state.reader_waker = None;
                state.found_empty = found_empty;
                None
            }
        }
    }

    /// Grants credit. Ignored once the direction is over. A grant that would let more than
    /// `u32::MAX` bytes be outstanding is refused.
    pub fn window(&mut self, window: Window) -> Result<(), CreditError> {
        let mut state = self.half.lock();
        if state.finished || state.reset().is_some() {
            return Ok(());
        }
        state.credit.grant(window)?;
        state.window_seen = true;
        if state.writer_wants_windows {
            state.wake_writer();
        }
        Ok(())
    }

    /// Grants back the credit spent by the frames received since the last call, keeping the
    /// writer's window at a constant size.
    pub fn replenish(&mut self) {
        let mut state = self.half.lock();
        let consumed = std::mem::take(&mut state.consumed);
        let padding = state.credit.padding();
        let credit = u32::try_from(consumed).unwrap_or(u32::MAX);
        drop(state);
        if credit > 0 {
            // Returning what was spent can never overflow the window it came from.
            let _ = self.window(Window { credit, padding });
        }
    }

    /// Sends a challenge to the writer.
    pub fn challenge(&mut self, challenge: Challenge) {
        let mut state = self.half.lock();
        if state.finished || state.reset().is_some() {
            return;
        }
        let aside = state
            .aside
            .get_or_insert_with(|| Box::new(Aside::Challenges(VecDeque::new())));
        let Aside::Challenges(challenges) = &mut **aside else {
            return;
        };
        if challenges.len() == MAX_PENDING_CHALLENGES {
            challenges.pop_front();
        }
        challenges.push_back(challenge);
        state.wake_writer();
    }

    /// Resets the direction: drops what is queued, releases all credit, tells the writer.
    pub fn reset(&mut self, reset: Reset) {
        let mut state = self.half.lock();
        if state.reset().is_some() || state.finished {
            return;
        }
        state.frames.clear();
        state.credit.release();
        state.consumed = 0;
        state.set_reset(reset);
        state.wake_writer();
    }

    /// Whether end or abort was received, or the direction was reset.
    pub fn is_finished(&self) -> bool {
        let state = self.half.lock();
        state.finished || state.reset().is_some()
    }

    /// Bytes of credit the writer holds now (for tests and metrics).
    pub fn outstanding(&self) -> u64 {
        self.half.lock().credit.available()
    }

    /// Frames queued and not yet received (for tests and metrics).
    pub fn queued(&self) -> usize {
        self.half.lock().frames.len()
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let finished = self.is_finished();
        if !finished {
            self.reset(Reset::new(ReasonKind::Dropped, "the reader went away"));
        }
        let mut state = self.half.lock();
        state.reader_gone = true;
        state.frames.clear();
    }
}

#[cfg(test)]
mod tests;

//! Serving a subscriber (a merged or fetch stream) from the cache: a cursor per partition,
//! records sent with the stream's credit, the progress of every partition on each record,
//! a flush once caught up, a gap flush when the cache evicted what the subscriber had not
//! read yet.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::time::Instant;

use binding_api::ext::ResetEx;
use binding_api::ext::kafka::{
    KafkaBeginEx, KafkaFlushEx, KafkaGapEx, KafkaRecordEx, KafkaReplyBeginEx, KafkaResetEx,
    Progress, StartPosition,
};
use binding_api::ext::{BeginEx, FlushEx};
use binding_api::frame::{Begin, End, Flush, Frame, Reason, ReasonKind, Reset};
use binding_api::stream::{Acceptor, Duplex, Writer};
use binding_api::timer::Timer;
use kafka_serve::OutgoingRecord;
use zilla_metrics::Counter;

use crate::cache::{Status, Subscription, Topic, TopicState, unknown_partition};
use crate::log::{CachedRecord, Cursor, PartitionLog, Read};
use crate::progress_memo::ProgressMemo;
use crate::signal::{Seen, Signal, WorkerChanges};
use crate::wake::{Hits, ParkId};

/// Items copied out of the log per lock: a subscriber holds at most this many references.
const BATCH: usize = 64;

/// How long a cursor may stay past the newest offset of a live log before the subscriber is
/// refused as the kafka client refuses an offset past the end. Another proxy's id can be a
/// few records ahead of this cache for as long as an upstream fetch takes (a long poll is
/// 500 ms); an id that is still ahead after this was never written.
pub const AHEAD_GRACE: Duration = Duration::from_secs(2);

/// What a subscriber asks for.
pub use kafka_serve::ReadPlan as Plan;

enum Item {
    Record {
        partition: i32,
        record: Arc<CachedRecord>,
        next: i64,
        high_watermark: i64,
    },
    Gap(KafkaGapEx),
}

struct Subscriber {
    plan: Plan,
    /// A cursor per partition, by partition id: a short sorted list (a subscriber reads a
    /// few partitions; a map's first node alone is 400 bytes per idle subscriber).
    cursors: Vec<(i32, Cursor)>,
    progress: Arc<Progress>,
    /// The worker's progress snapshots, shared with its other subscribers.
    snapshots: Rc<ProgressMemo>,
    pending: VecDeque<Item>,
    flushed: bool,
    rotor: usize,
    /// A partition whose cursor was past the newest offset at the last fill.
    ahead: Option<i32>,
    /// Counts the gaps announced to it (`kafka.cache.gaps`; disabled when not recorded).
    gaps: Counter,
}

impl Subscriber {
    /// Copies up to [`BATCH`] items out of the logs, round-robin over partitions; returns
    /// whether the subscriber has read everything the cache has and the cache is live.
    fn fill(&mut self, state: &TopicState) -> bool {
        if self.plan.only.is_none() {
            // A partition the topic gained since the reply began: every record is new to
            // this subscriber, so it reads from the start (Zilla starts it at HISTORICAL).
            for p in state.partitions.keys() {
                if let Err(at) = self.cursors.binary_search_by_key(p, |(id, _)| *id) {
                    let start = match self.plan.starts.iter().find(|(id, _)| id == p) {
                        Some((_, start)) => *start,
                        None => StartPosition::Earliest,
                    };
                    self.cursors.insert(at, (*p, Cursor::new(start)));
                }
            }
        }
        for (id, cursor) in &mut self.cursors {
            if self.progress.get(*id).is_none()
                && let Some(next) = state.partitions.get(id).and_then(|l| l.position(cursor))
            {
                Arc::make_mut(&mut self.progress).set(*id, next);
            }
        }
        let count = self.cursors.len();
        let mut idle = 0;
        self.ahead = None;
        while self.pending.len() < BATCH && idle < count {
            self.rotor = (self.rotor + 1) % count;
            let (id, cursor) = &mut self.cursors[self.rotor];
            let id = *id;
            let Some(log) = state.partitions.get(&id) else {
                idle += 1;
                continue;
            };
            match log.read(cursor, &self.plan.filters) {
                Read::Record(record) => {
                    idle = 0;
                    let next = record.offset + 1;
                    self.pending.push_back(Item::Record {
                        partition: id,
                        record,
                        next,
                        high_watermark: log.end(),
                    });
                }
                Read::Gap { from, to } => {
                    idle = 0;
                    self.gaps.increment();
                    self.pending.push_back(Item::Gap(KafkaGapEx {
                        partition: id,
                        from,
                        to,
                    }));
                }
                Read::Ahead { .. } => {
                    self.ahead = Some(id);
                    idle += 1;
                }
                Read::Yield => idle = 0,
                Read::Empty => idle += 1,
            }
        }
        if !self.pending.is_empty() {
            return false;
        }
        // Copy-on-write only when a position moved: the previous snapshot is often still
        // held by the last record sent.
        for (id, cursor) in &self.cursors {
            if let Some(next) = cursor.next()
                && self.progress.get(*id) != Some(next)
            {
                Arc::make_mut(&mut self.progress).set(*id, next);
            }
        }
        self.cursors.iter().all(|(id, cursor)| {
            state
                .partitions
                .get(id)
                .is_some_and(|log| log.is_live() && log.caught_up(cursor))
        })
    }

    /// Moves the cursors of a subscriber back from parking past what it did not match: to the
    /// first record that hit it in a partition, else to the partition's end (every record
    /// appended while it was parked went through the index).
    fn skip(&mut self, state: &TopicState, hits: &Hits) {
        for (id, cursor) in &mut self.cursors {
            let target = match hits.get(id) {
                Some(offset) => Some(*offset),
                None => state.partitions.get(id).map(PartitionLog::end),
            };
            if let Some(target) = target
                && cursor.skip_to(target)
                && self.plan.merged
                && let Some(next) = cursor.next()
            {
                Arc::make_mut(&mut self.progress).set(*id, next);
            }
        }
    }
}

/// A subscriber's place in its topic's wake index, left when it goes.
struct Parking {
    topic: Arc<Topic>,
    id: Option<ParkId>,
    signal: Arc<Signal>,
}

impl Parking {
    /// Leaves the index; what hit the subscriber meanwhile.
    fn leave(&mut self, state: &mut TopicState) -> Hits {
        self.id
            .take()
            .map(|id| state.parked.unpark(id))
            .unwrap_or_default()
    }
}

impl Drop for Parking {
    fn drop(&mut self) {
        if self.id.is_some() {
            let topic = self.topic.clone();
            self.leave(&mut topic.lock());
        }
    }
}

/// Serves one subscriber until it goes away or the topic is refused; `snapshots` are the
/// worker's, and so is `changes`, where it waits for the topic's next change; `gaps` counts
/// the gaps announced to it.
pub fn serve(
    topic: Subscription,
    plan: Plan,
    (snapshots, changes): (Rc<ProgressMemo>, Rc<WorkerChanges>),
    gaps: Counter,
    stream: Acceptor,
) -> Serve {
    let seen = topic.changes().seen();
    // The plan holds what the begin said: the begin itself is not kept.
    let (_, stream) = stream.split();
    Serve {
        topic,
        stream,
        seen,
        changes,
        phase: Phase::Starting(Some((plan, snapshots, gaps))),
    }
}

/// One subscriber as a state machine, polled as a future: waiting for the topic to start,
/// then reading its logs and sending what it reads with the stream's credit, parked in the
/// wake index or waiting for the topic's next change when caught up.
pub struct Serve {
    topic: Subscription,
    stream: Duplex,
    /// What this subscriber has seen of the topic's changes.
    seen: Seen,
    /// Where it waits for the next one: its worker's list for the topic.
    changes: Rc<WorkerChanges>,
    phase: Phase,
}

enum Phase {
    /// The topic is starting (its partitions are not known yet).
    Starting(Option<(Plan, Rc<ProgressMemo>, Counter)>),
    Serving(Box<Serving>),
}

/// A started subscriber.
struct Serving {
    sub: Subscriber,
    /// Since when a cursor has been past the newest offset of its live log.
    ahead_since: Option<Instant>,
    /// When a cursor past the end is looked at again.
    recheck: Timer,
    max_seen: u64,
    /// Whether the log must be read again whatever the version says: a batch came out full,
    /// or the subscriber has not caught up yet. Otherwise a wake-up that is not an append
    /// (the reader's window) costs no lock and no read.
    look: bool,
    /// A caught-up subscriber whose filters the index can look up waits there, woken only
    /// by a record that matches it; the others wait for every change of the topic.
    parking: Parking,
    /// What is being sent, waiting for credit (boxed: what the reader's credit allows goes
    /// at once, and a quiet subscriber holds none).
    sending: Option<Box<Sending>>,
}

/// An item on its way to the reader.
enum Sending {
    Record(OutgoingRecord),
    /// A gap, or (`caught_up`) the flush that says the subscriber has read everything.
    Flush {
        flush: Flush,
        caught_up: bool,
    },
}

/// Why a subscriber stops.
enum Stop {
    /// Nothing more to say.
    Done,
    /// Refused with this reset.
    Refuse(Reset),
    /// The topic went away after the reply began.
    Abort(Reason),
}

impl Future for Serve {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let serve = self.get_mut();
        let stop = loop {
            let progress = match &mut serve.phase {
                Phase::Starting(setup) => {
                    let waiting = (&*serve.changes, &mut serve.seen);
                    match poll_starting(&serve.topic, &mut serve.stream, waiting, cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Err(stop)) => break stop,
                        Poll::Ready(Ok(())) => {
                            let Some((plan, snapshots, gaps)) = setup.take() else {
                                break Stop::Done;
                            };
                            let read = (plan, snapshots, gaps);
                            match start(&serve.topic, &mut serve.stream, read) {
                                Ok(serving) => serve.phase = Phase::Serving(serving),
                                Err(stop) => break stop,
                            }
                            continue;
                        }
                    }
                }
                Phase::Serving(serving) => {
                    let waiting = (&*serve.changes, &mut serve.seen);
                    serving.poll(&serve.topic, &mut serve.stream, waiting, cx)
                }
            };
            match progress {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(stop) => break stop,
            }
        };
        match stop {
            Stop::Done => {}
            Stop::Refuse(reset) => serve.stream.refuse_in_place(reset),
            Stop::Abort(reason) => {
                let _ = serve.stream.output.abort(reason);
            }
        }
        Poll::Ready(())
    }
}

/// Waits for the topic to be ready (its partitions known).
fn poll_starting(
    topic: &Topic,
    stream: &mut Duplex,
    (changes, seen): (&WorkerChanges, &mut Seen),
    cx: &mut Context<'_>,
) -> Poll<Result<(), Stop>> {
    loop {
        // Registered before the status is read: a change after it wakes this subscriber.
        let changed = changes.poll(topic.changes(), seen, cx);
        let status = topic.lock().status.clone();
        match status {
            Status::Ready => return Poll::Ready(Ok(())),
            Status::Refused(reset) => return Poll::Ready(Err(Stop::Refuse(reset))),
            Status::Starting => {}
        }
        match stream.input.poll_frame(cx) {
            Poll::Ready(Some(Frame::End(_) | Frame::Abort(_)) | None) => {
                return Poll::Ready(Err(Stop::Done));
            }
            Poll::Ready(Some(_)) => continue,
            Poll::Pending => {}
        }
        if changed.is_pending() {
            return Poll::Pending;
        }
    }
}

/// Begins the reply with the topic's partitions and sets the subscriber up to read them.
fn start(
    topic: &Subscription,
    stream: &mut Duplex,
    (plan, snapshots, gaps): (Plan, Rc<ProgressMemo>, Counter),
) -> Result<Box<Serving>, Stop> {
    let partitions: Vec<i32> = {
        let state = topic.lock();
        match plan.only {
            Some(p) if state.partitions.contains_key(&p) => vec![p],
            Some(p) => return Err(Stop::Refuse(unknown_partition(topic.name(), p))),
            None => state.partitions.keys().copied().collect(),
        }
    };
    let reply = KafkaReplyBeginEx {
        topic: plan.topic.clone(),
        partitions: partitions.clone(),
    };
    let begin = Begin {
        ext: BeginEx::Kafka(KafkaBeginEx::Reply(reply)),
    };
    if stream.output.begin(begin).is_err() {
        return Err(Stop::Done);
    }
    Ok(Box::new(Serving {
        sub: Subscriber {
            // In partition order: the partitions come from a map, or are one.
            cursors: partitions
                .iter()
                .map(|p| (*p, Cursor::new(plan.start_of(*p))))
                .collect(),
            plan,
            progress: Arc::default(),
            snapshots,
            pending: VecDeque::new(),
            flushed: false,
            rotor: 0,
            ahead: None,
            gaps,
        },
        ahead_since: None,
        recheck: Timer::default(),
        max_seen: 0,
        look: true,
        parking: Parking {
            topic: Arc::clone(topic),
            id: None,
            signal: Arc::default(),
        },
        sending: None,
    }))
}

impl Serving {
    /// Reads, sends and waits until the subscriber is over.
    fn poll(
        &mut self,
        topic: &Topic,
        stream: &mut Duplex,
        (changes, seen): (&WorkerChanges, &mut Seen),
        cx: &mut Context<'_>,
    ) -> Poll<Stop> {
        loop {
            // What is being sent goes first; nothing else is looked at while it waits for
            // credit (a reader that goes away resets the reply, which ends the wait).
            if let Some(sending) = &mut self.sending {
                let sent = ready!(self.sub.poll_send(
                    sending,
                    &mut stream.output,
                    &mut self.max_seen,
                    &mut self.look,
                    cx
                ));
                self.sending = None;
                if !sent {
                    return Poll::Ready(Stop::Done);
                }
                continue;
            }
            // The next item goes at once while the reader's credit allows; only what must
            // wait is kept (boxed: a quiet subscriber holds none).
            if let Some(item) = self.sub.pending.pop_front() {
                let mut sending = self.sub.prepare(item);
                let sending_now = self.sub.poll_send(
                    &mut sending,
                    &mut stream.output,
                    &mut self.max_seen,
                    &mut self.look,
                    cx,
                );
                match sending_now {
                    Poll::Ready(true) => continue,
                    Poll::Ready(false) => return Poll::Ready(Stop::Done),
                    Poll::Pending => {
                        self.sending = Some(Box::new(sending));
                        return Poll::Pending;
                    }
                }
            }
            if self.look || (self.parking.id.is_none() && topic.changes().take(seen)) {
                if let Some(stop) = self.read(topic, seen) {
                    return Poll::Ready(stop);
                }
                if !self.sub.pending.is_empty() || self.sending.is_some() {
                    continue;
                }
            }
            // Waiting: for the recheck of a cursor past the end, a record that matches a
            // parked subscriber, any change of the topic, or the reader going away.
            match self.ahead_since {
                Some(since) => {
                    if self.recheck.poll_at(since + AHEAD_GRACE, cx).is_ready() {
                        self.look = true;
                        continue;
                    }
                }
                None => self.recheck.clear(),
            }
            if self.parking.id.is_some() {
                if self.parking.signal.poll(cx).is_ready() {
                    // Skip what did not match, read from there.
                    let mut state = topic.lock();
                    let hits = self.parking.leave(&mut state);
                    self.sub.skip(&state, &hits);
                    self.look = true;
                    continue;
                }
            } else if changes.poll(topic.changes(), seen, cx).is_ready() {
                self.look = true;
                continue;
            }
            // The reader's window is not waited for here: returning credit after every
            // record would wake each subscriber a second time. A reader that goes away ends
            // or aborts the initial direction; one that only resets the reply is noticed by
            // the next send.
            match stream.input.poll_frame(cx) {
                Poll::Ready(Some(Frame::End(_))) => {
                    let _ = stream.output.end(End::default());
                    return Poll::Ready(Stop::Done);
                }
                Poll::Ready(Some(Frame::Abort(_)) | None) => return Poll::Ready(Stop::Done),
                Poll::Ready(Some(_)) => continue,
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Reads the logs into `pending` (or decides the caught-up flush); `Some` when the
    /// subscriber is over.
    fn read(&mut self, topic: &Topic, seen: &mut Seen) -> Option<Stop> {
        topic.changes().take(seen);
        let caught_up = {
            let mut state = topic.lock();
            // The topic went away (deleted in Kafka): end the way the kafka client would.
            if let Status::Refused(reset) = &state.status {
                let reason = reset.reason.clone();
                drop(state);
                return Some(Stop::Abort(reason));
            }
            let caught_up = self.sub.fill(&state);
            if caught_up
                && self.sub.flushed
                && self.sub.pending.is_empty()
                && self.sub.ahead.is_none()
            {
                self.parking.id = state
                    .parked
                    .park(&self.sub.plan.filters, self.parking.signal.clone());
            }
            caught_up
        };
        match (self.sub.ahead, self.ahead_since) {
            (None, _) => self.ahead_since = None,
            (Some(_), None) => self.ahead_since = Some(Instant::now()),
            (Some(partition), Some(since)) if since.elapsed() >= AHEAD_GRACE => {
                return Some(Stop::Refuse(past_the_end(topic, &self.sub, partition)));
            }
            (Some(_), Some(_)) => {}
        }
        if !self.sub.pending.is_empty() {
            self.look = self.sub.pending.len() >= BATCH || !self.sub.flushed;
            return None;
        }
        if caught_up && !self.sub.flushed {
            let flush = Flush {
                ext: FlushEx::Kafka(KafkaFlushEx {
                    progress: self.sub.progress.clone(),
                }),
            };
            self.sending = Some(Box::new(Sending::Flush {
                flush,
                caught_up: true,
            }));
            return None;
        }
        self.look = false;
        None
    }
}

/// The refusal of a subscriber whose cursor in `partition` stayed past the newest offset: what
/// the kafka client answers for an offset the broker does not have, so that the reader
/// reopens where its policy says.
fn past_the_end(topic: &Topic, sub: &Subscriber, partition: i32) -> Reset {
    let state = topic.lock();
    let log = state.partitions.get(&partition);
    let requested = sub
        .cursors
        .iter()
        .find(|(id, _)| *id == partition)
        .and_then(|(_, cursor)| cursor.next())
        .unwrap_or_default();
    let earliest = log.and_then(PartitionLog::start).unwrap_or_default();
    let latest = log.and_then(PartitionLog::latest).unwrap_or_default();
    Reset {
        reason: Reason::new(
            ReasonKind::Refused,
            format!("offset {requested} is past the end ({latest}) of partition {partition}"),
        ),
        ext: ResetEx::Kafka(KafkaResetEx::OffsetOutOfRange {
            partition,
            requested,
            earliest,
            latest,
        }),
    }
}

impl Subscriber {
    /// Sends `sending` as the reader's credit allows: `Ready(true)` once it went,
    /// `Ready(false)` when the reader went away, `Pending` while credit is short.
    fn poll_send(
        &mut self,
        sending: &mut Sending,
        output: &mut Writer,
        max_seen: &mut u64,
        look: &mut bool,
        cx: &mut Context<'_>,
    ) -> Poll<bool> {
        match sending {
            Sending::Record(record) => record.poll_send(output, max_seen, cx),
            Sending::Flush { flush, caught_up } => match ready!(output.poll_ready(cx, 0)) {
                Err(_) => Poll::Ready(false),
                Ok(()) => {
                    if *caught_up {
                        self.flushed = true;
                        // Read once more: a subscriber that can park does so now.
                        *look = true;
                    }
                    Poll::Ready(output.flush(std::mem::take(flush)).is_ok())
                }
            },
        }
    }

    /// What to send for `item`, its progress applied.
    fn prepare(&mut self, item: Item) -> Sending {
        match item {
            Item::Gap(gap) => {
                if self.plan.merged {
                    Arc::make_mut(&mut self.progress).set(gap.partition, gap.to);
                }
                Sending::Flush {
                    flush: Flush {
                        ext: FlushEx::KafkaGap(gap),
                    },
                    caught_up: false,
                }
            }
            Item::Record {
                partition,
                record,
                next,
                high_watermark,
            } => {
                if self.plan.merged {
                    self.snapshots.advance(&mut self.progress, partition, next);
                }
                let ex = KafkaRecordEx {
                    partition,
                    offset: record.offset,
                    timestamp: record.timestamp,
                    key: record.key.clone(),
                    headers: record.headers.clone(),
                    value_len: record
                        .value
                        .as_ref()
                        .map(|v| u32::try_from(v.len()).unwrap_or(u32::MAX)),
                    high_watermark,
                    progress: self.plan.merged.then(|| self.progress.clone()),
                };
                let value = record.value.clone().unwrap_or_default();
                Sending::Record(OutgoingRecord::new(ex, value))
            }
        }
    }
}

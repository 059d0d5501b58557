//! Serving a subscriber (a merged or fetch stream) from the cache: a cursor per partition,
//! records sent with the stream's credit, the progress of every partition on each record,
//! a flush once caught up, a gap flush when the cache evicted what the subscriber had not
//! read yet.

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use binding_api::ext::ResetEx;
use binding_api::ext::kafka::{
    KafkaBeginEx, KafkaFlushEx, KafkaGapEx, KafkaRecordEx, KafkaReplyBeginEx, KafkaResetEx,
    Progress, StartPosition,
};
use binding_api::ext::{BeginEx, FlushEx};
use binding_api::frame::{Begin, End, Flush, Frame, Reason, ReasonKind, Reset};
use binding_api::stream::Acceptor;

use crate::cache::{Status, Subscription, Topic, TopicState, unknown_partition};
use crate::log::{CachedRecord, Cursor, PartitionLog, Read};
use crate::progress_memo::ProgressMemo;
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
    notify: Arc<Notify>,
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
/// worker's.
pub async fn serve(
    topic: Subscription,
    plan: Plan,
    snapshots: Rc<ProgressMemo>,
    mut stream: Acceptor,
) {
    let mut version = topic.subscribe();
    loop {
        version.borrow_and_update();
        let status = topic.lock().status.clone();
        match status {
            Status::Ready => break,
            Status::Refused(reset) => return stream.refuse(reset),
            Status::Starting => {}
        }
        tokio::select! {
            changed = version.changed() => if changed.is_err() { return },
            frame = stream.initial.frame() => match frame {
                Some(Frame::End(_) | Frame::Abort(_)) | None => return,
                Some(_) => {}
            },
        }
    }
    let partitions: Vec<i32> = {
        let state = topic.lock();
        match plan.only {
            Some(p) if state.partitions.contains_key(&p) => vec![p],
            Some(p) => {
                drop(state);
                return stream.refuse(unknown_partition(topic.name(), p));
            }
            None => state.partitions.keys().copied().collect(),
        }
    };
    let reply = KafkaReplyBeginEx {
        topic: plan.topic.clone(),
        partitions: partitions.clone(),
    };
    if stream
        .reply
        .begin(Begin {
            ext: BeginEx::Kafka(KafkaBeginEx::Reply(reply)),
        })
        .is_err()
    {
        return;
    }
    let mut sub = Subscriber {
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
    };
    // Since when a cursor has been past the newest offset of its live log.
    let mut ahead_since: Option<Instant> = None;
    let mut max_seen = 0u64;
    // Whether the log must be read again whatever the version says: a batch came out full,
    // or the subscriber has not caught up yet. Otherwise a wake-up that is not an append (the
    // reader's window) costs no lock and no read.
    let mut look = true;
    // A caught-up subscriber whose filters the index can look up waits there, woken only by
    // a record that matches it; the others wait for every append.
    let mut parking = Parking {
        topic: Arc::clone(&topic),
        id: None,
        notify: Arc::new(Notify::new()),
    };
    loop {
        if look || (parking.id.is_none() && version.has_changed().unwrap_or(true)) {
            version.borrow_and_update();
            let caught_up = {
                let mut state = topic.lock();
                // The topic went away (deleted in Kafka): end the way the kafka client would.
                if let Status::Refused(reset) = &state.status {
                    let _ = stream.reply.abort(reset.reason.clone());
                    return;
                }
                let caught_up = sub.fill(&state);
                if caught_up && sub.flushed && sub.pending.is_empty() && sub.ahead.is_none() {
                    parking.id = state.parked.park(&sub.plan.filters, parking.notify.clone());
                }
                caught_up
            };
            match (sub.ahead, ahead_since) {
                (None, _) => ahead_since = None,
                (Some(_), None) => ahead_since = Some(Instant::now()),
                (Some(partition), Some(since)) if since.elapsed() >= AHEAD_GRACE => {
                    return stream.refuse(past_the_end(&topic, &sub, partition));
                }
                (Some(_), Some(_)) => {}
            }
            if !sub.pending.is_empty() {
                look = sub.pending.len() >= BATCH || !sub.flushed;
                while let Some(item) = sub.pending.pop_front() {
                    if !send(&mut sub, &mut stream, &mut max_seen, item).await {
                        return;
                    }
                }
                continue;
            }
            if caught_up && !sub.flushed {
                let flush = Flush {
                    ext: FlushEx::Kafka(KafkaFlushEx {
                        progress: sub.progress.clone(),
                    }),
                };
                if stream.reply.ready(0).await.is_err() || stream.reply.flush(flush).is_err() {
                    return;
                }
                sub.flushed = true;
                // Read once more: a subscriber that can park does so now.
                look = true;
                continue;
            }
            look = false;
        }
        let recheck = ahead_since.map(|since| since + AHEAD_GRACE);
        tokio::select! {
            // A cursor past the end is looked at again once its grace is over.
            _ = tokio::time::sleep_until(recheck.unwrap_or_else(Instant::now)), if recheck.is_some() => {
                look = true;
            }
            // A record that matches a parked subscriber: skip what did not, read from there.
            () = parking.notify.notified(), if parking.id.is_some() => {
                let mut state = topic.lock();
                let hits = parking.leave(&mut state);
                sub.skip(&state, &hits);
                look = true;
            }
            // `changed` marks the version seen: read the log.
            changed = version.changed(), if parking.id.is_none() => match changed {
                Ok(()) => look = true,
                Err(_) => return,
            },
            // The reader's window is not waited for here: returning credit after every record
            // would wake each subscriber a second time. A reader that goes away ends or aborts
            // the initial direction (seen below); one that only resets the reply is noticed
            // by the next send.
            frame = stream.initial.frame() => match frame {
                Some(Frame::End(_)) => {
                    let _ = stream.reply.end(End::default());
                    return;
                }
                Some(Frame::Abort(_)) | None => return,
                Some(_) => {}
            },
        }
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

/// Sends one item; `false` when the stream is gone.
async fn send(sub: &mut Subscriber, stream: &mut Acceptor, max_seen: &mut u64, item: Item) -> bool {
    let writer = &mut stream.reply;
    match item {
        Item::Gap(gap) => {
            if sub.plan.merged {
                Arc::make_mut(&mut sub.progress).set(gap.partition, gap.to);
            }
            let flush = Flush {
                ext: FlushEx::KafkaGap(gap),
            };
            writer.ready(0).await.is_ok() && writer.flush(flush).is_ok()
        }
        Item::Record {
            partition,
            record,
            next,
            high_watermark,
        } => {
            if sub.plan.merged {
                sub.snapshots.advance(&mut sub.progress, partition, next);
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
                progress: sub.plan.merged.then(|| sub.progress.clone()),
            };
            let value = record.value.clone().unwrap_or_default();
            kafka_serve::send_record(writer, max_seen, ex, value).await
        }
    }
}

//! The partitions a stream reads, as a state machine, sans I/O: which of them to fetch from
//! which leader at which offset for the credit downstream, what a fetch response does to each
//! (next offset, caught up, leader lost, a wait when it made no progress, see [`super::stall`]),
//! when their leaders are asked for again, and the progress the stream reports. The caller
//! passes the time and does the I/O: [`super::serve`] sends the fetches planned here, decodes
//! and sends the records, and tells the set how each went.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use binding_api::ext::kafka::Progress;

use super::stall::{self, Answer, Cause, Pause, Seen};
use super::{BACKOFF_MAX, BACKOFF_MIN, MAX_FETCH_BYTES, Plan};
use crate::ClientError;
use crate::proto::error as kerr;
use crate::proto::fetch::{FetchPartition, PartitionData};

/// The least a fetch asks for, in all and for each of its partitions, however little credit.
const MIN_FETCH_BYTES: i32 = 1024;

/// One partition being read.
#[derive(Debug)]
struct Part {
    /// The offset to fetch from: past every record read.
    next: i64,
    /// Its leader's node id; negative while unknown.
    leader: i32,
    /// Whether a fetch has reached the end of what it held.
    caught_up: bool,
    /// Whether a fetch of it is in flight.
    busy: bool,
    /// Its wait after fetches without progress.
    pause: Pause,
}

/// The partitions of one fetch or merged stream and where each stands.
#[derive(Debug)]
pub(super) struct PartitionSet {
    parts: BTreeMap<i32, Part>,
    merged: bool,
    read_committed: bool,
    /// What the stream reports as its position (see [`PartitionSet::record_progress`]).
    progress: Arc<Progress>,
    /// Whether the caught-up flush has been due.
    flushed: bool,
    /// Whether the leaders are being asked for.
    refreshing: bool,
    /// How long the next leader refresh waits.
    backoff: Duration,
}

/// A fetch to send: to which leader, at most how many bytes, which partitions from where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PlannedFetch {
    /// The leader's node id.
    pub leader: i32,
    /// The largest response.
    pub max_bytes: i32,
    /// The partitions, ascending, each at its next offset.
    pub partitions: Vec<FetchPartition>,
}

impl PlannedFetch {
    /// The partitions asked for.
    pub(super) fn asked(&self) -> Vec<i32> {
        self.partitions.iter().map(|p| p.partition).collect()
    }
}

/// What one fetch response said of the partitions it asked for, gathered as it is read.
#[derive(Debug, Default)]
pub(super) struct Answers {
    seen: Vec<Seen>,
}

/// Which records of a partition's answer are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Window {
    /// The partition.
    pub partition: i32,
    /// The offset it was fetched from: records before it are not read.
    pub from: i64,
    /// Records at or past this (the high watermark) are not read.
    pub limit: i64,
    /// Where its readable records end (the high watermark, or the last stable offset).
    end: i64,
    /// Its place among the [`Answers`].
    seen: usize,
}

/// A partition that waits after a fetch that brought it nothing new, for the caller to report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Stall {
    /// The partition.
    pub partition: i32,
    /// Why it waits.
    pub cause: Cause,
    /// Its next offset.
    pub offset: i64,
    /// Where its readable records end, as the response said.
    pub end: Option<i64>,
    /// How long it waits.
    pub delay: Duration,
}

impl PartitionSet {
    /// The partitions `plan` reads, as `(partition, leader, next offset)`; none caught up yet.
    pub(super) fn new(plan: &Plan, starts: impl IntoIterator<Item = (i32, i32, i64)>) -> Self {
        let parts: BTreeMap<i32, Part> = starts
            .into_iter()
            .map(|(partition, leader, next)| {
                let part = Part {
                    next,
                    leader,
                    caught_up: false,
                    busy: false,
                    pause: Pause::default(),
                };
                (partition, part)
            })
            .collect();
        let progress = Arc::new(Progress {
            partitions: parts.iter().map(|(p, s)| (*p, s.next)).collect(),
        });
        PartitionSet {
            parts,
            merged: plan.merged,
            read_committed: plan.read_committed,
            progress,
            flushed: false,
            refreshing: false,
            backoff: BACKOFF_MIN,
        }
    }

    /// Whether there is no partition to read.
    pub(super) fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// The partitions, ascending.
    pub(super) fn ids(&self) -> Vec<i32> {
        self.parts.keys().copied().collect()
    }

    /// Where `partition` is read from next.
    pub(super) fn next(&self, partition: i32) -> Option<i64> {
        self.parts.get(&partition).map(|p| p.next)
    }

    /// The leader of `partition`; negative while unknown.
    pub(super) fn leader(&self, partition: i32) -> Option<i32> {
        self.parts.get(&partition).map(|p| p.leader)
    }

    /// The fetches to send at `now` with `credit` bytes downstream and `in_flight` fetches
    /// already sent: one per leader, of every partition it leads that is neither in flight nor
    /// waiting, each at its next offset, the credit shared among the fetches in flight. The
    /// partitions planned are in flight until [`PartitionSet::returned`].
    pub(super) fn plan_fetches(
        &mut self,
        credit: u64,
        in_flight: usize,
        now: Instant,
    ) -> Vec<PlannedFetch> {
        if credit == 0 {
            return Vec::new();
        }
        let budget = i32::try_from(credit / in_flight.max(1) as u64).unwrap_or(i32::MAX);
        let max_bytes = budget.clamp(MIN_FETCH_BYTES, MAX_FETCH_BYTES);
        let mut by_leader: BTreeMap<i32, Vec<FetchPartition>> = BTreeMap::new();
        for (id, part) in &mut self.parts {
            if part.busy || part.leader < 0 || part.pause.until(now).is_some() {
                continue;
            }
            part.busy = true;
            by_leader
                .entry(part.leader)
                .or_default()
                .push(FetchPartition {
                    partition: *id,
                    offset: part.next,
                    max_bytes: 0,
                });
        }
        by_leader
            .into_iter()
            .map(|(leader, mut partitions)| {
                let count = i32::try_from(partitions.len()).unwrap_or(i32::MAX);
                let each = (max_bytes / count).max(MIN_FETCH_BYTES);
                for p in &mut partitions {
                    p.max_bytes = each;
                }
                PlannedFetch {
                    leader,
                    max_bytes,
                    partitions,
                }
            })
            .collect()
    }

    /// When the first partition that waits at `now` may be fetched again, if one does.
    pub(super) fn resume_at(&self, now: Instant) -> Option<Instant> {
        self.parts
            .values()
            .filter(|p| !p.busy)
            .filter_map(|p| p.pause.until(now))
            .min()
    }

    /// A fetch of `asked` came back, however it went: they may be fetched again.
    pub(super) fn returned(&mut self, asked: &[i32]) {
        for id in asked {
            if let Some(part) = self.parts.get_mut(id) {
                part.busy = false;
            }
        }
    }

    /// A response to a fetch of `asked` is to be read: nothing answered yet.
    pub(super) fn answers(&self, asked: &[i32]) -> Answers {
        let seen = asked
            .iter()
            .filter_map(|id| {
                let part = self.parts.get(id)?;
                Some(Seen {
                    partition: *id,
                    before: part.next,
                    after: part.next,
                    answer: Answer::Missing,
                })
            })
            .collect();
        Answers { seen }
    }

    /// What `data` says of its partition: the window its records are read in, or none when
    /// the partition was not asked for, or when its leader moved (then it is asked for again
    /// before the partition is fetched); an error that asking again cannot mend fails.
    pub(super) fn answer(
        &mut self,
        answers: &mut Answers,
        data: &PartitionData,
    ) -> Result<Option<Window>, ClientError> {
        // Only what was asked: another partition's data is not read at this offset.
        let Some(at) = answers
            .seen
            .iter()
            .position(|s| s.partition == data.partition)
        else {
            return Ok(None);
        };
        let Some(part) = self.parts.get_mut(&data.partition) else {
            return Ok(None);
        };
        let seen = &mut answers.seen[at];
        if data.error_code != 0 {
            if kerr::is_retriable(data.error_code) {
                part.leader = -1;
                seen.answer = Answer::Failed;
                return Ok(None);
            }
            return Err(ClientError::Kafka {
                code: data.error_code,
            });
        }
        let end = if self.read_committed && data.last_stable_offset >= 0 {
            data.last_stable_offset
        } else {
            data.high_watermark
        };
        seen.answer = Answer::Records {
            end,
            any: !data.records.is_empty(),
        };
        // A broker returns no record at or past its high watermark: any such is not read.
        let limit = if data.high_watermark >= 0 {
            data.high_watermark
        } else {
            i64::MAX
        };
        Ok(Some(Window {
            partition: data.partition,
            from: part.next,
            limit,
            end,
            seen: at,
        }))
    }

    /// A record of `window` before `next` was read; on a merged stream the progress moves
    /// past it, for the record to carry.
    pub(super) fn record_read(&mut self, answers: &mut Answers, window: &Window, next: i64) {
        if let Some(seen) = answers.seen.get_mut(window.seen) {
            seen.after = next;
        }
        if self.merged {
            Arc::make_mut(&mut self.progress).set(window.partition, next);
        }
    }

    /// The progress a record carries: every partition's next offset on a merged stream, none
    /// on a fetch stream.
    pub(super) fn record_progress(&self) -> Option<Arc<Progress>> {
        self.merged.then(|| self.progress.clone())
    }

    /// The records of `window` were read; the partition's batches end at `next_offset`.
    /// Its next offset moves past both, never beyond the high watermark by the batches; it is
    /// caught up once that reaches the end of its readable records.
    pub(super) fn partition_read(
        &mut self,
        answers: &mut Answers,
        window: &Window,
        next_offset: i64,
    ) {
        let Some(part) = self.parts.get_mut(&window.partition) else {
            return;
        };
        let Some(seen) = answers.seen.get_mut(window.seen) else {
            return;
        };
        part.next = seen.after.max(next_offset.min(window.limit));
        seen.after = part.next;
        if self.merged {
            Arc::make_mut(&mut self.progress).set(window.partition, part.next);
        }
        part.caught_up = part.caught_up || part.next >= window.end;
    }

    /// A response read at `now` took `elapsed`: partitions it advanced no longer wait, and
    /// any advance resets the leader refresh backoff; those it brought nothing new when it
    /// should have wait (see [`stall::judge`]), returned to be reported.
    pub(super) fn settle(
        &mut self,
        answers: Answers,
        elapsed: Duration,
        now: Instant,
    ) -> Vec<Stall> {
        let seen = answers.seen;
        for s in seen.iter().filter(|s| s.after > s.before) {
            self.backoff = BACKOFF_MIN;
            if let Some(part) = self.parts.get_mut(&s.partition) {
                part.pause.progressed();
            }
        }
        stall::judge(&seen, elapsed)
            .into_iter()
            .filter_map(|(partition, cause)| {
                let part = self.parts.get_mut(&partition)?;
                let end = seen
                    .iter()
                    .find(|s| s.partition == partition)
                    .and_then(|s| match s.answer {
                        Answer::Records { end, .. } => Some(end),
                        Answer::Missing | Answer::Failed => None,
                    });
                Some(Stall {
                    partition,
                    cause,
                    offset: part.next,
                    end,
                    delay: part.pause.stalled(now),
                })
            })
            .collect()
    }

    /// The progress for the caught-up flush when it is due: once, the first time every
    /// partition has caught up.
    pub(super) fn caught_up_flush(&mut self) -> Option<Arc<Progress>> {
        if self.flushed || !self.parts.values().all(|p| p.caught_up) {
            return None;
        }
        if !self.merged
            && let Some((id, part)) = self.parts.iter().next()
        {
            // A fetch stream's progress is its partition's, as of now.
            Arc::make_mut(&mut self.progress).set(*id, part.next);
        }
        self.flushed = true;
        Some(self.progress.clone())
    }

    /// The connection to the leader of `asked` failed them: where their leader is is asked
    /// before they are fetched again.
    pub(super) fn leader_lost(&mut self, asked: &[i32]) {
        for id in asked {
            if let Some(part) = self.parts.get_mut(id) {
                part.leader = -1;
            }
        }
    }

    /// How long to wait before asking for the leaders, when a partition's is unknown and
    /// they are not being asked for already: 100 ms doubling to 5 s until a fetch advances.
    /// They are then being asked for until [`PartitionSet::refreshed`].
    pub(super) fn refresh_due(&mut self) -> Option<Duration> {
        if self.refreshing || self.parts.values().all(|p| p.leader >= 0) {
            return None;
        }
        self.refreshing = true;
        let delay = self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        Some(delay)
    }

    /// The leaders were asked for: `(partition, leader)` as found, none when asking failed.
    pub(super) fn refreshed(&mut self, leaders: impl IntoIterator<Item = (i32, i32)>) {
        self.refreshing = false;
        for (partition, leader) in leaders {
            if let Some(part) = self.parts.get_mut(&partition) {
                part.leader = leader;
            }
        }
    }

    /// The topic gained `partition`, led by `leader`, read from `next`: it is read too,
    /// caught up already (its records do not hold up the caught-up flush). A partition known
    /// already stays as it is.
    pub(super) fn gained(&mut self, partition: i32, leader: i32, next: i64) {
        if self.parts.contains_key(&partition) {
            return;
        }
        let part = Part {
            next,
            leader,
            caught_up: true,
            busy: false,
            pause: Pause::default(),
        };
        self.parts.insert(partition, part);
        Arc::make_mut(&mut self.progress).set(partition, next);
    }
}

#[cfg(test)]
mod tests;

//! Fetches that come back without progress. A broker that keeps answering a partition with
//! nothing new although its high watermark says there is more (an empty answer, the same stale
//! batch, an incomplete batch only, another partition's data, no answer at all) — or answers
//! at once with nothing, ignoring `max_wait_ms` — would have the partition fetched again at
//! once, forever. Such a partition waits instead, [`BACKOFF_MIN`] doubling to [`BACKOFF_MAX`],
//! until a fetch advances it. Sans I/O: the caller passes the time.

use std::time::{Duration, Instant};

use super::{BACKOFF_MAX, BACKOFF_MIN, MAX_WAIT_MS};

/// Why a fetch of a partition made no progress when it should have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cause {
    /// The response did not answer for the partition (it may have answered for another).
    Unanswered,
    /// No records, though the high watermark is ahead.
    Empty,
    /// Records, but none past the fetch offset (a stale batch, an incomplete batch only).
    NothingNew,
    /// Nothing new, answered long before `max_wait_ms`.
    AtOnce,
}

impl Cause {
    /// The cause as reported.
    pub(super) fn name(self) -> &'static str {
        match self {
            Cause::Unanswered => "no answer for the partition",
            Cause::Empty => "no records though the high watermark is ahead",
            Cause::NothingNew => "only records before the fetch offset or an incomplete batch",
            Cause::AtOnce => "nothing new, answered without waiting",
        }
    }
}

/// What a response said of one partition asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Answer {
    /// Nothing.
    Missing,
    /// An error (handled as such: leadership moving, say).
    Failed,
    /// Records, possibly none.
    Records {
        /// Where the readable records end (high watermark, or last stable offset).
        end: i64,
        /// Whether the answer held any record bytes.
        any: bool,
    },
}

/// How a fetch went for one partition asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Seen {
    /// The partition.
    pub partition: i32,
    /// Its next offset before the response.
    pub before: i64,
    /// Its next offset after.
    pub after: i64,
    /// What the response said of it.
    pub answer: Answer,
}

/// Answers sooner than this with nothing new ignore `max_wait_ms`.
const AT_ONCE: Duration = Duration::from_millis(MAX_WAIT_MS as u64 / 2);

/// The partitions of a fetch that answered in `elapsed` to wait, and why: none when some
/// partition advanced (the others had their turn in a response that made progress), else
/// each one with data ahead or not answered, and every one when the broker answered at once.
pub(super) fn judge(seen: &[Seen], elapsed: Duration) -> Vec<(i32, Cause)> {
    if seen.iter().any(|s| s.after > s.before) {
        return Vec::new();
    }
    seen.iter()
        .filter_map(|s| {
            let cause = match s.answer {
                Answer::Missing => Cause::Unanswered,
                Answer::Failed => return None,
                Answer::Records { end, any: true } if end > s.after => Cause::NothingNew,
                Answer::Records { end, .. } if end > s.after => Cause::Empty,
                Answer::Records { .. } if elapsed < AT_ONCE => Cause::AtOnce,
                Answer::Records { .. } => return None,
            };
            Some((s.partition, cause))
        })
        .collect()
}

/// A partition's wait after fetches without progress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Pause {
    delay: Duration,
    until: Option<Instant>,
}

impl Pause {
    /// Another fetch without progress at `now`: the wait, doubled from the last one.
    pub(super) fn stalled(&mut self, now: Instant) -> Duration {
        self.delay = if self.delay.is_zero() {
            BACKOFF_MIN
        } else {
            (self.delay * 2).min(BACKOFF_MAX)
        };
        self.until = Some(now + self.delay);
        self.delay
    }

    /// A fetch advanced the partition: no wait next time.
    pub(super) fn progressed(&mut self) {
        *self = Pause::default();
    }

    /// When the partition may be fetched again, if it waits beyond `now`.
    pub(super) fn until(&self, now: Instant) -> Option<Instant> {
        self.until.filter(|u| *u > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(partition: i32, before: i64, after: i64, end: Option<i64>, any: bool) -> Seen {
        Seen {
            partition,
            before,
            after,
            answer: end.map_or(Answer::Missing, |end| Answer::Records { end, any }),
        }
    }

    #[test]
    fn causes() {
        let slow = Duration::from_millis(MAX_WAIT_MS as u64);
        let fast = Duration::from_millis(1);
        // One partition advancing excuses the others.
        assert_eq!(
            judge(
                &[seen(0, 5, 6, Some(9), true), seen(1, 0, 0, Some(9), false)],
                fast
            ),
            vec![]
        );
        assert_eq!(
            judge(
                &[
                    seen(0, 5, 5, Some(9), false),
                    seen(1, 3, 3, Some(9), true),
                    seen(2, 3, 3, None, false),
                    seen(3, 3, 3, Some(3), false),
                    Seen {
                        answer: Answer::Failed,
                        ..seen(4, 3, 3, None, false)
                    },
                ],
                slow
            ),
            vec![
                (0, Cause::Empty),
                (1, Cause::NothingNew),
                (2, Cause::Unanswered)
            ]
        );
        // Caught up: waiting is the broker's job, unless it answered at once.
        assert_eq!(judge(&[seen(0, 3, 3, Some(3), false)], slow), vec![]);
        assert_eq!(
            judge(&[seen(0, 3, 3, Some(3), false)], fast),
            vec![(0, Cause::AtOnce)]
        );
    }

    #[test]
    fn the_wait_doubles_until_progress() {
        let now = Instant::now();
        let mut pause = Pause::default();
        assert_eq!(pause.until(now), None);
        let waits: Vec<Duration> = (0..8).map(|_| pause.stalled(now)).collect();
        assert_eq!(waits[0], BACKOFF_MIN);
        assert_eq!(waits[1], BACKOFF_MIN * 2);
        assert_eq!(waits[7], BACKOFF_MAX);
        assert_eq!(pause.until(now), Some(now + BACKOFF_MAX));
        assert_eq!(pause.until(now + BACKOFF_MAX), None);
        pause.progressed();
        assert_eq!(pause.stalled(now), BACKOFF_MIN);
    }
}

//! One subscriber's state, kept across reconnections, and what it does with each event: latency,
//! delivery count, and sequence continuity per key (lost and duplicated events).

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{Semaphore, watch};

use crate::net::Net;
use crate::payload::{self, key_index};
use crate::sse::{SseParser, TooLong};
use crate::stats::Stats;
use crate::template::UrlTemplate;

/// What the subscribers are told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Stay connected; a subscriber connected in an older epoch drops and resumes.
    Run {
        /// Bumped to make every subscriber drop its connection and resume.
        epoch: u32,
    },
    /// Close and finish.
    Stop,
}

/// Everything the subscribers share.
pub struct Ctx {
    /// The URL template.
    pub template: UrlTemplate,
    /// How to reach the target.
    pub net: Net,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Number of keys.
    pub keys: usize,
    /// The shared figures.
    pub stats: Stats,
    /// The phase, watched by every subscriber.
    pub phase: watch::Receiver<Phase>,
    /// Bounds the connection attempts in flight.
    pub connecting: Semaphore,
}

impl Ctx {
    /// The request target for `sub`.
    pub fn path(&self, sub: &Subscriber) -> String {
        self.template.path(&format!("k{}", sub.key), sub.index)
    }
}

/// How a connection (or an h2 group's connection) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The run is over.
    Stop,
    /// Told to drop and resume.
    Dropped,
    /// It failed or ended unexpectedly: count an error, back off, reconnect.
    Failed,
}

enum Tracker {
    /// Sees only its own key: the next expected seq.
    One(u64),
    /// Sees every key: the next expected seq of each.
    All(Vec<u64>),
}

/// One subscriber.
pub struct Subscriber {
    /// Its index, 0..N.
    pub index: usize,
    /// Its key number (`k{key}`), `index % keys`.
    pub key: usize,
    /// The SSE parser (keeps the last event ID across reconnections).
    pub parser: SseParser,
    tracker: Tracker,
    /// Latencies of the events of one piece of input, recorded together.
    latencies: Vec<u64>,
    /// The epoch it last connected in, if it ever did.
    connected_epoch: Option<u32>,
}

impl Subscriber {
    /// Subscriber `index`; it expects only its own key if `own_key_only`, else all `keys`.
    pub fn new(index: usize, keys: usize, own_key_only: bool) -> Self {
        Self {
            index,
            key: index % keys.max(1),
            parser: SseParser::new(),
            tracker: if own_key_only {
                Tracker::One(0)
            } else {
                Tracker::All(vec![0; keys.max(1)])
            },
            latencies: Vec::new(),
            connected_epoch: None,
        }
    }

    /// Notes a successful (re)connection in `epoch`; counts a resumption if it had been
    /// connected in an earlier epoch.
    pub fn connected(&mut self, epoch: u32, stats: &Stats) {
        if self.connected_epoch.is_some_and(|e| e < epoch) {
            stats
                .resumed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.connected_epoch = Some(epoch);
        self.parser.reset_stream();
    }

    /// Whether `phase` tells this subscriber to end its connection.
    pub fn told_to_leave(&self, phase: Phase) -> Option<Outcome> {
        match phase {
            Phase::Stop => Some(Outcome::Stop),
            Phase::Run { epoch } if self.connected_epoch.is_some_and(|e| e < epoch) => {
                Some(Outcome::Dropped)
            }
            Phase::Run { .. } => None,
        }
    }

    /// Parses a piece of the event stream and accounts for each event in it.
    pub fn feed(&mut self, bytes: &[u8], stats: &Stats) -> Result<(), TooLong> {
        let now = unix_nanos();
        let index = self.index;
        let own = self.key;
        let tracker = &mut self.tracker;
        let latencies = &mut self.latencies;
        latencies.clear();
        let result = self.parser.feed(bytes, |event| {
            let Some(fields) = payload::extract(event.data) else {
                return;
            };
            latencies.push(now.saturating_sub(fields.ts_nanos) / 1_000);
            let key = fields.key.and_then(key_index).unwrap_or(own);
            let next = match tracker {
                Tracker::One(next) if key == own => next,
                Tracker::All(nexts) => match nexts.get_mut(key) {
                    Some(next) => next,
                    None => return,
                },
                Tracker::One(_) => return,
            };
            if fields.seq < *next {
                stats.add_loss(index, 0, 1);
            } else {
                stats.add_loss(index, fields.seq - *next, 0);
                *next = fields.seq.saturating_add(1);
            }
        });
        stats.delivered(index, latencies, now);
        if latencies.capacity() > 1024 {
            // A huge burst once should not pin its memory for the rest of the run.
            *latencies = Vec::new();
        }
        result
    }

    /// Adds the events it never saw at the end of the run, given how many messages each key got.
    pub fn finish(&self, produced: impl Fn(usize) -> u64, stats: &Stats) {
        let missing = match &self.tracker {
            Tracker::One(next) => produced(self.key).saturating_sub(*next),
            Tracker::All(nexts) => nexts
                .iter()
                .enumerate()
                .map(|(key, next)| produced(key).saturating_sub(*next))
                .sum(),
        };
        stats.add_loss(self.index, missing, 0);
    }
}

/// Keeps [`Stats::connected`] right however a connection's future ends.
pub struct ConnectedGuard<'a>(&'a Stats);

impl<'a> ConnectedGuard<'a> {
    /// Counts one more open stream until dropped.
    pub fn new(stats: &'a Stats) -> Self {
        stats
            .connected
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(stats)
    }
}

impl Drop for ConnectedGuard<'_> {
    fn drop(&mut self) {
        self.0
            .connected
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Now, in unix nanoseconds.
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Returns once the phase is [`Phase::Stop`] (or nobody can say otherwise any more).
pub async fn stopped(phase: &mut watch::Receiver<Phase>) {
    while *phase.borrow_and_update() != Phase::Stop {
        if phase.changed().await.is_err() {
            return;
        }
    }
}

/// Sleeps `delay` unless the phase changes first; returns the outcome if it says to stop.
pub async fn backoff(delay: std::time::Duration, phase: &mut watch::Receiver<Phase>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(delay) => false,
        changed = phase.changed() => changed.is_err() || *phase.borrow() == Phase::Stop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, key: usize) -> Vec<u8> {
        let mut data = Vec::new();
        payload::write(&mut data, unix_nanos(), seq, key, 64);
        let mut out = b"data: ".to_vec();
        out.extend_from_slice(&data);
        out.extend_from_slice(b"\n\n");
        out
    }

    #[test]
    fn counts_gaps_duplicates_and_the_missing_tail() {
        let stats = Stats::new().unwrap();
        let mut sub = Subscriber::new(1, 4, true);
        for (seq, key) in [(0, 1), (1, 1), (1, 1), (4, 1), (9, 2)] {
            sub.feed(&event(seq, key), &stats).unwrap();
        }
        assert_eq!((stats.lost_total(), stats.duplicated_total()), (2, 1));
        sub.finish(|_| 7, &stats);
        assert_eq!(stats.lost_total(), 4);
        assert_eq!(stats.delivered_total(), 5);

        let stats = Stats::new().unwrap();
        let mut all = Subscriber::new(0, 2, false);
        for (seq, key) in [(0, 0), (0, 1), (1, 0)] {
            all.feed(&event(seq, key), &stats).unwrap();
        }
        all.finish(|k| if k == 0 { 2 } else { 3 }, &stats);
        assert_eq!((stats.lost_total(), stats.duplicated_total()), (2, 0));
    }

    #[test]
    fn drops_only_when_the_epoch_moves_on() {
        let stats = Stats::new().unwrap();
        let mut sub = Subscriber::new(0, 1, true);
        assert_eq!(sub.told_to_leave(Phase::Run { epoch: 1 }), None);
        sub.connected(0, &stats);
        assert_eq!(sub.told_to_leave(Phase::Run { epoch: 0 }), None);
        assert_eq!(
            sub.told_to_leave(Phase::Run { epoch: 1 }),
            Some(Outcome::Dropped)
        );
        assert_eq!(sub.told_to_leave(Phase::Stop), Some(Outcome::Stop));
        sub.connected(1, &stats);
        assert_eq!(stats.resumed.load(std::sync::atomic::Ordering::Relaxed), 1);
    }
}

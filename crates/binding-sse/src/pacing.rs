//! Heartbeats and stalled clients, with no clock of its own: the caller passes the time in.
//!
//! - **Heartbeat.** When nothing has been written for the heartbeat interval and the stream is
//!   between events, an empty comment is due. Inside a fragmented event none is written: a
//!   comment there would break the data line in progress.
//! - **Stall.** From the moment bytes wait to be written and the client's side has no credit
//!   for them, the client has the stall timeout to make room. Any write restarts the count.
//!   When it runs out the client is stalled: the server ends the response (the client resumes
//!   by id), so a stuck client never makes the server hold more than its bound.

use std::time::{Duration, Instant};

/// What is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// Write a heartbeat comment.
    Heartbeat,
    /// The client has not made room for the stall timeout: disconnect it.
    Stalled,
}

/// The timers of one stream.
#[derive(Clone, Debug)]
pub struct Pacer {
    heartbeat: Option<Duration>,
    stall: Duration,
    last_write: Instant,
    blocked_since: Option<Instant>,
}

impl Pacer {
    /// Timers starting at `now`; `heartbeat` `None` writes no heartbeats.
    pub fn new(now: Instant, heartbeat: Option<Duration>, stall: Duration) -> Self {
        Pacer {
            heartbeat,
            stall,
            last_write: now,
            blocked_since: None,
        }
    }

    /// Bytes were written at `now`.
    pub fn wrote(&mut self, now: Instant) {
        self.last_write = now;
        self.blocked_since = None;
    }

    /// At `now`, bytes wait and the client's side has no credit for them.
    pub fn blocked(&mut self, now: Instant) {
        self.blocked_since.get_or_insert(now);
    }

    /// Whether bytes are waiting for credit.
    pub fn is_blocked(&self) -> bool {
        self.blocked_since.is_some()
    }

    /// When something is next due; `idle` when the stream is between events with nothing to
    /// write, which is when a heartbeat may be written.
    pub fn deadline(&self, idle: bool) -> Option<Instant> {
        if let Some(since) = self.blocked_since {
            return Some(since + self.stall);
        }
        match self.heartbeat {
            Some(every) if idle => Some(self.last_write + every),
            _ => None,
        }
    }

    /// What is due at `now`, if anything.
    pub fn due(&self, now: Instant, idle: bool) -> Option<Due> {
        let deadline = self.deadline(idle)?;
        if now < deadline {
            return None;
        }
        Some(if self.blocked_since.is_some() {
            Due::Stalled
        } else {
            Due::Heartbeat
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn heartbeat_when_idle() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(t0, Some(15 * S), 30 * S);
        assert_eq!(pacer.due(t0 + 14 * S, true), None);
        assert_eq!(pacer.due(t0 + 15 * S, true), Some(Due::Heartbeat));
        assert_eq!(pacer.due(t0 + 15 * S, false), None);
        pacer.wrote(t0 + 15 * S);
        assert_eq!(pacer.deadline(true), Some(t0 + 30 * S));
    }

    #[test]
    fn no_heartbeat_when_off() {
        let t0 = Instant::now();
        let pacer = Pacer::new(t0, None, 30 * S);
        assert_eq!(pacer.deadline(true), None);
        assert_eq!(pacer.due(t0 + 1000 * S, true), None);
    }

    #[test]
    fn stall_counts_from_first_block_until_a_write() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(t0, Some(15 * S), 30 * S);
        pacer.blocked(t0 + S);
        pacer.blocked(t0 + 20 * S);
        assert!(pacer.is_blocked());
        assert_eq!(pacer.due(t0 + 30 * S, true), None);
        assert_eq!(pacer.due(t0 + 31 * S, false), Some(Due::Stalled));
        pacer.wrote(t0 + 31 * S);
        assert!(!pacer.is_blocked());
        assert_eq!(pacer.due(t0 + 32 * S, false), None);
    }
}

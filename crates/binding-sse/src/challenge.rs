//! A guarded stream's deadlines, with no clock of its own (the caller passes the time in):
//! the challenge that asks the client for fresh credentials, and the end of the stream when
//! its session expires.
//!
//! - **Challenge.** The guard's `challenge` seconds before the session expires, the client
//!   is sent [`CHALLENGE`] (Zilla's event: answer it with a `POST` of fresh credentials).
//!   It is written between events only; once per expiry, so after a re-authorization moves
//!   the expiry later the next challenge is armed for the new one.
//! - **Expiry.** At the session's expiry the stream ends. The expiry is read from the
//!   stream's [`Lease`] each time the caller asks, so a re-authorization (which only moves it
//!   later) needs no wake: the timer set for the old deadline fires, finds the new one, and
//!   is set again.
//!
//! Expiries are wall-clock times (a token's `exp`); the caller's clock is monotonic. Both
//! are read once when the stream starts ([`Authorized::new`]) and expiries converted from there,
//! so that a stream's deadlines follow the clock its timers run on.

use std::time::{Instant, SystemTime};

use binding_api::guard::Lease;

/// The challenge event: Zilla's type and data, which tell the client how to re-authorize.
pub const CHALLENGE: &[u8] = b"event:challenge\n\
data:{\"method\":\"POST\",\"headers\":{\"content-type\":\"application/x-challenge-response\"}}\n\n";

/// What is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuardDue {
    /// Write [`CHALLENGE`].
    Challenge,
    /// The session expired: end the stream.
    Expired,
}

/// The leases of a stream a guarded route admitted, and which expiry each was challenged for.
#[derive(Debug)]
pub struct Authorized {
    leases: Vec<Challenged>,
    /// The wall-clock time and the caller's time at the same moment.
    anchor: (SystemTime, Instant),
}

#[derive(Debug)]
struct Challenged {
    lease: Lease,
    /// The expiry the client was last challenged for.
    challenged_for: Option<SystemTime>,
}

impl Authorized {
    /// A stream holding `leases`, starting at `wall` (wall clock) = `now` (the caller's
    /// clock); `None` without leases (a route that is not guarded).
    pub fn new(leases: Vec<Lease>, wall: SystemTime, now: Instant) -> Option<Authorized> {
        if leases.is_empty() {
            return None;
        }
        let leases = leases
            .into_iter()
            .map(|lease| Challenged {
                lease,
                challenged_for: None,
            })
            .collect();
        Some(Authorized {
            leases,
            anchor: (wall, now),
        })
    }

    /// When something is next due; `between_events` when a challenge may be written now.
    pub fn deadline(&self, between_events: bool) -> Option<Instant> {
        self.leases
            .iter()
            .flat_map(|challenged| {
                let expires_at = challenged.lease.expires_at();
                let challenge = between_events
                    .then(|| self.challenge_at(challenged, expires_at))
                    .flatten();
                [Some(self.instant(expires_at)), challenge]
            })
            .flatten()
            .min()
    }

    /// What is due at `now`, if anything: the expiry first; a challenge is due (and counted
    /// as written) only `between_events`.
    pub fn due(&mut self, now: Instant, between_events: bool) -> Option<GuardDue> {
        if self
            .leases
            .iter()
            .any(|challenged| now >= self.instant(challenged.lease.expires_at()))
        {
            return Some(GuardDue::Expired);
        }
        if !between_events {
            return None;
        }
        let mut due = None;
        for index in 0..self.leases.len() {
            let challenged = &self.leases[index];
            let expires_at = challenged.lease.expires_at();
            if self
                .challenge_at(challenged, expires_at)
                .is_some_and(|at| now >= at)
            {
                // One event answers every lease due: the client's fresh credentials renew
                // each of them.
                self.leases[index].challenged_for = Some(expires_at);
                due = Some(GuardDue::Challenge);
            }
        }
        due
    }

    /// When to challenge for `expires_at`, unless the client was challenged for it already
    /// or the guard does not challenge.
    fn challenge_at(&self, challenged: &Challenged, expires_at: SystemTime) -> Option<Instant> {
        let lead = challenged.lease.challenge_lead()?;
        if challenged.challenged_for == Some(expires_at) {
            return None;
        }
        let at = self.instant(expires_at);
        Some(at.checked_sub(lead).unwrap_or(at).max(self.anchor.1))
    }

    /// `at` on the caller's clock (the start, for a time before it).
    fn instant(&self, at: SystemTime) -> Instant {
        let (wall, now) = self.anchor;
        let ahead = at.duration_since(wall).unwrap_or_default();
        now.checked_add(ahead).unwrap_or(now)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use binding_api::guard::{LiveSessions, Session};

    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn session(live: &std::sync::Arc<LiveSessions>, wall: SystemTime, exp: u32) -> Session {
        Session {
            guard: "jwt".into(),
            identity: Some("alice".into()),
            roles: Vec::new(),
            attributes: BTreeMap::new(),
            expires_at: wall + S * exp,
            challenge_at: Some(wall + S * exp.saturating_sub(3)),
            live: Some(live.clone()),
        }
    }

    #[test]
    fn challenged_before_the_expiry_once_then_again_after_a_renewal() {
        let (wall, t0) = (SystemTime::UNIX_EPOCH + 1000 * S, Instant::now());
        let live = LiveSessions::new("jwt");
        let lease = live.hold(&session(&live, wall, 10), &[]);
        let mut guarded = Authorized::new(vec![lease], wall, t0).unwrap();
        assert_eq!(guarded.deadline(true), Some(t0 + 7 * S));
        assert_eq!(
            guarded.deadline(false),
            Some(t0 + 10 * S),
            "inside an event"
        );
        assert_eq!(guarded.due(t0 + 6 * S, true), None);
        assert_eq!(guarded.due(t0 + 7 * S, false), None);
        assert_eq!(guarded.due(t0 + 7 * S, true), Some(GuardDue::Challenge));
        assert_eq!(guarded.due(t0 + 8 * S, true), None, "once");
        assert_eq!(guarded.deadline(true), Some(t0 + 10 * S));

        // The client re-authorizes: the expiry moves, the next challenge is armed.
        assert_eq!(live.renew(&session(&live, wall, 20)), 1);
        assert_eq!(guarded.due(t0 + 10 * S, true), None, "not expired any more");
        assert_eq!(guarded.deadline(true), Some(t0 + 17 * S));
        assert_eq!(guarded.due(t0 + 17 * S, true), Some(GuardDue::Challenge));
        assert_eq!(guarded.due(t0 + 20 * S, true), Some(GuardDue::Expired));
    }

    #[test]
    fn without_a_challenge_only_the_expiry() {
        let (wall, t0) = (SystemTime::UNIX_EPOCH + 1000 * S, Instant::now());
        let live = LiveSessions::new("jwt");
        let mut quiet = session(&live, wall, 10);
        quiet.challenge_at = None;
        let mut guarded = Authorized::new(vec![live.hold(&quiet, &[])], wall, t0).unwrap();
        assert_eq!(guarded.deadline(true), Some(t0 + 10 * S));
        assert_eq!(guarded.due(t0 + 9 * S, true), None);
        assert_eq!(guarded.due(t0 + 10 * S, false), Some(GuardDue::Expired));
        assert!(Authorized::new(Vec::new(), wall, t0).is_none());
    }

    #[test]
    fn a_challenge_already_due_is_due_at_the_start() {
        let (wall, t0) = (SystemTime::UNIX_EPOCH + 1000 * S, Instant::now());
        let live = LiveSessions::new("jwt");
        let mut late = session(&live, wall, 2);
        late.challenge_at = Some(wall - 5 * S);
        let mut guarded = Authorized::new(vec![live.hold(&late, &[])], wall, t0).unwrap();
        assert_eq!(guarded.deadline(true), Some(t0));
        assert_eq!(guarded.due(t0, true), Some(GuardDue::Challenge));
        assert_eq!(guarded.deadline(true), Some(t0 + 2 * S));
    }
}

//! Live sessions: the streams a guard's sessions admitted, kept by identity so that fresh
//! credentials from the same client extend them (Zilla's re-authorization), and forgotten
//! when the streams end.
//!
//! A stream admitted by a guarded route holds a [`Lease`]: its session's expiry, shared
//! between the stream and the guard's [`LiveSessions`]. When the client re-authorizes (an
//! http server's `POST` with `content-type: application/x-challenge-response` and a fresh
//! token), the guard [renews](LiveSessions::renew) every lease of the fresh session's
//! identity whose stream the fresh session would still admit: it holds every role the
//! stream's route required, and the same attributes (which may have chosen what the stream
//! reads, as `${guarded['GUARD'].attributes.NAME}` does in sse-kafka filters). A renewal only
//! moves an expiry later. The stream reads its lease when its own timer fires, so a renewal
//! wakes nothing and takes no lock the stream waits on: the registry's lock is taken when a
//! stream starts or ends and when a client re-authorizes.
//!
//! Memory is bounded: an entry lives as long as the lease that holds it, and a guard keeps
//! at most [`MAX_LIVE_SESSIONS`]; past that (and for a session without an identity) a
//! stream still gets a lease, one that nothing renews, so it ends when its token expires.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, SystemTime};
//!
//! use binding_api::guard::{LiveSessions, Session};
//!
//! let live = LiveSessions::new("authn_jwt");
//! let now = SystemTime::now();
//! let session = |roles: &[&str], lifetime: u64| Session {
//!     guard: "authn_jwt".into(),
//!     identity: Some("alice".into()),
//!     roles: roles.iter().map(|r| (*r).to_owned()).collect(),
//!     attributes: Default::default(),
//!     expires_at: now + Duration::from_secs(lifetime),
//!     challenge_at: None,
//!     live: Some(live.clone()),
//! };
//! let lease = live.hold(&session(&["proxy:stream"], 60), &["proxy:stream".to_owned()]);
//! assert_eq!(live.renew(&session(&["read"], 600)), 0, "lacks the stream's role");
//! assert_eq!(live.renew(&session(&["proxy:stream"], 600)), 1);
//! assert!(lease.expires_at() >= now + Duration::from_secs(599));
//! drop(lease);
//! assert_eq!(live.len(), 0);
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Session;

/// The most leases one guard keeps for re-authorization.
pub const MAX_LIVE_SESSIONS: usize = 256 * 1024;

/// The streams a guard's sessions admitted, by identity, for re-authorization. Shared by the
/// guard and the sessions it issues ([`Session::live`]).
pub struct LiveSessions {
    guard: Arc<str>,
    capacity: usize,
    held: Mutex<Held>,
}

/// What the lock protects.
#[derive(Default)]
struct Held {
    by_identity: HashMap<String, HashMap<u64, Entry>>,
    count: usize,
    next_id: u64,
    /// Warned that the registry is full, since the last stream it took.
    warned_full: bool,
}

/// One stream's lease, as the guard sees it.
struct Entry {
    /// The roles the stream's route required of the session.
    roles: Box<[String]>,
    /// The session's attributes when the stream was admitted.
    attributes: BTreeMap<String, String>,
    expires_at: Arc<AtomicU64>,
}

impl LiveSessions {
    /// An empty registry for the guard `guard`, keeping at most [`MAX_LIVE_SESSIONS`].
    pub fn new(guard: &str) -> Arc<LiveSessions> {
        LiveSessions::with_capacity(guard, MAX_LIVE_SESSIONS)
    }

    /// An empty registry keeping at most `capacity` leases.
    pub fn with_capacity(guard: &str, capacity: usize) -> Arc<LiveSessions> {
        Arc::new(LiveSessions {
            guard: guard.into(),
            capacity,
            held: Mutex::new(Held::default()),
        })
    }

    /// A lease for a stream that `session` opened on a route requiring `roles`: kept here
    /// for [`renew`](LiveSessions::renew) until the lease is dropped, when the session has an
    /// identity and there is room; otherwise a lease nothing renews.
    pub fn hold(self: &Arc<Self>, session: &Session, roles: &[String]) -> Lease {
        let mut lease = Lease::fixed(session);
        let Some(identity) = &session.identity else {
            return lease;
        };
        let mut held = self.lock();
        if held.count >= self.capacity {
            if !held.warned_full {
                held.warned_full = true;
                tracing::warn!(
                    guard = %self.guard,
                    capacity = self.capacity,
                    "guard keeps as many live sessions as it may: further streams end when \
                     their token expires, whatever the client re-authorizes"
                );
            }
            return lease;
        }
        held.warned_full = false;
        held.count += 1;
        let id = held.next_id;
        held.next_id += 1;
        held.by_identity
            .entry(identity.clone())
            .or_default()
            .insert(
                id,
                Entry {
                    roles: roles.into(),
                    attributes: session.attributes.clone(),
                    expires_at: lease.expires_at.clone(),
                },
            );
        lease.registration = Some(Registration {
            live: self.clone(),
            identity: identity.clone(),
            id,
        });
        lease
    }

    /// Extends, to `fresh`'s expiry, every lease of `fresh`'s identity that `fresh` would
    /// still admit (it holds the roles the lease's route required and has the same
    /// attributes); returns how many. An expiry only moves later.
    pub fn renew(&self, fresh: &Session) -> usize {
        let Some(identity) = &fresh.identity else {
            return 0;
        };
        let until = unix_millis(fresh.expires_at);
        let held = self.lock();
        let Some(leases) = held.by_identity.get(identity) else {
            return 0;
        };
        let mut renewed = 0;
        for entry in leases.values() {
            let admits = entry.roles.iter().all(|role| fresh.has_role(role))
                && entry.attributes == fresh.attributes;
            if admits {
                entry.expires_at.fetch_max(until, Ordering::Relaxed);
                renewed += 1;
            }
        }
        renewed
    }

    /// How many leases are kept.
    pub fn len(&self) -> usize {
        self.lock().count
    }

    /// Whether no lease is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn release(&self, identity: &str, id: u64) {
        let mut held = self.lock();
        let Some(leases) = held.by_identity.get_mut(identity) else {
            return;
        };
        if leases.remove(&id).is_some() {
            if leases.is_empty() {
                held.by_identity.remove(identity);
            }
            held.count -= 1;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Held> {
        // Every update leaves the maps and the count consistent before it can panic.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for LiveSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveSessions")
            .field("guard", &self.guard)
            .field("len", &self.len())
            .finish()
    }
}

/// Registries are the same when they are one.
impl PartialEq for LiveSessions {
    fn eq(&self, other: &LiveSessions) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for LiveSessions {}

/// A stream's hold on the session it was admitted with: when it expires (later once the
/// client re-authorizes) and when to challenge the client for fresh credentials. Dropping it
/// forgets the stream.
#[derive(Debug)]
pub struct Lease {
    /// Milliseconds since the Unix epoch.
    expires_at: Arc<AtomicU64>,
    /// How long before the expiry the challenge is due.
    challenge_lead: Option<Duration>,
    registration: Option<Registration>,
}

#[derive(Debug)]
struct Registration {
    live: Arc<LiveSessions>,
    identity: String,
    id: u64,
}

impl Lease {
    /// A lease on `session` that nothing renews: it expires with the session.
    pub fn fixed(session: &Session) -> Lease {
        let challenge_lead = session
            .challenge_at
            .map(|at| session.expires_at.duration_since(at).unwrap_or_default());
        Lease {
            expires_at: Arc::new(AtomicU64::new(unix_millis(session.expires_at))),
            challenge_lead,
            registration: None,
        }
    }

    /// When the session expires now (renewals move it later).
    pub fn expires_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.expires_at.load(Ordering::Relaxed))
    }

    /// How long before [`expires_at`](Lease::expires_at) the client is to be challenged for
    /// fresh credentials; `None` when the guard does not challenge.
    pub fn challenge_lead(&self) -> Option<Duration> {
        self.challenge_lead
    }

    /// Whether a re-authorization can renew it (its guard keeps it).
    pub fn is_renewable(&self) -> bool {
        self.registration.is_some()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(Registration { live, identity, id }) = &self.registration {
            live.release(identity, *id);
        }
    }
}

/// `at` in milliseconds since the Unix epoch (0 before it, saturated far after it).
fn unix_millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Duration = Duration::from_secs(1_000_000);

    fn session(
        live: &Arc<LiveSessions>,
        identity: Option<&str>,
        roles: &[&str],
        exp: u64,
    ) -> Session {
        Session {
            guard: "jwt".into(),
            identity: identity.map(str::to_owned),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            attributes: BTreeMap::new(),
            expires_at: UNIX_EPOCH + NOW + Duration::from_secs(exp),
            challenge_at: Some(UNIX_EPOCH + NOW + Duration::from_secs(exp.saturating_sub(10))),
            live: Some(live.clone()),
        }
    }

    fn roles(names: &[&str]) -> Vec<String> {
        names.iter().map(|r| (*r).to_owned()).collect()
    }

    fn at(exp: u64) -> SystemTime {
        UNIX_EPOCH + NOW + Duration::from_secs(exp)
    }

    #[test]
    fn a_renewal_extends_the_identitys_streams_that_it_still_admits() {
        let live = LiveSessions::new("jwt");
        let stream = live.hold(
            &session(&live, Some("alice"), &["a", "b"], 60),
            &roles(&["a"]),
        );
        let strict = live.hold(
            &session(&live, Some("alice"), &["a", "b"], 60),
            &roles(&["a", "b"]),
        );
        let bobs = live.hold(&session(&live, Some("bob"), &["a"], 60), &roles(&["a"]));
        assert!(stream.is_renewable());
        assert_eq!(stream.challenge_lead(), Some(Duration::from_secs(10)));
        assert_eq!(live.len(), 3);

        assert_eq!(live.renew(&session(&live, Some("alice"), &["a"], 120)), 1);
        assert_eq!(stream.expires_at(), at(120));
        assert_eq!(
            strict.expires_at(),
            at(60),
            "lacks a role its route required"
        );
        assert_eq!(bobs.expires_at(), at(60), "another identity");

        assert_eq!(
            live.renew(&session(&live, Some("alice"), &["a", "b"], 90)),
            2
        );
        assert_eq!(stream.expires_at(), at(120), "never moved earlier");
        assert_eq!(strict.expires_at(), at(90));
        assert_eq!(live.renew(&session(&live, None, &["a", "b"], 900)), 0);
    }

    #[test]
    fn other_attributes_renew_nothing() {
        let live = LiveSessions::new("jwt");
        let mut tenant_a = session(&live, Some("alice"), &[], 60);
        tenant_a.attributes.insert("tenant".into(), "a".into());
        let lease = live.hold(&tenant_a, &[]);
        let mut tenant_b = session(&live, Some("alice"), &[], 120);
        tenant_b.attributes.insert("tenant".into(), "b".into());
        assert_eq!(live.renew(&tenant_b), 0);
        tenant_a.expires_at = at(120);
        assert_eq!(live.renew(&tenant_a), 1);
        assert_eq!(lease.expires_at(), at(120));
    }

    #[test]
    fn leases_are_forgotten_when_dropped_and_bounded() {
        let live = LiveSessions::with_capacity("jwt", 2);
        let alice = session(&live, Some("alice"), &[], 60);
        let first = live.hold(&alice, &[]);
        let second = live.hold(&alice, &[]);
        let third = live.hold(&alice, &[]);
        assert!(!third.is_renewable(), "past the capacity");
        assert_eq!(third.expires_at(), at(60));
        assert_eq!(live.len(), 2);
        drop(first);
        assert_eq!(live.len(), 1);
        let fourth = live.hold(&alice, &[]);
        assert!(fourth.is_renewable());
        drop((second, third, fourth));
        assert!(live.is_empty());
        assert!(
            live.lock().by_identity.is_empty(),
            "no identity left behind"
        );
        let anonymous = live.hold(&session(&live, None, &[], 60), &[]);
        assert!(!anonymous.is_renewable());
        assert!(live.is_empty());
    }

    #[derive(Clone, Debug)]
    enum Op {
        Hold {
            identity: u8,
            strict: bool,
        },
        Drop(usize),
        Renew {
            identity: u8,
            with_role: bool,
            exp: u64,
        },
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            (0u8..3, any::<bool>()).prop_map(|(identity, strict)| Op::Hold { identity, strict }),
            (0usize..8).prop_map(Op::Drop),
            (0u8..3, any::<bool>(), 0u64..200).prop_map(|(identity, with_role, exp)| Op::Renew {
                identity,
                with_role,
                exp
            }),
        ]
    }

    proptest::proptest! {
        #[test]
        fn the_registry_keeps_exactly_the_leases_alive_and_expiries_only_grow(
            ops in proptest::collection::vec(op(), 0..40),
        ) {
            let live = LiveSessions::with_capacity("jwt", 5);
            let name = |identity: u8| format!("user{identity}");
            let mut leases: Vec<(u8, bool, Lease)> = Vec::new();
            for op in ops {
                match op {
                    Op::Hold { identity, strict } => {
                        let required = if strict { roles(&["a", "b"]) } else { roles(&["a"]) };
                        let session = session(&live, Some(&name(identity)), &["a", "b"], 60);
                        leases.push((identity, strict, live.hold(&session, &required)));
                    }
                    Op::Drop(index) => {
                        if index < leases.len() {
                            leases.remove(index);
                        }
                    }
                    Op::Renew { identity, with_role, exp } => {
                        let before: Vec<SystemTime> =
                            leases.iter().map(|(_, _, l)| l.expires_at()).collect();
                        let held: &[&str] = if with_role { &["a", "b"] } else { &["a"] };
                        let renewed = live.renew(&session(&live, Some(&name(identity)), held, exp));
                        let admitted = leases
                            .iter()
                            .filter(|(id, strict, lease)| {
                                *id == identity && lease.is_renewable() && (with_role || !strict)
                            })
                            .count();
                        proptest::prop_assert_eq!(renewed, admitted);
                        for ((_, _, lease), was) in leases.iter().zip(before) {
                            proptest::prop_assert!(lease.expires_at() >= was);
                        }
                    }
                }
                let registered = leases.iter().filter(|(_, _, l)| l.is_renewable()).count();
                proptest::prop_assert_eq!(live.len(), registered);
                proptest::prop_assert!(live.len() <= 5);
            }
            drop(leases);
            proptest::prop_assert!(live.is_empty());
            proptest::prop_assert!(live.lock().by_identity.is_empty());
        }
    }
}

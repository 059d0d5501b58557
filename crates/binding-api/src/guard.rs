//! Guards: who a request's credentials say the client is, and what routes require of it.
//!
//! A guard is named in `zilla.yaml` under `guards` and built by the engine; a binding reaches
//! it by name when it is built (`BindingConfig::guard` in `zilla-config`). The flow:
//!
//! 1. An http server with `options.authorization` finds the request's credentials and asks
//!    its guard once ([`Guard::verify`]); the outcome, an [`Authorization`], travels in the
//!    request's begin extension, and on from there (the sse server copies it into its own).
//! 2. A route written `guarded: {GUARD: [roles]}` ([`Guarded`]) takes a stream only with a
//!    verified [`Session`] of that guard holding every role. Otherwise the route does not
//!    match; when no other route (nor the binding's `exit`) takes the stream, it is refused
//!    with a [`GuardRefusal`]: an HTTP server answers `401` with `WWW-Authenticate` when
//!    credentials are missing or rejected, `403` when the session lacks a role.
//! 3. A stream a guarded route admitted holds a [`Lease`] on its session
//!    ([`Guarded::hold`]): it ends when the lease expires, and challenges the client for
//!    fresh credentials shortly before, when the guard says when. Fresh credentials given to
//!    [`Guard::reauthorize`] extend the leases of the same identity ([`LiveSessions`]).
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, SystemTime};
//!
//! use binding_api::guard::{Authorization, GuardRefusal, Guarded, Session};
//!
//! let guarded = Guarded::new([("authn_jwt", ["proxy:stream"])]);
//! let session = Session {
//!     guard: "authn_jwt".into(),
//!     identity: Some("alice".into()),
//!     roles: vec!["proxy:stream".into()],
//!     attributes: Default::default(),
//!     expires_at: SystemTime::now() + Duration::from_secs(60),
//!     challenge_at: None,
//!     live: None,
//! };
//! assert!(guarded.admit(&Authorization::Verified(Arc::new(session))).is_ok());
//! let refusal = guarded.admit(&Authorization::Anonymous).unwrap_err();
//! assert_eq!(refusal.www_authenticate(), r#"Bearer realm="authn_jwt""#);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use thiserror::Error;

use crate::ext::ResetEx;
use crate::frame::{Reason, ReasonKind, Reset};

mod live;

pub use live::{Lease, LiveSessions, MAX_LIVE_SESSIONS};

/// What a guard established from credentials it verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The guard's name.
    pub guard: Arc<str>,
    /// Who the credentials are for (a token's `sub`, say), if they say.
    pub identity: Option<String>,
    /// What the bearer may do.
    pub roles: Vec<String>,
    /// The guard's attributes, each resolved from the credentials (attribute name → value).
    pub attributes: BTreeMap<String, String>,
    /// When the credentials expire.
    pub expires_at: SystemTime,
    /// When to ask the client for fresh credentials, if the guard challenges.
    pub challenge_at: Option<SystemTime>,
    /// The guard's live sessions, which the streams this session opens join so that a
    /// re-authorization can extend them; `None` for a guard that keeps none.
    pub live: Option<Arc<LiveSessions>>,
}

impl Session {
    /// Whether the session holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|held| held == role)
    }

    /// An attribute's value, as `${guarded['GUARD'].attributes.NAME}` reads it.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }
}

/// Why a guard refused credentials.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{detail}")]
pub struct Denied {
    /// A short text safe to send to the client (an `error_description`): it names nothing
    /// of the guard's configuration.
    pub description: &'static str,
    /// What the operator needs to know, for logs. Never the credentials themselves.
    pub detail: String,
}

/// A guard: verifies credentials.
pub trait Guard: Send + Sync + fmt::Debug {
    /// The guard's name in `zilla.yaml`.
    fn name(&self) -> &str;

    /// Verifies `credentials` (a bearer token, say) at `now`. Reads no file, never panics,
    /// whatever the credentials hold.
    fn verify(&self, credentials: &str, now: SystemTime) -> Result<Session, Denied>;

    /// Re-authorization: verifies fresh `credentials` at `now` and extends to their expiry
    /// the live streams of the same identity that they would still admit
    /// ([`LiveSessions::renew`]); returns how many.
    fn reauthorize(&self, credentials: &str, now: SystemTime) -> Result<usize, Denied> {
        let fresh = self.verify(credentials, now)?;
        Ok(fresh.live.as_ref().map_or(0, |live| live.renew(&fresh)))
    }
}

/// What became of a request's credentials: carried by begin extensions to the bindings whose
/// routes are guarded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Authorization {
    /// No credentials were found (or none were looked for).
    #[default]
    Anonymous,
    /// The credentials verified.
    Verified(Arc<Session>),
    /// The guard refused the credentials.
    Rejected {
        /// The guard's name.
        guard: Arc<str>,
        /// Why, for the client ([`Denied::description`]).
        description: &'static str,
    },
}

impl Authorization {
    /// The session of guard `guard`, if the credentials verified with it.
    pub fn session(&self, guard: &str) -> Option<&Session> {
        match self {
            Authorization::Verified(session) if &*session.guard == guard => Some(session),
            _ => None,
        }
    }
}

/// A route's `guarded`: for each guard, the roles its session must hold. Empty when the
/// route is not guarded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Guarded {
    guards: Vec<(String, Vec<String>)>,
}

impl Guarded {
    /// Requirements from `guard → roles` pairs, as `routes[].guarded` maps them.
    pub fn new<G, R, S>(guards: impl IntoIterator<Item = (G, R)>) -> Guarded
    where
        G: Into<String>,
        R: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Guarded {
            guards: guards
                .into_iter()
                .map(|(guard, roles)| (guard.into(), roles.into_iter().map(Into::into).collect()))
                .collect(),
        }
    }

    /// Whether the route is guarded at all.
    pub fn is_empty(&self) -> bool {
        self.guards.is_empty()
    }

    /// Admits a stream whose credentials came to `authorization` when, for every guard, it
    /// is a session of that guard holding every role; otherwise says why not, for the first
    /// guard that refuses.
    pub fn admit(&self, authorization: &Authorization) -> Result<(), GuardRefusal> {
        for (guard, roles) in &self.guards {
            let Some(session) = authorization.session(guard) else {
                let rejected = match authorization {
                    Authorization::Rejected {
                        guard: by,
                        description,
                    } if &**by == guard => Some(*description),
                    _ => None,
                };
                return Err(GuardRefusal::Unauthenticated {
                    guard: guard.clone(),
                    rejected,
                });
            };
            if let Some(missing) = roles.iter().find(|role| !session.has_role(role)) {
                return Err(GuardRefusal::Forbidden {
                    guard: guard.clone(),
                    missing: missing.clone(),
                });
            }
        }
        Ok(())
    }

    /// [`admit`](Guarded::admit), and a session that has expired by `now` is refused as
    /// rejected credentials (`the token expired`): a stream it opened would end at once.
    pub fn admit_at(
        &self,
        authorization: &Authorization,
        now: SystemTime,
    ) -> Result<(), GuardRefusal> {
        self.admit(authorization)?;
        let expired = self.guards.iter().find(|(guard, _)| {
            authorization
                .session(guard)
                .is_some_and(|session| session.expires_at <= now)
        });
        match expired {
            Some((guard, _)) => Err(GuardRefusal::Unauthenticated {
                guard: guard.clone(),
                rejected: Some("the token expired"),
            }),
            None => Ok(()),
        }
    }

    /// The leases of a stream this route admitted with `authorization`: one per guard, each
    /// kept by its guard's live sessions (when it keeps them) with the roles this route
    /// requires, until dropped. Empty for a route that is not guarded.
    pub fn hold(&self, authorization: &Authorization) -> Vec<Lease> {
        self.guards
            .iter()
            .filter_map(|(guard, roles)| {
                let session = authorization.session(guard)?;
                Some(match &session.live {
                    Some(live) => live.hold(session, roles),
                    None => Lease::fixed(session),
                })
            })
            .collect()
    }
}

/// Why a guarded route refused a stream. Carried in the reset of a refused stream
/// ([`ResetEx::Guard`]) so that the HTTP server in front can say it to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GuardRefusal {
    /// No credentials for the guard, or credentials it rejected: HTTP 401.
    Unauthenticated {
        /// The guard.
        guard: String,
        /// The guard's [`Denied::description`] when it rejected the credentials.
        rejected: Option<&'static str>,
    },
    /// A session of the guard without a required role: HTTP 403.
    Forbidden {
        /// The guard.
        guard: String,
        /// The first role it lacks (for logs; not sent to the client).
        missing: String,
    },
}

impl GuardRefusal {
    /// The reason kind a refusal is reset with.
    pub fn kind(&self) -> ReasonKind {
        match self {
            GuardRefusal::Unauthenticated { .. } => ReasonKind::Unauthorized,
            GuardRefusal::Forbidden { .. } => ReasonKind::Forbidden,
        }
    }

    /// The `WWW-Authenticate` value that answers it (RFC 6750 §3): `Bearer realm="GUARD"`,
    /// with `error="invalid_token"` and the guard's description when the credentials were
    /// rejected, `error="insufficient_scope"` when a role is missing.
    pub fn www_authenticate(&self) -> String {
        match self {
            GuardRefusal::Unauthenticated {
                guard,
                rejected: None,
            } => format!("Bearer realm=\"{}\"", quotable(guard)),
            GuardRefusal::Unauthenticated {
                guard,
                rejected: Some(description),
            } => format!(
                "Bearer realm=\"{}\", error=\"invalid_token\", error_description=\"{}\"",
                quotable(guard),
                quotable(description)
            ),
            GuardRefusal::Forbidden { guard, .. } => format!(
                "Bearer realm=\"{}\", error=\"insufficient_scope\"",
                quotable(guard)
            ),
        }
    }

    /// The reset that refuses a stream for this reason.
    pub fn into_reset(self) -> Reset {
        Reset {
            reason: Reason::new(self.kind(), self.to_string()),
            ext: ResetEx::Guard(self),
        }
    }
}

impl fmt::Display for GuardRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuardRefusal::Unauthenticated {
                guard,
                rejected: None,
            } => write!(f, "no credentials for guard '{guard}'"),
            GuardRefusal::Unauthenticated {
                guard,
                rejected: Some(description),
            } => write!(f, "guard '{guard}' rejected the credentials: {description}"),
            GuardRefusal::Forbidden { guard, missing } => {
                write!(f, "the session of guard '{guard}' lacks role '{missing}'")
            }
        }
    }
}

/// `text` with what a quoted-string parameter of `WWW-Authenticate` may not hold (RFC 6750
/// §3: no `"`, `\` or control characters) left out.
fn quotable(text: &str) -> String {
    text.chars()
        .filter(|c| matches!(c, ' '..='~') && !matches!(c, '"' | '\\'))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn session(guard: &str, roles: &[&str]) -> Authorization {
        Authorization::Verified(Arc::new(Session {
            guard: guard.into(),
            identity: Some("alice".into()),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            attributes: BTreeMap::from([("tenant".to_owned(), "acme".to_owned())]),
            expires_at: SystemTime::UNIX_EPOCH + Duration::from_secs(100),
            challenge_at: None,
            live: None,
        }))
    }

    #[test]
    fn a_route_without_guards_admits_anyone() {
        let open = Guarded::default();
        assert!(open.is_empty());
        assert_eq!(open.admit(&Authorization::Anonymous), Ok(()));
    }

    #[test]
    fn a_session_of_the_guard_with_every_role_is_admitted() {
        let guarded = Guarded::new([("jwt", ["read", "stream"])]);
        assert!(!guarded.is_empty());
        assert_eq!(
            guarded.admit(&session("jwt", &["stream", "read", "x"])),
            Ok(())
        );
        assert_eq!(
            guarded.admit(&session("jwt", &["read"])),
            Err(GuardRefusal::Forbidden {
                guard: "jwt".into(),
                missing: "stream".into()
            })
        );
    }

    #[test]
    fn no_session_of_the_guard_is_unauthenticated() {
        let guarded = Guarded::new([("jwt", ["read"])]);
        let anonymous = GuardRefusal::Unauthenticated {
            guard: "jwt".into(),
            rejected: None,
        };
        assert_eq!(
            guarded.admit(&Authorization::Anonymous),
            Err(anonymous.clone())
        );
        assert_eq!(
            guarded.admit(&session("other", &["read"])),
            Err(anonymous.clone()),
            "a session of another guard does not count"
        );
        let rejected_by_other = Authorization::Rejected {
            guard: "other".into(),
            description: "the token expired",
        };
        assert_eq!(guarded.admit(&rejected_by_other), Err(anonymous));
        let rejected = Authorization::Rejected {
            guard: "jwt".into(),
            description: "the token expired",
        };
        assert_eq!(
            guarded.admit(&rejected),
            Err(GuardRefusal::Unauthenticated {
                guard: "jwt".into(),
                rejected: Some("the token expired")
            })
        );
    }

    #[test]
    fn an_expired_session_is_refused_as_rejected_and_a_live_one_held() {
        let guarded = Guarded::new([("jwt", ["a"])]);
        let authorization = session("jwt", &["a"]);
        let expiry = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let before = expiry - Duration::from_secs(1);
        assert_eq!(guarded.admit_at(&authorization, before), Ok(()));
        assert_eq!(
            guarded.admit_at(&authorization, expiry),
            Err(GuardRefusal::Unauthenticated {
                guard: "jwt".into(),
                rejected: Some("the token expired")
            })
        );
        let leases = guarded.hold(&authorization);
        assert_eq!(leases.len(), 1);
        assert_eq!(leases[0].expires_at(), expiry);
        assert!(
            !leases[0].is_renewable(),
            "its guard keeps no live sessions"
        );
        assert!(Guarded::default().hold(&authorization).is_empty());
    }

    #[test]
    fn every_guard_of_a_route_must_admit() {
        let guarded = Guarded::new([("jwt", Vec::<String>::new()), ("other", Vec::new())]);
        assert!(matches!(
            guarded.admit(&session("jwt", &[])),
            Err(GuardRefusal::Unauthenticated { guard, .. }) if guard == "other"
        ));
    }

    #[test]
    fn challenges_follow_rfc_6750() {
        let missing = GuardRefusal::Unauthenticated {
            guard: "authn_jwt".into(),
            rejected: None,
        };
        assert_eq!(missing.www_authenticate(), r#"Bearer realm="authn_jwt""#);
        let rejected = GuardRefusal::Unauthenticated {
            guard: "authn_jwt".into(),
            rejected: Some("the token's \"exp\"\nis past\\"),
        };
        assert_eq!(
            rejected.www_authenticate(),
            r#"Bearer realm="authn_jwt", error="invalid_token", error_description="the token's expis past""#
        );
        let forbidden = GuardRefusal::Forbidden {
            guard: "authn_jwt".into(),
            missing: "proxy:stream".into(),
        };
        assert_eq!(
            forbidden.www_authenticate(),
            r#"Bearer realm="authn_jwt", error="insufficient_scope""#
        );
    }

    #[test]
    fn a_refusal_resets_with_its_kind_and_itself() {
        let forbidden = GuardRefusal::Forbidden {
            guard: "g".into(),
            missing: "r".into(),
        };
        let reset = forbidden.clone().into_reset();
        assert_eq!(reset.reason.kind, ReasonKind::Forbidden);
        assert_eq!(
            reset.reason.detail,
            "the session of guard 'g' lacks role 'r'"
        );
        assert_eq!(reset.ext, ResetEx::Guard(forbidden));
        let missing = GuardRefusal::Unauthenticated {
            guard: "g".into(),
            rejected: None,
        };
        assert_eq!(missing.into_reset().reason.kind, ReasonKind::Unauthorized);
    }

    #[test]
    fn sessions_give_attributes_and_roles() {
        let Authorization::Verified(session) = session("jwt", &["a"]) else {
            unreachable!()
        };
        assert_eq!(session.attribute("tenant"), Some("acme"));
        assert_eq!(session.attribute("other"), None);
        assert!(session.has_role("a") && !session.has_role("b"));
    }
}

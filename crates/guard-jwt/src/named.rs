//! A jwt guard under its name in `zilla.yaml`: the [`Guard`] bindings verify requests with.

use std::sync::Arc;
use std::time::SystemTime;

use binding_api::guard::{Denied, Guard, LiveSessions, Session};

use crate::guard::JwtGuard;

/// A [`JwtGuard`] with the name the configuration gives it, verifying for the bindings: a
/// token that verifies becomes a [`Session`] of this guard, one that does not a [`Denied`]
/// with [`GuardError::client_description`](crate::GuardError::client_description) for the
/// client and the error's message for the operator.
///
/// It keeps the live sessions of the streams its sessions opened ([`LiveSessions`], bounded,
/// by identity): [`Guard::reauthorize`] with a fresh token of the same `sub` extends them.
#[derive(Debug)]
pub struct NamedJwtGuard {
    name: Arc<str>,
    guard: JwtGuard,
    live: Arc<LiveSessions>,
}

impl NamedJwtGuard {
    /// `guard` under `name`.
    pub fn new(name: &str, guard: JwtGuard) -> NamedJwtGuard {
        NamedJwtGuard {
            name: name.into(),
            guard,
            live: LiveSessions::new(name),
        }
    }

    /// The guard itself: its JWKS file and [`JwtGuard::reload`], for whoever watches the file.
    pub fn jwt(&self) -> &JwtGuard {
        &self.guard
    }

    /// The live sessions re-authorization extends.
    pub fn live_sessions(&self) -> &Arc<LiveSessions> {
        &self.live
    }
}

impl Guard for NamedJwtGuard {
    fn name(&self) -> &str {
        &self.name
    }

    fn verify(&self, credentials: &str, now: SystemTime) -> Result<Session, Denied> {
        match self.guard.verify(credentials, now) {
            Ok(verified) => Ok(Session {
                guard: self.name.clone(),
                identity: verified.identity,
                roles: verified.roles,
                attributes: verified.attributes,
                expires_at: verified.expires_at,
                challenge_at: verified.challenge_at,
                live: Some(self.live.clone()),
            }),
            Err(err) => Err(Denied {
                description: err.client_description(),
                detail: err.to_string(),
            }),
        }
    }
}

//! The guard: a key set that can be swapped, and the verification of one token.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use crate::claims::ClaimPolicy;
use crate::compact::CompactJws;
use crate::error::{GuardError, KeysError, KeysOrigin};
use crate::jwk::KeySet;
use crate::options::{JwtOptions, KeySource};
use crate::verified::Verified;

/// A `jwt` guard: verifies tokens against its keys and its options.
///
/// Share it across threads (`Arc<JwtGuard>`): [`verify`](JwtGuard::verify) takes `&self`
/// and holds a lock only to clone the current key set, so a [`reload`](JwtGuard::reload) on
/// another thread never makes a verification wait for file I/O, and a verification uses
/// either the old keys or the new ones, never a mix.
#[derive(Debug)]
pub struct JwtGuard {
    policy: ClaimPolicy,
    jwks_path: Option<PathBuf>,
    keys: RwLock<Arc<KeySet>>,
}

impl JwtGuard {
    /// A guard for `options`, with its keys checked (and its JWKS file read, if it has one).
    pub fn new(options: JwtOptions) -> Result<JwtGuard, KeysError> {
        let (keys, jwks_path) = match &options.keys {
            KeySource::Inline(jwks) => (KeySet::from_jwks(jwks, &KeysOrigin::Inline)?, None),
            KeySource::File(path) => (KeySet::read_file(path)?, Some(path.clone())),
        };
        Ok(JwtGuard {
            policy: ClaimPolicy::new(&options),
            jwks_path,
            keys: RwLock::new(Arc::new(keys)),
        })
    }

    /// Verifies a compact JWS `token` at `now`: its size, its `alg` against the key its
    /// `kid` selects, its signature, then `exp`/`nbf` (with [`CLOCK_SKEW`](crate::CLOCK_SKEW)),
    /// `iss` and `aud`. Reads no file and never panics, whatever `token` holds.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<Verified, GuardError> {
        let jws = CompactJws::parse(token)?;
        let keys = self.current_keys();
        let key = keys.select(jws.header.kid.as_deref())?;
        key.verify(jws.header.alg, jws.signing_input, &jws.signature)?;
        self.policy.evaluate(jws.claims()?, now)
    }

    /// Re-reads the JWKS file and swaps its keys in, returning how many there now are. On any
    /// error the keys in use are kept. With inline keys there is nothing to re-read: the
    /// count of the keys in use is returned.
    pub fn reload(&self) -> Result<usize, KeysError> {
        let Some(path) = &self.jwks_path else {
            return Ok(self.current_keys().len());
        };
        let fresh = Arc::new(KeySet::read_file(path)?);
        let count = fresh.len();
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(count)
    }

    /// The JWKS file the keys come from (for the caller to watch), `None` for inline keys.
    pub fn jwks_path(&self) -> Option<&Path> {
        self.jwks_path.as_deref()
    }

    /// The `kid`s of the keys in use.
    pub fn kids(&self) -> Vec<String> {
        self.current_keys().kids()
    }

    fn current_keys(&self) -> Arc<KeySet> {
        // A writer only stores an Arc, so a poisoned lock still holds a whole key set.
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }
}

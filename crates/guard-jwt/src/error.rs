//! Why a token was refused ([`GuardError`]) and why keys could not be loaded ([`KeysError`]).
//!
//! Values taken from a token (its `alg`, `kid`, `iss`, `aud`) are kept as short excerpts, so
//! an error never carries or prints more than [`EXCERPT_CHARS`] characters of what a client
//! sent, and never the token itself.

use std::fmt;
use std::path::PathBuf;

use crate::CLOCK_SKEW;

/// The most characters of a client-supplied value an error keeps.
pub const EXCERPT_CHARS: usize = 64;

/// A value from a token, cut to [`EXCERPT_CHARS`] characters and shown quoted and escaped.
#[derive(Clone, PartialEq, Eq)]
pub struct Excerpt(String);

impl Excerpt {
    /// Keeps at most [`EXCERPT_CHARS`] characters of `value`, marking the cut with `…`.
    pub fn new(value: &str) -> Self {
        let mut chars = value.char_indices();
        match chars.nth(EXCERPT_CHARS) {
            Some((cut, _)) => Excerpt(format!("{}…", &value[..cut])),
            None => Excerpt(value.to_owned()),
        }
    }

    /// The kept text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Excerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Excerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// The part of a compact JWS a problem was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenPart {
    /// The token as a whole (its dot-separated structure).
    Token,
    /// The protected header (first segment).
    Header,
    /// The claims (second segment).
    Claims,
    /// The signature (third segment).
    Signature,
}

impl fmt::Display for TokenPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenPart::Token => "token",
            TokenPart::Header => "header",
            TokenPart::Claims => "claims",
            TokenPart::Signature => "signature",
        })
    }
}

/// Why [`JwtGuard::verify`](crate::JwtGuard::verify) refused a token.
///
/// Every variant means the request is not authenticated (HTTP 401); the message is meant for
/// the operator's log. [`GuardError::client_description`] is the text safe to send back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GuardError {
    /// The token is longer than [`MAX_TOKEN_BYTES`](crate::MAX_TOKEN_BYTES).
    #[error(
        "token of {len} bytes is over the {max}-byte limit: the issuer puts too many claims in it"
    )]
    TooLarge {
        /// The token's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The token is not a well-formed compact JWS.
    #[error("malformed token {part}: {reason}")]
    Malformed {
        /// Where the problem is.
        part: TokenPart,
        /// What is wrong, without the offending bytes.
        reason: String,
    },
    /// The header's `alg` is not one this guard verifies (`none` and HMAC included).
    #[error(
        "token alg {alg} is not supported: this guard verifies RS256, RS384, RS512, ES256 and \
         ES384 (never none or HMAC)"
    )]
    UnsupportedAlg {
        /// The `alg` the token named.
        alg: Excerpt,
    },
    /// The header has a member that changes how the token must be read (`crit`).
    #[error("token header {name} names extensions this guard does not implement")]
    UnsupportedHeader {
        /// The header member.
        name: &'static str,
    },
    /// No configured key matches the token's `kid`.
    #[error("{}", unknown_key_message(.kid.as_ref(), .known))]
    UnknownKey {
        /// The token's `kid`, if it had one.
        kid: Option<Excerpt>,
        /// The `kid`s of the configured keys.
        known: Vec<String>,
    },
    /// The key the `kid` selects is not for the token's `alg` (RS/ES confusion, or a key
    /// pinned to another `alg`).
    #[error("token alg {alg} does not match key {kid}, which verifies {accepts} only")]
    KeyAlgMismatch {
        /// The token's `alg`.
        alg: &'static str,
        /// The selected key's `kid` (empty when it has none).
        kid: String,
        /// What the key accepts, e.g. `ES256` or `RS256, RS384, RS512`.
        accepts: String,
    },
    /// The signature does not verify with the selected key.
    #[error(
        "signature does not verify with key {kid:?}: the token was altered, or signed by \
         another key (is the guard's JWKS current?)"
    )]
    BadSignature {
        /// The selected key's `kid` (empty when it has none).
        kid: String,
    },
    /// A required claim is absent.
    #[error("token has no {claim} claim: the guard needs it")]
    MissingClaim {
        /// The claim.
        claim: &'static str,
    },
    /// A claim has the wrong JSON type or an impossible value.
    #[error("token claim {claim:?} is not {expected}")]
    InvalidClaim {
        /// The claim's name.
        claim: String,
        /// What it should be.
        expected: &'static str,
    },
    /// `exp` is past, beyond the clock skew.
    #[error(
        "token expired at {exp} (unix seconds), {ago} s ago, past the {skew} s clock skew: the \
         client needs a fresh token",
        skew = CLOCK_SKEW.as_secs()
    )]
    Expired {
        /// The token's `exp`, in seconds since 1970.
        exp: u64,
        /// Seconds since then.
        ago: u64,
    },
    /// `nbf` is ahead, beyond the clock skew.
    #[error(
        "token not valid before {nbf} (unix seconds), {ahead} s from now, past the {skew} s \
         clock skew: check the clocks of the issuer and of this host",
        skew = CLOCK_SKEW.as_secs()
    )]
    NotYetValid {
        /// The token's `nbf`, in seconds since 1970.
        nbf: u64,
        /// Seconds until then.
        ahead: u64,
    },
    /// `iss` is absent or not the configured issuer.
    #[error("token issuer {} is not the configured {expected:?}", found_or_none(.found.as_ref()))]
    WrongIssuer {
        /// The token's `iss`, if any.
        found: Option<Excerpt>,
        /// The configured `issuer`.
        expected: String,
    },
    /// `aud` is absent or does not name the configured audience.
    #[error("token audience {} does not include the configured {expected:?}", list_or_none(.found))]
    WrongAudience {
        /// The token's `aud` values (empty when it has none).
        found: Vec<Excerpt>,
        /// The configured `audience`.
        expected: String,
    },
}

impl GuardError {
    /// A short description for the client (e.g. a `WWW-Authenticate` `error_description`):
    /// it names no key, issuer or audience of the configuration.
    pub fn client_description(&self) -> &'static str {
        match self {
            GuardError::TooLarge { .. } => "the token is too large",
            GuardError::Malformed { .. } => "the token is malformed",
            GuardError::UnsupportedAlg { .. }
            | GuardError::UnsupportedHeader { .. }
            | GuardError::KeyAlgMismatch { .. } => "the token's algorithm is not accepted",
            GuardError::UnknownKey { .. } | GuardError::BadSignature { .. } => {
                "the token's signature is not valid"
            }
            GuardError::MissingClaim { .. } | GuardError::InvalidClaim { .. } => {
                "the token's claims are not valid"
            }
            GuardError::Expired { .. } => "the token expired",
            GuardError::NotYetValid { .. } => "the token is not valid yet",
            GuardError::WrongIssuer { .. } => "the token's issuer is not accepted",
            GuardError::WrongAudience { .. } => "the token is not for this audience",
        }
    }

    pub(crate) fn malformed(part: TokenPart, reason: impl Into<String>) -> Self {
        GuardError::Malformed {
            part,
            reason: reason.into(),
        }
    }
}

fn unknown_key_message(kid: Option<&Excerpt>, known: &[String]) -> String {
    let known = if known.is_empty() {
        "none".to_owned()
    } else {
        known.join(", ")
    };
    match kid {
        Some(kid) => format!(
            "no key with kid {kid} (keys: {known}): the issuer signs with a key the guard does \
             not have; reload its JWKS"
        ),
        None => format!(
            "token has no kid and the guard has several keys ({known}): the issuer must name \
             its key"
        ),
    }
}

fn found_or_none(found: Option<&Excerpt>) -> String {
    found.map_or_else(|| "(none)".to_owned(), Excerpt::to_string)
}

fn list_or_none(found: &[Excerpt]) -> String {
    if found.is_empty() {
        return "(none)".to_owned();
    }
    let items: Vec<String> = found.iter().map(Excerpt::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// Where a set of keys came from, for [`KeysError`] messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeysOrigin {
    /// The guard's inline `keys`.
    Inline,
    /// A JWKS file.
    File(PathBuf),
}

impl fmt::Display for KeysOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeysOrigin::Inline => f.write_str("inline keys"),
            KeysOrigin::File(path) => write!(f, "JWKS file {}", path.display()),
        }
    }
}

/// Why keys could not be loaded (building a guard, or [`reload`](crate::JwtGuard::reload)).
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The JWKS file could not be read.
    #[error("cannot read JWKS file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The JWKS file is not a JSON object with a `keys` array of JWKs.
    #[error("JWKS file {} is not a JWK set ({{\"keys\": [...]}}): {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// A key is unusable.
    #[error("{origin}: key {key}: {reason}")]
    InvalidKey {
        /// Where the key came from.
        origin: KeysOrigin,
        /// The key's `kid`, or its position (`#2`) when it has none.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two keys share a `kid`, so a token could not say which one signed it.
    #[error("{origin}: two keys have kid {kid:?}: each kid must be unique")]
    DuplicateKid {
        /// Where the keys came from.
        origin: KeysOrigin,
        /// The shared `kid`.
        kid: String,
    },
    /// No key can verify signatures.
    #[error("{origin}: no signing key (keys marked \"use\": \"enc\" are skipped)")]
    NoKeys {
        /// Where the keys came from.
        origin: KeysOrigin,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_keeps_short_values_and_cuts_long_ones() {
        assert_eq!(Excerpt::new("kid-1").as_str(), "kid-1");
        let long = "é".repeat(EXCERPT_CHARS + 10);
        let cut = Excerpt::new(&long);
        assert_eq!(cut.as_str().chars().count(), EXCERPT_CHARS + 1);
        assert!(cut.as_str().ends_with('…'));
    }

    #[test]
    fn excerpt_escapes_control_characters() {
        assert_eq!(Excerpt::new("a\nb").to_string(), r#""a\nb""#);
    }

    #[test]
    fn unknown_key_lists_the_configured_kids() {
        let err = GuardError::UnknownKey {
            kid: Some(Excerpt::new("k9")),
            known: vec!["k1".into(), "k2".into()],
        };
        assert_eq!(
            err.to_string(),
            "no key with kid \"k9\" (keys: k1, k2): the issuer signs with a key the guard does \
             not have; reload its JWKS"
        );
    }
}

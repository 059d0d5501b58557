//! # guard-jwt
//!
//! Zilla's `jwt` guard: verifies a JSON Web Token (a JWS in compact serialization) against
//! configured public keys and claims, and says who the bearer is ([`Verified::identity`]),
//! what they may do ([`Verified::roles`]) and until when ([`Verified::expires_at`], with
//! [`Verified::challenge_at`] for the re-authorization challenge). Verification reads no
//! file and does no other I/O; bindings call [`JwtGuard::verify`] per request.
//!
//! ## Configuration
//!
//! ```yaml
//! guards:
//!   authn_jwt:
//!     type: jwt
//!     options:
//!       issuer: https://auth.example.com   # iss must equal this (unchecked if absent)
//!       audience: https://api.example.com  # aud must be or include this (unchecked if absent)
//!       keys:                              # public JWKs: RSA (n, e) or EC (P-256/P-384, x, y)
//!         - kty: RSA
//!           kid: example
//!           alg: RS256                     # optional: pins the key to one algorithm
//!           n: qqrI4gNeKsp8...
//!           e: AQAB
//!       # keys: tls/jwks.json              # ours: a JWK Set file, relative to zilla.yaml
//!       roles: scope                       # claim holding the roles (default scope)
//!       identity: sub                      # claim holding the identity (default sub)
//!       challenge: 30                      # seconds before exp to challenge the stream
//!       attributes:                        # attribute name -> claim, for ${guarded[...]}
//!         tenant: org
//! ```
//!
//! Options are deserialized with serde ([`JwtOptions`]), unknown ones refused. A JWK may
//! carry other members (`use`, `x5c`, …), which are ignored; keys with `"use": "enc"` are
//! skipped. Where zilla-rs differs from Zilla:
//!
//! - `keys` may name a JWK Set file (`{"keys": [...]}`) instead of listing JWKs. It is read
//!   when the guard is built; [`JwtGuard::reload`] reads it again and swaps the keys in,
//!   safely while other threads verify. The caller decides when: `zilla start` checks the
//!   file every 2 s and reloads it when its modification time or length changes
//!   (`engine::jwks_watch`). Zilla's JWKS URLs are refused: zilla-rs fetches nothing.
//! - A token must have `exp`: a stream that a token opened always has an end.
//! - Keys are checked when loaded: private keys (with `d`), symmetric keys (`kty: oct`),
//!   RSA moduli outside 2048–8192 bits, unknown curves, a `kid` used twice, or an `alg` that
//!   does not suit the key type are errors naming the key.
//!
//! ## Verification
//!
//! In order: the size ([`MAX_TOKEN_BYTES`], else [`GuardError::TooLarge`]); three base64url
//! segments, header and claims JSON objects nested at most [`MAX_JSON_DEPTH`] deep; the
//! header's `alg`, one of RS256, RS384, RS512, ES256, ES384 (`none` and HMAC are refused, as
//! is a `crit` header); the key its `kid` names (a token without `kid` gets the only key, if
//! there is exactly one); the `alg` must be one the key verifies, so an RSA key never checks
//! an ES token nor the reverse; the signature; only then the claims: `exp` and `nbf` with
//! [`CLOCK_SKEW`], `iss`, `aud`. Every failure is a [`GuardError`] whose message tells the
//! operator what to fix and repeats no more than a short excerpt of what the client sent.
//!
//! ## Cryptography
//!
//! Signatures are checked with ring, which the workspace already builds for rustls: no second
//! cryptographic stack, and RSA and ECDSA verification by the same audited code that
//! terminates TLS (with public keys only and no HMAC, there is no secret whose comparison
//! could leak through timing). ring verifies from the raw JWK parameters (RSA `n` and `e`,
//! the EC point), which keeps JOSE parsing here, small and fuzzed
//! (`fuzz/fuzz_targets/guard_jwt.rs`), rather than in a JWT library such as `jsonwebtoken`
//! with its own key formats and policy defaults.
//!
//! ## Example
//!
//! ```
//! use std::time::{SystemTime, UNIX_EPOCH};
//!
//! use base64::Engine;
//! use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
//! use guard_jwt::{JwtGuard, JwtOptions};
//! use ring::rand::SystemRandom;
//! use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING as ES256, EcdsaKeyPair, KeyPair};
//! use serde_json::json;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The issuer's key pair; the guard is given its public half as a JWK.
//! let rng = SystemRandom::new();
//! let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ES256, &rng)?;
//! let issuer_key = EcdsaKeyPair::from_pkcs8(&ES256, pkcs8.as_ref(), &rng)?;
//! let point = issuer_key.public_key().as_ref(); // 0x04 || x || y
//! let options: JwtOptions = serde_json::from_value(json!({
//!     "issuer": "https://auth.example.com",
//!     "keys": [{"kty": "EC", "crv": "P-256", "kid": "example",
//!               "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..])}],
//!     "challenge": 30,
//! }))?;
//! let guard = JwtGuard::new(options)?;
//!
//! // A token as the issuer makes it.
//! let now = SystemTime::now();
//! let exp = now.duration_since(UNIX_EPOCH)?.as_secs() + 300;
//! let header = B64.encode(r#"{"alg":"ES256","kid":"example"}"#);
//! let claims = json!({"iss": "https://auth.example.com", "sub": "alice",
//!                     "scope": "proxy:stream", "exp": exp});
//! let signing_input = format!("{header}.{}", B64.encode(claims.to_string()));
//! let signature = issuer_key.sign(&rng, signing_input.as_bytes())?;
//! let token = format!("{signing_input}.{}", B64.encode(signature));
//!
//! let verified = guard.verify(&token, now)?;
//! assert_eq!(verified.identity.as_deref(), Some("alice"));
//! assert!(verified.has_roles(&["proxy:stream"]));
//! assert!(verified.challenge_at < Some(verified.expires_at));
//! assert!(guard.verify(&token.replace('.', ".."), now).is_err());
//! # Ok(())
//! # }
//! ```
//!
//! ## In zilla
//!
//! The engine builds each `type: jwt` guard of `zilla.yaml` into a [`NamedJwtGuard`], which
//! implements `binding_api::guard::Guard`: bindings (an http server's `authorization`) verify
//! with it without depending on this crate, and get a `binding_api::guard::Session` holding
//! the guard's name, the identity, roles, attributes, `exp` and the challenge time. The
//! named guard also keeps the live sessions of the streams its sessions opened
//! (`binding_api::guard::LiveSessions`, by identity, bounded): a fresh token given to
//! `Guard::reauthorize` (an http server's challenge response) extends those of the same
//! `sub` that it still admits.
//!
//! `examples/verify.rs` verifies a token given on the command line against a JWKS file.

mod algorithm;
mod claims;
mod compact;
mod error;
mod guard;
mod jwk;
mod named;
mod options;
mod verified;

use std::time::Duration;

pub use error::{EXCERPT_CHARS, Excerpt, GuardError, KeysError, KeysOrigin, TokenPart};
pub use guard::JwtGuard;
pub use jwk::{Jwk, MAX_RSA_BITS, MIN_RSA_BITS};
pub use named::NamedJwtGuard;
pub use options::{JwtOptions, KeySource};
pub use verified::Verified;

/// The longest token accepted, in bytes (`Authorization` headers are rarely allowed more).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// How deep objects and arrays may nest in a token's header or claims.
pub const MAX_JSON_DEPTH: usize = 16;

/// How far the issuer's clock and ours may disagree: a token is accepted until `exp` plus
/// this, and from `nbf` less this.
pub const CLOCK_SKEW: Duration = Duration::from_secs(30);

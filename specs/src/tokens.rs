//! `tokens:` JSON Web Tokens the harness signs for a scenario (ES256, with a P-256 key it
//! makes for the run, so that no private key lives in the repository), and the
//! `${{ token.NAME }}` placeholders that give them, and the key's public half, to the file.
//!
//! ```yaml
//! tokens:
//!   alice:
//!     expires-in: 3s        # exp: this long after the whole second the scenario starts on
//!     claims:               # any other claims
//!       sub: alice
//!       scope: proxy:stream
//! ```
//!
//! `${{ token.alice }}` is the signed token (header `{"alg":"ES256","kid":"spec"}`),
//! `${{ token.KEY_X }}` and `${{ token.KEY_Y }}` the public key's coordinates for the guard's
//! JWK (`kty: EC`, `crv: P-256`, `kid: spec`). A scenario with tokens starts on a whole second
//! (the harness waits for it), so that a token's `exp`, which counts whole seconds, is exactly
//! `expires-in` after the start.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::Deserialize;
use serde_json::{Map, Value};
use zilla_config::{ConfigError, ConfigErrorKind, Node, Resolution, from_node};

use crate::value::Dur;

/// The `kid` of the harness's key.
pub const KID: &str = "spec";

/// One entry of `tokens`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawToken {
    expires_in: Dur,
    #[serde(default)]
    claims: Map<String, Value>,
}

/// A scenario's tokens, signed, and the public key that verifies them.
#[derive(Debug, Default)]
pub struct Tokens {
    signed: BTreeMap<String, String>,
    key: Option<(String, String)>,
}

impl Tokens {
    /// Signs the tokens `node` (the scenario's `tokens`) describes, once the clock reaches a
    /// whole second.
    pub fn sign(node: &Node) -> Result<Tokens, ConfigError> {
        let raw: BTreeMap<String, RawToken> = from_node(node)?;
        if raw.is_empty() {
            return Ok(Tokens::default());
        }
        let issuer = Issuer::new().map_err(|why| node.error(ConfigErrorKind::Custom(why)))?;
        let start = next_whole_second();
        let signed = raw
            .into_iter()
            .map(|(name, token)| {
                let exp = start.saturating_add(token.expires_in.0.as_secs());
                let mut claims = token.claims;
                claims.insert("exp".into(), exp.into());
                let signed = issuer
                    .sign(&Value::Object(claims))
                    .map_err(|why| node.error(ConfigErrorKind::Custom(why)))?;
                Ok((name, signed))
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(Tokens {
            signed,
            key: Some(issuer.public_point()),
        })
    }

    /// `${{ token.NAME }}`.
    pub fn resolve(&self, name: &str) -> Resolution {
        match (name, &self.key) {
            ("KEY_X", Some((x, _))) => Resolution::Value(x.clone()),
            ("KEY_Y", Some((_, y))) => Resolution::Value(y.clone()),
            _ => match self.signed.get(name) {
                Some(token) => Resolution::Value(token.clone()),
                None => Resolution::Invalid(format!("no token '{name}' under `tokens`")),
            },
        }
    }
}

/// Waits for the next whole second of the wall clock and returns it, in seconds since 1970.
fn next_whole_second() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let next = since.as_secs() + 1;
    std::thread::sleep(Duration::from_secs(next).saturating_sub(since));
    next
}

/// The harness's signing key.
struct Issuer {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl Issuer {
    fn new() -> Result<Issuer, String> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| "cannot make a P-256 key".to_owned())?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|why| format!("cannot read the key made: {why}"))?;
        Ok(Issuer { pair, rng })
    }

    /// The public key's `x` and `y`, base64url.
    fn public_point(&self) -> (String, String) {
        let point = self.pair.public_key().as_ref(); // 0x04 || x || y
        (B64.encode(&point[1..33]), B64.encode(&point[33..]))
    }

    fn sign(&self, claims: &Value) -> Result<String, String> {
        let header = serde_json::json!({"alg": "ES256", "kid": KID, "typ": "JWT"});
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&self.rng, input.as_bytes())
            .map_err(|_| "cannot sign a token".to_owned())?;
        Ok(format!("{input}.{}", B64.encode(signature.as_ref())))
    }
}

//! A JWT issuer for the tests: a P-256 key pair made in the test process, ES256 tokens signed
//! with it, and the public half as the guard's JWK.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::json;
use std::time::{SystemTime, UNIX_EPOCH};

/// The `kid` of the issuer's key.
pub const KID: &str = "test";

/// The issuer and audience the tests' guards expect.
pub const ISSUER: &str = "https://auth.example.com";
/// See [`ISSUER`].
pub const AUDIENCE: &str = "https://api.example.com";

/// The issuer: a P-256 key pair, known by a `kid`, that signs ES256 tokens.
pub struct Issuer {
    kid: &'static str,
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl Default for Issuer {
    fn default() -> Self {
        Issuer::new()
    }
}

impl Issuer {
    /// A fresh key pair, known as [`KID`].
    ///
    /// # Panics
    ///
    /// When ring cannot make one.
    pub fn new() -> Issuer {
        Issuer::with_kid(KID)
    }

    /// A fresh key pair known as `kid`.
    ///
    /// # Panics
    ///
    /// When ring cannot make one.
    pub fn with_kid(kid: &'static str) -> Issuer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("a P-256 key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("the key reads back");
        Issuer { kid, pair, rng }
    }

    /// The public key's `x` and `y`, base64url, for the guard's JWK.
    pub fn public_point(&self) -> (String, String) {
        let point = self.pair.public_key().as_ref(); // 0x04 || x || y
        (B64.encode(&point[1..33]), B64.encode(&point[33..]))
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> serde_json::Value {
        let (x, y) = self.public_point();
        json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "alg": "ES256", "x": x, "y": y})
    }

    /// The public key as a JWK Set (`{"keys": [...]}`), for a guard's `keys: FILE`.
    pub fn jwks(&self) -> String {
        json!({"keys": [self.jwk()]}).to_string()
    }

    /// A token for `sub` with `scope`, from [`ISSUER`] for [`AUDIENCE`], expiring `lifetime`
    /// seconds from now (negative: ago).
    ///
    /// # Panics
    ///
    /// When signing fails.
    pub fn token(&self, sub: &str, scope: &str, lifetime: i64) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        let exp = now.saturating_add_signed(lifetime);
        let header = json!({"alg": "ES256", "kid": self.kid, "typ": "JWT"});
        let claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "scope": scope,
                            "iat": now, "exp": exp});
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&self.rng, input.as_bytes())
            .expect("signing");
        format!("{input}.{}", B64.encode(signature.as_ref()))
    }
}

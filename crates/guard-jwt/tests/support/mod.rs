//! Test issuers: key pairs that sign tokens, and the JWKs a guard is given for them.
#![allow(clippy::unwrap_used, dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use guard_jwt::{JwtGuard, JwtOptions};
use ring::rand::SystemRandom;
use ring::rsa::PublicKeyComponents;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

/// `exp` of the tokens made here; tests verify at [`now`].
pub const EXP: u64 = 1_800_000_000;

/// When the tests verify: ten minutes before [`EXP`].
pub fn now() -> SystemTime {
    at(EXP - 600)
}

/// A time in seconds since 1970.
pub fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// How an issuer signs.
pub enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// A key pair with a `kid`, signing as one `alg`.
pub struct Issuer {
    pub kid: String,
    pub alg: &'static str,
    signer: Signer,
}

/// The committed RSA test key (see tests/keys/README.md).
pub fn rsa_key_pair() -> RsaKeyPair {
    let pem = include_str!("../keys/rsa2048.pkcs8.pem");
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    RsaKeyPair::from_pkcs8(&STANDARD.decode(body).unwrap()).unwrap()
}

/// A fresh P-256 key pair.
pub fn ec_key_pair() -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap()
}

impl Issuer {
    /// The committed RSA key, signing as `alg` (RS256, RS384 or RS512).
    pub fn rsa(kid: &str, alg: &'static str) -> Issuer {
        Issuer {
            kid: kid.into(),
            alg,
            signer: Signer::Rsa(rsa_key_pair()),
        }
    }

    /// A fresh P-256 key, signing as ES256.
    pub fn ec(kid: &str) -> Issuer {
        Issuer {
            kid: kid.into(),
            alg: "ES256",
            signer: Signer::Ec(ec_key_pair()),
        }
    }

    /// The public JWK a guard needs, without `alg`.
    pub fn jwk(&self) -> Value {
        match &self.signer {
            Signer::Rsa(pair) => {
                let public: PublicKeyComponents<Vec<u8>> = pair.public().into();
                json!({"kty": "RSA", "kid": self.kid, "n": B64.encode(public.n),
                       "e": B64.encode(public.e)})
            }
            Signer::Ec(pair) => {
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "kid": self.kid,
                       "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..])})
            }
        }
    }

    /// The JWK with `alg` pinned to this issuer's.
    pub fn jwk_pinned(&self) -> Value {
        let mut jwk = self.jwk();
        jwk["alg"] = self.alg.into();
        jwk
    }

    /// A token with the usual header (`alg`, `kid`, `typ`) and `claims`.
    pub fn token(&self, claims: &Value) -> String {
        let header = json!({"alg": self.alg, "kid": self.kid, "typ": "JWT"});
        self.sign_json(&header.to_string(), &claims.to_string())
    }

    /// Signs header and claims given as raw text (possibly not JSON).
    pub fn sign_json(&self, header: &str, claims: &str) -> String {
        let input = format!("{}.{}", B64.encode(header), B64.encode(claims));
        format!("{input}.{}", B64.encode(self.signature(input.as_bytes())))
    }

    /// This issuer's signature over `message` with its `alg`.
    pub fn signature(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.signer {
            Signer::Rsa(pair) => {
                let padding: &'static dyn signature::RsaEncoding = match self.alg {
                    "RS384" => &signature::RSA_PKCS1_SHA384,
                    "RS512" => &signature::RSA_PKCS1_SHA512,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(padding, &rng, message, &mut sig).unwrap();
                sig
            }
            Signer::Ec(pair) => pair.sign(&rng, message).unwrap().as_ref().to_vec(),
        }
    }
}

/// Claims valid at [`now`]: `sub`, `exp`, and whatever `extra` adds.
pub fn claims(extra: Value) -> Value {
    let mut claims = json!({"sub": "alice", "exp": EXP});
    if let (Value::Object(base), Value::Object(extra)) = (&mut claims, extra) {
        base.extend(extra);
    }
    claims
}

/// A guard from options written as JSON.
pub fn guard(options: Value) -> JwtGuard {
    let options: JwtOptions = serde_json::from_value(options).unwrap();
    JwtGuard::new(options).unwrap()
}

//! Prints the public JWKs and the signed tokens written into the `specs/jwt/` scenarios.
//!
//! ```sh
//! cargo run -p specs --example jwt_tokens            # from the workspace root
//! ```
//!
//! The key pairs are `specs/jwt/keys/*.pem`, throw-away keys made for the scenarios only
//! (public in this repository: never trust them for anything else). RSA signatures are
//! deterministic, so the RS256 tokens come out the same on every run; ECDSA signatures are
//! randomized, so the ES256 tokens differ on every run and any of them verifies. Times are
//! fixed far from now (`exp` in 2100 for valid tokens, in 2000 for the expired one), so the
//! scenarios never go stale.

use std::error::Error;
use std::fs;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use ring::hmac;
use ring::rand::SystemRandom;
use ring::rsa::PublicKeyComponents;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

/// The `iss` and `aud` the scenarios' guard expects.
const ISSUER: &str = "https://auth.example.com";
const AUDIENCE: &str = "https://api.example.com";
/// 2100-01-01T00:00:00Z: the `exp` of tokens meant to be valid.
const FAR_FUTURE: u64 = 4_102_444_800;
/// 2099-01-01T00:00:00Z: the `nbf` of a token not valid yet.
const NOT_BEFORE: u64 = 4_070_908_800;
/// 2000-01-01T00:00:00Z: the `exp` of an expired token.
const LONG_AGO: u64 = 946_684_800;

/// The scenarios' two issuers' keys.
struct Keys {
    ec: EcdsaKeyPair,
    rsa: RsaKeyPair,
}

impl Keys {
    fn read() -> Result<Keys, Box<dyn Error>> {
        let rng = SystemRandom::new();
        let ec = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &pem("specs/jwt/keys/ec-p256.pkcs8.pem")?,
            &rng,
        )
        .map_err(|e| format!("ec key: {e}"))?;
        let rsa = RsaKeyPair::from_pkcs8(&pem("specs/jwt/keys/rsa2048.pkcs8.pem")?)
            .map_err(|e| format!("rsa key: {e}"))?;
        Ok(Keys { ec, rsa })
    }

    fn ec_jwk(&self) -> Value {
        let point = self.ec.public_key().as_ref(); // 0x04 || x || y
        json!({"kty": "EC", "crv": "P-256", "kid": "ec-test",
               "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..])})
    }

    fn rsa_jwk(&self) -> Value {
        let public: PublicKeyComponents<Vec<u8>> = self.rsa.public().into();
        json!({"kty": "RSA", "kid": "rsa-test", "n": B64.encode(public.n),
               "e": B64.encode(public.e)})
    }

    /// A compact JWS of `header` and `claims`, signed as `signer` says.
    fn token(&self, header: &Value, claims: &Value, signer: Signer) -> Result<String, String> {
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let rng = SystemRandom::new();
        let signature = match signer {
            Signer::Ec => self
                .ec
                .sign(&rng, input.as_bytes())
                .map_err(|e| e.to_string())?
                .as_ref()
                .to_vec(),
            Signer::Rsa => {
                let mut out = vec![0; self.rsa.public().modulus_len()];
                self.rsa
                    .sign(
                        &signature::RSA_PKCS1_SHA256,
                        &rng,
                        input.as_bytes(),
                        &mut out,
                    )
                    .map_err(|e| e.to_string())?;
                out
            }
            // The classic confusion: the RSA public key's modulus used as an HMAC secret.
            Signer::HmacWithPublicKey => {
                let public: PublicKeyComponents<Vec<u8>> = self.rsa.public().into();
                let key = hmac::Key::new(hmac::HMAC_SHA256, &public.n);
                hmac::sign(&key, input.as_bytes()).as_ref().to_vec()
            }
            Signer::None => Vec::new(),
        };
        Ok(format!("{input}.{}", B64.encode(signature)))
    }
}

/// How a token is signed.
#[derive(Clone, Copy)]
enum Signer {
    Ec,
    Rsa,
    HmacWithPublicKey,
    None,
}

fn pem(path: &str) -> Result<Vec<u8>, Box<dyn Error>> {
    let text = fs::read_to_string(path)
        .map_err(|e| format!("{path}: {e} (run from the workspace root)"))?;
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    Ok(STANDARD.decode(body)?)
}

/// Claims that pass every check, with `changes` applied (a `null` removes a claim).
fn claims(changes: &Value) -> Value {
    let mut claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice",
                            "scope": "proxy:stream", "exp": FAR_FUTURE});
    if let (Value::Object(base), Value::Object(changes)) = (&mut claims, changes) {
        for (name, value) in changes {
            if value.is_null() {
                base.remove(name);
            } else {
                base.insert(name.clone(), value.clone());
            }
        }
    }
    claims
}

fn main() -> Result<(), Box<dyn Error>> {
    let keys = Keys::read()?;
    println!("# keys (the guard's inline JWKs)");
    println!("ec: {}", keys.ec_jwk());
    println!("rsa: {}", keys.rsa_jwk());
    let es = json!({"alg": "ES256", "typ": "JWT", "kid": "ec-test"});
    let rs = json!({"alg": "RS256", "typ": "JWT", "kid": "rsa-test"});
    let tokens = [
        ("valid.es256", es.clone(), claims(&json!({})), Signer::Ec),
        ("valid.rs256", rs.clone(), claims(&json!({})), Signer::Rsa),
        (
            "expired",
            es.clone(),
            claims(&json!({"exp": LONG_AGO})),
            Signer::Ec,
        ),
        (
            "not.yet.valid",
            es.clone(),
            claims(&json!({"nbf": NOT_BEFORE})),
            Signer::Ec,
        ),
        (
            "wrong.issuer",
            es.clone(),
            claims(&json!({"iss": "https://evil.example.com"})),
            Signer::Ec,
        ),
        (
            "wrong.audience",
            es.clone(),
            claims(&json!({"aud": "https://other.example.com"})),
            Signer::Ec,
        ),
        (
            "unknown.kid",
            json!({"alg": "ES256", "typ": "JWT", "kid": "retired"}),
            claims(&json!({})),
            Signer::Ec,
        ),
        (
            "alg.none",
            json!({"alg": "none", "typ": "JWT", "kid": "ec-test"}),
            claims(&json!({})),
            Signer::None,
        ),
        (
            "alg.hs256",
            json!({"alg": "HS256", "typ": "JWT", "kid": "rsa-test"}),
            claims(&json!({})),
            Signer::HmacWithPublicKey,
        ),
        (
            "rs256.with.ec.kid",
            json!({"alg": "RS256", "typ": "JWT", "kid": "ec-test"}),
            claims(&json!({})),
            Signer::Rsa,
        ),
        (
            "es256.with.rsa.kid",
            json!({"alg": "ES256", "typ": "JWT", "kid": "rsa-test"}),
            claims(&json!({})),
            Signer::Ec,
        ),
        (
            "missing.role",
            es.clone(),
            claims(&json!({"scope": "profile:read"})),
            Signer::Ec,
        ),
    ];
    println!("# tokens");
    for (name, header, claims, signer) in tokens {
        println!("{name}: {}", keys.token(&header, &claims, signer)?);
    }
    // A valid token's signature over other claims: the payload swapped after signing.
    let signed = keys.token(&es, &claims(&json!({})), Signer::Ec)?;
    let forged = B64.encode(claims(&json!({"sub": "mallory"})).to_string());
    let mut parts = signed.split('.');
    if let (Some(header), Some(_), Some(signature)) = (parts.next(), parts.next(), parts.next()) {
        println!("tampered: {header}.{forged}.{signature}");
    }
    Ok(())
}

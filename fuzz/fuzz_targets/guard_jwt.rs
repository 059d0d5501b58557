//! The jwt guard never panics. The first byte picks what the rest is:
//! - even: a whole token, which must be refused (nothing here can forge an ES256 signature);
//! - odd: the claims JSON of a token the guard's own key signs, so the claim checks run on
//!   any bytes; a token that verifies must have a challenge no later than its expiry.
#![no_main]

use std::sync::LazyLock;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use guard_jwt::{CLOCK_SKEW, JwtGuard, JwtOptions};
use libfuzzer_sys::fuzz_target;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING as ES256, EcdsaKeyPair, KeyPair};

/// An issuer's key and a guard that trusts it.
struct Fixture {
    rng: SystemRandom,
    key: EcdsaKeyPair,
    guard: JwtGuard,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ES256, &rng).expect("generate a P-256 key");
    let key = EcdsaKeyPair::from_pkcs8(&ES256, pkcs8.as_ref(), &rng).expect("read it back");
    let point = key.public_key().as_ref();
    let options = format!(
        r#"{{"issuer": "fuzz", "audience": "fuzz", "challenge": 5, "roles": "scope",
            "attributes": {{"tenant": "org"}},
            "keys": [{{"kty": "EC", "crv": "P-256", "kid": "fuzz", "alg": "ES256",
                       "x": "{}", "y": "{}"}}]}}"#,
        B64.encode(&point[1..33]),
        B64.encode(&point[33..])
    );
    let options: JwtOptions = serde_json::from_str(&options).expect("fixture options");
    let guard = JwtGuard::new(options).expect("fixture guard");
    Fixture { rng, key, guard }
});

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let fixture = &*FIXTURE;
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    if mode % 2 == 0 {
        let token = String::from_utf8_lossy(rest);
        let refused = fixture.guard.verify(&token, now);
        assert!(refused.is_err(), "a token nobody signed verified");
        return;
    }
    let input = format!(
        "{}.{}",
        B64.encode(r#"{"alg":"ES256","kid":"fuzz"}"#),
        B64.encode(rest)
    );
    let Ok(signature) = fixture.key.sign(&fixture.rng, input.as_bytes()) else {
        return;
    };
    let token = format!("{input}.{}", B64.encode(signature));
    match fixture.guard.verify(&token, now) {
        Ok(verified) => {
            assert!(verified.challenge_at <= Some(verified.expires_at));
            let end = verified.expires_at.checked_add(CLOCK_SKEW);
            assert!(end.is_none_or(|end| end > now), "an expired token verified");
            let _ = (verified.has_roles(&["a"]), verified.attribute("tenant"));
        }
        Err(err) => {
            let _: (String, &str) = (err.to_string(), err.client_description());
        }
    }
});

//! Whatever a client sends, the guard answers with an error, never a panic and never a
//! verified token, and its message never repeats the token.

mod support;

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use guard_jwt::{GuardError, JwtGuard};
use proptest::prelude::*;
use serde_json::json;
use support::{Issuer, now};

/// A guard with an RSA key (`rsa`) and an EC key (`ec`), and audience and issuer checks.
static GUARD: LazyLock<JwtGuard> = LazyLock::new(|| {
    let keys = [Issuer::rsa("rsa", "RS256").jwk(), Issuer::ec("ec").jwk()];
    support::guard(json!({"keys": keys, "issuer": "me", "audience": "us", "challenge": 5}))
});

fn refused(token: &str) -> Result<(), TestCaseError> {
    let result = GUARD.verify(token, now());
    prop_assert!(result.is_err(), "verified: {result:?}");
    if let Err(err) = result {
        let message = err.to_string();
        prop_assert!(message.len() < 400, "{message}");
        if token.len() > 80 {
            prop_assert!(!message.contains(token), "{message}");
        }
        prop_assert!(!err.client_description().is_empty());
    }
    Ok(())
}

fn header_strategy() -> impl Strategy<Value = String> {
    let alg = prop::sample::select(vec![
        "RS256", "RS512", "ES256", "ES384", "HS256", "none", "",
    ]);
    let kid = prop::option::of(prop::sample::select(vec!["rsa", "ec", "other"]));
    (alg, kid, any::<bool>()).prop_map(|(alg, kid, crit)| {
        let mut header = json!({"alg": alg});
        if let Some(kid) = kid {
            header["kid"] = kid.into();
        }
        if crit {
            header["crit"] = json!(["exp"]);
        }
        header.to_string()
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_verify(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        refused(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn arbitrary_text_with_dots_never_verifies(token in "[A-Za-z0-9_\\-.=+/ ]{0,300}") {
        refused(&token)?;
    }

    #[test]
    fn arbitrary_base64_segments_never_verify(
        segments in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..6)
    ) {
        let encoded: Vec<String> = segments.iter().map(|s| B64.encode(s)).collect();
        refused(&encoded.join("."))?;
    }

    #[test]
    fn well_formed_tokens_with_forged_signatures_never_verify(
        header in header_strategy(),
        sub in ".{0,40}",
        exp in any::<u64>(),
        signature in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let claims = json!({"sub": sub, "exp": exp, "iss": "me", "aud": "us"});
        let token = format!(
            "{}.{}.{}",
            B64.encode(header),
            B64.encode(claims.to_string()),
            B64.encode(signature)
        );
        refused(&token)?;
    }
}

#[test]
fn a_forged_token_is_refused_for_a_reason_the_strategies_reach() {
    // The strategies above must get past parsing: a forged ES256 token reaches the signature.
    let header = B64.encode(r#"{"alg":"ES256","kid":"ec"}"#);
    let token = format!("{header}.{}.{}", B64.encode("{}"), B64.encode([0u8; 64]));
    assert!(matches!(
        GUARD.verify(&token, now()),
        Err(GuardError::BadSignature { .. })
    ));
}

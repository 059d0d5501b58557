//! Tokens signed by test issuers, verified through the public API.

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use guard_jwt::{CLOCK_SKEW, GuardError, JwtOptions, MAX_TOKEN_BYTES, TokenPart};
use serde_json::json;
use support::{EXP, Issuer, at, claims, guard, now};

#[test]
fn rs256_rs384_rs512_and_es256_tokens_verify() {
    for alg in ["RS256", "RS384", "RS512"] {
        let issuer = Issuer::rsa("rsa", alg);
        let guard = guard(json!({"keys": [issuer.jwk()]}));
        let verified = guard
            .verify(&issuer.token(&claims(json!({}))), now())
            .unwrap();
        assert_eq!(verified.identity.as_deref(), Some("alice"), "{alg}");
        assert_eq!(verified.expires_at, at(EXP));
        assert_eq!(verified.challenge_at, None);
    }
    let issuer = Issuer::ec("ec");
    let guard = guard(json!({"keys": [issuer.jwk_pinned()]}));
    assert!(
        guard
            .verify(&issuer.token(&claims(json!({}))), now())
            .is_ok()
    );
}

#[test]
fn expired_and_not_yet_valid_tokens_are_refused_past_the_skew() {
    let issuer = Issuer::ec("ec");
    let guard = guard(json!({"keys": [issuer.jwk()]}));
    let skew = CLOCK_SKEW.as_secs();
    let token = issuer.token(&claims(json!({"nbf": EXP - 1000})));
    assert!(
        guard.verify(&token, at(EXP + skew - 1)).is_ok(),
        "within skew after exp"
    );
    assert_eq!(
        guard.verify(&token, at(EXP + 3600)).unwrap_err(),
        GuardError::Expired {
            exp: EXP,
            ago: 3600
        }
    );
    assert!(
        guard.verify(&token, at(EXP - 1000 - skew)).is_ok(),
        "within skew before nbf"
    );
    assert_eq!(
        guard.verify(&token, at(EXP - 1000 - 3600)).unwrap_err(),
        GuardError::NotYetValid {
            nbf: EXP - 1000,
            ahead: 3600
        }
    );
}

#[test]
fn issuer_and_audience_must_match() {
    let issuer = Issuer::ec("ec");
    let guard = guard(
        json!({"keys": [issuer.jwk()], "issuer": "https://auth.example.com",
        "audience": "https://api.example.com"}),
    );
    let good = claims(json!({"iss": "https://auth.example.com", "aud": "https://api.example.com"}));
    assert!(guard.verify(&issuer.token(&good), now()).is_ok());
    let in_array = claims(json!({"iss": "https://auth.example.com",
        "aud": ["https://other.example.com", "https://api.example.com"]}));
    assert!(guard.verify(&issuer.token(&in_array), now()).is_ok());

    let wrong_issuer =
        claims(json!({"iss": "https://evil.example.com", "aud": "https://api.example.com"}));
    let err = guard
        .verify(&issuer.token(&wrong_issuer), now())
        .unwrap_err();
    assert!(matches!(err, GuardError::WrongIssuer { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "token issuer \"https://evil.example.com\" is not the configured \"https://auth.example.com\""
    );
    let wrong_audience =
        claims(json!({"iss": "https://auth.example.com", "aud": "https://other.example.com"}));
    let err = guard
        .verify(&issuer.token(&wrong_audience), now())
        .unwrap_err();
    assert!(matches!(err, GuardError::WrongAudience { .. }), "{err}");
    let wrong_array = claims(json!({"iss": "https://auth.example.com", "aud": ["a", "b"]}));
    let err = guard
        .verify(&issuer.token(&wrong_array), now())
        .unwrap_err();
    assert!(
        matches!(&err, GuardError::WrongAudience { found, .. } if found.len() == 2),
        "{err}"
    );
}

#[test]
fn a_token_must_use_an_alg_its_key_verifies() {
    let rs256 = Issuer::rsa("rsa", "RS256");
    let rs384 = Issuer::rsa("rsa", "RS384");
    let pinned = guard(json!({"keys": [rs256.jwk_pinned()]}));
    let err = pinned
        .verify(&rs384.token(&claims(json!({}))), now())
        .unwrap_err();
    assert_eq!(
        err,
        GuardError::KeyAlgMismatch {
            alg: "RS384",
            kid: "rsa".into(),
            accepts: "RS256".into()
        }
    );

    // An ES256 token naming an RSA key's kid: RS/ES confusion.
    let ec = Issuer::ec("rsa");
    let unpinned = guard(json!({"keys": [rs256.jwk()]}));
    let err = unpinned
        .verify(&ec.token(&claims(json!({}))), now())
        .unwrap_err();
    assert!(
        matches!(&err, GuardError::KeyAlgMismatch { alg: "ES256", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("RS256, RS384, RS512"), "{err}");
}

#[test]
fn alg_none_is_refused() {
    let issuer = Issuer::ec("ec");
    let guard = guard(json!({"keys": [issuer.jwk()]}));
    let body = B64.encode(claims(json!({})).to_string());
    for alg in ["none", "None", "NONE"] {
        let header = B64.encode(json!({"alg": alg, "kid": "ec"}).to_string());
        for signature in ["", "c2ln"] {
            let err = guard
                .verify(&format!("{header}.{body}.{signature}"), now())
                .unwrap_err();
            assert!(
                matches!(&err, GuardError::UnsupportedAlg { alg: found } if found.as_str() == alg),
                "{err}"
            );
        }
    }
}

#[test]
fn an_hmac_token_keyed_with_the_rsa_public_key_is_refused() {
    let issuer = Issuer::rsa("rsa", "RS256");
    let jwk = issuer.jwk();
    let guard = guard(json!({"keys": [jwk.clone()]}));
    // The classic confusion: HMAC with the public key as the secret.
    let input = format!(
        "{}.{}",
        B64.encode(r#"{"alg":"HS256","kid":"rsa"}"#),
        B64.encode(claims(json!({})).to_string())
    );
    for secret in [
        jwk.to_string().into_bytes(),
        B64.decode(jwk["n"].as_str().unwrap()).unwrap(),
    ] {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
        let tag = ring::hmac::sign(&key, input.as_bytes());
        let token = format!("{input}.{}", B64.encode(tag.as_ref()));
        let err = guard.verify(&token, now()).unwrap_err();
        assert!(matches!(&err, GuardError::UnsupportedAlg { alg } if alg.as_str() == "HS256"));
    }
}

#[test]
fn an_unknown_kid_is_refused_and_named() {
    let known = Issuer::ec("k1");
    let stranger = Issuer::ec("k2");
    let guard = guard(json!({"keys": [known.jwk()]}));
    let err = guard
        .verify(&stranger.token(&claims(json!({}))), now())
        .unwrap_err();
    assert!(matches!(&err, GuardError::UnknownKey { kid: Some(kid), .. } if kid.as_str() == "k2"));
    assert!(err.to_string().contains("(keys: k1)"), "{err}");
}

#[test]
fn a_token_without_kid_uses_the_only_key() {
    let issuer = Issuer::ec("ec");
    let guard = guard(json!({"keys": [issuer.jwk()]}));
    let token = issuer.sign_json(r#"{"alg":"ES256"}"#, &claims(json!({})).to_string());
    assert!(guard.verify(&token, now()).is_ok());
}

#[test]
fn one_flipped_bit_breaks_the_signature() {
    for issuer in [Issuer::rsa("rsa", "RS256"), Issuer::ec("ec")] {
        let guard = guard(json!({"keys": [issuer.jwk()]}));
        let token = issuer.token(&claims(json!({})));
        let (input, signature) = token.rsplit_once('.').unwrap();
        let mut signature = B64.decode(signature).unwrap();
        signature[7] ^= 0x10;
        let tampered = format!("{input}.{}", B64.encode(&signature));
        let err = guard.verify(&tampered, now()).unwrap_err();
        assert_eq!(
            err,
            GuardError::BadSignature {
                kid: issuer.kid.clone()
            }
        );

        // A claim changed after signing (alice → alicf), signature kept.
        let (header, rest) = token.split_once('.').unwrap();
        let (body, signature) = rest.split_once('.').unwrap();
        let forged = B64.encode(
            B64.decode(body)
                .unwrap()
                .iter()
                .map(|b| if *b == b'e' { b'f' } else { *b })
                .collect::<Vec<u8>>(),
        );
        let err = guard
            .verify(&format!("{header}.{forged}.{signature}"), now())
            .unwrap_err();
        assert!(matches!(err, GuardError::BadSignature { .. }), "{err}");
    }
}

#[test]
fn an_oversized_token_is_refused_before_anything_else() {
    let issuer = Issuer::ec("ec");
    let guard = guard(json!({"keys": [issuer.jwk()]}));
    let token = issuer.token(&claims(json!({"padding": "x".repeat(MAX_TOKEN_BYTES)})));
    let err = guard.verify(&token, now()).unwrap_err();
    assert_eq!(
        err,
        GuardError::TooLarge {
            len: token.len(),
            max: MAX_TOKEN_BYTES
        }
    );
    assert!(err.to_string().len() < 200, "{err}");
}

#[test]
fn malformed_base64_and_json_are_reported_by_part() {
    let issuer = Issuer::ec("ec");
    let guard = guard(json!({"keys": [issuer.jwk()]}));
    let good = issuer.token(&claims(json!({})));
    let (header, rest) = good.split_once('.').unwrap();

    let bad_header = format!("{}!.{rest}", &header[1..]);
    let err = guard.verify(&bad_header, now()).unwrap_err();
    assert!(
        matches!(
            err,
            GuardError::Malformed {
                part: TokenPart::Header,
                ..
            }
        ),
        "{err}"
    );

    // Signed claims that are not JSON, or not an object: refused after the signature.
    for body in ["{\"sub\":", "[1,2]", "\u{0}"] {
        let token = issuer.sign_json(r#"{"alg":"ES256"}"#, body);
        let err = guard.verify(&token, now()).unwrap_err();
        assert!(
            matches!(
                err,
                GuardError::Malformed {
                    part: TokenPart::Claims,
                    ..
                }
            ),
            "{body}: {err}"
        );
    }
    let err = guard.verify(&format!("{good}="), now()).unwrap_err();
    assert!(
        matches!(
            err,
            GuardError::Malformed {
                part: TokenPart::Signature,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn error_messages_never_repeat_the_token() {
    let issuer = Issuer::ec("ec");
    let guard = guard(json!({"keys": [issuer.jwk()], "issuer": "me"}));
    let long_value = "v".repeat(500);
    let cases = [
        issuer.token(&claims(json!({"iss": long_value}))),
        issuer.sign_json(&json!({"alg": long_value}).to_string(), "{}"),
        issuer.sign_json(
            &json!({"alg": "ES256", "kid": long_value}).to_string(),
            "{}",
        ),
    ];
    for token in cases {
        let message = guard.verify(&token, now()).unwrap_err().to_string();
        assert!(!message.contains(&long_value[..100]), "{message}");
        assert!(message.len() < 300, "{message}");
    }
}

#[test]
fn roles_identity_and_challenge_follow_the_options() {
    let issuer = Issuer::rsa("rsa", "RS256");
    let guard = guard(json!({"keys": [issuer.jwk()], "challenge": 10}));
    let spaced = guard.verify(
        &issuer.token(&claims(json!({"scope": "proxy:stream read"}))),
        now(),
    );
    let spaced = spaced.unwrap();
    assert_eq!(spaced.roles, ["proxy:stream", "read"]);
    assert!(spaced.has_roles(&["proxy:stream"]));
    assert!(!spaced.has_roles(&["proxy:stream", "admin"]));
    assert_eq!(spaced.challenge_at, Some(at(EXP - 10)));

    let custom = support::guard(json!({"keys": [issuer.jwk()], "roles": "permissions",
        "identity": "email", "attributes": {"tenant": "org"}}));
    let token = issuer.token(&claims(
        json!({"permissions": ["a", "b"], "email": "alice@example.com",
        "org": "acme", "scope": "not-used"}),
    ));
    let verified = custom.verify(&token, now()).unwrap();
    assert_eq!(verified.roles, ["a", "b"]);
    assert_eq!(verified.identity.as_deref(), Some("alice@example.com"));
    assert_eq!(verified.attribute("tenant"), Some("acme"));
    assert_eq!(verified.claim("sub"), Some("alice"));
    assert_eq!(verified.challenge_at, None);
}

#[test]
fn zillas_yaml_options_build_a_guard() {
    let issuer = Issuer::rsa("example", "RS256");
    let jwk = issuer.jwk();
    let yaml = format!(
        "issuer: https://auth.example.com\n\
         audience: https://api.example.com\n\
         keys:\n\
         \x20 - kty: RSA\n\
         \x20   n: {}\n\
         \x20   e: {}\n\
         \x20   alg: RS256\n\
         \x20   kid: example\n\
         roles: scope\n\
         challenge: 10\n",
        jwk["n"].as_str().unwrap(),
        jwk["e"].as_str().unwrap()
    );
    let node = zilla_config::parse(&yaml).unwrap();
    let options: JwtOptions = zilla_config::from_node(&node).unwrap();
    assert_eq!(options.challenge, Some(10));
    let guard = guard_jwt::JwtGuard::new(options).unwrap();
    let token = issuer.token(&claims(json!({"iss": "https://auth.example.com",
        "aud": "https://api.example.com", "scope": "proxy:stream"})));
    assert!(
        guard
            .verify(&token, now())
            .unwrap()
            .has_roles(&["proxy:stream"])
    );

    let url = zilla_config::parse("keys: https://auth.example.com/jwks.json").unwrap();
    let err = zilla_config::from_node::<JwtOptions>(&url).unwrap_err();
    assert!(
        err.to_string().contains("save the JWK Set to a file"),
        "{err}"
    );
}

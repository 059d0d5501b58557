//! A jwt guard as the bindings see it: `binding_api::guard::Guard`.

mod support;

use binding_api::guard::Guard;
use guard_jwt::NamedJwtGuard;
use serde_json::json;
use support::{EXP, Issuer, at, claims, guard, now};

#[test]
fn a_verified_token_is_a_session_of_the_named_guard() {
    let issuer = Issuer::ec("ec");
    let jwt = guard(json!({"keys": [issuer.jwk()], "challenge": 30,
                           "attributes": {"tenant": "org"}}));
    let named = NamedJwtGuard::new("authn_jwt", jwt);
    assert_eq!(named.name(), "authn_jwt");
    let token = issuer.token(&claims(
        json!({"scope": "proxy:stream read", "org": "acme"}),
    ));
    let session = named.verify(&token, now()).unwrap();
    assert_eq!(&*session.guard, "authn_jwt");
    assert_eq!(session.identity.as_deref(), Some("alice"));
    assert_eq!(session.roles, ["proxy:stream", "read"]);
    assert_eq!(session.attribute("tenant"), Some("acme"));
    assert_eq!(session.expires_at, at(EXP));
    assert_eq!(session.challenge_at, Some(at(EXP - 30)));
}

#[test]
fn a_refused_token_is_denied_with_a_description_for_the_client() {
    let issuer = Issuer::ec("ec");
    let named = NamedJwtGuard::new("authn_jwt", guard(json!({"keys": [issuer.jwk()]})));
    let token = issuer.token(&claims(json!({})));
    let denied = named.verify(&token, at(EXP + 3600)).unwrap_err();
    assert_eq!(denied.description, "the token expired");
    assert!(denied.detail.contains("expired at 1800000000"), "{denied}");
    let forged = Issuer::ec("ec").token(&claims(json!({})));
    let denied = named.verify(&forged, now()).unwrap_err();
    assert_eq!(denied.description, "the token's signature is not valid");
    assert!(!denied.detail.contains(&forged), "never the token itself");
}

#[test]
fn a_fresh_token_of_the_same_sub_extends_the_streams_its_sessions_opened() {
    let issuer = Issuer::ec("ec");
    let named = NamedJwtGuard::new("authn_jwt", guard(json!({"keys": [issuer.jwk()]})));
    let token = issuer.token(&claims(json!({"scope": "proxy:stream"})));
    let session = named.verify(&token, now()).unwrap();
    let live = session.live.clone().expect("the guard keeps live sessions");
    assert!(std::sync::Arc::ptr_eq(&live, named.live_sessions()));
    let lease = live.hold(&session, &["proxy:stream".to_owned()]);
    assert_eq!(named.live_sessions().len(), 1);

    let later = issuer.token(&claims(json!({"scope": "proxy:stream", "exp": EXP + 600})));
    assert_eq!(named.reauthorize(&later, now()), Ok(1));
    assert_eq!(lease.expires_at(), at(EXP + 600));
    // Another user's token, or one without the role, extends nothing.
    let bob = issuer.token(&claims(json!({"sub": "bob", "scope": "proxy:stream",
                                          "exp": EXP + 1200})));
    assert_eq!(named.reauthorize(&bob, now()), Ok(0));
    let reader = issuer.token(&claims(json!({"scope": "read", "exp": EXP + 1200})));
    assert_eq!(named.reauthorize(&reader, now()), Ok(0));
    assert_eq!(lease.expires_at(), at(EXP + 600));
    // A token the guard refuses is denied.
    let forged = Issuer::ec("ec").token(&claims(json!({"exp": EXP + 1200})));
    assert!(named.reauthorize(&forged, now()).is_err());
    drop(lease);
    assert!(named.live_sessions().is_empty());
}

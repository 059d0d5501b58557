//! Keys from a JWKS file: read when the guard is built, swapped in by `reload`.
#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use guard_jwt::{GuardError, JwtGuard, JwtOptions, KeySource, KeysError};
use serde_json::{Value, json};
use support::{Issuer, claims, now};

/// A fresh directory under cargo's per-target scratch space.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("guard-jwt-{name}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_jwks(path: &Path, keys: &[Value]) {
    fs::write(path, json!({"keys": keys}).to_string()).unwrap();
}

fn file_guard(dir: &Path) -> JwtGuard {
    let options = JwtOptions::new(KeySource::File("jwks.json".into())).relative_to(dir);
    JwtGuard::new(options).unwrap()
}

#[test]
fn reload_swaps_the_keys() {
    let dir = scratch("swap");
    let (a, b) = (Issuer::ec("a"), Issuer::ec("b"));
    let path = dir.join("jwks.json");
    write_jwks(&path, &[a.jwk()]);
    let guard = file_guard(&dir);
    assert_eq!(guard.jwks_path(), Some(path.as_path()));
    let (token_a, token_b) = (a.token(&claims(json!({}))), b.token(&claims(json!({}))));
    assert!(guard.verify(&token_a, now()).is_ok());
    assert!(matches!(
        guard.verify(&token_b, now()),
        Err(GuardError::UnknownKey { .. })
    ));

    write_jwks(&path, &[b.jwk()]);
    assert!(
        guard.verify(&token_a, now()).is_ok(),
        "no reload yet: old keys"
    );
    assert_eq!(guard.reload().unwrap(), 1);
    assert_eq!(guard.kids(), ["b"]);
    assert!(guard.verify(&token_b, now()).is_ok());
    assert!(matches!(
        guard.verify(&token_a, now()),
        Err(GuardError::UnknownKey { .. })
    ));
}

#[test]
fn a_failed_reload_keeps_the_keys_in_use() {
    let dir = scratch("keep");
    let a = Issuer::ec("a");
    let path = dir.join("jwks.json");
    write_jwks(&path, &[a.jwk()]);
    let guard = file_guard(&dir);
    let token = a.token(&claims(json!({})));

    fs::write(&path, "{\"keys\": [").unwrap();
    let err = guard.reload().unwrap_err();
    assert!(matches!(err, KeysError::Json { .. }), "{err}");
    assert!(err.to_string().contains("jwks.json"), "{err}");

    write_jwks(&path, &[]);
    assert!(matches!(guard.reload(), Err(KeysError::NoKeys { .. })));

    let mut private = a.jwk();
    private["d"] = "AAAA".into();
    write_jwks(&path, &[private]);
    let err = guard.reload().unwrap_err();
    assert!(err.to_string().contains("key a: is a private key"), "{err}");

    fs::remove_file(&path).unwrap();
    assert!(matches!(guard.reload(), Err(KeysError::Read { .. })));
    assert!(guard.verify(&token, now()).is_ok());
}

#[test]
fn verifying_threads_see_whole_key_sets_while_keys_reload() {
    let dir = scratch("threads");
    let (a, b) = (Issuer::ec("a"), Issuer::ec("b"));
    let path = dir.join("jwks.json");
    write_jwks(&path, &[a.jwk()]);
    let guard = file_guard(&dir);
    let token = a.token(&claims(json!({})));
    let reloading = AtomicBool::new(true);
    let verified = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while reloading.load(Ordering::Relaxed) {
                    assert!(guard.verify(&token, now()).is_ok());
                    verified.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        // Every set written holds `a`, so no verification of `a`'s token may fail.
        for round in 0..200 {
            let keys = if round % 2 == 0 {
                vec![a.jwk(), b.jwk()]
            } else {
                vec![a.jwk()]
            };
            write_jwks(&path, &keys);
            assert_eq!(guard.reload().unwrap(), keys.len());
        }
        reloading.store(false, Ordering::Relaxed);
    });
    assert!(verified.load(Ordering::Relaxed) > 0);
}

#[test]
fn inline_keys_have_nothing_to_reload() {
    let a = Issuer::ec("a");
    let guard = support::guard(json!({"keys": [a.jwk()]}));
    assert_eq!(guard.jwks_path(), None);
    assert_eq!(guard.reload().unwrap(), 1);
    assert!(guard.verify(&a.token(&claims(json!({}))), now()).is_ok());
}

#[test]
fn a_missing_jwks_file_fails_the_guard_with_its_path() {
    let dir = scratch("missing");
    let options = JwtOptions::new(KeySource::File(dir.join("absent.json")));
    let err = JwtGuard::new(options).unwrap_err();
    assert!(matches!(err, KeysError::Read { .. }));
    assert!(err.to_string().contains("absent.json"), "{err}");
}

use std::path::Path;
use std::process::Command;

use super::*;

/// Makes a self-signed certificate for `name` and exports it as `file` with `password`,
/// with openssl (as `examples/sse.kafka.fanout/tls/create` does).
fn keystore(dir: &Path, name: &str, password: &str) -> PathBuf {
    let key = dir.join(format!("{name}.key"));
    let cert = dir.join(format!("{name}.crt"));
    let p12 = dir.join(format!("{name}.p12"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", &format!("/CN={name}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl")
        .status
        .success();
    assert!(ok, "openssl req");
    let ok = Command::new("openssl")
        .args(["pkcs12", "-export", "-name", name, "-passout"])
        .arg(format!("pass:{password}"))
        .arg("-inkey")
        .arg(&key)
        .arg("-in")
        .arg(&cert)
        .arg("-out")
        .arg(&p12)
        .output()
        .expect("openssl")
        .status
        .success();
    assert!(ok, "openssl pkcs12");
    p12
}

fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vault-fs-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tempdir");
    dir
}

#[test]
fn key_by_alias_with_its_certificate() {
    let dir = tempdir("alias");
    keystore(&dir, "localhost", "secret");
    let vault = FilesystemVault::new("v").with_keys(
        StoreConfig::new("localhost.p12")
            .password("secret")
            .relative_to(&dir),
    );
    let key = vault.key("localhost").expect("key");
    assert_eq!(key.chain.len(), 1);
    assert!(!key.key.is_empty());
    let err = vault.key("other").expect_err("no such alias");
    assert_eq!(
        err.to_string(),
        "vault 'v': keys store has no entry 'other' (entries: localhost)"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn wrong_password_names_vault_file_and_cause() {
    let dir = tempdir("password");
    let path = keystore(&dir, "localhost", "secret");
    let vault =
        FilesystemVault::new("my_servers").with_keys(StoreConfig::new(&path).password("nope"));
    let err = vault
        .key("localhost")
        .expect_err("wrong password")
        .to_string();
    assert!(err.starts_with("vault 'my_servers': keys store '"), "{err}");
    assert!(err.contains("localhost.p12"), "{err}");
    assert!(err.contains("wrong password"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn missing_file_names_the_path() {
    let vault = FilesystemVault::new("v").with_keys(StoreConfig::new("/nonexistent/k.p12"));
    let err = vault.key("a").expect_err("missing").to_string();
    assert!(err.contains("'/nonexistent/k.p12'"), "{err}");
    assert!(err.contains("No such file"), "{err}");
    let err = vault
        .all_certificates(StoreKind::Trust)
        .expect_err("no trust");
    assert_eq!(err.to_string(), "vault 'v' has no 'trust' store");
}

#[test]
fn trust_store_takes_certificates() {
    let dir = tempdir("trust");
    let path = keystore(&dir, "ca", "pw");
    let vault = FilesystemVault::new("v").with_trust(StoreConfig::new(&path).password("pw"));
    let certs = vault.all_certificates(StoreKind::Trust).expect("certs");
    assert_eq!(certs.len(), 1);
    assert_eq!(
        vault
            .certificates(StoreKind::Trust, "ca")
            .expect("by alias"),
        certs
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn not_pkcs12() {
    let dir = tempdir("garbage");
    let path = dir.join("g.p12");
    std::fs::write(&path, b"not a keystore").expect("write");
    let vault = FilesystemVault::new("v").with_keys(StoreConfig::new(&path));
    let err = vault.key("a").expect_err("garbage").to_string();
    assert!(err.contains("not a readable PKCS#12 store"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A CA and an empty CRL it signs, as `ca.crl` (PEM) and `ca.der` (DER).
fn crl(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(out.status.success(), "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\ncrlnumber=crlnumber\ndefault_md=sha256\ndefault_crl_days=2\n",
    )
    .expect("cnf");
    std::fs::write(dir.join("index.txt"), "").expect("index");
    std::fs::write(dir.join("crlnumber"), "01\n").expect("crlnumber");
    run(&[
        "ca", "-config", "ca.cnf", "-cert", "ca.crt", "-keyfile", "ca.key", "-gencrl", "-out",
        "ca.crl",
    ]);
    run(&["crl", "-in", "ca.crl", "-outform", "DER", "-out", "ca.der"]);
}

#[test]
fn revocation_lists_pem_and_der() {
    let dir = tempdir("crl");
    crl(&dir);
    let vault =
        FilesystemVault::new("v").with_revocation_lists([dir.join("ca.crl"), dir.join("ca.der")]);
    let crls = vault.revocation_lists().expect("crls").expect("checked");
    assert_eq!(crls.len(), 2);
    assert_eq!(crls[0], crls[1]);
    assert_eq!(FilesystemVault::new("v").revocation_lists(), Ok(None));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_bad_revocation_list_names_vault_file_and_cause() {
    let dir = tempdir("badcrl");
    crl(&dir);
    let vault = FilesystemVault::new("my_servers").with_revocation_lists([dir.join("ca.crt")]);
    let err = vault
        .revocation_lists()
        .expect_err("a certificate")
        .to_string();
    assert!(
        err.starts_with("vault 'my_servers': revocation list '"),
        "{err}"
    );
    assert!(
        err.contains("ca.crt': the file holds no 'X509 CRL' section"),
        "{err}"
    );
    std::fs::write(dir.join("junk.der"), [0x30, 0x03, 1, 2, 3]).expect("write");
    let vault = FilesystemVault::new("v").with_revocation_lists([dir.join("junk.der")]);
    let err = vault.revocation_lists().expect_err("junk").to_string();
    assert!(err.contains("not a certificate revocation list"), "{err}");
    let vault = FilesystemVault::new("v").with_revocation_lists([dir.join("none.crl")]);
    let err = vault.revocation_lists().expect_err("missing").to_string();
    assert!(err.contains("none.crl': No such file"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

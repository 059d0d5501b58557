//! `examples/sse.kafka.fanout` as the tests run it: its configuration as written, moved to
//! free ports and temporary paths.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::repo_root;

/// The example's folder, relative to the repository root.
pub const FANOUT: &str = "examples/sse.kafka.fanout";

/// The example's `zilla.yaml` with `tls_port` and `http_port` for 7143 and 7114, a keystore
/// made by the example's `tls/create` (with `password`) in `dir`, and its files from the
/// example's `www/`; the text, for the caller to edit further and write.
///
/// # Panics
///
/// When `dir` cannot be made, or `tls/create` (openssl) fails.
pub fn fanout_config(dir: &Path, tls_port: u16, http_port: u16, password: &str) -> String {
    let root = repo_root();
    std::fs::create_dir_all(dir).expect("temp dir");
    let status = Command::new(root.join(FANOUT).join("tls/create"))
        .arg(dir)
        .env("KEYSTORE_PASSWORD", password)
        .stdout(Stdio::null())
        .status()
        .expect("tls/create runs (needs openssl)");
    assert!(status.success(), "tls/create failed");
    std::fs::read_to_string(root.join(FANOUT).join("zilla.yaml"))
        .expect("example config")
        .replace("7143", &tls_port.to_string())
        .replace("7114", &http_port.to_string())
        .replace(
            "store: tls/localhost.p12",
            &format!("store: {}", dir.join("localhost.p12").display()),
        )
        .replace(
            "location: www/",
            &format!("location: {}/", root.join(FANOUT).join("www").display()),
        )
}

/// Writes `text` as `dir/zilla.yaml` and returns its path.
///
/// # Panics
///
/// When it cannot be written.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("zilla.yaml");
    std::fs::write(&path, text).expect("write config");
    path
}

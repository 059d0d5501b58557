//! Support code for the zilla-rs end-to-end tests.
//!
//! The tests themselves live next to this folder, one file per `[[test]]` target in
//! `tests/Cargo.toml`; this library is what they share:
//!
//! - [`kafka`]: a real Apache Kafka broker (started once per test process through
//!   `scripts/kafka`, or taken from `KAFKA_BOOTSTRAP`), and the Kafka console tools to
//!   create topics, produce and consume records as an independent client would.
//! - [`zilla`]: the real `zilla` binary, started with a configuration, stopped by signal.
//!
//! Helpers here panic with a clear message when something goes wrong: they are for tests.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub mod kafka;
pub mod zilla;

/// The root of the repository (the folder with the workspace `Cargo.toml` and `scripts/`).
pub fn repo_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = manifest_dir.parent().unwrap_or(manifest_dir);
        root.canonicalize().unwrap_or_else(|_| root.to_path_buf())
    })
}

/// A port on 127.0.0.1 that was free when asked (the OS does not hand it out again at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

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

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

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

/// An exclusive lock shared by every test process on this machine, held while this value
/// lives (see [`lock`]).
#[derive(Debug)]
pub struct Lock {
    holder: Child,
}

/// Takes the machine-wide lock `name` (waiting up to ten minutes for it), for tests that use
/// fixed resources such as the seed configuration's ports 7143 and 7114.
///
/// The lock is a `flock(1)` child (util-linux) holding `$TMPDIR/zilla-rs-e2e-<name>.lock`
/// until its standard input closes: when the [`Lock`] is dropped, or when the test process
/// dies, so a crashed test never leaves it taken.
///
/// # Panics
///
/// When `flock` cannot be run or the lock is not free within ten minutes.
pub fn lock(name: &str) -> Lock {
    let path = std::env::temp_dir().join(format!("zilla-rs-e2e-{name}.lock"));
    let mut holder = Command::new("flock")
        .arg("--exclusive")
        .arg(&path)
        .args(["-c", "echo locked && exec cat >/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("flock (util-linux) must be installed");
    let stdout = holder.stdout.take().expect("stdout is piped");
    let (locked, wait) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = locked.send(line);
    });
    match wait.recv_timeout(Duration::from_secs(600)) {
        Ok(line) if line.trim() == "locked" => Lock { holder },
        outcome => {
            let _ = holder.kill();
            let _ = holder.wait();
            panic!("could not take the lock {} ({outcome:?})", path.display());
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Closing its standard input ends `cat`, and with it the lock.
        drop(self.holder.stdin.take());
        let _ = self.holder.wait();
    }
}

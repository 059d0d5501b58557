//! Support code for the zilla-rs end-to-end tests.
//!
//! The tests themselves live next to this folder, one file per `[[test]]` target in
//! `tests/Cargo.toml`; this library is what they share:
//!
//! - [`kafka`]: a real Apache Kafka broker (started once per test process through
//!   `scripts/kafka`, or taken from `KAFKA_BOOTSTRAP`), and the Kafka console tools to
//!   create topics, produce and consume records as an independent client would.
//! - [`zilla`]: the real `zilla` binary, started with a configuration, stopped by signal.
//! - [`sse`]: curl as an SSE client, and a parser of the event stream it prints.
//! - [`example`]: `examples/sse.kafka.fanout`'s configuration on free ports.
//! - [`jwt`]: a key pair made in the test and the ES256 tokens it signs.
//!
//! Helpers here panic with a clear message when something goes wrong: they are for tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

pub mod example;
pub mod jwt;
pub mod kafka;
pub mod sse;
pub mod zilla;

/// The lines `child` writes to its piped stdout, as they come, read by a thread of their own.
///
/// # Panics
///
/// When the child's stdout is not piped (or already taken).
pub fn stdout_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                return;
            }
        }
    });
    lines
}

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

/// A free port below Linux's default ephemeral range (32768–60999) and below
/// `scripts/kafka`'s brokers (20000 and up), for a
/// server that a test starts, stops and starts again on the same port.
///
/// A port from [`free_port`] is an ephemeral one: while nothing listens on it, any outgoing
/// connection may take it as its source port, even a client retrying against that very port
/// (TCP connects to itself), and the server cannot listen there again. No outgoing connection
/// takes a port below that range. Free on 0.0.0.0 and 127.0.0.1 when asked.
///
/// # Panics
///
/// When no port in 10000..20000 is free after many tries.
pub fn stable_port() -> u16 {
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    const LOW: u64 = 10_000;
    const SPAN: u64 = 10_000;
    for _ in 0..1000 {
        // A cheap pseudo-random spread over the span, different per process and call.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::from(d.subsec_nanos()))
            .unwrap_or_default();
        let mut x = nanos
            ^ (u64::from(std::process::id()) << 20)
            ^ COUNTER
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        let Ok(port) = u16::try_from(LOW + x % SPAN) else {
            continue;
        };
        if TcpListener::bind(("0.0.0.0", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port in {LOW}..{}", LOW + SPAN);
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

/// `tests/node`, with its packages installed (`npm ci`, once per process: tests run in
/// parallel): the Node clients (`eventsource`, the Playwright driver) the tests run.
///
/// # Panics
///
/// When npm is missing or `npm ci` fails.
pub fn node_modules() -> PathBuf {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    let dir = repo_root().join("tests/node");
    INSTALLED.get_or_init(|| {
        let installed = ["eventsource", "playwright-core"]
            .iter()
            .all(|package| dir.join("node_modules").join(package).exists());
        if !installed {
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .status()
                .expect("npm must be installed");
            assert!(status.success(), "npm ci failed");
        }
    });
    dir
}

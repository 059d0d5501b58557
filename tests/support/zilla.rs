//! The real `zilla` binary, run as a user would run it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::repo_root;

/// The environment variable that points the tests at a prebuilt binary.
pub const BINARY_ENV: &str = "ZILLA_BIN";

/// The `zilla` binary: `ZILLA_BIN` when set, else built once per test process with
/// `cargo build -p engine --bin zilla`.
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(path) = std::env::var_os(BINARY_ENV) {
            return PathBuf::from(path);
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "engine", "--bin", "zilla"])
            .current_dir(repo_root())
            .status()
            .expect("cannot run cargo to build zilla");
        assert!(status.success(), "building zilla failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target"));
        target.join("debug").join("zilla")
    })
}

/// Runs `zilla ARGS` to completion.
pub fn run(args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("cannot run zilla")
}

/// A running `zilla start`, stopped (SIGTERM) when dropped.
pub struct Zilla {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    lines: Receiver<String>,
}

impl Zilla {
    /// Starts `zilla start -c CONFIG` (relative to the repository root) with extra
    /// environment, and waits for its ready line.
    pub fn start(config: &Path, env: &[(&str, &str)]) -> Zilla {
        Zilla::start_with_args(config, &[], env)
    }

    /// Like [`Zilla::start`], with extra arguments after `start -c CONFIG`.
    pub fn start_with_args(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Zilla {
        let mut command = Command::new(binary());
        command
            .args(["start", "-c"])
            .arg(config)
            .args(args)
            .current_dir(repo_root())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("cannot start zilla");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[zilla] {line}");
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(line.clone());
                let _ = tx.send(line);
            }
        });
        let zilla = Zilla { child, log, lines };
        // The ready line stays in the log for wait_for_line to find again.
        zilla.await_ready(Duration::from_secs(20));
        zilla
    }

    fn await_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(" started") => return,
                Ok(_) => {}
                Err(_) => panic!(
                    "zilla did not start within {timeout:?}; log:\n{}",
                    self.log().join("\n")
                ),
            }
        }
    }

    /// Waits until a log line containing `needle` has appeared (since the start); panics
    /// with the log otherwise.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> String {
        if let Some(line) = self.log().into_iter().find(|l| l.contains(needle)) {
            return line;
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!(
                    "zilla did not log {needle:?} within {timeout:?}; log:\n{}",
                    self.log().join("\n")
                ),
            }
        }
    }

    /// Everything logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit, returning its status and how long it took.
    pub fn terminate(mut self) -> (ExitStatus, Duration) {
        self.signal("TERM");
        self.wait_exit()
    }

    /// Sends SIGINT and waits for the exit.
    pub fn interrupt(mut self) -> (ExitStatus, Duration) {
        self.signal("INT");
        self.wait_exit()
    }

    fn signal(&mut self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("cannot run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    fn wait_exit(&mut self) -> (ExitStatus, Duration) {
        let began = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("cannot wait for zilla") {
                return (status, began.elapsed());
            }
            if began.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                panic!("zilla did not exit within 30 s of the signal");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Zilla {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

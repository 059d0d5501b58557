//! # specs
//!
//! Conformance scenarios as data, and the harness that runs them.
//!
//! A scenario (`specs/<binding>/<behaviour>.yaml`, format in `specs/README.md`) holds an engine
//! configuration where the binding under test sits between scripted peers, and one script per
//! peer:
//!
//! - a *stream peer* speaks the frame contract directly, through a binding of `type: spec`
//!   ([`binding::SpecFactory`]) that this harness adds to the engine's registry;
//! - a *network peer* speaks TCP to the binding under test, as a client or a server.
//!
//! The peers run concurrently, each step in order, ordered across peers by barriers; every
//! step has a timeout. [`run_file`] runs one file with the engine in-process.
//!
//! ```no_run
//! let outcome = specs::run_file("specs/echo/data.echoed.yaml".as_ref());
//! println!("{}", outcome.report());
//! ```

pub mod binding;
pub mod ext;
pub mod h2;
mod network;
mod runner;
pub mod scenario;
pub mod step;
mod stream;
pub mod tls;
pub mod tokens;
pub mod value;

use std::path::{Path, PathBuf};

pub use runner::{Failure, Outcome, StepFailure, run, run_file};

impl Outcome {
    /// One line: `PASS file (title)` or `FAIL file:line:col: what went wrong`.
    pub fn report(&self) -> String {
        let file = self.file.display();
        let ms = self.elapsed.as_millis();
        match &self.failure {
            None => format!(
                "PASS {file} ({ms} ms){}",
                self.title
                    .as_deref()
                    .map_or_else(String::new, |t| format!(": {t}"))
            ),
            Some(Failure::Invalid(err)) => format!("FAIL {err} ({ms} ms)"),
            Some(Failure::Step(step)) => format!("FAIL {file}:{step} ({ms} ms)"),
            Some(other) => format!("FAIL {file}: {other} ({ms} ms)"),
        }
    }
}

/// Every scenario file under `root`: `root/<binding>/*.yaml`, sorted.
pub fn discover(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for dir in std::fs::read_dir(root)? {
        let dir = dir?.path();
        if !dir.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&dir)? {
            let file = file?.path();
            if file.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(file);
            }
        }
    }
    files.sort();
    Ok(files)
}

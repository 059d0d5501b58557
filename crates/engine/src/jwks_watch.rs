//! JWKS files reloaded when they change: a `jwt` guard whose `keys` name a file gets the
//! file's new keys within [`POLL_INTERVAL`] of it changing on disk, so an issuer's key
//! rotation needs no restart (and no configuration reload: the guard is the same object, its
//! key set swapped in place).
//!
//! One background thread polls each file's modification time and length (a stat per file
//! every two seconds: nothing to install, and it works on every filesystem, network and
//! container mounts included, where change notifications are often missing). When they
//! change, the guard re-reads the file ([`guard_jwt::JwtGuard::reload`]) and swaps the keys in
//! while streams keep verifying. Each outcome is logged once, as an event the stdout exporter
//! also writes:
//!
//! - `jwks_reloaded` (info): the guard, the file, the number of keys and their `kid`s;
//! - `jwks_reload_failed` (warning): the guard, the file and why (unreadable, not a JWK Set,
//!   a bad key). The keys in use are kept, and the file is read again when it changes again.
//!
//! Across configuration reloads: a guard whose options are unchanged is taken over by the
//! next configuration as it is ([`JwksFiles::reusable`]); the guards a reload builds anew are
//! handed to the running watch with [`JwksWatch::follow`]. The watch holds guards weakly, so
//! it forgets a guard once no binding uses it.
//!
//! ```no_run
//! use engine::{Registry, load_file};
//! use zilla_config::factory::RunOptions;
//!
//! let (registry, run) = (Registry::builtin(), RunOptions::default());
//! let built = load_file("zilla.yaml".as_ref(), &registry, &run)?;
//! let watch = built.graph.jwks.watch()?; // polls until dropped
//! // after each configuration reload:
//! let next = load_file("zilla.yaml".as_ref(), &registry, &run)?;
//! watch.follow(&next.graph.jwks);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread;
use std::time::{Duration, SystemTime};

use guard_jwt::{JwtOptions, NamedJwtGuard};

/// How often each JWKS file is checked for a change.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// What a stat of the file said: enough to tell that it was rewritten.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FileState {
    /// The file is there, modified at `modified`, `len` bytes long.
    Present {
        /// Its modification time.
        modified: SystemTime,
        /// Its length.
        len: u64,
    },
    /// The file cannot be read (removed, say): why.
    Unreadable(String),
}

impl FileState {
    /// Stats `path`.
    pub(crate) fn of(path: &Path) -> FileState {
        match std::fs::metadata(path).and_then(|m| Ok((m.modified()?, m.len()))) {
            Ok((modified, len)) => FileState::Present { modified, len },
            Err(err) => FileState::Unreadable(err.to_string()),
        }
    }
}

/// What to do about a file after a stat: the sans-IO half of the watch.
#[derive(Debug, PartialEq, Eq)]
enum Change {
    /// Nothing changed.
    None,
    /// The file was written: read it again.
    Written,
    /// The file became unreadable: say so once, keep the keys.
    Vanished(String),
}

/// The change from what was seen last to what is seen now.
fn change(last: &FileState, now: &FileState) -> Change {
    match (last, now) {
        (last, now) if last == now => Change::None,
        (_, FileState::Present { .. }) => Change::Written,
        (FileState::Unreadable(_), FileState::Unreadable(_)) => Change::None,
        (FileState::Present { .. }, FileState::Unreadable(why)) => Change::Vanished(why.clone()),
    }
}

/// One guard whose keys come from a file, as the watch polls it: held weakly, with what its
/// file looked like when last read.
#[derive(Debug)]
struct Tracked {
    guard: Weak<NamedJwtGuard>,
    path: PathBuf,
    last: FileState,
}

impl Tracked {
    /// Stats the file and acts on a change; `false` once no binding uses the guard.
    fn poll(&mut self) -> bool {
        let Some(guard) = self.guard.upgrade() else {
            return false;
        };
        let now = FileState::of(&self.path);
        let name = binding_api::guard::Guard::name(&*guard);
        let file = self.path.display();
        match change(&self.last, &now) {
            Change::None => {}
            Change::Written => match guard.jwt().reload() {
                Ok(keys) => tracing::info!(
                    event = "jwks_reloaded",
                    guard = name,
                    %file,
                    keys,
                    kids = %guard.jwt().kids().join(", "),
                    "JWKS file changed: guard '{name}' verifies with its new keys"
                ),
                Err(err) => tracing::warn!(
                    event = "jwks_reload_failed",
                    guard = name,
                    %file,
                    error = %err,
                    "JWKS file changed but cannot be used: guard '{name}' keeps the keys in \
                     use; fix the file"
                ),
            },
            Change::Vanished(why) => tracing::warn!(
                event = "jwks_reload_failed",
                guard = name,
                %file,
                error = %why,
                "JWKS file cannot be read: guard '{name}' keeps the keys in use; restore the \
                 file"
            ),
        }
        self.last = now;
        true
    }
}

/// A `jwt` guard whose keys come from a file, as a build made it.
#[derive(Clone, Debug)]
struct Listed {
    guard: Arc<NamedJwtGuard>,
    options: JwtOptions,
    path: PathBuf,
    /// The file as it was just before the guard read it.
    before: FileState,
}

/// The `jwt` guards whose keys come from a JWKS file, each with its options and its file as
/// it was just before the guard read it (so a change while it was read is not missed).
#[derive(Clone, Debug, Default)]
pub struct JwksFiles {
    listed: Vec<Listed>,
}

impl JwksFiles {
    /// Adds `guard`, built from `options`, whose JWKS file `path` looked like `before` just
    /// before the guard read it.
    pub(crate) fn add(
        &mut self,
        guard: Arc<NamedJwtGuard>,
        options: JwtOptions,
        path: PathBuf,
        before: FileState,
    ) {
        self.listed.push(Listed {
            guard,
            options,
            path,
            before,
        });
    }

    /// The guard named `name` built from the same `options`, for the next configuration to
    /// take over with the keys it has now.
    pub(crate) fn reusable(
        &self,
        name: &str,
        options: &JwtOptions,
    ) -> Option<(Arc<NamedJwtGuard>, FileState)> {
        self.listed
            .iter()
            .find(|listed| {
                binding_api::guard::Guard::name(&*listed.guard) == name
                    && listed.options == *options
            })
            .map(|listed| (listed.guard.clone(), listed.before.clone()))
    }

    /// Starts reloading each file when it changes, checking every [`POLL_INTERVAL`], on a
    /// thread of its own until the returned watch is dropped.
    pub fn watch(&self) -> std::io::Result<JwksWatch> {
        self.watch_every(POLL_INTERVAL)
    }

    /// [`watch`](JwksFiles::watch), checking every `interval`.
    pub fn watch_every(&self, interval: Duration) -> std::io::Result<JwksWatch> {
        let tracked = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = mpsc::channel::<()>();
        let polled = tracked.clone();
        let thread = thread::Builder::new()
            .name("zilla-jwks-watch".into())
            .spawn(move || {
                // Dropping the sender ends the wait with Disconnected.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    lock(&polled).retain_mut(Tracked::poll);
                }
            })?;
        let watch = JwksWatch {
            tracked,
            stop: Some(stop),
            thread: Some(thread),
        };
        watch.follow(self);
        Ok(watch)
    }
}

fn lock(tracked: &Mutex<Vec<Tracked>>) -> std::sync::MutexGuard<'_, Vec<Tracked>> {
    // A poll that panicked left whole entries behind: keep polling them.
    tracked.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running watch of JWKS files; dropping it stops the thread (at once).
#[derive(Debug)]
pub struct JwksWatch {
    tracked: Arc<Mutex<Vec<Tracked>>>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl JwksWatch {
    /// Watches the guards of `files` too (those of a reloaded configuration); a guard already
    /// watched (taken over unchanged) is watched once.
    pub fn follow(&self, files: &JwksFiles) {
        let mut tracked = lock(&self.tracked);
        for listed in &files.listed {
            let known = tracked
                .iter()
                .any(|t| std::ptr::eq(t.guard.as_ptr(), Arc::as_ptr(&listed.guard)));
            if !known {
                tracked.push(Tracked {
                    guard: Arc::downgrade(&listed.guard),
                    path: listed.path.clone(),
                    last: listed.before.clone(),
                });
            }
        }
    }

    /// How many guards are watched (those no binding uses any more are forgotten at the next
    /// poll).
    pub fn watched(&self) -> usize {
        lock(&self.tracked).len()
    }
}

impl Drop for JwksWatch {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use guard_jwt::{JwtGuard, JwtOptions, KeySource};

    use super::*;

    const KEY_A: &str = r#"{"kty":"EC","crv":"P-256","kid":"a","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

    fn present(secs: u64, len: u64) -> FileState {
        FileState::Present {
            modified: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
            len,
        }
    }

    #[test]
    fn a_file_is_read_again_when_its_time_or_length_changes_and_a_loss_is_said_once() {
        let gone = FileState::Unreadable("No such file".into());
        assert_eq!(change(&present(1, 10), &present(1, 10)), Change::None);
        assert_eq!(change(&present(1, 10), &present(2, 10)), Change::Written);
        assert_eq!(change(&present(1, 10), &present(1, 11)), Change::Written);
        assert_eq!(
            change(&present(1, 10), &gone),
            Change::Vanished("No such file".into())
        );
        assert_eq!(change(&gone, &gone), Change::None);
        assert_eq!(change(&gone, &present(1, 10)), Change::Written);
    }

    /// A fresh file under the temporary directory.
    fn temp_file(text: &str) -> PathBuf {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "zilla-jwks-watch-{}-{}.json",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// A guard named `name` reading the JWKS file at `path`, listed in `files`.
    fn listed(files: &mut JwksFiles, name: &str, path: &Path) -> Arc<NamedJwtGuard> {
        let options = JwtOptions::new(KeySource::File(path.to_owned()));
        let before = FileState::of(path);
        let jwt = JwtGuard::new(options.clone()).unwrap();
        let guard = Arc::new(NamedJwtGuard::new(name, jwt));
        files.add(guard.clone(), options, path.to_owned(), before);
        guard
    }

    #[test]
    fn a_changed_file_swaps_the_keys_and_a_broken_one_keeps_them() {
        let path = temp_file(&format!(r#"{{"keys":[{KEY_A}]}}"#));
        let mut files = JwksFiles::default();
        let guard = listed(&mut files, "g", &path);
        let watch = files.watch_every(Duration::from_millis(10)).unwrap();

        // Another length: a rewrite within the filesystem's timestamp granularity still shows.
        let key_b = KEY_A.replace("\"a\"", "\"bb\"");
        std::fs::write(&path, format!(r#"{{"keys":[{key_b}]}}"#)).unwrap();
        wait_for("kid bb", || guard.jwt().kids() == ["bb"]);

        std::fs::write(&path, "{\"keys\": [").unwrap();
        thread::sleep(Duration::from_millis(100));
        assert_eq!(guard.jwt().kids(), ["bb"], "a broken file keeps the keys");
        std::fs::remove_file(&path).unwrap();
        thread::sleep(Duration::from_millis(50));
        assert_eq!(guard.jwt().kids(), ["bb"], "a removed file keeps the keys");

        std::fs::write(&path, format!(r#"{{"keys":[{KEY_A}]}}"#)).unwrap();
        wait_for("kid a again", || guard.jwt().kids() == ["a"]);
        drop(watch);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn an_unchanged_guard_is_taken_over_and_watched_once_and_an_unused_one_forgotten() {
        let path = temp_file(&format!(r#"{{"keys":[{KEY_A}]}}"#));
        let mut first = JwksFiles::default();
        let kept = listed(&mut first, "g", &path);
        let dropped = listed(&mut first, "h", &path);
        let same = JwtOptions::new(KeySource::File(path.clone()));
        let (reused, _) = first.reusable("g", &same).unwrap();
        assert!(Arc::ptr_eq(&reused, &kept));
        let mut other = same.clone();
        other.issuer = Some("https://elsewhere".into());
        assert!(first.reusable("g", &other).is_none(), "options changed");
        assert!(first.reusable("x", &same).is_none(), "another name");

        let watch = first.watch_every(Duration::from_millis(10)).unwrap();
        let mut next = JwksFiles::default();
        next.add(reused, same, path.clone(), FileState::of(&path));
        watch.follow(&next);
        assert_eq!(watch.watched(), 2, "g once, h");
        drop((first, dropped));
        wait_for("h forgotten", || watch.watched() == 1);
        drop((watch, next, kept));
        std::fs::remove_file(&path).unwrap();
    }
}

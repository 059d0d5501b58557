//! Running one scenario: the engine in-process with the configuration, the peers around it.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::Registry;
use tokio::sync::watch;
use zilla_config::factory::BindingFactory;
use zilla_config::{ConfigError, ConfigErrorKind, Mark};

use crate::binding::{Bridge, PeerEnd, SpecFactory};
use crate::network::NetworkPeer;
use crate::scenario::{Scenario, Script, parse_scenario};
use crate::step::StreamAction;
use crate::stream::StreamPeer;

/// The result of running one scenario file.
#[derive(Debug)]
pub struct Outcome {
    /// The file.
    pub file: PathBuf,
    /// Its title, when it could be read.
    pub title: Option<String>,
    /// How long it took.
    pub elapsed: Duration,
    /// Why it failed; `None` when it passed.
    pub failure: Option<Failure>,
}

impl Outcome {
    /// Whether the scenario passed.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// Why a scenario failed.
#[derive(Debug)]
pub enum Failure {
    /// The file could not be read or is not a valid scenario (or its config is invalid).
    Invalid(ConfigError),
    /// The engine could not start.
    Engine(String),
    /// A step did not see what it expected.
    Step(StepFailure),
    /// The harness itself broke.
    Panic(String),
    /// The engine did not stop within its grace period after the peers finished.
    Shutdown,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Invalid(err) => write!(f, "invalid scenario: {err}"),
            Failure::Engine(err) => write!(f, "the engine did not start: {err}"),
            Failure::Step(step) => write!(f, "{step}"),
            Failure::Panic(msg) => write!(f, "the harness panicked: {msg}"),
            Failure::Shutdown => f.write_str(
                "the engine did not stop within its grace period once the peers were done",
            ),
        }
    }
}

/// A step that failed.
#[derive(Debug, Clone)]
pub struct StepFailure {
    /// The peer whose step failed.
    pub peer: String,
    /// The step's position in the peer's script, from 1.
    pub step: usize,
    /// Where the step is written.
    pub mark: Mark,
    /// The step's action (`expect`, `read`...).
    pub action: String,
    /// What was expected and what was seen.
    pub message: String,
}

impl fmt::Display for StepFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: peer '{}', step {} ({}): {}",
            self.mark, self.peer, self.step, self.action, self.message
        )
    }
}

/// What every peer shares while a scenario runs.
pub(crate) struct Ctx {
    /// The default step timeout.
    pub timeout: Duration,
    barriers: Mutex<HashMap<String, watch::Sender<bool>>>,
}

impl Ctx {
    fn new(timeout: Duration) -> Self {
        Ctx {
            timeout,
            barriers: Mutex::new(HashMap::new()),
        }
    }

    fn barrier(&self, name: &str) -> watch::Sender<bool> {
        let mut barriers = self.barriers.lock().unwrap_or_else(|e| e.into_inner());
        barriers
            .entry(name.to_owned())
            .or_insert_with(|| watch::channel(false).0)
            .clone()
    }

    /// Signals the barrier `name`.
    pub fn notify(&self, name: &str) {
        self.barrier(name).send_replace(true);
    }

    /// Waits until the barrier `name` is signalled, or the deadline.
    pub async fn wait(&self, name: &str, deadline: tokio::time::Instant) -> Result<(), String> {
        let mut rx = self.barrier(name).subscribe();
        match tokio::time::timeout_at(deadline, rx.wait_for(|set| *set)).await {
            Ok(_) => Ok(()),
            Err(_) => Err(format!("timed out waiting for '{name}' to be notified")),
        }
    }
}

/// Runs the scenario in `path`.
pub fn run_file(path: &Path) -> Outcome {
    let started = Instant::now();
    let mut title = None;
    let result = std::fs::read_to_string(path)
        .map_err(|err| {
            Failure::Invalid(ConfigError::new(ConfigErrorKind::Custom(format!(
                "cannot read: {err}"
            ))))
        })
        .and_then(|text| parse_scenario(&text).map_err(Failure::Invalid))
        .and_then(|scenario| {
            title = Some(scenario.title.clone());
            run(scenario)
        });
    let failure = result.err().map(|failure| match failure {
        Failure::Invalid(err) => Failure::Invalid(err.with_file(path)),
        other => other,
    });
    Outcome {
        file: path.to_owned(),
        title,
        elapsed: started.elapsed(),
        failure,
    }
}

/// A peer ready to run.
enum Runner {
    Stream(StreamPeer),
    Network(NetworkPeer),
}

type PeerFuture<'a> = Pin<Box<dyn Future<Output = Result<(), StepFailure>> + 'a>>;

impl Runner {
    fn run<'a>(&'a mut self, ctx: &'a Ctx) -> PeerFuture<'a> {
        match self {
            Runner::Stream(peer) => Box::pin(peer.run(ctx)),
            Runner::Network(peer) => Box::pin(peer.run(ctx)),
        }
    }
}

/// Runs a parsed scenario.
pub fn run(scenario: Scenario) -> Result<(), Failure> {
    let bridge = Arc::new(Bridge::default());
    let spec: Box<dyn BindingFactory> = Box::new(SpecFactory::new(bridge.clone()));
    let registry = Registry::with([spec]);
    let built = engine::build::build(&scenario.config, &registry).map_err(Failure::Invalid)?;
    let mut runners = pair(scenario.peers, &bridge).map_err(Failure::Invalid)?;
    let ctx = Ctx::new(scenario.timeout);
    let running =
        engine::runtime::start(&built.bindings, 1).map_err(|e| Failure::Engine(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let result = match runtime {
        Ok(runtime) => {
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                runtime.block_on(async {
                    let peers = runners.iter_mut().map(|r| r.run(&ctx));
                    futures_util::future::try_join_all(peers).await
                })
            }));
            // Every peer's streams and sockets close before the engine is asked to stop.
            drop(runners);
            drop(runtime);
            match result {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(step)) => Err(Failure::Step(step)),
                Err(panic) => Err(Failure::Panic(panic_message(&panic))),
            }
        }
        Err(err) => Err(Failure::Engine(format!(
            "cannot start the harness runtime: {err}"
        ))),
    };
    let stopped = running.stop();
    result?;
    if stopped {
        Ok(())
    } else {
        Err(Failure::Shutdown)
    }
}

/// Gives every stream peer the end of the spec binding it plays, and checks that each spec
/// binding has its peer and that each peer's steps fit its binding's kind.
fn pair(peers: Vec<crate::scenario::Peer>, bridge: &Bridge) -> Result<Vec<Runner>, ConfigError> {
    let mut runners = Vec::with_capacity(peers.len());
    for peer in peers {
        let end = bridge.take(&peer.name);
        match (peer.script, end) {
            (Script::Stream(steps), Some(end)) => {
                let (kind, misplaced) = match &end {
                    PeerEnd::Server(_) => (
                        "server",
                        steps
                            .iter()
                            .find(|s| matches!(s.action, StreamAction::Open(_))),
                    ),
                    PeerEnd::Client(_) => (
                        "client",
                        steps
                            .iter()
                            .find(|s| matches!(s.action, StreamAction::Accept(_))),
                    ),
                };
                if let Some(step) = misplaced {
                    return Err(ConfigError::at(
                        step.mark,
                        ConfigErrorKind::Custom(format!(
                            "binding '{}' is kind {kind}: a server spec binding accepts \
                             streams, a client one opens them",
                            peer.name
                        )),
                    ));
                }
                runners.push(Runner::Stream(StreamPeer::new(peer.name, end, steps)));
            }
            (Script::Stream(_), None) => {
                return Err(ConfigError::at(
                    peer.mark,
                    ConfigErrorKind::Custom(format!(
                        "stream peer '{}' plays no binding: add a binding '{}' of type spec \
                         to config",
                        peer.name, peer.name
                    )),
                ));
            }
            (Script::Network(_), Some(_)) => {
                return Err(ConfigError::at(
                    peer.mark,
                    ConfigErrorKind::Custom(format!(
                        "'{}' is a spec binding: its peer must be a stream peer",
                        peer.name
                    )),
                ));
            }
            (Script::Network(steps), None) => {
                runners.push(Runner::Network(NetworkPeer::new(peer.name, steps)));
            }
        }
    }
    if let Some(name) = bridge.remaining().first() {
        return Err(ConfigError::new(ConfigErrorKind::Custom(format!(
            "binding '{name}' is of type spec but no stream peer plays it: add peers.{name}"
        ))));
    }
    Ok(runners)
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

//! Configuration reload without dropping streams.
//!
//! When `zilla.yaml` (or a file it names: a vault's keystore, a catalog's document) changes,
//! or on SIGHUP,
//! the engine builds the new configuration against the running one ([`build::build_next`]):
//!
//! - an invalid configuration changes nothing: the running one goes on, and the error is
//!   logged with its file, line and column;
//! - a binding whose entry, and the guards and vaults it names, are unchanged keeps running
//!   as it is, with its streams;
//! - a binding whose configuration changed is built anew; the bindings that route to it open
//!   their next streams towards the new one (their exits are [`Slot`](crate::slot::Slot)s),
//!   and the streams of the old one end cleanly (an SSE client reconnects and resumes by id);
//! - a binding that only gained routes (every route it had is still there, as it was, and
//!   nothing else changed) is built anew too, but its open streams run on in the old one:
//!   each took a route that is still there. An http server's old connections finish the
//!   requests they carry and close, so that the next request meets the new routes;
//! - a binding rebuilt only because a file it reads changed (a rotated certificate) takes
//!   the new connections, and its open streams run on;
//! - a removed binding's streams end cleanly; servers rebuilt on the same address take over
//!   the listening socket, so no connection is refused.
//!
//! Telemetry exporters (the prometheus endpoints) are set up once: a reload that changes them
//! says that a restart applies it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use binding_api::binding::{Binding, StartError, Worker};
use binding_api::frame::{ReasonKind, Reset};
use binding_api::stream::Acceptor;
use zilla_config::ConfigError;
use zilla_config::factory::RunOptions;

use crate::build::{Built, Graph};
use crate::fingerprint::FileStamp;
use crate::jwks_watch::JwksFiles;
use crate::metrics_config::PrometheusEndpoint;
use crate::registry::Registry;
use crate::runtime::{Command, CommandTimeout, Running};
use crate::slot::Generation;

/// Why a reload did not apply.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new configuration is invalid; the running one goes on.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A new binding could not start (a port in use); the running configuration goes on.
    #[error("{0}")]
    Start(#[from] StartError),
    /// The workers did not take the new bindings in time.
    #[error("workers: {0}")]
    Workers(#[from] CommandTimeout),
}

/// What a reload changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Bindings built anew because their configuration changed.
    pub changed: Vec<String>,
    /// Bindings built anew because a file they read changed; their streams run on.
    pub refreshed: Vec<String>,
    /// Bindings built anew with routes added and none removed or changed; their streams run
    /// on, on the routes they took.
    pub extended: Vec<String>,
    /// Bindings new to the configuration.
    pub added: Vec<String>,
    /// Bindings gone from it.
    pub removed: Vec<String>,
    /// Bindings kept running as they were.
    pub kept: usize,
    /// Streams ended because the binding they entered changed or was removed.
    pub ended: usize,
    /// A part of the configuration only a restart applies (telemetry exporters), if changed.
    pub needs_restart: Option<&'static str>,
}

/// The configuration running now, and what reloading it needs.
pub struct Live {
    path: PathBuf,
    registry: Registry,
    run: RunOptions,
    graph: Graph,
    metrics: zilla_metrics::Registry,
    prometheus: Vec<PrometheusEndpoint>,
    stdout_telemetry: bool,
    /// The configuration file and the files bindings read, as the last reload saw them.
    watched: Vec<FileStamp>,
}

impl Live {
    /// The configuration `built` from the file at `path`, now running.
    pub fn new(path: &Path, registry: Registry, run: RunOptions, built: &Built) -> Live {
        Live {
            path: path.to_owned(),
            registry,
            run,
            graph: built.graph.clone(),
            metrics: built.metrics.clone(),
            prometheus: built.prometheus.clone(),
            stdout_telemetry: built.stdout_telemetry,
            watched: watched(path, &built.graph),
        }
    }

    /// The running configuration's `jwt` guards whose keys come from a JWKS file, for the
    /// JWKS watch to follow after a reload ([`JwksWatch::follow`](crate::jwks_watch::JwksWatch::follow)).
    pub fn jwks(&self) -> &JwksFiles {
        &self.graph.jwks
    }

    /// Whether the configuration file, or a file a binding reads, changed since the last
    /// (re)load looked at it.
    pub fn changed(&self) -> bool {
        self.watched.iter().any(FileStamp::changed)
    }

    /// Builds the configuration file anew and applies the difference to `running`.
    pub fn reload(&mut self, running: &Running) -> Result<Outcome, ReloadError> {
        // Stamped before reading: a file written while it is read changes again after. An
        // invalid configuration is looked at again only once a file changes again.
        self.watched = watched(&self.path, &self.graph);
        let result = crate::load_next(
            &self.path,
            &self.registry,
            &self.run,
            Some((&self.graph, &self.metrics)),
        );
        let built = result?;
        let fresh: Vec<Arc<dyn Binding>> = built
            .graph
            .bindings
            .values()
            .filter(|placed| placed.fresh)
            .map(|placed| placed.binding.clone())
            .collect();
        for binding in &fresh {
            binding.prepare()?;
        }
        running.command(|| Command::Start(fresh.clone()))?;

        let mut outcome = Outcome::default();
        let mut sever: Vec<Generation> = Vec::new();
        let mut forget: Vec<Generation> = Vec::new();
        for (name, placed) in &built.graph.bindings {
            if !placed.fresh {
                outcome.kept += 1;
                continue;
            }
            let Some(before) = self.graph.bindings.get(name) else {
                outcome.added.push(name.clone());
                continue;
            };
            let previous = placed.slot.point_at(placed.binding.clone());
            before.binding.retire();
            let (was, is) = (&before.fingerprint, &placed.fingerprint);
            if was.config == is.config && was.routes == is.routes {
                forget.push(previous);
                outcome.refreshed.push(name.clone());
            } else if is.only_adds_routes_to(was) {
                forget.push(previous);
                outcome.extended.push(name.clone());
            } else {
                sever.push(previous);
                outcome.changed.push(name.clone());
            }
        }
        for (name, before) in &self.graph.bindings {
            if built.graph.bindings.contains_key(name) {
                continue;
            }
            let removed = Arc::new(Removed { name: name.clone() });
            sever.push(before.slot.point_at(removed));
            before.binding.retire();
            outcome.removed.push(name.clone());
        }
        if !sever.is_empty() {
            outcome.ended = running.command(|| Command::Sever(sever.clone()))?;
        }
        if !forget.is_empty() {
            running.command(|| Command::Forget(forget.clone()))?;
        }
        if built.prometheus != self.prometheus || built.stdout_telemetry != self.stdout_telemetry {
            outcome.needs_restart = Some("telemetry exporters");
        }
        self.watched = watched(&self.path, &built.graph);
        self.graph = built.graph;
        Ok(outcome)
    }
}

/// The configuration file and every file a binding of `graph` reads, as they are now.
fn watched(path: &Path, graph: &Graph) -> Vec<FileStamp> {
    std::iter::once(path.to_owned())
        .chain(graph.files().map(Path::to_owned))
        .map(FileStamp::now)
        .collect()
}

/// What a removed binding's slot points at: streams that old bindings still running open
/// towards it are refused.
struct Removed {
    name: String,
}

impl Binding for Removed {
    fn name(&self) -> &str {
        &self.name
    }

    fn new_stream(&self, stream: Acceptor, _worker: &Worker) {
        stream.refuse(Reset::new(
            ReasonKind::NoRoute,
            format!(
                "binding '{}' was removed by a configuration reload",
                self.name
            ),
        ));
    }
}

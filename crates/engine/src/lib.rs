//! # engine
//!
//! The `zilla` binary's library: it loads `zilla.yaml` (YAML → positioned tree → `${{env.X}}`
//! substitution → the top-level model → each binding's own options), checks it as a whole
//! (types, kinds, exits, loops, dead ends), builds the bindings in dependency order, and runs
//! them on worker threads until SIGINT or SIGTERM. Their metrics ([`metrics_config`]) are
//! served by the [`prometheus`] exporter and read back by `zilla metrics` ([`scrape`]).
//! `jwt` guards whose keys come from a JWKS file get the file's new keys when it changes
//! ([`jwks_watch`]).
//!
//! ```no_run
//! let run = zilla_config::factory::RunOptions::default();
//! let built = engine::load_file("zilla.yaml".as_ref(), &engine::Registry::builtin(), &run)?;
//! let running = engine::runtime::start(&built.bindings, 2)?;
//! running.stop();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod asyncapi;
pub mod build;
pub mod catalog;
pub mod fingerprint;
mod guards;
pub mod jwks_watch;
pub mod metrics_config;
pub mod model;
pub mod prometheus;
pub mod registry;
pub mod reload;
pub mod runtime;
pub mod scrape;
pub mod slot;
pub mod telemetry;

use std::path::Path;

use zilla_config::factory::RunOptions;
use zilla_config::{ConfigError, ConfigErrorKind, Resolver};

pub use build::Built;
pub use registry::Registry;

/// Loads and builds a configuration file, resolving `${{env.X}}` from the environment, for
/// an engine run with `run`.
pub fn load_file(path: &Path, registry: &Registry, run: &RunOptions) -> Result<Built, ConfigError> {
    load_next(path, registry, run, None)
}

/// Loads and builds a configuration file as [`load_file`] does, against the configuration
/// running now ([`build::build_next`]).
pub fn load_next(
    path: &Path,
    registry: &Registry,
    run: &RunOptions,
    previous: Option<(&build::Graph, &zilla_metrics::Registry)>,
) -> Result<Built, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        ConfigError::new(ConfigErrorKind::Custom(format!("cannot read: {err}")))
            .with_file(path)
            .with_help(match err.kind() {
                std::io::ErrorKind::NotFound => {
                    "pass the configuration with -c FILE, or run where zilla.yaml is"
                }
                _ => "check the file's permissions",
            })
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut root = zilla_config::parse(&text).map_err(|e| e.with_file(path))?;
    zilla_config::substitute(&mut root, &zilla_config::env_resolver())
        .map_err(|e| e.with_file(path))?;
    // An error in a document the configuration names (a catalog's) keeps that file.
    build::build_next(&root, registry, base, run, previous).map_err(|e| match e.file {
        Some(_) => e,
        None => e.with_file(path),
    })
}

/// Loads and builds a configuration from text.
pub fn load_str(
    text: &str,
    registry: &Registry,
    resolver: &dyn Resolver,
) -> Result<Built, ConfigError> {
    let mut root = zilla_config::parse(text)?;
    zilla_config::substitute(&mut root, resolver)?;
    build::build(&root, registry)
}

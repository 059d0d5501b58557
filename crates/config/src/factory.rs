//! Building bindings from configuration: the [`BindingFactory`] each binding type provides and
//! the [`BindingConfig`] it receives.
//!
//! At start the engine parses the configuration, checks every `exit` and route, and builds
//! the bindings in dependency order: each factory receives its entry ([`BindingConfig`]) with
//! its exits already built, so at run time a binding holds direct references to the bindings
//! it routes to and never looks a name up.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use binding_api::binding::Binding;
use binding_api::guard::Guard;
use binding_api::vault::Vault;
use serde::Deserialize;
use zilla_metrics::BindingMetrics;

use crate::resolve::Resolve;
use crate::{ConfigError, ConfigErrorKind, Mark, Node};

/// A binding's `kind`, as in Zilla.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Opens streams towards a remote peer.
    Client,
    /// Accepts streams from a remote peer.
    Server,
    /// Maps streams of one protocol onto another.
    Proxy,
    /// Client half of a remote pair.
    RemoteClient,
    /// Server half of a remote pair.
    RemoteServer,
    /// Serves streams from a cache.
    CacheClient,
    /// Fills a cache.
    CacheServer,
}

impl Kind {
    /// The name as written in `zilla.yaml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Client => "client",
            Kind::Server => "server",
            Kind::Proxy => "proxy",
            Kind::RemoteClient => "remote_client",
            Kind::RemoteServer => "remote_server",
            Kind::CacheClient => "cache_client",
            Kind::CacheServer => "cache_server",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a kind of binding takes an `exit` (top-level or in its routes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitRule {
    /// It must be able to go somewhere: an `exit`, or routes that all have one.
    Required,
    /// It may have exits.
    Optional,
    /// It is an end point: no `exit` anywhere.
    Forbidden,
}

/// One entry of a binding's `routes`.
#[derive(Clone, Debug)]
pub struct RouteConfig {
    /// Where the route starts in the file.
    pub mark: Mark,
    /// The `when` conditions, OR-ed; each is parsed by the binding.
    pub when: Vec<Node>,
    /// The binding to go to.
    pub exit: Option<String>,
    /// Binding-specific parameters of the route.
    pub with: Option<Node>,
    /// Guard name → roles required.
    pub guarded: BTreeMap<String, Vec<String>>,
}

/// What the engine was started with, beyond `zilla.yaml`, that bindings act on.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// `--resolve` entries: fixed addresses for `host:port` destinations of tcp clients.
    pub resolve: Vec<Resolve>,
}

/// Everything a factory needs to build one binding.
pub struct BindingConfig<'a> {
    /// The binding's name (its key under `bindings`).
    pub name: &'a str,
    /// Its kind.
    pub kind: Kind,
    /// Where the binding's entry starts in the file.
    pub mark: Mark,
    /// Its `options`, unparsed.
    pub options: Option<&'a Node>,
    /// Its `routes`.
    pub routes: &'a [RouteConfig],
    /// Its top-level `exit`.
    pub exit: Option<&'a str>,
    /// Its `vault`.
    pub vault: Option<&'a str>,
    /// The bindings this one exits to, already built, by name.
    pub exits: &'a BTreeMap<String, Arc<dyn Binding>>,
    /// Every vault of the configuration, by name.
    pub vaults: &'a BTreeMap<String, Arc<dyn Vault>>,
    /// Every guard of the configuration that verifies credentials (`type: jwt`), by name.
    pub guards: &'a BTreeMap<String, Arc<dyn Guard>>,
    /// The configuration file's directory, against which relative paths are resolved.
    pub base: &'a Path,
    /// The engine's run options.
    pub run: &'a RunOptions,
    /// What the binding's `telemetry` says to record; it makes the binding's handles on each
    /// worker as the binding starts there.
    pub metrics: &'a BindingMetrics,
}

impl BindingConfig<'_> {
    /// The built binding named `name`, which the engine has checked exists.
    pub fn exit_binding(&self, name: &str, mark: Mark) -> Result<Arc<dyn Binding>, ConfigError> {
        self.exits.get(name).cloned().ok_or_else(|| {
            ConfigError::at(
                mark,
                ConfigErrorKind::Custom(format!("exit '{name}' is not a binding")),
            )
        })
    }

    /// The one exit of a binding that takes no routes, such as a client (`what`: "http
    /// client"); `help` says what the exit should be.
    pub fn sole_exit(&self, what: &str, help: &str) -> Result<Arc<dyn Binding>, ConfigError> {
        if let Some(route) = self.routes.first() {
            return Err(ConfigError::custom_at(
                route.mark,
                format!("{what} '{}' takes no routes", self.name),
            )
            .with_help(format!("give the {what} one 'exit' ({help})")));
        }
        let Some(exit) = self.exit else {
            return Err(self
                .error(format!("an {what} needs an 'exit'"))
                .with_help(format!("set exit to {help}")));
        };
        self.exit_binding(exit, self.mark)
    }

    /// The vault this binding names, which the engine has checked exists.
    pub fn vault_ref(&self) -> Result<Option<Arc<dyn Vault>>, ConfigError> {
        match self.vault {
            None => Ok(None),
            Some(name) => match self.vaults.get(name) {
                Some(vault) => Ok(Some(vault.clone())),
                None => Err(self.error(format!("vault '{name}' is not defined"))),
            },
        }
    }

    /// The guard `name`, written at `mark` (an `options.authorization` key, say); an error
    /// when the configuration has no guard of that name that verifies credentials.
    pub fn guard(&self, name: &str, mark: Mark) -> Result<Arc<dyn Guard>, ConfigError> {
        self.guards.get(name).cloned().ok_or_else(|| {
            let known: Vec<&str> = self.guards.keys().map(String::as_str).collect();
            ConfigError::custom_at(mark, format!("guard '{name}' is not a defined jwt guard"))
                .with_help(if known.is_empty() {
                    "define it under 'guards' with type: jwt".to_owned()
                } else {
                    format!("jwt guards: {}", known.join(", "))
                })
        })
    }

    /// An error positioned at this binding's entry.
    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::at(self.mark, ConfigErrorKind::Custom(message.into()))
    }
}

/// Builds bindings of one `type` from configuration.
pub trait BindingFactory: Send + Sync {
    /// The `type` it builds, such as `"tcp"`.
    fn type_name(&self) -> &'static str;

    /// The kinds it accepts.
    fn kinds(&self) -> &[Kind];

    /// Whether a binding of `kind` takes exits.
    fn exit_rule(&self, kind: Kind) -> ExitRule;

    /// Parses and checks the binding's options and routes, and builds it. Pure: no sockets,
    /// no threads; [`Binding::prepare`] acquires resources.
    fn build(&self, config: &BindingConfig<'_>) -> Result<Arc<dyn Binding>, ConfigError>;
}

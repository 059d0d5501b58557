//! From parsed `zilla.yaml` to built bindings: types and kinds checked against the registry,
//! exits resolved, loops and dead ends refused, bindings built in dependency order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use binding_api::binding::Binding;
use binding_api::vault::Vault as BuiltVault;
use vault_filesystem::{FilesystemVault, StoreConfig};
use zilla_config::factory::{
    BindingConfig, BindingFactory, ExitRule, Kind, RouteConfig, RunOptions,
};
use zilla_config::{ConfigError, ConfigErrorKind, Mark, Node, from_node};

use crate::asyncapi;
use crate::catalog::Catalogs;
use crate::fingerprint::{self, Fingerprint};
use crate::guards::Guards;
use crate::jwks_watch::JwksFiles;
use crate::metrics_config::{self, PrometheusEndpoint};
use crate::model::{self, Catalog, Guard, RawBinding, RawConfig, RawRoute, Vault};
use crate::registry::Registry;
use crate::slot::Slot;

/// A configuration ready to run.
pub struct Built {
    /// The configuration's `name`.
    pub name: String,
    /// Every binding, exits before the bindings that use them.
    pub bindings: Vec<Arc<dyn Binding>>,
    /// Whether `telemetry.exporters` has a `stdout` exporter.
    pub stdout_telemetry: bool,
    /// The bindings generated for `type: asyncapi` ones, a line each (`NAME: TYPE KIND → EXIT`).
    pub generated: Vec<String>,
    /// Every metric series the bindings record.
    pub metrics: zilla_metrics::Registry,
    /// Where the `prometheus` exporters serve them.
    pub prometheus: Vec<PrometheusEndpoint>,
    /// Every binding with its slot and what it was built from, by name.
    pub graph: Graph,
}

/// The bindings of a configuration, by name: what a reload builds the next one against.
#[derive(Clone, Default)]
pub struct Graph {
    /// Every binding.
    pub bindings: BTreeMap<String, Placed>,
    /// The catalogs' files, which the bindings an `asyncapi` binding expands to come from.
    pub catalog_files: Vec<PathBuf>,
    /// The `jwt` guards whose keys come from a JWKS file: reloaded in place when the file
    /// changes ([`JwksFiles::watch`]), and taken over by the next configuration while their
    /// options are unchanged.
    pub jwks: JwksFiles,
}

/// One binding of a [`Graph`].
#[derive(Clone)]
pub struct Placed {
    /// How the bindings that route to it reach it.
    pub slot: Arc<Slot>,
    /// The binding (which the slot points at once the configuration runs).
    pub binding: Arc<dyn Binding>,
    /// What it was built from.
    pub fingerprint: Fingerprint,
    /// Built by this build, not taken from the previous configuration.
    pub fresh: bool,
}

impl Graph {
    /// Every file the configuration reads, for a watcher to look at.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        let read = self
            .bindings
            .values()
            .flat_map(|placed| placed.fingerprint.files.iter())
            .map(|file| file.path.as_path());
        read.chain(self.catalog_files.iter().map(PathBuf::as_path))
    }
}

/// One binding entry after the common keys were parsed.
struct Entry {
    name: String,
    mark: Mark,
    raw: RawBinding,
    routes: Vec<RouteConfig>,
    node: Node,
}

/// Checks and builds a parsed document; relative paths (vault stores) are taken from the
/// working directory.
pub fn build(root: &Node, registry: &Registry) -> Result<Built, ConfigError> {
    build_in(root, registry, Path::new("."), &RunOptions::default())
}

/// Checks and builds a parsed document whose relative paths are relative to `base` (the
/// configuration file's directory), for an engine run with `run`.
pub fn build_in(
    root: &Node,
    registry: &Registry,
    base: &Path,
    run: &RunOptions,
) -> Result<Built, ConfigError> {
    build_next(root, registry, base, run, None)
}

/// Checks and builds a parsed document as [`build_in`] does, taking from `previous` (the
/// configuration running now) every binding whose fingerprint is unchanged, and the slots of
/// the names it keeps; a reused metrics `registry` keeps the series counting.
pub fn build_next(
    root: &Node,
    registry: &Registry,
    base: &Path,
    run: &RunOptions,
    previous: Option<(&Graph, &zilla_metrics::Registry)>,
) -> Result<Built, ConfigError> {
    let raw: RawConfig = from_node(root)?;
    let name_node = root.get("name").unwrap_or(root);
    model::check_name(name_node, "configuration")?;
    let vaults: Vec<(String, Vault)> = model::named(raw.vaults.as_ref(), "vault")?;
    let guards: Vec<(String, Guard)> = model::named(raw.guards.as_ref(), "guard")?;
    let catalogs: Vec<(String, Catalog)> = model::named(raw.catalogs.as_ref(), "catalog")?;
    let catalogs = Catalogs::read(&catalogs, raw.catalogs.as_ref(), base)?;
    let _stores: Vec<(String, Node)> = model::named(raw.stores.as_ref(), "store")?;
    let metrics = metrics_config::read(
        &raw.name,
        root.get("telemetry"),
        previous.map(|(_, registry)| registry),
    )?;
    if let Some(telemetry) = &raw.telemetry {
        for (name, exporter) in telemetry.exporters.iter().flatten() {
            if let model::Exporter::Otlp { vault: Some(v), .. } = exporter
                && !vaults.iter().any(|(n, _)| n == v)
            {
                return Err(ConfigError::new(ConfigErrorKind::Custom(format!(
                    "exporter '{name}' names vault '{v}', which is not defined"
                ))));
            }
        }
    }

    // asyncapi bindings become the bindings their documents call for.
    let expansion = match raw.bindings.as_ref() {
        Some(bindings) => asyncapi::expand(bindings, &catalogs)?,
        None => None,
    };
    let section = expansion
        .as_ref()
        .map(|e| &e.bindings)
        .or(raw.bindings.as_ref());
    // As Zilla, only `name` is required: a configuration may hold vaults and no bindings.
    let entries = parse_entries(section, &raw.name)?;
    let names: BTreeSet<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let vault_names: Vec<&str> = vaults.iter().map(|(n, _)| n.as_str()).collect();
    let built_vaults: BTreeMap<String, Arc<dyn BuiltVault>> = vaults
        .iter()
        .map(|(name, vault)| {
            let node = raw.vaults.as_ref().and_then(|v| v.get(name));
            Ok((name.clone(), build_vault(name, vault, node, base)?))
        })
        .collect::<Result<_, ConfigError>>()?;
    let guards = Guards::build(&guards, base, previous.map(|(graph, _)| &graph.jwks))?;

    for entry in &entries {
        check_entry(entry, &raw.name, registry, &names, &vault_names, &guards)
            .map_err(|e| e.with_binding(&entry.name))?;
    }
    let order = dependency_order(&entries)?;

    let mut graph = Graph {
        catalog_files: catalogs.files().cloned().collect(),
        jwks: guards.jwks_files().clone(),
        ..Graph::default()
    };
    let mut bindings = Vec::with_capacity(entries.len());
    for index in order {
        let entry = &entries[index];
        let factory = registry.get(&entry.raw.type_name).ok_or_else(|| {
            entry
                .node
                .error(ConfigErrorKind::Custom("unknown type".into()))
        })?;
        let fingerprint = fingerprint_of(entry, &raw.name, root, base);
        let before = previous.and_then(|(graph, _)| graph.bindings.get(&entry.name));
        if let Some(before) = before.filter(|b| b.fingerprint == fingerprint) {
            bindings.push(before.binding.clone());
            graph.bindings.insert(
                entry.name.clone(),
                Placed {
                    fresh: false,
                    ..before.clone()
                },
            );
            continue;
        }
        // Exits are reached through their slots, which a later reload may point elsewhere.
        let exits: BTreeMap<String, Arc<dyn Binding>> = exits_of(entry)
            .filter_map(|(name, _)| {
                let slot: Arc<dyn Binding> = graph.bindings.get(name)?.slot.clone();
                Some((name.to_owned(), slot))
            })
            .collect();
        let binding_metrics = metrics
            .binding(&entry.name, entry.raw.telemetry.as_ref(), entry.mark)
            .map_err(|e| e.with_binding(&entry.name))?;
        let config = BindingConfig {
            name: &entry.name,
            kind: entry.raw.kind,
            mark: entry.mark,
            options: entry.raw.options.as_ref(),
            routes: &entry.routes,
            exit: entry.raw.exit.as_deref(),
            vault: entry.raw.vault.as_deref(),
            exits: &exits,
            vaults: &built_vaults,
            guards: guards.verifying(),
            base,
            run,
            metrics: &binding_metrics,
        };
        let binding = factory
            .build(&config)
            .map_err(|e| e.with_binding(&entry.name))?;
        // A rebuilt binding keeps its name's slot: the reload points it at the new one.
        let slot = match before {
            Some(before) => before.slot.clone(),
            None => Slot::new(binding.clone()),
        };
        graph.bindings.insert(
            entry.name.clone(),
            Placed {
                slot,
                binding: binding.clone(),
                fingerprint,
                fresh: true,
            },
        );
        bindings.push(binding);
    }
    let stdout_telemetry = raw.telemetry.iter().any(|t| {
        t.exporters
            .iter()
            .flatten()
            .any(|(_, e)| matches!(e, model::Exporter::Stdout { .. }))
    });
    Ok(Built {
        name: raw.name,
        bindings,
        stdout_telemetry,
        generated: expansion.map(|e| e.generated).unwrap_or_default(),
        metrics: metrics.registry,
        prometheus: metrics.endpoints,
        graph,
    })
}

/// What `entry` is built from: its own entry, the namespace, the guards and vaults it names,
/// and the files those vaults read.
fn fingerprint_of(entry: &Entry, namespace: &str, root: &Node, base: &Path) -> Fingerprint {
    let mut builder = fingerprint::Builder::new(namespace, &entry.node);
    for (section, what) in [("guards", "guard"), ("vaults", "vault")] {
        let Some(named) = root.get(section).and_then(Node::as_map) else {
            continue;
        };
        for (key, value) in named {
            let Some(name) = key.as_str() else { continue };
            if builder.mentions(name) {
                builder.refers_to(&format!("{what} {name}"), Some(value));
                if what == "vault" {
                    builder.reads(vault_files(value, base));
                }
            }
        }
    }
    builder.finish()
}

/// The files a vault's entry names: its stores and revocation lists.
fn vault_files(vault: &Node, base: &Path) -> Vec<PathBuf> {
    let Some(options) = vault.get("options") else {
        return Vec::new();
    };
    let stores = ["keys", "trust", "signers"]
        .into_iter()
        .filter_map(|key| options.get(key)?.get("store")?.as_str());
    let crls = options
        .get("crls")
        .and_then(Node::as_seq)
        .into_iter()
        .flatten()
        .filter_map(Node::as_str);
    stores.chain(crls).map(|path| base.join(path)).collect()
}

/// A vault ready to be asked for entries; it reads its files on first use.
fn build_vault(
    name: &str,
    vault: &model::Vault,
    node: Option<&Node>,
    base: &Path,
) -> Result<Arc<dyn BuiltVault>, ConfigError> {
    let model::Vault::Filesystem { options } = vault;
    let store = |s: &model::Store| match s.store_type.as_deref() {
        None | Some("pkcs12") => Ok(StoreConfig::new(&s.store)
            .password(s.password.clone().unwrap_or_default())
            .relative_to(base)),
        Some(other) => Err(ConfigError::new(ConfigErrorKind::Custom(format!(
            "vault '{name}': store type '{other}' is not supported (allowed: pkcs12)"
        )))
        .with_help("convert the store: keytool -importkeystore -deststoretype pkcs12")),
    };
    let mut built = FilesystemVault::new(name);
    if let Some(options) = options {
        if let Some(keys) = &options.keys {
            built = built.with_keys(store(keys)?);
        }
        if let Some(trust) = &options.trust {
            built = built.with_trust(store(trust)?);
        }
        if let Some(signers) = &options.signers {
            built = built.with_signers(store(signers)?);
        }
        let options_node = node.and_then(|n| n.get("options"));
        if let Some(crls) = revocation_lists(name, options, options_node)? {
            built = built.with_revocation_lists(crls.iter().map(|path| base.join(path)));
        }
    }
    Ok(Arc::new(built))
}

/// The CRL files of `revocation: crl`; any other method, or one half without the other, is
/// refused rather than left unchecked.
fn revocation_lists<'a>(
    name: &str,
    options: &'a model::FilesystemVaultOptions,
    node: Option<&Node>,
) -> Result<Option<&'a [String]>, ConfigError> {
    let at = |key: &str, kind: ConfigErrorKind| match node {
        Some(node) => ConfigError::at(value_mark(node, key), kind),
        None => ConfigError::new(kind),
    };
    let lists_help = "add crls: [<file>] (PEM or DER), the CRLs of the authorities in 'trust'";
    match (options.revocation.as_deref(), options.crls.as_deref()) {
        (None, None) => Ok(None),
        (Some(method), _) if method != "crl" => Err(at(
            "revocation",
            ConfigErrorKind::Custom(format!(
                "vault '{name}': revocation '{method}' is not supported (allowed: crl)"
            )),
        )
        .with_help("check revocation lists instead: 'revocation: crl' with 'crls: [<file>]'")),
        (Some(_), None) => Err(at(
            "revocation",
            ConfigErrorKind::Custom(format!(
                "vault '{name}': 'revocation: crl' needs 'crls', the files of the revocation \
                 lists (zilla-rs fetches none)"
            )),
        )
        .with_help(lists_help)),
        (None, Some(_)) => Err(at(
            "crls",
            ConfigErrorKind::Custom(format!(
                "vault '{name}': 'crls' is read only with 'revocation: crl'"
            )),
        )
        .with_help("add revocation: crl")),
        (Some(_), Some([])) => Err(at(
            "crls",
            ConfigErrorKind::Custom(format!("vault '{name}': 'crls' is empty")),
        )
        .with_help(lists_help)),
        (Some(_), Some(crls)) => Ok(Some(crls)),
    }
}

/// Parses the bindings; an exit written `<namespace>:<binding>` with this configuration's
/// own namespace (its `name`) is taken as `<binding>`.
fn parse_entries(section: Option<&Node>, namespace: &str) -> Result<Vec<Entry>, ConfigError> {
    let local = |exit: String| match exit.split_once(':') {
        Some((ns, binding)) if ns == namespace => binding.to_owned(),
        _ => exit,
    };
    let Some(section) = section else {
        return Ok(Vec::new());
    };
    if section.is_null() {
        return Ok(Vec::new());
    }
    let Some(map) = section.as_map() else {
        return Err(section.error(ConfigErrorKind::InvalidType {
            found: section.describe(),
            expected: "a mapping of binding names to bindings".into(),
        }));
    };
    let mut entries = Vec::with_capacity(map.len());
    for (key, value) in map {
        let name = model::check_name(key, "binding")?;
        let mut raw: RawBinding = from_node(value).map_err(|e| e.with_binding(&name))?;
        raw.exit = raw.exit.map(local);
        let mut routes = Vec::new();
        for route in raw.routes.iter().flatten() {
            let parsed: RawRoute = from_node(route).map_err(|e| e.with_binding(&name))?;
            routes.push(RouteConfig {
                mark: route.mark,
                when: parsed.when.unwrap_or_default(),
                exit: parsed.exit.map(local),
                with: parsed.with,
                guarded: parsed.guarded.unwrap_or_default(),
            });
        }
        entries.push(Entry {
            name,
            mark: key.mark,
            raw,
            routes,
            node: value.clone(),
        });
    }
    Ok(entries)
}

/// The exits an entry names, with where each is written.
fn exits_of(entry: &Entry) -> impl Iterator<Item = (&str, Mark)> {
    let top = entry
        .raw
        .exit
        .as_deref()
        .map(|exit| (exit, value_mark(&entry.node, "exit")));
    let routes = entry
        .routes
        .iter()
        .filter_map(|r| r.exit.as_deref().map(|exit| (exit, r.mark)));
    top.into_iter().chain(routes)
}

/// The position of `key`'s value in a mapping, or of the mapping.
fn value_mark(node: &Node, key: &str) -> Mark {
    node.get(key).map(|v| v.mark).unwrap_or(node.mark)
}

fn check_entry(
    entry: &Entry,
    namespace: &str,
    registry: &Registry,
    names: &BTreeSet<&str>,
    vaults: &[&str],
    guards: &Guards,
) -> Result<(), ConfigError> {
    let type_mark = value_mark(&entry.node, "type");
    let Some(factory) = registry.get(&entry.raw.type_name) else {
        let known = registry.type_names();
        return Err(ConfigError::at(
            type_mark,
            ConfigErrorKind::Custom(format!(
                "unknown type '{}' (allowed: {})",
                entry.raw.type_name,
                known.join(", ")
            )),
        )
        .with_help(
            suggest(&entry.raw.type_name, known.iter().copied()).map_or_else(
                || "this build has no binding of that type".to_owned(),
                |s| format!("did you mean '{s}'?"),
            ),
        ));
    };
    check_kind(entry, factory)?;
    if entry.raw.entry.is_some()
        && !matches!(entry.raw.kind, Kind::RemoteClient | Kind::RemoteServer)
    {
        return Err(ConfigError::at(
            value_mark(&entry.node, "entry"),
            ConfigErrorKind::Custom(format!(
                "'entry' is only for kinds remote_client and remote_server, not a {} {}",
                factory.type_name(),
                entry.raw.kind
            )),
        )
        .with_help("remove 'entry'; 'exit' says where streams go"));
    }
    check_exits(entry, factory, names, namespace)?;
    if let Some(vault) = &entry.raw.vault
        && !vaults.contains(&vault.as_str())
    {
        return Err(ConfigError::at(
            value_mark(&entry.node, "vault"),
            ConfigErrorKind::Custom(format!("vault '{vault}' is not defined")),
        )
        .with_help(defined_help("vaults", vaults)));
    }
    entry
        .routes
        .iter()
        .try_for_each(|route| guards.check_route(route))
}

fn check_kind(entry: &Entry, factory: &dyn BindingFactory) -> Result<(), ConfigError> {
    let kind = entry.raw.kind;
    if factory.kinds().contains(&kind) {
        return Ok(());
    }
    let allowed: Vec<String> = factory.kinds().iter().map(|k| k.to_string()).collect();
    Err(ConfigError::at(
        value_mark(&entry.node, "kind"),
        ConfigErrorKind::Custom(format!(
            "type '{}' has no kind '{kind}' (allowed: {})",
            factory.type_name(),
            allowed.join(", ")
        )),
    )
    .with_help(format!("use kind: {}", allowed.join(" or "))))
}

fn check_exits(
    entry: &Entry,
    factory: &dyn BindingFactory,
    names: &BTreeSet<&str>,
    namespace: &str,
) -> Result<(), ConfigError> {
    let rule = factory.exit_rule(entry.raw.kind);
    for (exit, mark) in exits_of(entry) {
        if rule == ExitRule::Forbidden {
            return Err(ConfigError::at(
                mark,
                ConfigErrorKind::Custom(format!(
                    "a binding of type '{}' and kind '{}' takes no exit (found '{exit}')",
                    factory.type_name(),
                    entry.raw.kind
                )),
            )
            .with_help("remove 'exit'"));
        }
        if let Some((other, binding)) = exit.split_once(':') {
            return Err(ConfigError::at(
                mark,
                ConfigErrorKind::Custom(format!(
                    "exit '{exit}' names binding '{binding}' of namespace '{other}', and zilla-rs \
                     loads one namespace, this configuration's ('{namespace}')"
                )),
            )
            .with_help(format!(
                "move '{binding}' into this file and write exit: {binding}"
            )));
        }
        if !names.contains(exit) {
            let help = match suggest(exit, names.iter().copied()) {
                Some(s) => format!("did you mean '{s}'?"),
                None => defined_help("bindings", &names.iter().copied().collect::<Vec<_>>()),
            };
            return Err(ConfigError::at(
                mark,
                ConfigErrorKind::Custom(format!("exit '{exit}' is not a binding")),
            )
            .with_help(help));
        }
    }
    if rule == ExitRule::Required && entry.raw.exit.is_none() {
        let nowhere = entry.routes.is_empty() || entry.routes.iter().any(|r| r.exit.is_none());
        if nowhere {
            let mark = entry
                .routes
                .iter()
                .find(|r| r.exit.is_none())
                .map_or(entry.mark, |r| r.mark);
            return Err(ConfigError::at(
                mark,
                ConfigErrorKind::Custom(format!(
                    "a {} {} has nowhere to go: it needs an 'exit', or routes that each have one",
                    factory.type_name(),
                    entry.raw.kind
                )),
            )
            .with_help("add 'exit: <binding name>'"));
        }
    }
    Ok(())
}

/// One binding on the depth-first search path: its exits and the next one to visit.
struct Visit {
    entry: usize,
    exits: Vec<(usize, Mark)>,
    next: usize,
}

/// Orders entries so every binding comes after its exits; refuses loops.
fn dependency_order(entries: &[Entry]) -> Result<Vec<usize>, ConfigError> {
    let index: BTreeMap<&str, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.name.as_str(), i))
        .collect();
    let visit = |entry: usize| Visit {
        entry,
        exits: exits_of(&entries[entry])
            .filter_map(|(name, mark)| index.get(name).map(|&j| (j, mark)))
            .collect(),
        next: 0,
    };
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        Visiting,
        Done,
    }
    let mut state = vec![State::New; entries.len()];
    let mut order = Vec::with_capacity(entries.len());
    for start in 0..entries.len() {
        if state[start] != State::New {
            continue;
        }
        state[start] = State::Visiting;
        let mut path = vec![visit(start)];
        while let Some(top) = path.last_mut() {
            let Some(&(child, mark)) = top.exits.get(top.next) else {
                state[top.entry] = State::Done;
                order.push(top.entry);
                path.pop();
                continue;
            };
            top.next += 1;
            match state[child] {
                State::Done => {}
                State::New => {
                    state[child] = State::Visiting;
                    path.push(visit(child));
                }
                State::Visiting => {
                    let owner = &entries[top.entry].name;
                    let from = path.iter().position(|v| v.entry == child).unwrap_or(0);
                    let cycle: Vec<&str> = path[from..]
                        .iter()
                        .map(|v| entries[v.entry].name.as_str())
                        .chain(std::iter::once(entries[child].name.as_str()))
                        .collect();
                    return Err(ConfigError::at(
                        mark,
                        ConfigErrorKind::Custom(format!("route loop: {}", cycle.join(" → "))),
                    )
                    .with_binding(owner)
                    .with_help("an exit must lead away from the bindings that lead to it"));
                }
            }
        }
    }
    Ok(order)
}

/// "defined WHATs: a, b", or "no WHATs are defined".
pub(crate) fn defined_help(what: &str, names: &[&str]) -> String {
    if names.is_empty() {
        format!("no {what} are defined")
    } else {
        format!("defined {what}: {}", names.join(", "))
    }
}

/// The closest name within a small edit distance, for "did you mean".
pub(crate) fn suggest<'a>(
    wrong: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .map(|c| (distance(wrong, c), c))
        .filter(|(d, c)| *d <= (c.len().max(wrong.len()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(current + 1);
            prev = current;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use zilla_config::parse;

    use super::*;

    fn vault_error(options: &str) -> String {
        let yaml = format!(
            "name: t\nbindings:\n  tcp: {{type: tcp, kind: server, options: {{port: 1}}, exit: echo}}\n  \
             echo: {{type: echo, kind: server}}\n\
             vaults:\n  my_servers:\n    type: filesystem\n    options:\n{options}"
        );
        let root = parse(&yaml).expect("yaml");
        match build(&root, &Registry::builtin()) {
            Ok(_) => "built".into(),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn revocation_is_checked_or_refused() {
        let err = vault_error("      revocation: ocsp\n      crls: [ca.crl]\n");
        assert!(
            err.starts_with(
                "9:19: vault 'my_servers': revocation 'ocsp' is not supported (allowed: crl)"
            ),
            "{err}"
        );
        assert!(
            err.contains("'revocation: crl' with 'crls: [<file>]'"),
            "{err}"
        );
        let err = vault_error("      revocation: crl\n");
        assert!(
            err.contains("vault 'my_servers': 'revocation: crl' needs 'crls'"),
            "{err}"
        );
        let err = vault_error("      crls: [ca.crl]\n");
        assert!(
            err.contains("'crls' is read only with 'revocation: crl'"),
            "{err}"
        );
        let err = vault_error("      revocation: crl\n      crls: []\n");
        assert!(err.contains("'crls' is empty"), "{err}");
        // Files are read when a binding asks, not when the configuration is built.
        let built = vault_error("      revocation: crl\n      crls: [missing.crl]\n");
        assert_eq!(built, "built");
    }

    fn built(proxy: &str) -> Result<(), String> {
        let yaml = format!(
            "name: t\nbindings:\n  \
             tcp: {{type: tcp, kind: server, options: {{port: 1}}, exit: proxy}}\n  \
             proxy: {{type: tls, kind: proxy, {proxy}}}\n  \
             out: {{type: tcp, kind: client, options: {{host: localhost, port: 2}}}}\n"
        );
        let root = parse(&yaml).expect("yaml");
        build(&root, &Registry::builtin())
            .map(drop)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_tls_proxy_takes_routes_and_no_options() {
        built("routes: [{when: [{authority: example.com, alpn: h2}], exit: out}]").expect("routes");
        let err = built("options: {keys: [a]}, exit: out").expect_err("options");
        assert!(err.contains("a tls proxy takes no options"), "{err}");
    }
}

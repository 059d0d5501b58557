//! The top level of `zilla.yaml`, as Zilla defines it: `name`, `vaults`, `guards`,
//! `catalogs`, `stores`, `telemetry` and `bindings`.
//!
//! Sections whose runtime arrives with later work (`inline` guards, stores, telemetry
//! exporters other than stdout) are parsed and checked now, so a configuration that Zilla
//! would reject is rejected here too.

use std::collections::BTreeMap;

use serde::Deserialize;
use zilla_config::factory::Kind;
use zilla_config::{ConfigError, ConfigErrorKind, Node, Spanned, from_node};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// The configuration's name.
    pub name: String,
    /// Named vaults (key and trust stores).
    pub vaults: Option<Node>,
    /// Named guards (authorisation).
    pub guards: Option<Node>,
    /// Named catalogs (schemas).
    pub catalogs: Option<Node>,
    /// Named stores.
    pub stores: Option<Node>,
    /// Metrics and exporters.
    pub telemetry: Option<Telemetry>,
    /// Named bindings, in file order.
    pub bindings: Option<Node>,
}

/// One binding's entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBinding {
    /// The binding's type, such as `tcp`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Its kind.
    pub kind: Kind,
    /// Binding-specific options.
    pub options: Option<Node>,
    /// Routes, each parsed as [`RawRoute`].
    pub routes: Option<Vec<Node>>,
    /// Default exit.
    pub exit: Option<String>,
    /// Vault name.
    pub vault: Option<String>,
    /// Catalog references.
    pub catalog: Option<Node>,
    /// Per-binding telemetry.
    pub telemetry: Option<BindingTelemetry>,
    /// Entry binding, for remote kinds.
    pub entry: Option<String>,
}

/// One route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Conditions, OR-ed.
    pub when: Option<Vec<Node>>,
    /// Where to go.
    pub exit: Option<String>,
    /// Route parameters.
    pub with: Option<Node>,
    /// Guard → roles.
    pub guarded: Option<BTreeMap<String, Vec<String>>>,
}

/// Per-binding telemetry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingTelemetry {
    /// Metric names or patterns such as `stream.*`, among `telemetry.metrics`.
    pub metrics: Option<Vec<Spanned<String>>>,
    /// Labels: `NAME: literal` or `NAME: ${SOURCE}`.
    pub attributes: Option<Node>,
}

/// The `telemetry` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Telemetry {
    /// Labels of every metric.
    pub attributes: Option<Node>,
    /// Metrics bindings may record (names from the catalog of `zilla_metrics`).
    pub metrics: Option<Vec<Spanned<String>>>,
    /// Where to send them.
    pub exporters: Option<BTreeMap<String, Exporter>>,
}

/// A telemetry exporter.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Exporter {
    /// Logs to standard output.
    Stdout {
        /// No options are defined.
        options: Option<EmptyOptions>,
    },
    /// A Prometheus scrape endpoint.
    Prometheus {
        /// Endpoints to serve.
        options: PrometheusOptions,
    },
    /// OpenTelemetry over HTTP.
    Otlp {
        /// Where and what to send.
        options: Node,
        /// Vault for TLS.
        vault: Option<String>,
    },
}

/// An options mapping that must be empty.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmptyOptions {}

/// Prometheus exporter options.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusOptions {
    /// At least one endpoint.
    pub endpoints: Spanned<Vec<PrometheusEndpoint>>,
    /// Ours: `true` serves `/health` on every endpoint's port, a path serves it there.
    pub health: Option<Spanned<HealthOption>>,
}

/// One Prometheus endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusEndpoint {
    /// Only `http`.
    pub scheme: HttpScheme,
    /// Port to serve on.
    pub port: u16,
    /// Path, default `/metrics`.
    pub path: Option<Spanned<String>>,
}

/// `health: true`, `false` or a path.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum HealthOption {
    /// On (`/health`) or off.
    Enabled(bool),
    /// On, at this path.
    Path(String),
}

/// The `http` scheme, the only one Prometheus endpoints take.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpScheme {
    /// `http`
    Http,
}

/// A vault.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Vault {
    /// Keys and certificates in files.
    Filesystem {
        /// Stores.
        options: Option<FilesystemVaultOptions>,
    },
}

/// `filesystem` vault options.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesystemVaultOptions {
    /// Private keys with their certificates.
    pub keys: Option<Store>,
    /// Trusted certificates.
    pub trust: Option<Store>,
    /// Certificate authorities that sign client certificates.
    pub signers: Option<Store>,
    /// Secret keys.
    pub secrets: Option<Node>,
    /// Revocation checking: only `crl` is implemented (checked when the vault is built).
    pub revocation: Option<String>,
    /// Ours: the revocation list files `revocation: crl` checks against.
    pub crls: Option<Vec<String>>,
}

/// A key or trust store file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    /// Path of the store.
    pub store: String,
    /// Store type, default `pkcs12`.
    #[serde(rename = "type")]
    pub store_type: Option<String>,
    /// Store password.
    pub password: Option<String>,
    /// Entries to use.
    pub entries: Option<Vec<String>>,
}

/// A guard: its type, and options read by the type (`jwt`: [`guard_jwt::JwtOptions`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guard {
    /// The guard's type.
    #[serde(rename = "type")]
    pub guard_type: GuardType,
    /// Type-specific options, kept with their positions until the guard is built.
    pub options: Node,
}

/// Guard types.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum GuardType {
    /// JSON Web Tokens: verified by the engine's guards.
    Jwt,
    /// Fixed credentials ([`InlineGuardOptions`]): parsed, verified by nothing yet.
    Inline,
}

/// `inline` guard options.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InlineGuardOptions {
    /// Identity.
    pub identity: Option<String>,
    /// Credentials.
    pub credentials: Option<String>,
    /// Format.
    pub format: Option<String>,
}

/// A catalog of schemas; its options are read by the bindings that use it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// Catalog type.
    #[serde(rename = "type")]
    pub catalog_type: CatalogType,
    /// Type-specific options.
    pub options: Option<Node>,
}

/// Catalog types.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CatalogType {
    /// Schemas written in the configuration.
    Inline,
    /// Schemas in files.
    Filesystem,
    /// A Confluent-compatible schema registry.
    SchemaRegistry,
    /// Apicurio.
    Apicurio,
    /// Apicurio registry.
    ApicurioRegistry,
    /// Karapace.
    KarapaceSchemaRegistry,
}

/// Checks a name against Zilla's pattern `^[a-zA-Z]+[a-zA-Z0-9\._\-]*$`.
pub fn check_name(key: &Node, what: &str) -> Result<String, ConfigError> {
    let name = key.as_str().unwrap_or_default();
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(name.to_owned())
    } else {
        Err(key
            .error(ConfigErrorKind::InvalidValue {
                found: format!("{what} name {:?}", name),
                expected: "a name that starts with a letter and continues with letters, digits, '.', '_' or '-'".into(),
            }))
    }
}

/// The named entries of a section such as `vaults`, parsed as `T`, in file order.
pub fn named<T: for<'de> Deserialize<'de>>(
    section: Option<&Node>,
    what: &str,
) -> Result<Vec<(String, T)>, ConfigError> {
    let Some(section) = section else {
        return Ok(Vec::new());
    };
    if section.is_null() {
        return Ok(Vec::new());
    }
    let Some(entries) = section.as_map() else {
        return Err(section.error(ConfigErrorKind::InvalidType {
            found: section.describe(),
            expected: format!("a mapping of {what} names to {what}s"),
        }));
    };
    let mut parsed = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let name = check_name(key, what)?;
        parsed.push((name, from_node(value)?));
    }
    Ok(parsed)
}

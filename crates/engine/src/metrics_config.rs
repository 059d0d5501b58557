//! Metrics configuration: `telemetry.metrics`, `telemetry.attributes`, the `prometheus`
//! exporters and each binding's `telemetry`, checked against the catalog of
//! [`zilla_metrics`] and turned into the [`Registry`] and each binding's [`BindingMetrics`].
//!
//! - `telemetry.metrics` lists metric names (Zilla's schema allows names only); an unknown
//!   one is an error with "did you mean", as is a name listed twice.
//! - A binding's `telemetry.metrics` takes names or `GROUP.*` patterns; each must name
//!   metrics that `telemetry.metrics` lists (Zilla would record nothing; here it is an error
//!   that says what to add).
//! - `attributes` (top level and per binding) are labels: `NAME: literal`, or, per binding,
//!   `NAME: ${SOURCE}` with a source of the catalog (`${http.request.method}`).
//! - A `prometheus` exporter's `endpoints` (`{scheme: http, port, path}`, path `/metrics` by
//!   default) and our `health` option (`true` for `/health`, or a path) become
//!   [`PrometheusEndpoint`]s; two endpoints may share a port, not a path on it.

use zilla_config::{ConfigError, ConfigErrorKind, Mark, Node, Spanned, from_node};
use zilla_metrics::catalog::{self, MetricDef, Pattern, PatternError};
use zilla_metrics::{
    Attribute, AttributeValue, BindingMetrics, Registry, Selection, SelectionError,
};

use crate::build::suggest;
use crate::model::{BindingTelemetry, Exporter, HealthOption, PrometheusOptions, Telemetry};

/// The path a prometheus endpoint serves when it names none, as in Zilla.
pub const DEFAULT_METRICS_PATH: &str = "/metrics";

/// The health path of `health: true`.
pub const DEFAULT_HEALTH_PATH: &str = "/health";

/// A port and path the prometheus exporter serves, and the health check on that port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrometheusEndpoint {
    /// The exporter's name.
    pub exporter: String,
    /// The port, on every interface.
    pub port: u16,
    /// Where the metrics are.
    pub path: String,
    /// Where the health check is, if on.
    pub health: Option<String>,
}

/// The configuration's metrics: what may be recorded, the registry and where it is served.
pub struct Metrics {
    /// Every series.
    pub registry: Registry,
    /// `telemetry.metrics`.
    enabled: Vec<&'static MetricDef>,
    /// The prometheus exporters' endpoints.
    pub endpoints: Vec<PrometheusEndpoint>,
}

/// Reads the `telemetry` section of the configuration named `namespace`.
/// A `running` registry (a configuration reload's) is kept, so the series of the bindings the
/// reload keeps go on counting; its namespace and constant labels stay those it was made with.
pub fn read(
    namespace: &str,
    section: Option<&Node>,
    running: Option<&Registry>,
) -> Result<Metrics, ConfigError> {
    let telemetry: Option<Telemetry> = match section {
        Some(node) if !node.is_null() => Some(from_node(node)?),
        _ => None,
    };
    let telemetry = telemetry.as_ref();
    let attributes = match telemetry.and_then(|t| t.attributes.as_ref()) {
        Some(node) => attributes(node)?,
        None => Vec::new(),
    };
    let mut constant = Vec::with_capacity(attributes.len());
    for (key, value) in &attributes {
        if value.value.contains("${") {
            return Err(value
                .error(ConfigErrorKind::Custom(
                    "telemetry.attributes are literal values".into(),
                ))
                .with_help("take a value from requests in a binding's telemetry.attributes"));
        }
        constant.push((key.value.clone(), value.value.clone()));
    }
    let registry = match running {
        Some(running) => running.clone(),
        None => Registry::new(namespace, &constant).map_err(|err| {
            let at = attribute_at(&attributes, &err).unwrap_or(Mark::UNKNOWN);
            selection_error(at, err)
        })?,
    };
    let mut enabled: Vec<&'static MetricDef> = Vec::new();
    for name in telemetry
        .and_then(|t| t.metrics.as_ref())
        .into_iter()
        .flatten()
    {
        let Some(metric) = catalog::find(&name.value) else {
            let hint = if name.value.contains('*') {
                "telemetry.metrics lists names; patterns such as 'http.*' go in a binding's telemetry.metrics".to_owned()
            } else {
                unknown_help(&name.value)
            };
            return Err(name
                .error(ConfigErrorKind::Custom(format!(
                    "unknown metric '{}'",
                    name.value
                )))
                .with_help(hint));
        };
        if enabled.iter().any(|m| m.name == metric.name) {
            return Err(name.error(ConfigErrorKind::Custom(format!(
                "metric '{}' is listed twice",
                metric.name
            ))));
        }
        enabled.push(metric);
    }
    let exporters = section.and_then(|t| t.get("exporters"));
    let endpoints = endpoints(telemetry, exporters)?;
    Ok(Metrics {
        registry,
        enabled,
        endpoints,
    })
}

impl Metrics {
    /// The metrics of binding `name`, whose entry starts at `mark`.
    pub fn binding(
        &self,
        name: &str,
        telemetry: Option<&BindingTelemetry>,
        mark: Mark,
    ) -> Result<BindingMetrics, ConfigError> {
        let Some(telemetry) = telemetry else {
            // Records nothing, and can still declare what readiness waits for.
            return self
                .registry
                .binding(name, Selection::default())
                .map_err(|err| selection_error(mark, err));
        };
        let mut selection = Selection::default();
        for written in telemetry.metrics.iter().flatten() {
            let pattern =
                Pattern::parse(&written.value).map_err(|err| pattern_error(written, err))?;
            let before = selection.metrics.len();
            selection
                .metrics
                .extend(self.enabled.iter().copied().filter(|m| pattern.matches(m)));
            if selection.metrics.len() == before {
                return Err(self.not_enabled(written, &pattern));
            }
        }
        let attributes = match &telemetry.attributes {
            Some(node) => attributes(node)?,
            None => Vec::new(),
        };
        for (key, value) in &attributes {
            let parsed = AttributeValue::parse(&value.value)
                .map_err(|err| selection_error(value.mark, err))?;
            selection.attributes.push(Attribute {
                name: key.value.clone(),
                value: parsed,
            });
        }
        self.registry.binding(name, selection).map_err(|err| {
            let at = attribute_at(&attributes, &err).unwrap_or(mark);
            selection_error(at, err)
        })
    }

    fn not_enabled(&self, written: &Spanned<String>, pattern: &Pattern) -> ConfigError {
        let wanted: Vec<&str> = catalog::CATALOG
            .iter()
            .filter(|m| pattern.matches(m))
            .map(|m| m.name)
            .collect();
        let message = match pattern {
            Pattern::Exact(metric) => {
                format!("metric '{}' is not in telemetry.metrics", metric.name)
            }
            Pattern::Prefix(_) => format!("'{}' matches none of telemetry.metrics", written.value),
        };
        written
            .error(ConfigErrorKind::Custom(message))
            .with_help(format!("add to telemetry.metrics: {}", wanted.join(", ")))
    }
}

/// An attribute's name and value, with their positions.
type Written = (Spanned<String>, Spanned<String>);

/// The entries of an `attributes` mapping: names and scalar values, with positions.
fn attributes(node: &Node) -> Result<Vec<Written>, ConfigError> {
    if node.is_null() {
        return Ok(Vec::new());
    }
    let entries = node.as_map().ok_or_else(|| {
        node.error(ConfigErrorKind::InvalidType {
            found: node.describe(),
            expected: "a mapping of attribute names to values".into(),
        })
    })?;
    let mut read = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let text = |node: &Node| {
            node.as_str()
                .map(|s| Spanned::new(node.mark, s.to_owned()))
                .ok_or_else(|| {
                    node.error(ConfigErrorKind::InvalidType {
                        found: node.describe(),
                        expected: "a string".into(),
                    })
                })
        };
        read.push((text(key)?, text(value)?));
    }
    Ok(read)
}

/// Where the attribute an error is about is written.
fn attribute_at(attributes: &[Written], err: &SelectionError) -> Option<Mark> {
    let names = |key: &Spanned<String>| match err {
        SelectionError::InvalidLabel(name) => key.value == *name,
        SelectionError::ReservedLabel(_) => {
            zilla_metrics::label_name(&key.value).as_ref() == Err(err)
        }
        SelectionError::DuplicateLabel(label) => {
            zilla_metrics::label_name(&key.value).as_ref() == Ok(label)
        }
        _ => false,
    };
    // The last one: a duplicate is the second.
    attributes
        .iter()
        .rev()
        .find(|(key, _)| names(key))
        .map(|(key, _)| key.mark)
}

fn selection_error(at: Mark, err: SelectionError) -> ConfigError {
    let help = match &err {
        SelectionError::UnknownSource(name) => {
            let names = catalog::SOURCES.iter().map(|s| s.name);
            match suggest(name, names.clone()) {
                Some(best) => format!("did you mean '${{{best}}}'?"),
                None => format!("sources: {}", names.collect::<Vec<_>>().join(", ")),
            }
        }
        SelectionError::ReservedLabel(_) => {
            "every series has 'namespace' and 'binding'; rename the attribute".into()
        }
        SelectionError::DuplicateLabel(_) => "rename one of them".into(),
        SelectionError::TooManyDimensions { .. } => format!(
            "take at most {} labels from requests per metric",
            zilla_metrics::MAX_DIMENSIONS
        ),
        SelectionError::InvalidLabel(_) | SelectionError::Expression(_) => {
            return ConfigError::at(at, ConfigErrorKind::Custom(err.to_string()));
        }
    };
    ConfigError::at(at, ConfigErrorKind::Custom(err.to_string())).with_help(help)
}

fn pattern_error(written: &Spanned<String>, err: PatternError) -> ConfigError {
    let help = match &err {
        PatternError::Unknown(name) => unknown_help(name),
        PatternError::Wildcard(_) | PatternError::NoMatch(_) => {
            "groups: http.*, stream.*, sse.*, kafka.*".to_owned()
        }
    };
    written
        .error(ConfigErrorKind::Custom(err.to_string()))
        .with_help(help)
}

fn unknown_help(name: &str) -> String {
    match suggest(name, catalog::names()) {
        Some(best) => format!("did you mean '{best}'?"),
        None => "see the metrics of the zilla-metrics crate (http.*, stream.*, sse.*, kafka.*)"
            .to_owned(),
    }
}

/// The endpoints of every prometheus exporter. Their options are read again from the
/// `exporters` node: inside the exporter's tagged enum, serde loses positions.
fn endpoints(
    telemetry: Option<&Telemetry>,
    exporters: Option<&Node>,
) -> Result<Vec<PrometheusEndpoint>, ConfigError> {
    let mut endpoints: Vec<PrometheusEndpoint> = Vec::new();
    let named = telemetry.and_then(|t| t.exporters.as_ref());
    let prometheus = named.into_iter().flatten().filter_map(|(name, e)| match e {
        Exporter::Prometheus { .. } => Some(name),
        _ => None,
    });
    for exporter in prometheus {
        let node = exporters
            .and_then(|e| e.get(exporter))
            .and_then(|e| e.get("options"));
        let Some(node) = node else { continue };
        let options: PrometheusOptions = from_node(node)?;
        if options.endpoints.value.is_empty() {
            return Err(options
                .endpoints
                .error(ConfigErrorKind::Custom(format!(
                    "exporter '{exporter}' has no endpoints"
                )))
                .with_help("add endpoints: [{scheme: http, port: 7190, path: /metrics}]"));
        }
        let health = match options.health.as_ref() {
            None => None,
            Some(spanned) => match &spanned.value {
                HealthOption::Enabled(false) => None,
                HealthOption::Enabled(true) => Some(DEFAULT_HEALTH_PATH.to_owned()),
                HealthOption::Path(path) => Some(absolute(path, spanned.mark)?),
            },
        };
        for endpoint in &options.endpoints.value {
            let (path, mark) = match &endpoint.path {
                Some(path) => (absolute(&path.value, path.mark)?, path.mark),
                None => (DEFAULT_METRICS_PATH.to_owned(), options.endpoints.mark),
            };
            let taken = endpoints
                .iter()
                .filter(|e| e.port == endpoint.port)
                .any(|e| {
                    e.path == path
                        || e.health.as_deref() == Some(&path)
                        || health.as_deref() == Some(&e.path)
                });
            if taken || health.as_deref() == Some(&path) {
                return Err(ConfigError::at(
                    mark,
                    ConfigErrorKind::Custom(format!(
                        "exporter '{exporter}': port {} serves '{path}' twice",
                        endpoint.port
                    )),
                )
                .with_help("give each endpoint on a port its own path"));
            }
            endpoints.push(PrometheusEndpoint {
                exporter: exporter.clone(),
                port: endpoint.port,
                path,
                health: health.clone(),
            });
        }
    }
    Ok(endpoints)
}

fn absolute(path: &str, mark: Mark) -> Result<String, ConfigError> {
    if path.starts_with('/') && !path.contains(['?', '#', ' ']) {
        return Ok(path.to_owned());
    }
    Err(ConfigError::at(
        mark,
        ConfigErrorKind::InvalidValue {
            found: format!("{path:?}"),
            expected: "a path that starts with '/'".into(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use zilla_config::env_resolver;

    use crate::{Registry as Bindings, load_str};

    /// A tcp echo server with `telemetry` and the tcp binding's `binding` lines.
    fn load(telemetry: &str, binding: &str) -> Result<crate::Built, String> {
        let yaml = format!(
            "name: t\n{telemetry}bindings:\n  tcp:\n    type: tcp\n    kind: server\n    \
             options: {{port: 1}}\n    exit: echo\n{binding}  echo:\n    type: echo\n    kind: server\n"
        );
        load_str(&yaml, &Bindings::builtin(), &env_resolver()).map_err(|e| e.to_string())
    }

    const ENABLED: &str = "telemetry:\n  metrics: [stream.opens.received, http.duration]\n";

    #[test]
    fn unknown_metrics_are_refused_with_a_suggestion() {
        let err = load("telemetry:\n  metrics: [stream.opens.recieved]\n", "")
            .err()
            .expect("an error");
        assert_eq!(
            err,
            "3:13: unknown metric 'stream.opens.recieved'; did you mean 'stream.opens.received'?"
        );
        let err = load("telemetry:\n  metrics: [http.*]\n", "")
            .err()
            .expect("an error");
        assert!(
            err.starts_with("3:13: unknown metric 'http.*'; telemetry.metrics lists names"),
            "{err}"
        );
        let err = load(
            "telemetry:\n  metrics: [http.duration, http.duration]\n",
            "",
        )
        .err()
        .expect("an error");
        assert_eq!(err, "3:28: metric 'http.duration' is listed twice");
        let err = load(
            ENABLED,
            "    telemetry: {metrics: [stream.opens.recieved]}\n",
        )
        .err()
        .expect("an error");
        assert_eq!(
            err,
            "10:27: binding 'tcp': unknown metric 'stream.opens.recieved'; did you mean 'stream.opens.received'?"
        );
        let err = load(ENABLED, "    telemetry: {metrics: [strem.*]}\n")
            .err()
            .expect("an error");
        assert!(
            err.starts_with("10:27: binding 'tcp': 'strem.*' matches no metric"),
            "{err}"
        );
    }

    #[test]
    fn a_binding_records_what_telemetry_metrics_lists() {
        let err = load(
            ENABLED,
            "    telemetry: {metrics: [stream.closes.received]}\n",
        )
        .err()
        .expect("an error");
        assert_eq!(
            err,
            "10:27: binding 'tcp': metric 'stream.closes.received' is not in telemetry.metrics; \
             add to telemetry.metrics: stream.closes.received"
        );
        let err = load("", "    telemetry: {metrics: [sse.*]}\n")
            .err()
            .expect("an error");
        assert!(err.contains("'sse.*' matches none of telemetry.metrics; add to telemetry.metrics: sse.subscribers.active, "), "{err}");
        let built = load(ENABLED, "    telemetry: {metrics: [stream.*, '*']}\n").expect("valid");
        assert_eq!(built.metrics.namespace(), "t");
    }

    #[test]
    fn attributes_are_labels() {
        let err = load(
            ENABLED,
            "    telemetry:\n      metrics: [http.*]\n      attributes: {method: '${http.request.metod}'}\n",
        )
        .err().expect("an error");
        assert_eq!(
            err,
            "12:28: binding 'tcp': unknown source '${http.request.metod}'; did you mean '${http.request.method}'?"
        );
        let err = load(ENABLED, "    telemetry:\n      attributes: {binding: x}\n")
            .err()
            .expect("an error");
        assert!(
            err.starts_with("11:20: binding 'tcp': attribute label 'binding' is reserved"),
            "{err}"
        );
        let err = load(
            "telemetry:\n  attributes: {zone: a}\n  metrics: [http.duration]\n",
            "    telemetry:\n      attributes: {zone: b}\n",
        )
        .err()
        .expect("an error");
        assert!(
            err.starts_with("12:20: binding 'tcp': label 'zone' is given twice"),
            "{err}"
        );
        let err = load(
            "telemetry:\n  attributes: {m: '${http.request.method}'}\n",
            "",
        )
        .err()
        .expect("an error");
        assert!(
            err.starts_with("3:19: telemetry.attributes are literal values"),
            "{err}"
        );
    }

    #[test]
    fn prometheus_endpoints() {
        let exporter = |options: &str| {
            load(
                &format!(
                    "telemetry:\n  exporters:\n    prom:\n      type: prometheus\n      options: {options}\n"
                ),
                "",
            )
        };
        let built = exporter("{endpoints: [{scheme: http, port: 7190}, {scheme: http, port: 7190, path: /m2}], health: true}")
            .expect("valid");
        let paths: Vec<_> = built
            .prometheus
            .iter()
            .map(|e| (e.port, e.path.as_str(), e.health.as_deref()))
            .collect();
        assert_eq!(
            paths,
            [
                (7190, "/metrics", Some("/health")),
                (7190, "/m2", Some("/health"))
            ]
        );
        let built =
            exporter("{endpoints: [{scheme: http, port: 7190}], health: /ready}").expect("valid");
        assert_eq!(built.prometheus[0].health.as_deref(), Some("/ready"));
        let built =
            exporter("{endpoints: [{scheme: http, port: 7190}], health: false}").expect("valid");
        assert_eq!(built.prometheus[0].health, None);
        let err = exporter("{endpoints: []}").err().expect("an error");
        assert!(
            err.starts_with("6:28: exporter 'prom' has no endpoints"),
            "{err}"
        );
        let err = exporter("{endpoints: [{scheme: http, port: 1, path: metrics}]}")
            .err()
            .expect("an error");
        assert!(
            err.starts_with(
                "6:59: invalid value \"metrics\", expected a path that starts with '/'"
            ),
            "{err}"
        );
        let err = exporter("{endpoints: [{scheme: http, port: 1}, {scheme: http, port: 1}]}")
            .err()
            .expect("an error");
        assert!(
            err.contains("exporter 'prom': port 1 serves '/metrics' twice"),
            "{err}"
        );
        let err = exporter("{endpoints: [{scheme: http, port: 1, path: /health}], health: true}")
            .err()
            .expect("an error");
        assert!(err.contains("port 1 serves '/health' twice"), "{err}");
    }
}

//! The sse-kafka binding's routes: `when[].path` patterns and `with` (topic, filters, event id
//! format, start position).

use std::collections::BTreeMap;

use binding_api::guard::Guarded;
use binding_api::route::{Pattern, Route, Routes};
use serde::Deserialize;
use zilla_config::factory::{BindingConfig, RouteConfig};
use zilla_config::{ConfigError, ConfigErrorKind, Spanned, from_node_at};

use crate::template::Template;

/// One `when` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWhen {
    path: Option<Spanned<String>>,
}

/// A route's `with`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWith {
    topic: Spanned<String>,
    filters: Option<Vec<RawFilter>>,
    event: Option<RawEvent>,
    start: Option<Start>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilter {
    key: Option<Spanned<String>>,
    headers: Option<BTreeMap<String, Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    id: Option<Spanned<String>>,
}

/// Where a subscription without `Last-Event-ID` starts, per route (`with.start`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    /// Every record the cache or broker still holds, then live ones (Zilla's behaviour).
    #[default]
    Historical,
    /// Only records produced from now on.
    Live,
}

/// The two id formats Zilla's `with.event.id` allows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IdFormat {
    /// `${etag}`: the progress, then `/etag` when the record has an `etag` header.
    #[default]
    Etag,
    /// `["${base64(key)}","${etag}"]`: the record's key too.
    KeyAndEtag,
}

const ID_ETAG: &str = "${etag}";
const ID_KEY_AND_ETAG: &str = r#"["${base64(key)}","${etag}"]"#;

/// A filter of templates: OR-ed with the route's other filters, AND-ed inside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterTemplate {
    /// The key to match.
    pub key: Option<Template>,
    /// Header name → value to match.
    pub headers: Vec<(String, Template)>,
}

/// A route: path patterns, the exit, what its subscriptions ask of Kafka and what it
/// requires of their authorization.
pub type ProxyRoute = Route<Pattern, ProxyWith>;

/// The routes of a proxy. There is no fallback: the binding's `exit` is the exit of routes
/// without one.
pub type ProxyRoutes = Routes<Pattern, ProxyWith>;

/// A route's `with`: what its subscriptions ask of Kafka.
pub struct ProxyWith {
    /// The topic.
    pub topic: Template,
    /// The filters.
    pub filters: Vec<FilterTemplate>,
    /// The id format.
    pub id_format: IdFormat,
    /// The start position without `Last-Event-ID`.
    pub start: Start,
    /// What the route's `guarded` requires of a subscription's authorization.
    pub guarded: Guarded,
}

/// Parses every route of the binding: path patterns (a `when` entry without `path` adds
/// none) and the Kafka stream to open.
pub fn parse_routes(config: &BindingConfig<'_>) -> Result<ProxyRoutes, ConfigError> {
    if let Some(options) = config.options {
        return Err(
            ConfigError::custom_at(options.mark, "sse-kafka takes no options")
                .with_help("remove 'options'; routes carry the topic and filters in 'with'"),
        );
    }
    if config.routes.is_empty() {
        return Err(config
            .error("sse-kafka needs routes: each names the topic in 'with'")
            .with_help("add routes: [{when: [{path: /{topic}}], exit: ..., with: {topic: ${params.topic}}}]"));
    }
    let routes = config
        .routes
        .iter()
        .map(|route| parse_route(config, route))
        .collect::<Result<_, _>>()?;
    Ok(Routes::new(routes, None))
}

fn parse_route(config: &BindingConfig<'_>, route: &RouteConfig) -> Result<ProxyRoute, ConfigError> {
    let mut paths = Vec::with_capacity(route.when.len());
    for node in &route.when {
        let when: RawWhen = from_node_at(node, "routes.when")?;
        if let Some(path) = when.path {
            let pattern = Pattern::new(&path.value)
                .map_err(|e| ConfigError::custom_at(path.mark, e.to_string()))?;
            paths.push(pattern);
        }
    }
    let Some(with_node) = &route.with else {
        return Err(
            ConfigError::custom_at(route.mark, "a sse-kafka route needs 'with'")
                .with_help("add with: {topic: <topic or ${params.name}>}"),
        );
    };
    let with: RawWith = from_node_at(with_node, "routes.with")?;
    let exit_name = match (&route.exit, config.exit) {
        (Some(exit), _) => exit.as_str(),
        (None, Some(exit)) => exit,
        (None, None) => {
            return Err(ConfigError::custom_at(route.mark, "the route has no exit")
                .with_help("add 'exit: <kafka cache_client or client binding>'"));
        }
    };
    let exit = config.exit_binding(exit_name, route.mark)?;

    let captures: Vec<&str> = paths.iter().flat_map(|p| p.capture_names()).collect();
    let template = |value: &Spanned<String>| -> Result<Template, ConfigError> {
        let template = Template::parse(&value.value)
            .map_err(|e| ConfigError::custom_at(value.mark, e.to_string()))?;
        for param in template.params() {
            if paths.is_empty() || !paths.iter().all(|p| p.capture_names().any(|c| c == param)) {
                return Err(ConfigError::custom_at(
                    value.mark,
                    format!("'${{params.{param}}}' is not captured by every path of the route"),
                )
                .with_help(if captures.is_empty() {
                    "capture it in the path, e.g. when: [{path: /{topic}}]".to_owned()
                } else {
                    format!("captured names: {}", captures.join(", "))
                }));
            }
        }
        Ok(template)
    };

    let topic = template(&with.topic)?;
    let mut filters = Vec::new();
    for filter in with.filters.iter().flatten() {
        let key = filter.key.as_ref().map(&template).transpose()?;
        let mut headers = Vec::new();
        for (name, value) in filter.headers.iter().flatten() {
            headers.push((name.clone(), template(value)?));
        }
        filters.push(FilterTemplate { key, headers });
    }
    let id_format = match with.event.and_then(|e| e.id) {
        None => IdFormat::Etag,
        Some(id) if id.value == ID_ETAG => IdFormat::Etag,
        Some(id) if id.value == ID_KEY_AND_ETAG => IdFormat::KeyAndEtag,
        Some(id) => {
            return Err(id.error(ConfigErrorKind::InvalidValue {
                found: format!("{:?}", id.value),
                expected: format!("\"{ID_ETAG}\" or '{ID_KEY_AND_ETAG}'"),
            }));
        }
    };
    Ok(Route {
        when: paths,
        exit,
        with: ProxyWith {
            topic,
            filters,
            id_format,
            start: with.start.unwrap_or_default(),
            guarded: Guarded::new(route.guarded.clone()),
        },
    })
}

//! `type: asyncapi` bindings, built from the bindings we already have: each one is replaced,
//! before the configuration is checked, by the bindings its AsyncAPI documents call for.
//!
//! - `kind: server` → `NAME` (tcp server on the ports of the spec's `http://` servers) →
//!   `NAME.http` (http server, cross-origin access, a route per SSE operation's channel path)
//!   → `NAME.sse` (sse server) → the binding's `exit`.
//! - `kind: proxy` → `NAME` (sse-kafka): for each route `when: [{spec, operation?}]` →
//!   `with: {spec, operation?}`, each receive operation of the `when` spec with `x-zilla-sse`
//!   streams the Kafka receive operation named in `with`, else the one of the same name: a
//!   route on the SSE channel's path (its `{parameters}` captured) to the Kafka channel's
//!   address as topic (`{parameter}` → `${params.parameter}`), with the operation's
//!   `x-zilla-sse-kafka` filters.
//! - `kind: client` → `NAME` (kafka cache_client) → `NAME.cache` (cache_server) →
//!   `NAME.kafka` (kafka client, bootstrap from the spec's `kafka://` servers) → `NAME.tcp`
//!   (tcp client; `--resolve` applies).
//!
//! Options, as Zilla's: `specs: {LABEL: {server: URL | servers: [URL...], catalog: {CATALOG:
//! {subject: SUBJECT}}}}`; without `server`/`servers`, the document's own servers of the
//! protocol are used. The generated bindings carry the position of the asyncapi binding, so
//! an error in them points there; an error in a document points into the document.

use zilla_config::{ConfigError, Mark, Node, Scalar, Value};

use crate::catalog::Catalogs;

/// What a configuration's asyncapi bindings became.
pub struct Expansion {
    /// The configuration's `bindings` section with every asyncapi binding replaced.
    pub bindings: Node,
    /// One line per generated binding: `NAME: TYPE KIND → EXIT`.
    pub generated: Vec<String>,
}

/// One spec of a binding's `options.specs`.
struct Spec {
    label: String,
    urls: Vec<(String, Mark)>,
    document: asyncapi::Document,
}

/// Replaces the asyncapi bindings of `bindings`; `None` when there are none.
pub fn expand(bindings: &Node, catalogs: &Catalogs) -> Result<Option<Expansion>, ConfigError> {
    let Some(map) = bindings.as_map() else {
        return Ok(None);
    };
    if !map.iter().any(|(_, b)| is_asyncapi(b)) {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(map.len());
    let mut generated = Vec::new();
    for (key, binding) in map {
        if !is_asyncapi(binding) {
            out.push((key.clone(), binding.clone()));
            continue;
        }
        let name = key.as_str().unwrap_or_default();
        let made = generate(name, binding, catalogs).map_err(|e| e.with_binding(name))?;
        for (name, node) in made {
            generated.push(summary(&name, &node));
            out.push((scalar(key.mark, &name), node));
        }
    }
    Ok(Some(Expansion {
        bindings: Node::new(bindings.mark, Value::Map(out)),
        generated,
    }))
}

fn is_asyncapi(binding: &Node) -> bool {
    binding.get("type").and_then(Node::as_str) == Some("asyncapi")
}

fn generate(
    name: &str,
    binding: &Node,
    catalogs: &Catalogs,
) -> Result<Vec<(String, Node)>, ConfigError> {
    let at = binding.mark;
    for (key, _) in binding.as_map().unwrap_or_default() {
        let key_name = key.as_str().unwrap_or_default();
        if !matches!(
            key_name,
            "type" | "kind" | "options" | "routes" | "exit" | "telemetry"
        ) {
            return Err(ConfigError::custom_at(
                key.mark,
                format!(
                    "unknown key '{key_name}' (allowed: type, kind, options, routes, exit, telemetry)"
                ),
            ));
        }
    }
    let kind = binding
        .get("kind")
        .and_then(Node::as_str)
        .unwrap_or_default();
    let specs = specs(binding, catalogs)?;
    let exit = binding.get("exit").and_then(Node::as_str);
    match kind {
        "server" => server(name, at, &specs, exit),
        "proxy" => proxy(name, binding, &specs),
        "client" => client(name, at, &specs),
        other => Err(ConfigError::custom_at(
            binding.get("kind").map_or(at, |k| k.mark),
            format!("kind '{other}' is not one of asyncapi's kinds (server, proxy, client)"),
        )),
    }
}

/// `options.specs`, each read from its catalog and parsed.
fn specs(binding: &Node, catalogs: &Catalogs) -> Result<Vec<Spec>, ConfigError> {
    let specs = binding
        .get("options")
        .and_then(|o| o.get("specs"))
        .and_then(Node::as_map)
        .ok_or_else(|| {
            ConfigError::custom_at(binding.mark, "an asyncapi binding needs options.specs")
        })?;
    let mut out = Vec::new();
    for (label, spec) in specs {
        let label = label.as_str().unwrap_or_default().to_owned();
        let mut urls = Vec::new();
        if let Some(server) = spec.get("server") {
            urls.push(url_of(server)?);
        }
        for server in spec
            .get("servers")
            .and_then(Node::as_seq)
            .unwrap_or_default()
        {
            urls.push(url_of(server)?);
        }
        let (catalog, reference) = spec
            .get("catalog")
            .and_then(Node::as_map)
            .and_then(|m| m.first())
            .ok_or_else(|| {
                ConfigError::custom_at(
                    spec.mark,
                    format!("spec '{label}' needs catalog: {{CATALOG: {{subject: SUBJECT}}}}"),
                )
            })?;
        let catalog = catalog.as_str().unwrap_or_default();
        let subject_node = reference.get("subject").ok_or_else(|| {
            ConfigError::custom_at(
                reference.mark,
                format!("spec '{label}': catalog '{catalog}' needs a subject"),
            )
        })?;
        let subject_name = subject_node.as_str().unwrap_or_default();
        let subject = catalogs.subject(catalog, subject_name, subject_node.mark)?;
        let document = asyncapi::parse(&subject.text).map_err(|err| {
            let details = err.clone().into_details();
            let message = format!(
                "catalog '{catalog}' subject '{subject_name}': {}",
                details.kind
            );
            let error = ConfigError::custom_at(details.mark.unwrap_or(Mark::UNKNOWN), message);
            match &subject.file {
                Some(file) => error.with_file(file),
                None => error,
            }
        })?;
        out.push(Spec {
            label,
            urls,
            document,
        });
    }
    Ok(out)
}

fn url_of(node: &Node) -> Result<(String, Mark), ConfigError> {
    let url = node
        .as_str()
        .or_else(|| node.get("url").and_then(Node::as_str));
    url.map(|u| (u.to_owned(), node.mark)).ok_or_else(|| {
        ConfigError::custom_at(
            node.mark,
            "a server is a URL, such as http://localhost:7114",
        )
    })
}

/// The `host:port` of the servers of `protocol`: the spec's own `server(s)` option when given,
/// else the document's servers of that protocol.
fn endpoints(
    spec: &Spec,
    protocol: &str,
    at: Mark,
) -> Result<Vec<(String, u16, Mark)>, ConfigError> {
    let mut out = Vec::new();
    let given: Vec<(String, Mark)> = if spec.urls.is_empty() {
        spec.document
            .servers
            .iter()
            .filter(|s| s.protocol == protocol)
            .map(|s| (format!("{protocol}://{}", s.host), at))
            .collect()
    } else {
        spec.urls.clone()
    };
    for (url, mark) in given {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(ConfigError::custom_at(
                mark,
                format!("'{url}' is not a URL (SCHEME://HOST:PORT)"),
            ));
        };
        if scheme != protocol {
            return Err(ConfigError::custom_at(
                mark,
                format!(
                    "spec '{}': server '{url}' is {scheme}, this binding serves {protocol}:// only",
                    spec.label
                ),
            ));
        }
        let authority = rest.split('/').next().unwrap_or_default();
        let (host, port) = authority
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
            .ok_or_else(|| ConfigError::custom_at(mark, format!("server '{url}' needs a port")))?;
        out.push((host, port, mark));
    }
    if out.is_empty() {
        return Err(ConfigError::custom_at(
            at,
            format!(
                "spec '{}' names no {protocol}:// server (set options.specs.{}.server)",
                spec.label, spec.label
            ),
        ));
    }
    Ok(out)
}

fn server(
    name: &str,
    at: Mark,
    specs: &[Spec],
    exit: Option<&str>,
) -> Result<Vec<(String, Node)>, ConfigError> {
    let exit = exit.ok_or_else(|| {
        ConfigError::custom_at(at, "an asyncapi server needs an exit (its proxy)")
    })?;
    let mut ports = Vec::new();
    let mut routes = Vec::new();
    for spec in specs {
        for (_, port, _) in endpoints(spec, "http", at)? {
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
        for operation in &spec.document.operations {
            if operation.sse.is_some() && operation.action == asyncapi::Action::Receive {
                let path = wildcard_parameters(&spec.document.channel(operation).address);
                routes.push(map(
                    at,
                    vec![
                        (
                            "when",
                            seq(
                                at,
                                vec![map(
                                    at,
                                    vec![("headers", map(at, vec![(":path", scalar(at, &path))]))],
                                )],
                            ),
                        ),
                        ("exit", scalar(at, &format!("{name}.sse"))),
                    ],
                ));
            }
        }
    }
    if routes.is_empty() {
        return Err(ConfigError::custom_at(
            at,
            "no receive operation with an x-zilla-sse binding in the specs: nothing to serve",
        ));
    }
    let port = match ports.as_slice() {
        [one] => plain(at, &one.to_string()),
        many => seq(at, many.iter().map(|p| plain(at, &p.to_string())).collect()),
    };
    Ok(vec![
        (
            name.to_owned(),
            binding(
                at,
                "tcp",
                "server",
                Some(map(
                    at,
                    vec![("host", scalar(at, "0.0.0.0")), ("port", port)],
                )),
                None,
                Some(&format!("{name}.http")),
            ),
        ),
        (
            format!("{name}.http"),
            binding(
                at,
                "http",
                "server",
                Some(map(
                    at,
                    vec![(
                        "access-control",
                        map(at, vec![("policy", scalar(at, "cross-origin"))]),
                    )],
                )),
                Some(routes),
                None,
            ),
        ),
        (
            format!("{name}.sse"),
            binding(at, "sse", "server", None, None, Some(exit)),
        ),
    ])
}

fn proxy(name: &str, node: &Node, specs: &[Spec]) -> Result<Vec<(String, Node)>, ConfigError> {
    let at = node.mark;
    let spec = |label: &str, mark: Mark| {
        specs.iter().find(|s| s.label == label).ok_or_else(|| {
            ConfigError::custom_at(mark, format!("spec '{label}' is not in options.specs"))
        })
    };
    let mut routes = Vec::new();
    for route in node
        .get("routes")
        .and_then(Node::as_seq)
        .unwrap_or_default()
    {
        let exit = route.get("exit").and_then(Node::as_str).ok_or_else(|| {
            ConfigError::custom_at(
                route.mark,
                "an asyncapi proxy route needs an exit (its client)",
            )
        })?;
        let with = route.get("with").ok_or_else(|| {
            ConfigError::custom_at(route.mark, "an asyncapi proxy route needs with: {spec}")
        })?;
        let kafka = spec(text(with, "spec")?, with.mark)?;
        let kafka_operation = with.get("operation").and_then(Node::as_str);
        let before = routes.len();
        for condition in route.get("when").and_then(Node::as_seq).unwrap_or_default() {
            let sse = spec(text(condition, "spec")?, condition.mark)?;
            let only = condition.get("operation").and_then(Node::as_str);
            for operation in &sse.document.operations {
                if operation.sse.is_none() || only.is_some_and(|o| o != operation.name) {
                    continue;
                }
                let target = kafka_operation.unwrap_or(&operation.name);
                let Some(target) = kafka.document.operation(target) else {
                    continue;
                };
                if target.action != asyncapi::Action::Receive {
                    continue;
                }
                let topic = kafka
                    .document
                    .channel(target)
                    .address
                    .replace('{', "${params.");
                let mut with = vec![("topic", scalar(at, &topic))];
                if !operation.filters.is_empty() {
                    with.push((
                        "filters",
                        seq(
                            at,
                            operation.filters.iter().map(|f| filter(at, f)).collect(),
                        ),
                    ));
                }
                routes.push(map(
                    at,
                    vec![
                        (
                            "when",
                            seq(
                                at,
                                vec![map(
                                    at,
                                    vec![(
                                        "path",
                                        scalar(at, &sse.document.channel(operation).address),
                                    )],
                                )],
                            ),
                        ),
                        ("exit", scalar(at, exit)),
                        ("with", map(at, with)),
                    ],
                ));
            }
        }
        if routes.len() == before {
            return Err(ConfigError::custom_at(
                route.mark,
                format!(
                    "no SSE operation of this route's 'when' specs maps to a Kafka receive operation of spec '{}' (by name, or with.operation)",
                    kafka.label
                ),
            ));
        }
    }
    if routes.is_empty() {
        return Err(ConfigError::custom_at(
            at,
            "an asyncapi proxy needs routes: [{when: [{spec}], with: {spec}, exit}]",
        ));
    }
    Ok(vec![(
        name.to_owned(),
        binding(at, "sse-kafka", "proxy", None, Some(routes), None),
    )])
}

fn client(name: &str, at: Mark, specs: &[Spec]) -> Result<Vec<(String, Node)>, ConfigError> {
    let mut servers = Vec::new();
    for spec in specs {
        for (host, port, _) in endpoints(spec, "kafka", at)? {
            servers.push(scalar(at, &format!("{host}:{port}")));
        }
    }
    Ok(vec![
        (
            name.to_owned(),
            binding(
                at,
                "kafka",
                "cache_client",
                None,
                None,
                Some(&format!("{name}.cache")),
            ),
        ),
        (
            format!("{name}.cache"),
            binding(
                at,
                "kafka",
                "cache_server",
                None,
                None,
                Some(&format!("{name}.kafka")),
            ),
        ),
        (
            format!("{name}.kafka"),
            binding(
                at,
                "kafka",
                "client",
                Some(map(at, vec![("servers", seq(at, servers))])),
                None,
                Some(&format!("{name}.tcp")),
            ),
        ),
        (
            format!("{name}.tcp"),
            binding(at, "tcp", "client", None, None, None),
        ),
    ])
}

fn filter(at: Mark, filter: &asyncapi::Filter) -> Node {
    let mut fields = Vec::new();
    if let Some(key) = &filter.key {
        fields.push(("key", scalar(at, key)));
    }
    if !filter.headers.is_empty() {
        let headers = filter
            .headers
            .iter()
            .map(|(n, v)| (scalar(at, n), scalar(at, v)))
            .collect();
        fields.push(("headers", Node::new(at, Value::Map(headers))));
    }
    map(at, fields)
}

/// An address's `{parameters}` as `*`, for an http route.
fn wildcard_parameters(address: &str) -> String {
    let mut out = String::with_capacity(address.len());
    let mut depth = false;
    for c in address.chars() {
        match c {
            '{' => {
                depth = true;
                out.push('*');
            }
            '}' => depth = false,
            c if !depth => out.push(c),
            _ => {}
        }
    }
    out
}

fn binding(
    at: Mark,
    kind_type: &str,
    kind: &str,
    options: Option<Node>,
    routes: Option<Vec<Node>>,
    exit: Option<&str>,
) -> Node {
    let mut fields = vec![("type", scalar(at, kind_type)), ("kind", scalar(at, kind))];
    if let Some(options) = options {
        fields.push(("options", options));
    }
    if let Some(routes) = routes {
        fields.push(("routes", seq(at, routes)));
    }
    if let Some(exit) = exit {
        fields.push(("exit", scalar(at, exit)));
    }
    map(at, fields)
}

fn summary(name: &str, node: &Node) -> String {
    let field = |key: &str| node.get(key).and_then(Node::as_str);
    let mut exits: Vec<&str> = node
        .get("routes")
        .and_then(Node::as_seq)
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r.get("exit").and_then(Node::as_str))
        .chain(field("exit"))
        .collect();
    exits.dedup();
    let exits = if exits.is_empty() {
        "-".to_owned()
    } else {
        exits.join(", ")
    };
    format!(
        "{name}: {} {} → {exits}",
        field("type").unwrap_or("-"),
        field("kind").unwrap_or("-")
    )
}

fn text<'a>(node: &'a Node, key: &str) -> Result<&'a str, ConfigError> {
    node.get(key)
        .and_then(Node::as_str)
        .ok_or_else(|| ConfigError::custom_at(node.mark, format!("'{key}' is required")))
}

fn scalar(at: Mark, text: &str) -> Node {
    Node::new(
        at,
        Value::Scalar(Scalar {
            text: text.to_owned(),
            plain: false,
        }),
    )
}

fn plain(at: Mark, text: &str) -> Node {
    Node::new(
        at,
        Value::Scalar(Scalar {
            text: text.to_owned(),
            plain: true,
        }),
    )
}

fn seq(at: Mark, items: Vec<Node>) -> Node {
    Node::new(at, Value::Seq(items))
}

fn map(at: Mark, fields: Vec<(&str, Node)>) -> Node {
    Node::new(
        at,
        Value::Map(
            fields
                .into_iter()
                .map(|(k, v)| (scalar(at, k), v))
                .collect(),
        ),
    )
}

#[cfg(test)]
mod tests;

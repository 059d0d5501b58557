//! # asyncapi
//!
//! The part of an AsyncAPI 3.0 document that a proxy needs to build itself from: servers,
//! channels (with the parameters of their addresses), operations (their action, channel and
//! Zilla's `x-zilla-sse` / `x-zilla-sse-kafka` operation bindings), with `$ref`s within the
//! document followed. Everything else (info, messages, schemas, traits) is accepted and left
//! alone.
//!
//! `cargo run -p asyncapi --example describe -- FILE` prints a document's servers and
//! operations. The engine uses this crate to build `type: asyncapi` bindings.
//!
//! Text is read with the configuration loader of [`zilla_config`], so an error names
//! the line and column in the document, e.g. `12:9: operation 'receiveEvents': unknown $ref
//! '#/channels/event'`.
//!
//! ```
//! let doc = asyncapi::parse(concat!(
//!     "asyncapi: 3.0.0\n",
//!     "servers: {plain: {host: 'localhost:7114', protocol: http}}\n",
//!     "channels: {events: {address: '/events/{id}'}}\n",
//!     "operations:\n",
//!     "  receiveEvents:\n",
//!     "    action: receive\n",
//!     "    channel: {$ref: '#/channels/events'}\n",
//!     "    bindings: {x-zilla-sse: {method: GET}}\n",
//! ))
//! .unwrap();
//! let operation = &doc.operations[0];
//! assert_eq!(doc.channel(operation).address, "/events/{id}");
//! assert_eq!(doc.channel(operation).parameters, ["id"]);
//! assert!(operation.sse.is_some());
//! ```

use zilla_config::{ConfigError, Mark, Node};

/// `$ref`s followed one after another at most this many times.
const MAX_REF_DEPTH: usize = 16;

/// A document.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// `asyncapi`: the version, `3.x.y`.
    pub version: String,
    /// `servers`, in document order.
    pub servers: Vec<Server>,
    /// `channels`, in document order.
    pub channels: Vec<Channel>,
    /// `operations`, in document order.
    pub operations: Vec<Operation>,
}

/// A server.
#[derive(Clone, Debug, PartialEq)]
pub struct Server {
    /// Its name in `servers`.
    pub name: String,
    /// `host`, with its port when given (`localhost:7114`).
    pub host: String,
    /// `protocol` (`http`, `kafka`...).
    pub protocol: String,
    /// Where it is written.
    pub mark: Mark,
}

/// A channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Channel {
    /// Its name in `channels`.
    pub name: String,
    /// `address` (a path for HTTP, a topic for Kafka); the name when the address is absent.
    pub address: String,
    /// The `{name}` parameters of the address, in order.
    pub parameters: Vec<String>,
    /// Where it is written.
    pub mark: Mark,
}

/// What an operation does, from the application's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The application sends on the channel.
    Send,
    /// The application receives from the channel.
    Receive,
}

/// An operation.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    /// Its name in `operations`.
    pub name: String,
    /// `action`.
    pub action: Action,
    /// Its channel, an index into [`Document::channels`].
    pub channel: usize,
    /// `bindings.x-zilla-sse`: the operation is an SSE stream.
    pub sse: Option<SseBinding>,
    /// `bindings.x-zilla-sse-kafka.filters`: filters on the Kafka records it streams.
    pub filters: Vec<Filter>,
    /// Where it is written.
    pub mark: Mark,
}

/// `x-zilla-sse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseBinding {
    /// `method` (`GET`).
    pub method: String,
}

/// One filter of `x-zilla-sse-kafka`: a key and headers that must all match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// `key`.
    pub key: Option<String>,
    /// `headers`, name → value.
    pub headers: Vec<(String, String)>,
}

impl Document {
    /// The channel of `operation`.
    pub fn channel(&self, operation: &Operation) -> &Channel {
        &self.channels[operation.channel]
    }

    /// The operation called `name`.
    pub fn operation(&self, name: &str) -> Option<&Operation> {
        self.operations.iter().find(|o| o.name == name)
    }
}

/// Reads a document.
pub fn parse(text: &str) -> Result<Document, ConfigError> {
    let root = zilla_config::parse(text)?;
    let version_node = root
        .get("asyncapi")
        .ok_or_else(|| error(root.mark, "not an AsyncAPI document: no 'asyncapi' version"))?;
    let version = text_of(version_node, "asyncapi")?;
    if !version.starts_with("3.") {
        return Err(error(
            version_node.mark,
            format!("AsyncAPI {version} is not supported: write the document in AsyncAPI 3.x"),
        ));
    }
    let mut servers = Vec::new();
    for (key, node) in entries(&root, "servers")? {
        let node = resolve(&root, node)?;
        let name = text_of(key, "server name")?;
        let field = |field: &str| {
            node.get(field)
                .ok_or_else(|| error(node.mark, format!("server '{name}' has no '{field}'")))
                .and_then(|n| text_of(n, field))
        };
        servers.push(Server {
            host: field("host")?,
            protocol: field("protocol")?,
            name,
            mark: key.mark,
        });
    }
    let mut channels = Vec::new();
    for (key, node) in entries(&root, "channels")? {
        let node = resolve(&root, node)?;
        let name = text_of(key, "channel name")?;
        let address = match node.get("address").filter(|a| !a.is_null()) {
            Some(address) => text_of(address, "address")?,
            None => name.clone(),
        };
        channels.push(Channel {
            parameters: parameters(&address),
            address,
            name,
            mark: key.mark,
        });
    }
    let mut operations = Vec::new();
    for (key, node) in entries(&root, "operations")? {
        let node = resolve(&root, node)?;
        let name = text_of(key, "operation name")?;
        operations.push(operation(&root, &channels, name, key.mark, node)?);
    }
    Ok(Document {
        version,
        servers,
        channels,
        operations,
    })
}

fn operation(
    root: &Node,
    channels: &[Channel],
    name: String,
    mark: Mark,
    node: &Node,
) -> Result<Operation, ConfigError> {
    let action_node = node
        .get("action")
        .ok_or_else(|| error(node.mark, format!("operation '{name}' has no 'action'")))?;
    let action = match text_of(action_node, "action")?.as_str() {
        "send" => Action::Send,
        "receive" => Action::Receive,
        other => {
            return Err(error(
                action_node.mark,
                format!("operation '{name}': action '{other}' is neither 'send' nor 'receive'"),
            ));
        }
    };
    let channel_node = node
        .get("channel")
        .ok_or_else(|| error(node.mark, format!("operation '{name}' has no 'channel'")))?;
    let pointer = channel_node
        .get("$ref")
        .ok_or_else(|| {
            error(
                channel_node.mark,
                format!("operation '{name}': 'channel' must be a $ref to one of 'channels'"),
            )
        })
        .and_then(|r| Ok((r.mark, text_of(r, "$ref")?)))?;
    let channel = pointer
        .1
        .strip_prefix("#/channels/")
        .and_then(|target| channels.iter().position(|c| c.name == unescape(target)))
        .ok_or_else(|| {
            error(
                pointer.0,
                format!(
                    "operation '{name}': unknown $ref '{}' (expected '#/channels/NAME' of a channel in this document)",
                    pointer.1
                ),
            )
        })?;
    let bindings = match node.get("bindings") {
        Some(bindings) => Some(resolve(root, bindings)?),
        None => None,
    };
    let binding = |key: &str| -> Result<Option<&Node>, ConfigError> {
        bindings
            .and_then(|b| b.get(key))
            .map(|b| resolve(root, b))
            .transpose()
    };
    let sse = binding("x-zilla-sse")?
        .map(|b| -> Result<SseBinding, ConfigError> {
            let method = match b.get("method") {
                Some(m) => text_of(m, "method")?.to_ascii_uppercase(),
                None => "GET".to_owned(),
            };
            Ok(SseBinding { method })
        })
        .transpose()?;
    let mut filters = Vec::new();
    if let Some(sse_kafka) = binding("x-zilla-sse-kafka")?
        && let Some(list) = sse_kafka.get("filters")
    {
        let items = list
            .as_seq()
            .ok_or_else(|| error(list.mark, "'filters' must be a list"))?;
        for item in items {
            let mut filter = Filter {
                key: item.get("key").map(|k| text_of(k, "key")).transpose()?,
                headers: Vec::new(),
            };
            for (name, value) in item
                .get("headers")
                .and_then(Node::as_map)
                .unwrap_or_default()
            {
                filter.headers.push((
                    text_of(name, "header name")?,
                    text_of(value, "header value")?,
                ));
            }
            filters.push(filter);
        }
    }
    Ok(Operation {
        name,
        action,
        channel,
        sse,
        filters,
        mark,
    })
}

/// The entries of the top-level mapping `section` (none when absent).
fn entries<'a>(root: &'a Node, section: &str) -> Result<&'a [(Node, Node)], ConfigError> {
    match root.get(section) {
        None => Ok(&[]),
        Some(node) if node.is_null() => Ok(&[]),
        Some(node) => node
            .as_map()
            .ok_or_else(|| error(node.mark, format!("'{section}' must be a mapping"))),
    }
}

/// `node`, or what its `$ref` points to within the document (followed again when that is a
/// `$ref` too).
fn resolve<'a>(root: &'a Node, node: &'a Node) -> Result<&'a Node, ConfigError> {
    let mut node = node;
    for _ in 0..MAX_REF_DEPTH {
        let Some(reference) = node.get("$ref") else {
            return Ok(node);
        };
        let target = text_of(reference, "$ref")?;
        let unknown = || {
            error(
                reference.mark,
                format!("unknown $ref '{target}' (only '#/...' within this document is followed)"),
            )
        };
        let path = target.strip_prefix("#/").ok_or_else(unknown)?;
        node = path
            .split('/')
            .try_fold(root, |at, part| at.get(&unescape(part)))
            .ok_or_else(unknown)?;
    }
    Err(error(node.mark, "$ref chain too long (a loop?)"))
}

/// A JSON pointer part with `~1` and `~0` undone.
fn unescape(part: &str) -> String {
    part.replace("~1", "/").replace("~0", "~")
}

/// The `{name}` parameters of an address.
fn parameters(address: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = address;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push(rest[open + 1..open + close].to_owned());
        rest = &rest[open + close + 1..];
    }
    out
}

fn text_of(node: &Node, what: &str) -> Result<String, ConfigError> {
    node.as_str()
        .map(str::to_owned)
        .ok_or_else(|| error(node.mark, format!("'{what}' must be a string")))
}

fn error(mark: Mark, message: impl Into<String>) -> ConfigError {
    ConfigError::custom_at(mark, message)
}

#[cfg(test)]
mod tests;

//! The tcp binding's configuration: `options` and route conditions.

use std::net::IpAddr;

use binding_api::route::{Cidr, PortRange};
use serde::Deserialize;
use zilla_config::{ConfigError, ConfigErrorKind, Node, Value, from_node_at};

/// `options` of a tcp binding.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOptions {
    pub host: Option<String>,
    pub port: Option<Node>,
}

/// One entry of a route's `when`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    authority: Option<String>,
    cidr: Option<Node>,
    port: Option<Node>,
}

/// The parsed options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TcpOptions {
    /// `host`: where a server listens (default `0.0.0.0`), or a client's default destination.
    pub host: Option<String>,
    /// `port`: the ports a server listens on, or a client's default destination port.
    pub ports: Vec<PortRange>,
}

/// A route condition; every field given must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Condition {
    /// The host name or address the connection was made to.
    pub authority: Option<String>,
    /// The block the peer's address (server) or destination (client) must be in.
    pub cidr: Option<Cidr>,
    /// The local port (server) or destination port (client).
    pub ports: Vec<PortRange>,
}

impl Condition {
    /// Whether a connection matches: `authority` is the host it was made to, `addr` the
    /// peer (server) or destination (client) address, `port` the local (server) or
    /// destination (client) port.
    pub fn matches(&self, authority: Option<&str>, addr: Option<IpAddr>, port: u16) -> bool {
        let authority_ok = match (&self.authority, authority) {
            (None, _) => true,
            (Some(want), Some(got)) => want.eq_ignore_ascii_case(got),
            (Some(_), None) => false,
        };
        let cidr_ok = match (&self.cidr, addr) {
            (None, _) => true,
            (Some(cidr), Some(addr)) => cidr.contains(addr),
            (Some(_), None) => false,
        };
        let port_ok = self.ports.is_empty() || self.ports.iter().any(|r| r.contains(port));
        authority_ok && cidr_ok && port_ok
    }
}

pub(crate) fn parse_options(node: Option<&Node>) -> Result<TcpOptions, ConfigError> {
    let Some(node) = node else {
        return Ok(TcpOptions::default());
    };
    let raw: RawOptions = from_node_at(node, "options")?;
    let ports = match &raw.port {
        Some(port) => parse_ports(port)?,
        None => Vec::new(),
    };
    Ok(TcpOptions {
        host: raw.host,
        ports,
    })
}

pub(crate) fn parse_condition(node: &Node) -> Result<Condition, ConfigError> {
    let raw: RawCondition = from_node_at(node, "routes.when")?;
    let cidr = match &raw.cidr {
        Some(node) => Some(
            scalar(node, "a CIDR block such as 10.0.0.0/8")?
                .parse()
                .map_err(|e: binding_api::route::RouteError| {
                    ConfigError::at(node.mark, ConfigErrorKind::Custom(e.to_string()))
                })?,
        ),
        None => None,
    };
    let ports = match &raw.port {
        Some(port) => parse_ports(port)?,
        None => Vec::new(),
    };
    Ok(Condition {
        authority: raw.authority,
        cidr,
        ports,
    })
}

const PORT_EXPECTED: &str = "a port from 1 to 65535, a range \"a-b\", or a list of those";

/// `port`: a number, a range string `"a-b"`, or a list of those.
pub(crate) fn parse_ports(node: &Node) -> Result<Vec<PortRange>, ConfigError> {
    match &node.value {
        Value::Seq(items) => {
            let mut ports = Vec::with_capacity(items.len());
            for item in items {
                ports.push(parse_port(item)?);
            }
            if ports.is_empty() {
                return Err(ConfigError::at(
                    node.mark,
                    ConfigErrorKind::InvalidValue {
                        found: "an empty list".to_owned(),
                        expected: PORT_EXPECTED.to_owned(),
                    },
                ));
            }
            Ok(ports)
        }
        _ => Ok(vec![parse_port(node)?]),
    }
}

fn parse_port(node: &Node) -> Result<PortRange, ConfigError> {
    let text = scalar(node, PORT_EXPECTED)?;
    text.parse::<PortRange>().map_err(|_| {
        ConfigError::at(
            node.mark,
            ConfigErrorKind::InvalidValue {
                found: format!("'{text}'"),
                expected: PORT_EXPECTED.to_owned(),
            },
        )
        .with_help("ports are numbers from 1 to 65535; write a range as \"8000-8010\"")
    })
}

fn scalar<'a>(node: &'a Node, expected: &str) -> Result<&'a str, ConfigError> {
    let found = match &node.value {
        Value::Scalar(s) => return Ok(s.text.as_str()),
        Value::Null => "nothing",
        Value::Seq(_) => "a list",
        Value::Map(_) => "a mapping",
    };
    Err(ConfigError::at(
        node.mark,
        ConfigErrorKind::InvalidType {
            found: found.to_owned(),
            expected: expected.to_owned(),
        },
    ))
}

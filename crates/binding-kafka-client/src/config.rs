//! `options` of a kafka client binding.

use binding_api::config::{ConfigError, ConfigErrorKind, Node, Spanned, from_node_at};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOptions {
    servers: Option<Vec<Spanned<String>>>,
    sasl: Option<Node>,
    authorization: Option<Node>,
}

/// The parsed options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KafkaOptions {
    /// Bootstrap servers, `(host, port)`.
    pub servers: Vec<(String, u16)>,
}

fn parse_server(s: &Spanned<String>) -> Result<(String, u16), ConfigError> {
    let bad = || {
        ConfigError::at(
            s.mark,
            ConfigErrorKind::InvalidValue {
                found: format!("'{}'", s.value),
                expected: "host:port".to_owned(),
            },
        )
    };
    let (host, port) = s.value.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

/// Parses `options`.
pub fn parse_options(node: Option<&Node>) -> Result<KafkaOptions, ConfigError> {
    let Some(node) = node else {
        return Ok(KafkaOptions::default());
    };
    let raw: RawOptions = from_node_at(node, "options")?;
    if let Some(sasl) = raw.sasl.as_ref().or(raw.authorization.as_ref()) {
        return Err(ConfigError::at(
            sasl.mark,
            ConfigErrorKind::Custom("SASL is not supported yet by this kafka client".into()),
        )
        .with_help("connect to a PLAINTEXT listener, or remove 'sasl'/'authorization'"));
    }
    let servers = raw
        .servers
        .unwrap_or_default()
        .iter()
        .map(parse_server)
        .collect::<Result<_, _>>()?;
    Ok(KafkaOptions { servers })
}

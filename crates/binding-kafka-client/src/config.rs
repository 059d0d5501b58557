//! `options` of a kafka client binding.

use binding_api::config::{ConfigError, ConfigErrorKind, Node, Spanned, from_node_at};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOptions {
    servers: Option<Vec<Spanned<String>>>,
    sasl: Option<Spanned<RawSasl>>,
    authorization: Option<Spanned<std::collections::BTreeMap<String, RawGuarded>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGuarded {
    credentials: Spanned<RawSasl>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSasl {
    mechanism: Spanned<String>,
    username: Option<String>,
    password: Option<String>,
    token: Option<String>,
}

/// A SASL mechanism this client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// PLAIN.
    Plain,
    /// SCRAM-SHA-256.
    ScramSha256,
    /// SCRAM-SHA-512.
    ScramSha512,
}

impl Mechanism {
    /// The name Kafka uses.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// SASL credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Sasl {
    /// Mechanism.
    pub mechanism: Mechanism,
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for Sasl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sasl")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The parsed options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KafkaOptions {
    /// Bootstrap servers, `(host, port)`.
    pub servers: Vec<(String, u16)>,
    /// SASL, from `sasl` (Zilla 1.x) or `authorization` (2.x).
    pub sasl: Option<Sasl>,
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

fn parse_sasl(raw: &Spanned<RawSasl>) -> Result<Sasl, ConfigError> {
    let m = &raw.value.mechanism;
    let mechanism = match m.value.to_ascii_lowercase().as_str() {
        "plain" => Mechanism::Plain,
        "scram-sha-256" => Mechanism::ScramSha256,
        "scram-sha-512" => Mechanism::ScramSha512,
        other => {
            let help = match other {
                "scram-sha-1" | "oauthbearer" => {
                    "this client speaks plain, scram-sha-256 and scram-sha-512"
                }
                _ => "use plain, scram-sha-256 or scram-sha-512",
            };
            return Err(ConfigError::at(
                m.mark,
                ConfigErrorKind::InvalidValue {
                    found: format!("'{}'", m.value),
                    expected: "a SASL mechanism this client supports".to_owned(),
                },
            )
            .with_help(help));
        }
    };
    if raw.value.token.is_some() {
        return Err(ConfigError::at(
            raw.mark,
            ConfigErrorKind::Custom("'token' goes with mechanism oauthbearer".into()),
        ));
    }
    let missing = |field: &str| {
        ConfigError::at(
            raw.mark,
            ConfigErrorKind::MissingField {
                field: field.to_owned(),
            },
        )
    };
    Ok(Sasl {
        mechanism,
        username: raw
            .value
            .username
            .clone()
            .ok_or_else(|| missing("username"))?,
        password: raw
            .value
            .password
            .clone()
            .ok_or_else(|| missing("password"))?,
    })
}

/// Parses `options`.
pub fn parse_options(node: Option<&Node>) -> Result<KafkaOptions, ConfigError> {
    let Some(node) = node else {
        return Ok(KafkaOptions::default());
    };
    let raw: RawOptions = from_node_at(node, "options")?;
    let sasl = match (&raw.sasl, &raw.authorization) {
        (Some(_), Some(auth)) => {
            return Err(ConfigError::at(
                auth.mark,
                ConfigErrorKind::Custom(
                    "give 'sasl' (Zilla 1.x) or 'authorization', not both".into(),
                ),
            ));
        }
        (Some(sasl), None) => Some(parse_sasl(sasl)?),
        (None, Some(auth)) => {
            let mut guards = auth.value.values();
            let first = guards.next();
            if guards.next().is_some() {
                return Err(ConfigError::at(
                    auth.mark,
                    ConfigErrorKind::Custom("'authorization' takes at most one guard".into()),
                ));
            }
            first.map(|g| parse_sasl(&g.credentials)).transpose()?
        }
        (None, None) => None,
    };
    let servers = raw
        .servers
        .unwrap_or_default()
        .iter()
        .map(parse_server)
        .collect::<Result<_, _>>()?;
    Ok(KafkaOptions { servers, sasl })
}

#[cfg(test)]
mod tests {
    use super::*;
    use binding_api::config::parse;

    fn options(yaml: &str) -> Result<KafkaOptions, ConfigError> {
        let node = parse(yaml).unwrap();
        parse_options(Some(&node))
    }

    #[test]
    fn servers_and_both_sasl_spellings() {
        let o = options("servers: [localhost:9092, '[::1]:9093']").unwrap();
        assert_eq!(
            o.servers,
            vec![("localhost".into(), 9092), ("::1".into(), 9093)]
        );
        let o = options(
            "servers: [k:9092]\nsasl: {mechanism: scram-sha-256, username: u, password: p}",
        )
        .unwrap();
        assert_eq!(o.sasl.unwrap().mechanism, Mechanism::ScramSha256);
        let o = options(
            "servers: [k:9092]\nauthorization:\n  g:\n    credentials: {mechanism: plain, username: u, password: p}",
        )
        .unwrap();
        let sasl = o.sasl.unwrap();
        assert_eq!(
            (sasl.mechanism, sasl.username.as_str()),
            (Mechanism::Plain, "u")
        );
        assert!(format!("{sasl:?}").contains("..") && !format!("{sasl:?}").contains("\"p\""));
    }

    #[test]
    fn errors() {
        assert!(options("servers: [nope]").is_err());
        assert!(options("servers: [k:0]").is_err());
        assert!(options("sasl: {mechanism: scram-sha-1, username: u, password: p}").is_err());
        assert!(options("sasl: {mechanism: plain, username: u}").is_err());
        assert!(options("bogus: 1").is_err());
    }
}

//! `options` of a kafka client binding.

use serde::Deserialize;
use zilla_config::{ConfigError, ConfigErrorKind, Node, Spanned, from_node_at};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawOptions {
    servers: Option<Vec<Spanned<String>>>,
    sasl: Option<Spanned<RawSasl>>,
    authorization: Option<Spanned<std::collections::BTreeMap<String, RawGuarded>>>,
    max_topic_partitions: Option<Spanned<u64>>,
    max_partitions: Option<Spanned<u64>>,
    max_buffered_bytes: Option<Spanned<u64>>,
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
    /// What a broker may make the client hold (options of ours).
    pub limits: Limits,
}

/// Bounds on what brokers may make the client hold, whatever they answer: `options` of ours,
/// not Zilla's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `maxTopicPartitions`: the partitions one topic may have; a stream of a topic with more
    /// is refused.
    pub topic_partitions: usize,
    /// `maxPartitions`: the partitions one Metadata response may list and a worker's metadata
    /// cache may hold, over all topics.
    pub partitions: usize,
    /// `maxBufferedBytes`: response bytes a worker may be receiving from the cluster at once,
    /// over all its connections (at least 1 MiB).
    pub buffered_bytes: usize,
}

/// Default of `maxTopicPartitions`.
pub const DEFAULT_MAX_TOPIC_PARTITIONS: usize = 10_000;
/// Default of `maxPartitions`.
pub const DEFAULT_MAX_PARTITIONS: usize = 100_000;
/// Default of `maxBufferedBytes`: two of the largest responses accepted.
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 256 * 1024 * 1024;
/// The smallest `maxBufferedBytes`: a fetch asks for up to 4 MiB, but one must fit.
const MIN_BUFFERED_BYTES: u64 = 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            topic_partitions: DEFAULT_MAX_TOPIC_PARTITIONS,
            partitions: DEFAULT_MAX_PARTITIONS,
            buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
        }
    }
}

/// `value` of an option, if at least `min`.
fn at_least(value: &Option<Spanned<u64>>, min: u64, default: usize) -> Result<usize, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    usize::try_from(value.value)
        .ok()
        .filter(|_| value.value >= min)
        .ok_or_else(|| {
            ConfigError::at(
                value.mark,
                ConfigErrorKind::InvalidValue {
                    found: value.value.to_string(),
                    expected: format!("a number of at least {min}"),
                },
            )
        })
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
    let limits = Limits {
        topic_partitions: at_least(&raw.max_topic_partitions, 1, DEFAULT_MAX_TOPIC_PARTITIONS)?,
        partitions: at_least(&raw.max_partitions, 1, DEFAULT_MAX_PARTITIONS)?,
        buffered_bytes: at_least(
            &raw.max_buffered_bytes,
            MIN_BUFFERED_BYTES,
            DEFAULT_MAX_BUFFERED_BYTES,
        )?,
    };
    Ok(KafkaOptions {
        servers,
        sasl,
        limits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use zilla_config::parse;

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
        assert!(options("maxPartitions: 0").is_err());
        let err = options("servers: [k:9092]\nmaxBufferedBytes: 1000").unwrap_err();
        assert!(err.to_string().contains("1048576"), "{err}");
    }

    #[test]
    fn limits() {
        assert_eq!(
            options("servers: [k:9092]").unwrap().limits,
            Limits::default()
        );
        let o = options(
            "servers: [k:9092]\nmaxTopicPartitions: 64\nmaxPartitions: 1000\nmaxBufferedBytes: 16777216",
        )
        .unwrap();
        assert_eq!(
            o.limits,
            Limits {
                topic_partitions: 64,
                partitions: 1000,
                buffered_bytes: 16 << 20,
            }
        );
    }
}

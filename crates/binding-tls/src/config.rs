//! The tls binding's configuration: `options` and route conditions.

use binding_api::route::PortRange;
use serde::Deserialize;
use zilla_config::{ConfigError, ConfigErrorKind, Node, Value, from_node_at};

/// `options.mutual`: whether a server asks clients for a certificate.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mutual {
    /// Clients must present a certificate the trust store vouches for.
    Required,
    /// Clients may present one; if they do it must be trusted.
    Requested,
    /// Clients are not asked.
    None,
}

/// `options.version`: the protocol versions allowed.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub enum Version {
    /// Any version this binding speaks: TLS 1.2 and 1.3.
    #[serde(rename = "TLS")]
    Any,
    /// TLS 1.2 only.
    #[serde(rename = "TLSv1.2")]
    Tls12,
    /// TLS 1.3 only.
    #[serde(rename = "TLSv1.3")]
    Tls13,
}

/// `options` of a tls binding.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsOptions {
    /// Protocol versions (default: TLS 1.2 and 1.3).
    pub version: Option<Version>,
    /// Aliases of keys in the vault's `keys` store.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Aliases of certificates in the vault's `trust` store.
    #[serde(default)]
    pub trust: Vec<String>,
    /// Whether a client also trusts the well-known public authorities.
    pub trustcacerts: Option<bool>,
    /// Server names: a server accepts only these, a client sends the first.
    #[serde(default)]
    pub sni: Vec<String>,
    /// Application protocols, in order of preference.
    #[serde(default)]
    pub alpn: Vec<String>,
    /// Client certificates (server only).
    pub mutual: Option<Mutual>,
    /// Aliases of authorities in the vault's `signers` store that sign client certificates.
    #[serde(default)]
    pub signers: Vec<String>,
    /// Guard-based authorization; not supported.
    pub authorization: Option<Node>,
}

impl TlsOptions {
    /// `mutual` with Zilla's default: `required` when `trust` is set, else `none`.
    pub fn mutual(&self) -> Mutual {
        self.mutual.unwrap_or(if self.trust.is_empty() {
            Mutual::None
        } else {
            Mutual::Required
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    authority: Option<String>,
    alpn: Option<String>,
    port: Option<Node>,
}

/// A route condition; every field given must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Condition {
    /// The server name the client asked for (SNI).
    pub authority: Option<String>,
    /// The negotiated application protocol.
    pub alpn: Option<String>,
    /// The local port of the TCP connection underneath.
    pub ports: Vec<PortRange>,
}

impl Condition {
    /// Whether a negotiated connection matches.
    pub fn matches(
        &self,
        server_name: Option<&str>,
        alpn: Option<&str>,
        port: Option<u16>,
    ) -> bool {
        let alpn: &[&[u8]] = match alpn {
            Some(alpn) => &[alpn.as_bytes()],
            None => &[],
        };
        self.matches_offer(server_name, alpn, port)
    }

    /// Whether a hello matches, not yet negotiated (`kind: proxy`): `alpn` matches when the
    /// client offers it.
    pub fn matches_offer(
        &self,
        server_name: Option<&str>,
        offered: &[&[u8]],
        port: Option<u16>,
    ) -> bool {
        let authority_ok = match (&self.authority, server_name) {
            (None, _) => true,
            (Some(want), Some(got)) => want.eq_ignore_ascii_case(got),
            (Some(_), None) => false,
        };
        let alpn_ok = self
            .alpn
            .as_ref()
            .is_none_or(|want| offered.contains(&want.as_bytes()));
        let port_ok =
            self.ports.is_empty() || port.is_some_and(|p| self.ports.iter().any(|r| r.contains(p)));
        authority_ok && alpn_ok && port_ok
    }
}

/// Parses `options`.
pub(crate) fn parse_options(node: Option<&Node>) -> Result<TlsOptions, ConfigError> {
    match node {
        None => Ok(TlsOptions::default()),
        Some(node) => {
            let options: TlsOptions = from_node_at(node, "options")?;
            if let Some(auth) = &options.authorization {
                return Err(ConfigError::at(
                    auth.mark,
                    ConfigErrorKind::Custom(
                        "tls 'authorization' (guarded client certificates) is not supported"
                            .into(),
                    ),
                )
                .with_help("remove 'authorization'; use 'mutual' with 'trust' to require client certificates"));
            }
            Ok(options)
        }
    }
}

/// Parses one entry of a route's `when`.
pub(crate) fn parse_condition(node: &Node) -> Result<Condition, ConfigError> {
    let raw: RawCondition = from_node_at(node, "routes.when")?;
    let ports = match &raw.port {
        None => Vec::new(),
        Some(node) => match &node.value {
            Value::Seq(items) => items.iter().map(parse_port).collect::<Result<_, _>>()?,
            _ => vec![parse_port(node)?],
        },
    };
    Ok(Condition {
        authority: raw.authority,
        alpn: raw.alpn,
        ports,
    })
}

fn parse_port(node: &Node) -> Result<PortRange, ConfigError> {
    let expected = "a port from 1 to 65535 or a range \"a-b\"";
    let text = match &node.value {
        Value::Scalar(s) => s.text.as_str(),
        _ => "",
    };
    text.parse::<PortRange>().map_err(|_| {
        ConfigError::at(
            node.mark,
            ConfigErrorKind::InvalidValue {
                found: format!("'{text}'"),
                expected: expected.to_owned(),
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use zilla_config::parse;

    #[test]
    fn options_and_conditions() {
        let root =
            parse("keys: [localhost]\nsni: [localhost]\nalpn: [http/1.1, h2]\n").expect("yaml");
        let options = parse_options(Some(&root)).expect("options");
        assert_eq!(options.keys, ["localhost"]);
        assert_eq!(options.alpn, ["http/1.1", "h2"]);
        assert_eq!(options.mutual(), Mutual::None);
        let when =
            parse("authority: localhost\nalpn: h2\nport: [7143, \"8000-8001\"]\n").expect("yaml");
        let condition = parse_condition(&when).expect("condition");
        assert!(condition.matches(Some("LOCALHOST"), Some("h2"), Some(8001)));
        assert!(!condition.matches(Some("localhost"), Some("http/1.1"), Some(7143)));
        assert!(!condition.matches(None, Some("h2"), Some(7143)));
        assert!(!condition.matches(Some("localhost"), Some("h2"), Some(7114)));
    }

    #[test]
    fn unknown_option_and_authorization_refused() {
        let root = parse("kyes: [a]\n").expect("yaml");
        assert!(parse_options(Some(&root)).is_err());
        let root = parse("authorization: {g: {}}\n").expect("yaml");
        let err = parse_options(Some(&root)).expect_err("authorization");
        assert!(err.to_string().contains("not supported"), "{err}");
        let root = parse("mutual: requested\ntrust: [ca]\n").expect("yaml");
        assert_eq!(
            parse_options(Some(&root)).expect("options").mutual(),
            Mutual::Requested
        );
    }
}

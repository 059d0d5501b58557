//! The options of `kind: client`: `versions` and `overrides`.

use serde::Deserialize;
use zilla_config::{ConfigError, Node, from_node_at};

use crate::config::{Version, checked_versions};
use crate::overrides::{Overrides, RawOverrides};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClientOptions {
    versions: Option<Vec<Version>>,
    overrides: Option<RawOverrides>,
}

/// The parsed `options` of an http client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpClientOptions {
    /// `versions`, default both: HTTP/1.1 unless only `h2` is listed (prior knowledge) or
    /// a tls client underneath negotiated `h2` by ALPN.
    pub versions: Vec<Version>,
    /// `overrides`: request headers set on every request sent upstream.
    pub overrides: Overrides,
}

impl Default for HttpClientOptions {
    fn default() -> Self {
        HttpClientOptions {
            versions: vec![Version::Http11, Version::H2],
            overrides: Overrides::default(),
        }
    }
}

impl HttpClientOptions {
    /// Whether `version` is enabled.
    pub fn speaks(&self, version: Version) -> bool {
        self.versions.contains(&version)
    }
}

/// Parses an http client's `options`.
pub(crate) fn parse_client_options(node: Option<&Node>) -> Result<HttpClientOptions, ConfigError> {
    let Some(node) = node else {
        return Ok(HttpClientOptions::default());
    };
    let raw: RawClientOptions = from_node_at(node, "options")?;
    let mut options = HttpClientOptions::default();
    if let Some(versions) = raw.versions {
        options.versions = checked_versions(versions, node)?;
    }
    if let Some(raw) = raw.overrides {
        options.overrides = Overrides::parse(raw, "options.overrides", &[])?;
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use zilla_config::parse;

    use super::*;

    fn options(yaml: &str) -> Result<HttpClientOptions, String> {
        parse_client_options(Some(&parse(yaml).unwrap())).map_err(|e| e.to_string())
    }

    #[test]
    fn versions_and_overrides() {
        let o = options("versions: [h2]\noverrides:\n  :authority: upstream:8001\n").unwrap();
        assert_eq!(o.versions, vec![Version::H2]);
        assert!(!o.overrides.is_empty());
        assert_eq!(
            parse_client_options(None).unwrap(),
            HttpClientOptions::default()
        );
    }

    #[test]
    fn bad_options_say_where_and_what() {
        let err = options("versions: [http/2]\n").unwrap_err();
        assert!(err.starts_with("1:") && err.contains("http/2"), "{err}");
        let err = options("access-control: {policy: cross-origin}\n").unwrap_err();
        assert!(
            err.starts_with("1:1: unknown option 'access-control'")
                && err.contains("versions, overrides"),
            "{err}"
        );
        let err = options("overrides:\n  connection: close\n").unwrap_err();
        assert!(
            err.starts_with("2:3: 'connection' is connection-specific"),
            "{err}"
        );
        assert!(options("versions: []\n").is_err());
    }
}

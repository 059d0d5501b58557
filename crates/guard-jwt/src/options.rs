//! A `jwt` guard's `options`, as Zilla spells them, plus a JWKS file for `keys`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::value::SeqAccessDeserializer;
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::jwk::Jwk;

/// `options` of a `type: jwt` guard.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JwtOptions {
    /// The `iss` every token must have; unchecked when absent.
    pub issuer: Option<String>,
    /// A value the token's `aud` must be or include; unchecked when absent.
    pub audience: Option<String>,
    /// The keys that verify signatures.
    pub keys: KeySource,
    /// The claim holding the roles (default `scope`).
    #[serde(default = "default_roles")]
    pub roles: String,
    /// The claim holding the identity (default `sub`).
    #[serde(default = "default_identity")]
    pub identity: String,
    /// Seconds before `exp` at which a stream is challenged for a fresh token.
    pub challenge: Option<u32>,
    /// Attribute name → the claim holding its value.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

fn default_roles() -> String {
    "scope".to_owned()
}

fn default_identity() -> String {
    "sub".to_owned()
}

impl JwtOptions {
    /// Options with `keys` and Zilla's defaults for the rest (no issuer or audience check,
    /// roles from `scope`, identity from `sub`, no challenge, no attributes).
    pub fn new(keys: KeySource) -> JwtOptions {
        JwtOptions {
            issuer: None,
            audience: None,
            keys,
            roles: default_roles(),
            identity: default_identity(),
            challenge: None,
            attributes: BTreeMap::new(),
        }
    }

    /// Resolves a relative JWKS file path against `base` (the configuration's directory).
    pub fn relative_to(mut self, base: &Path) -> JwtOptions {
        if let KeySource::File(path) = &mut self.keys
            && path.is_relative()
        {
            *path = base.join(&*path);
        }
        self
    }
}

/// Where the keys come from: `keys: [JWK, …]` (Zilla's form) or `keys: path/to/jwks.json`
/// (ours: a JWK Set file, read when the guard is built and again on
/// [`reload`](crate::JwtGuard::reload)).
///
/// Zilla also takes a JWKS URL there; zilla-rs fetches nothing, so an `http://` or
/// `https://` value is a configuration error asking for a file instead.
#[derive(Clone, Debug, PartialEq)]
pub enum KeySource {
    /// JWKs written in the configuration.
    Inline(Vec<Jwk>),
    /// A JWK Set file (`{"keys": [...]}`).
    File(PathBuf),
}

impl<'de> Deserialize<'de> for KeySource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<KeySource, D::Error> {
        deserializer.deserialize_any(KeySourceVisitor)
    }
}

struct KeySourceVisitor;

impl<'de> Visitor<'de> for KeySourceVisitor {
    type Value = KeySource;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of JWKs or the path of a JWKS file")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<KeySource, E> {
        if value.starts_with("http://") || value.starts_with("https://") {
            return Err(E::custom(
                "JWKS URLs are not fetched: save the JWK Set to a file and give its path",
            ));
        }
        Ok(KeySource::File(PathBuf::from(value)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<KeySource, A::Error> {
        Vec::deserialize(SeqAccessDeserializer::new(seq)).map(KeySource::Inline)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn defaults_are_zillas() {
        let options: JwtOptions = serde_json::from_value(json!({"keys": []})).unwrap();
        assert_eq!(options, JwtOptions::new(KeySource::Inline(Vec::new())));
        assert_eq!(
            (options.roles.as_str(), options.identity.as_str()),
            ("scope", "sub")
        );
    }

    #[test]
    fn keys_are_a_list_of_jwks_or_a_file_but_not_a_url() {
        let inline: JwtOptions = serde_json::from_value(json!({"keys": [
            {"kty": "EC", "kid": "k", "crv": "P-256", "x": "AA", "y": "AA", "use": "sig",
             "x5t": "ignored"}
        ]}))
        .unwrap();
        assert!(
            matches!(&inline.keys, KeySource::Inline(jwks) if jwks[0].kid.as_deref() == Some("k"))
        );
        let file: JwtOptions = serde_json::from_value(json!({"keys": "jwks.json"})).unwrap();
        assert_eq!(file.keys, KeySource::File("jwks.json".into()));
        let url = serde_json::from_value::<JwtOptions>(json!({"keys": "https://idp/jwks"}));
        assert!(
            url.unwrap_err()
                .to_string()
                .contains("save the JWK Set to a file")
        );
        let number = serde_json::from_value::<JwtOptions>(json!({"keys": 5}));
        assert!(
            number
                .unwrap_err()
                .to_string()
                .contains("a list of JWKs or the path")
        );
    }

    #[test]
    fn unknown_options_are_refused() {
        let typo = serde_json::from_value::<JwtOptions>(json!({"keys": [], "issuers": "x"}));
        assert!(
            typo.unwrap_err()
                .to_string()
                .contains("unknown field `issuers`")
        );
    }

    #[test]
    fn a_relative_jwks_path_is_resolved_against_the_base() {
        let relative = JwtOptions::new(KeySource::File("keys/jwks.json".into()));
        let resolved = relative.relative_to(Path::new("/etc/zilla"));
        assert_eq!(
            resolved.keys,
            KeySource::File("/etc/zilla/keys/jwks.json".into())
        );
        let absolute = JwtOptions::new(KeySource::File("/jwks.json".into()));
        let kept = absolute.relative_to(Path::new("/etc/zilla"));
        assert_eq!(kept.keys, KeySource::File("/jwks.json".into()));
    }
}

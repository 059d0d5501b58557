//! The `guards` section built: each `type: jwt` guard becomes a [`NamedJwtGuard`] that the
//! bindings verify credentials with (`BindingConfig::guards`). Keys are checked here, so a
//! bad key stops `zilla validate` and `zilla start` with its position and the fix. Guards
//! whose keys come from a JWKS file are also listed for [`JwksFiles::watch`] to reload.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use binding_api::guard::Guard as BuiltGuard;
use guard_jwt::{JwtGuard, JwtOptions, KeySource, KeysError, NamedJwtGuard};
use zilla_config::factory::RouteConfig;
use zilla_config::{ConfigError, Mark, Node, from_node};

use crate::build::defined_help;
use crate::jwks_watch::{FileState, JwksFiles};
use crate::model::{Guard, GuardType, InlineGuardOptions};

/// The configuration's guards: every name, and those that verify credentials, built.
pub(crate) struct Guards {
    names: Vec<String>,
    verifying: BTreeMap<String, Arc<dyn BuiltGuard>>,
    jwks_files: JwksFiles,
}

impl Guards {
    /// Builds the guards that verify credentials (`jwt`); the options of the others
    /// (`inline`) are checked and left unbuilt. Relative JWKS file paths are relative to
    /// `base`.
    pub(crate) fn build(
        guards: &[(String, Guard)],
        base: &Path,
        previous: Option<&JwksFiles>,
    ) -> Result<Guards, ConfigError> {
        let mut verifying: BTreeMap<String, Arc<dyn BuiltGuard>> = BTreeMap::new();
        let mut jwks_files = JwksFiles::default();
        for (name, guard) in guards {
            match guard.guard_type {
                GuardType::Jwt => {
                    let options: JwtOptions = from_node(&guard.options)?;
                    let options = options.relative_to(base);
                    let jwt = match &options.keys {
                        KeySource::File(path) => {
                            let (jwt, before) =
                                match previous.and_then(|files| files.reusable(name, &options)) {
                                    // Taken over with the keys it has (the watch reloads them).
                                    Some(reused) => reused,
                                    // Seen before the guard reads it: a write meanwhile reloads.
                                    None => {
                                        let before = FileState::of(path);
                                        let jwt = build_jwt(name, options.clone(), &guard.options)?;
                                        (Arc::new(jwt), before)
                                    }
                                };
                            jwks_files.add(jwt.clone(), options.clone(), path.clone(), before);
                            jwt
                        }
                        KeySource::Inline(_) => Arc::new(build_jwt(name, options, &guard.options)?),
                    };
                    verifying.insert(name.clone(), jwt);
                }
                GuardType::Inline => {
                    let _: InlineGuardOptions = from_node(&guard.options)?;
                }
            }
        }
        Ok(Guards {
            names: guards.iter().map(|(name, _)| name.clone()).collect(),
            verifying,
            jwks_files,
        })
    }

    /// The guards whose keys come from a JWKS file, to reload when it changes.
    pub(crate) fn jwks_files(&self) -> &JwksFiles {
        &self.jwks_files
    }

    /// The guards that verify credentials, by name, for the bindings.
    pub(crate) fn verifying(&self) -> &BTreeMap<String, Arc<dyn BuiltGuard>> {
        &self.verifying
    }

    /// Checks that every guard a route's `guarded` names is defined and verifies
    /// credentials.
    pub(crate) fn check_route(&self, route: &RouteConfig) -> Result<(), ConfigError> {
        for guard in route.guarded.keys() {
            if !self.names.contains(guard) {
                let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
                return Err(ConfigError::custom_at(
                    route.mark,
                    format!("guard '{guard}' is not defined"),
                )
                .with_help(defined_help("guards", &names)));
            }
            if !self.verifying.contains_key(guard) {
                return Err(ConfigError::custom_at(
                    route.mark,
                    format!(
                        "guard '{guard}' verifies no credentials (zilla-rs guards routes with \
                         jwt guards only)"
                    ),
                )
                .with_help("guard the route with a guard of type jwt"));
            }
        }
        Ok(())
    }
}

/// The guard `options` (read from `node`, resolved against the configuration's directory)
/// make, or the key error at the key.
fn build_jwt(name: &str, options: JwtOptions, node: &Node) -> Result<NamedJwtGuard, ConfigError> {
    let guard = JwtGuard::new(options).map_err(|err| {
        let keys = node.get("keys").unwrap_or(node);
        ConfigError::custom_at(key_mark(keys, &err), format!("guard '{name}': {err}"))
            .with_help(keys_help(&err))
    })?;
    Ok(NamedJwtGuard::new(name, guard))
}

/// Where a key error points: the inline key it names (by `kid`, or `#N` for the N-th key
/// counted from 0), else the `keys` value.
fn key_mark(keys: &Node, err: &KeysError) -> Mark {
    let named = match err {
        KeysError::InvalidKey { key, .. } => key.as_str(),
        KeysError::DuplicateKid { kid, .. } => kid.as_str(),
        _ => return keys.mark,
    };
    let Some(entries) = keys.as_seq() else {
        return keys.mark;
    };
    let by_kid = || {
        entries
            .iter()
            .rfind(|jwk| jwk.get("kid").and_then(Node::as_str) == Some(named))
    };
    let by_index = || {
        let index: usize = named.strip_prefix('#')?.parse().ok()?;
        entries.get(index)
    };
    by_kid().or_else(by_index).map_or(keys.mark, |jwk| jwk.mark)
}

/// How to fix a key error.
fn keys_help(err: &KeysError) -> &'static str {
    match err {
        KeysError::Read { .. } => {
            "give the JWK Set file's path, relative to the configuration's directory"
        }
        KeysError::Json { .. } => "the file must hold a JWK Set: {\"keys\": [<JWK>, ...]}",
        KeysError::InvalidKey { .. } => {
            "give the issuer's public JWK: kty RSA with n and e, or kty EC with crv, x and y"
        }
        KeysError::DuplicateKid { .. } => "give each key its own kid",
        KeysError::NoKeys { .. } => "add a signing key (\"use\": \"sig\", or no \"use\")",
    }
}

#[cfg(test)]
mod tests {
    use zilla_config::parse;

    use super::*;
    use crate::model;

    const POINT: &str = "x: f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\n      \
                         y: x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    fn guards(yaml: &str) -> Result<BTreeMap<String, Arc<dyn BuiltGuard>>, String> {
        let root = parse(yaml).expect("yaml");
        let parsed: Vec<(String, Guard)> =
            model::named(Some(&root), "guard").map_err(|e| e.to_string())?;
        let built =
            Guards::build(&parsed, Path::new("/etc/zilla"), None).map_err(|e| e.to_string())?;
        Ok(built.verifying)
    }

    #[test]
    fn jwt_guards_are_built_by_name_and_inline_ones_only_checked() {
        let built = guards(&format!(
            "authn_jwt:\n  type: jwt\n  options:\n    keys:\n    - kty: EC\n      crv: P-256\n      \
             kid: k\n      {POINT}\nkafka:\n  type: inline\n  options: {{identity: u}}\n"
        ))
        .unwrap();
        assert_eq!(built.keys().collect::<Vec<_>>(), ["authn_jwt"]);
        assert_eq!(built["authn_jwt"].name(), "authn_jwt");
        let err = guards("kafka:\n  type: inline\n  options: {password: p}\n").unwrap_err();
        assert!(err.starts_with("3:13: unknown key 'password'"), "{err}");
    }

    #[test]
    fn a_bad_key_points_at_the_key_with_the_guard_and_the_fix() {
        let err = guards(&format!(
            "g:\n  type: jwt\n  options:\n    keys:\n    - kty: EC\n      crv: P-256\n      \
             kid: good\n      {POINT}\n    - kty: oct\n      kid: secret\n      k: AAAA\n"
        ))
        .unwrap_err();
        assert!(
            err.starts_with("10:7: guard 'g': inline keys: key secret: is symmetric"),
            "{err}"
        );
        assert!(
            err.ends_with(
                "; give the issuer's public JWK: kty RSA with n and e, or kty EC with crv, x and y"
            ),
            "{err}"
        );
        let err = guards("g:\n  type: jwt\n  options:\n    keys:\n    - {kty: RSA}\n").unwrap_err();
        assert!(
            err.starts_with("5:7: guard 'g': inline keys: key #0: "),
            "{err}"
        );
    }

    #[test]
    fn a_missing_jwks_file_is_read_against_the_configuration_directory() {
        let err = guards("g:\n  type: jwt\n  options:\n    keys: keys/jwks.json\n").unwrap_err();
        assert!(
            err.starts_with("4:11: guard 'g': cannot read JWKS file /etc/zilla/keys/jwks.json"),
            "{err}"
        );
        assert!(
            err.contains("relative to the configuration's directory"),
            "{err}"
        );
    }

    #[test]
    fn options_are_guard_jwts_own() {
        let err =
            guards("g:\n  type: jwt\n  options:\n    keys: []\n    issuers: x\n").unwrap_err();
        assert!(err.starts_with("5:5: unknown key 'issuers'"), "{err}");
        let err = guards("g:\n  type: jwt\n  options:\n    keys: https://idp/jwks\n").unwrap_err();
        assert!(err.contains("JWKS URLs are not fetched"), "{err}");
        let err = guards("g:\n  type: jwt\n  options:\n    keys: []\n").unwrap_err();
        assert!(
            err.contains("guard 'g': inline keys: no signing key"),
            "{err}"
        );
        let err = guards("g:\n  type: basic\n  options: {}\n").unwrap_err();
        assert!(err.contains("basic"), "{err}");
    }
}

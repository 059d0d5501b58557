//! Zilla expressions `${{ resolver.NAME }}` inside scalar values.
//!
//! Zilla's pattern is `\$\{\{\s*([^\s\}]*)\.([^\s\}]*)\s*\}\}`: the resolver is everything up to
//! the last `.` of the word, the name what follows. Mapping keys are left alone. A plain scalar
//! stays plain after substitution, so `port: ${{ env.PORT }}` reads as an integer.

use super::error::{ConfigError, ConfigErrorKind};
use super::yaml::{Node, Plain, Value, display_key, resolve_plain};

/// What a [`Resolver`] makes of `${{ resolver.name }}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The replacement text.
    Value(String),
    /// The resolver exists but the name is not set.
    Unset,
    /// There is no such resolver.
    UnknownResolver,
    /// The value exists but cannot be used; the message says why.
    Invalid(String),
}

/// Resolves expressions; [`env_resolver`] is the one Zilla configurations use.
pub trait Resolver {
    /// Resolves `${{ resolver.name }}`.
    fn resolve(&self, resolver: &str, name: &str) -> Resolution;
}

impl<F: Fn(&str, &str) -> Resolution> Resolver for F {
    fn resolve(&self, resolver: &str, name: &str) -> Resolution {
        self(resolver, name)
    }
}

/// The `env` resolver over the process environment.
#[must_use]
pub fn env_resolver() -> impl Resolver {
    env_resolver_from(|name| {
        // Names std::env cannot look up (and may panic on) are simply unset.
        if name.is_empty() || name.contains(['=', '\0']) {
            return Ok(None);
        }
        match std::env::var(name) {
            Ok(value) => Ok(Some(value)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(e @ std::env::VarError::NotUnicode(_)) => Err(e.to_string()),
        }
    })
}

/// The `env` resolver over any lookup (`Ok(None)`: unset; `Err`: unusable, e.g. not UTF-8).
pub fn env_resolver_from<L>(lookup: L) -> impl Resolver
where
    L: Fn(&str) -> Result<Option<String>, String>,
{
    move |resolver: &str, name: &str| {
        if resolver != "env" {
            return Resolution::UnknownResolver;
        }
        match lookup(name) {
            Ok(Some(value)) => Resolution::Value(value),
            Ok(None) => Resolution::Unset,
            Err(reason) => Resolution::Invalid(format!("environment variable {name}: {reason}")),
        }
    }
}

/// One `${{ a.b }}` found in a text.
struct Expression<'t> {
    start: usize,
    end: usize,
    resolver: &'t str,
    name: &'t str,
}

/// Java's `\s`.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The expression starting exactly at `start`, if the pattern matches there.
fn match_at(text: &str, start: usize) -> Option<Expression<'_>> {
    let bytes = text.as_bytes();
    let mut i = start + 3;
    while i < bytes.len() && is_space(bytes[i]) {
        i += 1;
    }
    let word_start = i;
    while i < bytes.len() && !is_space(bytes[i]) && bytes[i] != b'}' {
        i += 1;
    }
    let word = &text[word_start..i];
    while i < bytes.len() && is_space(bytes[i]) {
        i += 1;
    }
    if !text[i..].starts_with("}}") {
        return None;
    }
    let dot = word.rfind('.')?;
    Some(Expression {
        start,
        end: i + 2,
        resolver: &word[..dot],
        name: &word[dot + 1..],
    })
}

/// All expressions in a text, left to right, not overlapping (like `Matcher.find`).
fn expressions(text: &str) -> Vec<Expression<'_>> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = text[from..].find("${{") {
        let start = from + offset;
        match match_at(text, start) {
            Some(expr) => {
                from = expr.end;
                found.push(expr);
            }
            None => from = start + 1,
        }
    }
    found
}

/// Replaces the expressions in one text.
fn substitute_text(text: &str, resolver: &dyn Resolver) -> Result<Option<String>, ConfigErrorKind> {
    let found = expressions(text);
    if found.is_empty() {
        return Ok(None);
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for expr in found {
        out.push_str(&text[copied..expr.start]);
        match resolver.resolve(expr.resolver, expr.name) {
            Resolution::Value(value) => out.push_str(&value),
            Resolution::Unset => {
                return Err(ConfigErrorKind::UnresolvedVariable {
                    resolver: expr.resolver.to_owned(),
                    name: expr.name.to_owned(),
                });
            }
            Resolution::UnknownResolver => {
                return Err(ConfigErrorKind::UnknownResolver {
                    resolver: expr.resolver.to_owned(),
                });
            }
            Resolution::Invalid(reason) => return Err(ConfigErrorKind::Custom(reason)),
        }
        copied = expr.end;
    }
    out.push_str(&text[copied..]);
    Ok(Some(out))
}

/// Replaces every `${{ resolver.NAME }}` in the scalar values of the tree (not in keys).
///
/// A scalar may hold several expressions and other text around them. A plain scalar stays
/// plain, so it is typed after substitution (an empty result reads as null).
///
/// # Errors
/// The first unset variable or unknown resolver, at the scalar's position, with its path; the
/// binding is set when the scalar is under `bindings.<name>`.
pub fn substitute(node: &mut Node, resolver: &dyn Resolver) -> Result<(), ConfigError> {
    // Explicit stack of (node, path); the path is built only when an error is reported.
    let mut todo: Vec<(&mut Node, Vec<String>)> = vec![(node, Vec::new())];
    while let Some((node, path)) = todo.pop() {
        let mark = node.mark;
        if let Value::Scalar(scalar) = &mut node.value {
            let replaced = substitute_text(&scalar.text, resolver).map_err(|kind| {
                let mut err = ConfigError::at(mark, kind);
                if path.len() >= 2 && path[0] == "bindings" {
                    err = err.with_binding(path[1].clone());
                }
                if matches!(err.kind, ConfigErrorKind::UnresolvedVariable { .. }) {
                    err = err.with_help("set it in the environment, or replace the expression");
                }
                err.with_path(render(&path))
            })?;
            if let Some(text) = replaced {
                let null = scalar.plain && resolve_plain(&text) == Plain::Null;
                scalar.text = text;
                if null {
                    node.value = Value::Null;
                }
            }
            continue;
        }
        match &mut node.value {
            Value::Null | Value::Scalar(_) => {}
            Value::Seq(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    let mut p = path.clone();
                    p.push(format!("[{i}]"));
                    todo.push((item, p));
                }
            }
            Value::Map(entries) => {
                for (key, value) in entries.iter_mut() {
                    let mut p = path.clone();
                    p.push(display_key(key));
                    todo.push((value, p));
                }
            }
        }
    }
    Ok(())
}

fn render(path: &[String]) -> String {
    let mut out = String::new();
    for segment in path {
        if !out.is_empty() && !segment.starts_with('[') {
            out.push('.');
        }
        out.push_str(segment);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::yaml::{Mark, parse};

    fn vars(resolver: &str, name: &str) -> Resolution {
        match (resolver, name) {
            ("env", "PORT") => Resolution::Value("7114".into()),
            ("env", "HOST") => Resolution::Value("localhost".into()),
            ("env", "EMPTY") => Resolution::Value(String::new()),
            ("env", _) => Resolution::Unset,
            _ => Resolution::UnknownResolver,
        }
    }

    fn scalar(node: &Node) -> (&str, bool) {
        match &node.value {
            Value::Scalar(s) => (&s.text, s.plain),
            other => panic!("not a scalar: {other:?}"),
        }
    }

    #[test]
    fn pattern_like_zillas_regex() {
        let found =
            expressions("${{env.A}} x ${{ env.B }}${{  a.b.c\t}} ${{env.X y}} ${{ .}} ${{env.Z}");
        let parts: Vec<_> = found.iter().map(|e| (e.resolver, e.name)).collect();
        assert_eq!(
            parts,
            vec![("env", "A"), ("env", "B"), ("a.b", "c"), ("", "")]
        );
        assert!(expressions("${{ noDot }}").is_empty());
        assert!(expressions("$${{").is_empty());
    }

    #[test]
    fn substitutes_values_not_keys() {
        let mut root = parse(
            "${{env.HOST}}: a\nport: ${{ env.PORT }}\nurl: \"http://${{env.HOST}}:${{env.PORT}}/x\"\nempty: ${{env.EMPTY}}\n",
        )
        .unwrap();
        substitute(&mut root, &vars).unwrap();
        let map = root.as_map().unwrap();
        assert_eq!(scalar(&map[0].0), ("${{env.HOST}}", true));
        assert_eq!(scalar(&map[1].1), ("7114", true));
        assert_eq!(scalar(&map[2].1), ("http://localhost:7114/x", false));
        assert!(map[3].1.is_null());
    }

    #[test]
    fn unset_variable_is_reported_at_the_scalar() {
        let mut root = parse(
            "bindings:\n  vault0:\n    options:\n      keys:\n        password: ${{ env.KEYSTORE_PASSWORD }}\n",
        )
        .unwrap();
        let err = substitute(&mut root, &vars).unwrap_err();
        assert_eq!(
            err.mark,
            Some(Mark {
                line: 5,
                column: 19
            })
        );
        assert_eq!(err.binding.as_deref(), Some("vault0"));
        assert_eq!(
            err.path.as_deref(),
            Some("bindings.vault0.options.keys.password")
        );
        assert_eq!(
            err.to_string(),
            "5:19: binding 'vault0': environment variable KEYSTORE_PASSWORD is not set; \
             set it in the environment, or replace the expression"
        );
    }

    #[test]
    fn unknown_resolver_is_named() {
        let mut root = parse("a:\n  - x\n  - ${{ vault.secret }}\n").unwrap();
        let err = substitute(&mut root, &vars).unwrap_err();
        assert_eq!(
            err.kind,
            ConfigErrorKind::UnknownResolver {
                resolver: "vault".into()
            }
        );
        assert_eq!(err.mark, Some(Mark { line: 3, column: 5 }));
        assert_eq!(err.path.as_deref(), Some("a[1]"));
        assert_eq!(
            err.to_string(),
            "3:5: unknown expression resolver 'vault' (allowed: env)"
        );
    }

    #[test]
    fn env_resolver_reads_the_environment() {
        let resolver = env_resolver_from(|name| Ok((name == "SET").then(|| "v".to_owned())));
        assert_eq!(
            resolver.resolve("env", "SET"),
            Resolution::Value("v".into())
        );
        assert_eq!(resolver.resolve("env", "UNSET"), Resolution::Unset);
        assert_eq!(
            resolver.resolve("vault", "SET"),
            Resolution::UnknownResolver
        );
        let real = env_resolver();
        assert_eq!(
            real.resolve("env", "BINDING_API_SURELY_UNSET_VARIABLE"),
            Resolution::Unset
        );
    }
}

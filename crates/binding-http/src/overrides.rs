//! Request header overrides, as Zilla's http server applies them: `options.overrides` to
//! every request, then a route's `with.headers.overrides` (which win for the same name) to
//! the requests it takes. An override replaces every field of its name in the begin of the
//! request stream opened towards the exit, or adds one; the client's request is unchanged for
//! the binding itself (framing, `HEAD`, keep-alive).

use std::collections::BTreeMap;

use binding_api::ext::http::Header;
use binding_api::route::Captures;
use zilla_config::{ConfigError, ConfigErrorKind, Spanned};

use crate::request::HOP_BY_HOP;

/// The pseudo-headers an override may set.
const PSEUDO: [&str; 4] = [":method", ":scheme", ":authority", ":path"];

/// A piece of an override's value.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    /// Literal text.
    Text(String),
    /// `${params.NAME}`: what the matched condition's `:path` captured as `{NAME}`.
    Param(String),
}

/// One override: a lowercase header name and its value.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Override {
    name: String,
    value: Vec<Part>,
}

/// A set of header overrides, at most one per name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides(Vec<Override>);

/// The raw YAML form: header name → value.
pub(crate) type RawOverrides = BTreeMap<Spanned<String>, Spanned<String>>;

impl Overrides {
    /// Literal overrides, for bindings built in code. Names are lowercased; pseudo-headers,
    /// hop-by-hop headers and values are not checked.
    pub fn literal<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut overrides = Overrides::default();
        for (name, value) in pairs {
            overrides.set(Override {
                name: name.to_ascii_lowercase(),
                value: vec![Part::Text(value.to_owned())],
            });
        }
        overrides
    }

    /// Checks overrides read from `where_` (`options.overrides` or
    /// `with.headers.overrides`); `params` names the `${params.NAME}` they may use.
    pub(crate) fn parse(
        raw: RawOverrides,
        where_: &str,
        params: &[&str],
    ) -> Result<Self, ConfigError> {
        let mut entries: Vec<_> = raw.into_iter().collect();
        entries.sort_by_key(|(name, _)| (name.mark.line, name.mark.column));
        let mut overrides = Overrides::default();
        for (name, value) in entries {
            let lower = name.value.to_ascii_lowercase();
            check_name(&name, &lower)?;
            if overrides.0.iter().any(|o| o.name == lower) {
                return Err(name
                    .error(ConfigErrorKind::Custom(format!(
                        "header '{lower}' is overridden twice in {where_}"
                    )))
                    .with_help("header names are case-insensitive: keep one of them"));
            }
            let parts = parse_value(&value, where_, params)?;
            check_value(&value, &lower, &parts)?;
            overrides.0.push(Override {
                name: lower,
                value: parts,
            });
        }
        Ok(overrides)
    }

    /// These overrides, then `later`'s: `later` wins for a name both set.
    pub fn then(&self, later: &Overrides) -> Overrides {
        let mut merged = self.clone();
        for o in &later.0 {
            merged.set(o.clone());
        }
        merged
    }

    /// Whether there is no override.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a value uses `${params.NAME}`.
    pub fn uses_params(&self) -> bool {
        self.0
            .iter()
            .any(|o| o.value.iter().any(|p| matches!(p, Part::Param(_))))
    }

    /// Applies the overrides to a request's headers (pseudo-headers first): a pseudo-header
    /// is replaced in place; an ordinary header replaces every field of its name, else is
    /// added at the end. `params` are the matched `:path`'s captures.
    pub fn apply(&self, headers: &mut Vec<Header>, params: Option<&Captures<'_>>) {
        for o in &self.0 {
            let mut value = String::new();
            for part in &o.value {
                match part {
                    Part::Text(text) => value.push_str(text),
                    Part::Param(name) => {
                        value.push_str(params.and_then(|c| c.get(name)).unwrap_or_default());
                    }
                }
            }
            let header = Header::new(o.name.clone(), value);
            if o.name.starts_with(':') {
                match headers.iter_mut().find(|h| h.name == o.name) {
                    Some(existing) => *existing = header,
                    None => {
                        let at = headers
                            .iter()
                            .take_while(|h| h.name.starts_with(':'))
                            .count();
                        headers.insert(at, header);
                    }
                }
            } else {
                headers.retain(|h| h.name != o.name);
                headers.push(header);
            }
        }
    }

    fn set(&mut self, o: Override) {
        match self.0.iter_mut().find(|e| e.name == o.name) {
            Some(existing) => *existing = o,
            None => self.0.push(o),
        }
    }
}

fn custom(at: &Spanned<String>, message: String) -> ConfigError {
    at.error(ConfigErrorKind::Custom(message))
}

fn check_name(name: &Spanned<String>, lower: &str) -> Result<(), ConfigError> {
    if let Some(pseudo) = lower.strip_prefix(':') {
        if !PSEUDO.contains(&lower) {
            return Err(custom(
                name,
                format!(
                    "pseudo-header ':{pseudo}' cannot be overridden (allowed: {})",
                    PSEUDO.join(", ")
                ),
            )
            .with_help(
                "overrides change the request sent to the exit; its response is the application's",
            ));
        }
        return Ok(());
    }
    if lower.is_empty() || !lower.bytes().all(is_tchar) {
        return Err(
            custom(name, format!("invalid header name '{}'", name.value))
                .with_help("a header name is letters, digits and !#$%&'*+-.^_`|~"),
        );
    }
    if HOP_BY_HOP.contains(&lower) {
        return Err(custom(
            name,
            format!("'{lower}' is connection-specific and cannot be overridden"),
        )
        .with_help(
            "remove it: connection-specific headers describe one hop and never reach the exit",
        ));
    }
    match lower {
        "host" => Err(custom(
            name,
            "'host' cannot be overridden: the exit sees it as ':authority'".into(),
        )
        .with_help("override ':authority' instead")),
        "content-length" => Err(custom(
            name,
            "'content-length' cannot be overridden: it is the length of the body the client sends"
                .into(),
        )
        .with_help("remove it")),
        _ => Ok(()),
    }
}

/// Splits a value into text and `${params.NAME}`, refusing any other `${...}`.
fn parse_value(
    value: &Spanned<String>,
    where_: &str,
    params: &[&str],
) -> Result<Vec<Part>, ConfigError> {
    let mut parts = Vec::new();
    let mut rest = value.value.as_str();
    while let Some(start) = rest.find("${") {
        if start > 0 {
            parts.push(Part::Text(rest[..start].to_owned()));
        }
        let tail = &rest[start..];
        let expression = tail.find('}').map(|end| &tail[..=end]);
        let name = expression
            .and_then(|e| e.strip_prefix("${params."))
            .and_then(|e| e.strip_suffix('}'))
            .filter(|n| !n.is_empty());
        let (Some(expression), Some(name)) = (expression, name) else {
            let shown = expression.unwrap_or(tail);
            return Err(custom(
                value,
                format!("unsupported expression '{shown}' in {where_} (allowed: ${{params.<name>}})"),
            )
            .with_help("write the value literally, or ${params.<name>} for a {name} captured by the route's :path"));
        };
        if !params.contains(&name) {
            let help = if params.is_empty() {
                "parameters come from a route's when[].headers[':path'] (e.g. /items/{id}) and are \
                 resolved only in that route's with.headers.overrides"
                    .to_owned()
            } else {
                format!(
                    "capture '{{{name}}}' in the :path of every condition of the route, or use one \
                     of: {}",
                    params.join(", ")
                )
            };
            return Err(custom(
                value,
                format!("'{expression}' in {where_} names no parameter of the route's :path"),
            )
            .with_help(help));
        }
        parts.push(Part::Param(name.to_owned()));
        rest = &tail[expression.len()..];
    }
    if !rest.is_empty() || parts.is_empty() {
        parts.push(Part::Text(rest.to_owned()));
    }
    Ok(parts)
}

/// Checks a value for its header: no control characters; pseudo-headers well-formed.
fn check_value(value: &Spanned<String>, name: &str, parts: &[Part]) -> Result<(), ConfigError> {
    let text = || {
        parts.iter().filter_map(|p| match p {
            Part::Text(t) => Some(t.as_str()),
            Part::Param(_) => None,
        })
    };
    if text().any(|t| t.chars().any(|c| c.is_control() && c != '\t')) {
        return Err(custom(
            value,
            format!("the value of '{name}' holds a control character"),
        )
        .with_help("header values are one line of text"));
    }
    let has_param = parts.iter().any(|p| matches!(p, Part::Param(_)));
    let literal: String = text().collect();
    let (valid, expected) = match name {
        ":method" => (
            !has_param && !literal.is_empty() && literal.bytes().all(is_tchar),
            "a method such as GET",
        ),
        ":scheme" => (
            !has_param
                && literal.starts_with(|c: char| c.is_ascii_alphabetic())
                && literal
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)),
            "a scheme such as https",
        ),
        ":authority" => (
            !has_param
                && !literal.is_empty()
                && !literal
                    .bytes()
                    .any(|b| b.is_ascii_whitespace() || b"/?#@".contains(&b)),
            "host[:port], such as example.com:443",
        ),
        ":path" => (
            matches!(parts.first(), Some(Part::Text(t)) if t.starts_with('/'))
                && !literal.bytes().any(|b| b.is_ascii_whitespace()),
            "a path starting with '/', such as /api/${params.id}",
        ),
        _ => (true, ""),
    };
    if valid {
        Ok(())
    } else {
        Err(value.error(ConfigErrorKind::InvalidValue {
            found: format!("'{}' for '{name}'", value.value),
            expected: expected.to_owned(),
        }))
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use binding_api::route::Pattern;
    use zilla_config::{Node, from_node, parse};

    fn overrides(yaml: &str, params: &[&str]) -> Result<Overrides, String> {
        let node: Node = parse(yaml).map_err(|e| e.to_string())?;
        let raw: RawOverrides = from_node(&node).map_err(|e| e.to_string())?;
        Overrides::parse(raw, "with.headers.overrides", params).map_err(|e| e.to_string())
    }

    fn request() -> Vec<Header> {
        vec![
            Header::new(":method", "GET"),
            Header::new(":scheme", "http"),
            Header::new(":authority", "localhost:8080"),
            Header::new(":path", "/v1/42?x=1"),
            Header::new("custom", "a"),
            Header::new("accept", "*/*"),
            Header::new("custom", "b"),
        ]
    }

    fn shown(headers: &[Header]) -> Vec<String> {
        headers
            .iter()
            .map(|h| format!("{}: {}", h.name, String::from_utf8_lossy(&h.value)))
            .collect()
    }

    #[test]
    fn pseudo_headers_replaced_in_place_others_replaced_or_added() {
        let o = overrides(
            ":authority: localhost:8081\n:path: /api/${params.id}\nCustom: value\nx-new: \"1\"\n",
            &["id"],
        )
        .unwrap();
        assert!(o.uses_params());
        let pattern = Pattern::new("/v1/{id}").unwrap();
        let captures = pattern.path_captures("/v1/42?x=1");
        let mut headers = request();
        o.apply(&mut headers, captures.as_ref());
        assert_eq!(
            shown(&headers),
            [
                ":method: GET",
                ":scheme: http",
                ":authority: localhost:8081",
                ":path: /api/42?x=1",
                "accept: */*",
                "custom: value",
                "x-new: 1",
            ]
        );
    }

    #[test]
    fn later_overrides_win() {
        let options = Overrides::literal([(":authority", "other:1"), ("a", "1"), ("b", "1")]);
        let route = Overrides::literal([("B", "2")]);
        let mut headers = request();
        options.then(&route).apply(&mut headers, None);
        let shown = shown(&headers);
        assert!(
            shown.contains(&":authority: other:1".to_owned()),
            "{shown:?}"
        );
        assert!(
            shown.ends_with(&["a: 1".to_owned(), "b: 2".to_owned()]),
            "{shown:?}"
        );
        assert!(!options.uses_params() && Overrides::default().is_empty());
    }

    #[test]
    fn refused_names_say_why_and_what_to_do() {
        let cases = [
            (
                ":status: \"200\"",
                "1:1: pseudo-header ':status' cannot be overridden (allowed: :method, :scheme, :authority, :path)",
            ),
            (
                "Connection: close",
                "1:1: 'connection' is connection-specific and cannot be overridden; remove it",
            ),
            ("transfer-encoding: chunked", "is connection-specific"),
            ("upgrade: h2c", "is connection-specific"),
            (
                "host: example.com",
                "'host' cannot be overridden: the exit sees it as ':authority'; override ':authority' instead",
            ),
            (
                "content-length: \"0\"",
                "'content-length' cannot be overridden",
            ),
            ("\"bad name\": x", "invalid header name 'bad name'"),
            (
                "a: x\nA: y",
                "2:1: header 'a' is overridden twice in with.headers.overrides",
            ),
        ];
        for (yaml, needle) in cases {
            let err = overrides(yaml, &[]).unwrap_err();
            assert!(err.contains(needle), "{yaml}: {err}");
        }
    }

    #[test]
    fn values_and_expressions_are_checked() {
        let cases = [
            (
                ":path: api",
                &[][..],
                "1:8: invalid value 'api' for ':path', expected a path starting with '/'",
            ),
            (
                ":path: \"${params.id}\"",
                &["id"],
                "expected a path starting with '/'",
            ),
            (":method: \"G T\"", &[], "expected a method such as GET"),
            (":scheme: \"1http\"", &[], "expected a scheme such as https"),
            (":authority: \"a/b\"", &[], "expected host[:port]"),
            (
                ":authority: \"${params.id}\"",
                &["id"],
                "expected host[:port]",
            ),
            ("x: \"a\\nb\"", &[], "holds a control character"),
            (
                "x: \"${env.HOME}\"",
                &[],
                "unsupported expression '${env.HOME}' in with.headers.overrides (allowed: ${params.<name>})",
            ),
            (
                "x: \"${params.id\"",
                &["id"],
                "unsupported expression '${params.id'",
            ),
            (
                "x: \"${params.}\"",
                &["id"],
                "unsupported expression '${params.}'",
            ),
            (
                "x: \"${params.ix}\"",
                &["id"],
                "'${params.ix}' in with.headers.overrides names no parameter of the route's :path; capture '{ix}' in the :path of every condition of the route, or use one of: id",
            ),
            (
                "x: \"${params.id}\"",
                &[],
                "resolved only in that route's with.headers.overrides",
            ),
        ];
        for (yaml, params, needle) in cases {
            let err = overrides(yaml, params).unwrap_err();
            assert!(err.contains(needle), "{yaml}: {err}");
        }
        let ok = overrides("x: \"$a ${params.id}-${params.id}$\"\ny: \"\"\n", &["id"]).unwrap();
        let pattern = Pattern::new("/{id}").unwrap();
        let mut headers = Vec::new();
        ok.apply(&mut headers, pattern.path_captures("/7").as_ref());
        assert_eq!(shown(&headers), ["x: $a 7-7$", "y: "]);
    }
}

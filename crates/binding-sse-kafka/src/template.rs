//! Route values with substitutions: `${params.topic}`, `${guarded['jwt'].identity}`,
//! `${guarded['jwt'].attributes.tenant}`, as Zilla writes them in `with`.

use std::fmt;

use thiserror::Error;

/// A value from configuration, split into literal text and substitutions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// `${params.NAME}`: a capture of the route's path pattern.
    Param(String),
    /// `${guarded['GUARD'].identity}`.
    Identity {
        guard: String,
    },
    /// `${guarded['GUARD'].attributes.NAME}`.
    Attribute {
        guard: String,
        name: String,
    },
}

/// What a substitution is taken from when a stream is routed.
pub trait Source {
    /// The value captured by the path pattern for `name`.
    fn param(&self, name: &str) -> Option<&str>;
    /// The identity the guard `guard` established, if any.
    fn identity(&self, guard: &str) -> Option<&str>;
    /// An attribute the guard `guard` established, if any.
    fn attribute(&self, guard: &str, name: &str) -> Option<&str>;
}

/// A malformed substitution.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("invalid substitution '{expression}': {reason}")]
pub struct TemplateError {
    /// The `${...}` text.
    pub expression: String,
    /// What is wrong, with what is allowed.
    pub reason: &'static str,
}

impl Template {
    /// Parses a configuration value.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| TemplateError {
                expression: rest[start..].to_owned(),
                reason: "'${' has no closing '}'",
            })?;
            let expression = &after[..end];
            parts.push(parse_expression(expression).ok_or_else(|| TemplateError {
                expression: format!("${{{expression}}}"),
                reason: "expected ${params.NAME}, ${guarded['GUARD'].identity} or \
                         ${guarded['GUARD'].attributes.NAME}",
            })?);
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// Names of the path parameters the template uses.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Param(name) => Some(name.as_str()),
            _ => None,
        })
    }

    /// Whether the value is the same for every stream.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// The value for one stream. As in Zilla, an unknown guard (or one that established no
    /// session) or a missing identity or attribute gives the empty string; a missing path parameter cannot happen once
    /// [`Template::params`] were checked against the path pattern.
    pub fn resolve(&self, source: &dyn Source) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Param(name) => out.push_str(source.param(name).unwrap_or_default()),
                Part::Identity { guard } => {
                    out.push_str(source.identity(guard).unwrap_or_default())
                }
                Part::Attribute { guard, name } => {
                    out.push_str(source.attribute(guard, name).unwrap_or_default())
                }
            }
        }
        out
    }
}

fn parse_expression(expression: &str) -> Option<Part> {
    if let Some(name) = expression.strip_prefix("params.") {
        return is_name(name).then(|| Part::Param(name.to_owned()));
    }
    let rest = expression.strip_prefix("guarded['")?;
    let (guard, rest) = rest.split_once("']")?;
    if !is_guard_name(guard) {
        return None;
    }
    let guard = guard.to_owned();
    if rest == ".identity" {
        return Some(Part::Identity { guard });
    }
    let name = rest.strip_prefix(".attributes.")?;
    is_name(name).then(|| Part::Attribute {
        guard,
        name: name.to_owned(),
    })
}

fn is_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_guard_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Literal(text) => f.write_str(text)?,
                Part::Param(name) => write!(f, "${{params.{name}}}")?,
                Part::Identity { guard } => write!(f, "${{guarded['{guard}'].identity}}")?,
                Part::Attribute { guard, name } => {
                    write!(f, "${{guarded['{guard}'].attributes.{name}}}")?
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;

    impl Source for Fixed {
        fn param(&self, name: &str) -> Option<&str> {
            (name == "topic").then_some("events")
        }
        fn identity(&self, guard: &str) -> Option<&str> {
            (guard == "jwt0").then_some("alice")
        }
        fn attribute(&self, guard: &str, name: &str) -> Option<&str> {
            (guard == "jwt0" && name == "tenant").then_some("acme")
        }
    }

    #[test]
    fn substitutes() {
        let t = Template::parse("${params.topic}").unwrap();
        assert_eq!(t.resolve(&Fixed), "events");
        assert_eq!(t.params().collect::<Vec<_>>(), vec!["topic"]);
        let t = Template::parse("${guarded['jwt0'].identity}-topic").unwrap();
        assert_eq!(t.resolve(&Fixed), "alice-topic");
        let t = Template::parse("${guarded['jwt0'].attributes.tenant}.${params.topic}").unwrap();
        assert_eq!(t.resolve(&Fixed), "acme.events");
        let t = Template::parse("${guarded['other'].identity}x").unwrap();
        assert_eq!(
            t.resolve(&Fixed),
            "x",
            "unknown guard gives empty, as in Zilla"
        );
        assert!(Template::parse("plain").unwrap().is_literal());
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "a${params.b}c",
            "${guarded['g'].attributes.x}",
            "${guarded['g'].identity}",
        ] {
            assert_eq!(Template::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn refuses_malformed() {
        assert!(Template::parse("${params.topic").is_err());
        assert!(Template::parse("${param.topic}").is_err());
        assert!(Template::parse("${params.}").is_err());
        assert!(Template::parse("${guarded[jwt].identity}").is_err());
        assert!(Template::parse("${guarded['jwt'].roles}").is_err());
    }
}

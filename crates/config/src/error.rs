//! [`ConfigError`]: what went wrong in `zilla.yaml`, where, and how to fix it.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;

use super::yaml::Mark;

/// What is wrong with the configuration.
///
/// [`ConfigError`] adds the where (file, line and column, binding, path) and the fix (help).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The text is not valid YAML; the message is the YAML parser's.
    Syntax(String),
    /// More than one YAML document (`---`) in the file.
    MultipleDocuments,
    /// A mapping repeats a key.
    DuplicateKey {
        /// The repeated key.
        key: String,
        /// Where the key first appears.
        first: Mark,
    },
    /// A mapping has a key the model does not know.
    UnknownField {
        /// The unknown key.
        field: String,
        /// The keys allowed at this place.
        allowed: Vec<String>,
    },
    /// A mapping lacks a required key.
    MissingField {
        /// The missing key.
        field: String,
    },
    /// The value has the wrong type, e.g. a sequence where an integer belongs.
    InvalidType {
        /// What was found, e.g. `a sequence` or `the string "7114"`.
        found: String,
        /// What is allowed, e.g. `an integer between 0 and 65535`.
        expected: String,
    },
    /// The value has the right type but is not acceptable, e.g. a port above 65535.
    InvalidValue {
        /// What was found.
        found: String,
        /// What is allowed.
        expected: String,
    },
    /// A sequence has the wrong number of items.
    InvalidLength {
        /// The number of items found.
        len: usize,
        /// What is allowed.
        expected: String,
    },
    /// A value is not one of the allowed names (an enum variant).
    UnknownVariant {
        /// The value found.
        value: String,
        /// The values allowed.
        allowed: Vec<String>,
    },
    /// An expression `${{ resolver.NAME }}` names a variable that is not set.
    UnresolvedVariable {
        /// The resolver, e.g. `env`.
        resolver: String,
        /// The variable name.
        name: String,
    },
    /// An expression `${{ resolver.NAME }}` names a resolver that does not exist.
    UnknownResolver {
        /// The resolver named in the expression.
        resolver: String,
    },
    /// Collections are nested deeper than the limit.
    TooDeep {
        /// The maximum nesting depth.
        limit: usize,
    },
    /// The document has more nodes (aliases expanded) than the limit.
    TooLarge {
        /// The maximum number of nodes.
        limit: usize,
    },
    /// Any other problem, already phrased for a person.
    Custom(String),
}

impl ConfigErrorKind {
    /// The message, with nouns chosen from the error's path (`option` under `options`).
    fn message(&self, path: Option<&str>) -> String {
        match self {
            Self::Syntax(msg) => format!("invalid YAML: {msg}"),
            Self::MultipleDocuments => {
                "more than one YAML document ('---'); zilla.yaml holds exactly one".to_owned()
            }
            Self::DuplicateKey { key, first } => {
                format!(
                    "duplicate key '{key}' (first defined at line {}, column {})",
                    first.line, first.column
                )
            }
            Self::UnknownField { field, allowed } => {
                let noun = match path.map(|p| parent_of(p, field)) {
                    Some(parent) if parent == "options" || parent.ends_with(".options") => "option",
                    _ => "key",
                };
                format!("unknown {noun} '{field}'{}", list_allowed(allowed))
            }
            Self::MissingField { field } => format!("missing required key '{field}'"),
            Self::InvalidType { found, expected } => format!("expected {expected}, found {found}"),
            Self::InvalidValue { found, expected } => {
                format!("invalid value {found}, expected {expected}")
            }
            Self::InvalidLength { len, expected } => {
                format!("expected {expected}, found {len} items")
            }
            Self::UnknownVariant { value, allowed } => {
                let noun = match path.and_then(last_key) {
                    Some(key) if key != value => key,
                    _ => "value",
                };
                format!("unknown {noun} '{value}'{}", list_allowed(allowed))
            }
            Self::UnresolvedVariable { resolver, name } if resolver == "env" => {
                format!("environment variable {name} is not set")
            }
            Self::UnresolvedVariable { resolver, name } => {
                format!("variable '{name}' of resolver '{resolver}' is not set")
            }
            Self::UnknownResolver { resolver } => {
                format!("unknown expression resolver '{resolver}' (allowed: env)")
            }
            Self::TooDeep { limit } => format!("nested deeper than {limit} levels"),
            Self::TooLarge { limit } => {
                format!("more than {limit} nodes (after expanding aliases)")
            }
            Self::Custom(msg) => msg.clone(),
        }
    }
}

impl fmt::Display for ConfigErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message(None))
    }
}

fn list_allowed(allowed: &[String]) -> String {
    if allowed.is_empty() {
        String::new()
    } else {
        format!(" (allowed: {})", allowed.join(", "))
    }
}

/// `a.b.field` → `a.b`, for a path that ends with the given key.
fn parent_of<'p>(path: &'p str, field: &str) -> &'p str {
    path.strip_suffix(field)
        .and_then(|p| p.strip_suffix('.'))
        .unwrap_or(path)
}

/// The last path segment if it is a mapping key (`a.b.kind` → `kind`, `a[0]` → none).
fn last_key(path: &str) -> Option<&str> {
    if path.ends_with(']') {
        return None;
    }
    let key = path.rsplit('.').next().unwrap_or(path);
    (!key.is_empty()).then_some(key)
}

/// The fields of a [`ConfigError`]; reach them through the error (`err.mark`, `err.kind`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrorDetails {
    /// The configuration file, when known (`zilla.yaml`).
    pub file: Option<PathBuf>,
    /// Line and column (1-based) of the offending node or key.
    pub mark: Option<Mark>,
    /// The binding (or guard, vault...) whose configuration is wrong.
    pub binding: Option<String>,
    /// Where in the document, e.g. `bindings.tcp0.options.port[1]`.
    pub path: Option<String>,
    /// What is wrong.
    pub kind: ConfigErrorKind,
    /// How to fix it, e.g. `did you mean 'port'?`.
    pub help: Option<String>,
}

/// A configuration error a person can act on.
///
/// Displays as `file:line:col: [binding 'x': ]message[; help]`, for example
/// `zilla.yaml:12:9: binding 'north_tcp_server': unknown option 'prot' (allowed: host, port); did you mean 'port'?`.
/// The path is shown only when there is no line and column.
///
/// The fields live in a box (keeping `Result`s small) and are reached through `Deref`:
/// `err.mark`, `err.kind`, `err.binding`...
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(self))]
pub struct ConfigError(Box<ConfigErrorDetails>);

impl ConfigError {
    /// An error without position.
    #[must_use]
    pub fn new(kind: ConfigErrorKind) -> Self {
        let help = suggestion(&kind);
        Self(Box::new(ConfigErrorDetails {
            file: None,
            mark: None,
            binding: None,
            path: None,
            kind,
            help,
        }))
    }

    /// An error at a position, typically a node's or a [`Spanned`](super::Spanned) value's mark.
    ///
    /// [`Mark::UNKNOWN`] leaves the position unset.
    #[must_use]
    pub fn at(mark: Mark, kind: ConfigErrorKind) -> Self {
        Self::new(kind).with_mark(mark)
    }

    /// A [`ConfigErrorKind::Custom`] error at a position.
    #[must_use]
    pub fn custom_at(mark: Mark, message: impl Into<String>) -> Self {
        Self::at(mark, ConfigErrorKind::Custom(message.into()))
    }

    /// Sets the file name.
    #[must_use]
    pub fn with_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.0.file = Some(file.into());
        self
    }

    /// Sets the binding name (or guard, vault... name).
    #[must_use]
    pub fn with_binding(mut self, binding: impl Into<String>) -> Self {
        self.0.binding = Some(binding.into());
        self
    }

    /// Sets the help text (how to fix it).
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.0.help = Some(help.into());
        self
    }

    /// Sets the position; [`Mark::UNKNOWN`] clears it.
    #[must_use]
    pub fn with_mark(mut self, mark: Mark) -> Self {
        self.0.mark = mark.is_known().then_some(mark);
        self
    }

    /// Sets the path in the document.
    #[must_use]
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.0.path = Some(path.into());
        self
    }

    /// Fills the position, path and binding where they are still unset.
    ///
    /// Deserialization errors travel outwards through the nodes; the innermost node fills its
    /// mark first, so the error ends up pointing at the node where it arose.
    pub(crate) fn fill(
        mut self,
        mark: Mark,
        path: impl FnOnce() -> (String, Option<String>),
    ) -> Self {
        if self.0.mark.is_none() && mark.is_known() {
            self.0.mark = Some(mark);
        }
        if self.0.path.is_none() {
            let (path, binding) = path();
            if !path.is_empty() {
                self.0.path = Some(path);
            }
            if self.0.binding.is_none() {
                self.0.binding = binding;
            }
        }
        self
    }

    /// The fields, owned.
    #[must_use]
    pub fn into_details(self) -> ConfigErrorDetails {
        *self.0
    }
}

impl Deref for ConfigError {
    type Target = ConfigErrorDetails;

    fn deref(&self) -> &ConfigErrorDetails {
        &self.0
    }
}

impl DerefMut for ConfigError {
    fn deref_mut(&mut self) -> &mut ConfigErrorDetails {
        &mut self.0
    }
}

impl From<ConfigErrorKind> for ConfigError {
    fn from(kind: ConfigErrorKind) -> Self {
        Self::new(kind)
    }
}

impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

fn render(err: &ConfigError) -> String {
    let mut out = String::new();
    if let Some(file) = &err.file {
        out.push_str(&file.display().to_string());
    }
    if let Some(mark) = err.mark {
        if !out.is_empty() {
            out.push(':');
        }
        out.push_str(&format!("{}:{}", mark.line, mark.column));
    }
    if !out.is_empty() {
        out.push_str(": ");
    }
    if let Some(binding) = &err.binding {
        out.push_str(&format!("binding '{binding}': "));
    }
    out.push_str(&err.kind.message(err.path.as_deref()));
    if err.mark.is_none()
        && let Some(path) = err.path.as_deref().filter(|p| !p.is_empty())
    {
        out.push_str(&format!(" (at {path})"));
    }
    if let Some(help) = &err.help {
        out.push_str("; ");
        out.push_str(help);
    }
    out
}

/// A "did you mean" for unknown keys and values.
fn suggestion(kind: &ConfigErrorKind) -> Option<String> {
    match kind {
        ConfigErrorKind::UnknownField { field, allowed }
        | ConfigErrorKind::UnknownVariant {
            value: field,
            allowed,
        } => closest(field, allowed).map(|best| format!("did you mean '{best}'?")),
        _ => None,
    }
}

/// The allowed name closest to `word`, if it is close enough to be a likely typo or a prefix.
pub(crate) fn closest<'a>(word: &str, allowed: &'a [String]) -> Option<&'a str> {
    let word_lower = word.to_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    allowed
        .iter()
        .map(|name| {
            let name_lower = name.to_lowercase();
            let distance = edit_distance(&word_lower, &name_lower);
            // A truncated name (`serv` for `server`) is as likely as a typo.
            let prefix = word_lower.chars().count() >= 3 && name_lower.starts_with(&word_lower);
            (if prefix { distance.min(1) } else { distance }, name)
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| name.as_str())
}

/// Edit distance with adjacent transpositions (optimal string alignment), so `prot` → `port` is 1.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len() > 64 || b.len() > 64 {
        return usize::MAX;
    }
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn display_with_everything() {
        let err = ConfigError::at(
            Mark {
                line: 12,
                column: 9,
            },
            ConfigErrorKind::UnknownField {
                field: "prot".into(),
                allowed: vec!["host".into(), "port".into()],
            },
        )
        .with_path("bindings.north_tcp_server.options.prot")
        .with_binding("north_tcp_server")
        .with_file("zilla.yaml");
        assert_eq!(
            err.to_string(),
            "zilla.yaml:12:9: binding 'north_tcp_server': unknown option 'prot' (allowed: host, port); did you mean 'port'?"
        );
    }

    #[test]
    fn display_without_position_shows_path() {
        let err = ConfigError::new(ConfigErrorKind::MissingField {
            field: "topic".into(),
        })
        .with_path("bindings.sse_kafka.routes[0].with")
        .with_help("add 'topic: <name>'");
        assert_eq!(
            err.to_string(),
            "missing required key 'topic' (at bindings.sse_kafka.routes[0].with); add 'topic: <name>'"
        );
    }

    #[test]
    fn unknown_variant_uses_key_as_noun() {
        let err = ConfigError::at(
            Mark {
                line: 3,
                column: 11,
            },
            ConfigErrorKind::UnknownVariant {
                value: "serv".into(),
                allowed: vec!["client".into(), "server".into()],
            },
        )
        .with_path("bindings.tcp0.kind");
        assert_eq!(
            err.to_string(),
            "3:11: unknown kind 'serv' (allowed: client, server); did you mean 'server'?"
        );
    }

    #[test]
    fn suggestions_only_when_close() {
        let allowed: Vec<String> = ["host", "port", "backlog"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(closest("prot", &allowed), Some("port"));
        assert_eq!(closest("Host", &allowed), Some("host"));
        assert_eq!(closest("backlgo", &allowed), Some("backlog"));
        assert_eq!(closest("zzz", &allowed), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn error_is_small() {
        assert_eq!(
            std::mem::size_of::<ConfigError>(),
            std::mem::size_of::<usize>()
        );
    }
}

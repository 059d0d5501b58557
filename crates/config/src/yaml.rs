//! YAML text → [`Node`] tree with line and column, built from `saphyr-parser` events.
//!
//! The builder keeps an explicit stack (no recursion), stops at [`Limits::max_depth`] nested
//! collections and at [`Limits::max_nodes`] nodes (aliases count with their full expansion), so no
//! input can exhaust the stack or memory.

use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use super::error::{ConfigError, ConfigErrorKind};
pub(crate) use super::scalar::{Plain, resolve_plain};

/// A position in the YAML text: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Mark {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1, counted in characters.
    pub column: u32,
}

impl Mark {
    /// No position (0:0), e.g. for nodes built by code rather than parsed.
    pub const UNKNOWN: Mark = Mark { line: 0, column: 0 };

    /// Whether this is a real position.
    #[must_use]
    pub fn is_known(self) -> bool {
        self.line > 0
    }

    fn from_parser(marker: saphyr_parser::Marker) -> Mark {
        Mark {
            line: u32::try_from(marker.line()).unwrap_or(u32::MAX),
            column: u32::try_from(marker.col()).unwrap_or(u32::MAX - 1) + 1,
        }
    }
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A scalar as written: its text and whether it was plain (unquoted).
///
/// Typing happens when the scalar is read: a plain `7114` is an integer, a quoted `"7114"` a
/// string (YAML 1.2 core schema). A `!!str` tag makes a plain scalar count as quoted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scalar {
    /// The text, after YAML unescaping and folding.
    pub text: String,
    /// Unquoted (plain style); such a scalar may be a null, boolean or number.
    pub plain: bool,
}

/// The content of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An empty value or a plain `~`, `null`, `Null`, `NULL`.
    Null,
    /// A string, number or boolean, as written.
    Scalar(Scalar),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order, without duplicate keys.
    Map(Vec<(Node, Node)>),
}

/// A YAML node with the position where it starts.
///
/// For a block mapping or sequence, the position is that of its first key or `-`.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts.
    pub mark: Mark,
    /// What the node holds.
    pub value: Value,
}

impl Node {
    /// A node at a position.
    #[must_use]
    pub fn new(mark: Mark, value: Value) -> Self {
        Self { mark, value }
    }

    /// Whether the node is null (also a plain null scalar left by expression substitution).
    #[must_use]
    pub fn is_null(&self) -> bool {
        match &self.value {
            Value::Null => true,
            Value::Scalar(s) => s.plain && resolve_plain(&s.text) == Plain::Null,
            _ => false,
        }
    }

    /// The scalar's text, for any scalar (plain or quoted).
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s) => Some(&s.text),
            _ => None,
        }
    }

    /// The items, if a sequence.
    #[must_use]
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// The entries, if a mapping.
    #[must_use]
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value under a scalar key, if this is a mapping that has it.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The entry (key node and value) under a scalar key, to report errors at the key.
    #[must_use]
    pub fn get_entry(&self, key: &str) -> Option<(&Node, &Node)> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, v)| (k, v))
    }

    /// What the node is, for messages: `a mapping`, `the integer 7114`, `the string "x"`...
    #[must_use]
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Null => "null (an empty value)".to_owned(),
            Value::Seq(_) => "a sequence".to_owned(),
            Value::Map(_) => "a mapping".to_owned(),
            Value::Scalar(s) if !s.plain => format!("the string {}", quote(&s.text)),
            Value::Scalar(s) => match resolve_plain(&s.text) {
                Plain::Null => "null (an empty value)".to_owned(),
                Plain::Bool(b) => format!("the boolean {b}"),
                Plain::Int(_) => format!("the integer {}", s.text),
                Plain::Float(_) => format!("the number {}", s.text),
                Plain::Str => format!("the string {}", quote(&s.text)),
            },
        }
    }

    /// An error at this node.
    #[must_use]
    pub fn error(&self, kind: ConfigErrorKind) -> ConfigError {
        ConfigError::at(self.mark, kind)
    }
}

/// A string for a message: quoted, and cut at 40 characters.
pub(crate) fn quote(text: &str) -> String {
    let mut short: String = text.chars().take(40).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    format!("{short:?}")
}

/// Bounds on what [`parse_with_limits`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum nesting of sequences and mappings (aliases included).
    pub max_depth: usize,
    /// Maximum number of nodes, with every alias counted as the nodes it expands to (and an
    /// anchored node counted twice: the copy kept for its aliases).
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 64,
            max_nodes: 100_000,
        }
    }
}

/// Parses one YAML document with the default [`Limits`] (depth 64, 100 000 nodes).
///
/// An empty document (or only comments) is [`Value::Null`]. A second document (`---`) is an
/// error. Anchors and aliases are expanded (aliases become copies of the anchored node).
///
/// # Errors
/// YAML syntax errors (at the parser's position), duplicate keys (at the second key),
/// multiple documents, too deep nesting and too many nodes.
pub fn parse(text: &str) -> Result<Node, ConfigError> {
    parse_with_limits(text, Limits::default())
}

/// A collection being built.
struct Frame {
    mark: Mark,
    anchor: usize,
    /// Nodes in this subtree so far, itself included.
    count: usize,
    /// Height of the deepest child so far (a scalar child has height 0).
    height: usize,
    kind: FrameKind,
}

enum FrameKind {
    Seq(Vec<Node>),
    Map {
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        seen: HashMap<String, Mark>,
    },
}

/// A finished node with its size, ready to attach to its parent.
struct Built {
    node: Node,
    count: usize,
    height: usize,
}

/// Parses one YAML document within the given limits; see [`parse`].
///
/// # Errors
/// As [`parse`].
pub fn parse_with_limits(text: &str, limits: Limits) -> Result<Node, ConfigError> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Built> = HashMap::new();
    let mut total = 0usize;
    let mut root: Option<Node> = None;
    let mut documents = 0;
    let mut last = Mark { line: 1, column: 1 };
    while let Some(event) = parser.next_event() {
        let (event, span): (Event<'_>, Span) = event.map_err(|e| {
            ConfigError::at(
                Mark::from_parser(*e.marker()),
                ConfigErrorKind::Syntax(e.info().to_owned()),
            )
        })?;
        let mark = Mark::from_parser(span.start);
        last = mark;
        let built = match event {
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => continue,
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(ConfigError::at(mark, ConfigErrorKind::MultipleDocuments)
                        .with_help("remove the '---' and what follows, or merge the documents"));
                }
                continue;
            }
            Event::Scalar(text, style, anchor, tag) => {
                let str_tag = tag
                    .as_ref()
                    .is_some_and(|t| t.is_yaml_core_schema() && t.suffix == "str");
                let plain = style == ScalarStyle::Plain && !str_tag;
                let value = if plain && resolve_plain(&text) == Plain::Null {
                    Value::Null
                } else {
                    Value::Scalar(Scalar {
                        text: text.into_owned(),
                        plain,
                    })
                };
                let built = Built {
                    node: Node { mark, value },
                    count: 1,
                    height: 0,
                };
                total = grow(total, 1, limits, mark)?;
                remember(&mut anchors, anchor, &built, &mut total, limits)?;
                built
            }
            Event::Alias(id) => {
                let Some(target) = anchors.get(&id) else {
                    return Err(ConfigError::at(
                        mark,
                        ConfigErrorKind::Syntax("unknown anchor".into()),
                    ));
                };
                total = grow(total, target.count, limits, mark)?;
                if stack.len() + target.height > limits.max_depth {
                    return Err(too_deep(mark, limits));
                }
                let mut node = target.node.clone();
                node.mark = mark;
                Built {
                    node,
                    count: target.count,
                    height: target.height,
                }
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if stack.len() >= limits.max_depth {
                    return Err(too_deep(mark, limits));
                }
                total = grow(total, 1, limits, mark)?;
                let kind = if matches!(event, Event::SequenceStart(..)) {
                    FrameKind::Seq(Vec::new())
                } else {
                    FrameKind::Map {
                        entries: Vec::new(),
                        key: None,
                        seen: HashMap::new(),
                    }
                };
                stack.push(Frame {
                    mark,
                    anchor,
                    count: 1,
                    height: 0,
                    kind,
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = stack.pop() else {
                    return Err(ConfigError::at(
                        mark,
                        ConfigErrorKind::Syntax("unbalanced collection".into()),
                    ));
                };
                let value = match frame.kind {
                    FrameKind::Seq(items) => Value::Seq(items),
                    FrameKind::Map { entries, .. } => Value::Map(entries),
                };
                let built = Built {
                    node: Node {
                        mark: frame.mark,
                        value,
                    },
                    count: frame.count,
                    height: frame.height + 1,
                };
                remember(&mut anchors, frame.anchor, &built, &mut total, limits)?;
                built
            }
        };
        match stack.last_mut() {
            None => root = Some(built.node),
            Some(parent) => attach(parent, built)?,
        }
    }
    if !stack.is_empty() {
        return Err(ConfigError::at(
            last,
            ConfigErrorKind::Syntax("unexpected end of input".into()),
        ));
    }
    Ok(root.unwrap_or(Node {
        mark: Mark { line: 1, column: 1 },
        value: Value::Null,
    }))
}

/// Keeps a copy of an anchored node for its aliases; the copy counts towards the node limit,
/// so nested anchors cannot multiply memory.
fn remember(
    anchors: &mut HashMap<usize, Built>,
    anchor: usize,
    built: &Built,
    total: &mut usize,
    limits: Limits,
) -> Result<(), ConfigError> {
    if anchor != 0 {
        *total = grow(*total, built.count, limits, built.node.mark)?;
        let node = built.node.clone();
        anchors.insert(anchor, Built { node, ..*built });
    }
    Ok(())
}

fn grow(total: usize, by: usize, limits: Limits, mark: Mark) -> Result<usize, ConfigError> {
    match total.checked_add(by) {
        Some(total) if total <= limits.max_nodes => Ok(total),
        _ => Err(ConfigError::at(
            mark,
            ConfigErrorKind::TooLarge {
                limit: limits.max_nodes,
            },
        )
        .with_help("check for aliases (*name) that expand to huge trees")),
    }
}

fn too_deep(mark: Mark, limits: Limits) -> ConfigError {
    ConfigError::at(
        mark,
        ConfigErrorKind::TooDeep {
            limit: limits.max_depth,
        },
    )
}

fn attach(parent: &mut Frame, child: Built) -> Result<(), ConfigError> {
    parent.count += child.count;
    parent.height = parent.height.max(child.height);
    match &mut parent.kind {
        FrameKind::Seq(items) => items.push(child.node),
        FrameKind::Map { entries, key, seen } => match key.take() {
            Some(k) => entries.push((k, child.node)),
            None => {
                let canonical = canonical_key(&child.node);
                if let Some(first) = seen.get(&canonical) {
                    return Err(child.node.error(ConfigErrorKind::DuplicateKey {
                        key: display_key(&child.node),
                        first: *first,
                    }));
                }
                seen.insert(canonical, child.node.mark);
                *key = Some(child.node);
            }
        },
    }
    Ok(())
}

/// The key as shown in messages.
pub(crate) fn display_key(node: &Node) -> String {
    match &node.value {
        Value::Scalar(s) => s.text.clone(),
        Value::Null => "~".to_owned(),
        Value::Seq(_) | Value::Map(_) => "<complex key>".to_owned(),
    }
}

/// A string equal for keys YAML considers equal: `a` and `"a"` are, `1` and `"1"` are not.
fn canonical_key(node: &Node) -> String {
    let mut out = String::new();
    // Explicit stack: keys can be collections (bounded by the depth limit anyway).
    let mut todo: Vec<Result<&Node, &'static str>> = vec![Ok(node)];
    while let Some(item) = todo.pop() {
        let node = match item {
            Ok(node) => node,
            Err(token) => {
                out.push_str(token);
                continue;
            }
        };
        match &node.value {
            Value::Null => out.push('~'),
            Value::Scalar(s) => {
                let typed = s.plain && resolve_plain(&s.text) != Plain::Str;
                out.push(if typed { 'p' } else { 's' });
                out.push_str(&s.text.len().to_string());
                out.push(':');
                out.push_str(&s.text);
            }
            Value::Seq(items) => {
                out.push('[');
                todo.push(Err("]"));
                todo.extend(items.iter().rev().map(Ok));
            }
            Value::Map(entries) => {
                out.push('{');
                todo.push(Err("}"));
                for (k, v) in entries.iter().rev() {
                    todo.push(Ok(v));
                    todo.push(Ok(k));
                }
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "yaml_tests.rs"]
mod tests;

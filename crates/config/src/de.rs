//! A serde `Deserializer` over [`Node`], with positions in every error.
//!
//! Each node handed to a `Deserialize` impl (the root, every key, value and item) is wrapped so
//! that an error leaving it without a position gets that node's mark and path. Errors travel
//! outwards, so the innermost node wins: an unknown field points at its key, a wrong type at its
//! value, a missing field at the mapping. Untagged enums report at the node they were given.

use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Expected, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, Visitor,
};

use super::error::{ConfigError, ConfigErrorKind};
use super::expr::{Resolver, substitute};
use super::spanned::{NODE_NAME, SPANNED_NAME};
use super::yaml::{Node, Plain, Value, parse, resolve_plain};

#[path = "de_access.rs"]
mod access;
#[path = "de_error.rs"]
mod error;

use access::{MapEnum, RawNode, ScalarEnum, SpannedAcc};
pub(crate) use access::{RAW_MAP, RAW_NULL, RAW_PLAIN, RAW_QUOTED, RAW_SEQ};

/// Deserializes `T` from a node (usually the document root).
///
/// Errors carry the mark and the path (`bindings.tcp0.options.port[1]`) of the offending node;
/// under `bindings.<name>` they also name the binding.
///
/// # Errors
/// Whatever does not fit `T`: unknown and missing keys, wrong types and values.
pub fn from_node<'de, T: Deserialize<'de>>(node: &'de Node) -> Result<T, ConfigError> {
    from_node_at(node, "")
}

/// Like [`from_node`] for a subtree, with the path of that subtree for messages
/// (e.g. `bindings.tcp0.options`); the binding is then not detected, set it with
/// [`ConfigError::with_binding`].
///
/// # Errors
/// As [`from_node`].
pub fn from_node_at<'de, T: Deserialize<'de>>(
    node: &'de Node,
    base: &str,
) -> Result<T, ConfigError> {
    child(PhantomData::<T>, node, Path::Root(base))
}

/// Parses, substitutes expressions and deserializes, in one go.
///
/// # Errors
/// As [`parse`], [`substitute`] and [`from_node`].
pub fn from_str<T: DeserializeOwned>(
    text: &str,
    resolver: &dyn Resolver,
) -> Result<T, ConfigError> {
    let mut root = parse(text)?;
    substitute(&mut root, resolver)?;
    from_node(&root)
}

/// Where a node is, as a chain of parents; rendered only for errors.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root(&'a str),
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    /// The rendered path, and the binding name if the path is `bindings.<name>...` from the root.
    fn render(&self) -> (String, Option<String>) {
        let mut segments = Vec::new();
        let mut current = self;
        let base = loop {
            match current {
                Path::Root(base) => break *base,
                Path::Key(parent, key) => {
                    segments.push(Ok(*key));
                    current = parent;
                }
                Path::Index(parent, index) => {
                    segments.push(Err(*index));
                    current = parent;
                }
            }
        };
        segments.reverse();
        let binding = match segments.as_slice() {
            [Ok("bindings"), Ok(name), ..] if base.is_empty() => Some((*name).to_owned()),
            _ => None,
        };
        let mut out = base.to_owned();
        for segment in segments {
            match segment {
                Ok(key) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(key);
                }
                Err(index) => out.push_str(&format!("[{index}]")),
            }
        }
        (out, binding)
    }
}

/// Hands `node` to `seed`, giving any error without position the node's mark and path.
fn child<'de, S: DeserializeSeed<'de>>(
    seed: S,
    node: &'de Node,
    path: Path<'_>,
) -> Result<S::Value, ConfigError> {
    seed.deserialize(NodeDe { node, path })
        .map_err(|err| locate(err, node, path))
}

/// Gives an error without position the node's mark and path.
fn locate(err: ConfigError, node: &Node, path: Path<'_>) -> ConfigError {
    let err = if err.mark.is_none() {
        improve(err, node)
    } else {
        err
    };
    err.fill(node.mark, || path.render())
}

/// Rephrases serde's untagged-enum message with what the node is.
fn improve(mut err: ConfigError, node: &Node) -> ConfigError {
    if let ConfigErrorKind::Custom(msg) = &err.kind
        && let Some(name) = msg.strip_prefix("data did not match any variant of untagged enum ")
    {
        err.kind = ConfigErrorKind::InvalidType {
            found: node.describe(),
            expected: format!("a valid {name}"),
        };
    }
    err
}

fn key_text(key: &Node) -> &str {
    match &key.value {
        Value::Scalar(s) => &s.text,
        Value::Null => "~",
        Value::Seq(_) | Value::Map(_) => "?",
    }
}

/// The deserializer for one node.
struct NodeDe<'de, 'a> {
    node: &'de Node,
    path: Path<'a>,
}

impl<'de> IntoDeserializer<'de, ConfigError> for NodeDe<'de, '_> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> NodeDe<'de, '_> {
    /// The plain scalar's type, or `None` for quoted scalars and collections.
    fn typed(&self) -> Option<Plain> {
        match &self.node.value {
            Value::Null => Some(Plain::Null),
            Value::Scalar(s) if s.plain => Some(resolve_plain(&s.text)),
            _ => None,
        }
    }

    fn unexpected(&self) -> Unexpected<'de> {
        match &self.node.value {
            Value::Null => Unexpected::Unit,
            Value::Seq(_) => Unexpected::Seq,
            Value::Map(_) => Unexpected::Map,
            Value::Scalar(s) if !s.plain => Unexpected::Str(&s.text),
            Value::Scalar(s) => match resolve_plain(&s.text) {
                Plain::Null => Unexpected::Unit,
                Plain::Bool(b) => Unexpected::Bool(b),
                Plain::Int(i) => match (i64::try_from(i), u64::try_from(i)) {
                    (Ok(i), _) => Unexpected::Signed(i),
                    (_, Ok(u)) => Unexpected::Unsigned(u),
                    _ => Unexpected::Other("a very large integer"),
                },
                Plain::Float(f) => Unexpected::Float(f),
                Plain::Str => Unexpected::Str(&s.text),
            },
        }
    }

    fn invalid_type(&self, expected: &dyn Expected) -> ConfigError {
        let err: ConfigError = de::Error::invalid_type(self.unexpected(), expected);
        match &self.node.value {
            Value::Scalar(s) if !s.plain && resolve_plain(&s.text) != Plain::Str => {
                err.with_help("remove the quotes: a quoted value is a string")
            }
            _ => err,
        }
    }

    /// Numbers, booleans and null as typed plain scalars; anything else is a type error.
    fn typed_scalar<V: Visitor<'de>>(
        self,
        visitor: V,
        allow_str: bool,
    ) -> Result<V::Value, ConfigError> {
        match self.typed() {
            Some(Plain::Null) => visitor.visit_unit(),
            Some(Plain::Bool(b)) => visitor.visit_bool(b),
            Some(Plain::Int(i)) => match (i64::try_from(i), u64::try_from(i)) {
                (Ok(i), _) => visitor.visit_i64(i),
                (_, Ok(u)) => visitor.visit_u64(u),
                _ => visitor.visit_i128(i),
            },
            Some(Plain::Float(f)) => visitor.visit_f64(f),
            Some(Plain::Str) | None if allow_str => match &self.node.value {
                Value::Scalar(s) => visitor.visit_borrowed_str(&s.text),
                Value::Seq(items) => visit_seq(items, self.path, visitor),
                Value::Map(entries) => visitor.visit_map(MapAcc::new(entries, self.path)),
                Value::Null => visitor.visit_unit(),
            },
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn number<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        match self.typed() {
            Some(Plain::Int(_) | Plain::Float(_)) => self.typed_scalar(visitor, false),
            _ => Err(self.invalid_type(&visitor)),
        }
    }
}

fn visit_seq<'de, V: Visitor<'de>>(
    items: &'de [Node],
    path: Path<'_>,
    visitor: V,
) -> Result<V::Value, ConfigError> {
    let mut access = SeqAcc {
        items: items.iter().enumerate(),
        parent: path,
    };
    let value = visitor.visit_seq(&mut access)?;
    let left = access.items.len();
    if left > 0 {
        let read = items.len() - left;
        return Err(de::Error::invalid_length(
            items.len(),
            &format!("{read} items").as_str(),
        ));
    }
    Ok(value)
}

macro_rules! numbers {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
            self.number(visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for NodeDe<'de, '_> {
    type Error = ConfigError;

    numbers!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64);

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        self.typed_scalar(visitor, true)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        match self.typed() {
            Some(Plain::Bool(b)) => visitor.visit_bool(b),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        match &self.node.value {
            Value::Scalar(s) => visitor.visit_borrowed_str(&s.text),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        if self.node.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        if self.node.is_null() {
            visitor.visit_unit()
        } else {
            Err(self.invalid_type(&visitor))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, ConfigError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ConfigError> {
        match name {
            NODE_NAME => visitor.visit_enum(RawNode { node: self.node }),
            SPANNED_NAME => visitor.visit_map(SpannedAcc {
                mark: self.node.mark,
                de: Some(self),
                state: 0,
            }),
            _ => visitor.visit_newtype_struct(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        match &self.node.value {
            Value::Seq(items) => visit_seq(items, self.path, visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, ConfigError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, ConfigError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        match &self.node.value {
            Value::Map(entries) => visitor.visit_map(MapAcc::new(entries, self.path)),
            _ => Err(self.invalid_type(&"a mapping")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ConfigError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ConfigError> {
        match &self.node.value {
            Value::Scalar(_) => visitor.visit_enum(ScalarEnum { de: self }),
            Value::Map(entries) if entries.len() == 1 => {
                let (key, value) = &entries[0];
                visitor.visit_enum(MapEnum {
                    key,
                    value,
                    parent: self.path,
                })
            }
            _ => {
                let found = match &self.node.value {
                    Value::Map(entries) => format!("a mapping with {} keys", entries.len()),
                    _ => self.node.describe(),
                };
                Err(ConfigError::new(ConfigErrorKind::InvalidType {
                    found,
                    expected: format!("one of: {}", variants.join(", ")),
                }))
            }
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        visitor.visit_unit()
    }
}

struct SeqAcc<'de, 'a> {
    items: std::iter::Enumerate<std::slice::Iter<'de, Node>>,
    parent: Path<'a>,
}

impl<'de> SeqAccess<'de> for SeqAcc<'de, '_> {
    type Error = ConfigError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ConfigError> {
        match self.items.next() {
            Some((index, item)) => child(seed, item, Path::Index(&self.parent, index)).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapAcc<'de, 'a> {
    entries: std::slice::Iter<'de, (Node, Node)>,
    value: Option<(&'de str, &'de Node)>,
    parent: Path<'a>,
}

impl<'de, 'a> MapAcc<'de, 'a> {
    fn new(entries: &'de [(Node, Node)], parent: Path<'a>) -> Self {
        Self {
            entries: entries.iter(),
            value: None,
            parent,
        }
    }
}

impl<'de> MapAccess<'de> for MapAcc<'de, '_> {
    type Error = ConfigError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ConfigError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let text = key_text(key);
        self.value = Some((text, value));
        child(seed, key, Path::Key(&self.parent, text)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ConfigError> {
        let Some((text, value)) = self.value.take() else {
            return Err(de::Error::custom("a map value was read before its key"));
        };
        child(seed, value, Path::Key(&self.parent, text))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

#[cfg(test)]
#[path = "de_tests.rs"]
mod tests;

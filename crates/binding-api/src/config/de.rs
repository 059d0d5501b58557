//! A serde `Deserializer` over [`Node`], with positions in every error.
//!
//! Each node handed to a `Deserialize` impl (the root, every key, value and item) is wrapped so
//! that an error leaving it without a position gets that node's mark and path. Errors travel
//! outwards, so the innermost node wins: an unknown field points at its key, a wrong type at its
//! value, a missing field at the mapping. Untagged enums report at the node they were given.

use std::fmt::Display;
use std::marker::PhantomData;

use serde::de::value::{BorrowedStrDeserializer, SeqDeserializer, U8Deserializer, U32Deserializer};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, Expected, IntoDeserializer, MapAccess,
    SeqAccess, Unexpected, VariantAccess, Visitor,
};
use serde::Deserialize;

use super::error::{ConfigError, ConfigErrorKind};
use super::expr::{Resolver, substitute};
use super::spanned::{NODE_NAME, SPANNED_COLUMN, SPANNED_LINE, SPANNED_NAME, SPANNED_VALUE};
use super::yaml::{Mark, Node, Plain, Value, parse, quote, resolve_plain};

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
pub fn from_node_at<'de, T: Deserialize<'de>>(node: &'de Node, base: &str) -> Result<T, ConfigError> {
    child(PhantomData::<T>, node, Path::Root(base))
}

/// Parses, substitutes expressions and deserializes, in one go.
///
/// # Errors
/// As [`parse`], [`substitute`] and [`from_node`].
pub fn from_str<T: DeserializeOwned>(text: &str, resolver: &dyn Resolver) -> Result<T, ConfigError> {
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
fn child<'de, S: DeserializeSeed<'de>>(seed: S, node: &'de Node, path: Path<'_>) -> Result<S::Value, ConfigError> {
    seed.deserialize(NodeDe { node, path }).map_err(|err| locate(err, node, path))
}

/// Gives an error without position the node's mark and path.
fn locate(err: ConfigError, node: &Node, path: Path<'_>) -> ConfigError {
    let err = if err.mark.is_none() { improve(err, node) } else { err };
    err.fill(node.mark, || path.render())
}

/// Rephrases serde's untagged-enum message with what the node is.
fn improve(mut err: ConfigError, node: &Node) -> ConfigError {
    if let ConfigErrorKind::Custom(msg) = &err.kind
        && let Some(name) = msg.strip_prefix("data did not match any variant of untagged enum ")
    {
        err.kind = ConfigErrorKind::InvalidType { found: node.describe(), expected: format!("a valid {name}") };
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
    fn typed_scalar<V: Visitor<'de>>(self, visitor: V, allow_str: bool) -> Result<V::Value, ConfigError> {
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

fn visit_seq<'de, V: Visitor<'de>>(items: &'de [Node], path: Path<'_>, visitor: V) -> Result<V::Value, ConfigError> {
    let mut access = SeqAcc { items: items.iter().enumerate(), parent: path };
    let value = visitor.visit_seq(&mut access)?;
    let left = access.items.len();
    if left > 0 {
        let read = items.len() - left;
        return Err(de::Error::invalid_length(items.len(), &format!("{read} items").as_str()));
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
        if self.node.is_null() { visitor.visit_none() } else { visitor.visit_some(self) }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        if self.node.is_null() { visitor.visit_unit() } else { Err(self.invalid_type(&visitor)) }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, ConfigError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, ConfigError> {
        match name {
            NODE_NAME => visitor.visit_enum(RawNode { node: self.node }),
            SPANNED_NAME => visitor.visit_map(SpannedAcc { mark: self.node.mark, de: Some(self), state: 0 }),
            _ => visitor.visit_newtype_struct(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        match &self.node.value {
            Value::Seq(items) => visit_seq(items, self.path, visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, ConfigError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(self, _: &'static str, _: usize, visitor: V) -> Result<V::Value, ConfigError> {
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
                visitor.visit_enum(MapEnum { key, value, parent: self.path })
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

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, ConfigError> {
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
        Self { entries: entries.iter(), value: None, parent }
    }
}

impl<'de> MapAccess<'de> for MapAcc<'de, '_> {
    type Error = ConfigError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, ConfigError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let text = key_text(key);
        self.value = Some((text, value));
        child(seed, key, Path::Key(&self.parent, text)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, ConfigError> {
        let Some((text, value)) = self.value.take() else {
            return Err(de::Error::custom("a map value was read before its key"));
        };
        child(seed, value, Path::Key(&self.parent, text))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// An enum written as a scalar: a unit variant.
struct ScalarEnum<'de, 'a> {
    de: NodeDe<'de, 'a>,
}

impl<'de, 'a> EnumAccess<'de> for ScalarEnum<'de, 'a> {
    type Error = ConfigError;
    type Variant = UnitOnly<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, UnitOnly<'de>), ConfigError> {
        let node = self.de.node;
        Ok((child(seed, node, self.de.path)?, UnitOnly { node }))
    }
}

struct UnitOnly<'de> {
    node: &'de Node,
}

impl UnitOnly<'_> {
    fn needs_value(&self) -> ConfigError {
        let name = key_text(self.node);
        ConfigError::new(ConfigErrorKind::InvalidType {
            found: self.node.describe(),
            expected: format!("a mapping '{name}: ...'"),
        })
    }
}

impl<'de> VariantAccess<'de> for UnitOnly<'de> {
    type Error = ConfigError;

    fn unit_variant(self) -> Result<(), ConfigError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _: T) -> Result<T::Value, ConfigError> {
        Err(self.needs_value())
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, ConfigError> {
        Err(self.needs_value())
    }

    fn struct_variant<V: Visitor<'de>>(self, _: &'static [&'static str], _: V) -> Result<V::Value, ConfigError> {
        Err(self.needs_value())
    }
}

/// An enum written as a single-key mapping `variant: value`.
struct MapEnum<'de, 'a> {
    key: &'de Node,
    value: &'de Node,
    parent: Path<'a>,
}

impl<'de, 'a> EnumAccess<'de> for MapEnum<'de, 'a> {
    type Error = ConfigError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), ConfigError> {
        let variant = child(seed, self.key, Path::Key(&self.parent, key_text(self.key)))?;
        Ok((variant, self))
    }
}

impl<'de> VariantAccess<'de> for MapEnum<'de, '_> {
    type Error = ConfigError;

    fn unit_variant(self) -> Result<(), ConfigError> {
        child(PhantomData::<()>, self.value, Path::Key(&self.parent, key_text(self.key)))
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, ConfigError> {
        child(seed, self.value, Path::Key(&self.parent, key_text(self.key)))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, ConfigError> {
        let path = Path::Key(&self.parent, key_text(self.key));
        let de = NodeDe { node: self.value, path };
        de::Deserializer::deserialize_seq(de, visitor).map_err(|err| locate(err, self.value, path))
    }

    fn struct_variant<V: Visitor<'de>>(self, _: &'static [&'static str], visitor: V) -> Result<V::Value, ConfigError> {
        let path = Path::Key(&self.parent, key_text(self.key));
        let de = NodeDe { node: self.value, path };
        de::Deserializer::deserialize_map(de, visitor).map_err(|err| locate(err, self.value, path))
    }
}

/// The magic for [`Spanned`](super::Spanned): a map of line, column and the value.
struct SpannedAcc<'de, 'a> {
    de: Option<NodeDe<'de, 'a>>,
    mark: Mark,
    state: u8,
}

impl<'de> MapAccess<'de> for SpannedAcc<'de, '_> {
    type Error = ConfigError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, ConfigError> {
        let key = match self.state {
            0 => SPANNED_LINE,
            1 => SPANNED_COLUMN,
            2 => SPANNED_VALUE,
            _ => return Ok(None),
        };
        seed.deserialize(BorrowedStrDeserializer::new(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, ConfigError> {
        self.state += 1;
        match self.state {
            1 => seed.deserialize(U32Deserializer::new(self.mark.line)),
            2 => seed.deserialize(U32Deserializer::new(self.mark.column)),
            _ => match self.de.take() {
                Some(de) => seed.deserialize(de),
                None => Err(de::Error::custom("a Spanned value was read twice")),
            },
        }
    }
}

/// The magic for [`Node`]'s `Deserialize`: the node as an enum `(tag, (line, column, payload))`.
struct RawNode<'de> {
    node: &'de Node,
}

/// Tags of [`RawNode`].
pub(crate) const RAW_NULL: u8 = 0;
pub(crate) const RAW_PLAIN: u8 = 1;
pub(crate) const RAW_QUOTED: u8 = 2;
pub(crate) const RAW_SEQ: u8 = 3;
pub(crate) const RAW_MAP: u8 = 4;

impl<'de> EnumAccess<'de> for RawNode<'de> {
    type Error = ConfigError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), ConfigError> {
        let tag = match &self.node.value {
            Value::Null => RAW_NULL,
            Value::Scalar(s) if s.plain => RAW_PLAIN,
            Value::Scalar(_) => RAW_QUOTED,
            Value::Seq(_) => RAW_SEQ,
            Value::Map(_) => RAW_MAP,
        };
        Ok((seed.deserialize(U8Deserializer::<ConfigError>::new(tag))?, self))
    }
}

impl<'de> VariantAccess<'de> for RawNode<'de> {
    type Error = ConfigError;

    fn unit_variant(self) -> Result<(), ConfigError> {
        Err(de::Error::custom("a Node is read as a tuple variant"))
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _: T) -> Result<T::Value, ConfigError> {
        Err(de::Error::custom("a Node is read as a tuple variant"))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, ConfigError> {
        visitor.visit_seq(RawBody { node: self.node, position: 0 })
    }

    fn struct_variant<V: Visitor<'de>>(self, _: &'static [&'static str], _: V) -> Result<V::Value, ConfigError> {
        Err(de::Error::custom("a Node is read as a tuple variant"))
    }
}

/// Line, column, then the payload: text, items (each a `Node`) or entries (each a pair).
struct RawBody<'de> {
    node: &'de Node,
    position: u8,
}

const NO_PATH: Path<'static> = Path::Root("");

impl<'de> SeqAccess<'de> for RawBody<'de> {
    type Error = ConfigError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, ConfigError> {
        self.position += 1;
        let node = self.node;
        match self.position {
            1 => seed.deserialize(U32Deserializer::new(node.mark.line)).map(Some),
            2 => seed.deserialize(U32Deserializer::new(node.mark.column)).map(Some),
            3 => match &node.value {
                Value::Null => Ok(None),
                Value::Scalar(s) => seed.deserialize(BorrowedStrDeserializer::new(&s.text)).map(Some),
                Value::Seq(items) => {
                    let items = items.iter().map(|n| NodeDe { node: n, path: NO_PATH });
                    seed.deserialize(SeqDeserializer::new(items)).map(Some)
                }
                Value::Map(entries) => {
                    let pairs = entries.iter().map(|(k, v)| {
                        SeqDeserializer::new([NodeDe { node: k, path: NO_PATH }, NodeDe { node: v, path: NO_PATH }].into_iter())
                    });
                    seed.deserialize(SeqDeserializer::new(pairs)).map(Some)
                }
            },
            _ => Ok(None),
        }
    }
}

impl de::Error for ConfigError {
    fn custom<T: Display>(msg: T) -> Self {
        ConfigError::new(ConfigErrorKind::Custom(msg.to_string()))
    }

    fn invalid_type(unexpected: Unexpected<'_>, expected: &dyn Expected) -> Self {
        ConfigError::new(ConfigErrorKind::InvalidType {
            found: describe(&unexpected),
            expected: humanize(&expected.to_string()),
        })
    }

    fn invalid_value(unexpected: Unexpected<'_>, expected: &dyn Expected) -> Self {
        let found = match unexpected {
            Unexpected::Signed(i) => i.to_string(),
            Unexpected::Unsigned(u) => u.to_string(),
            Unexpected::Float(f) => f.to_string(),
            Unexpected::Str(s) => quote(s),
            other => describe(&other),
        };
        ConfigError::new(ConfigErrorKind::InvalidValue { found, expected: humanize(&expected.to_string()) })
    }

    fn invalid_length(len: usize, expected: &dyn Expected) -> Self {
        ConfigError::new(ConfigErrorKind::InvalidLength { len, expected: humanize(&expected.to_string()) })
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        ConfigError::new(ConfigErrorKind::UnknownVariant {
            value: variant.to_owned(),
            allowed: expected.iter().map(|s| (*s).to_owned()).collect(),
        })
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        ConfigError::new(ConfigErrorKind::UnknownField {
            field: field.to_owned(),
            allowed: expected.iter().map(|s| (*s).to_owned()).collect(),
        })
    }

    fn missing_field(field: &'static str) -> Self {
        ConfigError::new(ConfigErrorKind::MissingField { field: field.to_owned() })
    }

    fn duplicate_field(field: &'static str) -> Self {
        ConfigError::new(ConfigErrorKind::Custom(format!("duplicate key '{field}'")))
    }
}

/// serde's `Unexpected`, in words.
fn describe(unexpected: &Unexpected<'_>) -> String {
    match unexpected {
        Unexpected::Bool(b) => format!("the boolean {b}"),
        Unexpected::Unsigned(u) => format!("the integer {u}"),
        Unexpected::Signed(i) => format!("the integer {i}"),
        Unexpected::Float(f) => format!("the number {f}"),
        Unexpected::Char(c) => format!("the character {c:?}"),
        Unexpected::Str(s) => format!("the string {}", quote(s)),
        Unexpected::Bytes(_) => "bytes".to_owned(),
        Unexpected::Unit => "null (an empty value)".to_owned(),
        Unexpected::Option => "an optional value".to_owned(),
        Unexpected::NewtypeStruct => "a value".to_owned(),
        Unexpected::Seq => "a sequence".to_owned(),
        Unexpected::Map => "a mapping".to_owned(),
        Unexpected::Enum | Unexpected::UnitVariant => "a name".to_owned(),
        Unexpected::NewtypeVariant | Unexpected::TupleVariant | Unexpected::StructVariant => {
            "a single-key mapping".to_owned()
        }
        Unexpected::Other(other) => (*other).to_owned(),
    }
}

/// serde's "expected" phrases, in words.
fn humanize(expected: &str) -> String {
    let range = |lo: i128, hi: i128| format!("an integer between {lo} and {hi}");
    match expected {
        "u8" => range(0, u8::MAX.into()),
        "u16" => range(0, u16::MAX.into()),
        "u32" => range(0, u32::MAX.into()),
        "i8" => range(i8::MIN.into(), i8::MAX.into()),
        "i16" => range(i16::MIN.into(), i16::MAX.into()),
        "i32" => range(i32::MIN.into(), i32::MAX.into()),
        "u64" | "u128" | "usize" => "a non-negative integer".to_owned(),
        "i64" | "i128" | "isize" => "an integer".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "a borrowed string" | "a string" | "string" => "a string".to_owned(),
        "unit" => "null (an empty value)".to_owned(),
        "a map" | "map" => "a mapping".to_owned(),
        "option" => "a value or null".to_owned(),
        _ if expected.starts_with("struct ") => "a mapping".to_owned(),
        _ if expected.starts_with("a nonzero ") => {
            format!("a non-zero {}", humanize(&expected["a nonzero ".len()..]).trim_start_matches("a ").trim_start_matches("an "))
        }
        _ if expected.starts_with("tuple of ") || expected.starts_with("a tuple of size ") => {
            format!("a sequence ({expected})")
        }
        _ => expected.to_owned(),
    }
}

#[cfg(test)]
#[path = "de_tests.rs"]
mod tests;

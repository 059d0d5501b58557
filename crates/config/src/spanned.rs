//! [`Spanned<T>`] (a value with its position) and `Deserialize` for [`Node`] (a raw subtree).
//!
//! Both ask the deserializer for a newtype struct with a reserved name. Ours
//! ([`from_node`](super::from_node)) answers with the position (and, for `Node`, a copy of the
//! subtree with every position); any other deserializer just deserializes the value, with
//! [`Mark::UNKNOWN`]. Inside `#[serde(untagged)]` enums and `#[serde(flatten)]` structs serde
//! buffers values first, so positions are unknown there too.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use serde::de::{
    self, Deserialize, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

use super::de::{RAW_MAP, RAW_NULL, RAW_PLAIN, RAW_QUOTED, RAW_SEQ};
use super::error::{ConfigError, ConfigErrorKind};
use super::yaml::{Mark, Node, Scalar, Value};

pub(crate) const NODE_NAME: &str = "$zilla_config::Node";
pub(crate) const SPANNED_NAME: &str = "$zilla_config::Spanned";
pub(crate) const SPANNED_LINE: &str = "$zilla_config::Spanned::line";
pub(crate) const SPANNED_COLUMN: &str = "$zilla_config::Spanned::column";
pub(crate) const SPANNED_VALUE: &str = "$zilla_config::Spanned::value";

/// A value with the position it was read from, to report errors found after deserializing.
///
/// ```
/// use zilla_config::{ConfigErrorKind, Spanned, from_node, parse};
///
/// #[derive(serde::Deserialize)]
/// struct Options {
///     port: Spanned<u32>,
/// }
///
/// let root = parse("port: 70000\n").unwrap();
/// let options: Options = from_node(&root).unwrap();
/// let err = options.port.error(ConfigErrorKind::InvalidValue {
///     found: options.port.to_string(),
///     expected: "a port between 0 and 65535".into(),
/// });
/// assert_eq!(err.to_string(), "1:7: invalid value 70000, expected a port between 0 and 65535");
/// ```
///
/// Equality, ordering and hashing look at the value only.
#[derive(Clone, Copy, Default)]
pub struct Spanned<T> {
    /// Where the value starts ([`Mark::UNKNOWN`] if not read by [`from_node`](super::from_node)).
    pub mark: Mark,
    /// The value.
    pub value: T,
}

impl<T> Spanned<T> {
    /// A value at a position.
    pub fn new(mark: Mark, value: T) -> Self {
        Self { mark, value }
    }

    /// The value.
    pub fn into_inner(self) -> T {
        self.value
    }

    /// An error at the value's position.
    #[must_use]
    pub fn error(&self, kind: ConfigErrorKind) -> ConfigError {
        ConfigError::at(self.mark, kind)
    }
}

impl<T> Deref for Spanned<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Spanned<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: fmt::Debug> fmt::Debug for Spanned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} @ {}", self.value, self.mark)
    }
}

impl<T: fmt::Display> fmt::Display for Spanned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: Eq> Eq for Spanned<T> {}

impl<T: PartialOrd> PartialOrd for Spanned<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        self.value.partial_cmp(&other.value)
    }
}

impl<T: Ord> Ord for Spanned<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.value.cmp(&other.value)
    }
}

impl<T: Hash> Hash for Spanned<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.value.hash(state);
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_newtype_struct(SPANNED_NAME, SpannedVisitor(PhantomData))
    }
}

struct SpannedVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for SpannedVisitor<T> {
    type Value = Spanned<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value")
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Spanned<T>, D::Error> {
        T::deserialize(deserializer).map(|value| Spanned {
            mark: Mark::UNKNOWN,
            value,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Spanned<T>, A::Error> {
        expect_key(&mut map, SPANNED_LINE)?;
        let line = map.next_value()?;
        expect_key(&mut map, SPANNED_COLUMN)?;
        let column = map.next_value()?;
        expect_key(&mut map, SPANNED_VALUE)?;
        let value = map.next_value()?;
        Ok(Spanned {
            mark: Mark { line, column },
            value,
        })
    }
}

fn expect_key<'de, A: MapAccess<'de>>(map: &mut A, name: &str) -> Result<(), A::Error> {
    match map.next_key::<&str>()? {
        Some(key) if key == name => Ok(()),
        _ => Err(de::Error::custom(
            "Spanned<T> needs zilla_config::from_node",
        )),
    }
}

impl<'de> Deserialize<'de> for Node {
    /// With [`from_node`](super::from_node): a copy of the subtree, positions included.
    /// Elsewhere: the value as a tree with [`Mark::UNKNOWN`] positions.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_newtype_struct(NODE_NAME, NodeVisitor)
    }
}

struct NodeVisitor;

fn unknown(value: Value) -> Node {
    Node {
        mark: Mark::UNKNOWN,
        value,
    }
}

fn plain(text: String) -> Node {
    unknown(Value::Scalar(Scalar { text, plain: true }))
}

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Node, A::Error> {
        let (tag, body) = data.variant::<u8>()?;
        body.tuple_variant(3, RawVisitor(tag))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(plain(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(plain(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(plain(v.to_string()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        Ok(plain(v.to_string()))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        Ok(plain(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        let text = if v.is_nan() {
            ".nan".to_owned()
        } else if v.is_infinite() {
            if v > 0.0 { ".inf" } else { "-.inf" }.to_owned()
        } else {
            format!("{v:?}")
        };
        Ok(plain(text))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(unknown(Value::Scalar(Scalar {
            text: v.to_owned(),
            plain: false,
        })))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(unknown(Value::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(unknown(Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(unknown(Value::Seq(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<Node, Node>()? {
            entries.push(entry);
        }
        Ok(unknown(Value::Map(entries)))
    }
}

/// Reads the raw node encoding's `(line, column, payload)` for the given tag.
struct RawVisitor(u8);

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a node")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let missing = || de::Error::custom("incomplete node");
        let line: u32 = seq.next_element()?.ok_or_else(missing)?;
        let column: u32 = seq.next_element()?.ok_or_else(missing)?;
        let value = match self.0 {
            RAW_NULL => Value::Null,
            RAW_PLAIN | RAW_QUOTED => Value::Scalar(Scalar {
                text: seq.next_element()?.ok_or_else(missing)?,
                plain: self.0 == RAW_PLAIN,
            }),
            RAW_SEQ => Value::Seq(seq.next_element()?.ok_or_else(missing)?),
            RAW_MAP => Value::Map(seq.next_element()?.ok_or_else(missing)?),
            _ => return Err(missing()),
        };
        Ok(Node {
            mark: Mark { line, column },
            value,
        })
    }
}

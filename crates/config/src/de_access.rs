//! The enum-shaped parts of the node deserializer: enum variants, and the reserved newtype
//! structs behind [`Spanned`](crate::Spanned) and `Deserialize for Node`.

use serde::de::value::{BorrowedStrDeserializer, SeqDeserializer, U8Deserializer, U32Deserializer};
use serde::de::{self, DeserializeSeed, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};
use std::marker::PhantomData;

use super::{NodeDe, Path, child, key_text, locate};
use crate::error::{ConfigError, ConfigErrorKind};
use crate::spanned::{SPANNED_COLUMN, SPANNED_LINE, SPANNED_VALUE};
use crate::yaml::{Mark, Node, Value};

/// An enum written as a scalar: a unit variant.
pub(super) struct ScalarEnum<'de, 'a> {
    pub(super) de: NodeDe<'de, 'a>,
}

impl<'de, 'a> EnumAccess<'de> for ScalarEnum<'de, 'a> {
    type Error = ConfigError;
    type Variant = UnitOnly<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, UnitOnly<'de>), ConfigError> {
        let node = self.de.node;
        Ok((child(seed, node, self.de.path)?, UnitOnly { node }))
    }
}

pub(super) struct UnitOnly<'de> {
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

    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, ConfigError> {
        Err(self.needs_value())
    }
}

/// An enum written as a single-key mapping `variant: value`.
pub(super) struct MapEnum<'de, 'a> {
    pub(super) key: &'de Node,
    pub(super) value: &'de Node,
    pub(super) parent: Path<'a>,
}

impl<'de, 'a> EnumAccess<'de> for MapEnum<'de, 'a> {
    type Error = ConfigError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self), ConfigError> {
        let variant = child(seed, self.key, Path::Key(&self.parent, key_text(self.key)))?;
        Ok((variant, self))
    }
}

impl<'de> VariantAccess<'de> for MapEnum<'de, '_> {
    type Error = ConfigError;

    fn unit_variant(self) -> Result<(), ConfigError> {
        child(
            PhantomData::<()>,
            self.value,
            Path::Key(&self.parent, key_text(self.key)),
        )
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, ConfigError> {
        child(
            seed,
            self.value,
            Path::Key(&self.parent, key_text(self.key)),
        )
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, ConfigError> {
        let path = Path::Key(&self.parent, key_text(self.key));
        let de = NodeDe {
            node: self.value,
            path,
        };
        de::Deserializer::deserialize_seq(de, visitor).map_err(|err| locate(err, self.value, path))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ConfigError> {
        let path = Path::Key(&self.parent, key_text(self.key));
        let de = NodeDe {
            node: self.value,
            path,
        };
        de::Deserializer::deserialize_map(de, visitor).map_err(|err| locate(err, self.value, path))
    }
}

/// The magic for [`Spanned`](crate::Spanned): a map of line, column and the value.
pub(super) struct SpannedAcc<'de, 'a> {
    pub(super) de: Option<NodeDe<'de, 'a>>,
    pub(super) mark: Mark,
    pub(super) state: u8,
}

impl<'de> MapAccess<'de> for SpannedAcc<'de, '_> {
    type Error = ConfigError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ConfigError> {
        let key = match self.state {
            0 => SPANNED_LINE,
            1 => SPANNED_COLUMN,
            2 => SPANNED_VALUE,
            _ => return Ok(None),
        };
        seed.deserialize(BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ConfigError> {
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
pub(super) struct RawNode<'de> {
    pub(super) node: &'de Node,
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

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self), ConfigError> {
        let tag = match &self.node.value {
            Value::Null => RAW_NULL,
            Value::Scalar(s) if s.plain => RAW_PLAIN,
            Value::Scalar(_) => RAW_QUOTED,
            Value::Seq(_) => RAW_SEQ,
            Value::Map(_) => RAW_MAP,
        };
        Ok((
            seed.deserialize(U8Deserializer::<ConfigError>::new(tag))?,
            self,
        ))
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
        visitor.visit_seq(RawBody {
            node: self.node,
            position: 0,
        })
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, ConfigError> {
        Err(de::Error::custom("a Node is read as a tuple variant"))
    }
}

/// Line, column, then the payload: text, items (each a `Node`) or entries (each a pair).
pub(super) struct RawBody<'de> {
    node: &'de Node,
    position: u8,
}

const NO_PATH: Path<'static> = Path::Root("");

impl<'de> SeqAccess<'de> for RawBody<'de> {
    type Error = ConfigError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ConfigError> {
        self.position += 1;
        let node = self.node;
        match self.position {
            1 => seed
                .deserialize(U32Deserializer::new(node.mark.line))
                .map(Some),
            2 => seed
                .deserialize(U32Deserializer::new(node.mark.column))
                .map(Some),
            3 => match &node.value {
                Value::Null => Ok(None),
                Value::Scalar(s) => seed
                    .deserialize(BorrowedStrDeserializer::new(&s.text))
                    .map(Some),
                Value::Seq(items) => {
                    let items = items.iter().map(|n| NodeDe {
                        node: n,
                        path: NO_PATH,
                    });
                    seed.deserialize(SeqDeserializer::new(items)).map(Some)
                }
                Value::Map(entries) => {
                    let pairs = entries.iter().map(|(k, v)| {
                        SeqDeserializer::new(
                            [
                                NodeDe {
                                    node: k,
                                    path: NO_PATH,
                                },
                                NodeDe {
                                    node: v,
                                    path: NO_PATH,
                                },
                            ]
                            .into_iter(),
                        )
                    });
                    seed.deserialize(SeqDeserializer::new(pairs)).map(Some)
                }
            },
            _ => Ok(None),
        }
    }
}

//! `serde::de::Error` for [`ConfigError`], with serde's phrases turned into plain words.

use std::fmt::Display;

use serde::de::{self, Expected, Unexpected};

use crate::error::{ConfigError, ConfigErrorKind};
use crate::yaml::quote;

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
        ConfigError::new(ConfigErrorKind::InvalidValue {
            found,
            expected: humanize(&expected.to_string()),
        })
    }

    fn invalid_length(len: usize, expected: &dyn Expected) -> Self {
        ConfigError::new(ConfigErrorKind::InvalidLength {
            len,
            expected: humanize(&expected.to_string()),
        })
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
        ConfigError::new(ConfigErrorKind::MissingField {
            field: field.to_owned(),
        })
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
            format!(
                "a non-zero {}",
                humanize(&expected["a nonzero ".len()..])
                    .trim_start_matches("a ")
                    .trim_start_matches("an ")
            )
        }
        _ if expected.starts_with("tuple of ") || expected.starts_with("a tuple of size ") => {
            format!("a sequence ({expected})")
        }
        _ => expected.to_owned(),
    }
}

//! The small value types scenario files use: byte strings, durations, ports, text patterns
//! and reason names.

use std::fmt;
use std::time::Duration;

use binding_api::frame::ReasonKind;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// Bytes written in a scenario: `"text"`, `{text: "...", times: n}` or `{hex: "0a 0b", times: n}`.
///
/// In a network peer's `write` step the mapping may also say `wait: false`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bytes {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// `wait`, when given (only `write` accepts it).
    pub wait: Option<bool>,
}

/// The largest byte string a scenario may describe (`times` included).
pub const MAX_BYTES: usize = 256 * 1024 * 1024;

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BytesVisitor)
    }
}

struct BytesVisitor;

impl BytesVisitor {
    fn text<E: de::Error>(text: String) -> Result<Bytes, E> {
        Ok(Bytes {
            bytes: text.into_bytes(),
            wait: None,
        })
    }
}

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("text, or a mapping with `text` or `hex` (and optionally `times`)")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Bytes, E> {
        Self::text(v.to_owned())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bytes, E> {
        Self::text(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Bytes, E> {
        Self::text(v.to_string())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Bytes, A::Error> {
        let mut text: Option<String> = None;
        let mut hex: Option<String> = None;
        let mut times: Option<u64> = None;
        let mut wait: Option<bool> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "text" => text = Some(map.next_value()?),
                "hex" => hex = Some(map.next_value()?),
                "times" => times = Some(map.next_value()?),
                "wait" => wait = Some(map.next_value()?),
                other => {
                    return Err(de::Error::unknown_field(
                        other,
                        &["text", "hex", "times", "wait"],
                    ));
                }
            }
        }
        let unit = match (text, hex) {
            (Some(text), None) => text.into_bytes(),
            (None, Some(hex)) => parse_hex(&hex).map_err(de::Error::custom)?,
            (Some(_), Some(_)) => return Err(de::Error::custom("give `text` or `hex`, not both")),
            (None, None) => return Err(de::Error::missing_field("text")),
        };
        let times = usize::try_from(times.unwrap_or(1)).unwrap_or(usize::MAX);
        if unit.len().saturating_mul(times) > MAX_BYTES {
            return Err(de::Error::custom(format!(
                "{} × {times} bytes is more than the {MAX_BYTES} a scenario may use",
                unit.len()
            )));
        }
        Ok(Bytes {
            bytes: unit.repeat(times),
            wait,
        })
    }
}

/// Hex digits, optionally separated by spaces, colons or underscores.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !matches!(b, b' ' | b':' | b'_' | b'\n' | b'\t'))
        .collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("hex '{text}' has an odd number of digits"));
    }
    let nibble = |b: u8| match b {
        b'0'..=b'9' => Ok(b - b'0'),
        b'a'..=b'f' => Ok(b - b'a' + 10),
        b'A'..=b'F' => Ok(b - b'A' + 10),
        _ => Err(format!("'{}' is not a hex digit", char::from(b))),
    };
    digits
        .chunks(2)
        .map(|pair| Ok(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// A duration: `250ms`, `2s`, or a number of milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 250ms or 2s")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dur, E> {
                Ok(Dur(Duration::from_millis(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                parse_duration(v).map(Dur).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Parses `250ms`, `2s` or `1.5s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("'{text}' is not a duration such as 250ms or 2s");
    let text = text.trim();
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else {
        return Err(bad());
    };
    let value: f64 = number.trim().parse().map_err(|_| bad())?;
    if !(0.0..=3600.0).contains(&(value * scale)) {
        return Err(format!("'{text}' is not between 0 and 1 hour"));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

/// A TCP port: a number, or text holding one (such as a quoted `${{env.PORT}}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port(pub u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Port;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port from 1 to 65535")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Port, E> {
                match u16::try_from(v) {
                    Ok(port) if port > 0 => Ok(Port(port)),
                    _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Port, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Port, E> {
                match v.trim().parse::<u64>() {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Text where `*` matches any run of characters (possibly empty); everything else is literal.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Pattern(pub String);

impl Pattern {
    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        glob(self.0.as_bytes(), text.as_bytes())
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Greedy wildcard matching with backtracking to the last `*` (linear in practice).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// A reason for reset and abort, written in kebab case (`no-route`, `unreachable`...).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ReasonName {
    /// [`ReasonKind::NoRoute`]
    NoRoute,
    /// [`ReasonKind::Refused`]
    Refused,
    /// [`ReasonKind::Unreachable`]
    Unreachable,
    /// [`ReasonKind::ProtocolViolation`]
    ProtocolViolation,
    /// [`ReasonKind::Timeout`]
    Timeout,
    /// [`ReasonKind::Shutdown`]
    Shutdown,
    /// [`ReasonKind::Dropped`]
    Dropped,
    /// [`ReasonKind::ConnectionLost`]
    ConnectionLost,
    /// [`ReasonKind::Invalid`]
    Invalid,
}

impl ReasonName {
    /// The kind it names.
    pub fn kind(self) -> ReasonKind {
        match self {
            ReasonName::NoRoute => ReasonKind::NoRoute,
            ReasonName::Refused => ReasonKind::Refused,
            ReasonName::Unreachable => ReasonKind::Unreachable,
            ReasonName::ProtocolViolation => ReasonKind::ProtocolViolation,
            ReasonName::Timeout => ReasonKind::Timeout,
            ReasonName::Shutdown => ReasonKind::Shutdown,
            ReasonName::Dropped => ReasonKind::Dropped,
            ReasonName::ConnectionLost => ReasonKind::ConnectionLost,
            ReasonName::Invalid => ReasonKind::Invalid,
        }
    }
}

/// Bytes for a message: quoted text when printable, else hex; cut after 64 bytes.
pub fn show(bytes: &[u8]) -> String {
    const MAX: usize = 64;
    let cut = &bytes[..bytes.len().min(MAX)];
    let more = if bytes.len() > MAX {
        format!("… ({} bytes)", bytes.len())
    } else {
        String::new()
    };
    match std::str::from_utf8(cut) {
        Ok(text)
            if text
                .chars()
                .all(|c| !c.is_control() || c == '\n' || c == '\r' || c == '\t') =>
        {
            format!("{text:?}{more}")
        }
        _ => {
            let hex: Vec<String> = cut.iter().map(|b| format!("{b:02x}")).collect();
            format!("hex {}{more}", hex.join(""))
        }
    }
}

/// How many bytes of `got` agree with `want` from the start.
pub fn common_prefix(got: &[u8], want: &[u8]) -> usize {
    got.iter().zip(want).take_while(|(a, b)| a == b).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches() {
        let p = |s: &str| Pattern(s.to_owned());
        assert!(p("127.0.0.1:*").matches("127.0.0.1:8080"));
        assert!(p("*:8080").matches("[::1]:8080"));
        assert!(p("*").matches(""));
        assert!(p("a*b*c").matches("aXXbYYc"));
        assert!(!p("a*b*c").matches("aXXbYY"));
        assert!(!p("127.0.0.1:80").matches("127.0.0.1:8080"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("2").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn hex() {
        assert_eq!(parse_hex("0a 0B:ff"), Ok(vec![0x0a, 0x0b, 0xff]));
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
    }

    #[test]
    fn shows_text_or_hex() {
        assert_eq!(show(b"hi"), "\"hi\"");
        assert_eq!(show(&[0, 1]), "hex 0001");
    }
}

//! Event ids in Zilla's v1 format, and the `Last-Event-ID` parser.
//!
//! An id carries, for every partition of the topic, the next offset to read:
//!
//! ```text
//! progress := 0x01                                  kind: v1
//!             zigzag-varint32 count
//!             count × ( zigzag-varint32 partition, zigzag-varint64 next offset )
//! id       := base64url(progress) with '=' padding   [ "/" etag ]        (format `${etag}`)
//!           | '[' ( '"' base64url(key) '"' | null ) ',' '"' progress-id '"' ']'
//!                                                      (format `["${base64(key)}","${etag}"]`)
//! ```
//!
//! `[p0 → 2, p1 → 1]` is `AQQABAIC`; a single partition `[p0 → 1]` is `AQIAAg==`.
//!
//! Parsing differs from Zilla on purpose: the key format is parsed whole (Zilla drops the last
//! character of the progress when no etag follows, and replays from the start), padding is
//! optional, and anything malformed is an [`EventIdError`] (an HTTP 400 with its text as the
//! reason) instead of a silent replay of the whole topic.

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use thiserror::Error;

/// The only progress kind Zilla defines.
const KIND_V1: u8 = 1;

/// At most this many partitions in one id (a larger count is refused before any allocation).
pub const MAX_PARTITIONS: usize = 4096;

const ENCODE: GeneralPurpose = GeneralPurpose::new(&URL_SAFE, GeneralPurposeConfig::new());
const DECODE: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The next offset to read, per partition.
pub type Progress = Vec<(i32, i64)>;

/// A parsed `Last-Event-ID`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastEventId {
    /// Next offset per partition; partitions not listed start at the route's default.
    pub progress: Progress,
    /// The etag that followed the progress, if any (ignored for resuming, as in Zilla).
    pub etag: Option<String>,
}

/// Why a `Last-Event-ID` could not be understood.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum EventIdError {
    /// Not base64url.
    #[error("last-event-id is not base64url")]
    Base64,
    /// The first byte is not a known progress kind.
    #[error("last-event-id has unknown progress kind {0}")]
    Kind(u8),
    /// The bytes end inside a field.
    #[error("last-event-id is truncated")]
    Truncated,
    /// Bytes remain after the last partition.
    #[error("last-event-id has {0} unexpected trailing bytes")]
    Trailing(usize),
    /// A varint is longer than its type allows.
    #[error("last-event-id has a malformed number")]
    Varint,
    /// The partition count is negative or larger than [`MAX_PARTITIONS`].
    #[error("last-event-id names {0} partitions (0 to {MAX_PARTITIONS} allowed)")]
    Count(i64),
    /// A partition id or offset is negative.
    #[error("last-event-id has a negative partition or offset")]
    Negative,
    /// A partition appears twice.
    #[error("last-event-id names partition {0} twice")]
    Duplicate(i32),
    /// The key format `["key","progress"]` is malformed.
    #[error("last-event-id is not of the form [\"key\",\"progress\"]: {0}")]
    Syntax(&'static str),
}

/// base64url with padding, as Zilla encodes keys in ids and tombstone events.
pub fn base64url(bytes: &[u8]) -> String {
    ENCODE.encode(bytes)
}

/// Encodes progress as Zilla does: base64url with padding.
pub fn encode_progress(progress: &[(i32, i64)]) -> String {
    let mut bytes = Vec::with_capacity(2 + progress.len() * 6);
    bytes.push(KIND_V1);
    put_varint(&mut bytes, zigzag32(progress.len() as i32));
    for &(partition, offset) in progress {
        put_varint(&mut bytes, zigzag32(partition));
        put_varint(&mut bytes, zigzag64(offset));
    }
    ENCODE.encode(bytes)
}

/// The id in the default format, `${etag}`: progress, then `/etag` when the record has one.
pub fn format_id(progress: &[(i32, i64)], etag: Option<&str>) -> String {
    let mut id = encode_progress(progress);
    if let Some(etag) = etag {
        id.push('/');
        id.push_str(etag);
    }
    id
}

/// The id in the key format, `["${base64(key)}","${etag}"]`; a null key is written `null`.
pub fn format_key_id(key: Option<&[u8]>, progress: &[(i32, i64)], etag: Option<&str>) -> String {
    let key = match key {
        Some(key) => format!("\"{}\"", base64url(key)),
        None => "null".to_owned(),
    };
    format!("[{key},\"{}\"]", format_id(progress, etag))
}

/// Parses a `Last-Event-ID` in either format. `Ok(None)` for an empty id (start from the
/// default position).
pub fn parse(id: &str) -> Result<Option<LastEventId>, EventIdError> {
    let id = id.trim_matches(|c| c == ' ' || c == '\t');
    if id.is_empty() {
        return Ok(None);
    }
    let progress_id = if id.starts_with('[') {
        key_format_progress(id)?
    } else {
        id
    };
    let (progress, etag) = match progress_id.split_once('/') {
        Some((progress, etag)) => (progress, Some(etag.to_owned())),
        None => (progress_id, None),
    };
    Ok(Some(LastEventId {
        progress: decode_progress(progress)?,
        etag,
    }))
}

/// The second element of `["key",“progress”]` or `[null,"progress"]`.
fn key_format_progress(id: &str) -> Result<&str, EventIdError> {
    let inner = id
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .ok_or(EventIdError::Syntax("missing ']'"))?
        .trim();
    let rest = if let Some(rest) = inner.strip_prefix("null") {
        rest
    } else {
        let quoted = inner
            .strip_prefix('"')
            .ok_or(EventIdError::Syntax("the key is neither a string nor null"))?;
        let end = quoted
            .find('"')
            .ok_or(EventIdError::Syntax("the key string is not closed"))?;
        &quoted[end + 1..]
    };
    let progress = rest
        .trim_start()
        .strip_prefix(',')
        .ok_or(EventIdError::Syntax("missing ',' after the key"))?
        .trim();
    progress
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .filter(|s| !s.contains('"'))
        .ok_or(EventIdError::Syntax(
            "the progress is not one quoted string",
        ))
}

/// Decodes base64url progress (padding optional).
pub fn decode_progress(text: &str) -> Result<Progress, EventIdError> {
    let bytes = DECODE.decode(text).map_err(|_| EventIdError::Base64)?;
    let mut input = &bytes[..];
    let kind = *input.first().ok_or(EventIdError::Truncated)?;
    if kind != KIND_V1 {
        return Err(EventIdError::Kind(kind));
    }
    input = &input[1..];
    let count = unzigzag(get_varint(&mut input, 5)?);
    // Each partition takes at least two bytes: refuse impossible counts before allocating.
    if count < 0 || count as usize > MAX_PARTITIONS || count as usize > input.len() / 2 {
        return Err(if count < 0 || count as usize > MAX_PARTITIONS {
            EventIdError::Count(count)
        } else {
            EventIdError::Truncated
        });
    }
    let mut progress: Progress = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let partition = unzigzag(get_varint(&mut input, 5)?);
        let offset = unzigzag(get_varint(&mut input, 10)?);
        let partition = i32::try_from(partition).map_err(|_| EventIdError::Varint)?;
        if partition < 0 || offset < 0 {
            return Err(EventIdError::Negative);
        }
        if progress.iter().any(|&(p, _)| p == partition) {
            return Err(EventIdError::Duplicate(partition));
        }
        progress.push((partition, offset));
    }
    if !input.is_empty() {
        return Err(EventIdError::Trailing(input.len()));
    }
    Ok(progress)
}

fn zigzag32(value: i32) -> u64 {
    u64::from(((value << 1) ^ (value >> 31)) as u32)
}

fn zigzag64(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads a varint of at most `max_bytes` bytes.
fn get_varint(input: &mut &[u8], max_bytes: usize) -> Result<u64, EventIdError> {
    let mut value = 0u64;
    for i in 0..max_bytes {
        let (&byte, rest) = input.split_first().ok_or(EventIdError::Truncated)?;
        *input = rest;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(EventIdError::Varint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn zilla_vectors() {
        assert_eq!(encode_progress(&[(0, 2), (1, 1)]), "AQQABAIC");
        assert_eq!(encode_progress(&[(0, 3), (1, 1)]), "AQQABgIC");
        assert_eq!(encode_progress(&[(0, 1)]), "AQIAAg==");
        assert_eq!(
            format_id(&[(0, 2), (1, 1)], Some("revision=42")),
            "AQQABAIC/revision=42"
        );
        assert_eq!(
            format_key_id(Some(b"key"), &[(0, 2), (1, 1)], Some("revision=42")),
            r#"["a2V5","AQQABAIC/revision=42"]"#
        );
        assert_eq!(
            format_key_id(None, &[(0, 2), (1, 1)], None),
            r#"[null,"AQQABAIC"]"#
        );
    }

    #[test]
    fn parses_every_format() {
        let expected = Some(LastEventId {
            progress: vec![(0, 2), (1, 1)],
            etag: None,
        });
        assert_eq!(parse("AQQABAIC"), Ok(expected.clone()));
        // Zilla's key-format parser loses the last character here and replays: we do not.
        assert_eq!(parse(r#"[null,"AQQABAIC"]"#), Ok(expected.clone()));
        assert_eq!(parse(r#"["a2V5","AQQABAIC"]"#), Ok(expected));
        let with_etag = parse(r#"["a2V5","AQQABAIC/revision=42"]"#)
            .unwrap()
            .unwrap();
        assert_eq!(with_etag.etag.as_deref(), Some("revision=42"));
        assert_eq!(parse("AQIAAg").unwrap().unwrap().progress, vec![(0, 1)]);
        assert_eq!(parse(""), Ok(None));
    }

    #[test]
    fn refuses_malformed_ids() {
        assert_eq!(parse("not base64!"), Err(EventIdError::Base64));
        assert_eq!(parse("AgQABAIC"), Err(EventIdError::Kind(2)));
        assert_eq!(parse("AQQABA"), Err(EventIdError::Truncated));
        assert_eq!(parse("AQIAAgA"), Err(EventIdError::Trailing(1)));
        assert_eq!(parse("AQQAAgAC"), Err(EventIdError::Duplicate(0)));
        assert_eq!(parse("AQIBAg"), Err(EventIdError::Negative));
        assert!(matches!(
            parse(r#"["a2V5" "AQQABAIC"]"#),
            Err(EventIdError::Syntax(_))
        ));
        assert!(matches!(
            parse(r#"["a2V5","AQQABAIC""#),
            Err(EventIdError::Syntax(_))
        ));
        assert!(matches!(parse("AX____8P"), Err(EventIdError::Count(_))));
    }

    proptest! {
        #[test]
        fn round_trips(partitions in proptest::collection::btree_map(0..i32::MAX, 0..i64::MAX, 0..64),
                       key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..32)),
                       etag in proptest::option::of("[a-zA-Z0-9=._-]{0,16}")) {
            let progress: Progress = partitions.into_iter().collect();
            let plain = format_id(&progress, etag.as_deref());
            let keyed = format_key_id(key.as_deref(), &progress, etag.as_deref());
            for id in [plain, keyed] {
                let parsed = parse(&id).unwrap().unwrap();
                prop_assert_eq!(&parsed.progress, &progress);
                prop_assert_eq!(parsed.etag.as_deref(), etag.as_deref());
                // Ids stay CORS-safe when short: base64url, quotes, brackets, comma only.
                prop_assert!(!id.contains(['\r', '\n', '\0']));
            }
        }

        #[test]
        fn never_panics(text in "\\PC{0,64}", bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse(&text);
            let _ = parse(&ENCODE.encode(&bytes));
        }
    }
}

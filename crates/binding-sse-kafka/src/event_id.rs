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
//! Ours beyond Zilla, for topics too wide for a v1 id under
//! [`MAX_EVENT_ID`](binding_api::ext::sse::MAX_EVENT_ID): a compact progress, kind 2,
//! partitions in ascending order, each as the gap from the previous one and its offset as the
//! difference from the previous partition's (partitions of a topic are usually numbered
//! densely and hold similar offsets, so most take 2–3 bytes instead of 6–8):
//!
//! ```text
//! compact  := 0x02  varint count
//!             count × ( varint partition-gap, zigzag-varint64 offset-delta )
//! ```
//!
//! Parsing differs from Zilla on purpose: the key format is parsed whole (Zilla drops the last
//! character of the progress when no etag follows, and replays from the start), padding is
//! optional, and anything malformed is an [`EventIdError`] (an HTTP 400 with its text as the
//! reason) instead of a silent replay of the whole topic.

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use binding_api::ext::sse::MAX_EVENT_ID;
use thiserror::Error;

/// The only progress kind Zilla defines.
const KIND_V1: u8 = 1;
/// Ours: the compact progress of wide topics.
const KIND_COMPACT: u8 = 2;

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

/// Encodes progress compactly (kind 2), for topics too wide for [`encode_progress`]. The
/// partitions must be distinct and not negative, as every progress a Kafka stream gives.
pub fn encode_progress_compact(progress: &[(i32, i64)]) -> String {
    let mut sorted = progress.to_vec();
    sorted.sort_unstable();
    let mut bytes = Vec::with_capacity(2 + progress.len() * 3);
    bytes.push(KIND_COMPACT);
    put_varint(&mut bytes, sorted.len() as u64);
    let (mut partition, mut offset) = (-1i64, 0i64);
    for (p, o) in sorted {
        put_varint(&mut bytes, (i64::from(p) - partition - 1).max(0) as u64);
        put_varint(&mut bytes, zigzag64(o.wrapping_sub(offset)));
        (partition, offset) = (i64::from(p), o);
    }
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
    compose(encode_progress(progress), KeyField::Absent, etag)
}

/// The id in the key format, `["${base64(key)}","${etag}"]`; a null key is written `null`.
pub fn format_key_id(key: Option<&[u8]>, progress: &[(i32, i64)], etag: Option<&str>) -> String {
    compose(encode_progress(progress), KeyField::Key(key), etag)
}

/// Whether an id carries the record's key (Zilla's key format), and which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyField<'a> {
    /// The default format: no key.
    Absent,
    /// The key format, with the record's key (`None`: a null key).
    Key(Option<&'a [u8]>),
}

/// An id that fits [`MAX_EVENT_ID`], and what gave way for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fitted {
    /// The id; `None` when even the compact progress alone is longer than allowed (a topic of
    /// well over a thousand partitions): the event goes without one, and a client resumes
    /// from the id before it.
    pub id: Option<String>,
    /// Whether the record's etag was left out to fit.
    pub etag_dropped: bool,
}

/// The longest id that fits [`MAX_EVENT_ID`], so that every id emitted is accepted back on
/// resume: Zilla's v1 progress with the etag, else the compact progress with it, else either
/// without the etag.
pub fn fitted_id(progress: &[(i32, i64)], key: KeyField<'_>, etag: Option<&str>) -> Fitted {
    let v1 = encode_progress(progress);
    let fits = |id: &String| id.len() <= MAX_EVENT_ID;
    let full = compose(v1.clone(), key, etag);
    if fits(&full) {
        return Fitted {
            id: Some(full),
            etag_dropped: false,
        };
    }
    let compact = encode_progress_compact(progress);
    let tries = [(compact.clone(), etag), (v1, None), (compact, None)];
    for (progress, etag_used) in tries {
        let id = compose(progress, key, etag_used);
        if fits(&id) {
            return Fitted {
                id: Some(id),
                etag_dropped: etag.is_some() && etag_used.is_none(),
            };
        }
    }
    Fitted {
        id: None,
        etag_dropped: etag.is_some(),
    }
}

/// An id from encoded progress, in either format.
fn compose(mut progress: String, key: KeyField<'_>, etag: Option<&str>) -> String {
    if let Some(etag) = etag {
        progress.push('/');
        progress.push_str(etag);
    }
    match key {
        KeyField::Absent => progress,
        KeyField::Key(Some(key)) => format!("[\"{}\",\"{progress}\"]", base64url(key)),
        KeyField::Key(None) => format!("[null,\"{progress}\"]"),
    }
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

/// Decodes base64url progress (padding optional), Zilla's v1 or our compact kind.
pub fn decode_progress(text: &str) -> Result<Progress, EventIdError> {
    let bytes = DECODE.decode(text).map_err(|_| EventIdError::Base64)?;
    let (&kind, input) = bytes.split_first().ok_or(EventIdError::Truncated)?;
    match kind {
        KIND_V1 => decode_v1(input),
        KIND_COMPACT => decode_compact(input),
        other => Err(EventIdError::Kind(other)),
    }
}

/// The partition count, refused before anything is allocated when it is negative, over
/// [`MAX_PARTITIONS`], or more than `input` could hold at two bytes a partition.
fn partition_count(count: i64, input: &[u8]) -> Result<usize, EventIdError> {
    if count < 0 || count as usize > MAX_PARTITIONS {
        return Err(EventIdError::Count(count));
    }
    if count as usize > input.len() / 2 {
        return Err(EventIdError::Truncated);
    }
    Ok(count as usize)
}

fn decode_compact(mut input: &[u8]) -> Result<Progress, EventIdError> {
    let count = get_varint(&mut input, 5)?;
    let count = partition_count(i64::try_from(count).unwrap_or(i64::MAX), input)?;
    let mut progress: Progress = Vec::with_capacity(count);
    let (mut partition, mut offset) = (-1i64, 0i64);
    for _ in 0..count {
        let gap = i64::try_from(get_varint(&mut input, 5)?).map_err(|_| EventIdError::Varint)?;
        partition = partition
            .checked_add(gap)
            .and_then(|p| p.checked_add(1))
            .ok_or(EventIdError::Varint)?;
        offset = offset
            .checked_add(unzigzag(get_varint(&mut input, 10)?))
            .ok_or(EventIdError::Varint)?;
        let partition = i32::try_from(partition).map_err(|_| EventIdError::Varint)?;
        if offset < 0 {
            return Err(EventIdError::Negative);
        }
        progress.push((partition, offset));
    }
    if !input.is_empty() {
        return Err(EventIdError::Trailing(input.len()));
    }
    Ok(progress)
}

fn decode_v1(mut input: &[u8]) -> Result<Progress, EventIdError> {
    let count = unzigzag(get_varint(&mut input, 5)?);
    let count = partition_count(count, input)?;
    let mut progress: Progress = Vec::with_capacity(count);
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
        assert_eq!(parse("AwQABAIC"), Err(EventIdError::Kind(3)));
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
        // Compact: count 1, partition gap 0, offset delta -1.
        assert_eq!(parse("AgEAAQ"), Err(EventIdError::Negative));
    }

    #[test]
    fn wide_topics_and_long_etags_still_get_ids_that_fit() {
        // 500 partitions at offsets near 2^40: too wide for v1 within 4 KiB, compact fits.
        let wide: Progress = (0..500).map(|p| (p, (1i64 << 40) + i64::from(p))).collect();
        assert!(format_id(&wide, None).len() > MAX_EVENT_ID);
        let fitted = fitted_id(&wide, KeyField::Absent, Some("v1"));
        let id = fitted.id.expect("an id");
        assert!(
            id.len() <= MAX_EVENT_ID && !fitted.etag_dropped,
            "{}",
            id.len()
        );
        assert_eq!(parse(&id).unwrap().unwrap().progress, wide);
        // A 5,000-byte etag is left out; the progress is Zilla's v1 as usual.
        let etag = "e".repeat(5000);
        let fitted = fitted_id(&[(0, 1)], KeyField::Absent, Some(&etag));
        assert_eq!(fitted.id.as_deref(), Some("AQIAAg=="));
        assert!(fitted.etag_dropped);
        // A 300-byte etag fits: kept (Zilla would emit it and then refuse it, over 254 bytes).
        let etag = "e".repeat(300);
        let fitted = fitted_id(&[(0, 1)], KeyField::Key(None), Some(&etag));
        assert_eq!(fitted.id, Some(format!("[null,\"AQIAAg==/{etag}\"]")));
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

        /// Every id emitted is accepted back (within the sse server's limit, one header line)
        /// and resumes exactly where it was issued, however wide the topic, long the etag or
        /// key; and one is always emitted for topics of up to 256 partitions whatever their
        /// offsets (wider ones fit when their offsets are close: see the compact test).
        #[test]
        fn every_emitted_id_is_accepted_and_resumes_exactly(
            partitions in proptest::collection::btree_map(0..4096i32, 0..(1i64 << 40), 0..1100),
            key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..3200)),
            etag in proptest::option::of("[a-zA-Z0-9=._-]{0,5000}"),
            key_format in any::<bool>(),
        ) {
            let progress: Progress = partitions.into_iter().collect();
            let field = if key_format { KeyField::Key(key.as_deref()) } else { KeyField::Absent };
            let fitted = fitted_id(&progress, field, etag.as_deref());
            let key_len = if key_format { key.as_ref().map_or(0, |k| k.len() * 4 / 3 + 4) } else { 0 };
            if progress.len() <= 256 && key_len <= 1024 {
                prop_assert!(fitted.id.is_some(), "no id for {} partitions", progress.len());
            }
            if let Some(id) = fitted.id {
                prop_assert!(id.len() <= MAX_EVENT_ID, "{} bytes", id.len());
                prop_assert!(id.bytes().all(|b| b.is_ascii_graphic()));
                let parsed = parse(&id).unwrap().unwrap();
                let mut resumed = parsed.progress;
                resumed.sort_unstable();
                prop_assert_eq!(resumed, progress);
                if !fitted.etag_dropped {
                    prop_assert_eq!(parsed.etag.as_deref(), etag.as_deref());
                }
            }
        }

        #[test]
        fn compact_progress_round_trips(
            partitions in proptest::collection::btree_map(0..i32::MAX, 0..i64::MAX, 0..64),
        ) {
            let progress: Progress = partitions.into_iter().collect();
            prop_assert_eq!(decode_progress(&encode_progress_compact(&progress)).unwrap(), progress);
        }

        #[test]
        fn never_panics(text in "\\PC{0,64}", bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse(&text);
            let _ = parse(&ENCODE.encode(&bytes));
        }
    }
}

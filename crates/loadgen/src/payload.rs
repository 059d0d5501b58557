//! The benchmark payload: JSON `{"ts":<unix nanos>,"seq":<n>,"key":"k12","pad":"xxx…"}`, made by
//! the producers and found again in whatever a target wraps around it (Centrifugo nests it in
//! `{"pub":{"data":…}}`), by looking for `"ts":`, `"seq":` and `"key":` anywhere in the data.

use std::sync::LazyLock;

use memchr::memmem::Finder;

/// Searchers built once: building one costs more than a search through a small payload.
static TS: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"ts\":"));
static SEQ: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"seq\":"));
static KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"key\":"));

/// The fields the measurements need from an event's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields<'a> {
    /// Producer timestamp, normalised to unix nanoseconds.
    pub ts_nanos: u64,
    /// The per-key sequence number.
    pub seq: u64,
    /// The key, when present.
    pub key: Option<&'a [u8]>,
}

/// Finds the fields in `data`, or `None` for events without `ts` and `seq` (heartbeats, a
/// target's own connect event).
pub fn extract(data: &[u8]) -> Option<Fields<'_>> {
    let ts_at = TS.find(data)?;
    let ts = number_after(&data[ts_at..], &TS)?;
    // In the producers' payload `seq` and `key` follow `ts`: look there first.
    let rest = &data[ts_at..];
    let seq = number_after(rest, &SEQ).or_else(|| number_after(data, &SEQ))?;
    Some(Fields {
        ts_nanos: to_nanos(ts),
        seq,
        key: string_after(rest, &KEY).or_else(|| string_after(data, &KEY)),
    })
}

/// Unix seconds, millis, micros or nanos, told apart by magnitude, as nanos.
fn to_nanos(ts: u64) -> u64 {
    match ts {
        t if t >= 100_000_000_000_000_000 => t,
        t if t >= 100_000_000_000_000 => t.saturating_mul(1_000),
        t if t >= 100_000_000_000 => t.saturating_mul(1_000_000),
        t => t.saturating_mul(1_000_000_000),
    }
}

fn value_after<'a>(data: &'a [u8], name: &Finder<'_>) -> Option<&'a [u8]> {
    let at = name.find(data)? + name.needle().len();
    let rest = &data[at..];
    let skip = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
    Some(&rest[skip..])
}

fn number_after(data: &[u8], name: &Finder<'_>) -> Option<u64> {
    let rest = value_after(data, name)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    rest[..digits].iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

fn string_after<'a>(data: &'a [u8], name: &Finder<'_>) -> Option<&'a [u8]> {
    let rest = value_after(data, name)?.strip_prefix(b"\"")?;
    let end = memchr::memchr(b'"', rest)?;
    Some(&rest[..end])
}

/// Parses a benchmark key `k<n>` into `n`.
pub fn key_index(key: &[u8]) -> Option<usize> {
    std::str::from_utf8(key.strip_prefix(b"k")?)
        .ok()?
        .parse()
        .ok()
}

/// Writes one payload of (at least, and when possible exactly) `size` bytes into `out`.
pub fn write(out: &mut Vec<u8>, ts_nanos: u64, seq: u64, key: usize, size: usize) {
    use std::io::Write;
    let start = out.len();
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "{{\"ts\":{ts_nanos},\"seq\":{seq},\"key\":\"k{key}\",\"pad\":\""
    );
    let used = out.len() - start + 2;
    out.resize(out.len() + size.saturating_sub(used), b'x');
    out.extend_from_slice(b"\"}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_fields_in_plain_and_wrapped_payloads() {
        let plain = br#"{"ts":1764250000123456789,"seq":42,"key":"k12","pad":"xx"}"#;
        assert_eq!(
            extract(plain),
            Some(Fields {
                ts_nanos: 1_764_250_000_123_456_789,
                seq: 42,
                key: Some(b"k12")
            })
        );
        let wrapped =
            br#"{"pub":{"data":{"ts": 1764250000123456,"seq": 7,"key":"k3"},"offset":9}}"#;
        let f = extract(wrapped).unwrap();
        assert_eq!(
            (f.ts_nanos, f.seq, f.key),
            (1_764_250_000_123_456_000, 7, Some(&b"k3"[..]))
        );
    }

    #[test]
    fn ignores_events_without_both_numbers() {
        assert_eq!(extract(b"{}"), None);
        assert_eq!(extract(br#"{"connect":{"client":"x"}}"#), None);
        assert_eq!(extract(br#"{"ts":1,"seq":"a"}"#), None);
        assert_eq!(extract(br#"{"ts":123456789012345678901,"seq":1}"#), None);
        assert_eq!(extract(br#"{"ts":5,"seq":1}"#).map(|f| f.key), Some(None));
    }

    #[test]
    fn writes_payloads_of_the_requested_size_that_parse_back() {
        for size in [0, 10, 64, 256, 4096] {
            let mut out = Vec::new();
            write(&mut out, 1_764_250_000_000_000_000, 3, 17, size);
            if size >= 80 {
                assert_eq!(out.len(), size);
            }
            let f = extract(&out).unwrap();
            assert_eq!((f.seq, f.key.and_then(key_index)), (3, Some(17)));
        }
    }
}

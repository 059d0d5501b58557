//! Where a subscription starts when it has no `Last-Event-ID`: the request's choice, else the
//! route's.
//!
//! A request chooses with its query string (beyond Zilla, which always replays history,
//! Zilla #885 and #1429):
//!
//! | query | partitions start at |
//! |---|---|
//! | `start=historical` | the earliest offset the cache or broker holds |
//! | `start=live` | the end: only records produced from now on |
//! | `start=<time>` or `since=<time>` | the first record at or after `<time>` |
//!
//! `<time>` is milliseconds since the epoch (`1795780800000`) or an RFC 3339 date-time
//! (`2026-11-27T12:00:00Z`, `2026-11-27T13:00:00.250+01:00`). Without either parameter the
//! route's `with.start` applies (`historical` by default). A `Last-Event-ID` always wins:
//! resuming is exact. A value that does not parse is refused (HTTP 400) rather than ignored.

use binding_api::ext::http::percent_decode;
use binding_api::ext::kafka::StartPosition;
use thiserror::Error;

/// A start parameter that could not be understood.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error(
    "invalid {name} parameter {value:?}: expected historical, live, milliseconds since the epoch or an RFC 3339 date-time"
)]
pub struct StartError {
    /// `start` or `since`.
    pub name: &'static str,
    /// The value as sent.
    pub value: String,
}

/// The start the query asks for, if any.
pub fn from_query(query: Option<&str>) -> Result<Option<StartPosition>, StartError> {
    let Some(query) = query else {
        return Ok(None);
    };
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = match name {
            "start" => "start",
            "since" => "since",
            _ => continue,
        };
        let error = || StartError {
            name,
            value: value.to_owned(),
        };
        let value = percent_decode(value).ok_or_else(error)?;
        let position = match (name, value.as_str()) {
            ("start", "historical") => StartPosition::Earliest,
            ("start", "live") => StartPosition::Latest,
            (_, time) => StartPosition::Timestamp(parse_time(time).ok_or_else(error)?),
        };
        return Ok(Some(position));
    }
    Ok(None)
}

/// Milliseconds since the epoch, from digits or an RFC 3339 date-time.
pub fn parse_time(text: &str) -> Option<i64> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        let kept = &fraction[..len.min(3)];
        millis = kept.parse::<i64>().ok()? * 10_i64.pow(3 - kept.len() as u32);
        rest = &fraction[len..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let r = rest.as_bytes();
            if r.len() != 6 || r[3] != b':' {
                return None;
            }
            let hours: i64 = rest.get(1..3)?.parse().ok()?;
            let minutes: i64 = rest.get(4..6)?.parse().ok()?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            sign * (hours * 60 + minutes)
        }
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let m = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * m + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_choices() {
        assert_eq!(from_query(None), Ok(None));
        assert_eq!(from_query(Some("x=1")), Ok(None));
        assert_eq!(
            from_query(Some("start=live")),
            Ok(Some(StartPosition::Latest))
        );
        assert_eq!(
            from_query(Some("a=b&start=historical")),
            Ok(Some(StartPosition::Earliest))
        );
        assert_eq!(
            from_query(Some("since=1795780800000")),
            Ok(Some(StartPosition::Timestamp(1_795_780_800_000)))
        );
        assert_eq!(
            from_query(Some("start=2026-11-27T12:00:00Z")),
            Ok(Some(StartPosition::Timestamp(1_795_780_800_000)))
        );
        assert!(from_query(Some("start=yesterday")).is_err());
        assert!(from_query(Some("since=live")).is_err());
        assert!(from_query(Some("since=%zz")).is_err());
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_time("2026-11-27T13:00:00.250+01:00"),
            Some(1_795_780_800_250)
        );
        assert_eq!(
            parse_time("2026-11-27T12:00:00.25Z"),
            Some(1_795_780_800_250)
        );
        assert_eq!(parse_time("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
        assert_eq!(
            parse_time("2026-11-27T07:00:00-05:00"),
            Some(1_795_780_800_000)
        );
        assert_eq!(parse_time("2023-02-29T00:00:00Z"), None);
        assert_eq!(parse_time("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_time("2026-11-27T12:00:00"), None);
        assert_eq!(parse_time("2026-11-27T12:00:00+0100"), None);
        assert_eq!(parse_time(""), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,40}") {
            let _ = parse_time(&text);
            let _ = from_query(Some(&text));
        }
    }
}

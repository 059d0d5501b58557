//! A WHATWG event-stream parser for the tests: the HTML standard's "interpreting an event
//! stream" algorithm. UTF-8 decoding with replacement, one leading BOM stripped, lines ended by
//! CRLF, LF or CR, comments, the field name up to the first colon, one leading space of the
//! value removed, `id` ignored when it contains NUL, dispatch on a blank line when the data
//! buffer is not empty, an unfinished event at the end discarded.

/// An event as a browser would fire it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fired {
    pub event_type: String,
    pub data: String,
    pub last_event_id: String,
}

/// What a client ends up with after reading a stream.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub events: Vec<Fired>,
    pub last_event_id: String,
    pub retry: Option<u64>,
}

/// Parses a whole stream.
pub fn parse(stream: &[u8]) -> Parsed {
    let text = String::from_utf8_lossy(stream);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut parsed = Parsed::default();
    let mut data = String::new();
    let mut event_type = String::new();
    let mut rest = text;
    // A line is only complete when its terminator has arrived.
    while let Some(end) = rest.find(['\r', '\n']) {
        let line = &rest[..end];
        let skip = if rest[end..].starts_with("\r\n") {
            2
        } else {
            1
        };
        rest = &rest[end + skip..];
        if line.is_empty() {
            if data.is_empty() {
                event_type.clear();
                continue;
            }
            if data.ends_with('\n') {
                data.pop();
            }
            parsed.events.push(Fired {
                event_type: if event_type.is_empty() {
                    "message".to_owned()
                } else {
                    std::mem::take(&mut event_type)
                },
                data: std::mem::take(&mut data),
                last_event_id: parsed.last_event_id.clone(),
            });
            event_type.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match name {
            "event" => event_type = value.to_owned(),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" if !value.contains('\0') => parsed.last_event_id = value.to_owned(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                parsed.retry = value.parse().ok();
            }
            _ => {}
        }
    }
    parsed
}

//! The event encoder: SSE fields as bytes, with no I/O and no clock.
//!
//! An event is written as its head (`timestamp:`, `id:`, `event:` lines, each only when
//! given), then `data:`, then its payload with every line break turned into a new `data:`
//! line, then a blank line. There is no space after the colon (as Zilla writes it).
//!
//! - **Line breaks.** CR, LF and CRLF in a payload each start a new `data:` line, so a payload
//!   can never end an event or add a field: `a\rb`, `a\nb` and `a\r\nb` are all
//!   `data:a\ndata:b`, which a client joins back as `a\nb` (the WHATWG parser turns every
//!   line break into LF). A CRLF split across two fragments is still one break.
//! - **Leading spaces.** A client removes one space after a field's colon, so a value (or a
//!   payload line) that starts with a space is written with one more: `data:  x` for ` x`.
//! - **Refusals.** An id containing CR, LF or NUL, or a type containing CR or LF, cannot be
//!   written as one field: [`Encoder::start_event`] refuses the event and the caller drops it.
//! - **Progressive.** A payload is encoded as it arrives, a fragment at a time, and a fragment
//!   as far as the room given allows ([`Encoder::data`]); nothing holds the whole event.
//! - **Bytes, not text.** The payload is copied as bytes: a payload that is not UTF-8 reaches
//!   a browser with U+FFFD in place of each invalid sequence (the browser's UTF-8 decoding
//!   does that); clients that read bytes receive them unchanged.

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

/// The most bytes [`Encoder::data`] may write for one line break (`\ndata:`).
pub const BREAK_LEN: usize = 6;

/// Why an event cannot be encoded.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum Refused {
    /// The id contains CR, LF or NUL.
    #[error("the event id contains CR, LF or NUL")]
    Id,
    /// The type contains CR or LF.
    #[error("the event type contains CR or LF")]
    Type,
}

/// The fields written before an event's data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Head<'a> {
    /// `id:`.
    pub id: Option<&'a str>,
    /// `event:`.
    pub event_type: Option<&'a str>,
    /// `timestamp:0x…` (milliseconds), written only if the encoder writes timestamps.
    pub timestamp: Option<u64>,
}

/// Where the encoder is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    /// Between events.
    #[default]
    Idle,
    /// Inside an event's data; `after_cr` when the last byte taken was a CR, whose LF (if
    /// it comes next) belongs to the same break; `line_start` right after `data:`.
    Data { after_cr: bool, line_start: bool },
}

/// Encodes events one fragment at a time.
#[derive(Clone, Debug, Default)]
pub struct Encoder {
    state: State,
    timestamps: bool,
}

/// Whether an id can be written as one field.
pub fn valid_id(id: &str) -> bool {
    !id.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

/// Whether an event type can be written as one field.
pub fn valid_type(event_type: &str) -> bool {
    !event_type.bytes().any(|b| matches!(b, b'\r' | b'\n'))
}

/// What a stream starts with: `retry:` and, if asked, an empty comment.
pub fn preamble(retry_ms: u32, initial_comment: bool) -> Bytes {
    let mut text = format!("retry:{retry_ms}\n\n");
    if initial_comment {
        text.push_str(":\n\n");
    }
    Bytes::from(text)
}

/// An empty comment, the heartbeat: clients ignore it, proxies see traffic.
pub const HEARTBEAT: &[u8] = b":\n\n";

/// An id-only block: moves the client's resume point without firing an event.
pub fn id_only(id: &str, out: &mut BytesMut) -> Result<(), Refused> {
    if !valid_id(id) {
        return Err(Refused::Id);
    }
    field(b"id:", id.as_bytes(), out);
    out.put_slice(b"\n\n");
    Ok(())
}

/// `name:value`, with no space after the colon unless the value starts with one: the parser
/// removes one leading space, so such a value gets one more.
fn field(name: &[u8], value: &[u8], out: &mut BytesMut) {
    out.put_slice(name);
    if value.first() == Some(&b' ') {
        out.put_u8(b' ');
    }
    out.put_slice(value);
}

impl Encoder {
    /// An encoder; `timestamps` when the client asked for `timestamp:` lines.
    pub fn new(timestamps: bool) -> Self {
        Encoder {
            state: State::Idle,
            timestamps,
        }
    }

    /// Whether `timestamp:` lines are written.
    pub fn timestamps(&self) -> bool {
        self.timestamps
    }

    /// Whether an event has been started and not finished.
    pub fn in_event(&self) -> bool {
        self.state != State::Idle
    }

    /// Starts an event: writes its head and `data:`. Refuses an id or type that cannot be
    /// one field, writing nothing. Starting while inside an event finishes that one first.
    pub fn start_event(&mut self, head: Head<'_>, out: &mut BytesMut) -> Result<(), Refused> {
        if head.id.is_some_and(|id| !valid_id(id)) {
            return Err(Refused::Id);
        }
        if head.event_type.is_some_and(|t| !valid_type(t)) {
            return Err(Refused::Type);
        }
        self.finish_event(out);
        if self.timestamps
            && let Some(ms) = head.timestamp
        {
            let mut line = String::with_capacity(32);
            // Writing to a String cannot fail.
            let _ = writeln!(line, "timestamp:0x{ms:x}");
            out.put_slice(line.as_bytes());
        }
        if let Some(id) = head.id {
            field(b"id:", id.as_bytes(), out);
            out.put_u8(b'\n');
        }
        if let Some(event_type) = head.event_type {
            field(b"event:", event_type.as_bytes(), out);
            out.put_u8(b'\n');
        }
        out.put_slice(b"data:");
        self.state = State::Data {
            after_cr: false,
            line_start: true,
        };
        Ok(())
    }

    /// Encodes the front of `input` into `out`, writing at most `room` bytes (at least
    /// [`BREAK_LEN`] are needed to get past a line break), and removes what it encoded from
    /// `input`. Returns the number of bytes written. Does nothing outside an event.
    pub fn data(&mut self, input: &mut Bytes, out: &mut BytesMut, room: usize) -> usize {
        let State::Data {
            mut after_cr,
            mut line_start,
        } = self.state
        else {
            return 0;
        };
        let mut written = 0;
        while !input.is_empty() {
            if after_cr && input[0] == b'\n' {
                // The LF of a CRLF whose CR already started a new line.
                let _ = input.split_to(1);
                after_cr = false;
                continue;
            }
            let run = input
                .iter()
                .position(|&b| b == b'\r' || b == b'\n')
                .unwrap_or(input.len());
            if run > 0 {
                // A value's first space is eaten by the parser: give it one more.
                let extra = usize::from(line_start && input[0] == b' ');
                let take = run.min((room - written).saturating_sub(extra));
                if take == 0 {
                    break;
                }
                if extra == 1 {
                    out.put_u8(b' ');
                }
                out.put_slice(&input.split_to(take));
                written += take + extra;
                after_cr = false;
                line_start = false;
                continue;
            }
            if room - written < BREAK_LEN {
                break;
            }
            after_cr = input[0] == b'\r';
            line_start = true;
            let _ = input.split_to(1);
            out.put_slice(b"\ndata:");
            written += BREAK_LEN;
        }
        self.state = State::Data {
            after_cr,
            line_start,
        };
        written
    }

    /// Finishes the event in progress with a blank line; does nothing between events.
    pub fn finish_event(&mut self, out: &mut BytesMut) {
        if self.in_event() {
            out.put_slice(b"\n\n");
            self.state = State::Idle;
        }
    }

    /// Encodes a whole event in one go.
    pub fn event(
        &mut self,
        head: Head<'_>,
        data: &Bytes,
        out: &mut BytesMut,
    ) -> Result<(), Refused> {
        self.start_event(head, out)?;
        let mut input = data.clone();
        self.data(&mut input, out, usize::MAX);
        self.finish_event(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(head: Head<'_>, data: &[u8]) -> String {
        let mut out = BytesMut::new();
        Encoder::new(true)
            .event(head, &Bytes::copy_from_slice(data), &mut out)
            .unwrap();
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn fields_without_space() {
        let head = Head {
            id: Some("7"),
            event_type: Some("update"),
            timestamp: Some(255),
        };
        assert_eq!(
            encode(head, b"hello"),
            "timestamp:0xff\nid:7\nevent:update\ndata:hello\n\n"
        );
    }

    #[test]
    fn every_line_break_starts_a_data_line() {
        let plain = Head::default();
        assert_eq!(encode(plain, b""), "data:\n\n");
        assert_eq!(encode(plain, b"a\nb"), "data:a\ndata:b\n\n");
        assert_eq!(encode(plain, b"a\rb"), "data:a\ndata:b\n\n");
        assert_eq!(encode(plain, b"a\r\nb"), "data:a\ndata:b\n\n");
        assert_eq!(encode(plain, b"a\n\rb"), "data:a\ndata:\ndata:b\n\n");
        assert_eq!(encode(plain, b"a\r\rb"), "data:a\ndata:\ndata:b\n\n");
        assert_eq!(encode(plain, b"a\n"), "data:a\ndata:\n\n");
        assert_eq!(
            encode(plain, b"x\n\nid:evil\n\ndata:y"),
            "data:x\ndata:\ndata:id:evil\ndata:\ndata:data:y\n\n"
        );
    }

    #[test]
    fn leading_space_survives() {
        let head = Head {
            id: Some(" 1"),
            event_type: Some(" t"),
            timestamp: None,
        };
        assert_eq!(
            encode(head, b" a\n b\nc "),
            "id:  1\nevent:  t\ndata:  a\ndata:  b\ndata:c \n\n"
        );
    }

    #[test]
    fn crlf_split_across_fragments_is_one_break() {
        let mut encoder = Encoder::new(false);
        let mut out = BytesMut::new();
        encoder.start_event(Head::default(), &mut out).unwrap();
        encoder.data(&mut Bytes::from_static(b"a\r"), &mut out, 100);
        encoder.data(&mut Bytes::from_static(b"\nb"), &mut out, 100);
        encoder.finish_event(&mut out);
        assert_eq!(&out[..], b"data:a\ndata:b\n\n");
    }

    #[test]
    fn room_limits_output() {
        let mut encoder = Encoder::new(false);
        let mut out = BytesMut::new();
        encoder.start_event(Head::default(), &mut out).unwrap();
        out.clear();
        let mut input = Bytes::from_static(b"abc\ndef");
        assert_eq!(encoder.data(&mut input, &mut out, 2), 2);
        assert_eq!(&input[..], b"c\ndef");
        assert_eq!(encoder.data(&mut input, &mut out, 5), 1);
        assert_eq!(encoder.data(&mut input, &mut out, 6), 6);
        assert_eq!(encoder.data(&mut input, &mut out, 100), 3);
        assert!(input.is_empty());
        assert_eq!(&out[..], b"abc\ndata:def");
    }

    #[test]
    fn refuses_fields_that_cannot_be_one_line() {
        let mut encoder = Encoder::new(false);
        let mut out = BytesMut::new();
        for id in ["a\nb", "a\rb", "a\0b"] {
            let head = Head {
                id: Some(id),
                ..Head::default()
            };
            assert_eq!(encoder.start_event(head, &mut out), Err(Refused::Id));
        }
        let head = Head {
            event_type: Some("a\rb"),
            ..Head::default()
        };
        assert_eq!(encoder.start_event(head, &mut out), Err(Refused::Type));
        assert!(out.is_empty());
        assert!(!encoder.in_event());
        assert_eq!(id_only("a\0", &mut out), Err(Refused::Id));
        id_only("42", &mut out).unwrap();
        assert_eq!(&out[..], b"id:42\n\n");
    }

    #[test]
    fn timestamps_only_when_asked() {
        let mut out = BytesMut::new();
        let head = Head {
            timestamp: Some(1),
            ..Head::default()
        };
        Encoder::new(false)
            .event(head, &Bytes::from_static(b"x"), &mut out)
            .unwrap();
        assert_eq!(&out[..], b"data:x\n\n");
    }

    #[test]
    fn preamble_has_retry_and_optional_comment() {
        assert_eq!(&preamble(2000, false)[..], b"retry:2000\n\n");
        assert_eq!(&preamble(10, true)[..], b"retry:10\n\n:\n\n");
    }
}

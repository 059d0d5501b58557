//! The `text/event-stream` parser of `kind: client`, after the WHATWG HTML standard's "event
//! stream interpretation": bytes in, events out. No I/O.
//!
//! Lines end with CRLF, LF or CR (a CR at the end of one input and an LF at the start of the
//! next are one line end); a UTF-8 byte order mark at the very start is skipped; a line
//! starting with `:` is a comment; `field:value` drops one space after the colon; a line
//! with no colon is a field with an empty value. `data` lines are joined with LF; `event`
//! sets the type; `id` sets the id unless it holds NUL; `retry` and unknown fields are
//! ignored (the sse server in front sends its own `retry:`). A blank line dispatches: an
//! event when some `data` line came, else, when an `id` came, an id-only [`Parsed::Id`]
//! (the client's resume point moves, no event fires). An event whose lines exceed the bound
//! given to [`EventStreamParser::new`] is an error: nothing is held beyond it.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

/// What the parser found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// An event to dispatch.
    Event {
        /// The `id` field of its block, when it had one (`Some("")`: the id was cleared).
        id: Option<String>,
        /// The `event` field of its block, when it had one.
        event_type: Option<String>,
        /// The `data` lines, joined with LF.
        data: Bytes,
    },
    /// A block with an `id` and no `data`: the resume point moves.
    Id(String),
}

/// Why the stream cannot be parsed further.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ParseError {
    /// An event (its fields and the line being read) grew past the bound.
    #[error("an event of the upstream is larger than {0} bytes")]
    EventTooLarge(usize),
}

/// The parser's state between inputs.
#[derive(Debug)]
pub struct EventStreamParser {
    max_event: usize,
    /// Whether the start of the stream (where a BOM may be) is behind.
    started: bool,
    /// The last input ended with CR: an LF first in the next one ends nothing.
    after_cr: bool,
    /// The line being read.
    line: BytesMut,
    /// The event being built.
    data: BytesMut,
    has_data: bool,
    id: Option<String>,
    event_type: Option<String>,
    /// Bytes of `id` and `event` values held.
    fields: usize,
}

impl EventStreamParser {
    /// A parser refusing events larger than `max_event` bytes.
    pub fn new(max_event: usize) -> Self {
        EventStreamParser {
            max_event,
            started: false,
            after_cr: false,
            line: BytesMut::new(),
            data: BytesMut::new(),
            has_data: false,
            id: None,
            event_type: None,
            fields: 0,
        }
    }

    /// Parses `input`, appending what it completes to `out`.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<Parsed>) -> Result<(), ParseError> {
        if !self.started {
            // The BOM may come split across inputs: wait for three bytes (or a mismatch).
            const BOM: &[u8] = b"\xEF\xBB\xBF";
            let mut start = std::mem::take(&mut self.line);
            start.extend_from_slice(input);
            if start.len() < BOM.len() && BOM.starts_with(&start) {
                self.line = start;
                return Ok(());
            }
            self.started = true;
            let rest = start.strip_prefix(BOM).unwrap_or(&start).to_vec();
            return self.feed(&rest, out);
        }
        if self.after_cr && !input.is_empty() {
            self.after_cr = false;
            if let Some(rest) = input.strip_prefix(b"\n") {
                input = rest;
            }
        }
        while let Some(end) = input.iter().position(|&b| b == b'\n' || b == b'\r') {
            let (piece, rest) = input.split_at(end);
            self.hold(piece.len())?;
            self.line.extend_from_slice(piece);
            let line = std::mem::take(&mut self.line);
            self.on_line(&line, out)?;
            self.line = line;
            self.line.clear();
            input = match rest {
                [b'\r', b'\n', rest @ ..] => rest,
                [b'\r'] => {
                    self.after_cr = true;
                    &[]
                }
                [_, rest @ ..] => rest,
                [] => &[],
            };
        }
        self.hold(input.len())?;
        self.line.extend_from_slice(input);
        Ok(())
    }

    /// Whether `more` bytes of line fit the bound with what the event holds.
    fn hold(&self, more: usize) -> Result<(), ParseError> {
        if self.line.len() + more + self.data.len() + self.fields > self.max_event {
            return Err(ParseError::EventTooLarge(self.max_event));
        }
        Ok(())
    }

    fn on_line(&mut self, line: &[u8], out: &mut Vec<Parsed>) -> Result<(), ParseError> {
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => {
                self.data.put_slice(value);
                self.data.put_u8(b'\n');
                self.has_data = true;
            }
            b"event" => {
                let value = String::from_utf8_lossy(value).into_owned();
                self.fields += value.len();
                self.event_type = Some(value);
            }
            b"id" if !value.contains(&0) => {
                let value = String::from_utf8_lossy(value).into_owned();
                self.fields += value.len();
                self.id = Some(value);
            }
            _ => {}
        }
        if self.data.len() + self.fields > self.max_event {
            return Err(ParseError::EventTooLarge(self.max_event));
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<Parsed>) {
        let id = self.id.take();
        let event_type = self.event_type.take();
        self.fields = 0;
        if self.has_data {
            self.has_data = false;
            let mut data = std::mem::take(&mut self.data);
            data.truncate(data.len() - 1);
            out.push(Parsed::Event {
                id,
                event_type,
                data: data.freeze(),
            });
        } else if let Some(id) = id {
            out.push(Parsed::Id(id));
        }
    }
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;

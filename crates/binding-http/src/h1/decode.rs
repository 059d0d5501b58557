//! The HTTP/1.1 request decoder: bytes in, request heads and body chunks out. No I/O, no
//! clock: the caller owns the buffer and decides how much body it can take.
//!
//! The decoder is total: every input gives events or a [`DecodeError`] naming the status to
//! answer with, never a panic, and it never holds more than the caller's buffer.

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use crate::h1::chunked::{ChunkStep, Chunked, take_len};
use crate::request::RequestHead;

/// Limits on what a request head may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadLimits {
    /// Longest request line, in bytes, without its CRLF (414 beyond).
    pub max_request_line: usize,
    /// Largest header block after the request line, in bytes (431 beyond).
    pub max_header_list: usize,
    /// Most header fields (431 beyond).
    pub max_headers: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits {
            max_request_line: 8192,
            max_header_list: 8192,
            max_headers: 100,
        }
    }
}

impl HeadLimits {
    /// The most bytes a complete head may take: the buffer a connection needs.
    pub fn max_head(&self) -> usize {
        self.max_request_line + 2 + self.max_header_list + 2
    }
}

/// Why a request cannot be decoded; each maps to the status answered before closing.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The request line is longer than allowed: 414.
    #[error("request line longer than {0} bytes")]
    UriTooLong(usize),
    /// The header block is larger than allowed, or has too many fields: 431.
    #[error("request header fields too large: {0}")]
    HeadersTooLarge(&'static str),
    /// The request is malformed: 400.
    #[error("bad request: {0}")]
    Malformed(String),
    /// A transfer coding we do not implement: 501.
    #[error("transfer coding not implemented: {0}")]
    UnsupportedCoding(String),
    /// An HTTP version other than 1.0 and 1.1: 505.
    #[error("HTTP version not supported")]
    Version,
}

impl DecodeError {
    /// The status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            DecodeError::UriTooLong(_) => 414,
            DecodeError::HeadersTooLarge(_) => 431,
            DecodeError::Malformed(_) => 400,
            DecodeError::UnsupportedCoding(_) => 501,
            DecodeError::Version => 505,
        }
    }
}

/// What the decoder found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A complete request head.
    Head(Box<RequestHead>),
    /// Body bytes of the current request.
    Body(Bytes),
    /// The current request's body is complete (also right after a head with no body).
    End,
}

/// How the body of the current request is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    /// `remaining` bytes are left.
    Length(u64),
    /// Chunked, in this state.
    Chunked(Chunked),
}

/// The decoder's state: hyper's `Reading`, reduced to what a server needs.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Reading {
    /// Waiting for (the rest of) a request head.
    Head,
    /// Inside a request body.
    Body(Body),
    /// Stopped after an error or an upgrade: everything later belongs to someone else.
    Stopped,
}

/// Decodes a stream of pipelined HTTP/1.x requests.
#[derive(Clone, Debug)]
pub struct RequestDecoder {
    limits: HeadLimits,
    reading: Reading,
}

impl RequestDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: HeadLimits) -> Self {
        RequestDecoder {
            limits,
            reading: Reading::Head,
        }
    }

    /// Whether the decoder waits for a request head.
    pub fn wants_head(&self) -> bool {
        self.reading == Reading::Head
    }

    /// Stops decoding: later bytes are not HTTP/1.x (an upgrade) or not trusted (an error).
    pub fn stop(&mut self) {
        self.reading = Reading::Stopped;
    }

    /// Whether decoding stopped.
    pub fn is_stopped(&self) -> bool {
        self.reading == Reading::Stopped
    }

    /// Decodes the next event from the front of `buf`, consuming what it used.
    ///
    /// `body_room` is the most body bytes the caller can take now: with 0 the decoder does
    /// not return body bytes (it may still return the end of a body). `Ok(None)` means more
    /// input (or more room) is needed.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        body_room: usize,
    ) -> Result<Option<Event>, DecodeError> {
        loop {
            let result = match self.reading {
                Reading::Stopped => return Ok(None),
                Reading::Head => self.decode_head(buf),
                Reading::Body(Body::Length(0)) => {
                    self.reading = Reading::Head;
                    return Ok(Some(Event::End));
                }
                Reading::Body(Body::Length(remaining)) => {
                    if buf.is_empty() || body_room == 0 {
                        return Ok(None);
                    }
                    let n = take_len(remaining, buf.len(), body_room);
                    self.reading = Reading::Body(Body::Length(remaining - n as u64));
                    return Ok(Some(Event::Body(buf.split_to(n).freeze())));
                }
                Reading::Body(Body::Chunked(chunk)) => self.decode_chunked(chunk, buf, body_room),
            };
            match result {
                Err(err) => {
                    self.reading = Reading::Stopped;
                    return Err(err);
                }
                Ok(Step::Event(event)) => return Ok(Some(event)),
                Ok(Step::NeedMore) => return Ok(None),
                Ok(Step::Continue) => {}
            }
        }
    }

    fn decode_head(&mut self, buf: &mut BytesMut) -> Result<Step, DecodeError> {
        // RFC 9112 §2.2: empty lines before a request line are ignored (all of them, so that
        // the result does not depend on how they were split).
        loop {
            if buf.starts_with(b"\r\n") {
                let _ = buf.split_to(2);
            } else if buf.first() == Some(&b'\n') {
                let _ = buf.split_to(1);
            } else {
                break;
            }
        }
        let line_end = buf.iter().position(|&b| b == b'\n');
        match line_end {
            None if buf.len() > self.limits.max_request_line + 1 => {
                return Err(DecodeError::UriTooLong(self.limits.max_request_line));
            }
            None => return Ok(Step::NeedMore),
            Some(end) if end > self.limits.max_request_line + 1 => {
                return Err(DecodeError::UriTooLong(self.limits.max_request_line));
            }
            Some(_) => {}
        }
        // The header block is what follows the request line.
        let line_len = line_end.map_or(0, |end| end + 1);
        let max_block = self.limits.max_header_list + 2;
        // Parse at most what a head may take, so that the answer does not depend on how
        // much of an oversized head happens to be buffered.
        let window = buf.len().min(line_len + max_block);
        let mut headers = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let mut request = httparse::Request::new(&mut headers);
        let head_len = match request.parse(&buf[..window]) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if window == line_len + max_block => {
                return Err(DecodeError::HeadersTooLarge("header block over the limit"));
            }
            Ok(httparse::Status::Partial) => return Ok(Step::NeedMore),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(DecodeError::HeadersTooLarge("too many header fields"));
            }
            Err(httparse::Error::Version) => return Err(version_error(&buf[..line_len])),
            Err(err) => return Err(DecodeError::Malformed(err.to_string())),
        };
        let (head, body) = RequestHead::from_h1(&request)?;
        let _ = buf.split_to(head_len);
        self.reading = match body {
            BodyFraming::None => Reading::Body(Body::Length(0)),
            BodyFraming::Length(n) => Reading::Body(Body::Length(n)),
            BodyFraming::Chunked => Reading::Body(Body::Chunked(Chunked::Size)),
        };
        Ok(Step::Event(Event::Head(Box::new(head))))
    }

    fn decode_chunked(
        &mut self,
        mut chunked: Chunked,
        buf: &mut BytesMut,
        body_room: usize,
    ) -> Result<Step, DecodeError> {
        let step = chunked.step(buf, body_room)?;
        self.reading = Reading::Body(Body::Chunked(chunked));
        Ok(match step {
            ChunkStep::NeedMore => Step::NeedMore,
            ChunkStep::Continue => Step::Continue,
            ChunkStep::Data(bytes) => Step::Event(Event::Body(bytes)),
            ChunkStep::Done => {
                self.reading = Reading::Head;
                Step::Event(Event::End)
            }
        })
    }
}

/// How a request says its body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    None,
    /// `content-length` bytes.
    Length(u64),
    /// `transfer-encoding: chunked`.
    Chunked,
}

enum Step {
    Event(Event),
    NeedMore,
    Continue,
}

/// A request line httparse refused for its version: 505 when it is three well-formed parts
/// ending in another `HTTP/x.y`, 400 otherwise.
fn version_error(line: &[u8]) -> DecodeError {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let parts: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    match parts.as_slice() {
        [method, target, version]
            if !method.is_empty()
                && !target.is_empty()
                && version.len() == 8
                && version.starts_with(b"HTTP/")
                && version[5].is_ascii_digit()
                && version[6] == b'.'
                && version[7].is_ascii_digit() =>
        {
            DecodeError::Version
        }
        _ => malformed("invalid request line"),
    }
}

fn malformed(reason: &str) -> DecodeError {
    DecodeError::Malformed(reason.to_owned())
}

/// Takes one CRLF-terminated line (without the CRLF) from the front of `buf`; `None` when
/// incomplete. A bare LF is malformed here: chunk framing is strict to avoid smuggling.
pub(crate) fn take_line(
    buf: &mut BytesMut,
    max: usize,
    what: &str,
) -> Result<Option<Bytes>, DecodeError> {
    match buf.iter().position(|&b| b == b'\n') {
        None if buf.len() > max => Err(DecodeError::Malformed(format!("{what} too long"))),
        None => Ok(None),
        Some(end) => {
            if end == 0 || buf[end - 1] != b'\r' {
                return Err(DecodeError::Malformed(format!("{what} not ended by CRLF")));
            }
            if end > max {
                return Err(DecodeError::Malformed(format!("{what} too long")));
            }
            let line = buf.split_to(end + 1).freeze();
            Ok(Some(line.slice(..end - 1)))
        }
    }
}

pub(crate) fn parse_chunk_size(line: &[u8]) -> Result<u64, DecodeError> {
    let digits_end = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    let (digits, rest) = line.split_at(digits_end);
    if digits.is_empty() || digits.len() > 15 {
        return Err(malformed("invalid chunk size"));
    }
    let rest = trim_ows(rest);
    if !rest.is_empty() && rest[0] != b';' {
        return Err(malformed("invalid chunk size"));
    }
    let mut size: u64 = 0;
    for &d in digits {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => d - b'A' + 10,
        };
        size = (size << 4) | u64::from(v);
    }
    Ok(size)
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;

//! The HTTP/1.1 response decoder of `kind: client`: bytes from the upstream in, the response
//! head and body pieces out. No I/O: the caller owns the buffer and says how much body it can
//! take, so a response is streamed, never held whole.
//!
//! Total: any input gives events or a [`ResponseError`], never a panic, and the decoder never
//! holds more than the caller's buffer.

use binding_api::ext::http::{Header, HttpBeginEx};
use bytes::{Bytes, BytesMut};
use thiserror::Error;

use crate::h1::chunked::{ChunkStep, Chunked, take_len};
use crate::request::{HOP_BY_HOP, tokens};

/// The largest response head accepted (status line and header block).
pub const MAX_HEAD: usize = 16 * 1024;

/// The most header fields accepted in a response head.
pub const MAX_HEADERS: usize = 100;

/// What the decoder found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseEvent {
    /// The final response head: `:status` then the fields (lowercase names, hop-by-hop fields
    /// removed). Interim (1xx) responses are skipped.
    Head(HttpBeginEx),
    /// Body bytes.
    Body(Bytes),
    /// The body is complete (also right after a head with no body).
    End,
}

/// Why a response cannot be decoded.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ResponseError {
    /// The head is larger than [`MAX_HEAD`] or has more than [`MAX_HEADERS`] fields.
    #[error("response head too large: {0}")]
    HeadTooLarge(&'static str),
    /// The bytes are not an HTTP/1.x response.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// A transfer coding other than `chunked`.
    #[error("unsupported transfer coding: {0}")]
    UnsupportedCoding(String),
    /// The connection closed before the response was complete.
    #[error("the upstream closed the connection {0}")]
    Truncated(&'static str),
}

/// How the body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    /// `remaining` bytes are left.
    Length(u64),
    /// Chunked, in this state.
    Chunked(Chunked),
    /// Until the connection closes.
    UntilClose,
}

/// Where the decoder stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reading {
    Head,
    Body(Body),
    /// The response is complete, or decoding failed: later bytes are not read.
    Done,
}

/// Decodes one HTTP/1.x response.
#[derive(Clone, Debug)]
pub struct ResponseDecoder {
    reading: Reading,
    /// The request was `HEAD`: the response has no body whatever its head says.
    head_request: bool,
}

impl ResponseDecoder {
    /// A decoder for the response to a request; `head_request` when it was `HEAD`.
    pub fn new(head_request: bool) -> Self {
        ResponseDecoder {
            reading: Reading::Head,
            head_request,
        }
    }

    /// Whether the head has been decoded.
    pub fn has_head(&self) -> bool {
        self.reading != Reading::Head
    }

    /// Whether the response is complete (or decoding failed).
    pub fn is_done(&self) -> bool {
        self.reading == Reading::Done
    }

    /// Decodes the next event from the front of `buf`, consuming what it used. With
    /// `body_room` 0 no body bytes are returned (the end of a body still is). `Ok(None)`:
    /// more input, or more room, is needed.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        body_room: usize,
    ) -> Result<Option<ResponseEvent>, ResponseError> {
        let result = self.step(buf, body_room);
        if result.is_err() {
            self.reading = Reading::Done;
        }
        result
    }

    /// The connection closed: the end of a body delimited by the close, else an error when
    /// the response is not complete.
    pub fn eof(&mut self) -> Result<Option<ResponseEvent>, ResponseError> {
        let reading = std::mem::replace(&mut self.reading, Reading::Done);
        match reading {
            Reading::Done => Ok(None),
            Reading::Body(Body::UntilClose) => Ok(Some(ResponseEvent::End)),
            Reading::Body(Body::Length(0)) => Ok(Some(ResponseEvent::End)),
            Reading::Head => Err(ResponseError::Truncated("before the response head")),
            Reading::Body(_) => Err(ResponseError::Truncated("inside the response body")),
        }
    }

    fn step(
        &mut self,
        buf: &mut BytesMut,
        body_room: usize,
    ) -> Result<Option<ResponseEvent>, ResponseError> {
        loop {
            match self.reading {
                Reading::Done => return Ok(None),
                Reading::Head => match self.decode_head(buf)? {
                    Step::Event(event) => return Ok(Some(event)),
                    Step::NeedMore => return Ok(None),
                    Step::Continue => {}
                },
                Reading::Body(Body::Length(0)) => {
                    self.reading = Reading::Done;
                    return Ok(Some(ResponseEvent::End));
                }
                Reading::Body(Body::Length(remaining)) => {
                    if buf.is_empty() || body_room == 0 {
                        return Ok(None);
                    }
                    let n = take_len(remaining, buf.len(), body_room);
                    self.reading = Reading::Body(Body::Length(remaining - n as u64));
                    return Ok(Some(ResponseEvent::Body(buf.split_to(n).freeze())));
                }
                Reading::Body(Body::UntilClose) => {
                    if buf.is_empty() || body_room == 0 {
                        return Ok(None);
                    }
                    let n = buf.len().min(body_room);
                    return Ok(Some(ResponseEvent::Body(buf.split_to(n).freeze())));
                }
                Reading::Body(Body::Chunked(chunk)) => {
                    match self.decode_chunked(chunk, buf, body_room)? {
                        Step::Event(event) => return Ok(Some(event)),
                        Step::NeedMore => return Ok(None),
                        Step::Continue => {}
                    }
                }
            }
        }
    }

    /// The head; `Continue` when an interim response was skipped.
    fn decode_head(&mut self, buf: &mut BytesMut) -> Result<Step, ResponseError> {
        let window = buf.len().min(MAX_HEAD);
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut fields);
        let len = match response.parse(&buf[..window]) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if window == MAX_HEAD => {
                return Err(ResponseError::HeadTooLarge("over 16 KiB"));
            }
            Ok(httparse::Status::Partial) => return Ok(Step::NeedMore),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(ResponseError::HeadTooLarge("over 100 fields"));
            }
            Err(err) => return Err(ResponseError::Malformed(err.to_string())),
        };
        let status = response.code.unwrap_or(0);
        if status == 101 {
            return Err(ResponseError::Malformed(
                "101 Switching Protocols to a request that asked for no upgrade".into(),
            ));
        }
        if !(100..=999).contains(&status) {
            return Err(ResponseError::Malformed(format!("status {status}")));
        }
        let mut head = HttpBeginEx::response(status, []);
        let mut length: Option<u64> = None;
        let mut codings: Vec<String> = Vec::new();
        for field in response.headers.iter() {
            let name = field.name.to_ascii_lowercase();
            match name.as_str() {
                "content-length" => {
                    let value = std::str::from_utf8(field.value)
                        .ok()
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .ok_or_else(|| malformed("invalid content-length"))?;
                    if length.is_some_and(|l| l != value) {
                        return Err(malformed("conflicting content-length fields"));
                    }
                    length = Some(value);
                }
                "transfer-encoding" => {
                    codings.extend(tokens(field.value).map(|t| t.to_ascii_lowercase()));
                }
                _ => {}
            }
            if !HOP_BY_HOP.contains(&name.as_str()) {
                head.headers
                    .push(Header::new(name, Bytes::copy_from_slice(field.value)));
            }
        }
        let _ = buf.split_to(len);
        if status < 200 {
            // Interim: the final response follows.
            return Ok(Step::Continue);
        }
        let body = if self.head_request || status == 204 || status == 304 {
            Body::Length(0)
        } else if !codings.is_empty() {
            match codings.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                ["chunked"] => Body::Chunked(Chunked::Size),
                _ => return Err(ResponseError::UnsupportedCoding(codings.join(", "))),
            }
        } else if let Some(n) = length {
            Body::Length(n)
        } else {
            Body::UntilClose
        };
        self.reading = Reading::Body(body);
        Ok(Step::Event(ResponseEvent::Head(head)))
    }

    fn decode_chunked(
        &mut self,
        mut chunked: Chunked,
        buf: &mut BytesMut,
        body_room: usize,
    ) -> Result<Step, ResponseError> {
        let step = chunked
            .step(buf, body_room)
            .map_err(|e| ResponseError::Malformed(e.to_string()))?;
        self.reading = Reading::Body(Body::Chunked(chunked));
        Ok(match step {
            ChunkStep::NeedMore => Step::NeedMore,
            ChunkStep::Continue => Step::Continue,
            ChunkStep::Data(bytes) => Step::Event(ResponseEvent::Body(bytes)),
            ChunkStep::Done => {
                self.reading = Reading::Done;
                Step::Event(ResponseEvent::End)
            }
        })
    }
}

/// What one decoding step did.
enum Step {
    Event(ResponseEvent),
    NeedMore,
    Continue,
}

fn malformed(reason: &str) -> ResponseError {
    ResponseError::Malformed(reason.to_owned())
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;

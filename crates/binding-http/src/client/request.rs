//! The HTTP/1.1 request encoder of `kind: client`: the application's request head (its
//! [`HttpBeginEx`]) and body frames in, bytes for the upstream out. No I/O.

use binding_api::ext::http::{Header, HttpBeginEx};
use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use crate::request::HOP_BY_HOP;

/// Methods whose requests carry no body unless they say `content-length`.
const BODILESS: [&str; 6] = ["GET", "HEAD", "DELETE", "OPTIONS", "TRACE", "CONNECT"];

/// Why a request cannot be sent as HTTP/1.1.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum RequestError {
    /// A pseudo-header the request needs is missing or unusable.
    #[error("request {0}")]
    Head(String),
    /// A header field cannot be written as one line.
    #[error("request header '{0}' has a name or value that cannot be sent")]
    Field(String),
    /// The body does not fit the request's framing.
    #[error("request body {0}")]
    Body(&'static str),
}

/// How the request body is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestFraming {
    /// No body.
    Empty,
    /// `content-length`, `remaining` bytes left.
    Length(u64),
    /// `transfer-encoding: chunked`.
    Chunked,
}

/// A request being written: its framing state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestEncoder {
    framing: RequestFraming,
    head_request: bool,
}

impl RequestEncoder {
    /// Writes the head of `request` to `out` (with `connection: close`: one request per
    /// connection) and returns the encoder for its body.
    pub fn head(request: &HttpBeginEx, out: &mut BytesMut) -> Result<RequestEncoder, RequestError> {
        let method = request
            .method()
            .filter(|m| !m.is_empty() && m.bytes().all(is_token))
            .ok_or_else(|| RequestError::Head("has no usable :method".into()))?;
        let path = request
            .path()
            .filter(|p| (p.starts_with('/') || *p == "*") && p.bytes().all(is_target))
            .ok_or_else(|| RequestError::Head("has no usable :path".into()))?;
        let authority = match request.get_bytes(":authority") {
            Some(a) => Some(a),
            None => request.get_bytes("host"),
        };
        if authority.is_some_and(|a| !a.iter().all(|&b| is_value(b))) {
            return Err(RequestError::Field(":authority".into()));
        }
        let length = match request.get("content-length") {
            Some(v) => Some(
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| RequestError::Field("content-length".into()))?,
            ),
            None if request.get_bytes("content-length").is_some() => {
                return Err(RequestError::Field("content-length".into()));
            }
            None => None,
        };
        let framing = match length {
            Some(n) => RequestFraming::Length(n),
            None if BODILESS.contains(&method) => RequestFraming::Empty,
            None => RequestFraming::Chunked,
        };
        out.put_slice(method.as_bytes());
        out.put_u8(b' ');
        out.put_slice(path.as_bytes());
        out.put_slice(b" HTTP/1.1\r\nhost: ");
        out.put_slice(authority.unwrap_or_default());
        out.put_slice(b"\r\n");
        for Header { name, value } in &request.headers {
            if name.starts_with(':')
                || name == "host"
                || name == "content-length"
                || HOP_BY_HOP.contains(&name.as_str())
            {
                continue;
            }
            if name.is_empty() || !name.bytes().all(is_token) || !value.iter().all(|&b| is_value(b))
            {
                return Err(RequestError::Field(name.clone()));
            }
            out.put_slice(name.as_bytes());
            out.put_slice(b": ");
            out.put_slice(value);
            out.put_slice(b"\r\n");
        }
        match framing {
            RequestFraming::Length(n) => {
                out.put_slice(format!("content-length: {n}\r\n").as_bytes());
            }
            RequestFraming::Chunked => out.put_slice(b"transfer-encoding: chunked\r\n"),
            RequestFraming::Empty => {}
        }
        out.put_slice(b"connection: close\r\n\r\n");
        Ok(RequestEncoder {
            framing,
            head_request: method == "HEAD",
        })
    }

    /// The framing chosen.
    pub fn framing(&self) -> RequestFraming {
        self.framing
    }

    /// Whether the request is `HEAD` (its response has no body).
    pub fn is_head(&self) -> bool {
        self.head_request
    }

    /// Encodes a body frame to `out`.
    pub fn data(&mut self, payload: &Bytes, out: &mut BytesMut) -> Result<(), RequestError> {
        if payload.is_empty() {
            return Ok(());
        }
        match &mut self.framing {
            RequestFraming::Empty => return Err(RequestError::Body("on a request that has none")),
            RequestFraming::Length(remaining) => {
                let len = payload.len() as u64;
                if len > *remaining {
                    return Err(RequestError::Body("longer than its content-length"));
                }
                *remaining -= len;
                out.put_slice(payload);
            }
            RequestFraming::Chunked => {
                crate::h1::encode::chunk_size(payload.len(), out);
                out.put_slice(payload);
                out.put_slice(b"\r\n");
            }
        }
        Ok(())
    }

    /// Encodes the end of the body to `out`.
    pub fn end(&mut self, out: &mut BytesMut) -> Result<(), RequestError> {
        match self.framing {
            RequestFraming::Chunked => out.put_slice(b"0\r\n\r\n"),
            RequestFraming::Length(remaining) if remaining > 0 => {
                return Err(RequestError::Body("shorter than its content-length"));
            }
            _ => {}
        }
        Ok(())
    }
}

/// A `tchar` of RFC 9110 §5.6.2.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A byte allowed in a request target: visible ASCII (no space, no control).
fn is_target(b: u8) -> bool {
    (0x21..0x7f).contains(&b)
}

/// A byte allowed in a field value: no CR, LF or NUL (obs-text is kept).
fn is_value(b: u8) -> bool {
    b != b'\r' && b != b'\n' && b != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> HttpBeginEx {
        HttpBeginEx::new(
            headers
                .iter()
                .map(|(n, v)| Header::new(*n, v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn a_get_has_no_body_and_names_its_host() {
        let mut out = BytesMut::new();
        let head = request(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", "example.com:8001"),
            (":path", "/events?x=1"),
            ("accept", "text/event-stream"),
            ("connection", "keep-alive"),
        ]);
        let encoder = RequestEncoder::head(&head, &mut out).unwrap();
        assert_eq!(encoder.framing(), RequestFraming::Empty);
        assert_eq!(
            &out[..],
            b"GET /events?x=1 HTTP/1.1\r\nhost: example.com:8001\r\naccept: text/event-stream\r\nconnection: close\r\n\r\n"
        );
    }

    #[test]
    fn a_post_without_length_is_chunked() {
        let mut out = BytesMut::new();
        let head = request(&[(":method", "POST"), (":path", "/"), (":authority", "a")]);
        let mut encoder = RequestEncoder::head(&head, &mut out).unwrap();
        assert_eq!(encoder.framing(), RequestFraming::Chunked);
        out.clear();
        encoder
            .data(&Bytes::from_static(b"hello"), &mut out)
            .unwrap();
        encoder.end(&mut out).unwrap();
        assert_eq!(&out[..], b"5\r\nhello\r\n0\r\n\r\n");
    }

    #[test]
    fn content_length_is_kept_and_enforced() {
        let mut out = BytesMut::new();
        let head = request(&[
            (":method", "PUT"),
            (":path", "/x"),
            (":authority", "a"),
            ("content-length", "3"),
        ]);
        let mut encoder = RequestEncoder::head(&head, &mut out).unwrap();
        assert!(
            std::str::from_utf8(&out)
                .unwrap()
                .contains("content-length: 3\r\n")
        );
        assert!(
            encoder
                .data(&Bytes::from_static(b"abcd"), &mut out)
                .is_err()
        );
        encoder.data(&Bytes::from_static(b"ab"), &mut out).unwrap();
        assert!(encoder.end(&mut out).is_err());
    }

    #[test]
    fn unsendable_heads_are_refused() {
        let mut out = BytesMut::new();
        let no_path = request(&[(":method", "GET")]);
        assert!(RequestEncoder::head(&no_path, &mut out).is_err());
        let space = request(&[(":method", "GET"), (":path", "/a b")]);
        assert!(RequestEncoder::head(&space, &mut out).is_err());
        let injected = request(&[(":method", "GET"), (":path", "/"), ("x", "a\r\nb: c")]);
        assert_eq!(
            RequestEncoder::head(&injected, &mut out),
            Err(RequestError::Field("x".into()))
        );
        let body = request(&[(":method", "GET"), (":path", "/")]);
        let mut encoder = RequestEncoder::head(&body, &mut out).unwrap();
        assert!(encoder.data(&Bytes::from_static(b"x"), &mut out).is_err());
    }
}

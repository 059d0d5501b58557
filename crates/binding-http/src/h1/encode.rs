//! The HTTP/1.1 response encoder: a response head and body frames in, bytes out.

use std::fmt::Write as _;

use binding_api::bytes_queue::ByteQueue;
use binding_api::ext::http::Header;
use bytes::{BufMut, Bytes, BytesMut};

use super::chunk_memo::{self, ChunkMemo};

/// The most bytes chunk framing adds to a data frame: a 16-digit size, two CRLFs.
pub const CHUNK_OVERHEAD: u32 = 16 + 4;

/// How a response body is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body may follow (HEAD, 1xx, 204, 304).
    Empty,
    /// `content-length` bytes follow; `remaining` are left.
    Length(u64),
    /// `transfer-encoding: chunked`.
    Chunked,
    /// The body runs until the connection closes (HTTP/1.0 without a length).
    UntilClose,
}

/// A response being written: its framing state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseEncoder {
    framing: Framing,
}

/// A body frame that does not fit the response's framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// More body than `content-length` said.
    #[error("the application sent more body than the response allows")]
    TooLong,
    /// The body ended before `content-length` bytes.
    #[error("the application ended the body before its content-length")]
    TooShort,
}

/// The reason phrase of common statuses (empty for others, which HTTP/1.1 allows).
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

impl ResponseEncoder {
    /// Writes the head of a response to `out` and returns the encoder for its body.
    ///
    /// `headers` are the application's (connection-specific ones already removed); a
    /// `content-length` among them selects length framing. `head_request`: the request was
    /// HEAD. `minor`: the request's HTTP/1.x minor version. `close`: the connection closes
    /// after this response (adds `connection: close`).
    pub fn head(
        status: u16,
        headers: &[Header],
        head_request: bool,
        minor: u8,
        close: &mut bool,
        out: &mut BytesMut,
    ) -> ResponseEncoder {
        let length = headers
            .iter()
            .find(|h| h.name == "content-length")
            .and_then(|h| std::str::from_utf8(&h.value).ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let no_body = head_request || status < 200 || status == 204 || status == 304;
        let framing = match (no_body, length) {
            (true, _) => Framing::Empty,
            (false, Some(n)) => Framing::Length(n),
            (false, None) if minor >= 1 => Framing::Chunked,
            (false, None) => {
                *close = true;
                Framing::UntilClose
            }
        };
        let _ = write!(out, "HTTP/1.1 {status} {}\r\n", reason(status));
        for header in headers {
            if header.name.starts_with(':') || header.name.is_empty() {
                continue;
            }
            if header.name == "content-length" && (status == 204 || status < 200) {
                continue;
            }
            if header
                .value
                .iter()
                .any(|&b| b == b'\r' || b == b'\n' || b == 0)
            {
                // A value that would break the head is dropped rather than sent.
                continue;
            }
            out.put_slice(header.name.as_bytes());
            out.put_slice(b": ");
            out.put_slice(&header.value);
            out.put_slice(b"\r\n");
        }
        if framing == Framing::Chunked {
            out.put_slice(b"transfer-encoding: chunked\r\n");
        }
        if *close {
            out.put_slice(b"connection: close\r\n");
        } else if minor == 0 {
            out.put_slice(b"connection: keep-alive\r\n");
        }
        out.put_slice(b"\r\n");
        ResponseEncoder { framing }
    }

    /// The framing chosen.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Encodes a body frame: the payload is queued as it is, chunk framing beside it in
    /// the queue's tail (no copy of the payload), or the whole chunk from `chunks`.
    pub fn data(
        &mut self,
        payload: &Bytes,
        chunks: &ChunkMemo,
        out: &mut ByteQueue,
    ) -> Result<(), EncodeError> {
        if payload.is_empty() {
            return Ok(());
        }
        match &mut self.framing {
            // HEAD, 1xx, 204 and 304 have no body on the wire: what the application sends is
            // dropped, as the same response to GET would have carried it.
            Framing::Empty => {}
            Framing::Length(remaining) => {
                let len = payload.len() as u64;
                if len > *remaining {
                    return Err(EncodeError::TooLong);
                }
                *remaining -= len;
                out.push(payload.clone());
            }
            // A payload sent on many connections (an event fanned out) is framed once.
            Framing::Chunked if payload.len() <= chunk_memo::MAX_SHARED => {
                out.push(chunks.chunk(payload));
            }
            Framing::Chunked => {
                chunk_size(payload.len(), out.tail());
                out.push(payload.clone());
                out.tail().put_slice(b"\r\n");
            }
            Framing::UntilClose => out.push(payload.clone()),
        }
        Ok(())
    }

    /// Encodes the end of the body.
    pub fn end(&mut self, out: &mut BytesMut) -> Result<(), EncodeError> {
        match self.framing {
            Framing::Chunked => out.put_slice(b"0\r\n\r\n"),
            Framing::Length(remaining) if remaining > 0 => return Err(EncodeError::TooShort),
            _ => {}
        }
        Ok(())
    }
}

/// `{size:x}\r\n`, written without a formatter or an allocation.
pub(crate) fn chunk_size(size: usize, out: &mut BytesMut) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut at = digits.len();
    let mut rest = size;
    loop {
        at -= 1;
        digits[at] = HEX[rest & 0xf];
        rest >>= 4;
        if rest == 0 {
            break;
        }
    }
    out.put_slice(&digits[at..]);
    out.put_slice(b"\r\n");
}

/// A complete response with no body from the binding itself (errors, preflights).
pub fn simple(status: u16, headers: &[Header], close: bool, out: &mut BytesMut) {
    let mut all: Vec<Header> = headers.to_vec();
    if status != 204 && status >= 200 {
        all.push(Header::new("content-length", "0"));
    }
    let mut close = close;
    let _ = ResponseEncoder::head(status, &all, false, 1, &mut close, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything queued, in order.
    fn drain(out: &mut ByteQueue) -> Vec<u8> {
        let mut all = Vec::new();
        while let Some(slice) = out.take(usize::MAX) {
            all.extend_from_slice(&slice);
        }
        all
    }

    #[test]
    fn chunked_by_default_and_terminated() {
        let mut out = ByteQueue::default();
        let mut close = false;
        let mut enc = ResponseEncoder::head(
            200,
            &[Header::new("content-type", "text/plain")],
            false,
            1,
            &mut close,
            out.tail(),
        );
        enc.data(
            &Bytes::from_static(b"hello"),
            &ChunkMemo::default(),
            &mut out,
        )
        .unwrap();
        enc.end(out.tail()).unwrap();
        assert_eq!(
            &drain(&mut out)[..],
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        );
    }

    #[test]
    fn content_length_is_enforced() {
        let mut out = ByteQueue::default();
        let mut close = false;
        let mut enc = ResponseEncoder::head(
            200,
            &[Header::new("content-length", "3")],
            false,
            1,
            &mut close,
            out.tail(),
        );
        assert_eq!(
            enc.data(
                &Bytes::from_static(b"abcd"),
                &ChunkMemo::default(),
                &mut out
            ),
            Err(EncodeError::TooLong)
        );
        enc.data(&Bytes::from_static(b"ab"), &ChunkMemo::default(), &mut out)
            .unwrap();
        assert_eq!(enc.end(out.tail()), Err(EncodeError::TooShort));
    }

    #[test]
    fn http10_without_length_closes() {
        let mut out = BytesMut::new();
        let mut close = false;
        let enc = ResponseEncoder::head(200, &[], false, 0, &mut close, &mut out);
        assert_eq!(enc.framing(), Framing::UntilClose);
        assert!(close);
        assert!(out.ends_with(b"connection: close\r\n\r\n"));
    }

    #[test]
    fn chunk_overhead_bounds_framing() {
        let mut out = ByteQueue::default();
        let mut enc = ResponseEncoder {
            framing: Framing::Chunked,
        };
        let payload = Bytes::from(vec![0u8; 70_000]);
        enc.data(&payload, &ChunkMemo::default(), &mut out).unwrap();
        assert!(out.len() <= payload.len() + CHUNK_OVERHEAD as usize);
    }

    #[test]
    fn a_large_chunk_carries_the_payload_it_was_given_not_a_copy() {
        let mut out = ByteQueue::default();
        let mut enc = ResponseEncoder {
            framing: Framing::Chunked,
        };
        let payload = Bytes::from(vec![b'x'; 0x2ee0]);
        assert!(payload.len() > chunk_memo::MAX_SHARED);
        enc.data(&payload, &ChunkMemo::default(), &mut out).unwrap();
        assert_eq!(out.take(usize::MAX).unwrap(), "2ee0\r\n");
        assert_eq!(out.take(usize::MAX).unwrap().as_ptr(), payload.as_ptr());
        assert_eq!(out.take(usize::MAX).unwrap(), "\r\n");
    }

    #[test]
    fn chunk_sizes_are_lowercase_hex() {
        for size in [
            1usize,
            9,
            10,
            15,
            16,
            255,
            4096,
            65_535,
            1 << 40,
            usize::MAX,
        ] {
            let mut out = BytesMut::new();
            chunk_size(size, &mut out);
            assert_eq!(out, format!("{size:x}\r\n").as_bytes());
        }
    }
}

//! `Upgrade: h2c` from HTTP/1.1 (RFC 7540 §3.2).
//!
//! After `101 Switching Protocols` the request that asked for the upgrade is answered on
//! stream 1, half-closed by the client. The `h2` crate has no way to adopt such a stream, so
//! the client's byte stream is spliced: its connection preface and first SETTINGS frame are
//! passed on, then a HEADERS frame (HPACK literals, no compression) carrying the upgrade
//! request with END_STREAM, then everything the client sends after. `h2` then sees an
//! ordinary client opening stream 1.
//!
//! Only requests without a body are upgraded; others are answered over HTTP/1.1 (a server
//! may ignore `Upgrade`).

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use super::PREFACE;
use crate::request::RequestHead;

/// The client did not start HTTP/2 as it must after 101.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SpliceError {
    /// The bytes after 101 are not the connection preface.
    #[error("no HTTP/2 connection preface after 101")]
    Preface,
    /// The first frame is not SETTINGS, or is larger than the default maximum frame size.
    #[error("first HTTP/2 frame is not a SETTINGS frame of at most 16384 bytes")]
    Settings,
}

/// Frame types and flags used.
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
/// Largest frame payload every peer accepts.
const MAX_FRAME: usize = 16_384;

/// Rewrites the start of an upgraded connection's byte stream.
pub(crate) struct Splice {
    block: Bytes,
}

impl Splice {
    /// A splice that will inject `head` as stream 1.
    pub(crate) fn new(head: RequestHead) -> Self {
        Splice {
            block: header_block(&head),
        }
    }

    /// Looks at the client's first bytes: `Ok(None)` until the preface and first frame are
    /// there, then the bytes to give `h2` (everything in `pending` is taken).
    pub(crate) fn feed(&mut self, pending: &mut BytesMut) -> Result<Option<Bytes>, SpliceError> {
        let have = pending.len().min(PREFACE.len());
        if pending[..have] != PREFACE[..have] {
            return Err(SpliceError::Preface);
        }
        let header_end = PREFACE.len() + 9;
        if pending.len() < header_end {
            return Ok(None);
        }
        let frame = &pending[PREFACE.len()..header_end];
        if frame[3] != SETTINGS {
            return Err(SpliceError::Settings);
        }
        let len = usize::from(frame[0]) << 16 | usize::from(frame[1]) << 8 | usize::from(frame[2]);
        if len > MAX_FRAME {
            // Larger than any peer may send before SETTINGS are exchanged: refuse rather than
            // buffer it.
            return Err(SpliceError::Settings);
        }
        let settings_end = header_end + len;
        if pending.len() < settings_end {
            return Ok(None);
        }
        let mut out = BytesMut::with_capacity(pending.len() + self.block.len() + 64);
        out.put_slice(&pending.split_to(settings_end));
        write_headers(&self.block, &mut out);
        out.put_slice(&pending.split());
        Ok(Some(out.freeze()))
    }
}

/// HEADERS (and CONTINUATION) frames on stream 1 carrying `block`, with END_STREAM.
fn write_headers(block: &[u8], out: &mut BytesMut) {
    let mut chunks = block.chunks(MAX_FRAME).peekable();
    let mut first = true;
    if block.is_empty() {
        frame_header(0, HEADERS, END_STREAM | END_HEADERS, out);
        return;
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        let (kind, mut flags) = if first {
            (HEADERS, END_STREAM)
        } else {
            (CONTINUATION, 0)
        };
        if last {
            flags |= END_HEADERS;
        }
        frame_header(chunk.len(), kind, flags, out);
        out.put_slice(chunk);
        first = false;
    }
}

fn frame_header(len: usize, kind: u8, flags: u8, out: &mut BytesMut) {
    out.put_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.put_u32(1);
}

/// The request's fields as HPACK "literal header field without indexing, new name"
/// representations, no Huffman coding.
fn header_block(head: &RequestHead) -> Bytes {
    let mut out = BytesMut::new();
    let pseudo = [
        (":method", head.method.as_bytes()),
        (":scheme", head.scheme.as_bytes()),
        (":authority", head.authority.as_bytes()),
        (":path", head.path.as_bytes()),
    ];
    for (name, value) in pseudo {
        literal(name.as_bytes(), value, &mut out);
    }
    for header in &head.headers {
        literal(header.name.as_bytes(), &header.value, &mut out);
    }
    out.freeze()
}

fn literal(name: &[u8], value: &[u8], out: &mut BytesMut) {
    out.put_u8(0x00);
    integer(name.len(), out);
    out.put_slice(name);
    integer(value.len(), out);
    out.put_slice(value);
}

/// An HPACK integer with a 7-bit prefix and the Huffman bit clear (RFC 7541 §5.1).
fn integer(mut n: usize, out: &mut BytesMut) {
    if n < 127 {
        out.put_u8(n as u8);
        return;
    }
    out.put_u8(127);
    n -= 127;
    while n >= 128 {
        out.put_u8((n % 128) as u8 | 0x80);
        n /= 128;
    }
    out.put_u8(n as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_rfc7541() {
        let mut out = BytesMut::new();
        integer(10, &mut out);
        integer(1337, &mut out);
        assert_eq!(&out[..], &[10, 127, 0xba, 0x09]);
    }

    #[test]
    fn splice_waits_for_settings_and_rejects_garbage() {
        let head = RequestHead {
            method: "GET".into(),
            scheme: "http".into(),
            authority: "a".into(),
            path: "/".into(),
            headers: Vec::new(),
            h1_minor: Some(1),
            keep_alive: true,
            expect_continue: false,
            h2c_settings: None,
            has_body: false,
        };
        let mut splice = Splice::new(head.clone());
        let mut pending = BytesMut::from(&PREFACE[..10]);
        assert_eq!(splice.feed(&mut pending), Ok(None));
        pending.put_slice(&PREFACE[10..]);
        pending.put_slice(&[0, 0, 0, SETTINGS, 0, 0, 0, 0, 0]);
        pending.put_slice(b"tail");
        let out = splice.feed(&mut pending).unwrap().unwrap();
        assert!(out.starts_with(PREFACE));
        assert!(out.ends_with(b"tail"));
        assert_eq!(out[PREFACE.len() + 9 + 3], HEADERS);
        let mut huge = BytesMut::from(PREFACE);
        huge.put_slice(&[0x01, 0, 0, SETTINGS, 0, 0, 0, 0, 0]);
        assert_eq!(
            Splice::new(head.clone()).feed(&mut huge),
            Err(SpliceError::Settings)
        );
        let mut bad = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
        assert_eq!(Splice::new(head).feed(&mut bad), Err(SpliceError::Preface));
    }
}

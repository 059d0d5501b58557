//! The chunked transfer coding (RFC 9112 §7.1) decoded sans-IO, one step at a time: shared by
//! the server's request decoder and the client's response decoder. Framing is strict (CRLF
//! only, bounded size lines and trailer sections) so that no two readers can frame one body
//! differently; trailers are read and dropped.

use bytes::{Bytes, BytesMut};

use crate::h1::decode::{DecodeError, parse_chunk_size, take_line};

/// The longest chunk-size line (with extensions) and trailer section accepted.
const MAX_CHUNK_LINE: usize = 1024;

/// Where a chunked body stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Chunked {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk, this many bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// Expecting trailer lines up to the empty line, this many bytes of them seen.
    Trailers(usize),
}

/// What one step did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ChunkStep {
    /// More bytes are needed (or no room for body bytes now).
    NeedMore,
    /// Framing was consumed; step again.
    Continue,
    /// Body bytes.
    Data(Bytes),
    /// The body is complete, trailers included.
    Done,
}

impl Chunked {
    /// Takes what it can from the front of `buf`, handing out at most `room` body bytes.
    pub(crate) fn step(
        &mut self,
        buf: &mut BytesMut,
        room: usize,
    ) -> Result<ChunkStep, DecodeError> {
        match *self {
            Chunked::Size => {
                let Some(line) = take_line(buf, MAX_CHUNK_LINE, "chunk-size line")? else {
                    return Ok(ChunkStep::NeedMore);
                };
                *self = match parse_chunk_size(&line)? {
                    0 => Chunked::Trailers(0),
                    size => Chunked::Data(size),
                };
                Ok(ChunkStep::Continue)
            }
            Chunked::Data(remaining) => {
                if buf.is_empty() || room == 0 {
                    return Ok(ChunkStep::NeedMore);
                }
                let n = take_len(remaining, buf.len(), room);
                *self = match remaining - n as u64 {
                    0 => Chunked::DataEnd,
                    left => Chunked::Data(left),
                };
                Ok(ChunkStep::Data(buf.split_to(n).freeze()))
            }
            Chunked::DataEnd => {
                if buf.len() < 2 {
                    if buf.first().is_some_and(|&b| b != b'\r') {
                        return Err(malformed("chunk data not followed by CRLF"));
                    }
                    return Ok(ChunkStep::NeedMore);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(malformed("chunk data not followed by CRLF"));
                }
                let _ = buf.split_to(2);
                *self = Chunked::Size;
                Ok(ChunkStep::Continue)
            }
            Chunked::Trailers(seen) => {
                let room = MAX_CHUNK_LINE.saturating_sub(seen);
                let Some(line) = take_line(buf, room, "trailer section")? else {
                    return Ok(ChunkStep::NeedMore);
                };
                if line.is_empty() {
                    return Ok(ChunkStep::Done);
                }
                if !line.contains(&b':') {
                    return Err(malformed("trailer field without ':'"));
                }
                *self = Chunked::Trailers(seen + line.len() + 2);
                Ok(ChunkStep::Continue)
            }
        }
    }
}

/// How many of `available` bytes to take from a body with `remaining` left, within `room`.
pub(crate) fn take_len(remaining: u64, available: usize, room: usize) -> usize {
    let n = available.min(room);
    usize::try_from(remaining).map_or(n, |r| r.min(n))
}

fn malformed(reason: &str) -> DecodeError {
    DecodeError::Malformed(reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps through `wire` fed one byte at a time, with `room` body bytes per step.
    fn decode(wire: &[u8], room: usize) -> Result<(Vec<u8>, usize), DecodeError> {
        let mut chunked = Chunked::Size;
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        for (fed, &byte) in wire.iter().enumerate() {
            buf.extend_from_slice(&[byte]);
            loop {
                match chunked.step(&mut buf, room)? {
                    ChunkStep::NeedMore => break,
                    ChunkStep::Continue => {}
                    ChunkStep::Data(bytes) => body.extend_from_slice(&bytes),
                    ChunkStep::Done => return Ok((body, fed + 1)),
                }
            }
        }
        Err(malformed("incomplete"))
    }

    #[test]
    fn chunks_and_trailers_decode_byte_by_byte() {
        let wire = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-sum: 1\r\n\r\nNEXT";
        let (body, used) = decode(wire, 3).unwrap();
        assert_eq!(body, b"hello world");
        assert_eq!(&wire[used..], b"NEXT", "stops at the body's end");
    }

    #[test]
    fn framing_is_strict() {
        for wire in [
            &b"5\nhello\r\n0\r\n\r\n"[..],
            b"5\r\nhelloXY0\r\n\r\n",
            b"zz\r\n",
            b"0\r\nno colon\r\n\r\n",
        ] {
            assert!(
                decode(wire, 64).is_err(),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
        let long_trailers = [&b"0\r\n"[..], &b"x: y\r\n".repeat(200), b"\r\n"].concat();
        assert!(
            decode(&long_trailers, 64).is_err(),
            "trailer section bounded"
        );
    }
}

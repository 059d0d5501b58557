//! An incremental decoder of HTTP/1.1 `Transfer-Encoding: chunked` bodies.

/// The body is not valid chunked encoding.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body")]
pub struct BadChunk;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size { value: u64, digits: u8 },
    Extension { value: u64 },
    SizeLf { value: u64 },
    Data { left: u64 },
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    TrailerLf,
    Done,
}

/// The decoder's state between pieces of input.
#[derive(Debug, Clone)]
pub struct Chunked {
    state: State,
}

impl Default for Chunked {
    fn default() -> Self {
        Self {
            state: State::Size {
                value: 0,
                digits: 0,
            },
        }
    }
}

impl Chunked {
    /// Whether the last chunk and the trailers were read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes `input`, passing each piece of body data to `out`.
    pub fn decode<E>(
        &mut self,
        mut input: &[u8],
        out: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<Result<(), E>, BadChunk> {
        while let Some((&b, rest)) = input.split_first() {
            self.state = match self.state {
                State::Data { left } => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
                    if let Err(e) = out(&input[..n]) {
                        return Ok(Err(e));
                    }
                    input = &input[n..];
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data { left }
                    };
                    continue;
                }
                State::Size { value, digits } => match (b as char).to_digit(16) {
                    Some(d) if digits < 15 => State::Size {
                        value: value << 4 | u64::from(d),
                        digits: digits + 1,
                    },
                    Some(_) => return Err(BadChunk),
                    None if digits == 0 => return Err(BadChunk),
                    None if b == b'\r' => State::SizeLf { value },
                    None if b == b'\n' => Self::after_size(value),
                    None if b == b';' || b == b' ' || b == b'\t' => State::Extension { value },
                    None => return Err(BadChunk),
                },
                State::Extension { value } => match b {
                    b'\r' => State::SizeLf { value },
                    b'\n' => Self::after_size(value),
                    _ => State::Extension { value },
                },
                State::SizeLf { value } if b == b'\n' => Self::after_size(value),
                State::DataCr if b == b'\r' => State::DataLf,
                State::DataCr | State::DataLf if b == b'\n' => State::Size {
                    value: 0,
                    digits: 0,
                },
                State::TrailerStart => match b {
                    b'\r' => State::TrailerLf,
                    b'\n' => State::Done,
                    _ => State::TrailerLine,
                },
                State::TrailerLine if b == b'\n' => State::TrailerStart,
                State::TrailerLine => State::TrailerLine,
                State::TrailerLf if b == b'\n' => State::Done,
                State::Done => return Ok(Ok(())),
                _ => return Err(BadChunk),
            };
            input = rest;
        }
        Ok(Ok(()))
    }

    fn after_size(value: u64) -> State {
        if value == 0 {
            State::TrailerStart
        } else {
            State::Data { left: value }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_pieces(pieces: &[&[u8]]) -> Result<(Vec<u8>, bool), BadChunk> {
        let mut decoder = Chunked::default();
        let mut body = Vec::new();
        for piece in pieces {
            let _: Result<(), ()> = decoder.decode(piece, &mut |d| {
                body.extend_from_slice(d);
                Ok(())
            })?;
        }
        Ok((body, decoder.is_done()))
    }

    #[test]
    fn decodes_chunks_extensions_and_trailers() {
        let input = b"5\r\nhello\r\n1;x=y\r\n \r\n6\nworld!\n0\r\nX-T: 1\r\n\r\n";
        assert_eq!(
            decode_pieces(&[input]),
            Ok((b"hello world!".to_vec(), true))
        );
    }

    #[test]
    fn refuses_garbage() {
        assert_eq!(decode_pieces(&[b"zz\r\n"]), Err(BadChunk));
        assert_eq!(decode_pieces(&[b"1\r\nab\r\n"]), Err(BadChunk));
        assert_eq!(decode_pieces(&[b"ffffffffffffffffff\r\n"]), Err(BadChunk));
    }

    proptest! {
        #[test]
        fn any_split_decodes_the_same(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..40), 0..8), cut in any::<prop::sample::Index>()) {
            let mut wire = Vec::new();
            let mut body = Vec::new();
            for c in &chunks {
                wire.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                wire.extend_from_slice(c);
                wire.extend_from_slice(b"\r\n");
                body.extend_from_slice(c);
            }
            wire.extend_from_slice(b"0\r\n\r\n");
            let at = cut.index(wire.len() + 1);
            prop_assert_eq!(decode_pieces(&[&wire[..at], &wire[at..]]), Ok((body, true)));
        }
    }
}

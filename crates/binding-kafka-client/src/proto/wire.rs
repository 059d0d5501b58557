//! Kafka's wire primitives: big-endian integers, varints, strings, bytes and arrays.
//!
//! [`Encode`] writes into a `BytesMut`. [`Decoder`] reads a `Bytes` and is *total*: every read
//! checks the bytes remaining, byte strings are zero-copy slices of the input, and every
//! array count is checked against the bytes left before anything is allocated, so no input can
//! make it panic or reserve more memory than the input's own size.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

/// Why bytes could not be decoded.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended in the middle of a field.
    #[error("truncated: {0} needs more bytes than remain")]
    Truncated(&'static str),
    /// A length or count was negative where that is not allowed.
    #[error("negative length {len} for {field}")]
    NegativeLength {
        /// The field.
        field: &'static str,
        /// The length read.
        len: i64,
    },
    /// A count promises more elements than the bytes left could hold.
    #[error("{field}: count {count} exceeds what {remaining} bytes can hold")]
    CountTooLarge {
        /// The field.
        field: &'static str,
        /// The count read.
        count: i64,
        /// Bytes remaining.
        remaining: usize,
    },
    /// A string was not UTF-8.
    #[error("{0} is not UTF-8")]
    NotUtf8(&'static str),
    /// A varint ran past its maximum width.
    #[error("malformed varint in {0}")]
    Varint(&'static str),
    /// A count above a limit the caller set.
    #[error("{field} of {within}: {count} over the limit of {limit}")]
    OverLimit {
        /// The field.
        field: &'static str,
        /// Where: a topic, say.
        within: String,
        /// The count so far.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// Something else that does not hold.
    #[error("invalid {field}: {detail}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        detail: String,
    },
}

/// Reads Kafka primitives from a buffer, without panicking.
#[derive(Clone, Debug)]
pub struct Decoder {
    buf: Bytes,
}

impl Decoder {
    /// A decoder over `buf`.
    pub fn new(buf: Bytes) -> Self {
        Decoder { buf }
    }

    /// Bytes remaining.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// The bytes remaining, without consuming them.
    pub fn rest(&self) -> &Bytes {
        &self.buf
    }

    fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let head = self.buf.get(..N).ok_or(DecodeError::Truncated(field))?;
        let mut out = [0u8; N];
        out.copy_from_slice(head);
        self.buf = self.buf.slice(N..);
        Ok(out)
    }

    /// An `int8`.
    pub fn i8(&mut self, field: &'static str) -> Result<i8, DecodeError> {
        Ok(i8::from_be_bytes(self.take(field)?))
    }

    /// An `int16`.
    pub fn i16(&mut self, field: &'static str) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.take(field)?))
    }

    /// An `int32`.
    pub fn i32(&mut self, field: &'static str) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.take(field)?))
    }

    /// A `uint32`.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take(field)?))
    }

    /// An `int64`.
    pub fn i64(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.take(field)?))
    }

    /// A zig-zag `varint` (at most 5 bytes).
    pub fn varint(&mut self, field: &'static str) -> Result<i32, DecodeError> {
        let raw = self.unsigned_varint(field, 5)?;
        let raw = u32::try_from(raw).map_err(|_| DecodeError::Varint(field))?;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    /// A zig-zag `varlong` (at most 10 bytes).
    pub fn varlong(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        let raw = self.unsigned_varint(field, 10)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    fn unsigned_varint(&mut self, field: &'static str, max: usize) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for i in 0..max {
            let [b] = self.take::<1>(field)?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::Varint(field))
    }

    /// `n` raw bytes, as a slice of the input.
    pub fn bytes_exact(&mut self, n: usize, field: &'static str) -> Result<Bytes, DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::Truncated(field));
        }
        Ok(self.buf.split_to(n))
    }

    fn sized(&mut self, len: i64, field: &'static str) -> Result<Option<Bytes>, DecodeError> {
        match len {
            -1 => Ok(None),
            n if n < 0 => Err(DecodeError::NegativeLength { field, len: n }),
            n => {
                let n = usize::try_from(n).map_err(|_| DecodeError::Truncated(field))?;
                self.bytes_exact(n, field).map(Some)
            }
        }
    }

    /// A `string` (int16 length) that may not be null.
    pub fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        self.nullable_string(field)?
            .ok_or(DecodeError::NegativeLength { field, len: -1 })
    }

    /// A `nullable_string` (int16 length, -1 for null).
    pub fn nullable_string(&mut self, field: &'static str) -> Result<Option<String>, DecodeError> {
        let len = i64::from(self.i16(field)?);
        match self.sized(len, field)? {
            None => Ok(None),
            Some(b) => String::from_utf8(b.to_vec())
                .map(Some)
                .map_err(|_| DecodeError::NotUtf8(field)),
        }
    }

    /// `nullable_bytes` (int32 length, -1 for null).
    pub fn nullable_bytes(&mut self, field: &'static str) -> Result<Option<Bytes>, DecodeError> {
        let len = i64::from(self.i32(field)?);
        self.sized(len, field)
    }

    /// Bytes with a varint length (-1 for null), as in records.
    pub fn varint_bytes(&mut self, field: &'static str) -> Result<Option<Bytes>, DecodeError> {
        let len = i64::from(self.varint(field)?);
        self.sized(len, field)
    }

    /// An array count (int32, -1 for null which reads as 0), checked so that `count` elements
    /// of at least `min_size` bytes each fit in what remains.
    pub fn array_len(
        &mut self,
        field: &'static str,
        min_size: usize,
    ) -> Result<usize, DecodeError> {
        let count = self.i32(field)?;
        self.check_count(i64::from(count), field, min_size)
    }

    /// Checks a count read elsewhere (e.g. a varint) the same way as [`Decoder::array_len`].
    pub fn check_count(
        &self,
        count: i64,
        field: &'static str,
        min_size: usize,
    ) -> Result<usize, DecodeError> {
        if count == -1 {
            return Ok(0);
        }
        if count < 0 {
            return Err(DecodeError::NegativeLength { field, len: count });
        }
        let n = usize::try_from(count).map_err(|_| DecodeError::CountTooLarge {
            field,
            count,
            remaining: self.buf.len(),
        })?;
        if n.saturating_mul(min_size.max(1)) > self.buf.len() {
            return Err(DecodeError::CountTooLarge {
                field,
                count,
                remaining: self.buf.len(),
            });
        }
        Ok(n)
    }

    /// A boolean.
    pub fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        Ok(self.i8(field)? != 0)
    }
}

/// Writes Kafka primitives.
pub trait Encode {
    /// A `string`.
    fn put_string(&mut self, s: &str);
    /// A `nullable_string`.
    fn put_nullable_string(&mut self, s: Option<&str>);
    /// `nullable_bytes` with an int32 length.
    fn put_nullable_bytes(&mut self, b: Option<&[u8]>);
    /// An array count.
    fn put_array_len(&mut self, n: usize);
    /// A zig-zag varint.
    fn put_varint(&mut self, v: i32);
    /// A zig-zag varlong.
    fn put_varlong(&mut self, v: i64);
    /// Bytes with a varint length, -1 for `None`.
    fn put_varint_bytes(&mut self, b: Option<&[u8]>);
}

fn put_unsigned_varint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

impl Encode for BytesMut {
    fn put_string(&mut self, s: &str) {
        self.put_nullable_string(Some(s));
    }

    fn put_nullable_string(&mut self, s: Option<&str>) {
        match s {
            None => self.put_i16(-1),
            Some(s) => {
                let len = s.len().min(i16::MAX as usize);
                self.put_i16(len as i16);
                self.put_slice(&s.as_bytes()[..len]);
            }
        }
    }

    fn put_nullable_bytes(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.put_i32(-1),
            Some(b) => {
                self.put_i32(i32::try_from(b.len()).unwrap_or(i32::MAX));
                self.put_slice(b);
            }
        }
    }

    fn put_array_len(&mut self, n: usize) {
        self.put_i32(i32::try_from(n).unwrap_or(i32::MAX));
    }

    fn put_varint(&mut self, v: i32) {
        put_unsigned_varint(self, u64::from(((v << 1) ^ (v >> 31)) as u32));
    }

    fn put_varlong(&mut self, v: i64) {
        put_unsigned_varint(self, ((v << 1) ^ (v >> 63)) as u64);
    }

    fn put_varint_bytes(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.put_varint(-1),
            Some(b) => {
                self.put_varint(i32::try_from(b.len()).unwrap_or(i32::MAX));
                self.put_slice(b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_round_trip(a: i32, b: i64) {
            let mut buf = BytesMut::new();
            buf.put_varint(a);
            buf.put_varlong(b);
            let mut d = Decoder::new(buf.freeze());
            prop_assert_eq!(d.varint("a").unwrap(), a);
            prop_assert_eq!(d.varlong("b").unwrap(), b);
            prop_assert_eq!(d.remaining(), 0);
        }

        #[test]
        fn strings_and_bytes_round_trip(s: Option<String>, b: Option<Vec<u8>>) {
            let mut buf = BytesMut::new();
            buf.put_nullable_string(s.as_deref());
            buf.put_nullable_bytes(b.as_deref());
            buf.put_varint_bytes(b.as_deref());
            let mut d = Decoder::new(buf.freeze());
            prop_assert_eq!(d.nullable_string("s").unwrap(), s);
            let got = d.nullable_bytes("b").unwrap().map(|b| b.to_vec());
            prop_assert_eq!(&got, &b);
            let got = d.varint_bytes("b").unwrap().map(|b| b.to_vec());
            prop_assert_eq!(got, b);
        }

        #[test]
        fn arbitrary_input_never_panics(input: Vec<u8>) {
            let mut d = Decoder::new(Bytes::from(input));
            let _ = d.array_len("a", 4);
            let _ = d.varint_bytes("v");
            let _ = d.nullable_string("s");
        }
    }

    #[test]
    fn huge_count_is_refused_before_allocating() {
        let mut d = Decoder::new(Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0]));
        assert!(matches!(
            d.array_len("topics", 8),
            Err(DecodeError::CountTooLarge { .. })
        ));
    }
}

//! The Kafka protocol, sans I/O: request encoding and total response decoding for the APIs the
//! client speaks, over the primitives of [`wire`].
//!
//! Only non-flexible versions are implemented (Fetch ≤ 11, Metadata ≤ 8, ListOffsets ≤ 4,
//! DescribeConfigs ≤ 3, Produce ≤ 8,
//! ApiVersions 0, SaslHandshake 1, SaslAuthenticate 1): they address topics by name, which every broker since 2.1 accepts and Kafka
//! 4.x still serves. Fetch v12+ (flexible, and v13+ with topic ids per KIP-516) would add
//! tagged fields and a topic-id lookup for no gain to a reader; zstd needs Fetch ≥ 10, which
//! this range includes. [`api_versions::negotiate`] picks, per API, the highest version both
//! sides support.

pub mod api_versions;
pub mod describe_configs;
pub mod error;
pub mod fetch;
pub mod list_offsets;
pub mod metadata;
pub mod produce;
pub mod sasl;
pub mod wire;

use bytes::{BufMut, Bytes, BytesMut};

use wire::{DecodeError, Decoder, Encode};

/// The client id sent in every request header.
pub const CLIENT_ID: &str = "zilla-rs";

/// API keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i16)]
pub enum ApiKey {
    /// Produce.
    Produce = 0,
    /// Fetch.
    Fetch = 1,
    /// ListOffsets.
    ListOffsets = 2,
    /// Metadata.
    Metadata = 3,
    /// DescribeConfigs.
    DescribeConfigs = 32,
    /// SaslHandshake.
    SaslHandshake = 17,
    /// ApiVersions.
    ApiVersions = 18,
    /// SaslAuthenticate.
    SaslAuthenticate = 36,
}

/// A request body, ready to be framed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Its API.
    pub api: ApiKey,
    /// Its version.
    pub version: i16,
    /// The encoded body (after the header).
    pub body: Bytes,
}

/// Frames a request: size, header v1 (key, version, correlation id, client id), body.
pub fn frame_request(request: &Request, correlation_id: i32) -> Bytes {
    let mut buf = BytesMut::with_capacity(request.body.len() + 32);
    buf.put_i32(0);
    buf.put_i16(request.api as i16);
    buf.put_i16(request.version);
    buf.put_i32(correlation_id);
    buf.put_string(CLIENT_ID);
    buf.put_slice(&request.body);
    let size = i32::try_from(buf.len() - 4).unwrap_or(i32::MAX);
    buf[..4].copy_from_slice(&size.to_be_bytes());
    buf.freeze()
}

/// The size of the response at the front of `buf` once its size field is there (after the
/// field: correlation id and body). A size below 4 or above `max` is an error (a broker, or
/// something else, speaking nonsense).
pub fn response_size(buf: &[u8], max: usize) -> Result<Option<usize>, DecodeError> {
    let Some(head) = buf.get(..4) else {
        return Ok(None);
    };
    let size = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let size = usize::try_from(size).map_err(|_| DecodeError::NegativeLength {
        field: "response size",
        len: i64::from(size),
    })?;
    if size < 4 || size > max {
        return Err(DecodeError::Invalid {
            field: "response size",
            detail: format!("{size} bytes (limit {max})"),
        });
    }
    Ok(Some(size))
}

/// Splits one response off the front of `buf` when it is complete: `(correlation id, body)`.
/// A size out of bounds is an error, as for [`response_size`].
pub fn split_response(buf: &mut BytesMut, max: usize) -> Result<Option<(i32, Bytes)>, DecodeError> {
    let Some(size) = response_size(buf, max)? else {
        return Ok(None);
    };
    if buf.len() < 4 + size {
        return Ok(None);
    }
    let mut frame = buf.split_to(4 + size).freeze().slice(4..);
    let mut d = Decoder::new(frame.split_to(4));
    let correlation_id = d.i32("correlation id")?;
    Ok(Some((correlation_id, frame)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_back() {
        let req = Request {
            api: ApiKey::Metadata,
            version: 8,
            body: Bytes::from_static(b"xyz"),
        };
        let framed = frame_request(&req, 42);
        // A response frame: size, correlation id, body.
        let mut buf = BytesMut::new();
        buf.put_i32(7);
        buf.put_i32(42);
        buf.put_slice(b"abc");
        buf.put_slice(&framed[..2]);
        let (id, body) = split_response(&mut buf, 100).unwrap().unwrap();
        assert_eq!((id, &body[..]), (42, &b"abc"[..]));
        assert_eq!(split_response(&mut buf, 100).unwrap(), None);
        let mut bad = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert!(split_response(&mut bad, 100).is_err());
    }
}

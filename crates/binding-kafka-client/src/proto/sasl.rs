//! SaslHandshake v1 and SaslAuthenticate v1.

use bytes::{Bytes, BytesMut};

use super::wire::{DecodeError, Decoder, Encode};
use super::{ApiKey, Request};

/// A SaslHandshake v1 request for `mechanism`.
pub fn handshake_request(mechanism: &str) -> Request {
    let mut b = BytesMut::new();
    b.put_string(mechanism);
    Request {
        api: ApiKey::SaslHandshake,
        version: 1,
        body: b.freeze(),
    }
}

/// A SaslHandshake response: error code and the mechanisms the broker enables.
pub fn decode_handshake(body: Bytes) -> Result<(i16, Vec<String>), DecodeError> {
    let mut d = Decoder::new(body);
    let code = d.i16("error_code")?;
    let n = d.array_len("mechanisms", 2)?;
    let mut mechanisms = Vec::with_capacity(n);
    for _ in 0..n {
        mechanisms.push(d.string("mechanism")?);
    }
    Ok((code, mechanisms))
}

/// A SaslAuthenticate v1 request carrying `bytes`.
pub fn authenticate_request(bytes: &[u8]) -> Request {
    let mut b = BytesMut::new();
    b.put_nullable_bytes(Some(bytes));
    Request {
        api: ApiKey::SaslAuthenticate,
        version: 1,
        body: b.freeze(),
    }
}

/// A SaslAuthenticate response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticateResponse {
    /// Error code.
    pub error_code: i16,
    /// Error message.
    pub error_message: Option<String>,
    /// The mechanism's bytes.
    pub auth_bytes: Bytes,
}

/// Decodes a SaslAuthenticate v1 response.
pub fn decode_authenticate(body: Bytes) -> Result<AuthenticateResponse, DecodeError> {
    let mut d = Decoder::new(body);
    let error_code = d.i16("error_code")?;
    let error_message = d.nullable_string("error_message")?;
    let auth_bytes = d.nullable_bytes("auth_bytes")?.unwrap_or_default();
    d.i64("session_lifetime_ms")?;
    Ok(AuthenticateResponse {
        error_code,
        error_message,
        auth_bytes,
    })
}

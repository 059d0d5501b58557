//! The server name and ALPN protocols of a TLS ClientHello, read without terminating TLS
//! (`kind: proxy`).
//!
//! Sans-IO and total: [`parse`] looks at the bytes received so far and says the hello is
//! complete (with what it offers), that more bytes are needed (and at least how many), or
//! that these bytes are no TLS 1.0–1.3 hello. It never panics and reads at most
//! [`MAX_HELLO`] bytes of handshake over at most [`MAX_RECORDS`] records.
//!
//! ```
//! use binding_tls::hello::{Hello, Parsed, parse};
//!
//! assert_eq!(parse(&[0x16, 0x03, 0x01]), Ok(Parsed::Incomplete { need: 5 }));
//! assert!(parse(b"GET / HTTP/1.1\r\n\r\n").is_err());
//! ```

use thiserror::Error;

/// The largest ClientHello handshake message read (Zilla's `handshake.window.bytes`).
pub const MAX_HELLO: usize = 64 * 1024;

/// The most records a ClientHello may be split across.
pub const MAX_RECORDS: usize = 16;

const RECORD_HEADER: usize = 5;
const MAX_FRAGMENT: usize = 16 * 1024;
const CONTENT_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const NAME_HOST: u8 = 0;

/// What a ClientHello asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hello {
    /// The `host_name` of the server_name extension (ASCII), if sent.
    pub server_name: Option<String>,
    /// The protocols of the ALPN extension, in the client's order.
    pub alpn: Vec<Vec<u8>>,
}

/// The outcome of [`parse`] on the bytes received so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The hello is complete; `len` bytes (whole records) carried it.
    Complete {
        /// What it asks for.
        hello: Hello,
        /// How many bytes of the input its records took.
        len: usize,
    },
    /// More bytes are needed: no answer before the input holds `need` bytes.
    Incomplete {
        /// The input length worth parsing again.
        need: usize,
    },
}

/// Why the bytes are not a ClientHello this binding reads.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum HelloError {
    /// The first bytes are not a TLS handshake record.
    #[error("not a TLS handshake record")]
    NotTls,
    /// A record is empty or longer than TLS allows.
    #[error("bad record length")]
    RecordLength,
    /// The first handshake message is not a ClientHello.
    #[error("the first handshake message is not a ClientHello")]
    NotClientHello,
    /// The hello is larger than [`MAX_HELLO`] or spread over more than [`MAX_RECORDS`].
    #[error("ClientHello too large")]
    TooLarge,
    /// A length inside the hello does not add up.
    #[error("malformed ClientHello")]
    Malformed,
    /// The server_name or ALPN extension is malformed or repeated.
    #[error("malformed server_name or ALPN extension")]
    BadExtension,
}

/// Reads the ClientHello at the start of `input`.
pub fn parse(input: &[u8]) -> Result<Parsed, HelloError> {
    let mut message = Vec::new();
    let mut at = 0;
    for _ in 0..MAX_RECORDS {
        let Some(header) = input.get(at..at + RECORD_HEADER) else {
            check_prefix(&input[at..])?;
            return Ok(Parsed::Incomplete {
                need: at + RECORD_HEADER,
            });
        };
        check_prefix(header)?;
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 || len > MAX_FRAGMENT + 256 {
            return Err(HelloError::RecordLength);
        }
        let end = at + RECORD_HEADER + len;
        let Some(fragment) = input.get(at + RECORD_HEADER..end) else {
            // Whatever arrived of this record can already be refused.
            let partial = &input[at + RECORD_HEADER..];
            message.extend_from_slice(partial);
            check_message_start(&message)?;
            return Ok(Parsed::Incomplete { need: end });
        };
        message.extend_from_slice(fragment);
        at = end;
        check_message_start(&message)?;
        let Some(body_len) = message_len(&message) else {
            continue;
        };
        if message.len() < 4 + body_len {
            continue;
        }
        if message.len() > 4 + body_len {
            // The next handshake message shares the record: no client sends that first.
            return Err(HelloError::Malformed);
        }
        let hello = client_hello(&message[4..])?;
        return Ok(Parsed::Complete { hello, len: at });
    }
    Err(HelloError::TooLarge)
}

/// A record header (or its start): handshake content, TLS major version 3.
fn check_prefix(header: &[u8]) -> Result<(), HelloError> {
    match header {
        [] => Ok(()),
        [CONTENT_HANDSHAKE] => Ok(()),
        [CONTENT_HANDSHAKE, 3, ..] => Ok(()),
        _ => Err(HelloError::NotTls),
    }
}

/// The handshake header as far as received: a ClientHello no larger than [`MAX_HELLO`].
fn check_message_start(message: &[u8]) -> Result<(), HelloError> {
    match message.first() {
        None | Some(&HANDSHAKE_CLIENT_HELLO) => {}
        Some(_) => return Err(HelloError::NotClientHello),
    }
    match message_len(message) {
        Some(len) if len > MAX_HELLO => Err(HelloError::TooLarge),
        _ => Ok(()),
    }
}

fn message_len(message: &[u8]) -> Option<usize> {
    match message {
        [_, a, b, c, ..] => {
            Some((usize::from(*a) << 16) | (usize::from(*b) << 8) | usize::from(*c))
        }
        _ => None,
    }
}

/// A cursor over bytes whose every read is checked.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], HelloError> {
        if self.0.len() < n {
            return Err(HelloError::Malformed);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, HelloError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, HelloError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A vector with a one-byte length.
    fn vec8(&mut self) -> Result<&'a [u8], HelloError> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }

    /// A vector with a two-byte length.
    fn vec16(&mut self) -> Result<&'a [u8], HelloError> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The ClientHello body (RFC 8446 §4.1.2, also TLS 1.0–1.2).
fn client_hello(body: &[u8]) -> Result<Hello, HelloError> {
    let mut c = Cursor(body);
    c.take(2 + 32)?; // legacy_version, random
    if c.vec8()?.len() > 32 {
        return Err(HelloError::Malformed); // legacy_session_id
    }
    let suites = c.vec16()?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err(HelloError::Malformed);
    }
    if c.vec8()?.is_empty() {
        return Err(HelloError::Malformed); // legacy_compression_methods
    }
    let mut hello = Hello::default();
    if c.is_empty() {
        return Ok(hello); // a TLS 1.0 hello may have no extensions
    }
    let mut extensions = Cursor(c.vec16()?);
    if !c.is_empty() {
        return Err(HelloError::Malformed);
    }
    let (mut seen_name, mut seen_alpn) = (false, false);
    while !extensions.is_empty() {
        let kind = extensions.u16()?;
        let data = extensions.vec16()?;
        match kind {
            EXT_SERVER_NAME => {
                if std::mem::replace(&mut seen_name, true) {
                    return Err(HelloError::BadExtension);
                }
                hello.server_name = server_name(data)?;
            }
            EXT_ALPN => {
                if std::mem::replace(&mut seen_alpn, true) {
                    return Err(HelloError::BadExtension);
                }
                hello.alpn = alpn(data)?;
            }
            _ => {}
        }
    }
    Ok(hello)
}

/// The host_name of a server_name extension (RFC 6066 §3).
fn server_name(data: &[u8]) -> Result<Option<String>, HelloError> {
    let bad = |_| HelloError::BadExtension;
    let mut outer = Cursor(data);
    let mut list = Cursor(outer.vec16().map_err(bad)?);
    if !outer.is_empty() {
        return Err(HelloError::BadExtension);
    }
    let mut name = None;
    while !list.is_empty() {
        let kind = list.u8().map_err(bad)?;
        let value = list.vec16().map_err(bad)?;
        if kind != NAME_HOST {
            continue;
        }
        let valid = !value.is_empty()
            && value
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !valid || name.is_some() {
            return Err(HelloError::BadExtension);
        }
        name = Some(String::from_utf8_lossy(value).into_owned());
    }
    Ok(name)
}

/// The protocol names of an ALPN extension (RFC 7301 §3.1).
fn alpn(data: &[u8]) -> Result<Vec<Vec<u8>>, HelloError> {
    let bad = |_| HelloError::BadExtension;
    let mut outer = Cursor(data);
    let mut list = Cursor(outer.vec16().map_err(bad)?);
    if !outer.is_empty() || list.is_empty() {
        return Err(HelloError::BadExtension);
    }
    let mut protocols = Vec::new();
    while !list.is_empty() {
        let name = list.vec8().map_err(bad)?;
        if name.is_empty() {
            return Err(HelloError::BadExtension);
        }
        protocols.push(name.to_vec());
    }
    Ok(protocols)
}

#[cfg(test)]
mod tests;

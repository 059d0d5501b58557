//! A request head as both HTTP versions give it, and what the application sees of it.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use binding_api::ext::http::{Header, HttpBeginEx};
use bytes::Bytes;

use crate::h1::decode::{BodyFraming, DecodeError};

/// Connection-specific header fields: they describe one hop of HTTP/1.1 and never reach the
/// application (nor an HTTP/2 peer, where they are forbidden).
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "http2-settings",
    "expect",
];

/// A request head, independent of the HTTP version that carried it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// `:method`.
    pub method: String,
    /// `:scheme`: `http`, or `https` behind TLS.
    pub scheme: String,
    /// `:authority`: the `Host` header in HTTP/1.1.
    pub authority: String,
    /// `:path`, with its query string.
    pub path: String,
    /// Ordinary headers, names lowercase, connection-specific ones removed.
    pub headers: Vec<Header>,
    /// HTTP/1.x minor version (`0` or `1`); `None` for HTTP/2.
    pub h1_minor: Option<u8>,
    /// The client wants the connection kept open after the response (HTTP/1.x).
    pub keep_alive: bool,
    /// The client waits for `100 Continue` before sending its body.
    pub expect_continue: bool,
    /// `Upgrade: h2c` (with `Connection: upgrade`) was asked for: the SETTINGS payload its
    /// one `HTTP2-Settings` header carries, or why that header is unusable (missing, repeated,
    /// not base64url, not whole 6-byte settings).
    pub h2c_settings: Option<Result<Bytes, &'static str>>,
    /// The request has a body.
    pub has_body: bool,
}

impl RequestHead {
    /// The first value of an ordinary header, if it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name == name)
            .and_then(|h| std::str::from_utf8(&h.value).ok())
    }

    /// The begin extension of the request stream: pseudo-headers, then the headers.
    pub fn begin_ex(&self) -> HttpBeginEx {
        let mut headers = Vec::with_capacity(self.headers.len() + 4);
        headers.push(Header::new(":method", self.method.clone()));
        headers.push(Header::new(":scheme", self.scheme.clone()));
        headers.push(Header::new(":authority", self.authority.clone()));
        headers.push(Header::new(":path", self.path.clone()));
        headers.extend(self.headers.iter().cloned());
        HttpBeginEx::new(headers)
    }

    /// The value a route condition on `name` is matched against (pseudo-headers included).
    pub fn value(&self, name: &str) -> Option<&str> {
        match name {
            ":method" => Some(&self.method),
            ":scheme" => Some(&self.scheme),
            ":authority" => Some(&self.authority),
            ":path" => Some(&self.path),
            _ => self.header(name),
        }
    }

    /// Reads a head parsed by httparse, checking what HTTP/1.1 requires of it.
    pub(crate) fn from_h1(
        request: &httparse::Request<'_, '_>,
    ) -> Result<(RequestHead, BodyFraming), DecodeError> {
        let bad = |reason: &str| DecodeError::Malformed(reason.to_owned());
        let method = request.method.ok_or_else(|| bad("no method"))?;
        let target = request.path.ok_or_else(|| bad("no request target"))?;
        let minor = request.version.ok_or(DecodeError::Version)?;
        let mut head = RequestHead {
            method: method.to_owned(),
            scheme: "http".to_owned(),
            authority: String::new(),
            path: String::new(),
            headers: Vec::with_capacity(request.headers.len()),
            h1_minor: Some(minor),
            keep_alive: minor >= 1,
            expect_continue: false,
            h2c_settings: None,
            has_body: false,
        };
        let mut host: Option<&[u8]> = None;
        let mut length: Option<u64> = None;
        let mut chunked = false;
        let mut upgrade_h2c = false;
        let mut connection_upgrade = false;
        let mut settings: Vec<&[u8]> = Vec::new();
        for field in request.headers.iter() {
            let name = field.name.to_ascii_lowercase();
            let value = field.value;
            match name.as_str() {
                "host" => {
                    if host.is_some() {
                        return Err(bad("more than one Host header"));
                    }
                    host = Some(value);
                }
                "content-length" => {
                    let n = parse_length(value).ok_or_else(|| bad("invalid Content-Length"))?;
                    if length.is_some_and(|l| l != n) {
                        return Err(bad("conflicting Content-Length headers"));
                    }
                    length = Some(n);
                }
                "transfer-encoding" => {
                    for coding in tokens(value) {
                        if chunked {
                            // Chunked must be the last coding, applied once.
                            return Err(bad("transfer coding after chunked"));
                        }
                        if coding.eq_ignore_ascii_case("chunked") {
                            chunked = true;
                        } else {
                            return Err(DecodeError::UnsupportedCoding(coding.to_owned()));
                        }
                    }
                    if !chunked {
                        return Err(bad("Transfer-Encoding without chunked"));
                    }
                }
                "connection" => {
                    for token in tokens(value) {
                        if token.eq_ignore_ascii_case("close") {
                            head.keep_alive = false;
                        } else if token.eq_ignore_ascii_case("keep-alive") && minor == 0 {
                            head.keep_alive = true;
                        } else if token.eq_ignore_ascii_case("upgrade") {
                            connection_upgrade = true;
                        }
                    }
                }
                "upgrade" => {
                    upgrade_h2c = tokens(value).any(|t| t.eq_ignore_ascii_case("h2c"));
                }
                "http2-settings" => settings.push(value),
                "expect" if value.eq_ignore_ascii_case(b"100-continue") => {
                    head.expect_continue = minor >= 1;
                }
                _ => {}
            }
            if !HOP_BY_HOP.contains(&name.as_str()) && name != "host" {
                head.headers
                    .push(Header::new(name, Bytes::copy_from_slice(value)));
            }
        }
        if chunked && length.is_some() {
            // RFC 9112 §6.3: a sign of request smuggling; refuse rather than guess.
            return Err(bad("both Transfer-Encoding and Content-Length"));
        }
        if chunked && minor == 0 {
            return Err(bad("chunked transfer coding in HTTP/1.0"));
        }
        let (authority, path) = split_target(target)?;
        head.path = path;
        head.authority = match (authority, host) {
            (Some(authority), _) => authority,
            (None, Some(host)) => std::str::from_utf8(host)
                .ok()
                .filter(|h| !h.contains([' ', '/', '\t']))
                .ok_or_else(|| bad("invalid Host header"))?
                .to_owned(),
            (None, None) if minor >= 1 => return Err(bad("HTTP/1.1 request without Host")),
            (None, None) => String::new(),
        };
        if upgrade_h2c && connection_upgrade {
            head.h2c_settings = Some(h2c_settings(&settings));
        }
        let framing = if chunked {
            BodyFraming::Chunked
        } else {
            match length {
                Some(0) | None => BodyFraming::None,
                Some(n) => BodyFraming::Length(n),
            }
        };
        head.has_body = framing != BodyFraming::None;
        if !head.has_body {
            head.expect_continue = false;
        }
        Ok((head, framing))
    }
}

/// The SETTINGS payload of an upgrade request's `HTTP2-Settings` values (RFC 7540 §3.2.1):
/// exactly one, base64url (padding optional), decoding to whole 6-byte settings.
fn h2c_settings(values: &[&[u8]]) -> Result<Bytes, &'static str> {
    const BASE64URL: GeneralPurpose = GeneralPurpose::new(
        &alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let [value] = values else {
        return Err(if values.is_empty() {
            "Upgrade: h2c without HTTP2-Settings"
        } else {
            "more than one HTTP2-Settings header"
        });
    };
    let payload = BASE64URL
        .decode(value.trim_ascii())
        .map_err(|_| "HTTP2-Settings is not base64url")?;
    if payload.len() % 6 != 0 {
        return Err("HTTP2-Settings is not a whole number of 6-byte settings");
    }
    Ok(Bytes::from(payload))
}

/// `origin-form` (`/path?q`), `absolute-form` (`http://host/path`), `asterisk-form` (`*`).
fn split_target(target: &str) -> Result<(Option<String>, String), DecodeError> {
    if target.starts_with('/') || target == "*" {
        return Ok((None, target.to_owned()));
    }
    let lower = target.get(..8).map(str::to_ascii_lowercase);
    let rest = match lower.as_deref() {
        Some(p) if p.starts_with("http://") => &target[7..],
        Some("https://") => &target[8..],
        _ => {
            return Err(DecodeError::Malformed(format!(
                "unsupported request target '{}'",
                target.chars().take(64).collect::<String>()
            )));
        }
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) if rest.as_bytes()[at] == b'/' => (&rest[..at], rest[at..].to_owned()),
        Some(at) => (&rest[..at], format!("/{}", &rest[at..])),
        None => (rest, "/".to_owned()),
    };
    if authority.is_empty() {
        return Err(DecodeError::Malformed("absolute URI without host".into()));
    }
    Ok((Some(authority.to_owned()), path))
}

fn parse_length(value: &[u8]) -> Option<u64> {
    let value = std::str::from_utf8(value).ok()?.trim();
    if value.is_empty() || value.len() > 19 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// Comma-separated tokens of a header value, trimmed, empty ones skipped.
pub(crate) fn tokens(value: &[u8]) -> impl Iterator<Item = &str> {
    std::str::from_utf8(value)
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

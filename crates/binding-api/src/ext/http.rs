//! HTTP vocabulary: request and response headers, as HTTP/2 spells them.
//!
//! A request stream begins with [`HttpBeginEx`] holding the pseudo-headers `:method`,
//! `:scheme`, `:authority`, `:path` and the ordinary headers, whatever HTTP version carried it;
//! the response (the reply) begins with `:status` and its headers. Names are lowercase.
//! Values are bytes: HTTP allows obs-text that is not UTF-8. A request's begin also says what
//! the server's guard made of its credentials ([`HttpBeginEx::authorization`]).

use bytes::Bytes;

use crate::ext::ResetEx;
use crate::frame::ReasonKind;
use crate::guard::Authorization;

/// One header field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Lowercase name, pseudo-headers with their leading `:`.
    pub name: String,
    /// Raw value.
    pub value: Bytes,
}

impl Header {
    /// A header from a name and a value.
    pub fn new(name: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// Begin extension of an HTTP request or response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpBeginEx {
    /// Pseudo-headers first, then ordinary headers, in order; names may repeat.
    pub headers: Vec<Header>,
    /// A request's credentials as the server's `options.authorization` guard found them:
    /// [`Authorization::Anonymous`] when it has none (or the server no guard). Unused in a
    /// response.
    pub authorization: Authorization,
}

impl HttpBeginEx {
    /// A request or response with `headers` and no authorization.
    pub fn new(headers: Vec<Header>) -> Self {
        HttpBeginEx {
            headers,
            authorization: Authorization::Anonymous,
        }
    }

    /// A response beginning with `status` and `headers`.
    pub fn response(status: u16, headers: impl IntoIterator<Item = Header>) -> Self {
        let mut all = vec![Header::new(":status", status.to_string())];
        all.extend(headers);
        HttpBeginEx::new(all)
    }

    /// The first value of `name`, if it is UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The first value of `name`, as bytes.
    pub fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| &h.value[..])
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |h| h.name == name)
            .map(|h| &h.value[..])
    }

    /// `:method`.
    pub fn method(&self) -> Option<&str> {
        self.get(":method")
    }

    /// `:path`, with its query string.
    pub fn path(&self) -> Option<&str> {
        self.get(":path")
    }

    /// `:status`, parsed.
    pub fn status(&self) -> Option<u16> {
        self.get(":status").and_then(|s| s.parse().ok())
    }
}

/// End extension of an HTTP request or response: trailers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpEndEx {
    /// Trailer fields.
    pub trailers: Vec<Header>,
}

/// Decodes the `%XX` escapes of a query value (a `+` stays a `+`); `None` when an escape is
/// malformed or the result is not UTF-8.
pub fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The status an HTTP server answers when the application refuses a request before
/// responding: 404 as Zilla, except where the reason says more (400 for an invalid request,
/// 401 and 403 for a guard's refusal, 502 for an unreachable or lost upstream, 503 while
/// shutting down, 504 on a timeout).
pub fn refusal_status(kind: ReasonKind) -> u16 {
    match kind {
        ReasonKind::Invalid => 400,
        ReasonKind::Unauthorized => 401,
        ReasonKind::Forbidden => 403,
        ReasonKind::Unreachable | ReasonKind::ConnectionLost => 502,
        ReasonKind::Shutdown => 503,
        ReasonKind::Timeout => 504,
        _ => 404,
    }
}

/// The `www-authenticate` header of the answer to a request that a guarded route refused:
/// the refusal travels in the reset of the request's stream (`ext`); `None` for any other
/// refusal.
pub fn refusal_challenge(ext: &ResetEx) -> Option<Header> {
    match ext {
        ResetEx::Guard(refusal) => {
            Some(Header::new("www-authenticate", refusal.www_authenticate()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::GuardRefusal;

    #[test]
    fn query_values_are_percent_decoded_strictly() {
        assert_eq!(percent_decode("a%20b+c").as_deref(), Some("a b+c"));
        assert_eq!(percent_decode("%E2%82%AC").as_deref(), Some("\u{20ac}"));
        assert_eq!(percent_decode("%2"), None, "a cut escape");
        assert_eq!(percent_decode("%zz"), None, "not hex");
        assert_eq!(percent_decode("%FF"), None, "not UTF-8");
    }

    #[test]
    fn guard_refusals_are_401_and_403_with_a_challenge() {
        assert_eq!(refusal_status(ReasonKind::Unauthorized), 401);
        assert_eq!(refusal_status(ReasonKind::Forbidden), 403);
        assert_eq!(refusal_status(ReasonKind::NoRoute), 404);
        let refusal = GuardRefusal::Unauthenticated {
            guard: "jwt".into(),
            rejected: None,
        };
        let header = refusal_challenge(&ResetEx::Guard(refusal)).unwrap();
        assert_eq!(header.name, "www-authenticate");
        assert_eq!(&header.value[..], br#"Bearer realm="jwt""#);
        assert_eq!(refusal_challenge(&ResetEx::None), None);
    }
}

//! A JWS in compact serialization (RFC 7515 §7.1): `header.claims.signature`, each segment
//! unpadded base64url, the first two JSON objects.
//!
//! The header and signature are read before the signature is checked; the claims only after
//! ([`CompactJws::claims`]), so unauthenticated bytes meet as little code as possible. Every
//! JSON object is bounded in size (by [`MAX_TOKEN_BYTES`]) and in nesting (by
//! [`MAX_JSON_DEPTH`]) before serde_json sees it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::algorithm::Algorithm;
use crate::error::{Excerpt, GuardError, TokenPart};
use crate::{MAX_JSON_DEPTH, MAX_TOKEN_BYTES};

/// The protected header, as far as the guard reads it.
///
/// Keys embedded in a token (`jwk`, `jku`, `x5u`, `x5c`) are ignored: the guard trusts only
/// its own keys.
#[derive(Debug)]
pub(crate) struct Header {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<String>,
}

/// A token split into its parts, header and signature decoded.
#[derive(Debug)]
pub(crate) struct CompactJws<'t> {
    /// `header.claims` as sent: the bytes the signature covers.
    pub(crate) signing_input: &'t [u8],
    pub(crate) header: Header,
    pub(crate) signature: Vec<u8>,
    claims: &'t str,
}

impl<'t> CompactJws<'t> {
    /// Splits `token` and reads its header and signature.
    pub(crate) fn parse(token: &'t str) -> Result<CompactJws<'t>, GuardError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(GuardError::TooLarge {
                len: token.len(),
                max: MAX_TOKEN_BYTES,
            });
        }
        let mut segments = token.split('.');
        let (Some(header), Some(claims), Some(signature), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            let count = token.split('.').count();
            let hint = if count == 5 {
                " (an encrypted JWE? only signed tokens are accepted)"
            } else {
                ""
            };
            return Err(GuardError::malformed(
                TokenPart::Token,
                format!("{count} dot-separated segments where a JWS has 3{hint}"),
            ));
        };
        let signing_input = &token.as_bytes()[..header.len() + 1 + claims.len()];
        let header = read_header(decode_object(TokenPart::Header, header)?)?;
        let signature = decode_segment(TokenPart::Signature, signature)?;
        Ok(CompactJws {
            signing_input,
            header,
            signature,
            claims,
        })
    }

    /// Decodes the claims; call once the signature is verified.
    pub(crate) fn claims(&self) -> Result<Map<String, Value>, GuardError> {
        decode_object(TokenPart::Claims, self.claims)
    }
}

fn read_header(mut header: Map<String, Value>) -> Result<Header, GuardError> {
    let alg = match header.remove("alg") {
        Some(Value::String(name)) => {
            Algorithm::from_name(&name).ok_or_else(|| GuardError::UnsupportedAlg {
                alg: Excerpt::new(&name),
            })?
        }
        Some(_) => {
            return Err(GuardError::malformed(
                TokenPart::Header,
                "alg is not a string",
            ));
        }
        None => return Err(GuardError::malformed(TokenPart::Header, "no alg")),
    };
    if header.contains_key("crit") {
        return Err(GuardError::UnsupportedHeader { name: "crit" });
    }
    let kid = match header.remove("kid") {
        Some(Value::String(kid)) => Some(kid),
        Some(_) => {
            return Err(GuardError::malformed(
                TokenPart::Header,
                "kid is not a string",
            ));
        }
        None => None,
    };
    Ok(Header { alg, kid })
}

fn decode_segment(part: TokenPart, segment: &str) -> Result<Vec<u8>, GuardError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| GuardError::malformed(part, "not unpadded base64url"))
}

fn decode_object(part: TokenPart, segment: &str) -> Result<Map<String, Value>, GuardError> {
    let json = decode_segment(part, segment)?;
    if !nesting_within(&json, MAX_JSON_DEPTH) {
        return Err(GuardError::malformed(
            part,
            format!("JSON nested deeper than {MAX_JSON_DEPTH} levels"),
        ));
    }
    // serde_json's syntax errors give a position, never the text around it.
    match serde_json::from_slice(&json) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(GuardError::malformed(part, "not a JSON object")),
        Err(err) => Err(GuardError::malformed(part, format!("not JSON: {err}"))),
    }
}

/// Whether objects and arrays in `json` nest at most `max` deep (brackets inside strings do
/// not count). Cheap and stack-free, so deep input is refused before any parser recurses.
fn nesting_within(json: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in json {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                (false, _) => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> String {
        URL_SAFE_NO_PAD.encode(text)
    }

    fn parse_err(token: &str) -> GuardError {
        match CompactJws::parse(token) {
            Err(err) => err,
            Ok(jws) => panic!("parsed: {jws:?}"),
        }
    }

    #[test]
    fn the_signing_input_is_the_first_two_segments_as_sent() {
        let token = format!("{}.{}.{}", b64(r#"{"alg":"ES256"}"#), b64("{}"), b64("sig"));
        let jws = CompactJws::parse(&token).unwrap();
        let second_dot = token.rfind('.').unwrap();
        assert_eq!(jws.signing_input, &token.as_bytes()[..second_dot]);
        assert_eq!(jws.signature, b"sig");
        assert_eq!(jws.header.alg, Algorithm::Es256);
        assert_eq!(jws.header.kid, None);
        assert!(jws.claims().unwrap().is_empty());
    }

    #[test]
    fn segments_other_than_three_are_malformed() {
        let five = parse_err("a.b.c.d.e").to_string();
        assert!(
            five.contains("5 dot-separated segments") && five.contains("JWE"),
            "{five}"
        );
        assert!(matches!(
            parse_err(""),
            GuardError::Malformed {
                part: TokenPart::Token,
                ..
            }
        ));
        assert!(matches!(
            parse_err("a.b"),
            GuardError::Malformed {
                part: TokenPart::Token,
                ..
            }
        ));
    }

    #[test]
    fn header_problems_are_named() {
        let with = |header: &str| format!("{}.{}.", b64(header), b64("{}"));
        assert!(matches!(
            parse_err(&with(r#"{"alg":"none"}"#)),
            GuardError::UnsupportedAlg { alg } if alg.as_str() == "none"
        ));
        assert!(matches!(
            parse_err(&with(r#"{"alg":"ES256","crit":["exp"]}"#)),
            GuardError::UnsupportedHeader { name: "crit" }
        ));
        for header in [
            r#"{"kid":"k"}"#,
            r#"{"alg":7}"#,
            r#"{"alg":"ES256","kid":1}"#,
            "[]",
        ] {
            assert!(
                matches!(
                    parse_err(&with(header)),
                    GuardError::Malformed {
                        part: TokenPart::Header,
                        ..
                    }
                ),
                "{header}"
            );
        }
    }

    #[test]
    fn padded_or_non_url_base64_is_malformed() {
        let header = b64(r#"{"alg":"ES256"}"#);
        let padded = format!("{header}.{}.c2ln", "e30=");
        let claims = CompactJws::parse(&padded).unwrap().claims();
        assert!(matches!(
            claims,
            Err(GuardError::Malformed {
                part: TokenPart::Claims,
                ..
            })
        ));
        let plus = format!("{header}.e30.a+b/");
        assert!(matches!(
            parse_err(&plus),
            GuardError::Malformed {
                part: TokenPart::Signature,
                ..
            }
        ));
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = format!(
            "{}{}",
            "[".repeat(MAX_JSON_DEPTH + 1),
            "]".repeat(MAX_JSON_DEPTH + 1)
        );
        let header = format!(r#"{{"alg":"ES256","x":{deep}}}"#);
        let err = parse_err(&format!("{}.e30.", b64(&header))).to_string();
        assert!(err.contains("nested deeper"), "{err}");
    }

    #[test]
    fn nesting_ignores_brackets_in_strings() {
        assert!(nesting_within(br#"{"a":"[[[[\"[[["}"#, 1));
        assert!(!nesting_within(br#"{"a":[{}]}"#, 2));
        assert!(nesting_within(br#"{"a":[{}]}"#, 3));
        assert!(nesting_within(b"]]]]{", 1));
    }

    #[test]
    fn a_token_over_the_limit_is_too_large() {
        let token = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(
            parse_err(&token),
            GuardError::TooLarge {
                len: MAX_TOKEN_BYTES + 1,
                max: MAX_TOKEN_BYTES
            }
        );
    }
}

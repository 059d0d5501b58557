//! Cross-origin resource sharing: preflights answered by the binding, headers added to
//! actual responses.
//!
//! Rules: with `credentials: true` nothing is ever `*` (the exact origin, methods and
//! headers are echoed, with `Vary: Origin`); `last-event-id` is always an allowed request
//! header (EventSource sends it on reconnect); an origin outside `allow.origins` gets no
//! CORS headers on actual responses and 403 on preflights.

use binding_api::ext::http::Header;

use crate::config::{AccessControl, Policy};
use crate::request::{RequestHead, tokens};

/// What the binding does with a request, CORS-wise.
#[derive(Debug, PartialEq, Eq)]
pub enum Cors {
    /// Not a CORS matter: route it, add nothing.
    None,
    /// An actual cross-origin request: route it, add these headers to its response.
    Actual(Vec<Header>),
    /// A preflight: answer it with this status and headers, do not route it.
    Preflight(u16, Vec<Header>),
}

/// Request headers always allowed in preflights.
const ALWAYS_ALLOWED: &[&str] = &["last-event-id"];

impl AccessControl {
    fn origin_allowed(&self, origin: &str) -> bool {
        self.origins
            .as_ref()
            .is_none_or(|list| list.iter().any(|o| o == "*" || o == origin))
    }

    fn allow_origin(&self, origin: &str, out: &mut Vec<Header>) {
        let any = self
            .origins
            .as_ref()
            .is_none_or(|list| list.iter().any(|o| o == "*"));
        if any && !self.credentials {
            out.push(Header::new("access-control-allow-origin", "*"));
        } else {
            out.push(Header::new(
                "access-control-allow-origin",
                origin.to_owned(),
            ));
            out.push(Header::new("vary", "origin"));
        }
        if self.credentials {
            out.push(Header::new("access-control-allow-credentials", "true"));
        }
    }

    /// Classifies a request.
    pub fn check(&self, head: &RequestHead) -> Cors {
        if self.policy == Policy::SameOrigin {
            return Cors::None;
        }
        let Some(origin) = head.header("origin") else {
            return Cors::None;
        };
        let preflight = head.method == "OPTIONS";
        let requested_method = head.header("access-control-request-method");
        if preflight && let Some(method) = requested_method {
            return self.preflight(origin, method, head);
        }
        if !self.origin_allowed(origin) {
            return Cors::None;
        }
        let mut out = Vec::new();
        self.allow_origin(origin, &mut out);
        Cors::Actual(out)
    }

    fn preflight(&self, origin: &str, method: &str, head: &RequestHead) -> Cors {
        let forbidden = Cors::Preflight(403, Vec::new());
        if !self.origin_allowed(origin) {
            return forbidden;
        }
        let method_ok = self
            .methods
            .as_ref()
            .is_none_or(|list| list.iter().any(|m| m == "*" || m == method));
        if !method_ok {
            return forbidden;
        }
        let requested: Vec<String> = head
            .header("access-control-request-headers")
            .map(|v| tokens(v.as_bytes()).map(str::to_ascii_lowercase).collect())
            .unwrap_or_default();
        let headers_ok = requested.iter().all(|h| {
            ALWAYS_ALLOWED.contains(&h.as_str())
                || self
                    .headers
                    .as_ref()
                    .is_none_or(|list| list.iter().any(|a| a == "*" || a == h))
        });
        if !headers_ok {
            return forbidden;
        }
        let mut out = Vec::new();
        self.allow_origin(origin, &mut out);
        let methods = match &self.methods {
            Some(list) if !list.iter().any(|m| m == "*") => list.join(", "),
            _ if self.credentials => method.to_owned(),
            _ => "*".to_owned(),
        };
        out.push(Header::new("access-control-allow-methods", methods));
        if !requested.is_empty() {
            let headers = match &self.headers {
                Some(list) if !list.iter().any(|h| h == "*") => {
                    let mut all = list.clone();
                    for always in ALWAYS_ALLOWED {
                        if !all.iter().any(|h| h == always) {
                            all.push((*always).to_owned());
                        }
                    }
                    all.join(", ")
                }
                _ => requested.join(", "),
            };
            out.push(Header::new("access-control-allow-headers", headers));
        }
        if let Some(age) = self.max_age {
            out.push(Header::new("access-control-max-age", age.to_string()));
        }
        Cors::Preflight(204, out)
    }

    /// `Access-Control-Expose-Headers` for a response with `headers`.
    pub fn expose(&self, headers: &[Header]) -> Option<Header> {
        let value = match &self.expose {
            Some(list) if !list.is_empty() => list.join(", "),
            Some(_) => return None,
            None if !self.credentials => "*".to_owned(),
            None => {
                let names: Vec<&str> = headers
                    .iter()
                    .map(|h| h.name.as_str())
                    .filter(|n| !n.starts_with(':'))
                    .collect();
                if names.is_empty() {
                    return None;
                }
                names.join(", ")
            }
        };
        Some(Header::new("access-control-expose-headers", value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(method: &str, headers: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            method: method.into(),
            scheme: "http".into(),
            authority: "example.com".into(),
            path: "/events".into(),
            headers: headers
                .iter()
                .map(|(n, v)| Header::new(*n, v.to_string()))
                .collect(),
            h1_minor: Some(1),
            keep_alive: true,
            expect_continue: false,
            h2c_settings: None,
            has_body: false,
        }
    }

    fn get<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|h| h.name == name)
            .and_then(|h| std::str::from_utf8(&h.value).ok())
    }

    fn cross(credentials: bool) -> AccessControl {
        AccessControl {
            policy: Policy::CrossOrigin,
            credentials,
            ..AccessControl::default()
        }
    }

    #[test]
    fn same_origin_adds_nothing() {
        let ac = AccessControl::default();
        assert_eq!(
            ac.check(&head("GET", &[("origin", "https://a.example")])),
            Cors::None
        );
    }

    #[test]
    fn credentials_never_wildcard() {
        let h = head(
            "OPTIONS",
            &[
                ("origin", "https://a.example"),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "last-event-id"),
            ],
        );
        let Cors::Preflight(204, out) = cross(true).check(&h) else {
            panic!("expected a preflight answer");
        };
        assert_eq!(
            get(&out, "access-control-allow-origin"),
            Some("https://a.example")
        );
        assert_eq!(get(&out, "access-control-allow-credentials"), Some("true"));
        assert_eq!(get(&out, "access-control-allow-methods"), Some("GET"));
        assert_eq!(
            get(&out, "access-control-allow-headers"),
            Some("last-event-id")
        );
        assert!(out.iter().all(|h| &h.value[..] != b"*"));
        let Cors::Preflight(204, out) = cross(false).check(&h) else {
            panic!("expected a preflight answer");
        };
        assert_eq!(get(&out, "access-control-allow-origin"), Some("*"));
    }

    #[test]
    fn last_event_id_always_allowed_and_origins_checked() {
        let ac = AccessControl {
            origins: Some(vec!["https://a.example".into()]),
            headers: Some(vec!["x-custom".into()]),
            ..cross(false)
        };
        let pre = |origin: &str, headers: &str| {
            ac.check(&head(
                "OPTIONS",
                &[
                    ("origin", origin),
                    ("access-control-request-method", "GET"),
                    ("access-control-request-headers", headers),
                ],
            ))
        };
        assert!(matches!(
            pre("https://a.example", "last-event-id, x-custom"),
            Cors::Preflight(204, _)
        ));
        assert!(matches!(
            pre("https://a.example", "x-other"),
            Cors::Preflight(403, _)
        ));
        assert!(matches!(
            pre("https://b.example", "x-custom"),
            Cors::Preflight(403, _)
        ));
        assert_eq!(
            ac.check(&head("GET", &[("origin", "https://b.example")])),
            Cors::None
        );
    }
}

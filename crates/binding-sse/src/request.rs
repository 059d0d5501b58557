//! The handshake, with no I/O: from an HTTP request's headers to the SSE subscription it asks
//! for, or the status that refuses it.

use binding_api::ext::http::{self, Header, HttpBeginEx};
use binding_api::ext::sse::{MAX_EVENT_ID, SseBeginEx};
use binding_api::guard::GuardRefusal;

/// The longest last event id accepted, in bytes: [`MAX_EVENT_ID`], which every id an
/// application may send fits (Zilla accepts 254, too few for the ids of wide Kafka topics).
pub const MAX_LAST_EVENT_ID: usize = MAX_EVENT_ID;

/// Why a request is refused, and the response that says so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The status.
    pub status: u16,
    /// For logs.
    pub reason: &'static str,
    /// A `www-authenticate` value, for a guard's refusal.
    pub challenge: Option<String>,
}

impl Rejection {
    /// A refusal with `status` and no challenge.
    pub const fn new(status: u16, reason: &'static str) -> Self {
        Rejection {
            status,
            reason,
            challenge: None,
        }
    }

    /// A guarded route's refusal: 401 (no credentials, or rejected ones) or 403 (a role
    /// missing), with the guard's challenge.
    pub fn guarded(refusal: &GuardRefusal) -> Self {
        let (status, reason) = match refusal {
            GuardRefusal::Unauthenticated { .. } => (401, "no valid credentials for the route"),
            GuardRefusal::Forbidden { .. } => (403, "the credentials lack a role the route needs"),
        };
        Rejection {
            status,
            reason,
            challenge: Some(refusal.www_authenticate()),
        }
    }

    /// Not GET: 405.
    pub const METHOD: Rejection = Rejection::new(405, "only GET opens an event stream");
    /// No route, or the application refused: 404.
    pub const NOT_FOUND: Rejection = Rejection::new(404, "no route for this path");

    /// The response: the status, `content-length: 0`, `allow: GET` for a 405 and
    /// `www-authenticate` for a guard's refusal.
    pub fn response(&self) -> HttpBeginEx {
        let mut headers = Vec::with_capacity(2);
        if self.status == 405 {
            headers.push(Header::new("allow", "GET"));
        }
        if let Some(challenge) = &self.challenge {
            headers.push(Header::new("www-authenticate", challenge.clone()));
        }
        headers.push(Header::new("content-length", "0"));
        HttpBeginEx::response(self.status, headers)
    }
}

/// Reads the subscription from a request: method, path (query string stripped), last event
/// id (the `last-event-id` header, else the `lastEventId` query parameter, URL-decoded) and
/// whether timestamps were asked for. The header may be repeated only with the same value.
pub fn subscription(request: &HttpBeginEx) -> Result<SseBeginEx, Rejection> {
    if request.method() != Some("GET") {
        return Err(Rejection::METHOD);
    }
    let full_path = request.path().unwrap_or("/");
    let (path, query) = match full_path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (full_path, None),
    };
    let mut headers = request.get_all("last-event-id");
    let header = headers.next();
    if let Some(first) = header
        && headers.any(|other| other != first)
    {
        // A field that is not a list (RFC 9110 §5.3): which one the browser meant is unknown.
        return Err(Rejection::new(
            400,
            "last-event-id headers with different values",
        ));
    }
    let last_event_id = match header {
        Some(value) => Some(
            std::str::from_utf8(value)
                .map_err(|_| Rejection::new(400, "the last-event-id header is not UTF-8"))?
                .to_owned(),
        ),
        None => match query.and_then(|q| query_param(q, "lastEventId")) {
            Some(raw) => Some(percent_decode(raw)?),
            None => None,
        },
    };
    if last_event_id
        .as_ref()
        .is_some_and(|id| id.len() > MAX_LAST_EVENT_ID)
    {
        return Err(Rejection::new(400, "the last event id is over 4096 bytes"));
    }
    let timestamp = request
        .get_all("accept")
        .any(|v| v.windows(13).any(|w| w == b"ext=timestamp"));
    Ok(SseBeginEx {
        scheme: request.get(":scheme").unwrap_or("http").to_owned(),
        authority: request.get(":authority").unwrap_or_default().to_owned(),
        path: path.to_owned(),
        query: query.map(str::to_owned),
        last_event_id,
        timestamp,
        authorization: request.authorization.clone(),
    })
}

/// The raw value of the first `name=value` pair of a query string.
fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then_some(value)
    })
}

/// Decodes `%XX` escapes (a `+` stays a `+`); the result must be UTF-8.
fn percent_decode(raw: &str) -> Result<String, Rejection> {
    http::percent_decode(raw).ok_or(Rejection::new(
        400,
        "the lastEventId parameter is badly encoded",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> HttpBeginEx {
        let mut all = vec![
            Header::new(":method", method.to_owned()),
            Header::new(":scheme", "http"),
            Header::new(":authority", "localhost:8080"),
            Header::new(":path", path.to_owned()),
        ];
        all.extend(
            headers
                .iter()
                .map(|(n, v)| Header::new(*n, (*v).to_owned())),
        );
        HttpBeginEx::new(all)
    }

    fn id(path: &str, headers: &[(&str, &str)]) -> Result<Option<String>, u16> {
        subscription(&request("GET", path, headers))
            .map(|s| s.last_event_id)
            .map_err(|r| r.status)
    }

    #[test]
    fn path_and_authority() {
        let sub = subscription(&request("GET", "/events?x=1", &[])).unwrap();
        assert_eq!(sub.path, "/events");
        assert_eq!(sub.authority, "localhost:8080");
        assert_eq!(sub.scheme, "http");
        assert_eq!(sub.last_event_id, None);
        assert!(!sub.timestamp);
    }

    #[test]
    fn only_get() {
        let err = subscription(&request("POST", "/", &[])).unwrap_err();
        assert_eq!(err.status, 405);
        assert_eq!(err.response().get("allow"), Some("GET"));
        assert_eq!(err.response().get("content-length"), Some("0"));
    }

    #[test]
    fn last_event_id_sources() {
        assert_eq!(id("/", &[("last-event-id", "7")]), Ok(Some("7".into())));
        assert_eq!(id("/", &[("last-event-id", "")]), Ok(Some(String::new())));
        assert_eq!(id("/?lastEventId=8", &[]), Ok(Some("8".into())));
        assert_eq!(id("/?a=b&lastEventId=", &[]), Ok(Some(String::new())));
        assert_eq!(id("/?lastEventId=%31%30%30", &[]), Ok(Some("100".into())));
        assert_eq!(id("/?lastEventId=a+b&x", &[]), Ok(Some("a+b".into())));
        assert_eq!(id("/?xlastEventId=1", &[]), Ok(None));
        assert_eq!(
            id("/?lastEventId=8", &[("last-event-id", "9")]),
            Ok(Some("9".into()))
        );
        assert_eq!(id("/?lastEventId=%3", &[]), Err(400));
        assert_eq!(id("/?lastEventId=%zz", &[]), Err(400));
        assert_eq!(id("/?lastEventId=%ff", &[]), Err(400));
    }

    #[test]
    fn repeated_last_event_id_headers_must_agree() {
        let same = [("last-event-id", "AQIAAg=="), ("last-event-id", "AQIAAg==")];
        assert_eq!(id("/", &same), Ok(Some("AQIAAg==".into())));
        let differ = [("last-event-id", "AQIAAg=="), ("last-event-id", "AQIABA==")];
        assert_eq!(id("/", &differ), Err(400));
        assert_eq!(id("/?lastEventId=1", &differ), Err(400));
        let empty_and_not = [("last-event-id", ""), ("last-event-id", "1")];
        assert_eq!(id("/", &empty_and_not), Err(400));
    }

    #[test]
    fn last_event_id_limit() {
        let ok = "a".repeat(4096);
        let over = "a".repeat(4097);
        assert_eq!(id("/", &[("last-event-id", &ok)]), Ok(Some(ok.clone())));
        assert_eq!(id("/", &[("last-event-id", &over)]), Err(400));
        assert_eq!(id(&format!("/?lastEventId={over}"), &[]), Err(400));
        let multibyte = "é".repeat(2049);
        assert_eq!(id("/", &[("last-event-id", &multibyte)]), Err(400));
        let encoded = "%61".repeat(4096);
        assert_eq!(id(&format!("/?lastEventId={encoded}"), &[]), Ok(Some(ok)));
    }

    #[test]
    fn guard_refusals_carry_their_challenge() {
        let missing = GuardRefusal::Unauthenticated {
            guard: "jwt".into(),
            rejected: Some("the token expired"),
        };
        let response = Rejection::guarded(&missing).response();
        assert_eq!(response.status(), Some(401));
        assert_eq!(
            response.get("www-authenticate"),
            Some(
                r#"Bearer realm="jwt", error="invalid_token", error_description="the token expired""#
            )
        );
        assert_eq!(response.get("content-length"), Some("0"));
        let forbidden = GuardRefusal::Forbidden {
            guard: "jwt".into(),
            missing: "stream".into(),
        };
        assert_eq!(
            Rejection::guarded(&forbidden).response().status(),
            Some(403)
        );
        assert_eq!(
            Rejection::NOT_FOUND.response().get("www-authenticate"),
            None
        );
    }

    #[test]
    fn the_authorization_travels_on() {
        let mut req = request("GET", "/", &[]);
        req.authorization = binding_api::guard::Authorization::Rejected {
            guard: "jwt".into(),
            description: "the token expired",
        };
        assert_eq!(subscription(&req).unwrap().authorization, req.authorization);
    }

    #[test]
    fn timestamps_asked_by_accept() {
        let req = request("GET", "/", &[("accept", "text/event-stream;ext=timestamp")]);
        assert!(subscription(&req).unwrap().timestamp);
    }
}

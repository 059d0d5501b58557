//! `options.authorization`: where a request's credentials are found, and the guard that
//! verifies them, once per request.
//!
//! ```yaml
//! authorization:
//!   authn_jwt:                                  # one guard, defined under `guards`
//!     credentials:
//!       headers:
//!         authorization: Bearer {credentials}
//!       query:
//!         access_token: "{credentials}"
//!       cookies:
//!         access_token: "{credentials}"
//! ```
//!
//! The credentials are the first found of: a header whose value matches its pattern (the
//! text around `{credentials}`, compared without regard to ASCII case), a query parameter
//! (percent-decoded), a cookie. The outcome travels in the request's begin extension
//! ([`Authorization`]); the binding refuses nothing itself: guarded routes behind it do.
//!
//! Re-authorization is the one request the binding answers itself: a `POST` with
//! `content-type: application/x-challenge-response` ([`is_challenge_response`]), on any path
//! and any connection, gives the guard fresh credentials ([`Guard::reauthorize`]), which
//! extend the client's live streams; it is answered `204`, or `401` with
//! `WWW-Authenticate` when the credentials are missing or rejected.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use binding_api::ext::http::{Header, percent_decode};
use binding_api::guard::{Authorization, Guard, GuardRefusal};
use serde::Deserialize;
use zilla_config::{ConfigError, Mark, Spanned};

use crate::request::RequestHead;

/// Where the credentials go in a pattern.
const PLACEHOLDER: &str = "{credentials}";

/// The media type of a re-authorization (Zilla's challenge response).
pub const CHALLENGE_RESPONSE: &str = "application/x-challenge-response";

/// Whether the request answers a challenge: `POST` with `content-type:
/// application/x-challenge-response` (parameters and ASCII case aside).
pub fn is_challenge_response(head: &RequestHead) -> bool {
    head.method == "POST"
        && head
            .headers
            .iter()
            .filter(|h| h.name == "content-type")
            .filter_map(|h| std::str::from_utf8(&h.value).ok())
            .any(|value| {
                let media_type = value.split(';').next().unwrap_or_default();
                media_type.trim().eq_ignore_ascii_case(CHALLENGE_RESPONSE)
            })
}

/// A pattern with `{credentials}` in it: the literal text around the credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialPattern {
    prefix: String,
    suffix: String,
}

impl CredentialPattern {
    /// Parses a pattern, which must hold `{credentials}` exactly once.
    pub fn parse(text: &str) -> Result<CredentialPattern, &'static str> {
        let Some((prefix, suffix)) = text.split_once(PLACEHOLDER) else {
            return Err("has no {credentials}");
        };
        if suffix.contains(PLACEHOLDER) {
            return Err("has {credentials} more than once");
        }
        Ok(CredentialPattern {
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
        })
    }

    /// The credentials in `value`, when it matches (literal text compared without regard to
    /// ASCII case) and they are not empty.
    pub fn extract<'v>(&self, value: &'v str) -> Option<&'v str> {
        let starts = value
            .get(..self.prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(&self.prefix));
        let tail_at = value.len().checked_sub(self.suffix.len())?;
        let ends = value
            .get(tail_at..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(&self.suffix));
        if !starts || !ends || tail_at < self.prefix.len() {
            return None;
        }
        value
            .get(self.prefix.len()..tail_at)
            .filter(|found| !found.is_empty())
    }
}

/// Where credentials are looked for, in order: headers, query parameters, cookies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CredentialSources {
    /// Header name (lowercase) → pattern.
    pub headers: Vec<(String, CredentialPattern)>,
    /// Query parameter name → pattern.
    pub query: Vec<(String, CredentialPattern)>,
    /// Cookie name → pattern.
    pub cookies: Vec<(String, CredentialPattern)>,
}

impl CredentialSources {
    /// The request's credentials, from the first source that has them.
    pub fn find<'h>(&self, head: &'h RequestHead) -> Option<Cow<'h, str>> {
        let from_headers = self.headers.iter().find_map(|(name, pattern)| {
            head.headers
                .iter()
                .filter(|h| &h.name == name)
                .filter_map(|h| std::str::from_utf8(&h.value).ok())
                .find_map(|value| pattern.extract(value))
        });
        if let Some(found) = from_headers {
            return Some(Cow::Borrowed(found));
        }
        let query = head.path.split_once('?').map(|(_, query)| query);
        let from_query = self.query.iter().find_map(|(name, pattern)| {
            query_values(query?, name).find_map(|raw| {
                let decoded = percent_decode(raw)?;
                pattern.extract(&decoded).map(str::to_owned)
            })
        });
        if let Some(found) = from_query {
            return Some(Cow::Owned(found));
        }
        self.cookies.iter().find_map(|(name, pattern)| {
            cookie_values(head, name)
                .find_map(|value| pattern.extract(value))
                .map(Cow::Borrowed)
        })
    }
}

/// An http server's `options.authorization`: its guard and where credentials are.
#[derive(Clone, Debug)]
pub struct Authorizer {
    guard: Arc<dyn Guard>,
    sources: CredentialSources,
}

impl PartialEq for Authorizer {
    fn eq(&self, other: &Authorizer) -> bool {
        self.guard.name() == other.guard.name() && self.sources == other.sources
    }
}

impl Authorizer {
    /// Credentials found by `sources`, verified by `guard`.
    pub fn new(guard: Arc<dyn Guard>, sources: CredentialSources) -> Authorizer {
        Authorizer { guard, sources }
    }

    /// What the request's credentials come to at `now`: none found, verified once by the
    /// guard, or rejected (logged for the operator, never with the credentials).
    pub fn authorize(&self, head: &RequestHead, now: SystemTime) -> Authorization {
        let Some(credentials) = self.sources.find(head) else {
            return Authorization::Anonymous;
        };
        match self.guard.verify(&credentials, now) {
            Ok(session) => Authorization::Verified(Arc::new(session)),
            Err(denied) => {
                tracing::debug!(guard = self.guard.name(), %denied, "credentials rejected");
                Authorization::Rejected {
                    guard: self.guard.name().into(),
                    description: denied.description,
                }
            }
        }
    }

    /// Answers a challenge response ([`is_challenge_response`]) at `now`: the request's fresh
    /// credentials re-authorize the client's live streams with the guard (`204`); missing or
    /// rejected ones get `401` with the guard's `WWW-Authenticate` challenge.
    pub fn reauthorize(&self, head: &RequestHead, now: SystemTime) -> (u16, Vec<Header>) {
        let guard = self.guard.name();
        let path = self.loggable(&head.path);
        let refusal = match self.sources.find(head) {
            None => GuardRefusal::Unauthenticated {
                guard: guard.to_owned(),
                rejected: None,
            },
            Some(credentials) => match self.guard.reauthorize(&credentials, now) {
                Ok(renewed) => {
                    tracing::debug!(guard, %path, renewed, "re-authorized");
                    return (204, Vec::new());
                }
                Err(denied) => {
                    tracing::debug!(guard, %path, %denied, "re-authorization rejected");
                    GuardRefusal::Unauthenticated {
                        guard: guard.to_owned(),
                        rejected: Some(denied.description),
                    }
                }
            },
        };
        let challenge = Header::new("www-authenticate", refusal.www_authenticate());
        (401, vec![challenge])
    }

    /// `path` as logs may show it: the values of query parameters that carry credentials
    /// replaced.
    pub fn loggable<'a>(&'a self, path: &'a str) -> LoggablePath<'a> {
        LoggablePath {
            path,
            hidden: &self.sources.query,
        }
    }
}

/// A request path whose credential-carrying query values are hidden when displayed.
pub struct LoggablePath<'a> {
    path: &'a str,
    hidden: &'a [(String, CredentialPattern)],
}

impl fmt::Display for LoggablePath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some((path, query)) = self.path.split_once('?') else {
            return f.write_str(self.path);
        };
        write!(f, "{path}?")?;
        for (index, pair) in query.split('&').enumerate() {
            if index > 0 {
                f.write_str("&")?;
            }
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            if self.hidden.iter().any(|(hidden, _)| hidden == name) {
                write!(f, "{name}=(hidden)")?;
            } else {
                f.write_str(pair)?;
            }
        }
        Ok(())
    }
}

/// Finds the guard a name written at a mark names (`BindingConfig::guard`).
pub(crate) type GuardLookup<'a> = &'a dyn Fn(&str, Mark) -> Result<Arc<dyn Guard>, ConfigError>;

/// `options.authorization` as written: guard name → how its credentials are found.
pub(crate) type RawAuthorization = Spanned<BTreeMap<Spanned<String>, RawGuardCredentials>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGuardCredentials {
    credentials: RawSources,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSources {
    headers: Option<BTreeMap<String, Spanned<String>>>,
    query: Option<BTreeMap<String, Spanned<String>>>,
    cookies: Option<BTreeMap<String, Spanned<String>>>,
}

/// Checks `options.authorization` and finds its guard with `guard`.
pub(crate) fn parse(
    raw: RawAuthorization,
    guard: GuardLookup<'_>,
) -> Result<Option<Authorizer>, ConfigError> {
    let mark = raw.mark;
    let mut entries = raw.value.into_iter();
    let Some((name, credentials)) = entries.next() else {
        return Ok(None);
    };
    if entries.next().is_some() {
        return Err(
            ConfigError::custom_at(mark, "options.authorization takes one guard")
                .with_help("keep the guard whose credentials requests carry"),
        );
    }
    let guard = guard(&name.value, name.mark)?;
    let RawSources {
        headers,
        query,
        cookies,
    } = credentials.credentials;
    let patterns = |map: Option<BTreeMap<String, Spanned<String>>>, lowercase: bool| {
        map.into_iter()
            .flatten()
            .map(|(key, value)| {
                let pattern = CredentialPattern::parse(&value.value).map_err(|why| {
                    ConfigError::custom_at(
                        value.mark,
                        format!("credentials pattern {:?} {why}", value.value),
                    )
                    .with_help("write where the token is, e.g. 'Bearer {credentials}'")
                })?;
                let key = if lowercase {
                    key.to_ascii_lowercase()
                } else {
                    key
                };
                Ok((key, pattern))
            })
            .collect::<Result<Vec<_>, ConfigError>>()
    };
    let sources = CredentialSources {
        headers: patterns(headers, true)?,
        query: patterns(query, false)?,
        cookies: patterns(cookies, false)?,
    };
    if sources.headers.is_empty() && sources.query.is_empty() && sources.cookies.is_empty() {
        return Err(ConfigError::custom_at(
            name.mark,
            format!("authorization '{}' names no credentials", name.value),
        )
        .with_help("add credentials: {headers: {authorization: 'Bearer {credentials}'}}"));
    }
    Ok(Some(Authorizer::new(guard, sources)))
}

/// The raw values of the parameter `name` in a query string.
fn query_values<'q>(query: &'q str, name: &'q str) -> impl Iterator<Item = &'q str> + 'q {
    query.split('&').filter_map(move |pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then_some(value)
    })
}

/// The values of the cookie `name` in every `cookie` header (RFC 6265 §5.4: `; `-separated
/// pairs), a quoted value unquoted.
fn cookie_values<'h, 'n>(
    head: &'h RequestHead,
    name: &'n str,
) -> impl Iterator<Item = &'h str> + use<'h, 'n> {
    head.headers
        .iter()
        .filter(|h| h.name == "cookie")
        .filter_map(|h| std::str::from_utf8(&h.value).ok())
        .flat_map(|cookies| cookies.split(';'))
        .filter_map(move |pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then(|| {
                value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value)
            })
        })
}

#[cfg(test)]
mod tests {
    use binding_api::ext::http::Header;
    use binding_api::guard::{Denied, Session};

    use super::*;

    #[derive(Debug)]
    struct Fixed;

    impl Guard for Fixed {
        fn name(&self) -> &str {
            "jwt"
        }

        fn verify(&self, credentials: &str, now: SystemTime) -> Result<Session, Denied> {
            if credentials != "good" {
                return Err(Denied {
                    description: "the token is malformed",
                    detail: "malformed".into(),
                });
            }
            Ok(Session {
                guard: "jwt".into(),
                identity: Some(credentials.to_owned()),
                roles: Vec::new(),
                attributes: BTreeMap::new(),
                expires_at: now,
                challenge_at: None,
                live: None,
            })
        }
    }

    fn pattern(text: &str) -> CredentialPattern {
        CredentialPattern::parse(text).unwrap()
    }

    fn head(path: &str, headers: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            method: "GET".into(),
            scheme: "http".into(),
            authority: "localhost".into(),
            path: path.into(),
            headers: headers
                .iter()
                .map(|(n, v)| Header::new(*n, (*v).to_owned()))
                .collect(),
            h1_minor: Some(1),
            keep_alive: true,
            expect_continue: false,
            h2c_settings: None,
            has_body: false,
        }
    }

    fn sources() -> CredentialSources {
        CredentialSources {
            headers: vec![("authorization".into(), pattern("Bearer {credentials}"))],
            query: vec![("access_token".into(), pattern("{credentials}"))],
            cookies: vec![("token".into(), pattern("{credentials}"))],
        }
    }

    #[test]
    fn patterns_take_what_is_between_their_literals() {
        let bearer = pattern("Bearer {credentials}");
        assert_eq!(bearer.extract("Bearer abc.def"), Some("abc.def"));
        assert_eq!(bearer.extract("bearer abc"), Some("abc"), "scheme case");
        assert_eq!(bearer.extract("Basic abc"), None);
        assert_eq!(bearer.extract("Bearer "), None, "empty credentials");
        assert_eq!(bearer.extract("Bear"), None);
        let around = pattern("<{credentials}>");
        assert_eq!(around.extract("<x>"), Some("x"));
        assert_eq!(around.extract("<>"), None);
        assert_eq!(
            around.extract(">"),
            None,
            "prefix and suffix may not overlap"
        );
        assert_eq!(pattern("{credentials}").extract("é"), Some("é"));
        assert_eq!(pattern("é{credentials}").extract("éx"), Some("x"));
        assert_eq!(pattern("ab{credentials}").extract("éx"), None);
        assert_eq!(
            CredentialPattern::parse("Bearer"),
            Err("has no {credentials}")
        );
        assert!(CredentialPattern::parse("{credentials}{credentials}").is_err());
    }

    #[test]
    fn credentials_come_from_a_header_else_the_query_else_a_cookie() {
        let sources = sources();
        let found = |path, headers| sources.find(&head(path, headers)).map(Cow::into_owned);
        let all = [("authorization", "Bearer h"), ("cookie", "a=b; token=c")];
        assert_eq!(found("/e?access_token=q", &all).as_deref(), Some("h"));
        let not_bearer = [("authorization", "Basic xyz"), ("cookie", "token=c")];
        assert_eq!(
            found("/e?a=1&access_token=q%2Ez", &not_bearer).as_deref(),
            Some("q.z")
        );
        assert_eq!(found("/e?access_token=", &not_bearer).as_deref(), Some("c"));
        assert_eq!(
            found("/e", &[("cookie", "token=\"quoted\"")]).as_deref(),
            Some("quoted")
        );
        assert_eq!(
            found("/e?access_token=%zz", &[]),
            None,
            "a malformed escape"
        );
        assert_eq!(found("/e?xaccess_token=q", &[]), None);
        assert_eq!(found("/e", &[]), None);
        let second = [("authorization", "Basic x"), ("authorization", "Bearer y")];
        assert_eq!(found("/e", &second).as_deref(), Some("y"));
    }

    #[test]
    fn the_guard_verifies_what_is_found() {
        let authorizer = Authorizer::new(Arc::new(Fixed), sources());
        let now = SystemTime::UNIX_EPOCH;
        let verified = authorizer.authorize(&head("/?access_token=good", &[]), now);
        assert_eq!(
            verified.session("jwt").and_then(|s| s.identity.as_deref()),
            Some("good")
        );
        assert_eq!(
            authorizer.authorize(&head("/", &[("authorization", "Bearer bad")]), now),
            Authorization::Rejected {
                guard: "jwt".into(),
                description: "the token is malformed"
            }
        );
        assert_eq!(
            authorizer.authorize(&head("/", &[]), now),
            Authorization::Anonymous
        );
    }

    #[test]
    fn logs_never_show_query_credentials() {
        let authorizer = Authorizer::new(Arc::new(Fixed), sources());
        let shown = |path| authorizer.loggable(path).to_string();
        assert_eq!(shown("/events"), "/events");
        assert_eq!(
            shown("/events?a=1&access_token=secret&access_token&b"),
            "/events?a=1&access_token=(hidden)&access_token=(hidden)&b"
        );
    }
}

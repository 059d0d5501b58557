//! The http binding's configuration: `options` (versions, access control, limits,
//! overrides, authorization), route conditions and route `with`.

use std::time::Duration;

use binding_api::route::Pattern;
use serde::Deserialize;
use zilla_config::{ConfigError, ConfigErrorKind, Node, Spanned, from_node_at};

use crate::authorization::{self, Authorizer, GuardLookup, RawAuthorization};
use crate::h1::decode::HeadLimits;
use crate::overrides::{Overrides, RawOverrides};

/// An HTTP version the server speaks.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.1 (and 1.0).
    #[serde(rename = "http/1.1")]
    Http11,
    /// HTTP/2: prior-knowledge h2c, `Upgrade: h2c`, and ALPN `h2` behind TLS.
    #[serde(rename = "h2")]
    H2,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawOptions {
    versions: Option<Vec<Version>>,
    access_control: Option<RawAccessControl>,
    limits: Option<RawLimits>,
    overrides: Option<RawOverrides>,
    authorization: Option<RawAuthorization>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawAccessControl {
    policy: Option<Policy>,
    allow: Option<RawAllow>,
    max_age: Option<u32>,
    expose: Option<RawExpose>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllow {
    origins: Option<Vec<String>>,
    methods: Option<Vec<String>>,
    headers: Option<Vec<String>>,
    credentials: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpose {
    headers: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawLimits {
    max_request_line_size: Option<Spanned<u32>>,
    max_header_list_size: Option<Spanned<u32>>,
    max_headers: Option<Spanned<u32>>,
    request_header_timeout: Option<Spanned<f64>>,
    max_pipelined_requests: Option<Spanned<u32>>,
    concurrent_streams: Option<u32>,
    max_frame_size: Option<Spanned<u32>>,
    initial_window_size: Option<Spanned<u32>>,
    max_pending_accept_reset_streams: Option<u32>,
    max_local_error_reset_streams: Option<u32>,
}

/// `access-control.policy`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// No CORS headers; preflights are routed like any request.
    #[default]
    SameOrigin,
    /// CORS as `allow`, `max-age` and `expose` say; preflights answered by the binding.
    CrossOrigin,
}

/// `access-control`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessControl {
    /// The policy.
    pub policy: Policy,
    /// Allowed origins (`None`: any).
    pub origins: Option<Vec<String>>,
    /// Allowed methods (`None`: any).
    pub methods: Option<Vec<String>>,
    /// Allowed request headers, lowercase (`None`: any).
    pub headers: Option<Vec<String>>,
    /// Whether credentials are allowed.
    pub credentials: bool,
    /// `max-age` of preflight results, seconds.
    pub max_age: Option<u32>,
    /// Response headers exposed to scripts (`None`: every header of the response).
    pub expose: Option<Vec<String>>,
}

/// Limits, under `options.limits`. Zilla sets these as engine properties; the names follow
/// Zilla's property names where one exists (`zilla.binding.http.max.header.list.size` →
/// `max-header-list-size`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// HTTP/1.1 request line and header block limits.
    pub head: HeadLimits,
    /// A request head must be complete within this time of the connection starting to wait
    /// for it (on open, and after the previous response).
    pub request_header_timeout: Duration,
    /// Requests read ahead of their response on one HTTP/1.1 connection; past it the
    /// connection is not read.
    pub max_pipelined_requests: usize,
    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`.
    pub concurrent_streams: u32,
    /// HTTP/2 `SETTINGS_MAX_FRAME_SIZE`.
    pub max_frame_size: u32,
    /// HTTP/2 initial stream window (bytes a client may send on a stream unread).
    pub initial_window_size: u32,
    /// Streams reset by the client before they were accepted, allowed at once (CVE-2023-44487).
    pub max_pending_accept_reset_streams: usize,
    /// Streams this server may reset for protocol errors before it sends GOAWAY.
    pub max_local_error_reset_streams: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            head: HeadLimits::default(),
            request_header_timeout: Duration::from_secs(10),
            max_pipelined_requests: 16,
            concurrent_streams: 100,
            max_frame_size: 16_384,
            initial_window_size: 65_535,
            max_pending_accept_reset_streams: 20,
            max_local_error_reset_streams: 1024,
        }
    }
}

/// The parsed `options`.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpOptions {
    /// `versions`, default both.
    pub versions: Vec<Version>,
    /// `access-control`.
    pub access_control: AccessControl,
    /// `limits`.
    pub limits: Limits,
    /// `overrides`: request headers set on every request stream towards an exit.
    pub overrides: Overrides,
    /// `authorization`: the guard that verifies each request's credentials, if any.
    pub authorization: Option<Authorizer>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            versions: vec![Version::Http11, Version::H2],
            access_control: AccessControl::default(),
            limits: Limits::default(),
            overrides: Overrides::default(),
            authorization: None,
        }
    }
}

impl HttpOptions {
    /// Whether `version` is enabled.
    pub fn speaks(&self, version: Version) -> bool {
        self.versions.contains(&version)
    }
}

fn range<T: Copy + PartialOrd + std::fmt::Display>(
    value: &Spanned<T>,
    min: T,
    max: T,
    what: &str,
) -> Result<T, ConfigError> {
    if value.value < min || value.value > max {
        return Err(value.error(ConfigErrorKind::InvalidValue {
            found: value.value.to_string(),
            expected: format!("{what} from {min} to {max}"),
        }));
    }
    Ok(value.value)
}

/// Parses `options`; `guard` finds the guard `authorization` names, written at a mark.
pub(crate) fn parse_options(
    node: Option<&Node>,
    guard: GuardLookup<'_>,
) -> Result<HttpOptions, ConfigError> {
    let Some(node) = node else {
        return Ok(HttpOptions::default());
    };
    let raw: RawOptions = from_node_at(node, "options")?;
    let mut options = HttpOptions::default();
    if let Some(versions) = raw.versions {
        options.versions = checked_versions(versions, node)?;
    }
    if let Some(ac) = raw.access_control {
        let allow = ac.allow.unwrap_or_default();
        options.access_control = AccessControl {
            policy: ac.policy.unwrap_or_default(),
            origins: allow.origins,
            methods: allow
                .methods
                .map(|m| m.into_iter().map(|m| m.to_ascii_uppercase()).collect()),
            headers: allow
                .headers
                .map(|h| h.into_iter().map(|h| h.to_ascii_lowercase()).collect()),
            credentials: allow.credentials.unwrap_or(false),
            max_age: ac.max_age,
            expose: ac.expose.and_then(|e| e.headers),
        };
    }
    if let Some(l) = raw.limits {
        let d = &mut options.limits;
        let size = |v: &Option<Spanned<u32>>, min, max, default: usize, what| match v {
            Some(v) => range(v, min, max, what).map(|n| n as usize),
            None => Ok(default),
        };
        d.head.max_request_line = size(
            &l.max_request_line_size,
            64,
            1 << 20,
            d.head.max_request_line,
            "bytes",
        )?;
        d.head.max_header_list = size(
            &l.max_header_list_size,
            256,
            1 << 20,
            d.head.max_header_list,
            "bytes",
        )?;
        d.head.max_headers = size(&l.max_headers, 1, 1000, d.head.max_headers, "fields")?;
        d.max_pipelined_requests = size(
            &l.max_pipelined_requests,
            1,
            1024,
            d.max_pipelined_requests,
            "requests",
        )?;
        if let Some(t) = &l.request_header_timeout {
            d.request_header_timeout = Duration::from_secs_f64(range(t, 0.001, 3600.0, "seconds")?);
        }
        if let Some(v) = l.concurrent_streams {
            d.concurrent_streams = v;
        }
        if let Some(v) = &l.max_frame_size {
            d.max_frame_size = range(v, 16_384, 16_777_215, "bytes")?;
        }
        if let Some(v) = &l.initial_window_size {
            d.initial_window_size = range(v, 1, 2_147_483_647, "bytes")?;
        }
        if let Some(v) = l.max_pending_accept_reset_streams {
            d.max_pending_accept_reset_streams = v as usize;
        }
        if let Some(v) = l.max_local_error_reset_streams {
            d.max_local_error_reset_streams = v as usize;
        }
    }
    if let Some(raw) = raw.overrides {
        options.overrides = Overrides::parse(raw, "options.overrides", &[])?;
    }
    if let Some(raw) = raw.authorization {
        options.authorization = authorization::parse(raw, guard)?;
    }
    Ok(options)
}

/// One entry of a route's `when`: header name → pattern, all must match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    /// `(lowercase name, pattern)`, pseudo-headers with their `:`.
    pub headers: Vec<(String, Pattern)>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    headers: Option<std::collections::BTreeMap<Spanned<String>, Spanned<String>>>,
}

impl Condition {
    /// The `{name}`s its `:path` pattern captures.
    fn path_params(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(name, _)| name == ":path")
            .flat_map(|(_, pattern)| pattern.capture_names())
            .collect()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWith {
    headers: Option<RawWithHeaders>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWithHeaders {
    overrides: Option<RawOverrides>,
}

/// A route's `with`: `headers.overrides`, whose values may use `${params.NAME}` for a
/// `{NAME}` the `:path` of every one of the route's conditions `when` captures.
pub(crate) fn parse_with(node: &Node, when: &[Condition]) -> Result<Overrides, ConfigError> {
    let raw: RawWith = from_node_at(node, "routes.with")?;
    let Some(raw) = raw.headers.and_then(|h| h.overrides) else {
        return Ok(Overrides::default());
    };
    let mut params: Vec<&str> = when.first().map(Condition::path_params).unwrap_or_default();
    for condition in when.iter().skip(1) {
        let theirs = condition.path_params();
        params.retain(|p| theirs.contains(p));
    }
    Overrides::parse(raw, "with.headers.overrides", &params)
}

pub(crate) fn parse_condition(node: &Node) -> Result<Condition, ConfigError> {
    let raw: RawCondition = from_node_at(node, "routes.when")?;
    let mut headers = Vec::new();
    for (name, pattern) in raw.headers.unwrap_or_default() {
        let lower = name.value.to_ascii_lowercase();
        if lower.starts_with(':')
            && ![":method", ":scheme", ":authority", ":path"].contains(&lower.as_str())
        {
            return Err(name.error(ConfigErrorKind::Custom(format!(
                "unknown pseudo-header '{}' (allowed: :method, :scheme, :authority, :path)",
                name.value
            ))));
        }
        let parsed = Pattern::new(&pattern.value)
            .map_err(|e| pattern.error(ConfigErrorKind::Custom(e.to_string())))?;
        headers.push((lower, parsed));
    }
    Ok(Condition { headers })
}

/// `options.versions` as written, refused when empty (`node` is the options).
pub(crate) fn checked_versions(
    versions: Vec<Version>,
    node: &Node,
) -> Result<Vec<Version>, ConfigError> {
    if versions.is_empty() {
        return Err(ConfigError::at(
            node.mark,
            ConfigErrorKind::Custom("options.versions is empty".into()),
        )
        .with_help("list http/1.1, h2 or both, or remove versions for both"));
    }
    Ok(versions)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use binding_api::guard::Guard;
    use zilla_config::{Mark, parse};

    use super::*;

    #[derive(Debug)]
    struct NoGuard(String);

    impl Guard for NoGuard {
        fn name(&self) -> &str {
            &self.0
        }

        fn verify(
            &self,
            _credentials: &str,
            _now: std::time::SystemTime,
        ) -> Result<binding_api::guard::Session, binding_api::guard::Denied> {
            Err(binding_api::guard::Denied {
                description: "no",
                detail: "no".into(),
            })
        }
    }

    /// Only `authn_jwt` is a guard.
    fn guard(name: &str, mark: Mark) -> Result<Arc<dyn Guard>, ConfigError> {
        if name == "authn_jwt" {
            Ok(Arc::new(NoGuard(name.to_owned())))
        } else {
            Err(ConfigError::custom_at(mark, format!("no guard {name}")))
        }
    }

    fn options(yaml: &str) -> Result<HttpOptions, ConfigError> {
        let node = parse(yaml).unwrap();
        parse_options(Some(&node), &guard)
    }

    #[test]
    fn defaults_and_overrides() {
        let o = options("versions: [h2]\nlimits:\n  max-header-list-size: 1024\n  request-header-timeout: 2.5\n  concurrent-streams: 8\n").unwrap();
        assert_eq!(o.versions, vec![Version::H2]);
        assert_eq!(o.limits.head.max_header_list, 1024);
        assert_eq!(o.limits.request_header_timeout, Duration::from_millis(2500));
        assert_eq!(o.limits.concurrent_streams, 8);
        assert_eq!(o.limits.max_pipelined_requests, 16);
        assert_eq!(parse_options(None, &guard).unwrap(), HttpOptions::default());
    }

    #[test]
    fn unknown_and_out_of_range_options_are_errors() {
        let err = options("version: [h2]\n").unwrap_err().to_string();
        assert!(err.contains("version"), "{err}");
        let err = options("versions: [http/2]\n").unwrap_err().to_string();
        assert!(err.contains("http/2"), "{err}");
        let err = options("limits:\n  max-frame-size: 10\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("16384"), "{err}");
        let err = options("access-control:\n  policy: open\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("open"), "{err}");
        assert!(options("versions: []\n").is_err());
    }

    #[test]
    fn access_control_is_normalised() {
        let o = options("access-control:\n  policy: cross-origin\n  allow:\n    methods: [get]\n    headers: [X-Custom]\n    credentials: true\n").unwrap();
        let ac = o.access_control;
        assert_eq!(ac.policy, Policy::CrossOrigin);
        assert_eq!(ac.methods, Some(vec!["GET".to_owned()]));
        assert_eq!(ac.headers, Some(vec!["x-custom".to_owned()]));
        assert!(ac.credentials);
    }

    #[test]
    fn conditions_check_pseudo_headers_and_patterns() {
        let node = parse("headers:\n  :path: /events/{topic}\n  Accept: text/*\n").unwrap();
        let c = parse_condition(&node).unwrap();
        assert_eq!(c.headers.len(), 2);
        assert!(c.headers.iter().any(|(n, _)| n == "accept"));
        let bad = parse("headers:\n  :status: \"200\"\n").unwrap();
        assert!(parse_condition(&bad).is_err());
        let bad = parse("headers:\n  :path: /{oops\n").unwrap();
        assert!(parse_condition(&bad).is_err());
    }

    #[test]
    fn options_overrides_are_literal_request_headers() {
        let o = options("overrides:\n  X-Custom: value\n  :authority: example.com:443\n").unwrap();
        assert!(!o.overrides.is_empty() && !o.overrides.uses_params());
        let err = options("overrides:\n  x-id: \"${params.id}\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("2:9: '${params.id}' in options.overrides names no parameter"),
            "{err}"
        );
        let err = options("overrides:\n  te: trailers\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("2:3: 'te' is connection-specific"), "{err}");
    }

    #[test]
    fn authorization_names_one_guard_and_where_its_credentials_are() {
        let o = options(
            "authorization:\n  authn_jwt:\n    credentials:\n      headers:\n        \
             Authorization: Bearer {credentials}\n      query:\n        access_token: \
             \"{credentials}\"\n",
        )
        .unwrap();
        assert!(o.authorization.is_some());
        assert_eq!(options("authorization: {}\n").unwrap().authorization, None);
        let err = |yaml: &str| options(yaml).unwrap_err().to_string();
        let two = err(
            "authorization:\n  authn_jwt: {credentials: {query: {t: '{credentials}'}}}\n  other: {credentials: {}}\n",
        );
        assert!(
            two.starts_with("2:3: options.authorization takes one guard"),
            "{two}"
        );
        let unknown =
            err("authorization:\n  other: {credentials: {query: {t: '{credentials}'}}}\n");
        assert!(unknown.starts_with("2:3: no guard other"), "{unknown}");
        let no_placeholder =
            err("authorization:\n  authn_jwt: {credentials: {headers: {authorization: Bearer}}}\n");
        assert!(
            no_placeholder.starts_with("2:54: credentials pattern \"Bearer\" has no {credentials}"),
            "{no_placeholder}"
        );
        let typo =
            err("authorization:\n  authn_jwt: {credentials: {header: {a: '{credentials}'}}}\n");
        assert!(typo.contains("unknown key 'header'"), "{typo}");
        let typo = err("authorization:\n  authn_jwt: {credential: {}}\n");
        assert!(typo.contains("unknown key 'credential'"), "{typo}");
        let empty = err("authorization:\n  authn_jwt: {credentials: {}}\n");
        assert!(
            empty.contains("authorization 'authn_jwt' names no credentials"),
            "{empty}"
        );
    }

    fn with(when: &[&str], yaml: &str) -> Result<Overrides, String> {
        let when: Vec<Condition> = when
            .iter()
            .map(|c| parse_condition(&parse(c).unwrap()).unwrap())
            .collect();
        parse_with(&parse(yaml).unwrap(), &when).map_err(|e| e.to_string())
    }

    #[test]
    fn route_with_takes_header_overrides_and_path_params() {
        let when = [
            "headers:\n  :path: /v1/{id}\n",
            "headers:\n  :path: /v2/{id}/{more}\n",
        ];
        let o = with(
            &when,
            "headers:\n  overrides:\n    :path: /api/${params.id}\n",
        )
        .unwrap();
        assert!(o.uses_params());
        assert!(with(&[], "headers: {}\n").unwrap().is_empty());
        // {more} is not captured by every condition.
        let err = with(&when, "headers:\n  overrides:\n    x: \"${params.more}\"\n").unwrap_err();
        assert!(err.contains("or use one of: id"), "{err}");
        let err = with(&[], "headers:\n  overrides:\n    x: \"${params.id}\"\n").unwrap_err();
        assert!(
            err.contains("names no parameter of the route's :path"),
            "{err}"
        );
        let err = with(&[], "path: /x\n").unwrap_err();
        assert!(
            err.contains("unknown key 'path' (allowed: headers)"),
            "{err}"
        );
        let err = with(&[], "headers:\n  add: {x: y}\n").unwrap_err();
        assert!(
            err.contains("unknown key 'add' (allowed: overrides)"),
            "{err}"
        );
    }
}

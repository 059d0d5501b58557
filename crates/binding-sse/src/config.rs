//! The sse binding's configuration: `options` and `routes[].when`.

use std::time::Duration;

use binding_api::route::Pattern;
use serde::Deserialize;
use zilla_config::{ConfigError, Node, Spanned, from_node_at};

/// `options` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawOptions {
    retry: Option<u32>,
    heartbeat: Option<u64>,
    initial_comment: Option<bool>,
    buffer: Option<Spanned<u32>>,
    stall_timeout: Option<Spanned<u64>>,
    requests: Option<Node>,
}

/// One entry of `routes[].when`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    path: Spanned<String>,
}

/// The smallest `buffer`: room for one event head and a line break.
pub const MIN_BUFFER: u32 = 1024;

/// The parsed options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseOptions {
    /// `retry` (ms): sent as `retry:` when the stream starts. Default 2000, as Zilla's.
    pub retry: u32,
    /// `heartbeat` (ms): an empty comment after this long without a write; `0` turns it off.
    /// Default 15 000.
    pub heartbeat: Option<Duration>,
    /// `initial-comment`: an empty comment right after `retry:`. Default false.
    pub initial_comment: bool,
    /// `buffer` (bytes): what may wait to be written per stream (the credit granted to the
    /// application). Default 65 536.
    pub buffer: u32,
    /// `stall-timeout` (ms): how long bytes may wait for a client that makes no room before
    /// the response is ended. Default 30 000.
    pub stall_timeout: Duration,
}

impl Default for SseOptions {
    fn default() -> Self {
        SseOptions {
            retry: 2000,
            heartbeat: Some(Duration::from_secs(15)),
            initial_comment: false,
            buffer: 64 * 1024,
            stall_timeout: Duration::from_secs(30),
        }
    }
}

/// Parses `options`.
pub fn parse_options(node: Option<&Node>) -> Result<SseOptions, ConfigError> {
    let Some(node) = node else {
        return Ok(SseOptions::default());
    };
    let raw: RawOptions = from_node_at(node, "options")?;
    if let Some(requests) = &raw.requests {
        return Err(ConfigError::custom_at(
            requests.mark,
            "sse options.requests (event validation with models) is not supported yet",
        )
        .with_help("remove 'requests'; events are passed on as the application sends them"));
    }
    let defaults = SseOptions::default();
    let buffer = match raw.buffer {
        Some(buffer) if buffer.value < MIN_BUFFER => {
            return Err(ConfigError::custom_at(
                buffer.mark,
                format!("sse options.buffer must be at least {MIN_BUFFER} bytes"),
            ));
        }
        Some(buffer) => buffer.value,
        None => defaults.buffer,
    };
    let stall_timeout = match raw.stall_timeout {
        Some(stall) if stall.value == 0 => {
            return Err(ConfigError::custom_at(
                stall.mark,
                "sse options.stall-timeout must be at least 1 ms",
            ));
        }
        Some(stall) => Duration::from_millis(stall.value),
        None => defaults.stall_timeout,
    };
    Ok(SseOptions {
        retry: raw.retry.unwrap_or(defaults.retry),
        heartbeat: match raw.heartbeat {
            Some(0) => None,
            Some(ms) => Some(Duration::from_millis(ms)),
            None => defaults.heartbeat,
        },
        initial_comment: raw.initial_comment.unwrap_or(defaults.initial_comment),
        buffer,
        stall_timeout,
    })
}

/// Parses one `when` entry: its `path` pattern (`*` any text, everything else literal).
pub fn parse_condition(node: &Node) -> Result<Pattern, ConfigError> {
    let raw: RawCondition = from_node_at(node, "routes.when")?;
    let pattern = Pattern::new(&raw.path.value)
        .map_err(|err| ConfigError::custom_at(raw.path.mark, err.to_string()))?;
    if pattern.capture_names().next().is_some() {
        return Err(ConfigError::custom_at(
            raw.path.mark,
            "sse route paths take '*' wildcards, not '{name}' captures",
        ));
    }
    Ok(pattern)
}

#[cfg(test)]
mod tests {
    use zilla_config::{env_resolver_from, parse, substitute};

    use super::*;

    fn options(text: &str) -> Result<SseOptions, ConfigError> {
        let mut node = parse(text).unwrap();
        substitute(&mut node, &env_resolver_from(|_| Ok(None))).unwrap();
        parse_options(Some(&node))
    }

    #[test]
    fn defaults() {
        assert_eq!(parse_options(None).unwrap(), SseOptions::default());
        assert_eq!(options("retry: 2000").unwrap(), SseOptions::default());
    }

    #[test]
    fn every_option() {
        let got = options(
            "retry: 500\nheartbeat: 0\ninitial-comment: true\nbuffer: 4096\nstall-timeout: 100",
        )
        .unwrap();
        assert_eq!(
            got,
            SseOptions {
                retry: 500,
                heartbeat: None,
                initial_comment: true,
                buffer: 4096,
                stall_timeout: Duration::from_millis(100),
            }
        );
    }

    #[test]
    fn refusals() {
        let err = options("requests:\n  - path: /x\n    content: string").unwrap_err();
        assert!(err.to_string().contains("not supported"), "{err}");
        assert!(options("buffer: 10").is_err());
        assert!(options("stall-timeout: 0").is_err());
        assert!(options("retri: 1").is_err());
    }

    #[test]
    fn conditions() {
        let node = parse("path: /events/*").unwrap();
        assert!(parse_condition(&node).unwrap().matches("/events/a.b"));
        let node = parse("path: /{topic}").unwrap();
        assert!(parse_condition(&node).is_err());
    }
}

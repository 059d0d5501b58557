//! The options of `kind: client`.

use serde::Deserialize;
use zilla_config::{ConfigError, ConfigErrorKind, Node, Spanned, from_node_at};

/// The smallest `max-event-size`.
pub const MIN_EVENT_SIZE: u32 = 1024;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawClientOptions {
    max_event_size: Option<Spanned<u32>>,
}

/// The parsed `options` of an sse client (ours: Zilla's sse client takes none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseClientOptions {
    /// `max-event-size` (bytes): the largest event read from the upstream (its `data`,
    /// `id` and `event` fields together); a larger one ends the stream. Default 1 MiB, as
    /// Kafka's default largest record.
    pub max_event_size: u32,
}

impl Default for SseClientOptions {
    fn default() -> Self {
        SseClientOptions {
            max_event_size: 1024 * 1024,
        }
    }
}

/// Parses an sse client's `options`.
pub(crate) fn parse_client_options(node: Option<&Node>) -> Result<SseClientOptions, ConfigError> {
    let Some(node) = node else {
        return Ok(SseClientOptions::default());
    };
    let raw: RawClientOptions = from_node_at(node, "options")?;
    let mut options = SseClientOptions::default();
    if let Some(size) = raw.max_event_size {
        if size.value < MIN_EVENT_SIZE {
            return Err(size.error(ConfigErrorKind::InvalidValue {
                found: size.value.to_string(),
                expected: format!("bytes, at least {MIN_EVENT_SIZE}"),
            }));
        }
        options.max_event_size = size.value;
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use zilla_config::parse;

    use super::*;

    fn options(yaml: &str) -> Result<SseClientOptions, String> {
        parse_client_options(Some(&parse(yaml).unwrap())).map_err(|e| e.to_string())
    }

    #[test]
    fn max_event_size_is_bounded_below() {
        assert_eq!(
            options("max-event-size: 4096\n").unwrap().max_event_size,
            4096
        );
        let err = options("max-event-size: 10\n").unwrap_err();
        assert!(
            err.starts_with("1:17:") && err.contains("at least 1024"),
            "{err}"
        );
        let err = options("retry: 10\n").unwrap_err();
        assert!(err.starts_with("1:1: unknown option 'retry'"), "{err}");
    }
}

//! `options` and routes of the cache bindings.

use binding_api::config::{ConfigError, ConfigErrorKind, Node, Spanned, from_node_at};
use binding_api::route::Pattern;
use serde::Deserialize;

use crate::log::Retention;

/// Default global cap: 256 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// Retention of a `defaultOffset: live` topic unless `retentionMs` says otherwise (Zilla's
/// `cache.retention.ms.max`).
pub const LIVE_RETENTION_MS: u64 = 30_000;

/// Where the cache server starts reading a topic it has nothing of.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DefaultOffset {
    /// From the earliest offset Kafka has.
    #[default]
    Historical,
    /// From now on.
    Live,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawTopic {
    name: String,
    default_offset: Option<DefaultOffset>,
    delta_type: Option<Node>,
    transforms: Option<Node>,
    key: Option<Node>,
    value: Option<Node>,
    cleanup_policy: Option<Spanned<String>>,
    retention_ms: Option<u64>,
    retention_bytes: Option<u64>,
    delete_retention_ms: Option<u64>,
    segment_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawOptions {
    bootstrap: Option<Vec<String>>,
    topics: Option<Vec<RawTopic>>,
    max_bytes: Option<u64>,
}

/// One `options.topics[]` entry of a cache server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicOptions {
    /// The topic name (exact).
    pub name: String,
    /// Where an empty cache starts.
    pub default_offset: DefaultOffset,
    /// How the topic is retained.
    pub retention: Retention,
}

/// The parsed options of a cache server (a cache client accepts and ignores `topics`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheOptions {
    /// Topics read from start, with no subscriber.
    pub bootstrap: Vec<String>,
    /// Per-topic settings.
    pub topics: Vec<TopicOptions>,
    /// The cap on the bytes held by the whole cache.
    pub max_bytes: u64,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            bootstrap: Vec::new(),
            topics: Vec::new(),
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

impl CacheOptions {
    /// The settings of `topic`: its entry, else the defaults.
    pub fn topic(&self, topic: &str) -> TopicOptions {
        self.topics
            .iter()
            .find(|t| t.name == topic)
            .cloned()
            .unwrap_or_else(|| TopicOptions {
                name: topic.to_owned(),
                default_offset: DefaultOffset::Historical,
                retention: Retention::default(),
            })
    }
}

fn topic_options(raw: RawTopic) -> Result<TopicOptions, ConfigError> {
    let default_offset = raw.default_offset.unwrap_or_default();
    let mut retention = Retention::default();
    if default_offset == DefaultOffset::Live {
        retention.time_ms = Some(LIVE_RETENTION_MS);
    }
    if let Some(policy) = &raw.cleanup_policy {
        let parts: Vec<&str> = policy.value.split(',').map(str::trim).collect();
        if parts.is_empty() || parts.iter().any(|p| !matches!(*p, "compact" | "delete")) {
            return Err(ConfigError::at(
                policy.mark,
                ConfigErrorKind::InvalidValue {
                    found: format!("'{}'", policy.value),
                    expected: "delete, compact or compact,delete".to_owned(),
                },
            ));
        }
        retention.compact = parts.contains(&"compact");
        retention.delete = parts.contains(&"delete");
    }
    if let Some(ms) = raw.retention_ms {
        retention.time_ms = Some(ms);
    }
    if let Some(bytes) = raw.retention_bytes {
        retention.bytes = Some(bytes);
    }
    if let Some(ms) = raw.delete_retention_ms {
        retention.delete_retention_ms = ms;
    }
    if let Some(bytes) = raw.segment_bytes {
        retention.segment_bytes = bytes.max(1);
    }
    // Zilla's schema options the cache accepts and does not apply.
    let _ = (raw.delta_type, raw.transforms, raw.key, raw.value);
    Ok(TopicOptions {
        name: raw.name,
        default_offset,
        retention,
    })
}

/// Parses `options`.
pub fn parse_options(node: Option<&Node>) -> Result<CacheOptions, ConfigError> {
    let Some(node) = node else {
        return Ok(CacheOptions::default());
    };
    let raw: RawOptions = from_node_at(node, "options")?;
    let topics = raw
        .topics
        .unwrap_or_default()
        .into_iter()
        .map(topic_options)
        .collect::<Result<_, _>>()?;
    Ok(CacheOptions {
        bootstrap: raw.bootstrap.unwrap_or_default(),
        topics,
        max_bytes: raw.max_bytes.unwrap_or(DEFAULT_MAX_BYTES),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    topic: Option<String>,
}

/// Parses one `routes[].when` entry: the topic pattern (`*` wildcard); `None` matches any.
pub fn parse_condition(node: &Node) -> Result<Option<Pattern>, ConfigError> {
    let raw: RawCondition = from_node_at(node, "routes.when")?;
    raw.topic
        .map(|t| {
            Pattern::new(&t)
                .map_err(|e| ConfigError::at(node.mark, ConfigErrorKind::Custom(e.to_string())))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CacheOptions, ConfigError> {
        let node = binding_api::config::parse(text).expect("yaml");
        parse_options(Some(&node))
    }

    #[test]
    fn topics_and_cap() {
        let options = parse(
            "bootstrap: [items]\nmaxBytes: 1000\ntopics:\n  - name: items\n    defaultOffset: live\n  - name: state\n    cleanupPolicy: compact\n    deleteRetentionMs: 5\n",
        )
        .expect("options");
        assert_eq!(options.bootstrap, vec!["items".to_owned()]);
        assert_eq!(options.max_bytes, 1000);
        let items = options.topic("items");
        assert_eq!(items.default_offset, DefaultOffset::Live);
        assert_eq!(items.retention.time_ms, Some(LIVE_RETENTION_MS));
        let state = options.topic("state");
        assert!(state.retention.compact && !state.retention.delete);
        assert_eq!(state.retention.delete_retention_ms, 5);
        assert_eq!(
            options.topic("other").default_offset,
            DefaultOffset::Historical
        );
    }

    #[test]
    fn bad_policy_and_unknown_option() {
        assert!(parse("topics:\n  - name: t\n    cleanupPolicy: shred\n").is_err());
        assert!(parse("bootstrapp: [t]\n").is_err());
    }
}

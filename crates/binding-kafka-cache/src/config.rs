//! `options` and routes of the cache bindings.

use binding_api::route::Pattern;
use serde::Deserialize;
use zilla_config::{ConfigError, ConfigErrorKind, Node, Spanned, from_node_at};

use binding_api::ext::kafka::KafkaConfigsEx;

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
    idle_topic_ms: Option<u64>,
}

/// The Kafka topic configs the cache asks for (a describe stream) and retains by.
pub const TOPIC_CONFIGS: [&str; 5] = [
    "cleanup.policy",
    "retention.ms",
    "retention.bytes",
    "delete.retention.ms",
    "segment.bytes",
];

/// `cleanup.policy`: which of compaction and deletion apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// `compact`: newest record per key.
    pub compact: bool,
    /// `delete`: retention by time and size.
    pub delete: bool,
}

impl CleanupPolicy {
    /// Parses `delete`, `compact`, `compact,delete` (either order, spaces allowed).
    pub fn parse(text: &str) -> Option<CleanupPolicy> {
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        if parts.iter().any(|p| !matches!(*p, "compact" | "delete")) {
            return None;
        }
        Some(CleanupPolicy {
            compact: parts.contains(&"compact"),
            delete: parts.contains(&"delete"),
        })
    }
}

/// What `options.topics[]` says of a topic's retention; each given field overrides the
/// topic's own Kafka config.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionOverrides {
    /// `cleanupPolicy`.
    pub cleanup: Option<CleanupPolicy>,
    /// `retentionMs`.
    pub time_ms: Option<u64>,
    /// `retentionBytes`.
    pub bytes: Option<u64>,
    /// `deleteRetentionMs`.
    pub delete_retention_ms: Option<u64>,
    /// `segmentBytes`.
    pub segment_bytes: Option<u64>,
}

/// One `options.topics[]` entry of a cache server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicOptions {
    /// The topic name (exact).
    pub name: String,
    /// Where an empty cache starts.
    pub default_offset: DefaultOffset,
    /// Retention settings that override the topic's Kafka config.
    pub overrides: RetentionOverrides,
}

/// The parsed options of a cache server (a cache client accepts and ignores `topics`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheOptions {
    /// Topics read from start, with no subscriber; never dropped.
    pub bootstrap: Vec<String>,
    /// Per-topic settings.
    pub topics: Vec<TopicOptions>,
    /// The cap on the bytes held by the whole cache.
    pub max_bytes: u64,
    /// A topic with no subscriber for this long is dropped: its upstream ends, its log is freed.
    pub idle_topic_ms: u64,
}

/// Default of `idleTopicMs`: five minutes.
pub const DEFAULT_IDLE_TOPIC_MS: u64 = 5 * 60 * 1000;

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            bootstrap: Vec::new(),
            topics: Vec::new(),
            max_bytes: DEFAULT_MAX_BYTES,
            idle_topic_ms: DEFAULT_IDLE_TOPIC_MS,
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
                overrides: RetentionOverrides::default(),
            })
    }
}

/// A Kafka config value: a number, negative meaning unlimited (`None`).
fn limit(configs: &KafkaConfigsEx, name: &str) -> Option<Option<u64>> {
    let value: i64 = configs.get(name)?.trim().parse().ok()?;
    Some(u64::try_from(value).ok())
}

impl TopicOptions {
    /// The retention in force: the defaults, then the topic's Kafka config (when known), then
    /// `options.topics[]`. A `defaultOffset: live` topic keeps at most
    /// [`LIVE_RETENTION_MS`] unless `retentionMs` says otherwise. Segments are at most
    /// [`Retention::default`]'s size, and at most a quarter of `retention.bytes` when the
    /// segment size is not given, so that size retention holds within a quarter.
    pub fn retention(&self, kafka: Option<&KafkaConfigsEx>) -> Retention {
        let mut r = Retention::default();
        let o = &self.overrides;
        if let Some(k) = kafka {
            if let Some(policy) = k.get("cleanup.policy").and_then(CleanupPolicy::parse) {
                (r.compact, r.delete) = (policy.compact, policy.delete);
            }
            if let Some(ms) = limit(k, "retention.ms") {
                r.time_ms = ms;
            }
            if let Some(bytes) = limit(k, "retention.bytes") {
                r.bytes = bytes;
            }
            if let Some(Some(ms)) = limit(k, "delete.retention.ms") {
                r.delete_retention_ms = ms;
            }
            if let Some(Some(bytes)) = limit(k, "segment.bytes") {
                r.segment_bytes = r.segment_bytes.min(bytes.max(1));
            }
        }
        if self.default_offset == DefaultOffset::Live {
            r.time_ms = Some(
                r.time_ms
                    .map_or(LIVE_RETENTION_MS, |t| t.min(LIVE_RETENTION_MS)),
            );
        }
        if let Some(policy) = o.cleanup {
            (r.compact, r.delete) = (policy.compact, policy.delete);
        }
        if let Some(ms) = o.time_ms {
            r.time_ms = Some(ms);
        }
        if let Some(bytes) = o.bytes {
            r.bytes = Some(bytes);
        }
        if let Some(ms) = o.delete_retention_ms {
            r.delete_retention_ms = ms;
        }
        match o.segment_bytes {
            Some(bytes) => r.segment_bytes = bytes.max(1),
            None => {
                if let Some(bytes) = r.bytes {
                    r.segment_bytes = r.segment_bytes.min((bytes / 4).max(1));
                }
            }
        }
        r
    }
}

fn topic_options(raw: RawTopic) -> Result<TopicOptions, ConfigError> {
    let cleanup = raw
        .cleanup_policy
        .as_ref()
        .map(|policy| {
            CleanupPolicy::parse(&policy.value).ok_or_else(|| {
                ConfigError::at(
                    policy.mark,
                    ConfigErrorKind::InvalidValue {
                        found: format!("'{}'", policy.value),
                        expected: "delete, compact or compact,delete".to_owned(),
                    },
                )
            })
        })
        .transpose()?;
    // Zilla's schema options the cache accepts and does not apply.
    let _ = (raw.delta_type, raw.transforms, raw.key, raw.value);
    Ok(TopicOptions {
        name: raw.name,
        default_offset: raw.default_offset.unwrap_or_default(),
        overrides: RetentionOverrides {
            cleanup,
            time_ms: raw.retention_ms,
            bytes: raw.retention_bytes,
            delete_retention_ms: raw.delete_retention_ms,
            segment_bytes: raw.segment_bytes,
        },
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
        idle_topic_ms: raw.idle_topic_ms.unwrap_or(DEFAULT_IDLE_TOPIC_MS),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    topic: Option<String>,
}

/// One `routes[].when` entry: a topic pattern (`*` wildcard).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicCondition {
    /// The pattern; `None` matches any topic.
    pub topic: Option<Pattern>,
}

impl TopicCondition {
    /// Whether `topic` matches.
    pub fn matches(&self, topic: &str) -> bool {
        self.topic.as_ref().is_none_or(|p| p.matches(topic))
    }
}

/// Parses one `routes[].when` entry.
pub fn parse_condition(node: &Node) -> Result<TopicCondition, ConfigError> {
    let raw: RawCondition = from_node_at(node, "routes.when")?;
    let topic = raw
        .topic
        .map(|t| {
            Pattern::new(&t)
                .map_err(|e| ConfigError::at(node.mark, ConfigErrorKind::Custom(e.to_string())))
        })
        .transpose()?;
    Ok(TopicCondition { topic })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CacheOptions, ConfigError> {
        let node = zilla_config::parse(text).expect("yaml");
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
        assert_eq!(items.retention(None).time_ms, Some(LIVE_RETENTION_MS));
        let state = options.topic("state").retention(None);
        assert!(state.compact && !state.delete);
        assert_eq!(state.delete_retention_ms, 5);
        assert_eq!(options.idle_topic_ms, DEFAULT_IDLE_TOPIC_MS);
        assert_eq!(
            options.topic("other").default_offset,
            DefaultOffset::Historical
        );
    }

    fn kafka(configs: &[(&str, &str)]) -> KafkaConfigsEx {
        KafkaConfigsEx {
            configs: configs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), Some((*v).to_owned())))
                .collect(),
        }
    }

    #[test]
    fn kafka_config_then_overrides() {
        let options = parse(
            "idleTopicMs: 7\ntopics:\n  - name: o\n    retentionBytes: 4000\n    cleanupPolicy: delete\n  - name: live\n    defaultOffset: live\n",
        )
        .expect("options");
        assert_eq!(options.idle_topic_ms, 7);
        let k = kafka(&[
            ("cleanup.policy", "compact,delete"),
            ("retention.ms", "-1"),
            ("retention.bytes", "1000"),
            ("delete.retention.ms", "10"),
            ("segment.bytes", "1073741824"),
        ]);
        let plain = options.topic("plain").retention(Some(&k));
        assert!(plain.compact && plain.delete);
        assert_eq!(plain.time_ms, None, "-1 is unlimited");
        assert_eq!(plain.bytes, Some(1000));
        assert_eq!(plain.delete_retention_ms, 10);
        assert_eq!(plain.segment_bytes, 250, "a quarter of retention.bytes");
        let o = options.topic("o").retention(Some(&k));
        assert!(!o.compact && o.delete, "the option wins");
        assert_eq!(o.bytes, Some(4000));
        assert_eq!(o.segment_bytes, 1000);
        let live = options.topic("live").retention(Some(&k));
        assert_eq!(live.time_ms, Some(LIVE_RETENTION_MS));
        let bad = kafka(&[("cleanup.policy", "shred"), ("retention.ms", "x")]);
        assert_eq!(
            options.topic("plain").retention(Some(&bad)),
            Retention::default()
        );
        let compact = kafka(&[("cleanup.policy", "compact"), ("retention.bytes", "-1")]);
        let r = options.topic("plain").retention(Some(&compact));
        assert!(r.compact && !r.delete && r.bytes.is_none());
        assert_eq!(r.segment_bytes, Retention::default().segment_bytes);
    }

    #[test]
    fn bad_policy_and_unknown_option() {
        assert!(parse("topics:\n  - name: t\n    cleanupPolicy: shred\n").is_err());
        assert!(parse("bootstrapp: [t]\n").is_err());
    }
}

//! The metrics this build knows, by name: Zilla's `http.*` and `stream.*`, and ours for the
//! SSE–Kafka path (`sse.*`, `kafka.*`). A configuration may only name these.

/// How a metric's value moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (events, bytes).
    Counter,
    /// Goes up and down (what is open now): each worker adds to its own share, a scrape
    /// sums the shares.
    Gauge,
    /// A gauge set to a value from one place at a time (a topic's lag, a connection's state):
    /// one cell per series for every worker, the last value set wins; exposed as a gauge.
    Level,
    /// Counts values in power-of-two buckets, with their sum.
    Histogram,
}

impl Kind {
    /// The name in the Prometheus `# TYPE` line.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge | Kind::Level => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// What a recorded value counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Things (streams, events, records).
    Count,
    /// Bytes; the exposed name ends in `_bytes`.
    Bytes,
    /// Recorded in microseconds, exposed in seconds (`_seconds`), as Prometheus expects.
    Microseconds,
}

/// A value a binding supplies with each record of a metric, such as the request's method.
///
/// A configured attribute `NAME: ${SOURCE}` labels the metrics that supply `SOURCE` with
/// `NAME`; a source with a `label` is always a label of its metrics (a topic, a reason).
/// At most `cap` distinct values per binding get a series of their own; the rest are
/// counted under [`OTHER_VALUE`](crate::OTHER_VALUE).
#[derive(Debug, PartialEq, Eq)]
pub struct Source {
    /// The name a configuration writes inside `${...}`.
    pub name: &'static str,
    /// The label it always gets, if any.
    pub label: Option<&'static str>,
    /// Distinct values kept per binding.
    pub cap: u16,
}

/// One metric: its name, kind, unit, help text and the values recorded with it.
#[derive(Debug, PartialEq, Eq)]
pub struct MetricDef {
    /// Dotted name, as written in `zilla.yaml` (`stream.opens.received`).
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// What one unit of a record is.
    pub unit: Unit,
    /// One line for `# HELP`.
    pub help: &'static str,
    /// What the recorder supplies with each record, in this order.
    pub sources: &'static [Source],
}

impl MetricDef {
    /// The name in the Prometheus exposition: dots become underscores, then `_bytes` or
    /// `_seconds` for the unit and `_total` for a counter.
    pub fn exposition_name(&self) -> String {
        let mut name = self.name.replace('.', "_");
        match self.unit {
            Unit::Count => {}
            Unit::Bytes => name.push_str("_bytes"),
            Unit::Microseconds => name.push_str("_seconds"),
        }
        if self.kind == Kind::Counter {
            name.push_str("_total");
        }
        name
    }
}

/// `${http.request.method}`: the request's method.
pub const HTTP_REQUEST_METHOD: Source = Source {
    name: "http.request.method",
    label: None,
    cap: 16,
};
/// `${http.request.path}`: the request's path, without the query.
pub const HTTP_REQUEST_PATH: Source = Source {
    name: "http.request.path",
    label: None,
    cap: 16,
};
/// `${kafka.topic}`, and the `topic` label of every per-topic metric.
pub const KAFKA_TOPIC: Source = Source {
    name: "kafka.topic",
    label: Some("topic"),
    cap: 64,
};
/// `${kafka.broker}`, and the `broker` label (`host:port`) of broker metrics.
pub const KAFKA_BROKER: Source = Source {
    name: "kafka.broker",
    label: Some("broker"),
    cap: 32,
};
/// The `reason` an SSE subscription ended for: `client` (the client went away),
/// `slow_client` (it fell behind its bound), `guard_expired` (its credentials expired),
/// `server` (shutdown, or the upstream ended).
pub const SSE_END_REASON: Source = Source {
    name: "sse.end.reason",
    label: Some("reason"),
    cap: 8,
};

/// Every source, for checking `${...}` in attributes.
pub static SOURCES: [&Source; 5] = [
    &HTTP_REQUEST_METHOD,
    &HTTP_REQUEST_PATH,
    &KAFKA_TOPIC,
    &KAFKA_BROKER,
    &SSE_END_REASON,
];

const HTTP: &[Source] = &[HTTP_REQUEST_METHOD, HTTP_REQUEST_PATH];
const TOPIC: &[Source] = &[KAFKA_TOPIC];
const BROKER: &[Source] = &[KAFKA_BROKER];
const REASON: &[Source] = &[SSE_END_REASON];

const fn def(
    name: &'static str,
    kind: Kind,
    unit: Unit,
    help: &'static str,
    sources: &'static [Source],
) -> MetricDef {
    MetricDef {
        name,
        kind,
        unit,
        help,
        sources,
    }
}

use Kind::{Counter, Gauge, Histogram, Level};
use Unit::{Bytes, Count, Microseconds};

/// Zilla's `http.request.size`: a request's content length.
pub static HTTP_REQUEST_SIZE: MetricDef = def(
    "http.request.size",
    Histogram,
    Bytes,
    "HTTP request content length",
    HTTP,
);
/// Zilla's `http.response.size`: a response's content length.
pub static HTTP_RESPONSE_SIZE: MetricDef = def(
    "http.response.size",
    Histogram,
    Bytes,
    "HTTP response content length",
    HTTP,
);
/// Zilla's `http.duration`: from the request's begin to the end of the exchange.
pub static HTTP_DURATION: MetricDef = def(
    "http.duration",
    Histogram,
    Microseconds,
    "Duration of HTTP requests",
    HTTP,
);
/// Zilla's `http.active.requests`.
pub static HTTP_ACTIVE_REQUESTS: MetricDef = def(
    "http.active.requests",
    Gauge,
    Count,
    "Number of active HTTP requests",
    HTTP,
);
/// Zilla's `stream.active.received`: streams that reached the binding and are open.
pub static STREAM_ACTIVE_RECEIVED: MetricDef = def(
    "stream.active.received",
    Gauge,
    Count,
    "Number of active streams received",
    &[],
);
/// Zilla's `stream.active.sent`: streams the binding opened that are open.
pub static STREAM_ACTIVE_SENT: MetricDef = def(
    "stream.active.sent",
    Gauge,
    Count,
    "Number of active streams sent",
    &[],
);
/// Zilla's `stream.opens.received`.
pub static STREAM_OPENS_RECEIVED: MetricDef = def(
    "stream.opens.received",
    Counter,
    Count,
    "Number of opened streams received",
    &[],
);
/// Zilla's `stream.opens.sent`.
pub static STREAM_OPENS_SENT: MetricDef = def(
    "stream.opens.sent",
    Counter,
    Count,
    "Number of opened streams sent",
    &[],
);
/// Zilla's `stream.data.received`: payload bytes.
pub static STREAM_DATA_RECEIVED: MetricDef = def(
    "stream.data.received",
    Counter,
    Bytes,
    "Bytes of data received on streams",
    &[],
);
/// Zilla's `stream.data.sent`: payload bytes.
pub static STREAM_DATA_SENT: MetricDef = def(
    "stream.data.sent",
    Counter,
    Bytes,
    "Bytes of data sent on streams",
    &[],
);
/// Zilla's `stream.errors.received`: aborts and resets received.
pub static STREAM_ERRORS_RECEIVED: MetricDef = def(
    "stream.errors.received",
    Counter,
    Count,
    "Number of stream errors received",
    &[],
);
/// Zilla's `stream.errors.sent`: aborts and resets sent.
pub static STREAM_ERRORS_SENT: MetricDef = def(
    "stream.errors.sent",
    Counter,
    Count,
    "Number of stream errors sent",
    &[],
);
/// Zilla's `stream.closes.received`.
pub static STREAM_CLOSES_RECEIVED: MetricDef = def(
    "stream.closes.received",
    Counter,
    Count,
    "Number of closed streams received",
    &[],
);
/// Zilla's `stream.closes.sent`.
pub static STREAM_CLOSES_SENT: MetricDef = def(
    "stream.closes.sent",
    Counter,
    Count,
    "Number of closed streams sent",
    &[],
);
/// SSE subscriptions open now.
pub static SSE_SUBSCRIBERS_ACTIVE: MetricDef = def(
    "sse.subscribers.active",
    Gauge,
    Count,
    "SSE subscriptions open now",
    &[],
);
/// SSE subscriptions accepted.
pub static SSE_SUBSCRIBERS_OPENED: MetricDef = def(
    "sse.subscribers.opened",
    Counter,
    Count,
    "SSE subscriptions accepted",
    &[],
);
/// SSE subscriptions ended, by `reason`.
pub static SSE_SUBSCRIBERS_ENDED: MetricDef = def(
    "sse.subscribers.ended",
    Counter,
    Count,
    "SSE subscriptions ended, by reason",
    REASON,
);
/// SSE events written to subscribers.
pub static SSE_EVENTS_SENT: MetricDef = def(
    "sse.events.sent",
    Counter,
    Count,
    "SSE events sent to subscribers",
    &[],
);
/// Bytes of SSE events written to subscribers.
pub static SSE_DATA_SENT: MetricDef = def(
    "sse.data.sent",
    Counter,
    Bytes,
    "Bytes of SSE events sent to subscribers",
    &[],
);
/// Subscriptions that resumed from a `Last-Event-ID`.
pub static SSE_RESUMES: MetricDef = def(
    "sse.resumes",
    Counter,
    Count,
    "SSE subscriptions resumed from a Last-Event-ID",
    &[],
);
/// Subscriptions refused (400) for an event id that cannot be read.
pub static SSE_IDS_REJECTED: MetricDef = def(
    "sse.ids.rejected",
    Counter,
    Count,
    "SSE subscriptions refused for an unreadable event id",
    &[],
);
/// Bytes a topic's records take in the cache.
pub static KAFKA_CACHE_SIZE: MetricDef = def(
    "kafka.cache.size",
    Level,
    Bytes,
    "Bytes of records held in the cache, by topic",
    TOPIC,
);
/// Records of a topic in the cache.
pub static KAFKA_CACHE_RECORDS: MetricDef = def(
    "kafka.cache.records",
    Level,
    Count,
    "Records held in the cache, by topic",
    TOPIC,
);
/// Records evicted from the cache by retention.
pub static KAFKA_CACHE_EVICTIONS: MetricDef = def(
    "kafka.cache.evictions",
    Counter,
    Count,
    "Records evicted from the cache, by topic",
    TOPIC,
);
/// Gaps announced to subscribers (records they asked for that are gone).
pub static KAFKA_CACHE_GAPS: MetricDef = def(
    "kafka.cache.gaps",
    Counter,
    Count,
    "Gaps announced to subscribers, by topic",
    TOPIC,
);
/// Fetch requests sent upstream.
pub static KAFKA_FETCHES: MetricDef = def(
    "kafka.fetches",
    Counter,
    Count,
    "Fetch requests sent to brokers, by topic",
    TOPIC,
);
/// Records between what the cache has read and the high watermark, summed over partitions.
pub static KAFKA_CONSUMER_LAG: MetricDef = def(
    "kafka.consumer.lag",
    Level,
    Count,
    "Records behind the high watermark, by topic",
    TOPIC,
);
/// 1 while a broker connection is up, 0 while it is not.
pub static KAFKA_BROKER_CONNECTED: MetricDef = def(
    "kafka.broker.connected",
    Level,
    Count,
    "Whether the connection to a broker is up (1) or not (0)",
    BROKER,
);

/// Every metric, in the order the exposition lists them.
pub static CATALOG: [&MetricDef; 28] = [
    &HTTP_REQUEST_SIZE,
    &HTTP_RESPONSE_SIZE,
    &HTTP_DURATION,
    &HTTP_ACTIVE_REQUESTS,
    &STREAM_ACTIVE_RECEIVED,
    &STREAM_ACTIVE_SENT,
    &STREAM_OPENS_RECEIVED,
    &STREAM_OPENS_SENT,
    &STREAM_DATA_RECEIVED,
    &STREAM_DATA_SENT,
    &STREAM_ERRORS_RECEIVED,
    &STREAM_ERRORS_SENT,
    &STREAM_CLOSES_RECEIVED,
    &STREAM_CLOSES_SENT,
    &SSE_SUBSCRIBERS_ACTIVE,
    &SSE_SUBSCRIBERS_OPENED,
    &SSE_SUBSCRIBERS_ENDED,
    &SSE_EVENTS_SENT,
    &SSE_DATA_SENT,
    &SSE_RESUMES,
    &SSE_IDS_REJECTED,
    &KAFKA_CACHE_SIZE,
    &KAFKA_CACHE_RECORDS,
    &KAFKA_CACHE_EVICTIONS,
    &KAFKA_CACHE_GAPS,
    &KAFKA_FETCHES,
    &KAFKA_CONSUMER_LAG,
    &KAFKA_BROKER_CONNECTED,
];

/// The metric named `name`.
pub fn find(name: &str) -> Option<&'static MetricDef> {
    CATALOG.iter().copied().find(|m| m.name == name)
}

/// The source named `name`.
pub fn source(name: &str) -> Option<&'static Source> {
    SOURCES.iter().copied().find(|s| s.name == name)
}

/// Where a metric comes in [`CATALOG`], to sort by.
pub(crate) fn position(metric: &MetricDef) -> usize {
    CATALOG
        .iter()
        .position(|m| m.name == metric.name)
        .unwrap_or(CATALOG.len())
}

/// A metric name or a pattern: `stream.opens.received`, `stream.*` (whole segments after a
/// prefix) or `*` (everything).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// One metric.
    Exact(&'static MetricDef),
    /// Every metric whose name starts with this prefix and a dot; empty for `*`.
    Prefix(String),
}

/// Why a name or pattern names no metric.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// No metric has this name.
    #[error("unknown metric '{0}'")]
    Unknown(String),
    /// `*` stands anywhere but for whole trailing segments.
    #[error("'{0}': a wildcard stands for whole trailing name segments, as in 'http.*'")]
    Wildcard(String),
    /// A prefix that no metric name starts with.
    #[error("'{0}' matches no metric")]
    NoMatch(String),
}

impl Pattern {
    /// Parses a name or a pattern.
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        if text == "*" {
            return Ok(Pattern::Prefix(String::new()));
        }
        if let Some(prefix) = text.strip_suffix(".*") {
            if prefix.is_empty() || prefix.contains('*') {
                return Err(PatternError::Wildcard(text.to_owned()));
            }
            let pattern = Pattern::Prefix(prefix.to_owned());
            return match CATALOG.iter().any(|m| pattern.matches(m)) {
                true => Ok(pattern),
                false => Err(PatternError::NoMatch(text.to_owned())),
            };
        }
        if text.contains('*') {
            return Err(PatternError::Wildcard(text.to_owned()));
        }
        find(text)
            .map(Pattern::Exact)
            .ok_or_else(|| PatternError::Unknown(text.to_owned()))
    }

    /// Whether `metric` is one this pattern names.
    pub fn matches(&self, metric: &MetricDef) -> bool {
        match self {
            Pattern::Exact(exact) => exact.name == metric.name,
            Pattern::Prefix(prefix) if prefix.is_empty() => true,
            Pattern::Prefix(prefix) => metric
                .name
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.starts_with('.')),
        }
    }
}

/// Every metric name, for "allowed" lists and "did you mean".
pub fn names() -> impl Iterator<Item = &'static str> {
    CATALOG.iter().map(|m| m.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_exposed_as_prometheus_names() {
        let mut names: Vec<_> = names().collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CATALOG.len());
        assert_eq!(
            STREAM_OPENS_RECEIVED.exposition_name(),
            "stream_opens_received_total"
        );
        assert_eq!(
            STREAM_DATA_SENT.exposition_name(),
            "stream_data_sent_bytes_total"
        );
        assert_eq!(
            HTTP_REQUEST_SIZE.exposition_name(),
            "http_request_size_bytes"
        );
        assert_eq!(HTTP_DURATION.exposition_name(), "http_duration_seconds");
        assert_eq!(
            HTTP_ACTIVE_REQUESTS.exposition_name(),
            "http_active_requests"
        );
    }

    #[test]
    fn patterns_name_whole_segments() {
        let stream = Pattern::parse("stream.*").expect("stream.*");
        assert!(stream.matches(&STREAM_CLOSES_SENT));
        assert!(!stream.matches(&HTTP_DURATION));
        let http: Vec<_> = CATALOG
            .iter()
            .filter(|m| Pattern::parse("http.*").expect("http").matches(m))
            .map(|m| m.name)
            .collect();
        assert_eq!(
            http,
            [
                "http.request.size",
                "http.response.size",
                "http.duration",
                "http.active.requests"
            ]
        );
        assert!(Pattern::parse("*").expect("all").matches(&KAFKA_FETCHES));
        assert_eq!(
            Pattern::parse("stream.opens.received"),
            Ok(Pattern::Exact(&STREAM_OPENS_RECEIVED))
        );
        assert!(matches!(
            Pattern::parse("http.re*"),
            Err(PatternError::Wildcard(_))
        ));
        assert!(matches!(
            Pattern::parse("*.sent"),
            Err(PatternError::Wildcard(_))
        ));
        assert!(matches!(
            Pattern::parse("htp.*"),
            Err(PatternError::NoMatch(_))
        ));
        // `stream.open.*` is not a prefix of whole segments of `stream.opens.received`.
        assert!(matches!(
            Pattern::parse("stream.open.*"),
            Err(PatternError::NoMatch(_))
        ));
        assert!(matches!(
            Pattern::parse("http.durations"),
            Err(PatternError::Unknown(_))
        ));
    }

    #[test]
    fn every_source_of_a_metric_is_known() {
        for metric in CATALOG {
            for s in metric.sources {
                assert_eq!(source(s.name), Some(s), "{}", metric.name);
            }
        }
        assert_eq!(source("http.request.verb"), None);
    }
}

//! Kafka vocabulary: the streams a Kafka client (or cache) offers upward.
//!
//! Two kinds of stream read a topic. Each opens with a [`KafkaBeginEx`] in the initial begin:
//!
//! - **fetch** ([`KafkaFetchBeginEx`]): one topic-partition, from a [`StartPosition`];
//! - **merged** ([`KafkaMergedBeginEx`]): every partition of a topic, each from its own start
//!   position (or the default for partitions not listed), records of all partitions
//!   interleaved in arrival order.
//!
//! The initial direction carries nothing after its begin (a reader ends it when it goes away).
//! The **reply** begins with [`KafkaBeginEx::Reply`] (the topic and its partitions), then
//! carries one record per data frame, or several frames when a record's value is larger than
//! the credit available:
//!
//! # Records on the reply
//!
//! The first data frame of a record carries [`KafkaDataEx::Record`] ([`KafkaRecordEx`]) with
//! everything but the value: partition, offset, timestamp, key, headers, the value's total
//! length (`None` for a null value, a tombstone, which is distinct from an empty value) and,
//! on merged streams, the [`Progress`] of every partition *after* this record. The frame's
//! payload holds the first bytes of the value. When the value does not fit the credit, the
//! rest follows in data frames whose extension is [`KafkaDataEx::Continuation`], until
//! `value_len` bytes have been sent. A record's frames are never interleaved with another
//! record's. A reader reassembles, or streams, the value from these frames; payloads are
//! zero-copy slices of the broker's fetch response.
//!
//! A sender splits a record only when it does not fit the largest credit the receiver has
//! had available at once: a receiver whose window holds `value_len + padding` bytes receives
//! every record in one frame.
//!
//! # Caught up
//!
//! When the stream has delivered everything the brokers had when it started (every partition
//! reached its high watermark, or its last stable offset under read-committed) it sends one
//! flush with [`KafkaFlushEx`] holding the progress: the historical → live transition.
//!
//! A cache (`kind: cache_client`) may also send a flush with [`FlushEx::KafkaGap`]
//! ([`KafkaGapEx`]) when a slow reader fell behind what it retains: the reader skipped to the
//! oldest record still held.
//!
//! [`FlushEx::KafkaGap`]: crate::ext::FlushEx::KafkaGap
//!
//! # Describe streams
//!
//! A **describe** stream ([`KafkaDescribeBeginEx`]) reads a topic's own configuration
//! (`cleanup.policy`, `retention.ms`, ...), as Kafka's DescribeConfigs gives it. Its reply
//! begins with [`KafkaBeginEx::Reply`] (the topic, no partitions), then carries one data frame
//! with an empty payload and [`KafkaDataEx::Configs`] holding the values asked for, and another
//! each time one of them changes (the client looks again periodically). A reader that no
//! longer wants them ends the initial direction. A Kafka cache uses this to retain each topic
//! as Kafka does.
//!
//! # Failures
//!
//! The client refuses a stream (reset of the initial direction, abort of the reply) with a
//! [`KafkaResetEx`] saying why: [`KafkaResetEx::UnknownTopic`],
//! [`KafkaResetEx::OffsetOutOfRange`] with the partition's earliest and latest offsets, or a
//! Kafka error code.
//!
//! # Filters
//!
//! [`Filter`]s are OR-ed; the [`Condition`]s inside one filter are AND-ed, as in Zilla. A
//! header condition matches when the record has at least one header of that name with that
//! exact value (bytes). No filters means every record. Filtering happens in the client before
//! a record is sent: a record that matches no filter costs no credit, but its offset still
//! advances the progress.

use std::sync::Arc;

use bytes::Bytes;

/// Begin extensions of Kafka streams.
#[derive(Clone, Debug, PartialEq)]
pub enum KafkaBeginEx {
    /// Opens a merged stream (initial direction).
    Merged(KafkaMergedBeginEx),
    /// Opens a fetch stream (initial direction).
    Fetch(KafkaFetchBeginEx),
    /// Opens a describe stream: the topic's configuration (initial direction).
    Describe(KafkaDescribeBeginEx),
    /// Answers either (reply direction).
    Reply(KafkaReplyBeginEx),
}

/// Where a partition starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StartPosition {
    /// At this offset (the next record to read).
    Offset(i64),
    /// At the first offset the broker still has (Zilla's HISTORICAL, `-2`).
    #[default]
    Earliest,
    /// After the last record: only records produced from now on (Zilla's LIVE, `-1`).
    Latest,
    /// At the first record whose timestamp is at or after this one (milliseconds since the
    /// epoch); at the end when there is none.
    Timestamp(i64),
}

/// Which records a reader sees of transactional producers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Isolation {
    /// Only committed records, up to the last stable offset (the default, as in Zilla).
    #[default]
    ReadCommitted,
    /// Every record up to the high watermark, aborted ones included.
    ReadUncommitted,
}

/// One condition of a filter.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Condition {
    /// The record's key equals these bytes (a record without key never matches).
    Key(Bytes),
    /// The record has a header of this name whose value equals these bytes.
    Header {
        /// Header name.
        name: Bytes,
        /// Header value.
        value: Bytes,
    },
}

/// Conditions that must all hold (AND).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Filter {
    /// The conditions; an empty filter matches every record.
    pub conditions: Vec<Condition>,
}

impl Filter {
    /// Whether a record with this key and these headers matches every condition.
    pub fn matches(&self, key: Option<&[u8]>, headers: &[KafkaHeader]) -> bool {
        self.conditions.iter().all(|c| match c {
            Condition::Key(want) => key == Some(&want[..]),
            Condition::Header { name, value } => headers
                .iter()
                .any(|h| h.name == *name && h.value.as_deref() == Some(&value[..])),
        })
    }
}

/// Whether a record passes `filters` (OR of ANDs; none means every record).
pub fn matches_any(filters: &[Filter], key: Option<&[u8]>, headers: &[KafkaHeader]) -> bool {
    filters.is_empty() || filters.iter().any(|f| f.matches(key, headers))
}

/// Begin extension of a merged stream: every partition of one topic.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KafkaMergedBeginEx {
    /// The topic.
    pub topic: String,
    /// Start positions of given partitions.
    pub partitions: Vec<(i32, StartPosition)>,
    /// Where partitions not listed start.
    pub default_start: StartPosition,
    /// Filters, OR-ed.
    pub filters: Vec<Filter>,
    /// Isolation level.
    pub isolation: Isolation,
}

impl KafkaMergedBeginEx {
    /// Where `partition` starts.
    pub fn start_of(&self, partition: i32) -> StartPosition {
        self.partitions
            .iter()
            .find(|(p, _)| *p == partition)
            .map_or(self.default_start, |(_, s)| *s)
    }
}

/// Begin extension of a fetch stream: one topic-partition.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KafkaFetchBeginEx {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Where to start.
    pub start: StartPosition,
    /// Filters, OR-ed.
    pub filters: Vec<Filter>,
    /// Isolation level.
    pub isolation: Isolation,
}

/// Begin extension of a describe stream: a topic's configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KafkaDescribeBeginEx {
    /// The topic.
    pub topic: String,
    /// The configuration names wanted (`retention.ms`, ...); empty for every one.
    pub configs: Vec<String>,
}

/// Data extension of a describe stream: a topic's configuration values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KafkaConfigsEx {
    /// `(name, value)` pairs as Kafka spells them; `None` for a value Kafka does not give
    /// (a sensitive one).
    pub configs: Vec<(String, Option<String>)>,
}

impl KafkaConfigsEx {
    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.configs
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }
}

/// Begin extension of the reply of a fetch or merged stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KafkaReplyBeginEx {
    /// The topic.
    pub topic: String,
    /// The partitions the stream reads, ascending.
    pub partitions: Vec<i32>,
}

/// One record header. Names may repeat; values may be null.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KafkaHeader {
    /// The name (bytes; Kafka spells it as a string but does not check it).
    pub name: Bytes,
    /// The value; `None` for a null value.
    pub value: Option<Bytes>,
}

/// A record's headers, in order, shared: a record sent to many readers carries them by one
/// reference count (not a copy of the list per reader), and a record without headers by
/// none. Reads as a slice.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KafkaHeaders(Option<Arc<[KafkaHeader]>>);

impl std::ops::Deref for KafkaHeaders {
    type Target = [KafkaHeader];

    fn deref(&self) -> &[KafkaHeader] {
        self.0.as_deref().unwrap_or_default()
    }
}

impl From<Vec<KafkaHeader>> for KafkaHeaders {
    fn from(headers: Vec<KafkaHeader>) -> Self {
        KafkaHeaders((!headers.is_empty()).then(|| headers.into()))
    }
}

impl FromIterator<KafkaHeader> for KafkaHeaders {
    fn from_iter<I: IntoIterator<Item = KafkaHeader>>(headers: I) -> Self {
        headers.into_iter().collect::<Vec<_>>().into()
    }
}

/// The next offset to read of every partition of a merged stream.
///
/// Shared between records by [`Arc`]: the sender updates it copy-on-write
/// ([`Arc::make_mut`]), so a record costs one reference count unless a reader still holds the
/// previous snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Progress {
    /// `(partition, next offset)`, ascending by partition.
    pub partitions: Vec<(i32, i64)>,
}

impl Progress {
    /// The next offset of `partition`, if known.
    pub fn get(&self, partition: i32) -> Option<i64> {
        self.partitions
            .binary_search_by_key(&partition, |(p, _)| *p)
            .ok()
            .map(|i| self.partitions[i].1)
    }

    /// Sets the next offset of `partition`.
    pub fn set(&mut self, partition: i32, next: i64) {
        match self
            .partitions
            .binary_search_by_key(&partition, |(p, _)| *p)
        {
            Ok(i) => self.partitions[i].1 = next,
            Err(i) => self.partitions.insert(i, (partition, next)),
        }
    }
}

/// Data extensions of Kafka streams.
#[derive(Clone, Debug, PartialEq)]
pub enum KafkaDataEx {
    /// The first frame of a record.
    Record(KafkaRecordEx),
    /// More bytes of the value of the record whose first frame came last.
    Continuation,
    /// A describe stream's configuration values (empty payload).
    Configs(KafkaConfigsEx),
}

/// Everything about a record but its value bytes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KafkaRecordEx {
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// Its timestamp, milliseconds since the epoch (create or log-append time).
    pub timestamp: i64,
    /// The key; `None` when the record has none.
    pub key: Option<Bytes>,
    /// The headers, in order.
    pub headers: KafkaHeaders,
    /// The value's length; `None` for a null value (tombstone).
    pub value_len: Option<u32>,
    /// The high watermark of the partition when this record was fetched.
    pub high_watermark: i64,
    /// Merged streams: the next offset of every partition after this record.
    pub progress: Option<Arc<Progress>>,
}

/// Flush extension: the stream caught up with what the brokers had.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KafkaFlushEx {
    /// The next offset of every partition of the stream.
    pub progress: Arc<Progress>,
}

/// Flush extension from a cache: records of a partition were evicted before this reader
/// read them, so it skipped from `from` to `to` (the oldest offset still held).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KafkaGapEx {
    /// The partition.
    pub partition: i32,
    /// The offset the reader was at.
    pub from: i64,
    /// Where it continues.
    pub to: i64,
}

/// Why a Kafka stream was refused or stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KafkaResetEx {
    /// The topic does not exist.
    UnknownTopic {
        /// The topic.
        topic: String,
    },
    /// The start offset is outside what the partition holds.
    OffsetOutOfRange {
        /// The partition.
        partition: i32,
        /// The offset asked for.
        requested: i64,
        /// The first offset the partition holds.
        earliest: i64,
        /// The offset after its last record.
        latest: i64,
    },
    /// Another Kafka error code.
    Error {
        /// The Kafka error code.
        code: i16,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, value: Option<&str>) -> KafkaHeader {
        KafkaHeader {
            name: Bytes::copy_from_slice(name.as_bytes()),
            value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
        }
    }

    #[test]
    fn headers_read_as_a_slice_and_no_headers_share_nothing() {
        let none = KafkaHeaders::from(Vec::new());
        assert_eq!(none, KafkaHeaders::default());
        assert!(none.is_empty());
        let two = KafkaHeaders::from(vec![header("a", Some("1")), header("a", None)]);
        let shared = two.clone();
        assert_eq!(&shared[..], &[header("a", Some("1")), header("a", None)]);
        assert!(matches!((&two.0, &shared.0), (Some(a), Some(b)) if Arc::ptr_eq(a, b)));
    }

    #[test]
    fn filters_or_of_ands() {
        let key_a = Filter {
            conditions: vec![Condition::Key(Bytes::from_static(b"a"))],
        };
        let h = Filter {
            conditions: vec![
                Condition::Key(Bytes::from_static(b"b")),
                Condition::Header {
                    name: Bytes::from_static(b"x"),
                    value: Bytes::from_static(b"1"),
                },
            ],
        };
        let filters = [key_a, h];
        assert!(matches_any(&filters, Some(b"a"), &[]));
        assert!(!matches_any(&filters, Some(b"b"), &[]));
        let headers = [header("x", None), header("x", Some("1"))];
        assert!(matches_any(&filters, Some(b"b"), &headers));
        assert!(!matches_any(&filters, None, &headers));
        assert!(matches_any(&[], None, &[]));
    }

    #[test]
    fn progress_sorted() {
        let mut p = Progress::default();
        p.set(3, 10);
        p.set(1, 5);
        p.set(3, 11);
        assert_eq!(p.partitions, vec![(1, 5), (3, 11)]);
        assert_eq!(p.get(3), Some(11));
        assert_eq!(p.get(2), None);
    }

    #[test]
    fn start_of_defaults() {
        let begin = KafkaMergedBeginEx {
            topic: "t".into(),
            partitions: vec![(2, StartPosition::Offset(7))],
            default_start: StartPosition::Latest,
            ..Default::default()
        };
        assert_eq!(begin.start_of(2), StartPosition::Offset(7));
        assert_eq!(begin.start_of(0), StartPosition::Latest);
    }
}

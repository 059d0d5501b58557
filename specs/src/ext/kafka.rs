//! The `kafka` extensions in scenarios: merged streams and their replies (begin), records
//! (data), caught-up and gap flushes, refusals.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use binding_api::ext::kafka::{
    Condition, Filter, KafkaBeginEx, KafkaDataEx, KafkaFlushEx, KafkaGapEx, KafkaHeader,
    KafkaMergedBeginEx, KafkaRecordEx, KafkaReplyBeginEx, Progress, StartPosition,
};
use binding_api::ext::{DataEx, FlushEx};
use bytes::Bytes;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

/// A start position: an offset, `earliest`, `latest` or `timestamp:MS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Start(pub StartPosition);

impl<'de> Deserialize<'de> for Start {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Start;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an offset, earliest, latest or timestamp:MS")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Start, E> {
                Ok(Start(StartPosition::Offset(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Start, E> {
                i64::try_from(v)
                    .map(|v| Start(StartPosition::Offset(v)))
                    .map_err(|_| E::custom("offset too large"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Start, E> {
                match v {
                    "earliest" => Ok(Start(StartPosition::Earliest)),
                    "latest" => Ok(Start(StartPosition::Latest)),
                    _ => v
                        .strip_prefix("timestamp:")
                        .and_then(|t| t.parse().ok())
                        .map(|t| Start(StartPosition::Timestamp(t)))
                        .or_else(|| v.parse().ok().map(|o| Start(StartPosition::Offset(o))))
                        .ok_or_else(|| E::custom(format!("'{v}' is not a start position"))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// One filter: the conditions, AND-ed.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KafkaFilter {
    /// The key equals this text.
    pub key: Option<String>,
    /// Header name → value, each present.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// `kafka: {merged: ...}`: a merged stream to open, or to match on accept.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KafkaMerged {
    /// The topic.
    pub topic: Option<String>,
    /// Where partitions not listed start.
    pub start: Option<Start>,
    /// Partition → start.
    #[serde(default)]
    pub partitions: BTreeMap<i32, Start>,
    /// Filters, OR-ed.
    #[serde(default)]
    pub filters: Vec<KafkaFilter>,
}

/// `kafka: {reply: ...}`: the reply begin.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KafkaReply {
    /// The topic.
    pub topic: Option<String>,
    /// The partitions.
    pub partitions: Option<Vec<i32>>,
}

/// `kafka:` on a begin.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KafkaBegin {
    /// A merged stream.
    pub merged: Option<KafkaMerged>,
    /// A reply.
    pub reply: Option<KafkaReply>,
}

impl KafkaBegin {
    /// The extension to send.
    pub fn build(&self) -> Result<KafkaBeginEx, String> {
        match (&self.merged, &self.reply) {
            (Some(m), None) => Ok(KafkaBeginEx::Merged(KafkaMergedBeginEx {
                topic: m.topic.clone().unwrap_or_default(),
                partitions: m.partitions.iter().map(|(p, s)| (*p, s.0)).collect(),
                default_start: m.start.map_or(StartPosition::Earliest, |s| s.0),
                filters: m.filters.iter().map(filter).collect(),
                ..Default::default()
            })),
            (None, Some(r)) => Ok(KafkaBeginEx::Reply(KafkaReplyBeginEx {
                topic: r.topic.clone().unwrap_or_default(),
                partitions: r.partitions.clone().unwrap_or_default(),
            })),
            _ => Err("a kafka begin names one of merged or reply".to_owned()),
        }
    }

    /// Whether `got` has every field given.
    pub fn check(&self, got: &KafkaBeginEx) -> Result<(), String> {
        match (&self.merged, &self.reply, got) {
            (Some(want), _, KafkaBeginEx::Merged(got)) => {
                if let Some(t) = &want.topic
                    && *t != got.topic
                {
                    return Err(format!("kafka topic is '{}', expected '{t}'", got.topic));
                }
                if let Some(s) = want.start
                    && s.0 != got.default_start
                {
                    return Err(format!(
                        "kafka start is {:?}, expected {:?}",
                        got.default_start, s.0
                    ));
                }
                for (p, s) in &want.partitions {
                    if got.start_of(*p) != s.0 {
                        return Err(format!(
                            "kafka partition {p} starts at {:?}, expected {:?}",
                            got.start_of(*p),
                            s.0
                        ));
                    }
                }
                Ok(())
            }
            (_, Some(want), KafkaBeginEx::Reply(got)) => {
                if let Some(t) = &want.topic
                    && *t != got.topic
                {
                    return Err(format!("kafka topic is '{}', expected '{t}'", got.topic));
                }
                if let Some(p) = &want.partitions
                    && *p != got.partitions
                {
                    return Err(format!(
                        "kafka partitions are {:?}, expected {p:?}",
                        got.partitions
                    ));
                }
                Ok(())
            }
            (None, None, _) => Ok(()),
            _ => Err(format!("kafka begin is {got:?}, expected {self:?}")),
        }
    }
}

fn filter(f: &KafkaFilter) -> Filter {
    let text = |s: &str| Bytes::copy_from_slice(s.as_bytes());
    let mut conditions: Vec<Condition> = f.key.iter().map(|k| Condition::Key(text(k))).collect();
    conditions.extend(f.headers.iter().map(|(n, v)| Condition::Header {
        name: text(n),
        value: text(v),
    }));
    Filter { conditions }
}

/// `kafka:` as the `ext` of a data frame (a record) or a flush (caught up, or a gap).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KafkaFrame {
    /// The record's partition.
    pub partition: Option<i32>,
    /// The record's offset.
    pub offset: Option<i64>,
    /// The record's key (text).
    pub key: Option<String>,
    /// The record's timestamp, when sending.
    pub timestamp: Option<i64>,
    /// Partition → next offset: a record's progress, or a caught-up flush's.
    pub progress: Option<BTreeMap<i32, i64>>,
    /// A gap flush: `[from, to]` of `partition`.
    pub gap: Option<[i64; 2]>,
    /// The record's headers, in name order (name → text value).
    pub headers: Option<BTreeMap<String, String>>,
    /// `true`: the record is a tombstone (null value); the data must be empty.
    pub tombstone: Option<bool>,
    /// The value's whole length, when this first frame carries only its beginning.
    #[serde(rename = "value-length")]
    pub value_length: Option<u32>,
    /// `true`: more bytes of the previous record's value, not a record of its own.
    pub continuation: Option<bool>,
}

impl KafkaFrame {
    fn progress(&self) -> Option<Arc<Progress>> {
        self.progress.as_ref().map(|p| {
            Arc::new(Progress {
                partitions: p.iter().map(|(k, v)| (*k, *v)).collect(),
            })
        })
    }

    /// A record's first frame carrying `len` bytes of value (or a continuation frame).
    pub fn data(&self, len: usize) -> DataEx {
        if self.continuation == Some(true) {
            return DataEx::Kafka(KafkaDataEx::Continuation);
        }
        let value_len = match (self.tombstone, self.value_length) {
            (Some(true), _) => None,
            (_, Some(total)) => Some(total),
            _ => Some(u32::try_from(len).unwrap_or(u32::MAX)),
        };
        let headers = self
            .headers
            .iter()
            .flatten()
            .map(|(name, value)| KafkaHeader {
                name: Bytes::copy_from_slice(name.as_bytes()),
                value: Some(Bytes::copy_from_slice(value.as_bytes())),
            })
            .collect();
        let partition = self.partition.unwrap_or(0);
        let offset = self.offset.unwrap_or(0);
        DataEx::Kafka(KafkaDataEx::Record(KafkaRecordEx {
            partition,
            offset,
            timestamp: self.timestamp.unwrap_or(offset),
            key: self
                .key
                .as_ref()
                .map(|k| Bytes::copy_from_slice(k.as_bytes())),
            headers,
            value_len,
            high_watermark: offset + 1,
            progress: self.progress(),
        }))
    }

    /// A caught-up flush (or a gap flush, with `gap`).
    pub fn flush(&self) -> FlushEx {
        match self.gap {
            Some([from, to]) => FlushEx::KafkaGap(KafkaGapEx {
                partition: self.partition.unwrap_or(0),
                from,
                to,
            }),
            None => FlushEx::Kafka(KafkaFlushEx {
                progress: self.progress().unwrap_or_default(),
            }),
        }
    }

    /// Whether a received data frame is a record with every field given.
    pub fn check_data(&self, got: &DataEx) -> Result<(), String> {
        if self.continuation == Some(true) {
            return match got {
                DataEx::Kafka(KafkaDataEx::Continuation) => Ok(()),
                other => Err(format!("expected a kafka continuation, got {other:?}")),
            };
        }
        let DataEx::Kafka(KafkaDataEx::Record(got)) = got else {
            return Err(format!("expected a kafka record, got {got:?}"));
        };
        let key = got
            .key
            .as_ref()
            .map(|k| String::from_utf8_lossy(k).into_owned());
        let progress: Option<BTreeMap<i32, i64>> = got
            .progress
            .as_ref()
            .map(|p| p.partitions.iter().copied().collect());
        if self.partition.is_some_and(|p| p != got.partition)
            || self.offset.is_some_and(|o| o != got.offset)
            || (self.key.is_some() && self.key != key)
            || (self.progress.is_some() && self.progress != progress)
            || self.tombstone.is_some_and(|t| t != got.value_len.is_none())
        {
            return Err(format!(
                "kafka record is partition {} offset {} key {key:?} progress {progress:?}, expected {self:?}",
                got.partition, got.offset
            ));
        }
        Ok(())
    }

    /// Whether a received flush has every field given.
    pub fn check_flush(&self, got: &FlushEx) -> Result<(), String> {
        match (self.gap, got) {
            (Some([from, to]), FlushEx::KafkaGap(g))
                if g.from == from
                    && g.to == to
                    && self.partition.is_none_or(|p| p == g.partition) =>
            {
                Ok(())
            }
            (None, FlushEx::Kafka(f)) => {
                let progress: BTreeMap<i32, i64> = f.progress.partitions.iter().copied().collect();
                match &self.progress {
                    Some(want) if *want != progress => Err(format!(
                        "kafka flush progress is {progress:?}, expected {want:?}"
                    )),
                    _ => Ok(()),
                }
            }
            _ => Err(format!(
                "flush extension is {got:?}, expected kafka {self:?}"
            )),
        }
    }
}

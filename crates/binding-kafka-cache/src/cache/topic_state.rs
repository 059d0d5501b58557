//! A topic's state as its upstream streams change it, sans-IO: no tokio, no clock (times are
//! passed in, milliseconds on the cache's scale). The upstream task locks the topic, feeds
//! [`TopicState::apply`] a batch of frames, unlocks, then does what the [`Effects`] say:
//! raise the signals of the parked subscribers a record matched, count the bytes the logs
//! grew by, run retention, reopen or give up on a stream that ended.
//!
//! - The merged stream's begin gives the topic's partitions: the topic is ready.
//! - A record's first frame carries its [`KafkaRecordEx`]; a value longer than that frame
//!   continues in continuation frames and is appended once whole. A record below the end of
//!   its log (read again after a reopen) is not appended twice.
//! - The caught-up flush moves every log to its next offset and marks it live; a partition
//!   that appears later starts live.
//! - The describe stream's configs set the retention in force, to run at once.
//! - An end, or an abort once the stream began, loses the stream (it is reopened from where
//!   each log ends, [`TopicState::open_merged`]); an abort before the begin is a refusal.

use std::collections::BTreeMap;
use std::sync::Arc;

use binding_api::ext::kafka::{
    Isolation, KafkaBeginEx, KafkaConfigsEx, KafkaDataEx, KafkaMergedBeginEx, KafkaRecordEx,
    Progress, StartPosition,
};
use binding_api::ext::{BeginEx, DataEx, FlushEx};
use binding_api::frame::{Data, Flush, Frame, Reset};
use bytes::{Bytes, BytesMut};

use crate::config::{DefaultOffset, TopicOptions};
use crate::log::{CachedRecord, PartitionLog, Retention};
use crate::signal::Signal;
use crate::wake::WakeIndex;

/// How often retention runs (and the upstream checks whether its topic is idle).
pub const EVICT_EVERY_MS: u64 = 1000;

/// Where a topic stands.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    /// Waiting for the upstream stream to begin.
    Starting,
    /// Partitions known; records flow.
    Ready,
    /// Kafka refused the topic; subscribers are refused the same way.
    Refused(Reset),
}

/// A frame from one of the topic's two upstream streams.
#[derive(Debug)]
pub enum Upstream {
    /// From the merged stream: partitions, records, the caught-up flush, its end.
    Merged(Frame),
    /// From the describe stream: the topic's Kafka config.
    Describe(Frame),
}

/// What the upstream task does, once the topic's lock is released, for the frames applied.
#[derive(Debug, Default)]
pub struct Effects {
    /// Parked subscribers a record matched: raise their signals.
    pub woken: Vec<Arc<Signal>>,
    /// Records appended.
    pub appended: u64,
    /// Bytes the logs grew by (the cache's count of bytes held grows as much).
    pub grown: u64,
    /// The merged stream delivered: a record, or the caught-up flush.
    pub delivered: bool,
    /// The retention in force changed: run it now rather than at the next tick.
    pub retention_changed: bool,
    /// The merged stream is over, and how.
    pub ended: Option<StreamEnd>,
}

/// What a topic holds now, summed over its partitions (what its metrics report).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Records held.
    pub records: u64,
    /// Bytes held.
    pub bytes: u64,
    /// Records the broker has past each log's end ([`PartitionLog::lag`]).
    pub lag: i64,
}

/// How the merged stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// It ended, or aborted after it began: read again from where each log ends.
    Lost,
    /// It aborted before it began: Kafka refused it (its initial direction's reset says why).
    Refused,
}

/// A record whose value is still arriving in continuation frames.
#[derive(Debug)]
struct Partial {
    ex: KafkaRecordEx,
    value: BytesMut,
    len: usize,
}

/// What the merged stream being read has brought so far.
#[derive(Debug, Default)]
struct MergedStream {
    began: bool,
    partial: Option<Partial>,
}

/// A topic's logs and status, under the topic's lock.
#[derive(Debug)]
pub struct TopicState {
    /// Where the topic stands.
    pub status: Status,
    /// One log per partition.
    pub partitions: BTreeMap<i32, PartitionLog>,
    /// The retention in force (options over the topic's Kafka config).
    pub retention: Retention,
    /// The topic's Kafka config, once a describe stream gave it.
    pub configs: Option<KafkaConfigsEx>,
    /// Caught-up filtered subscribers, woken only by records that match them.
    pub(crate) parked: WakeIndex<Arc<Signal>>,
    options: TopicOptions,
    /// When retention last ran; 0 when it is to run at once.
    last_evict: u64,
    /// The upstream caught up once: partitions that appear later start live.
    live: bool,
    merged: MergedStream,
}

impl TopicState {
    /// A topic not read yet: starting, no partition, under the retention `options` give.
    pub fn new(options: TopicOptions) -> Self {
        TopicState {
            status: Status::Starting,
            partitions: BTreeMap::new(),
            retention: options.retention(None),
            configs: None,
            parked: WakeIndex::default(),
            options,
            last_evict: 0,
            live: false,
            merged: MergedStream::default(),
        }
    }

    /// The begin of a new merged stream: every started log from where it ends, the others by
    /// the topic's default offset. What the previous stream left half-delivered is dropped.
    pub fn open_merged(&mut self) -> KafkaMergedBeginEx {
        self.merged = MergedStream::default();
        KafkaMergedBeginEx {
            topic: self.options.name.clone(),
            partitions: self
                .partitions
                .iter()
                .filter(|(_, log)| log.start().is_some())
                .map(|(p, log)| (*p, StartPosition::Offset(log.end())))
                .collect(),
            default_start: match self.options.default_offset {
                DefaultOffset::Historical => StartPosition::Earliest,
                DefaultOffset::Live => StartPosition::Latest,
            },
            filters: Vec::new(),
            isolation: Isolation::ReadCommitted,
        }
    }

    /// Applies one upstream frame received at `now`, noting in `effects` what is to be done
    /// once the lock is released.
    pub fn apply(&mut self, frame: Upstream, now: u64, effects: &mut Effects) {
        match frame {
            Upstream::Merged(frame) => self.apply_merged(frame, now, effects),
            Upstream::Describe(Frame::Data(Data {
                ext: DataEx::Kafka(KafkaDataEx::Configs(configs)),
                ..
            })) => {
                self.configure(configs);
                effects.retention_changed = true;
            }
            Upstream::Describe(_) => {}
        }
    }

    /// What the topic holds now, over every partition.
    pub fn totals(&self) -> Totals {
        self.partitions
            .values()
            .fold(Totals::default(), |totals, log| Totals {
                records: totals.records + log.len() as u64,
                bytes: totals.bytes + log.bytes(),
                lag: totals.lag.saturating_add(log.lag()),
            })
    }

    /// Runs retention on every log when it is due at `now` (every [`EVICT_EVERY_MS`], and at
    /// once after the retention changed); returns the bytes freed.
    pub fn apply_retention(&mut self, now: u64) -> u64 {
        if self.last_evict != 0 && now.saturating_sub(self.last_evict) < EVICT_EVERY_MS {
            return 0;
        }
        self.last_evict = now.max(1);
        self.partitions.values_mut().map(|log| log.evict(now)).sum()
    }

    fn apply_merged(&mut self, frame: Frame, now: u64, effects: &mut Effects) {
        match frame {
            Frame::Begin(begin) => {
                if let BeginEx::Kafka(KafkaBeginEx::Reply(reply)) = begin.ext {
                    let retention = self.retention;
                    for p in reply.partitions {
                        self.partitions
                            .entry(p)
                            .or_insert_with(|| PartitionLog::new(retention));
                    }
                }
                self.status = Status::Ready;
                self.merged.began = true;
            }
            Frame::Data(data) => match data.ext {
                DataEx::Kafka(KafkaDataEx::Record(ex)) => {
                    effects.delivered = true;
                    self.first_frame(ex, data.payload, now, effects);
                }
                DataEx::Kafka(KafkaDataEx::Continuation) => {
                    self.continuation(&data.payload, now, effects);
                }
                _ => {}
            },
            Frame::Flush(Flush {
                ext: FlushEx::Kafka(flush),
            }) => {
                effects.delivered = true;
                self.caught_up(&flush.progress);
            }
            Frame::Flush(_) => {}
            Frame::End(_) => effects.ended = Some(StreamEnd::Lost),
            Frame::Abort(_) => {
                effects.ended = Some(if self.merged.began {
                    StreamEnd::Lost
                } else {
                    StreamEnd::Refused
                });
            }
        }
    }

    /// Applies the topic's Kafka config: the retention in force becomes the options over it,
    /// for what is held already too, and runs at the next [`TopicState::apply_retention`].
    fn configure(&mut self, configs: KafkaConfigsEx) {
        self.retention = self.options.retention(Some(&configs));
        self.configs = Some(configs);
        for log in self.partitions.values_mut() {
            log.set_retention(self.retention);
        }
        self.last_evict = 0;
    }

    /// A record's first frame: appended when it holds the whole value, else kept until the
    /// continuation frames complete it.
    fn first_frame(&mut self, ex: KafkaRecordEx, payload: Bytes, now: u64, effects: &mut Effects) {
        let len = ex.value_len.map_or(0, |l| l as usize);
        if payload.len() >= len {
            self.append(ex, payload, now, effects);
        } else {
            let mut value = BytesMut::with_capacity(payload.len());
            value.extend_from_slice(&payload);
            self.merged.partial = Some(Partial { ex, value, len });
        }
    }

    /// More of the value of the record kept by [`TopicState::first_frame`]; appended once
    /// whole.
    fn continuation(&mut self, payload: &[u8], now: u64, effects: &mut Effects) {
        let Some(mut partial) = self.merged.partial.take() else {
            return;
        };
        partial.value.extend_from_slice(payload);
        if partial.value.len() >= partial.len {
            self.append(partial.ex, partial.value.freeze(), now, effects);
        } else {
            self.merged.partial = Some(partial);
        }
    }

    /// Appends one whole record to its partition's log, and notes it for the parked
    /// subscribers it matches.
    fn append(&mut self, ex: KafkaRecordEx, value: Bytes, now: u64, effects: &mut Effects) {
        let (retention, live) = (self.retention, self.live);
        let log = self.partitions.entry(ex.partition).or_insert_with(|| {
            // A partition the topic gained after the upstream caught up.
            let mut log = PartitionLog::new(retention);
            if live {
                log.set_live();
            }
            log
        });
        log.note_high_watermark(ex.high_watermark);
        if ex.offset >= log.end() {
            self.parked.append(
                ex.partition,
                ex.offset,
                ex.key.as_ref(),
                &ex.headers,
                &mut effects.woken,
            );
        }
        let record = CachedRecord {
            offset: ex.offset,
            timestamp: ex.timestamp,
            key: ex.key,
            headers: ex.headers,
            value: ex.value_len.map(|_| value),
        };
        let held = log.bytes();
        if log.append(record, now).is_ok() {
            effects.appended += 1;
            // An append only adds.
            effects.grown += log.bytes() - held;
        }
        if let Some(progress) = &ex.progress
            && let Some(next) = progress.get(ex.partition)
        {
            log.advance(next);
        }
    }

    /// The upstream caught up with Kafka: every log moves to its next offset and is live.
    fn caught_up(&mut self, progress: &Progress) {
        self.live = true;
        for (p, next) in &progress.partitions {
            if let Some(log) = self.partitions.get_mut(p) {
                log.advance(*next);
                log.set_live();
            }
        }
    }
}

#[cfg(test)]
mod tests;

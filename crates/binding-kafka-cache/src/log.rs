//! The cache log of one topic-partition, sans-IO: no tokio, no clock (times are passed in,
//! milliseconds on any monotonic scale).
//!
//! Records are kept as received, behind an [`Arc`]: a reader gets a reference, never a copy,
//! and the value is the [`Bytes`] slice of the fetch response it came in. They sit in
//! segments (a base offset, the records in offset order, their size and append times);
//! retention drops whole segments from the front, by age and by size, as Kafka does, and the
//! cache's global cap may drop the oldest segment of any partition, the open one included.
//!
//! A [`Cursor`] is a reader's position. [`PartitionLog::read`] returns the next record that
//! passes the reader's filters (evaluated here, at read time), or tells the reader that it
//! fell behind the retained range ([`Read::Gap`]) and moves it to the oldest retained offset.
//! A reader whose filters all require a key reads only the records of its keys, found in
//! each segment's key index ([`crate::key_index`]), not every record in between.
//!
//! Compacted topics (`cleanup.policy` with `compact`) keep an index of the newest offset of
//! each key and compact as Kafka does, never the newest segment: a record is *compacted* once
//! a newer record of its key exists and it lies below the log's compaction horizon, the base
//! of the newest segment that was opened at least [`COMPACTION_LAG_MS`] before the last
//! [`PartitionLog::evict`] (so every record below it sat in a closed segment for that long).
//! Readers skip compacted records and eviction drops them: the same set. Everything from the
//! horizon on is read as appended, so a reader within [`COMPACTION_LAG_MS`] of the log's end
//! gets every record, and a late reader gets the newest record per key up to the horizon,
//! then every record. Tombstones (null values) below the horizon are kept for
//! `delete.retention.ms`, then removed with their key.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use binding_api::ext::kafka::{Filter, KafkaHeaders, StartPosition, matches_any};
use bytes::Bytes;

use crate::key_index::{SegmentKeys, key_hashes};

/// Bytes counted for a record beyond its key, value and headers (bookkeeping).
pub const RECORD_OVERHEAD: u64 = 96;

/// Records a single [`PartitionLog::read`] may skip before it returns [`Read::Yield`], so
/// that a filter matching nothing does not hold the log for long.
pub const MAX_SCAN: usize = 4096;

/// How long a segment stays closed before its records may be compacted: a reader that far
/// behind the newest segment (a slow subscriber, records appended in one batch across a
/// segment roll) still gets every record.
pub const COMPACTION_LAG_MS: u64 = 10_000;

/// One record as the cache keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedRecord {
    /// Its offset.
    pub offset: i64,
    /// Its timestamp (milliseconds since the epoch).
    pub timestamp: i64,
    /// Its key.
    pub key: Option<Bytes>,
    /// Its headers.
    pub headers: KafkaHeaders,
    /// Its value; `None` for a tombstone.
    pub value: Option<Bytes>,
}

impl CachedRecord {
    /// The bytes this record is counted for.
    pub fn size(&self) -> u64 {
        let len = |b: &Option<Bytes>| b.as_ref().map_or(0, |b| b.len() as u64);
        let headers: u64 = self
            .headers
            .iter()
            .map(|h| h.name.len() as u64 + len(&h.value))
            .sum();
        RECORD_OVERHEAD + len(&self.key) + len(&self.value) + headers
    }
}

/// How long and how much a partition keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Drop segments whose newest record was appended this long ago (`None`: never).
    pub time_ms: Option<u64>,
    /// Drop the oldest segments while the partition holds more than this (`None`: no bound
    /// but the cache's global cap).
    pub bytes: Option<u64>,
    /// Start a new segment past this size.
    pub segment_bytes: u64,
    /// Start a new segment when the open one is this old.
    pub segment_ms: u64,
    /// `cleanup.policy` includes `compact`.
    pub compact: bool,
    /// `cleanup.policy` includes `delete` (time and size retention apply).
    pub delete: bool,
    /// How long a tombstone stays on a compacted topic.
    pub delete_retention_ms: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            time_ms: Some(7 * 24 * 3600 * 1000),
            bytes: None,
            segment_bytes: 1024 * 1024,
            segment_ms: 60 * 1000,
            compact: false,
            delete: true,
            delete_retention_ms: 24 * 3600 * 1000,
        }
    }
}

#[derive(Debug)]
struct Entry {
    record: Arc<CachedRecord>,
    appended_at: u64,
}

#[derive(Debug)]
struct Segment {
    base: i64,
    entries: Vec<Entry>,
    /// Where each key's records are among `entries`.
    keys: SegmentKeys,
    bytes: u64,
    opened_at: u64,
    last_at: u64,
}

/// A reader's position in a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    start: StartPosition,
    next: Option<i64>,
}

impl Cursor {
    /// A cursor that starts at `start` once the log knows where it begins.
    pub fn new(start: StartPosition) -> Self {
        Cursor { start, next: None }
    }

    /// The next offset this cursor reads, once resolved.
    pub fn next(&self) -> Option<i64> {
        self.next
    }

    /// Moves a resolved cursor forward to `offset` (never back); whether it moved.
    pub fn skip_to(&mut self, offset: i64) -> bool {
        match self.next {
            Some(next) if next < offset => {
                self.next = Some(offset);
                true
            }
            _ => false,
        }
    }
}

/// What a read gives.
#[derive(Clone, Debug, PartialEq)]
pub enum Read {
    /// The next record for this reader.
    Record(Arc<CachedRecord>),
    /// The records `from..to` are no longer retained; the cursor moved to `to`.
    Gap {
        /// The offset the cursor was at.
        from: i64,
        /// The oldest retained offset, where it is now.
        to: i64,
    },
    /// The cursor is past the newest offset of a live log: offsets that were never written
    /// (a topic deleted and recreated, a forged id) or not fetched yet (another proxy's id).
    Ahead {
        /// Where the cursor is.
        next: i64,
    },
    /// Many records were skipped (filters, compaction); read again.
    Yield,
    /// Nothing more until something is appended.
    Empty,
}

/// Why an append was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The record's offset is below the end of the log: it was appended already.
    #[error("offset {offset} is below the end of the log ({end})")]
    Behind {
        /// The record's offset.
        offset: i64,
        /// The log's end.
        end: i64,
    },
}

/// The cached records of one topic-partition.
#[derive(Debug)]
pub struct PartitionLog {
    retention: Retention,
    segments: VecDeque<Segment>,
    /// Oldest retained offset; `None` until the upstream said where it starts.
    start: Option<i64>,
    /// The offset after the last record (or the upstream's next offset, if larger).
    end: i64,
    bytes: u64,
    live: bool,
    /// The broker's high watermark as the upstream last reported it: where "latest" is while
    /// the log is still catching up.
    high_watermark: Option<i64>,
    newest_by_key: HashMap<Bytes, i64>,
    /// Records below this offset may be compacted (the compaction horizon).
    compacted_below: i64,
}

impl PartitionLog {
    /// An empty log, not yet started.
    pub fn new(retention: Retention) -> Self {
        PartitionLog {
            retention,
            segments: VecDeque::new(),
            start: None,
            end: 0,
            bytes: 0,
            live: false,
            high_watermark: None,
            newest_by_key: HashMap::new(),
            compacted_below: 0,
        }
    }

    /// The oldest retained offset, once known.
    pub fn start(&self) -> Option<i64> {
        self.start
    }

    /// The offset after the newest record.
    pub fn end(&self) -> i64 {
        self.end
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.segments.iter().map(|s| s.entries.len()).sum()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.segments.iter().all(|s| s.entries.is_empty())
    }

    /// Whether the upstream caught up with the broker at least once.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// The retention in force.
    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// Changes the retention (the topic's Kafka config became known, or changed). Turning
    /// compaction on indexes the keys already held; the next [`PartitionLog::evict`] applies
    /// the rest.
    pub fn set_retention(&mut self, retention: Retention) {
        if retention.compact && !self.retention.compact {
            self.newest_by_key = self
                .segments
                .iter()
                .flat_map(|s| &s.entries)
                .filter_map(|e| Some((e.record.key.clone()?, e.record.offset)))
                .collect();
        } else if !retention.compact {
            self.newest_by_key = HashMap::new();
        }
        self.retention = retention;
    }

    /// Notes the broker's high watermark, as a fetched record reports it.
    pub fn note_high_watermark(&mut self, high_watermark: i64) {
        self.high_watermark = Some(
            self.high_watermark
                .map_or(high_watermark, |h| h.max(high_watermark)),
        );
    }

    /// Records the broker has that the log does not yet: the high watermark last reported
    /// less the log's end (0 before any was reported).
    pub fn lag(&self) -> i64 {
        self.high_watermark
            .map_or(0, |high| high.saturating_sub(self.end).max(0))
    }

    /// Marks the upstream caught up.
    pub fn set_live(&mut self) {
        self.live = true;
    }

    /// Moves the end to `next` (records between were filtered upstream: aborted, control).
    /// The first call, or the first append, fixes where the log starts.
    pub fn advance(&mut self, next: i64) {
        if self.start.is_none() {
            self.start = Some(next);
            self.end = next;
        }
        self.end = self.end.max(next);
    }

    /// Appends a record received from upstream at `now`.
    pub fn append(&mut self, record: CachedRecord, now: u64) -> Result<(), AppendError> {
        if self.start.is_some() && record.offset < self.end {
            return Err(AppendError::Behind {
                offset: record.offset,
                end: self.end,
            });
        }
        self.advance(record.offset);
        let size = record.size();
        let roll = self.segments.back().is_none_or(|s| {
            s.bytes >= self.retention.segment_bytes
                || now.saturating_sub(s.opened_at) >= self.retention.segment_ms
        });
        if roll {
            self.segments.push_back(Segment {
                base: record.offset,
                entries: Vec::new(),
                keys: SegmentKeys::default(),
                bytes: 0,
                opened_at: now,
                last_at: now,
            });
        }
        if self.retention.compact
            && let Some(key) = &record.key
        {
            self.newest_by_key.insert(key.clone(), record.offset);
        }
        self.end = record.offset + 1;
        self.bytes += size;
        if let Some(segment) = self.segments.back_mut() {
            segment.bytes += size;
            segment.last_at = now;
            segment
                .keys
                .add(record.key.as_deref(), segment.entries.len());
            segment.entries.push(Entry {
                record: Arc::new(record),
                appended_at: now,
            });
        }
        Ok(())
    }

    /// Applies retention at `now`: drops expired and excess segments, and on compacted topics
    /// moves the compaction horizon and drops compacted records and expired tombstones below
    /// it. Returns the bytes freed.
    pub fn evict(&mut self, now: u64) -> u64 {
        let before = self.bytes;
        if self.retention.delete {
            while self.segments.len() > 1 {
                let expired = self.segments.front().is_some_and(|s| {
                    self.retention
                        .time_ms
                        .is_some_and(|t| now.saturating_sub(s.last_at) >= t)
                });
                let excess = self.retention.bytes.is_some_and(|b| self.bytes > b);
                if !(expired || excess) {
                    break;
                }
                self.drop_front();
            }
        }
        if self.retention.compact {
            self.compact(now);
        }
        before - self.bytes
    }

    /// When the oldest segment was last appended to, if any is held.
    pub fn oldest_at(&self) -> Option<u64> {
        self.segments.front().map(|s| s.last_at)
    }

    /// Drops the oldest segment, even the open one (the cache's cap). Returns the bytes freed.
    pub fn evict_oldest(&mut self) -> u64 {
        let before = self.bytes;
        self.drop_front();
        before - self.bytes
    }

    fn drop_front(&mut self) {
        let Some(segment) = self.segments.pop_front() else {
            return;
        };
        self.bytes -= segment.bytes;
        for entry in &segment.entries {
            if let Some(key) = &entry.record.key
                && self.newest_by_key.get(key) == Some(&entry.record.offset)
            {
                self.newest_by_key.remove(key);
            }
        }
        let last = segment
            .entries
            .last()
            .map_or(segment.base, |e| e.record.offset);
        let next = self.segments.front().map_or(self.end, |s| s.base);
        self.start = Some(next.max(last + 1).min(self.end));
    }

    fn compact(&mut self, now: u64) {
        if let Some(sealed) = self
            .segments
            .iter()
            .rev()
            .find(|s| now.saturating_sub(s.opened_at) >= COMPACTION_LAG_MS)
        {
            self.compacted_below = self.compacted_below.max(sealed.base);
        }
        let horizon = self.compacted_below;
        let delete_after = self.retention.delete_retention_ms;
        let newest = &mut self.newest_by_key;
        let mut freed = 0;
        // The horizon is a segment's base: the segments before it lie wholly below it.
        for segment in self.segments.iter_mut().take_while(|s| s.base < horizon) {
            let before = segment.entries.len();
            segment.entries.retain(|e| {
                let Some(key) = &e.record.key else {
                    return true;
                };
                let keep = match newest.get(key) {
                    Some(&n) if n > e.record.offset => false,
                    Some(_) if e.record.value.is_none() => {
                        let expired = now.saturating_sub(e.appended_at) >= delete_after;
                        if expired {
                            newest.remove(key);
                        }
                        !expired
                    }
                    _ => true,
                };
                if !keep {
                    let size = e.record.size();
                    segment.bytes -= size;
                    freed += size;
                }
                keep
            });
            if segment.entries.len() < before {
                let keys = segment.entries.iter().map(|e| e.record.key.as_deref());
                segment.keys.rebuild(keys);
            }
        }
        self.bytes -= freed;
    }

    /// Where a cursor starting at `start` begins, once the log has started. While the log is
    /// still catching up with the broker, "latest" is the broker's high watermark (unknown
    /// until a record reports it: the cursor waits), and a time no record reached yet waits.
    fn resolve(&self, start: StartPosition) -> Option<i64> {
        let first = self.start?;
        let latest = self.latest();
        match start {
            StartPosition::Offset(o) => Some(o),
            StartPosition::Earliest => Some(first),
            StartPosition::Latest => latest,
            StartPosition::Timestamp(t) => self
                .segments
                .iter()
                .flat_map(|s| &s.entries)
                .find(|e| e.record.timestamp >= t)
                .map(|e| e.record.offset)
                .or(if self.live { Some(self.end) } else { None }),
        }
    }

    /// The offset after the broker's newest record, as far as the log knows: its end once
    /// live, the high watermark the upstream reported while catching up.
    pub fn latest(&self) -> Option<i64> {
        if self.live {
            Some(self.end.max(self.high_watermark.unwrap_or(0)))
        } else {
            self.high_watermark.map(|h| h.max(self.end))
        }
    }

    /// The first entry at or after `offset`.
    fn locate(&self, offset: i64) -> Option<&Entry> {
        let seg = self.segments.partition_point(|s| s.base <= offset);
        let from = seg.saturating_sub(1);
        self.segments.range(from..).find_map(|s| {
            let i = s.entries.partition_point(|e| e.record.offset < offset);
            s.entries.get(i)
        })
    }

    /// The first entry at or after `offset` whose key hash is one of `hashes`.
    fn locate_keyed(&self, offset: i64, hashes: &[u64]) -> Option<&Entry> {
        let seg = self.segments.partition_point(|s| s.base <= offset);
        let from = seg.saturating_sub(1);
        self.segments.range(from..).find_map(|s| {
            let i = s.entries.partition_point(|e| e.record.offset < offset);
            s.keys.first_from(hashes, i).and_then(|p| s.entries.get(p))
        })
    }

    /// Whether `record` is compacted: below the horizon, and a newer record has its key.
    fn compacted(&self, record: &CachedRecord) -> bool {
        self.retention.compact
            && record.offset < self.compacted_below
            && record
                .key
                .as_ref()
                .and_then(|k| self.newest_by_key.get(k))
                .is_some_and(|&n| n > record.offset)
    }

    /// Resolves `cursor` (when the log has started) and returns its position.
    pub fn position(&self, cursor: &mut Cursor) -> Option<i64> {
        if cursor.next.is_none() {
            cursor.next = self.resolve(cursor.start);
        }
        cursor.next
    }

    /// The next record for `cursor` that passes `filters`, or what stands in the way.
    pub fn read(&self, cursor: &mut Cursor, filters: &[Filter]) -> Read {
        let Some(mut next) = self.position(cursor) else {
            return Read::Empty;
        };
        if let Some(start) = self.start
            && next < start
        {
            cursor.next = Some(start);
            return Read::Gap {
                from: next,
                to: start,
            };
        }
        if self.live && self.latest().is_some_and(|latest| next > latest) {
            return Read::Ahead { next };
        }
        // A reader that needs given keys jumps from one record of its keys to the next.
        let keys = key_hashes(filters);
        for _ in 0..MAX_SCAN {
            let entry = match &keys {
                Some(hashes) => self.locate_keyed(next, hashes),
                None => self.locate(next),
            };
            let Some(entry) = entry else {
                cursor.next = Some(next.max(self.end));
                return Read::Empty;
            };
            let record = &entry.record;
            next = record.offset + 1;
            cursor.next = Some(next);
            if !self.compacted(record)
                && matches_any(filters, record.key.as_deref(), &record.headers)
            {
                return Read::Record(record.clone());
            }
        }
        Read::Yield
    }

    /// Whether `cursor` has read everything appended so far.
    pub fn caught_up(&self, cursor: &Cursor) -> bool {
        cursor.next.is_some_and(|n| n >= self.end)
    }
}

#[cfg(test)]
mod tests;

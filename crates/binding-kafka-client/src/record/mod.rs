//! Record batches (magic v2), decoded without copying record payloads.
//!
//! [`decode_records`] reads the `records` field of one partition of a Fetch response: a
//! sequence of batches, the last of which may be cut short by the broker (it is ignored).
//! Each batch's CRC32C is checked; compressed batches are inflated (bounded by
//! [`RecordOptions::max_decompressed`]) and their records slice the inflated buffer;
//! uncompressed records slice the fetch buffer itself. Records below the fetch offset are
//! skipped (a batch may start before it), control batches are skipped, and under
//! read-committed the batches of aborted transactions are dropped and nothing at or past the
//! last stable offset is returned.

mod codec;
mod encode;

use std::collections::{BTreeSet, HashSet};

use binding_api::ext::kafka::KafkaHeader;
use bytes::Bytes;
use thiserror::Error;

pub use codec::{Compression, compress, decompress};
pub use encode::{BatchBuilder, RecordBuilder};

use crate::proto::wire::{DecodeError, Decoder};

/// Why a batch could not be read.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum RecordError {
    /// The bytes do not follow the format.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The batch's CRC32C does not match its contents.
    #[error("batch at offset {offset}: CRC32C mismatch")]
    Crc {
        /// The batch's base offset.
        offset: i64,
    },
    /// Magic other than 2 (message formats v0/v1 are not read).
    #[error("batch at offset {offset}: unsupported magic {magic}")]
    Magic {
        /// The batch's base offset.
        offset: i64,
        /// Its magic byte.
        magic: i8,
    },
    /// Compression bits 5–7.
    #[error("unknown compression codec {0}")]
    UnknownCompression(u8),
    /// The codec failed.
    #[error("{codec:?} decompression failed: {detail}")]
    Decompress {
        /// The codec.
        codec: Compression,
        /// Its error.
        detail: String,
    },
    /// Inflating would pass the limit.
    #[error("a batch inflates to more than {max} bytes")]
    TooLarge {
        /// The limit.
        max: usize,
    },
}

/// One record, its byte fields slices of the fetch (or inflated) buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Its offset.
    pub offset: i64,
    /// Its timestamp (ms).
    pub timestamp: i64,
    /// The key, if any.
    pub key: Option<Bytes>,
    /// The value; `None` for a tombstone.
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<KafkaHeader>,
}

/// An aborted transaction listed in a Fetch response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AbortedTxn {
    /// Its first offset.
    pub first_offset: i64,
    /// The producer.
    pub producer_id: i64,
}

/// How to read one partition's records.
#[derive(Clone, Debug)]
pub struct RecordOptions {
    /// The offset fetched: records below it are skipped.
    pub fetch_offset: i64,
    /// Read-committed: drop aborted transactions, stop at `last_stable_offset`.
    pub read_committed: bool,
    /// The partition's last stable offset (`-1` when unknown).
    pub last_stable_offset: i64,
    /// Aborted transactions of the response.
    pub aborted: Vec<AbortedTxn>,
    /// Largest inflated size of one batch.
    pub max_decompressed: usize,
}

/// The records of one partition of a Fetch response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Records {
    /// Records to deliver, ascending by offset.
    pub records: Vec<Record>,
    /// The offset to fetch next: past every complete batch read (control and aborted batches
    /// included), never past the last stable offset under read-committed.
    pub next_offset: i64,
}

/// Header bytes of a v2 batch up to and including the record count.
const BATCH_HEADER: usize = 61;
/// The part of the header that precedes the CRC-covered bytes.
const CRC_START: usize = 21;
/// The smallest record: 7 one-byte varints.
const MIN_RECORD: usize = 7;

const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;

/// Decodes the `records` of one partition.
pub fn decode_records(buf: Bytes, opts: &RecordOptions) -> Result<Records, RecordError> {
    let mut out = Records {
        records: Vec::new(),
        next_offset: opts.fetch_offset,
    };
    let mut aborted: BTreeSet<AbortedTxn> = opts.aborted.iter().copied().collect();
    let mut aborting: HashSet<i64> = HashSet::new();
    let limit = if opts.read_committed && opts.last_stable_offset >= 0 {
        opts.last_stable_offset
    } else {
        i64::MAX
    };
    let mut rest = buf;
    while rest.len() >= 12 {
        let mut head = Decoder::new(rest.slice(..12));
        let base_offset = head.i64("baseOffset")?;
        let batch_len = head.i32("batchLength")?;
        let Ok(batch_len) = usize::try_from(batch_len) else {
            return Err(DecodeError::NegativeLength {
                field: "batchLength",
                len: i64::from(batch_len),
            }
            .into());
        };
        let total = batch_len.saturating_add(12);
        if total > rest.len() {
            break; // a partial batch at the end of the response
        }
        let batch = rest.split_to(total);
        if base_offset >= limit {
            break;
        }
        let info = decode_batch(batch, base_offset, opts, &mut out.records)?;
        // Aborted transactions whose first offset is within reach become active.
        while let Some(first) = aborted.first().copied() {
            if first.first_offset > info.last_offset {
                break;
            }
            aborted.pop_first();
            aborting.insert(first.producer_id);
        }
        let keep = if info.control {
            if info.abort_marker {
                aborting.remove(&info.producer_id);
            }
            false
        } else {
            !(opts.read_committed && info.transactional && aborting.contains(&info.producer_id))
        };
        if !keep {
            out.records.truncate(info.first_record);
        }
        out.records.retain(|r| r.offset < limit);
        out.next_offset = out
            .next_offset
            .max(info.last_offset.saturating_add(1).min(limit));
    }
    Ok(out)
}

struct BatchInfo {
    last_offset: i64,
    producer_id: i64,
    transactional: bool,
    control: bool,
    abort_marker: bool,
    first_record: usize,
}

fn decode_batch(
    batch: Bytes,
    base_offset: i64,
    opts: &RecordOptions,
    records: &mut Vec<Record>,
) -> Result<BatchInfo, RecordError> {
    if batch.len() < BATCH_HEADER {
        return Err(DecodeError::Truncated("record batch header").into());
    }
    let mut d = Decoder::new(batch.slice(12..));
    let _leader_epoch = d.i32("partitionLeaderEpoch")?;
    let magic = d.i8("magic")?;
    if magic != 2 {
        return Err(RecordError::Magic {
            offset: base_offset,
            magic,
        });
    }
    let crc = d.u32("crc")?;
    if crc32c::crc32c(&batch[CRC_START..]) != crc {
        return Err(RecordError::Crc {
            offset: base_offset,
        });
    }
    let attributes = d.i16("attributes")?;
    let last_offset_delta = d.i32("lastOffsetDelta")?;
    let base_timestamp = d.i64("baseTimestamp")?;
    let max_timestamp = d.i64("maxTimestamp")?;
    let producer_id = d.i64("producerId")?;
    let _producer_epoch = d.i16("producerEpoch")?;
    let _base_sequence = d.i32("baseSequence")?;
    let count = d.i32("recordCount")?;
    let log_append_time = attributes & 0x08 != 0;
    let control = attributes & ATTR_CONTROL != 0;
    let mut info = BatchInfo {
        last_offset: base_offset.saturating_add(i64::from(last_offset_delta)),
        producer_id,
        transactional: attributes & ATTR_TRANSACTIONAL != 0,
        control,
        abort_marker: false,
        first_record: records.len(),
    };
    let codec = Compression::from_attributes(attributes)?;
    let body = match codec {
        Compression::None => d.rest().clone(),
        _ => decompress(codec, d.rest(), opts.max_decompressed)?,
    };
    let mut r = Decoder::new(body);
    let count = r.check_count(i64::from(count), "recordCount", MIN_RECORD)?;
    for _ in 0..count {
        let len = r.varint("record length")?;
        let len = r.check_count(i64::from(len), "record length", 1)?;
        let mut rec = Decoder::new(r.bytes_exact(len, "record")?);
        let _attributes = rec.i8("record attributes")?;
        let ts_delta = rec.varlong("timestampDelta")?;
        let offset_delta = rec.varint("offsetDelta")?;
        let key = rec.varint_bytes("key")?;
        let value = rec.varint_bytes("value")?;
        let n_headers = rec.varint("headers count")?;
        let n_headers = rec.check_count(i64::from(n_headers), "headers", 2)?;
        let mut headers = Vec::with_capacity(n_headers);
        for _ in 0..n_headers {
            let name = rec.varint_bytes("header key")?.unwrap_or_default();
            let value = rec.varint_bytes("header value")?;
            headers.push(KafkaHeader { name, value });
        }
        let offset = base_offset.saturating_add(i64::from(offset_delta));
        if control {
            // Control record key: version (int16), type (int16): 0 abort, 1 commit.
            if let Some(key) = &key
                && key.len() >= 4
                && key[2..4] == [0, 0]
            {
                info.abort_marker = true;
            }
            continue;
        }
        if offset < opts.fetch_offset {
            continue;
        }
        let timestamp = if log_append_time {
            max_timestamp
        } else {
            base_timestamp.saturating_add(ts_delta)
        };
        records.push(Record {
            offset,
            timestamp,
            key,
            value,
            headers,
        });
    }
    Ok(info)
}

#[cfg(test)]
mod tests;

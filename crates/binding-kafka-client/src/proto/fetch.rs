//! Fetch v4–v11, by topic name, without sessions. The response is decoded by hand: record
//! sets stay slices of the response buffer, to be read by [`crate::record`].

use bytes::{BufMut, Bytes, BytesMut};

use super::wire::{DecodeError, Decoder, Encode};
use super::{ApiKey, Request};
use crate::record::AbortedTxn;

/// One partition to fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchPartition {
    /// Partition.
    pub partition: i32,
    /// Offset to fetch from.
    pub offset: i64,
    /// Largest response for this partition (the broker returns at least one batch).
    pub max_bytes: i32,
}

/// The parameters of a fetch request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchRequest {
    /// How long the broker may wait for `min_bytes`.
    pub max_wait_ms: i32,
    /// Bytes to wait for.
    pub min_bytes: i32,
    /// Largest response.
    pub max_bytes: i32,
    /// Read-committed.
    pub read_committed: bool,
    /// The topic.
    pub topic: String,
    /// Its partitions.
    pub partitions: Vec<FetchPartition>,
}

/// Encodes a Fetch request of `version`.
pub fn request(version: i16, fetch: &FetchRequest) -> Request {
    let mut b = BytesMut::new();
    b.put_i32(-1); // replica_id
    b.put_i32(fetch.max_wait_ms);
    b.put_i32(fetch.min_bytes);
    b.put_i32(fetch.max_bytes);
    b.put_i8(i8::from(fetch.read_committed));
    if version >= 7 {
        b.put_i32(0); // session_id
        b.put_i32(-1); // session_epoch: a full fetch, no session
    }
    b.put_array_len(1);
    b.put_string(&fetch.topic);
    b.put_array_len(fetch.partitions.len());
    for p in &fetch.partitions {
        b.put_i32(p.partition);
        if version >= 9 {
            b.put_i32(-1); // current_leader_epoch
        }
        b.put_i64(p.offset);
        if version >= 5 {
            b.put_i64(-1); // log_start_offset
        }
        b.put_i32(p.max_bytes);
    }
    if version >= 7 {
        b.put_array_len(0);
    }
    if version >= 11 {
        b.put_string("");
    }
    Request {
        api: ApiKey::Fetch,
        version,
        body: b.freeze(),
    }
}

/// One partition of a Fetch response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionData {
    /// The topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Error code.
    pub error_code: i16,
    /// High watermark.
    pub high_watermark: i64,
    /// Last stable offset (-1 when unknown).
    pub last_stable_offset: i64,
    /// Log start offset (-1 when unknown).
    pub log_start_offset: i64,
    /// Aborted transactions within the records.
    pub aborted: Vec<AbortedTxn>,
    /// The record batches (a slice of the response).
    pub records: Bytes,
}

/// A Fetch response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchResponse {
    /// Top-level error code (v7+).
    pub error_code: i16,
    /// Partitions.
    pub partitions: Vec<PartitionData>,
}

/// Decodes a Fetch response of `version`.
pub fn decode(version: i16, body: Bytes) -> Result<FetchResponse, DecodeError> {
    let mut d = Decoder::new(body);
    d.i32("throttle_time_ms")?;
    let mut error_code = 0;
    if version >= 7 {
        error_code = d.i16("error_code")?;
        d.i32("session_id")?;
    }
    let nt = d.array_len("responses", 6)?;
    let mut partitions = Vec::new();
    for _ in 0..nt {
        let topic = d.string("topic")?;
        let np = d.array_len("partitions", 30)?;
        for _ in 0..np {
            let partition = d.i32("partition_index")?;
            let error_code = d.i16("error_code")?;
            let high_watermark = d.i64("high_watermark")?;
            let last_stable_offset = d.i64("last_stable_offset")?;
            let log_start_offset = if version >= 5 {
                d.i64("log_start_offset")?
            } else {
                -1
            };
            let na = d.array_len("aborted_transactions", 16)?;
            let mut aborted = Vec::with_capacity(na);
            for _ in 0..na {
                let producer_id = d.i64("producer_id")?;
                let first_offset = d.i64("first_offset")?;
                aborted.push(AbortedTxn {
                    first_offset,
                    producer_id,
                });
            }
            if version >= 11 {
                d.i32("preferred_read_replica")?;
            }
            let records = d.nullable_bytes("records")?.unwrap_or_default();
            partitions.push(PartitionData {
                topic: topic.clone(),
                partition,
                error_code,
                high_watermark,
                last_stable_offset,
                log_start_offset,
                aborted,
                records,
            });
        }
    }
    Ok(FetchResponse {
        error_code,
        partitions,
    })
}

/// Encodes a response for one topic (for scripted brokers, tests and fuzz seeds).
pub fn encode_response(version: i16, response: &FetchResponse) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i32(0);
    if version >= 7 {
        b.put_i16(response.error_code);
        b.put_i32(0);
    }
    b.put_array_len(response.partitions.len());
    for p in &response.partitions {
        b.put_string(&p.topic);
        b.put_array_len(1);
        b.put_i32(p.partition);
        b.put_i16(p.error_code);
        b.put_i64(p.high_watermark);
        b.put_i64(p.last_stable_offset);
        if version >= 5 {
            b.put_i64(p.log_start_offset);
        }
        b.put_array_len(p.aborted.len());
        for a in &p.aborted {
            b.put_i64(a.producer_id);
            b.put_i64(a.first_offset);
        }
        if version >= 11 {
            b.put_i32(-1);
        }
        b.put_nullable_bytes(Some(&p.records));
    }
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(
            version in 4i16..=11,
            hw in any::<i64>(),
            records in proptest::collection::vec(any::<u8>(), 0..64),
            aborted in proptest::collection::vec((any::<i64>(), any::<i64>()), 0..3),
        ) {
            let response = FetchResponse {
                error_code: 0,
                partitions: vec![PartitionData {
                    topic: "t".into(),
                    partition: 3,
                    error_code: 0,
                    high_watermark: hw,
                    last_stable_offset: hw,
                    log_start_offset: if version >= 5 { 0 } else { -1 },
                    aborted: aborted.iter().map(|(p, f)| AbortedTxn { producer_id: *p, first_offset: *f }).collect(),
                    records: Bytes::from(records),
                }],
            };
            prop_assert_eq!(decode(version, encode_response(version, &response)).unwrap(), response);
        }

        #[test]
        fn arbitrary_input_never_panics(version in 4i16..=11, input in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(version, Bytes::from(input));
        }
    }
}

//! ListOffsets v1–v4: earliest, latest, or by timestamp.

use bytes::{BufMut, Bytes, BytesMut};

use super::wire::{DecodeError, Decoder, Encode};
use super::{ApiKey, Request};

/// The timestamp that asks for the latest offset.
pub const LATEST: i64 = -1;
/// The timestamp that asks for the earliest offset.
pub const EARLIEST: i64 = -2;

/// A ListOffsets request for partitions of one topic: `(partition, timestamp)`.
pub fn request(
    version: i16,
    read_committed: bool,
    topic: &str,
    partitions: &[(i32, i64)],
) -> Request {
    let mut b = BytesMut::new();
    b.put_i32(-1); // replica_id
    if version >= 2 {
        b.put_i8(i8::from(read_committed));
    }
    b.put_array_len(1);
    b.put_string(topic);
    b.put_array_len(partitions.len());
    for (p, ts) in partitions {
        b.put_i32(*p);
        if version >= 4 {
            b.put_i32(-1); // current_leader_epoch
        }
        b.put_i64(*ts);
    }
    Request {
        api: ApiKey::ListOffsets,
        version,
        body: b.freeze(),
    }
}

/// One partition's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionOffset {
    /// Partition.
    pub partition: i32,
    /// Error code.
    pub error_code: i16,
    /// The offset (-1 when no record is at or after the timestamp).
    pub offset: i64,
}

/// Decodes a ListOffsets response: every partition of every topic.
pub fn decode(version: i16, body: Bytes) -> Result<Vec<PartitionOffset>, DecodeError> {
    let mut d = Decoder::new(body);
    if version >= 2 {
        d.i32("throttle_time_ms")?;
    }
    let mut out = Vec::new();
    let nt = d.array_len("topics", 6)?;
    for _ in 0..nt {
        d.string("topic")?;
        let np = d.array_len("partitions", 22)?;
        for _ in 0..np {
            let partition = d.i32("partition_index")?;
            let error_code = d.i16("error_code")?;
            d.i64("timestamp")?;
            let offset = d.i64("offset")?;
            if version >= 4 {
                d.i32("leader_epoch")?;
            }
            out.push(PartitionOffset {
                partition,
                error_code,
                offset,
            });
        }
    }
    Ok(out)
}

/// Encodes a response (for scripted brokers, tests and fuzz seeds).
pub fn encode_response(version: i16, topic: &str, partitions: &[PartitionOffset]) -> Bytes {
    let mut b = BytesMut::new();
    if version >= 2 {
        b.put_i32(0);
    }
    b.put_array_len(1);
    b.put_string(topic);
    b.put_array_len(partitions.len());
    for p in partitions {
        b.put_i32(p.partition);
        b.put_i16(p.error_code);
        b.put_i64(-1);
        b.put_i64(p.offset);
        if version >= 4 {
            b.put_i32(0);
        }
    }
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(version in 1i16..=4, offsets in proptest::collection::vec(any::<i64>(), 0..5)) {
            let parts: Vec<_> = offsets.iter().enumerate().map(|(i, o)| PartitionOffset {
                partition: i as i32, error_code: 0, offset: *o,
            }).collect();
            prop_assert_eq!(decode(version, encode_response(version, "t", &parts)).unwrap(), parts);
        }
    }
}

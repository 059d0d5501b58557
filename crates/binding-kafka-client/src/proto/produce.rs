//! Produce v3–v8: record batches to one partition.

use bytes::{BufMut, Bytes, BytesMut};

use super::wire::{DecodeError, Decoder, Encode};
use super::{ApiKey, Request};

/// A Produce request of one batch to `topic`/`partition`.
pub fn request(
    version: i16,
    acks: i16,
    timeout_ms: i32,
    topic: &str,
    partition: i32,
    batch: &[u8],
) -> Request {
    let mut b = BytesMut::new();
    b.put_nullable_string(None); // transactional_id
    b.put_i16(acks);
    b.put_i32(timeout_ms);
    b.put_array_len(1);
    b.put_string(topic);
    b.put_array_len(1);
    b.put_i32(partition);
    b.put_nullable_bytes(Some(batch));
    Request {
        api: ApiKey::Produce,
        version,
        body: b.freeze(),
    }
}

/// One partition's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducePartition {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Error code.
    pub error_code: i16,
    /// Offset of the first record written.
    pub base_offset: i64,
    /// Error message (v8+).
    pub error_message: Option<String>,
}

/// Decodes a Produce response of `version`.
pub fn decode(version: i16, body: Bytes) -> Result<Vec<ProducePartition>, DecodeError> {
    let mut d = Decoder::new(body);
    let mut out = Vec::new();
    let nt = d.array_len("responses", 6)?;
    for _ in 0..nt {
        let topic = d.string("topic")?;
        let np = d.array_len("partition_responses", 22)?;
        for _ in 0..np {
            let partition = d.i32("index")?;
            let error_code = d.i16("error_code")?;
            let base_offset = d.i64("base_offset")?;
            d.i64("log_append_time_ms")?;
            if version >= 5 {
                d.i64("log_start_offset")?;
            }
            let mut error_message = None;
            if version >= 8 {
                let ne = d.array_len("record_errors", 6)?;
                for _ in 0..ne {
                    d.i32("batch_index")?;
                    d.nullable_string("batch_index_error_message")?;
                }
                error_message = d.nullable_string("error_message")?;
            }
            out.push(ProducePartition {
                topic: topic.clone(),
                partition,
                error_code,
                base_offset,
                error_message,
            });
        }
    }
    d.i32("throttle_time_ms")?;
    Ok(out)
}

/// Encodes a response (for scripted brokers, tests and fuzz seeds).
pub fn encode_response(version: i16, partitions: &[ProducePartition]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_array_len(partitions.len());
    for p in partitions {
        b.put_string(&p.topic);
        b.put_array_len(1);
        b.put_i32(p.partition);
        b.put_i16(p.error_code);
        b.put_i64(p.base_offset);
        b.put_i64(-1);
        if version >= 5 {
            b.put_i64(0);
        }
        if version >= 8 {
            b.put_array_len(0);
            b.put_nullable_string(p.error_message.as_deref());
        }
    }
    b.put_i32(0);
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(version in 3i16..=8, offset in any::<i64>(), code in any::<i16>()) {
            let parts = vec![ProducePartition {
                topic: "t".into(),
                partition: 1,
                error_code: code,
                base_offset: offset,
                error_message: if version >= 8 { Some("m".into()) } else { None },
            }];
            prop_assert_eq!(decode(version, encode_response(version, &parts)).unwrap(), parts);
        }
    }
}

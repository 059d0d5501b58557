//! Building v2 record batches: for tests, fuzz seeds and scripted brokers.

use binding_api::ext::kafka::KafkaHeader;
use bytes::{BufMut, Bytes, BytesMut};

use super::{Compression, RecordError, compress};
use crate::proto::wire::Encode;

/// One record to put in a batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordBuilder {
    /// Offset delta from the batch's base offset.
    pub offset_delta: i32,
    /// Timestamp delta from the batch's base timestamp.
    pub timestamp_delta: i64,
    /// Key.
    pub key: Option<Bytes>,
    /// Value.
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<KafkaHeader>,
}

/// A v2 record batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchBuilder {
    /// Base offset.
    pub base_offset: i64,
    /// Base timestamp.
    pub base_timestamp: i64,
    /// Codec.
    pub compression: Compression,
    /// Producer id (-1 when not transactional).
    pub producer_id: i64,
    /// Transactional bit.
    pub transactional: bool,
    /// Control batch: its one record is a commit (`Some(true)`) or abort (`Some(false)`) marker.
    pub control: Option<bool>,
    /// Records.
    pub records: Vec<RecordBuilder>,
}

impl BatchBuilder {
    /// An uncompressed, non-transactional batch.
    pub fn new(base_offset: i64, records: Vec<RecordBuilder>) -> Self {
        BatchBuilder {
            base_offset,
            base_timestamp: 1_700_000_000_000,
            compression: Compression::None,
            producer_id: -1,
            transactional: false,
            control: None,
            records,
        }
    }

    /// Encodes the batch, CRC included.
    pub fn encode(&self) -> Result<Bytes, RecordError> {
        let mut body = BytesMut::new();
        let records: Vec<RecordBuilder> = match self.control {
            Some(commit) => vec![RecordBuilder {
                key: Some(Bytes::from(vec![0, 0, 0, u8::from(commit)])),
                value: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0])),
                ..Default::default()
            }],
            None => self.records.clone(),
        };
        for r in &records {
            let mut rec = BytesMut::new();
            rec.put_i8(0);
            rec.put_varlong(r.timestamp_delta);
            rec.put_varint(r.offset_delta);
            rec.put_varint_bytes(r.key.as_deref());
            rec.put_varint_bytes(r.value.as_deref());
            rec.put_varint(i32::try_from(r.headers.len()).unwrap_or(i32::MAX));
            for h in &r.headers {
                rec.put_varint_bytes(Some(&h.name));
                rec.put_varint_bytes(h.value.as_deref());
            }
            body.put_varint(i32::try_from(rec.len()).unwrap_or(i32::MAX));
            body.put_slice(&rec);
        }
        let body = compress(self.compression, &body)?;
        let last_delta = records.iter().map(|r| r.offset_delta).max().unwrap_or(0);
        let mut attributes: i16 = match self.compression {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        };
        if self.transactional {
            attributes |= 0x10;
        }
        if self.control.is_some() {
            attributes |= 0x20;
        }
        let mut crc_part = BytesMut::new();
        crc_part.put_i16(attributes);
        crc_part.put_i32(last_delta);
        let max_delta = records.iter().map(|r| r.timestamp_delta).max().unwrap_or(0);
        crc_part.put_i64(self.base_timestamp);
        crc_part.put_i64(self.base_timestamp.saturating_add(max_delta));
        crc_part.put_i64(self.producer_id);
        // Producer epoch and base sequence: -1 for a producer that is not idempotent.
        let unset = if self.producer_id < 0 { -1 } else { 0 };
        crc_part.put_i16(unset as i16);
        crc_part.put_i32(unset);
        crc_part.put_i32(i32::try_from(records.len()).unwrap_or(i32::MAX));
        crc_part.put_slice(&body);
        let mut out = BytesMut::new();
        out.put_i64(self.base_offset);
        out.put_i32(i32::try_from(crc_part.len() + 9).unwrap_or(i32::MAX));
        out.put_i32(0);
        out.put_i8(2);
        out.put_u32(crc32c::crc32c(&crc_part));
        out.put_slice(&crc_part);
        Ok(out.freeze())
    }
}

//! Decompression of record batches: gzip, snappy (raw and Java's xerial framing), lz4 (the
//! LZ4 frame format Kafka uses for v2 batches) and zstd, each bounded: a batch that would
//! inflate past the limit is refused before more than the limit is held.

use std::io::Read;

use bytes::Bytes;

use super::RecordError;

/// Compression codecs, from attribute bits 0–2 of a record batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Not compressed.
    None,
    /// gzip.
    Gzip,
    /// snappy.
    Snappy,
    /// lz4.
    Lz4,
    /// zstd.
    Zstd,
}

impl Compression {
    /// The codec of a batch's attributes.
    pub fn from_attributes(attributes: i16) -> Result<Self, RecordError> {
        match attributes & 0x07 {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(RecordError::UnknownCompression(other as u8)),
        }
    }
}

const XERIAL_MAGIC: &[u8] = &[0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_LEN: usize = 16;
/// Largest zstd window accepted (2^25 = 32 MiB); producers use far less.
const ZSTD_WINDOW_LOG_MAX: u32 = 25;

/// Decompresses `data` with `codec`, refusing output larger than `max` bytes.
pub fn decompress(codec: Compression, data: &[u8], max: usize) -> Result<Bytes, RecordError> {
    let io = |e: std::io::Error| RecordError::Decompress {
        codec,
        detail: e.to_string(),
    };
    match codec {
        Compression::None => Ok(Bytes::copy_from_slice(data)),
        Compression::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(data), max, codec),
        Compression::Lz4 => read_bounded(lz4_flex::frame::FrameDecoder::new(data), max, codec),
        Compression::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::new(data).map_err(io)?;
            decoder.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(io)?;
            read_bounded(decoder, max, codec)
        }
        Compression::Snappy => snappy(data, max),
    }
}

fn read_bounded(reader: impl Read, max: usize, codec: Compression) -> Result<Bytes, RecordError> {
    let mut out = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| RecordError::Decompress {
            codec,
            detail: e.to_string(),
        })?;
    if out.len() > max {
        return Err(RecordError::TooLarge { max });
    }
    Ok(Bytes::from(out))
}

fn snappy_block(block: &[u8], out: &mut Vec<u8>, max: usize) -> Result<(), RecordError> {
    let err = |e: snap::Error| RecordError::Decompress {
        codec: Compression::Snappy,
        detail: e.to_string(),
    };
    let len = snap::raw::decompress_len(block).map_err(err)?;
    if out.len().saturating_add(len) > max {
        return Err(RecordError::TooLarge { max });
    }
    let start = out.len();
    out.resize(start + len, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(err)?;
    out.truncate(start + written);
    Ok(())
}

fn snappy(data: &[u8], max: usize) -> Result<Bytes, RecordError> {
    let mut out = Vec::new();
    if data.starts_with(XERIAL_MAGIC) {
        let mut rest = data.get(XERIAL_HEADER_LEN..).unwrap_or_default();
        while !rest.is_empty() {
            let (len, tail) = rest.split_at_checked(4).ok_or(RecordError::Decompress {
                codec: Compression::Snappy,
                detail: "truncated xerial block length".into(),
            })?;
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            let (block, tail) = tail.split_at_checked(len).ok_or(RecordError::Decompress {
                codec: Compression::Snappy,
                detail: "truncated xerial block".into(),
            })?;
            snappy_block(block, &mut out, max)?;
            rest = tail;
        }
    } else {
        snappy_block(data, &mut out, max)?;
    }
    Ok(Bytes::from(out))
}

/// Compresses `data` (for tests and for producing).
pub fn compress(codec: Compression, data: &[u8]) -> Result<Vec<u8>, RecordError> {
    use std::io::Write;
    let io = |e: std::io::Error| RecordError::Decompress {
        codec,
        detail: e.to_string(),
    };
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).map_err(io)?;
            e.finish().map_err(io)
        }
        Compression::Lz4 => {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(data).map_err(io)?;
            e.finish().map_err(|e| RecordError::Decompress {
                codec,
                detail: e.to_string(),
            })
        }
        Compression::Zstd => zstd::stream::encode_all(data, 3).map_err(io),
        Compression::Snappy => {
            snap::raw::Encoder::new()
                .compress_vec(data)
                .map_err(|e| RecordError::Decompress {
                    codec,
                    detail: e.to_string(),
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..10_000u32).flat_map(|i| i.to_le_bytes()).collect();
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let packed = compress(codec, &data).unwrap();
            assert_eq!(
                decompress(codec, &packed, 1 << 20).unwrap(),
                data,
                "{codec:?}"
            );
        }
    }

    #[test]
    fn bombs_are_bounded() {
        let data = vec![0u8; 1 << 20];
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let packed = compress(codec, &data).unwrap();
            assert!(
                matches!(
                    decompress(codec, &packed, 1000),
                    Err(RecordError::TooLarge { max: 1000 })
                ),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn xerial_framing() {
        let a = snap::raw::Encoder::new().compress_vec(b"hello ").unwrap();
        let b = snap::raw::Encoder::new().compress_vec(b"world").unwrap();
        let mut framed = XERIAL_MAGIC.to_vec();
        framed.extend_from_slice(&1i32.to_be_bytes());
        framed.extend_from_slice(&1i32.to_be_bytes());
        for block in [a, b] {
            framed.extend_from_slice(&(block.len() as u32).to_be_bytes());
            framed.extend_from_slice(&block);
        }
        assert_eq!(
            decompress(Compression::Snappy, &framed, 100).unwrap(),
            &b"hello world"[..]
        );
    }
}

//! Any bytes as the record batches of a Fetch partition, with options from the first bytes:
//! CRC checked, codecs bounded, transactions filtered; an error or records, never a panic,
//! an abort or memory beyond the decompression cap. The CRC check is what random bytes hit
//! first, so the target also decodes with the CRC fixed up (the seeds are valid batches).
#![no_main]

use binding_kafka_client::record::{AbortedTxn, RecordOptions, decode_records};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

/// Rewrites the CRC32C of every complete batch so that mutations reach the decoder.
fn fix_crcs(buf: &mut [u8]) {
    let mut at = 0usize;
    while at + 61 <= buf.len() {
        let len = i32::from_be_bytes([buf[at + 8], buf[at + 9], buf[at + 10], buf[at + 11]]);
        let Ok(len) = usize::try_from(len) else { return };
        let end = at + 12 + len;
        if len < 49 || end > buf.len() {
            return;
        }
        let crc = crc32c::crc32c(&buf[at + 21..end]);
        buf[at + 17..at + 21].copy_from_slice(&crc.to_be_bytes());
        at = end;
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let opts = RecordOptions {
        fetch_offset: i64::from(flags >> 4),
        read_committed: flags & 1 != 0,
        last_stable_offset: if flags & 2 != 0 { 5 } else { -1 },
        aborted: vec![AbortedTxn {
            first_offset: 0,
            producer_id: 1,
        }],
        max_decompressed: 1 << 20,
    };
    let _ = decode_records(Bytes::copy_from_slice(rest), &opts);
    let mut fixed = rest.to_vec();
    fix_crcs(&mut fixed);
    if let Ok(records) = decode_records(Bytes::from(fixed), &opts) {
        assert!(records.records.iter().all(|r| r.offset >= opts.fetch_offset));
    }
});

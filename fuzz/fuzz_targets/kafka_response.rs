//! Any bytes a broker might send, framed and decoded as each response the kafka client reads
//! (ApiVersions, Metadata, ListOffsets, Fetch, at every version it speaks), and the records
//! of every decoded Fetch partition: an error or a value, never a panic, an abort or memory
//! beyond the input's size.
#![no_main]

use binding_kafka_client::proto::{api_versions, fetch, list_offsets, metadata, split_response};
use binding_kafka_client::record::{RecordOptions, decode_records};
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut framed = BytesMut::from(rest);
    let _ = split_response(&mut framed, 1 << 20);
    let body = Bytes::copy_from_slice(rest);
    match selector % 4 {
        0 => {
            if let Ok(r) = api_versions::decode(body) {
                let _ = api_versions::negotiate(&r);
            }
        }
        1 => {
            let _ = metadata::decode(1 + i16::from(selector / 4 % 8), body, 1 << 16);
        }
        2 => {
            let _ = list_offsets::decode(1 + i16::from(selector / 4 % 4), body);
        }
        _ => {
            if let Ok(r) = fetch::decode(4 + i16::from(selector / 4 % 8), body) {
                for p in r.partitions {
                    let opts = RecordOptions {
                        fetch_offset: 0,
                        read_committed: true,
                        last_stable_offset: p.last_stable_offset,
                        aborted: p.aborted,
                        max_decompressed: 1 << 20,
                    };
                    let _ = decode_records(p.records, &opts);
                }
            }
        }
    }
});

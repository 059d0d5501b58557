use super::*;
use proptest::prelude::*;

fn opts(fetch_offset: i64) -> RecordOptions {
    RecordOptions {
        fetch_offset,
        read_committed: true,
        last_stable_offset: -1,
        aborted: Vec::new(),
        max_decompressed: 1 << 24,
    }
}

fn rec(delta: i32, value: &str) -> RecordBuilder {
    RecordBuilder {
        offset_delta: delta,
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        ..Default::default()
    }
}

fn values(records: &Records) -> Vec<(i64, String)> {
    records
        .records
        .iter()
        .map(|r| {
            let v = r.value.as_deref().unwrap_or(b"<null>");
            (r.offset, String::from_utf8_lossy(v).into_owned())
        })
        .collect()
}

fn concat(batches: &[BatchBuilder]) -> Bytes {
    let mut out = Vec::new();
    for b in batches {
        out.extend_from_slice(&b.encode().unwrap());
    }
    Bytes::from(out)
}

#[test]
fn skips_records_below_the_fetch_offset_and_ignores_a_partial_batch() {
    let all = concat(&[
        BatchBuilder::new(0, vec![rec(0, "a"), rec(1, "b"), rec(2, "c")]),
        BatchBuilder::new(3, vec![rec(0, "d")]),
    ]);
    let cut = all.slice(..all.len() - 3);
    let got = decode_records(cut, &opts(1)).unwrap();
    assert_eq!(values(&got), vec![(1, "b".into()), (2, "c".into())]);
    assert_eq!(got.next_offset, 3);
}

#[test]
fn uncompressed_values_are_slices_of_the_input() {
    let buf = concat(&[BatchBuilder::new(0, vec![rec(0, "hello")])]);
    let range = buf.as_ptr_range();
    let got = decode_records(buf.clone(), &opts(0)).unwrap();
    let value = got.records[0].value.as_ref().unwrap();
    assert!(range.contains(&value.as_ptr()));
}

#[test]
fn aborted_transactions_and_control_batches() {
    let txn = |base, pid, recs| BatchBuilder {
        producer_id: pid,
        transactional: true,
        ..BatchBuilder::new(base, recs)
    };
    let marker = |base, pid, commit| BatchBuilder {
        producer_id: pid,
        transactional: true,
        control: Some(commit),
        ..BatchBuilder::new(base, vec![])
    };
    let buf = concat(&[
        txn(0, 7, vec![rec(0, "aborted-1"), rec(1, "aborted-2")]),
        txn(2, 8, vec![rec(0, "committed")]),
        marker(3, 7, false),
        marker(4, 8, true),
        BatchBuilder::new(5, vec![rec(0, "plain")]),
        txn(6, 7, vec![rec(0, "second txn")]),
        marker(7, 7, true),
    ]);
    let mut o = opts(0);
    o.aborted = vec![AbortedTxn {
        first_offset: 0,
        producer_id: 7,
    }];
    let got = decode_records(buf.clone(), &o).unwrap();
    assert_eq!(
        values(&got),
        vec![
            (2, "committed".into()),
            (5, "plain".into()),
            (6, "second txn".into())
        ]
    );
    assert_eq!(got.next_offset, 8);
    o.read_committed = false;
    assert_eq!(decode_records(buf.clone(), &o).unwrap().records.len(), 5);
    // The last stable offset stops delivery.
    o.read_committed = true;
    o.last_stable_offset = 6;
    let got = decode_records(buf, &o).unwrap();
    assert_eq!(got.next_offset, 6);
    assert_eq!(got.records.last().map(|r| r.offset), Some(5));
}

#[test]
fn crc_mismatch_is_an_error() {
    let mut buf = concat(&[BatchBuilder::new(0, vec![rec(0, "x")])]).to_vec();
    let last = buf.len() - 1;
    buf[last] ^= 1;
    assert!(matches!(
        decode_records(Bytes::from(buf), &opts(0)),
        Err(RecordError::Crc { offset: 0 })
    ));
}

fn header_strategy() -> impl Strategy<Value = KafkaHeader> {
    (
        proptest::collection::vec(any::<u8>(), 0..8),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    )
        .prop_map(|(n, v)| KafkaHeader {
            name: Bytes::from(n),
            value: v.map(Bytes::from),
        })
}

fn record_strategy() -> impl Strategy<Value = (Option<Vec<u8>>, Option<Vec<u8>>, Vec<KafkaHeader>)>
{
    (
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
        proptest::collection::vec(header_strategy(), 0..4),
    )
}

proptest! {
    #[test]
    fn batches_round_trip(
        records in proptest::collection::vec(record_strategy(), 1..8),
        codec in 0u8..5,
        base in 0i64..1_000_000,
    ) {
        let compression = [
            Compression::None, Compression::Gzip, Compression::Snappy,
            Compression::Lz4, Compression::Zstd,
        ][codec as usize];
        let builders: Vec<RecordBuilder> = records.iter().enumerate().map(|(i, (k, v, h))| {
            RecordBuilder {
                offset_delta: i as i32,
                timestamp_delta: i as i64,
                key: k.clone().map(Bytes::from),
                value: v.clone().map(Bytes::from),
                headers: h.clone(),
            }
        }).collect();
        let batch = BatchBuilder { compression, ..BatchBuilder::new(base, builders) };
        let got = decode_records(batch.encode().unwrap(), &opts(base)).unwrap();
        prop_assert_eq!(got.records.len(), records.len());
        prop_assert_eq!(got.next_offset, base + records.len() as i64);
        for (i, (r, (k, v, h))) in got.records.iter().zip(&records).enumerate() {
            prop_assert_eq!(r.offset, base + i as i64);
            prop_assert_eq!(r.key.as_deref(), k.as_deref());
            prop_assert_eq!(r.value.as_deref(), v.as_deref());
            prop_assert_eq!(&r.headers, h);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_records(Bytes::from(input), &opts(0));
    }
}

/// Builds the seeds of the fuzz targets `kafka_records` and `kafka_response` (a transactional
/// batch, a commit marker and a plain batch, in every codec) and checks that each decodes to
/// its records. `FUZZ_SEEDS=<repo>/fuzz/seeds cargo test -p binding-kafka-client fuzz_seeds`
/// writes them where the fuzz targets read them; otherwise they go to a temporary folder.
#[test]
fn fuzz_seeds_decode_to_their_records() {
    use crate::proto::fetch::{FetchResponse, PartitionData, encode_response};
    let dir = std::env::var_os("FUZZ_SEEDS").map_or_else(
        || std::env::temp_dir().join(format!("kafka-fuzz-seeds-{}", std::process::id())),
        std::path::PathBuf::from,
    );
    let dir = dir.as_path();
    for (name, compression) in [
        ("none", Compression::None),
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ] {
        let header = KafkaHeader {
            name: Bytes::from_static(b"h"),
            value: None,
        };
        let mut first = rec(0, "a");
        first.headers = vec![header.clone(), header];
        let batches = concat(&[
            BatchBuilder {
                compression,
                producer_id: 1,
                transactional: true,
                ..BatchBuilder::new(0, vec![first, rec(1, "b")])
            },
            BatchBuilder {
                producer_id: 1,
                transactional: true,
                control: Some(false),
                ..BatchBuilder::new(2, vec![])
            },
            BatchBuilder {
                compression,
                ..BatchBuilder::new(3, vec![rec(0, "c")])
            },
        ]);
        let decoded = decode_records(batches.clone(), &opts(0)).unwrap();
        assert_eq!(
            values(&decoded),
            vec![(0, "a".into()), (1, "b".into()), (3, "c".into())],
            "{name}"
        );
        let records = dir.join("kafka_records");
        std::fs::create_dir_all(&records).unwrap();
        let mut input = vec![1u8];
        input.extend_from_slice(&batches);
        std::fs::write(records.join(name), input).unwrap();
        let response = FetchResponse {
            error_code: 0,
            partitions: vec![PartitionData {
                topic: "t".into(),
                partition: 0,
                error_code: 0,
                high_watermark: 4,
                last_stable_offset: 4,
                log_start_offset: 0,
                aborted: vec![AbortedTxn {
                    first_offset: 0,
                    producer_id: 1,
                }],
                records: batches,
            }],
        };
        let responses = dir.join("kafka_response");
        std::fs::create_dir_all(&responses).unwrap();
        let mut input = vec![3u8 + 4 * 7];
        input.extend_from_slice(&encode_response(11, &response));
        std::fs::write(responses.join(format!("fetch-{name}")), input).unwrap();
    }
    if std::env::var_os("FUZZ_SEEDS").is_none() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

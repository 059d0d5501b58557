use std::collections::{BTreeMap, BTreeSet};

use binding_api::ext::kafka::Condition;
use proptest::prelude::*;

use super::*;

fn record(offset: i64, key: Option<&str>, value: Option<&str>) -> CachedRecord {
    CachedRecord {
        offset,
        timestamp: offset * 10,
        key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
        headers: Default::default(),
        value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
    }
}

fn key_filter(key: &str) -> Filter {
    Filter {
        conditions: vec![Condition::Key(Bytes::copy_from_slice(key.as_bytes()))],
    }
}

fn drain(log: &PartitionLog, cursor: &mut Cursor, filters: &[Filter]) -> Vec<Read> {
    let mut out = Vec::new();
    loop {
        match log.read(cursor, filters) {
            Read::Empty => return out,
            Read::Yield => {}
            other => out.push(other),
        }
    }
}

fn offsets(reads: &[Read]) -> Vec<i64> {
    reads
        .iter()
        .filter_map(|r| match r {
            Read::Record(r) => Some(r.offset),
            _ => None,
        })
        .collect()
}

fn small() -> Retention {
    Retention {
        time_ms: Some(100),
        bytes: None,
        segment_bytes: 2 * (RECORD_OVERHEAD + 1),
        segment_ms: 1_000_000,
        compact: false,
        delete: true,
        delete_retention_ms: 50,
    }
}

#[test]
fn unstarted_log_holds_readers() {
    let log = PartitionLog::new(Retention::default());
    let mut cursor = Cursor::new(StartPosition::Earliest);
    assert_eq!(log.read(&mut cursor, &[]), Read::Empty);
    assert_eq!(cursor.next(), None);
}

#[test]
fn start_positions() {
    let mut log = PartitionLog::new(Retention::default());
    log.set_live();
    for o in 5..10 {
        log.append(record(o, None, Some("v")), 0).unwrap();
    }
    let mut earliest = Cursor::new(StartPosition::Earliest);
    assert_eq!(
        offsets(&drain(&log, &mut earliest, &[])),
        vec![5, 6, 7, 8, 9]
    );
    let mut latest = Cursor::new(StartPosition::Latest);
    assert!(drain(&log, &mut latest, &[]).is_empty());
    assert_eq!(latest.next(), Some(10));
    let mut at = Cursor::new(StartPosition::Offset(8));
    assert_eq!(offsets(&drain(&log, &mut at, &[])), vec![8, 9]);
    let mut ts = Cursor::new(StartPosition::Timestamp(65));
    assert_eq!(offsets(&drain(&log, &mut ts, &[])), vec![7, 8, 9]);
    let mut late = Cursor::new(StartPosition::Timestamp(1000));
    assert!(drain(&log, &mut late, &[]).is_empty());
    log.append(record(10, None, Some("v")), 0).unwrap();
    assert_eq!(offsets(&drain(&log, &mut late, &[])), vec![10]);
    assert_eq!(offsets(&drain(&log, &mut latest, &[])), vec![10]);
}

#[test]
fn latest_is_the_brokers_while_the_log_catches_up() {
    let mut log = PartitionLog::new(Retention::default());
    log.advance(0);
    let mut latest = Cursor::new(StartPosition::Latest);
    let mut since = Cursor::new(StartPosition::Timestamp(1000));
    assert_eq!(log.read(&mut latest, &[]), Read::Empty);
    assert_eq!(
        latest.next(),
        None,
        "where the broker is, is not known yet: wait"
    );
    for o in 0..3 {
        log.note_high_watermark(5);
        log.append(record(o, None, Some("old")), 0).unwrap();
    }
    assert!(drain(&log, &mut latest, &[]).is_empty());
    assert_eq!(
        latest.next(),
        Some(5),
        "history up to the broker's end is not live"
    );
    assert!(drain(&log, &mut since, &[]).is_empty());
    assert_eq!(
        since.next(),
        None,
        "no record reached the time yet, and more may come"
    );
    for o in 3..6 {
        log.append(record(o, None, Some("v")), 0).unwrap();
    }
    assert_eq!(offsets(&drain(&log, &mut latest, &[])), vec![5]);
    log.set_live();
    assert!(drain(&log, &mut since, &[]).is_empty());
    assert_eq!(since.next(), Some(6), "caught up: from the end");
}

#[test]
fn duplicates_refused_and_advance_moves_end() {
    let mut log = PartitionLog::new(Retention::default());
    log.advance(3);
    assert_eq!(log.start(), Some(3));
    log.append(record(3, None, None), 0).unwrap();
    assert!(log.append(record(3, None, None), 0).is_err());
    log.advance(7);
    let mut c = Cursor::new(StartPosition::Earliest);
    assert_eq!(offsets(&drain(&log, &mut c, &[])), vec![3]);
    assert_eq!(c.next(), Some(7));
    assert!(log.caught_up(&c));
}

#[test]
fn filters_evaluated_at_read() {
    let mut log = PartitionLog::new(Retention::default());
    for (o, k) in ["a", "b", "a", "c"].iter().enumerate() {
        log.append(record(o as i64, Some(k), Some("v")), 0).unwrap();
    }
    let mut c = Cursor::new(StartPosition::Earliest);
    let filters = [key_filter("a"), key_filter("c")];
    assert_eq!(offsets(&drain(&log, &mut c, &filters)), vec![0, 2, 3]);
}

#[test]
fn records_are_shared_not_copied() {
    let mut log = PartitionLog::new(Retention::default());
    log.append(record(0, None, Some("v")), 0).unwrap();
    let (mut a, mut b) = (
        Cursor::new(StartPosition::Earliest),
        Cursor::new(StartPosition::Earliest),
    );
    let (Read::Record(x), Read::Record(y)) = (log.read(&mut a, &[]), log.read(&mut b, &[])) else {
        panic!("expected records");
    };
    assert!(Arc::ptr_eq(&x, &y));
}

#[test]
fn time_retention_drops_segments_and_tells_a_gap() {
    let mut log = PartitionLog::new(small());
    let mut slow = Cursor::new(StartPosition::Earliest);
    for o in 0..6 {
        log.append(record(o, None, Some("v")), o as u64 * 50)
            .unwrap();
    }
    assert_eq!(log.len(), 6);
    log.evict(260);
    // Segments [0,1] (last at 50) and [2,3] (last at 150) are expired; [4,5] is open.
    assert_eq!(log.start(), Some(4));
    assert_eq!(
        offsets(&drain(&log, &mut slow, &[])),
        vec![4, 5],
        "a cursor that never read resolves to the oldest offset"
    );
    let mut behind = Cursor::new(StartPosition::Offset(1));
    assert_eq!(log.read(&mut behind, &[]), Read::Gap { from: 1, to: 4 });
    assert_eq!(offsets(&drain(&log, &mut behind, &[])), vec![4, 5]);
}

#[test]
fn size_retention_and_cap() {
    let mut retention = small();
    retention.time_ms = None;
    retention.bytes = Some(3 * (RECORD_OVERHEAD + 1));
    let mut log = PartitionLog::new(retention);
    for o in 0..6 {
        log.append(record(o, None, Some("v")), 0).unwrap();
    }
    log.evict(0);
    assert_eq!(log.start(), Some(4));
    assert_eq!(log.bytes(), 2 * (RECORD_OVERHEAD + 1));
    assert!(log.evict_oldest() > 0);
    assert!(log.is_empty());
    assert_eq!(log.start(), Some(6));
    assert_eq!(log.bytes(), 0);
    log.append(record(6, None, Some("v")), 0).unwrap();
    let mut c = Cursor::new(StartPosition::Earliest);
    assert_eq!(offsets(&drain(&log, &mut c, &[])), vec![6]);
}

fn compacted() -> Retention {
    Retention {
        compact: true,
        delete: false,
        ..small()
    }
}

#[test]
fn compaction_newest_per_key_then_live() {
    let mut log = PartitionLog::new(compacted());
    let mut along = Cursor::new(StartPosition::Earliest);
    let rows = [
        ("a", Some("1")),
        ("b", Some("1")),
        ("a", Some("2")),
        ("c", Some("1")),
        ("b", None),
    ];
    // Segments of two records: [0, 1] [2, 3] [4].
    for (o, (k, v)) in rows.iter().enumerate() {
        log.append(record(o as i64, Some(k), *v), 10).unwrap();
    }
    let mut early = Cursor::new(StartPosition::Earliest);
    assert_eq!(
        offsets(&drain(&log, &mut early, &[])),
        vec![0, 1, 2, 3, 4],
        "nothing is compacted before a segment has been closed for the lag"
    );
    log.evict(10 + COMPACTION_LAG_MS);
    assert_eq!(
        log.compacted_below, 4,
        "the newest segment is never compacted"
    );
    assert_eq!(log.len(), 3, "0 and 1 superseded, the tombstone kept");
    let mut late = Cursor::new(StartPosition::Earliest);
    assert_eq!(offsets(&drain(&log, &mut late, &[])), vec![2, 3, 4]);
    let at = 20 + COMPACTION_LAG_MS;
    log.append(record(5, Some("a"), Some("3")), at).unwrap();
    log.append(record(6, Some("c"), Some("2")), at).unwrap();
    log.evict(at + 50);
    assert_eq!(
        log.len(),
        3,
        "2 and 3 superseded below the horizon; the tombstone above it stays past its retention"
    );
    log.evict(at + COMPACTION_LAG_MS);
    assert_eq!(log.compacted_below, 6);
    assert_eq!(
        log.len(),
        2,
        "the tombstone, now below the horizon, expired"
    );
    let mut later = Cursor::new(StartPosition::Earliest);
    assert_eq!(offsets(&drain(&log, &mut later, &[])), vec![5, 6]);
    assert_eq!(offsets(&drain(&log, &mut late, &[])), vec![5, 6]);
    assert_eq!(
        offsets(&drain(&log, &mut along, &[])),
        vec![5, 6],
        "a reader that stopped at 0 lost what was compacted"
    );
}

#[test]
fn a_live_reader_gets_every_record_of_the_newest_segment() {
    let mut log = PartitionLog::new(Retention {
        segment_bytes: 1024 * 1024,
        ..compacted()
    });
    log.set_live();
    log.append(record(0, Some("AAPL"), Some("1")), 0).unwrap();
    log.evict(COMPACTION_LAG_MS);
    let mut live = Cursor::new(StartPosition::Latest);
    assert!(drain(&log, &mut live, &[]).is_empty());
    // Ticks of the same key appended before the reader reads, retention running between.
    for o in 1..4 {
        log.append(record(o, Some("AAPL"), Some("v")), COMPACTION_LAG_MS)
            .unwrap();
    }
    log.evict(3 * COMPACTION_LAG_MS);
    assert_eq!(offsets(&drain(&log, &mut live, &[])), vec![1, 2, 3]);
    let mut late = Cursor::new(StartPosition::Earliest);
    assert_eq!(
        offsets(&drain(&log, &mut late, &[])),
        vec![0, 1, 2, 3],
        "one segment: nothing compacted, as Kafka's active segment"
    );
}

#[test]
fn a_live_reader_behind_a_segment_roll_gets_every_record() {
    let mut log = PartitionLog::new(compacted());
    log.set_live();
    log.advance(0);
    let mut live = Cursor::new(StartPosition::Latest);
    assert_eq!(log.read(&mut live, &[]), Read::Empty);
    // One upstream batch across segment rolls ([0, 1] [2, 3] [4]); retention runs before
    // the reader is woken.
    for o in 0..5 {
        log.append(record(o, Some("k"), Some("v")), 0).unwrap();
    }
    log.evict(COMPACTION_LAG_MS - 1);
    assert_eq!(offsets(&drain(&log, &mut live, &[])), vec![0, 1, 2, 3, 4]);
}

#[test]
fn a_catching_up_reader_skips_compacted_records_in_older_segments() {
    let mut log = PartitionLog::new(compacted());
    log.set_live();
    // Segments [0, 1] [2, 3] opened at 0, [4, 5] at the lag.
    let keys = ["a", "b", "a", "b", "a", "a"];
    for (o, k) in keys.iter().enumerate() {
        let at = if o < 4 { 0 } else { COMPACTION_LAG_MS };
        log.append(record(o as i64, Some(k), Some("v")), at)
            .unwrap();
    }
    log.evict(COMPACTION_LAG_MS);
    let mut early = Cursor::new(StartPosition::Earliest);
    assert_eq!(
        offsets(&drain(&log, &mut early, &[])),
        vec![2, 3, 4, 5],
        "[2, 3] was closed just now: only [0, 1] is below the horizon"
    );
    log.evict(2 * COMPACTION_LAG_MS);
    let mut late = Cursor::new(StartPosition::Earliest);
    assert_eq!(
        offsets(&drain(&log, &mut late, &[])),
        vec![3, 4, 5],
        "the newest of b below the horizon, then the newest segment as appended"
    );
    let mut a = Cursor::new(StartPosition::Offset(0));
    assert_eq!(
        offsets(&drain(&log, &mut a, &[key_filter("a")])),
        vec![4, 5]
    );
}

#[derive(Clone, Debug)]
enum Op {
    Append {
        count: u8,
        key: u8,
        skip: u8,
    },
    Tick(u16),
    /// Time enough for closed segments to be compacted.
    Lag,
    Evict,
    EvictOldest,
    /// The topic's config changed: a size limit (in records) or none.
    Retain(Option<u8>),
    Read {
        reader: usize,
        max: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..6, 0u8..3, 0u8..3).prop_map(|(count, key, skip)| Op::Append { count, key, skip }),
        2 => (0u16..80).prop_map(Op::Tick),
        1 => Just(Op::Lag),
        1 => Just(Op::Evict),
        1 => Just(Op::EvictOldest),
        1 => prop::option::of(1u8..6).prop_map(Op::Retain),
        4 => (0usize..4, 1u8..10).prop_map(|(reader, max)| Op::Read { reader, max }),
    ]
}

struct Reader {
    start: StartPosition,
    cursor: Cursor,
    filters: Vec<Filter>,
    /// Position once resolved, to check what follows.
    at: Option<i64>,
}

fn readers() -> Vec<Reader> {
    let make = |start, filters| Reader {
        start,
        cursor: Cursor::new(start),
        filters,
        at: None,
    };
    vec![
        make(StartPosition::Earliest, vec![]),
        make(StartPosition::Latest, vec![]),
        make(StartPosition::Offset(3), vec![key_filter("k1")]),
        make(
            StartPosition::Earliest,
            vec![key_filter("k0"), key_filter("k2")],
        ),
    ]
}

/// Whether `record` may be missing from what a reader got: it does not pass the reader's
/// filters, or it is compacted (below the log's horizon, which never passes the newest
/// segment, and a newer record of its key was appended).
fn may_skip(
    log: &PartitionLog,
    appended: &BTreeMap<i64, CachedRecord>,
    filters: &[Filter],
    record: &CachedRecord,
) -> bool {
    let superseded = || {
        appended
            .range(record.offset + 1..)
            .any(|(_, r)| r.key == record.key)
    };
    !matches_any(filters, record.key.as_deref(), &[])
        || (log.retention.compact && record.offset < log.compacted_below && superseded())
}

proptest! {
    /// Any interleaving of appends, evictions and reads gives each reader an ordered sequence
    /// of the records that match its filters, with no duplicate and no hole, except where
    /// an explicit gap says so or a record is compacted.
    #[test]
    fn readers_see_every_record_in_order_or_a_gap(
        ops in prop::collection::vec(op(), 1..120),
        compact in any::<bool>(),
    ) {
        let base = Retention { compact, ..small() };
        let mut log = PartitionLog::new(base);
        log.set_live();
        let mut appended: BTreeMap<i64, CachedRecord> = BTreeMap::new();
        let mut dropped: BTreeSet<i64> = BTreeSet::new();
        let mut readers = readers();
        let mut now = 0u64;
        let mut offset = 0i64;
        for op in ops {
            match op {
                Op::Append { count, key, skip } => {
                    offset += i64::from(skip);
                    for _ in 0..count {
                        let k = format!("k{key}");
                        let r = record(offset, Some(&k), Some("v"));
                        log.append(r.clone(), now).unwrap();
                        appended.insert(offset, r);
                        offset += 1;
                    }
                }
                Op::Tick(ms) => now += u64::from(ms),
                Op::Lag => now += COMPACTION_LAG_MS,
                Op::Evict => {
                    log.evict(now);
                    // Compaction drops what readers skip: every record is compacted or none.
                    dropped.extend(
                        appended
                            .values()
                            .filter(|r| may_skip(&log, &appended, &[], r))
                            .map(|r| r.offset),
                    );
                }
                Op::EvictOldest => { log.evict_oldest(); }
                Op::Retain(records) => log.set_retention(Retention {
                    bytes: records.map(|n| u64::from(n) * (RECORD_OVERHEAD + 3)),
                    ..base
                }),
                Op::Read { reader, max } => {
                    let r = &mut readers[reader];
                    for _ in 0..max {
                        if r.at.is_none() && let Some(first) = log.start() {
                            r.at = Some(match r.start {
                                StartPosition::Earliest => first,
                                StartPosition::Latest => log.end(),
                                StartPosition::Offset(o) => o,
                                StartPosition::Timestamp(_) => unreachable!(),
                            });
                        }
                        let read = log.read(&mut r.cursor, &r.filters);
                        let (upto, after) = match &read {
                            Read::Empty | Read::Ahead { .. } => break,
                            Read::Yield => continue,
                            Read::Record(rec) => {
                                prop_assert!(matches_any(&r.filters, rec.key.as_deref(), &[]));
                                (rec.offset, rec.offset + 1)
                            }
                            Read::Gap { from, to } => {
                                prop_assert!(to > from);
                                (*from, *to)
                            }
                        };
                        let Some(at) = r.at else {
                            prop_assert!(false, "read before the log started");
                            break;
                        };
                        prop_assert!(upto >= at, "ordered, no duplicate");
                        for (o, skipped) in appended.range(at..upto) {
                            prop_assert!(
                                may_skip(&log, &appended, &r.filters, skipped),
                                "record {} was skipped without a gap", o
                            );
                        }
                        r.at = Some(after);
                    }
                }
            }
            prop_assert!(
                log.segments.back().is_none_or(|s| log.compacted_below <= s.base),
                "the newest segment is never compacted"
            );
            let held: u64 = appended
                .values()
                .filter(|r| log.start().is_some_and(|s| r.offset >= s))
                .filter(|r| !dropped.contains(&r.offset))
                .map(CachedRecord::size)
                .sum();
            prop_assert_eq!(log.bytes(), held);
        }
    }
}

proptest! {
    /// On a compacted topic, a reader that reads along gets every record, and one that starts
    /// late, and one that starts at the end, both end up with the newest value of every key;
    /// the late one never sees a compacted record (below the horizon, with a newer record of
    /// its key appended when it read).
    #[test]
    fn compaction_gives_the_newest_per_key(
        rows in prop::collection::vec((0u8..4, prop::option::weighted(0.8, 0u8..10)), 1..60),
        compact_at in 0usize..60,
        late_at in 0usize..60,
        known_at in 0usize..8,
        step in 0u64..2 * COMPACTION_LAG_MS,
    ) {
        let mut retention = small();
        retention.compact = true;
        retention.delete = false;
        retention.delete_retention_ms = u64::MAX;
        // The topic's config may become known a little after the first records: until then
        // the log does not compact.
        let mut log = PartitionLog::new(Retention { compact: false, ..retention });
        if known_at == 0 {
            log.set_retention(retention);
        }
        let mut along = Cursor::new(StartPosition::Earliest);
        let mut late = Cursor::new(StartPosition::Earliest);
        let mut read_along = Vec::new();
        let mut seen_late: BTreeMap<String, Option<Bytes>> = BTreeMap::new();
        let mut newest: BTreeMap<String, Option<Bytes>> = BTreeMap::new();
        let read_into = |log: &PartitionLog, c: &mut Cursor, seen: &mut BTreeMap<String, Option<Bytes>>| {
            for read in drain(log, c, &[]) {
                if let Read::Record(r) = read {
                    let key = String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned();
                    seen.insert(key, r.value.clone());
                }
            }
        };
        let mut now = 0;
        for (i, (key, value)) in rows.iter().enumerate() {
            now = i as u64 * step;
            let k = format!("k{key}");
            let v = value.map(|v| v.to_string());
            log.append(record(i as i64, Some(&k), v.as_deref()), now).unwrap();
            newest.insert(k, v.map(|v| Bytes::copy_from_slice(v.as_bytes())));
            if i + 1 == known_at {
                log.set_retention(retention);
            }
            if i == compact_at {
                log.evict(now);
            }
            if i >= late_at {
                for read in drain(&log, &mut late, &[]) {
                    if let Read::Record(r) = &read {
                        let key = r.key.clone().unwrap_or_default();
                        let superseded = rows
                            .iter()
                            .enumerate()
                            .take(i + 1)
                            .skip(r.offset as usize + 1)
                            .any(|(_, (k, _))| format!("k{k}").as_bytes() == &key[..]);
                        let compacting = log.retention.compact && r.offset < log.compacted_below;
                        prop_assert!(!(superseded && compacting), "compacted record {} read", r.offset);
                        let name = String::from_utf8_lossy(&key).into_owned();
                        seen_late.insert(name, r.value.clone());
                    }
                }
            }
            read_along.extend(offsets(&drain(&log, &mut along, &[])));
        }
        let every: Vec<i64> = (0..rows.len() as i64).collect();
        prop_assert_eq!(&read_along, &every, "the reader along got every record");
        read_into(&log, &mut late, &mut seen_late);
        prop_assert_eq!(&seen_late, &newest);
        log.evict(now + COMPACTION_LAG_MS);
        let mut fresh = Cursor::new(StartPosition::Earliest);
        let mut seen_fresh = BTreeMap::new();
        read_into(&log, &mut fresh, &mut seen_fresh);
        prop_assert_eq!(&seen_fresh, &newest);
    }
}

#[test]
fn a_cursor_past_the_end_of_a_live_log_is_ahead() {
    let mut log = PartitionLog::new(Retention::default());
    log.append(record(0, None, Some("v")), 0).unwrap();
    let mut beyond = Cursor::new(StartPosition::Offset(5));
    // Still catching up, no high watermark known: the cursor waits.
    assert_eq!(log.read(&mut beyond, &[]), Read::Empty);
    log.set_live();
    assert_eq!(log.read(&mut beyond, &[]), Read::Ahead { next: 5 });
    let mut at_end = Cursor::new(StartPosition::Offset(1));
    assert_eq!(log.read(&mut at_end, &[]), Read::Empty);
}

#[test]
fn a_keyed_reader_catching_up_reads_only_its_keys_records() {
    let mut log = PartitionLog::new(Retention::default());
    log.set_live();
    for offset in 0..10_000 {
        let key = if offset % 5_000 == 4_999 {
            "mine"
        } else {
            "other"
        };
        log.append(record(offset, Some(key), Some("v")), 0).unwrap();
    }
    let mut cursor = Cursor::new(StartPosition::Earliest);
    let filters = [key_filter("mine")];
    // Without the key index each read would look at up to MAX_SCAN records of other keys and
    // yield before reaching the next of its own.
    for expected in [4_999, 9_999] {
        match log.read(&mut cursor, &filters) {
            Read::Record(r) => assert_eq!(r.offset, expected),
            other => panic!("expected record {expected}, got {other:?}"),
        }
    }
    assert!(matches!(log.read(&mut cursor, &filters), Read::Empty));
    assert_eq!(cursor.next(), Some(10_000));
}

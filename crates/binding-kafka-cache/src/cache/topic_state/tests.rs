use binding_api::ext::kafka::{Condition, Filter, KafkaFlushEx, KafkaReplyBeginEx};
use binding_api::frame::{Abort, Begin, End, Reason, ReasonKind};

use super::*;
use crate::config::{CacheOptions, RetentionOverrides};
use crate::log::{Cursor, Read};

const TOPIC: &str = "items";

fn topic() -> TopicState {
    TopicState::new(CacheOptions::default().topic(TOPIC))
}

fn topic_with(default_offset: DefaultOffset, overrides: RetentionOverrides) -> TopicState {
    TopicState::new(TopicOptions {
        name: TOPIC.to_owned(),
        default_offset,
        overrides,
    })
}

fn begin(partitions: &[i32]) -> Upstream {
    let reply = KafkaReplyBeginEx {
        topic: TOPIC.to_owned(),
        partitions: partitions.to_vec(),
    };
    Upstream::Merged(Frame::Begin(Begin {
        ext: BeginEx::Kafka(KafkaBeginEx::Reply(reply)),
    }))
}

fn ex(partition: i32, offset: i64, key: Option<&[u8]>, value_len: Option<usize>) -> KafkaRecordEx {
    KafkaRecordEx {
        partition,
        offset,
        timestamp: offset * 10,
        key: key.map(Bytes::copy_from_slice),
        headers: Default::default(),
        value_len: value_len.map(|l| u32::try_from(l).unwrap_or(u32::MAX)),
        high_watermark: offset + 1,
        progress: None,
    }
}

fn first_frame(ex: KafkaRecordEx, payload: &[u8]) -> Upstream {
    Upstream::Merged(Frame::Data(Data {
        payload: Bytes::copy_from_slice(payload),
        ext: DataEx::Kafka(KafkaDataEx::Record(ex)),
    }))
}

fn continuation(payload: &[u8]) -> Upstream {
    Upstream::Merged(Frame::Data(Data {
        payload: Bytes::copy_from_slice(payload),
        ext: DataEx::Kafka(KafkaDataEx::Continuation),
    }))
}

/// A record in one frame.
fn record(partition: i32, offset: i64, key: Option<&[u8]>, value: &[u8]) -> Upstream {
    first_frame(ex(partition, offset, key, Some(value.len())), value)
}

/// The frames of a record whose value is cut at `cuts` (positions below its length): the
/// first piece in the record's first frame, the others in continuation frames.
fn pieces(ex: KafkaRecordEx, value: &[u8], cuts: &[usize]) -> Vec<Upstream> {
    let mut bounds: Vec<usize> = cuts.iter().copied().filter(|c| *c < value.len()).collect();
    bounds.sort_unstable();
    bounds.dedup();
    bounds.push(value.len());
    let mut frames = vec![first_frame(ex, &value[..bounds[0]])];
    for edge in bounds.windows(2) {
        frames.push(continuation(&value[edge[0]..edge[1]]));
    }
    frames
}

fn caught_up(next: &[(i32, i64)]) -> Upstream {
    Upstream::Merged(Frame::Flush(Flush {
        ext: FlushEx::Kafka(KafkaFlushEx {
            progress: Arc::new(Progress {
                partitions: next.to_vec(),
            }),
        }),
    }))
}

fn configs(pairs: &[(&str, &str)]) -> Upstream {
    let configs = KafkaConfigsEx {
        configs: pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), Some((*v).to_owned())))
            .collect(),
    };
    Upstream::Describe(Frame::Data(Data {
        payload: Bytes::new(),
        ext: DataEx::Kafka(KafkaDataEx::Configs(configs)),
    }))
}

fn abort() -> Frame {
    Frame::Abort(Abort {
        reason: Reason::new(ReasonKind::Refused, "no"),
    })
}

/// Applies `frames` as one batch at `now`.
fn apply(state: &mut TopicState, frames: impl IntoIterator<Item = Upstream>, now: u64) -> Effects {
    let mut effects = Effects::default();
    for frame in frames {
        state.apply(frame, now, &mut effects);
    }
    effects
}

/// The records `cursor` reads from `log`, up to its end (no filter).
fn read_on(log: &PartitionLog, cursor: &mut Cursor) -> Vec<Arc<CachedRecord>> {
    let mut records = Vec::new();
    loop {
        match log.read(cursor, &[]) {
            Read::Record(record) => records.push(record),
            Read::Yield => {}
            Read::Empty => return records,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Every record a log holds.
fn held(log: &PartitionLog) -> Vec<CachedRecord> {
    let mut cursor = Cursor::new(StartPosition::Earliest);
    read_on(log, &mut cursor)
        .into_iter()
        .map(Arc::unwrap_or_clone)
        .collect()
}

fn bytes_held(state: &TopicState) -> u64 {
    state.partitions.values().map(PartitionLog::bytes).sum()
}

fn woke(effects: &Effects, signal: &Arc<Signal>) -> usize {
    effects
        .woken
        .iter()
        .filter(|w| Arc::ptr_eq(w, signal))
        .count()
}

fn park_on_key(state: &mut TopicState, key: &[u8]) -> (crate::wake::ParkId, Arc<Signal>) {
    let signal = Arc::new(Signal::default());
    let filter = Filter {
        conditions: vec![Condition::Key(Bytes::copy_from_slice(key))],
    };
    let id = state
        .parked
        .park(&[filter], signal.clone())
        .expect("by key");
    (id, signal)
}

#[test]
fn the_begin_makes_the_topic_ready_with_its_partitions() {
    let mut state = topic();
    assert_eq!(state.status, Status::Starting);
    let effects = apply(&mut state, [begin(&[0, 1, 2])], 1);
    assert_eq!(state.status, Status::Ready);
    assert_eq!(
        state.partitions.keys().copied().collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert!(state.partitions.values().all(|log| log.start().is_none()));
    assert!(!effects.delivered, "a begin is no delivery");
    assert_eq!(effects.ended, None);
}

#[test]
fn records_are_appended_counted_and_delivered() {
    let mut state = topic();
    let effects = apply(
        &mut state,
        [
            begin(&[0, 1]),
            record(0, 0, Some(b"a"), b"one"),
            record(1, 4, None, b"two"),
            record(0, 1, Some(b"b"), b"three"),
        ],
        5,
    );
    assert!(effects.delivered);
    assert_eq!(effects.appended, 3);
    assert_eq!(effects.grown, bytes_held(&state));
    let values = |p: i32| -> Vec<(i64, Option<Bytes>)> {
        held(&state.partitions[&p])
            .into_iter()
            .map(|r| (r.offset, r.value))
            .collect()
    };
    assert_eq!(
        values(0),
        [
            (0, Some(Bytes::from_static(b"one"))),
            (1, Some(Bytes::from_static(b"three")))
        ]
    );
    assert_eq!(values(1), [(4, Some(Bytes::from_static(b"two")))]);
}

#[test]
fn a_record_below_the_end_is_not_appended_again_nor_wakes() {
    let mut state = topic();
    apply(&mut state, [begin(&[0]), record(0, 0, Some(b"a"), b"x")], 1);
    let (_, signal) = park_on_key(&mut state, b"a");
    let again = apply(&mut state, [record(0, 0, Some(b"a"), b"x")], 2);
    assert_eq!((again.appended, again.grown), (0, 0));
    assert_eq!(woke(&again, &signal), 0);
    assert!(again.delivered, "still a record from Kafka");
    assert_eq!(state.partitions[&0].len(), 1);
}

#[test]
fn a_value_in_pieces_is_appended_once_whole_and_wakes_then() {
    let mut state = topic();
    apply(&mut state, [begin(&[0])], 1);
    let (_, signal) = park_on_key(&mut state, b"k");
    let value = b"0123456789";
    let first = apply(
        &mut state,
        [first_frame(ex(0, 0, Some(b"k"), Some(10)), &value[..3])],
        2,
    );
    assert_eq!(first.appended, 0);
    assert_eq!(woke(&first, &signal), 0, "not before it is whole");
    assert!(state.partitions[&0].is_empty());
    let middle = apply(&mut state, [continuation(&value[3..7])], 3);
    assert_eq!(middle.appended, 0);
    let last = apply(&mut state, [continuation(&value[7..])], 4);
    assert_eq!(last.appended, 1);
    assert_eq!(woke(&last, &signal), 1);
    let records = held(&state.partitions[&0]);
    assert_eq!(records[0].value.as_deref(), Some(&value[..]));
    let stray = apply(&mut state, [continuation(b"more")], 5);
    assert_eq!(
        stray.appended, 0,
        "a continuation with no record is dropped"
    );
}

#[test]
fn a_tombstone_is_appended_without_a_value() {
    let mut state = topic();
    let effects = apply(
        &mut state,
        [begin(&[0]), first_frame(ex(0, 0, Some(b"gone"), None), b"")],
        1,
    );
    assert_eq!(effects.appended, 1);
    let records = held(&state.partitions[&0]);
    assert_eq!(records[0].key.as_deref(), Some(&b"gone"[..]));
    assert_eq!(records[0].value, None);
}

#[test]
fn progress_moves_the_end_past_records_filtered_upstream() {
    let mut state = topic();
    let mut first = ex(0, 0, None, Some(1));
    first.progress = Some(Arc::new(Progress {
        partitions: vec![(0, 5)],
    }));
    apply(&mut state, [begin(&[0]), first_frame(first, b"x")], 1);
    assert_eq!(state.partitions[&0].end(), 5);
    let behind = apply(&mut state, [record(0, 3, None, b"y")], 2);
    assert_eq!(behind.appended, 0);
    let next = apply(&mut state, [record(0, 5, None, b"z")], 3);
    assert_eq!(next.appended, 1);
}

#[test]
fn the_caught_up_flush_makes_the_logs_live_and_later_partitions_start_live() {
    let mut state = topic();
    apply(&mut state, [begin(&[0]), record(2, 0, None, b"early")], 1);
    assert!(!state.partitions[&2].is_live());
    let effects = apply(&mut state, [caught_up(&[(0, 10), (2, 1)])], 2);
    assert!(effects.delivered);
    let log = &state.partitions[&0];
    assert!(log.is_live());
    assert_eq!((log.start(), log.end()), (Some(10), 10));
    assert!(state.partitions[&2].is_live());
    apply(&mut state, [record(3, 0, None, b"late")], 3);
    assert!(state.partitions[&3].is_live(), "gained after catching up");
}

#[test]
fn configs_set_the_retention_of_what_is_held_and_run_it_at_once() {
    let overrides = RetentionOverrides {
        segment_bytes: Some(200),
        ..RetentionOverrides::default()
    };
    let mut state = topic_with(DefaultOffset::Historical, overrides);
    let records = (0..20).map(|o| record(0, o, None, &[7; 100]));
    apply(
        &mut state,
        std::iter::once(begin(&[0])).chain(records),
        1000,
    );
    assert_eq!(
        state.apply_retention(1000),
        0,
        "nothing to evict by default"
    );
    let effects = apply(&mut state, [configs(&[("retention.bytes", "1000")])], 1000);
    assert!(effects.retention_changed);
    assert_eq!(state.retention.bytes, Some(1000));
    assert!(state.configs.is_some());
    assert_eq!(state.partitions[&0].retention(), state.retention);
    let before = bytes_held(&state);
    let freed = state.apply_retention(1000);
    assert!(freed > 0, "ran although it ran at this time already");
    assert_eq!(bytes_held(&state), before - freed);
    assert!(bytes_held(&state) <= 1000);
}

#[test]
fn retention_runs_once_per_interval() {
    let overrides = RetentionOverrides {
        time_ms: Some(100),
        segment_bytes: Some(1),
        ..RetentionOverrides::default()
    };
    let mut state = topic_with(DefaultOffset::Historical, overrides);
    let records = (0..3).map(|o| record(0, o, None, b"v"));
    apply(
        &mut state,
        std::iter::once(begin(&[0])).chain(records),
        1000,
    );
    assert_eq!(state.apply_retention(1000), 0, "nothing expired yet");
    assert_eq!(
        state.apply_retention(1000 + EVICT_EVERY_MS - 1),
        0,
        "expired, but not due"
    );
    let before = bytes_held(&state);
    let freed = state.apply_retention(1000 + EVICT_EVERY_MS);
    assert!(freed > 0);
    assert_eq!(bytes_held(&state), before - freed);
    assert_eq!(
        state.partitions[&0].start(),
        Some(2),
        "the open segment stays"
    );
}

#[test]
fn how_the_merged_stream_ends() {
    let mut state = topic();
    let refused = apply(&mut state, [Upstream::Merged(abort())], 1);
    assert_eq!(refused.ended, Some(StreamEnd::Refused), "before the begin");
    state.open_merged();
    let lost = apply(&mut state, [begin(&[0]), Upstream::Merged(abort())], 2);
    assert_eq!(lost.ended, Some(StreamEnd::Lost), "after the begin");
    state.open_merged();
    let refused = apply(&mut state, [Upstream::Merged(abort())], 3);
    assert_eq!(refused.ended, Some(StreamEnd::Refused), "a new stream");
    state.open_merged();
    let ended = apply(
        &mut state,
        [Upstream::Merged(Frame::End(End::default()))],
        4,
    );
    assert_eq!(ended.ended, Some(StreamEnd::Lost));
}

#[test]
fn describe_frames_other_than_configs_change_nothing() {
    let mut state = topic();
    let effects = apply(
        &mut state,
        [
            Upstream::Describe(Frame::Begin(Begin::default())),
            Upstream::Describe(Frame::End(End::default())),
            Upstream::Describe(abort()),
        ],
        1,
    );
    assert_eq!(
        effects.ended, None,
        "the describe stream is not the merged one"
    );
    assert!(!effects.retention_changed && !effects.delivered);
    assert_eq!(state.status, Status::Starting);
    assert!(state.configs.is_none());
}

#[test]
fn a_new_merged_stream_resumes_each_log_where_it_ends_and_drops_a_half_record() {
    let mut state = topic();
    apply(
        &mut state,
        [
            begin(&[0, 1]),
            record(0, 5, None, b"a"),
            record(0, 6, None, b"b"),
            first_frame(ex(0, 7, None, Some(10)), b"half"),
        ],
        1,
    );
    let merged = state.open_merged();
    assert_eq!(
        merged,
        KafkaMergedBeginEx {
            topic: TOPIC.to_owned(),
            partitions: vec![(0, StartPosition::Offset(7))],
            default_start: StartPosition::Earliest,
            filters: Vec::new(),
            isolation: Isolation::ReadCommitted,
        },
        "partition 1 has not started: the default"
    );
    let effects = apply(&mut state, [begin(&[0, 1]), continuation(b"rest!!")], 2);
    assert_eq!(effects.appended, 0, "the half record went with its stream");
    assert_eq!(state.partitions[&0].end(), 7);
    let live = topic_with(DefaultOffset::Live, RetentionOverrides::default()).open_merged();
    assert_eq!(live.default_start, StartPosition::Latest);
}

mod properties;

#[test]
fn totals_are_the_records_bytes_and_lag_of_every_partition() {
    let mut state = topic();
    assert_eq!(state.totals(), Totals::default());
    let mut behind = ex(1, 4, None, Some(3));
    behind.high_watermark = 10;
    apply(
        &mut state,
        [
            begin(&[0, 1]),
            record(0, 0, None, b"abc"),
            record(0, 1, None, b"de"),
            first_frame(behind, b"xyz"),
        ],
        1,
    );
    let totals = state.totals();
    assert_eq!(totals.records, 3);
    assert_eq!(totals.bytes, bytes_held(&state));
    // Partition 0 has what the broker has; partition 1 ends at 5 of 10.
    assert_eq!(totals.lag, 5);
    apply(&mut state, [caught_up(&[(0, 2), (1, 10)])], 2);
    assert_eq!(state.totals().lag, 0, "caught up");
}

//! Properties of the topic's state over any sequence of records, cut into frames and
//! batches any way.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

/// A record as a property test draws it: its offset is its partition's end plus `delta - 1`
/// (0: the last offset again, 2: one offset skipped), its value cut at `cuts`.
#[derive(Clone, Debug)]
struct Drawn {
    partition: i32,
    delta: i64,
    key: Option<u8>,
    value: Vec<u8>,
    cuts: Vec<usize>,
}

fn drawn(max_value: usize) -> impl Strategy<Value = Drawn> {
    (
        0i32..3,
        0i64..3,
        prop::option::of(0u8..4),
        prop::collection::vec(any::<u8>(), 0..max_value),
        prop::collection::vec(0usize..max_value, 0..4),
    )
        .prop_map(|(partition, delta, key, value, cuts)| Drawn {
            partition,
            delta,
            key,
            value,
            cuts,
        })
}

fn key_of(k: u8) -> Vec<u8> {
    vec![b'k', k]
}

/// One record fed to the state, with what the test expects of it.
struct Fed {
    ex: KafkaRecordEx,
    value: Vec<u8>,
    /// Its offset is at or past its log's end: it is appended.
    new: bool,
    /// The index of the frame that completes it.
    last_frame: usize,
}

/// The frames of `records` after a begin of partitions 0 to 2, whole or in pieces, and
/// what each record is.
fn frames_of(records: &[Drawn], split: bool) -> (Vec<Upstream>, Vec<Fed>) {
    let mut frames = vec![begin(&[0, 1, 2])];
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    let mut fed = Vec::new();
    for r in records {
        let end = ends.entry(r.partition).or_insert(0);
        let offset = (*end + r.delta - 1).max(0);
        let new = offset >= *end;
        if new {
            *end = offset + 1;
        }
        let key = r.key.map(key_of);
        let ex = ex(r.partition, offset, key.as_deref(), Some(r.value.len()));
        let cuts = if split { &r.cuts[..] } else { &[] };
        frames.extend(pieces(ex.clone(), &r.value, cuts));
        fed.push(Fed {
            ex,
            value: r.value.clone(),
            new,
            last_frame: frames.len() - 1,
        });
    }
    (frames, fed)
}

/// Applies `frames` in batches of `batch` frames, 10 ms apart.
fn apply_batches(state: &mut TopicState, frames: Vec<Upstream>, batch: usize) -> Vec<Effects> {
    let mut all = Vec::new();
    let mut frames = frames.into_iter().peekable();
    let mut now = EVICT_EVERY_MS;
    while frames.peek().is_some() {
        all.push(apply(state, frames.by_ref().take(batch), now));
        now += 10;
    }
    all
}

proptest! {
    /// Whatever the cuts, a record whose value arrives in pieces is held exactly as the
    /// same record arriving whole.
    #[test]
    fn a_value_in_pieces_reassembles_whatever_the_cuts(
        records in prop::collection::vec(drawn(64), 1..40),
        batch in 1usize..8,
    ) {
        let (whole, _) = frames_of(&records, false);
        let (split, fed) = frames_of(&records, true);
        let mut a = topic();
        let mut b = topic();
        let effects_a = apply_batches(&mut a, whole, batch);
        let effects_b = apply_batches(&mut b, split, batch);
        let sum = |e: &[Effects]| -> (u64, u64) {
            (e.iter().map(|e| e.appended).sum(), e.iter().map(|e| e.grown).sum())
        };
        prop_assert_eq!(sum(&effects_a), sum(&effects_b));
        for p in 0..3 {
            prop_assert_eq!(held(&a.partitions[&p]), held(&b.partitions[&p]));
        }
        for f in fed.iter().filter(|f| f.new) {
            let log = &b.partitions[&f.ex.partition];
            let record = held(log).into_iter().find(|r| r.offset == f.ex.offset);
            let value = record.and_then(|r| r.value);
            prop_assert_eq!(value.as_deref(), Some(&f.value[..]));
        }
    }

    /// Offsets increase in every log, and a reader that reads along between batches gets
    /// every new record of its partition once, in order; the records counted appended and
    /// the bytes counted grown are what the logs hold.
    #[test]
    fn a_reader_gets_every_new_record_once_in_offset_order(
        records in prop::collection::vec(drawn(24), 1..80),
        batch in 1usize..8,
    ) {
        let (frames, fed) = frames_of(&records, true);
        let mut state = topic();
        let mut cursors: BTreeMap<i32, Cursor> =
            (0..3).map(|p| (p, Cursor::new(StartPosition::Earliest))).collect();
        let mut seen: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
        let (mut appended, mut grown) = (0, 0);
        let mut frames = frames.into_iter().peekable();
        while frames.peek().is_some() {
            let effects = apply(&mut state, frames.by_ref().take(batch), 1);
            appended += effects.appended;
            grown += effects.grown;
            for (p, cursor) in &mut cursors {
                let read = read_on(&state.partitions[p], cursor);
                seen.entry(*p).or_default().extend(read.iter().map(|r| r.offset));
            }
        }
        for p in 0..3 {
            let expected: Vec<i64> = fed
                .iter()
                .filter(|f| f.new && f.ex.partition == p)
                .map(|f| f.ex.offset)
                .collect();
            let got = seen.remove(&p).unwrap_or_default();
            prop_assert!(got.windows(2).all(|w| w[0] < w[1]), "increasing: {:?}", got);
            prop_assert_eq!(got, expected);
        }
        prop_assert_eq!(appended, fed.iter().filter(|f| f.new).count() as u64);
        prop_assert_eq!(grown, bytes_held(&state));
    }

    /// With `retention.bytes` from Kafka, no partition holds more than that once retention
    /// ran (records are far smaller than a segment, a quarter of it), and the bytes counted
    /// grown less those freed are what the logs hold.
    #[test]
    fn a_partition_holds_at_most_retention_bytes_after_retention(
        records in prop::collection::vec(drawn(200), 1..150),
        limit in 1000u64..5000,
        batch in 1usize..16,
        steps in prop::collection::vec(EVICT_EVERY_MS..3 * EVICT_EVERY_MS, 1..8),
    ) {
        let mut state = topic();
        let limit_text = limit.to_string();
        let mut counted = 0u64;
        let mut now = EVICT_EVERY_MS;
        let effects = apply(&mut state, [configs(&[("retention.bytes", &limit_text)])], now);
        prop_assert!(effects.retention_changed);
        let (frames, _) = frames_of(&records, true);
        let mut frames = frames.into_iter().peekable();
        let mut step = steps.iter().cycle();
        while frames.peek().is_some() {
            let effects = apply(&mut state, frames.by_ref().take(batch), now);
            counted += effects.grown;
            counted -= state.apply_retention(now);
            for (p, log) in &state.partitions {
                prop_assert!(log.bytes() <= limit, "partition {} holds {}", p, log.bytes());
            }
            prop_assert_eq!(counted, bytes_held(&state));
            now += step.next().copied().unwrap_or(EVICT_EVERY_MS);
        }
    }

    /// A subscriber parked on a key is woken once, in the batch that completes the first
    /// new record of that key, and by nothing else; it learns the first such offset of
    /// every partition.
    #[test]
    fn a_parked_subscriber_is_woken_by_the_first_new_record_of_its_key(
        records in prop::collection::vec(drawn(16), 1..60),
        batch in 1usize..8,
    ) {
        let (frames, fed) = frames_of(&records, true);
        let mut state = topic();
        let parked: Vec<_> = (0..4u8).map(|k| (k, park_on_key(&mut state, &key_of(k)))).collect();
        let frame_count = frames.len();
        let effects = apply_batches(&mut state, frames, batch);
        prop_assert_eq!(effects.len(), frame_count.div_ceil(batch));
        for (k, (id, signal)) in parked {
            let key = key_of(k);
            let mine: Vec<&Fed> = fed
                .iter()
                .filter(|f| f.new && f.ex.key.as_deref() == Some(&key[..]))
                .collect();
            let woken: Vec<usize> = effects
                .iter()
                .enumerate()
                .flat_map(|(i, e)| std::iter::repeat_n(i, woke(e, &signal)))
                .collect();
            let expected: Vec<usize> =
                mine.first().map(|f| f.last_frame / batch).into_iter().collect();
            prop_assert_eq!(woken, expected, "key {}", k);
            let mut first = BTreeMap::new();
            for f in &mine {
                first.entry(f.ex.partition).or_insert(f.ex.offset);
            }
            prop_assert_eq!(state.parked.unpark(id), first);
        }
    }
}

use binding_api::ext::kafka::StartPosition;
use bytes::Bytes;

use super::*;
use crate::proto::error::{NOT_LEADER_OR_FOLLOWER, OFFSET_OUT_OF_RANGE};

mod property;

const SLOW: Duration = Duration::from_millis(400);

fn plan(merged: bool) -> Plan {
    Plan {
        topic: "t".into(),
        merged,
        only: None,
        starts: Vec::new(),
        default_start: StartPosition::Earliest,
        filters: Vec::new(),
        read_committed: true,
    }
}

fn set(merged: bool, parts: &[(i32, i32, i64)]) -> PartitionSet {
    PartitionSet::new(&plan(merged), parts.iter().copied())
}

fn data(partition: i32, error_code: i16, high_watermark: i64, any: bool) -> PartitionData {
    PartitionData {
        topic: "t".into(),
        partition,
        error_code,
        high_watermark,
        last_stable_offset: -1,
        log_start_offset: -1,
        aborted: Vec::new(),
        records: if any {
            Bytes::from_static(b"batch")
        } else {
            Bytes::new()
        },
    }
}

/// What a response says of one partition.
#[derive(Clone, Copy, Debug)]
enum Says {
    /// `count` records from where it was fetched; the high watermark `ahead` past them.
    Records { count: i64, ahead: i64 },
    /// An error code.
    Error(i16),
}

/// Reads a response to a fetch of `asked` as `serve` does, with what it `says` of some
/// partitions (those left out are not answered), records read as the window allows; then
/// settles it at `now`.
fn respond(
    set: &mut PartitionSet,
    asked: &[i32],
    says: &[(i32, Says)],
    elapsed: Duration,
    now: Instant,
) -> (Result<(), ClientError>, Vec<Stall>) {
    set.returned(asked);
    let mut answers = set.answers(asked);
    let mut read = || -> Result<(), ClientError> {
        for &(partition, said) in says {
            let from = set.next(partition).unwrap_or(0);
            let (data, count) = match said {
                Says::Records { count, ahead } => {
                    (data(partition, 0, from + count + ahead, count > 0), count)
                }
                Says::Error(code) => (data(partition, code, -1, false), 0),
            };
            let Some(window) = set.answer(&mut answers, &data)? else {
                continue;
            };
            for offset in window.from..window.from + count {
                if offset >= window.limit {
                    break;
                }
                set.record_read(&mut answers, &window, offset + 1);
            }
            set.partition_read(&mut answers, &window, window.from + count);
        }
        Ok(())
    };
    let result = read();
    let stalls = set.settle(answers, elapsed, now);
    (result, stalls)
}

fn planned(fetches: &[PlannedFetch]) -> Vec<(i32, Vec<(i32, i64)>)> {
    fetches
        .iter()
        .map(|f| {
            let parts = f.partitions.iter().map(|p| (p.partition, p.offset));
            (f.leader, parts.collect())
        })
        .collect()
}

#[test]
fn plans_one_fetch_per_leader_of_the_partitions_free_to_fetch() {
    let now = Instant::now();
    let mut set = set(true, &[(0, 1, 10), (1, 2, 20), (2, 1, 30), (3, -1, 40)]);
    assert!(
        set.plan_fetches(0, 0, now).is_empty(),
        "no credit, no fetch"
    );
    let fetches = set.plan_fetches(10_000, 0, now);
    assert_eq!(
        planned(&fetches),
        vec![(1, vec![(0, 10), (2, 30)]), (2, vec![(1, 20)])],
        "partition 3 has no leader"
    );
    assert_eq!(fetches[0].max_bytes, 10_000);
    assert!(fetches[0].partitions.iter().all(|p| p.max_bytes == 5_000));
    assert_eq!(fetches[1].partitions[0].max_bytes, 10_000);
    assert_eq!(fetches[0].asked(), vec![0, 2]);
    assert!(set.plan_fetches(10_000, 2, now).is_empty(), "all in flight");
    set.returned(&[1]);
    assert_eq!(
        planned(&set.plan_fetches(10_000, 1, now)),
        vec![(2, vec![(1, 20)])]
    );
}

#[test]
fn fetches_are_sized_by_the_credit_shared_among_those_in_flight() {
    let now = Instant::now();
    let sizes = |credit, in_flight, leaders: &[i32]| {
        let starts: Vec<_> = (0..).zip(leaders.iter()).map(|(p, l)| (p, *l, 0)).collect();
        let fetches = set(true, &starts).plan_fetches(credit, in_flight, now);
        (fetches[0].max_bytes, fetches[0].partitions[0].max_bytes)
    };
    assert_eq!(sizes(100, 0, &[1]), (1024, 1024), "at least 1 KiB");
    assert_eq!(sizes(u64::MAX, 0, &[1]), (MAX_FETCH_BYTES, MAX_FETCH_BYTES));
    assert_eq!(sizes(8192, 4, &[1]), (2048, 2048));
    assert_eq!(
        sizes(8192, 4, &[1, 1, 1, 1]),
        (2048, 1024),
        "1 KiB each at least"
    );
    assert_eq!(sizes(8192, 0, &[1, 1]), (8192, 4096));
}

#[test]
fn a_fetch_stream_moves_on_catches_up_and_flushes_once() {
    let now = Instant::now();
    let mut set = set(false, &[(0, 1, 5)]);
    set.plan_fetches(10_000, 0, now);
    let says = [(0, Says::Records { count: 3, ahead: 2 })];
    let (result, stalls) = respond(&mut set, &[0], &says, SLOW, now);
    assert!(result.is_ok() && stalls.is_empty());
    assert_eq!(set.next(0), Some(8));
    assert_eq!(
        set.record_progress(),
        None,
        "fetch records carry no progress"
    );
    assert_eq!(set.caught_up_flush(), None, "two records to go");
    assert_eq!(
        planned(&set.plan_fetches(10_000, 0, now)),
        vec![(1, vec![(0, 8)])]
    );
    let says = [(0, Says::Records { count: 2, ahead: 0 })];
    assert!(respond(&mut set, &[0], &says, SLOW, now).0.is_ok());
    let flush = set.caught_up_flush().map(|p| p.partitions.clone());
    assert_eq!(flush, Some(vec![(0, 10)]));
    set.plan_fetches(10_000, 0, now);
    let says = [(0, Says::Records { count: 4, ahead: 0 })];
    assert!(respond(&mut set, &[0], &says, SLOW, now).0.is_ok());
    assert_eq!(set.next(0), Some(14));
    assert_eq!(set.caught_up_flush(), None, "once");
}

#[test]
fn a_merged_stream_reports_progress_past_each_record_and_flushes_when_all_caught_up() {
    let now = Instant::now();
    let mut set = set(true, &[(0, 1, 0), (1, 1, 7)]);
    set.plan_fetches(10_000, 0, now);
    set.returned(&[0, 1]);
    let mut answers = set.answers(&[0, 1]);
    let window = set.answer(&mut answers, &data(0, 0, 2, true));
    let window = window.ok().flatten().expect("records to read");
    set.record_read(&mut answers, &window, 1);
    let progress = set.record_progress().map(|p| p.partitions.clone());
    assert_eq!(progress, Some(vec![(0, 1), (1, 7)]));
    set.record_read(&mut answers, &window, 2);
    set.partition_read(&mut answers, &window, 2);
    assert!(set.settle(answers, SLOW, now).is_empty());
    assert_eq!(set.caught_up_flush(), None, "partition 1 not caught up");
    set.plan_fetches(10_000, 0, now);
    // Partition 0 caught up once: more records written since do not hold the flush up.
    let says = [
        (0, Says::Records { count: 1, ahead: 3 }),
        (1, Says::Records { count: 0, ahead: 0 }),
    ];
    assert!(respond(&mut set, &[0, 1], &says, SLOW, now).0.is_ok());
    let flush = set.caught_up_flush().map(|p| p.partitions.clone());
    assert_eq!(flush, Some(vec![(0, 3), (1, 7)]));
}

#[test]
fn records_at_or_past_the_high_watermark_are_not_read() {
    let now = Instant::now();
    let mut set = set(true, &[(0, 1, 0)]);
    set.plan_fetches(10_000, 0, now);
    set.returned(&[0]);
    let mut answers = set.answers(&[0]);
    let window = set.answer(&mut answers, &data(0, 0, 3, true));
    let window = window.ok().flatten().expect("records to read");
    assert_eq!((window.from, window.limit), (0, 3));
    // The batches went on to offset 9: the partition moves to the high watermark only.
    set.partition_read(&mut answers, &window, 9);
    assert_eq!(set.next(0), Some(3));
}

#[test]
fn read_committed_catches_up_at_the_last_stable_offset() {
    let now = Instant::now();
    let mut set = set(true, &[(0, 1, 0)]);
    set.plan_fetches(10_000, 0, now);
    set.returned(&[0]);
    let mut answers = set.answers(&[0]);
    let open_txn = PartitionData {
        last_stable_offset: 4,
        ..data(0, 0, 9, true)
    };
    let window = set.answer(&mut answers, &open_txn);
    let window = window.ok().flatten().expect("records to read");
    set.partition_read(&mut answers, &window, 4);
    assert!(set.settle(answers, SLOW, now).is_empty());
    assert!(set.caught_up_flush().is_some());
}

#[test]
fn an_error_asking_again_cannot_mend_fails_the_response() {
    let now = Instant::now();
    let mut set = set(true, &[(0, 1, 0), (1, 1, 0)]);
    set.plan_fetches(10_000, 0, now);
    let says = [(0, Says::Error(OFFSET_OUT_OF_RANGE))];
    let (result, _) = respond(&mut set, &[0, 1], &says, SLOW, now);
    assert!(matches!(
        result,
        Err(ClientError::Kafka {
            code: OFFSET_OUT_OF_RANGE
        })
    ));
    assert_eq!(set.leader(0), Some(1));
}

#[test]
fn a_moved_leader_is_asked_for_after_a_backoff_that_grows_until_a_fetch_advances() {
    let now = Instant::now();
    let mut set = set(true, &[(0, 1, 0), (1, 2, 0)]);
    assert_eq!(set.refresh_due(), None, "every leader known");
    set.plan_fetches(10_000, 0, now);
    let says = [(0, Says::Error(NOT_LEADER_OR_FOLLOWER))];
    let (result, stalls) = respond(&mut set, &[0], &says, SLOW, now);
    assert!(result.is_ok());
    assert!(stalls.is_empty(), "a failed answer is not a stall");
    assert_eq!(set.leader(0), Some(-1));
    assert!(
        set.plan_fetches(10_000, 1, now).is_empty(),
        "1 in flight, 0 led by none"
    );
    assert_eq!(set.refresh_due(), Some(BACKOFF_MIN));
    assert_eq!(set.refresh_due(), None, "being asked for");
    set.refreshed([(0, 3), (7, 1)]);
    assert_eq!(
        planned(&set.plan_fetches(10_000, 1, now)),
        vec![(3, vec![(0, 0)])]
    );
    set.leader_lost(&[0]);
    set.returned(&[0]);
    assert_eq!(set.refresh_due(), Some(BACKOFF_MIN * 2));
    set.refreshed([]);
    assert_eq!(set.refresh_due(), Some(BACKOFF_MIN * 4), "asking failed");
    set.refreshed([(0, 1)]);
    set.plan_fetches(10_000, 0, now);
    let says = [(0, Says::Records { count: 1, ahead: 0 })];
    assert!(respond(&mut set, &[0], &says, SLOW, now).0.is_ok());
    set.leader_lost(&[0]);
    assert_eq!(set.refresh_due(), Some(BACKOFF_MIN), "a fetch advanced");
}

#[test]
fn a_lost_leader_stops_only_its_own_partitions() {
    let now = Instant::now();
    let mut set = set(true, &[(0, 1, 0), (1, 2, 0), (2, 1, 0), (3, 2, 0)]);
    let fetches = set.plan_fetches(10_000, 0, now);
    let lost = fetches[0].asked();
    set.returned(&lost);
    set.leader_lost(&lost);
    set.returned(&fetches[1].asked());
    assert_eq!(
        planned(&set.plan_fetches(10_000, 0, now)),
        vec![(2, vec![(1, 0), (3, 0)])]
    );
    assert_eq!(set.leader(1), Some(2));
    assert_eq!(set.leader(2), Some(-1));
}

#[test]
fn partitions_a_fetch_brings_nothing_new_wait_before_they_are_fetched_again() {
    let now = Instant::now();
    let mut set = set(true, &[(0, 1, 4), (1, 1, 4), (2, 1, 4)]);
    set.plan_fetches(10_000, 0, now);
    // Partition 0 empty though more is there, 1 not answered, 2 caught up: only 0 and 1 wait;
    // data of a partition not asked for is not read.
    let says = [
        (0, Says::Records { count: 0, ahead: 5 }),
        (2, Says::Records { count: 0, ahead: 0 }),
        (9, Says::Records { count: 3, ahead: 0 }),
    ];
    let (result, stalls) = respond(&mut set, &[0, 1, 2], &says, SLOW, now);
    assert!(result.is_ok());
    let waits: Vec<_> = stalls
        .iter()
        .map(|s| (s.partition, s.cause, s.end))
        .collect();
    assert_eq!(
        waits,
        vec![(0, Cause::Empty, Some(9)), (1, Cause::Unanswered, None)]
    );
    assert!(
        stalls
            .iter()
            .all(|s| s.delay == BACKOFF_MIN && s.offset == 4)
    );
    assert_eq!(set.resume_at(now), Some(now + BACKOFF_MIN));
    assert_eq!(
        planned(&set.plan_fetches(10_000, 0, now)),
        vec![(1, vec![(2, 4)])]
    );
    let later = now + BACKOFF_MIN;
    assert_eq!(set.resume_at(later), None);
    let fetches = set.plan_fetches(10_000, 1, later);
    assert_eq!(planned(&fetches), vec![(1, vec![(0, 4), (1, 4)])]);
    // Nothing again: the wait doubles; an advance ends it.
    let (_, stalls) = respond(&mut set, &[0, 1], &[], SLOW, later);
    assert!(stalls.iter().all(|s| s.delay == BACKOFF_MIN * 2));
    let again = later + BACKOFF_MIN * 2;
    set.plan_fetches(10_000, 1, again);
    let says = [(1, Says::Records { count: 1, ahead: 0 })];
    let (_, stalls) = respond(&mut set, &[0, 1], &says, SLOW, again);
    assert!(stalls.is_empty(), "one partition advanced");
    set.returned(&[2]);
    let (_, stalls) = respond(&mut set, &[1], &[], SLOW, again);
    assert_eq!(stalls.first().map(|s| s.delay), Some(BACKOFF_MIN));
}

#[test]
fn gained_partitions_are_read_from_where_they_were_found() {
    let now = Instant::now();
    let mut set = set(true, &[(0, 1, 5)]);
    set.gained(2, 1, 0);
    set.gained(0, 3, 0);
    assert_eq!(set.ids(), vec![0, 2]);
    assert_eq!(
        (set.next(0), set.leader(0)),
        (Some(5), Some(1)),
        "known already"
    );
    let progress = set.record_progress().map(|p| p.partitions.clone());
    assert_eq!(progress, Some(vec![(0, 5), (2, 0)]));
    assert_eq!(
        planned(&set.plan_fetches(10_000, 0, now)),
        vec![(1, vec![(0, 5), (2, 0)])]
    );
    let says = [(0, Says::Records { count: 0, ahead: 0 })];
    assert!(respond(&mut set, &[0, 2], &says, SLOW, now).0.is_ok());
    assert!(
        set.caught_up_flush().is_some(),
        "a gained partition holds nothing up"
    );
}

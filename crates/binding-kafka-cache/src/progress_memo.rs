//! Progress snapshots shared by the subscribers at the same position: after a record, every
//! subscriber that read it from the same position holds the same progress, so the first
//! builds it and the others take a reference (per worker, [`Worker::local`]). Without it each
//! subscriber copied its progress for every record (the previous snapshot is still held by
//! the record sent before), two allocations per delivery.
//!
//! A snapshot is looked up by the progress it would be — `from` with one partition moved —
//! without building it; a collision costs a build, never a wrong snapshot.
//!
//! [`Worker::local`]: binding_api::binding::Worker::local

use std::cell::RefCell;
use std::sync::Arc;

use binding_api::ext::kafka::Progress;
use binding_api::memo::{Mix, Slots};

/// Snapshots kept per worker.
pub const SLOTS: usize = 1024;
/// The most partitions of a snapshot kept (wider ones are built per subscriber).
pub const MAX_PARTITIONS: usize = 64;

struct Entry {
    hash: u64,
    progress: Arc<Progress>,
}

/// The snapshots built on one worker: each subscriber takes the worker's
/// ([`Worker::local`](binding_api::binding::Worker::local)).
pub struct ProgressMemo(RefCell<Slots<Entry>>);

impl Default for ProgressMemo {
    fn default() -> Self {
        ProgressMemo(RefCell::new(Slots::new(SLOTS)))
    }
}

impl ProgressMemo {
    /// `progress` with `partition` moved to `next`: shared with the subscribers that made
    /// the same move from the same place.
    pub fn advance(&self, progress: &mut Arc<Progress>, partition: i32, next: i64) {
        let Ok(index) = progress
            .partitions
            .binary_search_by_key(&partition, |(p, _)| *p)
        else {
            // A partition not known yet: rare, built here.
            Arc::make_mut(progress).set(partition, next);
            return;
        };
        if progress.partitions[index].1 == next {
            return;
        }
        if progress.partitions.len() > MAX_PARTITIONS {
            Arc::make_mut(progress).set(partition, next);
            return;
        }
        let moved =
            |i: usize, entry: (i32, i64)| if i == index { (partition, next) } else { entry };
        let hash = progress
            .partitions
            .iter()
            .enumerate()
            .fold(Mix::default(), |mix, (i, &entry)| {
                let (p, n) = moved(i, entry);
                mix.word(u64::from(p as u32)).word(n as u64)
            })
            .finish();
        let shared = self.0.borrow_mut().read_or_build(
            hash,
            |entry| {
                entry.hash == hash
                    && entry.progress.partitions.len() == progress.partitions.len()
                    && entry
                        .progress
                        .partitions
                        .iter()
                        .zip(progress.partitions.iter().enumerate())
                        .all(|(&a, (i, &b))| a == moved(i, b))
            },
            || {
                let mut built = Progress::clone(progress);
                built.partitions[index].1 = next;
                Entry {
                    hash,
                    progress: Arc::new(built),
                }
            },
            |entry| Arc::clone(&entry.progress),
        );
        *progress = shared;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever was advanced before on this worker, advancing gives the progress a plain
        /// update gives.
        #[test]
        fn advancing_gives_what_setting_gives(
            moves in prop::collection::vec(
                (prop::collection::vec((0i32..4, 0i64..4), 0..4), 0i32..5, 0i64..5),
                1..200,
            )
        ) {
            let memo = ProgressMemo::default();
            for (start, partition, next) in moves {
                let mut expected = Progress::default();
                for (p, n) in start {
                    expected.set(p, n);
                }
                let mut progress = Arc::new(expected.clone());
                expected.set(partition, next);
                memo.advance(&mut progress, partition, next);
                prop_assert_eq!(&*progress, &expected);
            }
        }
    }

    #[test]
    fn subscribers_making_the_same_move_share_one_snapshot() {
        let from = Progress {
            partitions: vec![(0, 7), (1, 3)],
        };
        let memo = ProgressMemo::default();
        let mut a = Arc::new(from.clone());
        let mut b = Arc::new(from);
        memo.advance(&mut a, 1, 4);
        memo.advance(&mut b, 1, 4);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.partitions, [(0, 7), (1, 4)]);
    }
}

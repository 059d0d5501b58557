//! The partition set under random fetches, answers, failures and leader moves.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

/// What happens next to a set, in the property below.
#[derive(Clone, Debug)]
enum Step {
    /// Fetches are planned with `credit`, `ms` later.
    Plan { credit: u64, ms: u64 },
    /// A fetch in flight (by index, modulo) answers, for the partitions asked in turn: `None`
    /// nothing, `Some((0, ..))` a moved leader, else `Some((_, count, ahead))` `count`
    /// records with the high watermark `ahead` past them; it took `elapsed` ms.
    Answer {
        fetch: usize,
        says: Vec<Option<(u8, i64, i64)>>,
        elapsed: u64,
    },
    /// A fetch in flight fails: its connection is lost.
    Lose { fetch: usize },
    /// The leaders are asked for: partition `p` is led by `leaders[p % len]`.
    Refresh { leaders: Vec<i32> },
}

fn step() -> impl Strategy<Value = Step> {
    let says = proptest::option::of((0u8..3, 0i64..4, 0i64..3));
    prop_oneof![
        (0u64..20_000, 0u64..3_000).prop_map(|(credit, ms)| Step::Plan { credit, ms }),
        (any::<usize>(), prop::collection::vec(says, 1..4), 0u64..600).prop_map(
            |(fetch, says, elapsed)| Step::Answer {
                fetch,
                says,
                elapsed
            }
        ),
        any::<usize>().prop_map(|fetch| Step::Lose { fetch }),
        prop::collection::vec(-1i32..3, 1..4).prop_map(|leaders| Step::Refresh { leaders }),
    ]
}

/// A set under `steps`, checked against what the stream needs of it after each one.
struct Run {
    set: PartitionSet,
    now: Instant,
    in_flight: Vec<PlannedFetch>,
    next: BTreeMap<i32, i64>,
    /// Partitions a response read to the end of its readable records.
    caught_up: BTreeSet<i32>,
    flushes: usize,
}

impl Run {
    fn new(leaders: &[i32]) -> Self {
        let starts: Vec<_> = (0i32..)
            .zip(leaders)
            .map(|(p, l)| (p, *l, 10 * i64::from(p)))
            .collect();
        Run {
            set: set(true, &starts),
            now: Instant::now(),
            in_flight: Vec::new(),
            next: starts.iter().map(|(p, _, n)| (*p, *n)).collect(),
            caught_up: BTreeSet::new(),
            flushes: 0,
        }
    }

    /// Plans fetches: none of a partition in flight, each at its next offset from its leader.
    fn plan(&mut self, credit: u64) -> Result<Vec<i32>, TestCaseError> {
        let fetches = self
            .set
            .plan_fetches(credit, self.in_flight.len(), self.now);
        let mut planned = Vec::new();
        for fetch in fetches {
            prop_assert!(fetch.leader >= 0);
            for p in &fetch.partitions {
                let busy = self
                    .in_flight
                    .iter()
                    .flat_map(|f| f.asked())
                    .any(|a| a == p.partition);
                prop_assert!(!busy, "partition {} fetched twice at once", p.partition);
                prop_assert!(!planned.contains(&p.partition));
                prop_assert_eq!(Some(p.offset), self.set.next(p.partition));
                prop_assert_eq!(Some(fetch.leader), self.set.leader(p.partition));
                planned.push(p.partition);
            }
            self.in_flight.push(fetch);
        }
        Ok(planned)
    }

    fn take(&mut self, fetch: usize) -> Option<PlannedFetch> {
        let len = self.in_flight.len();
        (len > 0).then(|| self.in_flight.remove(fetch % len))
    }

    fn run(&mut self, step: Step) -> Result<(), TestCaseError> {
        match step {
            Step::Plan { credit, ms } => {
                self.now += Duration::from_millis(ms);
                self.plan(credit)?;
            }
            Step::Answer {
                fetch,
                says,
                elapsed,
            } => {
                let Some(fetch) = self.take(fetch) else {
                    return Ok(());
                };
                let said: Vec<(i32, Says)> = fetch
                    .asked()
                    .into_iter()
                    .zip(says.iter().cycle())
                    .filter_map(|(p, s)| {
                        let said = match (*s)? {
                            (0, _, _) => Says::Error(NOT_LEADER_OR_FOLLOWER),
                            (_, count, ahead) => Says::Records { count, ahead },
                        };
                        Some((p, said))
                    })
                    .collect();
                let elapsed = Duration::from_millis(elapsed);
                let (result, _) = respond(&mut self.set, &fetch.asked(), &said, elapsed, self.now);
                prop_assert!(result.is_ok());
                for (p, said) in said {
                    if let Says::Records { count, ahead } = said {
                        prop_assert_eq!(self.set.next(p), Some(self.next[&p] + count));
                        if ahead == 0 {
                            self.caught_up.insert(p);
                        }
                    }
                }
                let all = self.caught_up.len() == self.next.len();
                let flush = self.set.caught_up_flush();
                prop_assert_eq!(flush.is_some(), all && self.flushes == 0);
                self.flushes += usize::from(flush.is_some());
            }
            Step::Lose { fetch } => {
                let Some(fetch) = self.take(fetch) else {
                    return Ok(());
                };
                let leaders: Vec<_> = self.next.keys().map(|p| self.set.leader(*p)).collect();
                let lost = fetch.asked();
                self.set.returned(&lost);
                self.set.leader_lost(&lost);
                for (p, before) in self.next.keys().zip(leaders) {
                    let after = self.set.leader(*p);
                    if lost.contains(p) {
                        prop_assert_eq!(after, Some(-1));
                    } else {
                        prop_assert_eq!(after, before, "partition {} of another leader", p);
                    }
                }
                let planned = self.plan(u64::MAX)?;
                prop_assert!(planned.iter().all(|p| !lost.contains(p)));
            }
            Step::Refresh { leaders } => {
                let unknown = self
                    .next
                    .keys()
                    .any(|p| self.set.leader(*p).is_some_and(|l| l < 0));
                let due = self.set.refresh_due();
                prop_assert_eq!(due.is_some(), unknown);
                prop_assert!(due.is_none_or(|d| (BACKOFF_MIN..=BACKOFF_MAX).contains(&d)));
                prop_assert_eq!(self.set.refresh_due(), None);
                let found = self
                    .next
                    .keys()
                    .map(|p| (*p, leaders[*p as usize % leaders.len()]));
                self.set.refreshed(found.collect::<Vec<_>>());
            }
        }
        for (p, next) in &mut self.next {
            let now = self.set.next(*p).unwrap_or(i64::MIN);
            prop_assert!(
                now >= *next,
                "partition {} went back from {} to {}",
                p,
                next,
                now
            );
            *next = now;
        }
        Ok(())
    }

    /// Every fetch answers with nothing new, the leaders are found, the waits pass: with
    /// credit, every partition is planned.
    fn settle_down(&mut self) -> Result<(), TestCaseError> {
        while let Some(fetch) = self.take(0) {
            let says: Vec<_> = fetch
                .asked()
                .into_iter()
                .map(|p| (p, Says::Records { count: 0, ahead: 0 }))
                .collect();
            let (result, _) = respond(&mut self.set, &fetch.asked(), &says, SLOW, self.now);
            prop_assert!(result.is_ok());
        }
        self.set
            .refreshed(self.next.keys().map(|p| (*p, *p % 3)).collect::<Vec<_>>());
        self.now += BACKOFF_MAX;
        prop_assert_eq!(self.set.resume_at(self.now), None);
        let planned = self.plan(1)?;
        let all: Vec<i32> = self.next.keys().copied().collect();
        prop_assert_eq!(
            planned.into_iter().collect::<BTreeSet<_>>(),
            all.into_iter().collect()
        );
        Ok(())
    }
}

proptest! {
    /// Whatever fetches answer, fail or are planned, and wherever leaders move: no partition
    /// is fetched twice at once, each is fetched at its next offset from its leader, offsets
    /// only move forward, a lost connection stops only the partitions it carried, leaders are
    /// asked for exactly while one is unknown, the caught-up flush comes once when every
    /// partition has caught up, and once things settle every partition is fetched again.
    #[test]
    fn partitions_are_fetched_once_at_a_time_and_only_move_forward(
        leaders in prop::collection::vec(-1i32..3, 1..6),
        steps in prop::collection::vec(step(), 1..40),
    ) {
        let mut run = Run::new(&leaders);
        for step in steps {
            run.run(step)?;
        }
        run.settle_down()?;
    }
}

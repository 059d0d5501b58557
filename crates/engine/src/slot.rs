//! Exits that a configuration reload can point elsewhere.
//!
//! A binding reaches each of its exits through a [`Slot`]: the binding of that name now. A
//! reload that rebuilds a binding points its slot at the new one, so the bindings that route
//! to it keep running untouched and open their next streams towards the new one. Each slot
//! keeps, per worker, a [`Severance`] for every stream it handed to the binding it points at,
//! so the streams of a binding the reload replaced or removed can be ended cleanly.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use binding_api::binding::{Binding, Worker};
use binding_api::ext::tcp::Endpoint;
use binding_api::frame::{Reason, ReasonKind};
use binding_api::stream::{Acceptor, Severance};

/// Which slot, and which of the bindings it has pointed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Generation {
    slot: usize,
    generation: usize,
}

/// Makes slots unique within the process.
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

/// The binding of a name, as its callers reach it.
pub struct Slot {
    id: usize,
    name: String,
    current: RwLock<(Arc<dyn Binding>, usize)>,
}

impl Slot {
    /// A slot pointing at `binding`.
    pub fn new(binding: Arc<dyn Binding>) -> Arc<Slot> {
        Arc::new(Slot {
            id: NEXT_SLOT.fetch_add(1, Ordering::Relaxed),
            name: binding.name().to_owned(),
            current: RwLock::new((binding, 0)),
        })
    }

    /// The binding it points at now.
    pub fn binding(&self) -> Arc<dyn Binding> {
        self.read().0.clone()
    }

    /// Points the slot at `binding`; returns the generation it pointed at until now, whose
    /// streams are the caller's to keep or end ([`sever`]).
    pub fn point_at(&self, binding: Arc<dyn Binding>) -> Generation {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        let previous = Generation {
            slot: self.id,
            generation: current.1,
        };
        *current = (binding, current.1 + 1);
        previous
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, (Arc<dyn Binding>, usize)> {
        self.current.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl Binding for Slot {
    fn name(&self) -> &str {
        &self.name
    }

    fn new_stream(&self, stream: Acceptor, worker: &Worker) {
        let (binding, generation) = {
            let current = self.read();
            (current.0.clone(), current.1)
        };
        let key = Generation {
            slot: self.id,
            generation,
        };
        worker.local::<Streams>().track(key, stream.severance());
        binding.new_stream(stream, worker);
    }

    fn default_destination(&self) -> Option<Endpoint> {
        self.binding().default_destination()
    }
}

/// A worker's streams by the slot generation they entered through.
#[derive(Default)]
struct Streams(RefCell<HashMap<Generation, Tracked>>);

/// The streams of one generation on one worker.
struct Tracked {
    streams: Vec<Severance>,
    /// How many streams may be kept before the ended ones are dropped: twice those live at
    /// the last pruning, so pruning costs O(1) per stream and memory stays within twice the
    /// live streams.
    prune_at: usize,
}

/// Pruning starts past this many streams per generation and worker.
const FIRST_PRUNE: usize = 64;

impl Streams {
    fn track(&self, key: Generation, severance: Severance) {
        let mut by_generation = self.0.borrow_mut();
        let tracked = by_generation.entry(key).or_insert_with(|| Tracked {
            streams: Vec::new(),
            prune_at: FIRST_PRUNE,
        });
        if tracked.streams.len() >= tracked.prune_at {
            tracked.streams.retain(Severance::is_live);
            tracked.prune_at = (tracked.streams.len() * 2).max(FIRST_PRUNE);
        }
        tracked.streams.push(severance);
    }

    fn sever(&self, key: Generation) -> usize {
        let Some(tracked) = self.0.borrow_mut().remove(&key) else {
            return 0;
        };
        let live: Vec<Severance> = tracked
            .streams
            .into_iter()
            .filter(Severance::is_live)
            .collect();
        for stream in &live {
            stream.sever(Reason::new(
                ReasonKind::Shutdown,
                "the binding was reconfigured: its configuration changed or was removed",
            ));
        }
        live.len()
    }

    fn forget(&self, key: Generation) {
        self.0.borrow_mut().remove(&key);
    }
}

/// Ends, on this worker, the streams that entered through the given generations (the
/// bindings a reload replaced because their configuration changed, or removed); returns
/// how many were live.
pub fn sever(worker: &Worker, generations: &[Generation]) -> usize {
    let streams = worker.local::<Streams>();
    generations.iter().map(|&key| streams.sever(key)).sum()
}

/// Stops keeping, on this worker, the streams of the given generations, without ending them
/// (bindings rebuilt only because a file they read changed: their streams run on).
pub fn forget(worker: &Worker, generations: &[Generation]) {
    let streams = worker.local::<Streams>();
    for &key in generations {
        streams.forget(key);
    }
}

#[cfg(test)]
mod tests {
    use binding_api::frame::{Begin, Frame};
    use binding_api::stream;
    use tokio_util::sync::CancellationToken;

    use super::*;

    /// Keeps the acceptors it is given, as a binding with open streams does.
    struct Keeper {
        name: &'static str,
        kept: std::sync::Mutex<Vec<Acceptor>>,
    }

    impl Keeper {
        fn new(name: &'static str) -> Arc<Keeper> {
            Arc::new(Keeper {
                name,
                kept: std::sync::Mutex::new(Vec::new()),
            })
        }
    }

    impl Binding for Keeper {
        fn name(&self) -> &str {
            self.name
        }

        fn new_stream(&self, mut stream: Acceptor, _worker: &Worker) {
            stream.output.begin(Begin::default()).unwrap();
            self.kept.lock().unwrap().push(stream);
        }
    }

    #[test]
    fn a_repointed_slot_severs_the_old_bindings_streams_and_keeps_the_new_ones() {
        let worker = Worker::new(0, 1, CancellationToken::new());
        let old = Keeper::new("b");
        let new = Keeper::new("b");
        let slot = Slot::new(old.clone());

        let (mut before, acceptor) = stream::open(Begin::default());
        slot.new_stream(acceptor, &worker);
        let previous = slot.point_at(new.clone());
        let (mut after, acceptor) = stream::open(Begin::default());
        slot.new_stream(acceptor, &worker);
        assert_eq!(
            new.kept.lock().unwrap().len(),
            1,
            "the next stream goes to the new one"
        );

        assert_eq!(sever(&worker, &[previous]), 1);
        assert!(matches!(before.input.try_frame(), Some(Frame::Begin(_))));
        assert!(matches!(before.input.try_frame(), Some(Frame::End(_))));
        assert!(matches!(after.input.try_frame(), Some(Frame::Begin(_))));
        assert!(after.input.try_frame().is_none(), "untouched");
        assert_eq!(sever(&worker, &[previous]), 0, "once");
    }

    #[test]
    fn ended_streams_are_pruned_so_tracking_stays_within_the_live_ones() {
        let worker = Worker::new(0, 1, CancellationToken::new());
        let slot = Slot::new(Keeper::new("b"));
        let dropper: Arc<dyn Binding> = Arc::new(Dropper);
        slot.point_at(dropper);
        for _ in 0..10_000 {
            let (_initiator, acceptor) = stream::open(Begin::default());
            slot.new_stream(acceptor, &worker);
        }
        let streams = worker.local::<Streams>();
        let kept: usize = streams.0.borrow().values().map(|t| t.streams.len()).sum();
        assert!(kept <= FIRST_PRUNE, "{kept} kept");
    }

    /// Drops every stream at once.
    struct Dropper;

    impl Binding for Dropper {
        fn name(&self) -> &str {
            "b"
        }

        fn new_stream(&self, stream: Acceptor, _worker: &Worker) {
            drop(stream);
        }
    }
}

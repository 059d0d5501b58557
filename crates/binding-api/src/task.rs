//! One task per connection: the streams a connection leads to run as parts of its task, each
//! polled only when something it waits for happened.
//!
//! A connection's chain of bindings (tcp, http, sse, sse-kafka, the cache's subscriber) used
//! to be one tokio task per hop, so every event crossed one task wake per hop. Here a
//! [`Task`] owns the futures of every stream spawned while one of its parts runs
//! ([`Worker::spawn`](crate::binding::Worker::spawn)); each part has its own waker, which marks
//! the part ready and wakes the task only if the task is not already running. A frame that
//! crosses four hops inside one connection is four calls to `poll` within one wake of the task.
//!
//! Wakes may come from any thread (the Kafka cache's upstream runs on one worker and wakes
//! subscribers on all of them): a part's waker is `Send` and `Sync`, and a wake that arrives
//! while the task runs is not lost (the task looks again before it sleeps).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// Rounds of ready parts one poll of a task goes through before it yields to other tasks.
const ROUNDS_PER_POLL: usize = 32;

/// A future of a stream, boxed.
type Part = Pin<Box<dyn Future<Output = ()>>>;

/// The task whose parts are being polled on this worker right now, if any.
#[derive(Clone, Default)]
pub(crate) struct Current(Rc<Cell<Option<Rc<Parts>>>>);

impl std::fmt::Debug for Current {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Current")
    }
}

impl Current {
    /// Adds `future` to the task running now; gives it back when no task runs.
    pub(crate) fn join<F>(&self, future: F) -> Result<(), F>
    where
        F: Future<Output = ()> + 'static,
    {
        let Some(parts) = self.0.take() else {
            return Err(future);
        };
        parts.spawned.borrow_mut().push(Box::pin(future));
        self.0.set(Some(parts));
        Ok(())
    }

    /// Makes `parts` (or no task) the running task until the guard drops.
    pub(crate) fn enter(&self, parts: Option<Rc<Parts>>) -> Entered<'_> {
        let previous = self.0.replace(parts);
        Entered {
            current: self,
            previous,
        }
    }
}

/// Restores the task that ran before, also when a part panics.
pub(crate) struct Entered<'a> {
    current: &'a Current,
    previous: Option<Rc<Parts>>,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.current.0.set(self.previous.take());
    }
}

/// What a task's parts share with their wakers, across threads.
#[derive(Default)]
struct Shared {
    /// The tokio task's waker.
    task: Mutex<Option<Waker>>,
    /// The task is polling its parts: a wake only needs to mark the part.
    running: AtomicBool,
    /// A part was woken while the task ran.
    again: AtomicBool,
}

impl Shared {
    fn wake(&self) {
        if self.running.load(Ordering::Acquire) {
            self.again.store(true, Ordering::Release);
            // The task may have stopped running in between: it looks at `again` after it
            // clears `running`, so the mark is seen either way.
            if self.running.load(Ordering::Acquire) {
                return;
            }
        }
        let waker = self.task.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The waker of one part.
struct PartWake {
    ready: AtomicBool,
    shared: Arc<Shared>,
}

impl Wake for PartWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.ready.swap(true, Ordering::AcqRel) {
            self.shared.wake();
        }
    }
}

/// Up to this many parts, a task's slots grow by exactly what is adopted (the parts of one
/// subscription's hops); past it, as a vector does.
const EXACT_SLOTS: usize = 8;

/// A part and its waker.
struct Slot {
    /// `None` once finished.
    future: Option<Part>,
    wake: Arc<PartWake>,
    waker: Waker,
}

/// A task's parts.
#[derive(Default)]
pub(crate) struct Parts {
    slots: RefCell<Vec<Slot>>,
    /// Parts spawned while others were polled, adopted after.
    spawned: RefCell<Vec<Part>>,
    shared: Arc<Shared>,
}

/// A task made of the futures of the streams its first future leads to.
pub(crate) struct Task {
    parts: Rc<Parts>,
    current: Current,
}

impl Task {
    /// A task whose first part is `future`.
    pub(crate) fn new(current: Current, future: Part) -> Task {
        let parts = Rc::new(Parts::default());
        parts.spawned.borrow_mut().push(future);
        Task { parts, current }
    }

    /// A task that runs `open` as its first part, so that whatever `open` spawns joins it.
    pub(crate) fn open<F>(current: Current, open: impl FnOnce() -> F) -> Task
    where
        F: Future<Output = ()> + 'static,
    {
        let parts = Rc::new(Parts::default());
        let future = {
            let _entered = current.enter(Some(parts.clone()));
            open()
        };
        parts.spawned.borrow_mut().push(Box::pin(future));
        Task { parts, current }
    }

    /// Polls the parts that are ready, including those they make ready, for a bounded
    /// number of rounds.
    fn poll_parts(&self) -> Progress {
        let parts = &self.parts;
        for _ in 0..ROUNDS_PER_POLL {
            parts.shared.again.store(false, Ordering::Release);
            self.adopt();
            let mut slots = parts.slots.borrow_mut();
            let mut finished = false;
            for slot in slots.iter_mut() {
                if slot.wake.ready.swap(false, Ordering::AcqRel)
                    && let Some(future) = &mut slot.future
                {
                    let mut cx = Context::from_waker(&slot.waker);
                    if future.as_mut().poll(&mut cx).is_ready() {
                        slot.future = None;
                        finished = true;
                    }
                }
            }
            if finished {
                slots.retain(|slot| slot.future.is_some());
            }
            let empty = slots.is_empty();
            drop(slots);
            if parts.spawned.borrow().is_empty() && !parts.shared.again.load(Ordering::Acquire) {
                return if empty {
                    Progress::Done
                } else {
                    Progress::Idle
                };
            }
        }
        Progress::Busy
    }

    /// Moves the parts spawned since the last round into the slots, ready to poll.
    fn adopt(&self) {
        let spawned = std::mem::take(&mut *self.parts.spawned.borrow_mut());
        if spawned.is_empty() {
            return;
        }
        let mut slots = self.parts.slots.borrow_mut();
        if slots.len() + spawned.len() <= EXACT_SLOTS {
            // A connection's task keeps its few parts for hours: room for those, not the
            // doubling's spare.
            slots.reserve_exact(spawned.len());
        }
        for future in spawned {
            let wake = Arc::new(PartWake {
                ready: AtomicBool::new(true),
                shared: self.parts.shared.clone(),
            });
            let waker = Waker::from(wake.clone());
            slots.push(Slot {
                future: Some(future),
                wake,
                waker,
            });
        }
    }
}

/// Where a task stands after a poll of its parts.
enum Progress {
    /// Every part finished.
    Done,
    /// Every part waits for something.
    Idle,
    /// Parts are still ready after the rounds one poll allows.
    Busy,
}

impl Future for Task {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let task = self.get_mut();
        {
            let mut waker = task
                .parts
                .shared
                .task
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match &*waker {
                Some(known) if known.will_wake(cx.waker()) => {}
                _ => *waker = Some(cx.waker().clone()),
            }
        }
        let _entered = task.current.enter(Some(task.parts.clone()));
        let shared = &task.parts.shared;
        loop {
            shared.running.store(true, Ordering::Release);
            let progress = task.poll_parts();
            shared.running.store(false, Ordering::Release);
            match progress {
                Progress::Done => return Poll::Ready(()),
                Progress::Busy => {
                    // Let the worker's other tasks run; come back for the rest.
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                // A wake that came while the parts ran marked `again` without waking the
                // task: look once more.
                Progress::Idle if shared.again.swap(false, Ordering::AcqRel) => {}
                Progress::Idle => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::frame::{Begin, Data, Frame, Window};
    use crate::stream;

    /// Counts the wakes of the task as a whole.
    #[derive(Default)]
    struct CountingWake(AtomicUsize);

    impl Wake for CountingWake {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll(task: &mut Task, waker: &Waker) -> Poll<()> {
        Pin::new(task).poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn a_frame_crosses_the_parts_of_a_task_in_one_wake() {
        let current = Current::default();
        let (mut source, relay_in) = stream::open(Begin::default());
        let (mut relay_out, mut sink) = stream::open(Begin::default());
        let delivered = Rc::new(Cell::new(0));
        let seen = delivered.clone();
        let inner = current.clone();
        let mut task = Task::open(current.clone(), move || {
            // The relay joins the task its opener runs in.
            let mut relay_in = relay_in;
            assert!(
                inner
                    .join(async move {
                        relay_in
                            .input
                            .window(Window {
                                credit: 64,
                                padding: 0,
                            })
                            .unwrap();
                        while let Some(frame) = relay_in.input.frame().await {
                            if let Frame::Data(data) = frame {
                                relay_out.output.ready(data.payload.len()).await.unwrap();
                                relay_out.output.data(data).unwrap();
                                relay_in.input.replenish();
                            }
                        }
                    })
                    .is_ok()
            );
            async move {
                sink.input
                    .window(Window {
                        credit: 64,
                        padding: 0,
                    })
                    .unwrap();
                while let Some(frame) = sink.input.frame().await {
                    if matches!(frame, Frame::Data(_)) {
                        seen.set(seen.get() + 1);
                        sink.input.replenish();
                    }
                }
            }
        });
        let wakes = Arc::new(CountingWake::default());
        let waker = Waker::from(wakes.clone());
        assert!(poll(&mut task, &waker).is_pending());
        for round in 1..=3 {
            source.output.data(Data::new("event")).unwrap();
            // One wake of the task for the frame, whatever the hops inside.
            assert_eq!(wakes.0.load(Ordering::SeqCst), round);
            assert!(poll(&mut task, &waker).is_pending());
            assert_eq!(delivered.get(), round);
        }
        drop(source);
        assert!(poll(&mut task, &waker).is_ready(), "every part finished");
    }

    #[test]
    fn a_wake_from_another_thread_reaches_the_task() {
        let current = Current::default();
        let (mut writer, mut reader) = stream::open(Begin::default());
        let got = Rc::new(Cell::new(false));
        let seen = got.clone();
        let mut task = Task::new(
            current,
            Box::pin(async move {
                reader
                    .input
                    .window(Window {
                        credit: 8,
                        padding: 0,
                    })
                    .unwrap();
                if let Some(Frame::Data(_)) = reader.input.frame().await {
                    seen.set(true);
                }
            }),
        );
        let wakes = Arc::new(CountingWake::default());
        let waker = Waker::from(wakes.clone());
        assert!(poll(&mut task, &waker).is_pending());
        std::thread::spawn(move || writer.output.data(Data::new("x")).unwrap())
            .join()
            .unwrap();
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert!(poll(&mut task, &waker).is_ready());
        assert!(got.get());
    }

    #[test]
    fn without_a_running_task_nothing_joins() {
        let current = Current::default();
        assert!(current.join(async {}).is_err());
        let _outside = current.enter(None);
        assert!(current.join(async {}).is_err());
    }
}

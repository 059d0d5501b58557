//! The engine's shutdown as a stream's state machine watches it: a flag checked on every poll
//! and a waker registered once per stream, instead of a cancellation future per stream that
//! takes the token's shared lock whenever it is polled.
//!
//! A worker keeps one [`Watchers`] list; [`Worker::shutdown_watch`](crate::binding::Worker)
//! hands out a [`ShutdownWatch`] per stream. The first watch polled on a worker starts one
//! task there that waits for the engine's token and then wakes every watch of the worker.
//!
//! A binding's [`Retirement`] (a configuration reload replaced it) is watched the same way:
//! one list per worker and retirement.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use tokio_util::sync::CancellationToken;

use crate::binding::Worker;

/// A worker's watches: their wakers, by slot.
#[derive(Debug)]
pub(crate) struct Watchers {
    token: CancellationToken,
    /// Whether the task waiting for the token runs yet.
    listening: Cell<bool>,
    slots: RefCell<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    wakers: Vec<Option<Waker>>,
    free: Vec<u32>,
}

impl Watchers {
    pub(crate) fn new(token: CancellationToken) -> Rc<Self> {
        Rc::new(Watchers {
            token,
            listening: Cell::new(false),
            slots: RefCell::default(),
        })
    }

    fn listen(self: &Rc<Self>) {
        if self.listening.replace(true) {
            return;
        }
        let watchers = Rc::clone(self);
        tokio::task::spawn_local(async move {
            watchers.token.cancelled().await;
            let wakers: Vec<Waker> = {
                let mut slots = watchers.slots.borrow_mut();
                slots.wakers.iter_mut().filter_map(Option::take).collect()
            };
            wakers.into_iter().for_each(Waker::wake);
        });
    }
}

/// One stream's view of the engine's shutdown.
#[derive(Debug)]
pub struct ShutdownWatch {
    watchers: Rc<Watchers>,
    slot: Option<u32>,
}

impl ShutdownWatch {
    pub(crate) fn new(watchers: Rc<Watchers>) -> Self {
        ShutdownWatch {
            watchers,
            slot: None,
        }
    }

    /// `Ready` once the engine shuts down; else keeps `cx`'s waker to wake then. Costs a flag
    /// check while the waker stays the same. Must be polled on the worker's thread, inside
    /// its runtime.
    pub fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.watchers.token.is_cancelled() {
            return Poll::Ready(());
        }
        let mut slots = self.watchers.slots.borrow_mut();
        match self.slot {
            Some(slot) => {
                let kept = &mut slots.wakers[slot as usize];
                if !kept.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *kept = Some(cx.waker().clone());
                }
            }
            None => {
                let waker = Some(cx.waker().clone());
                let slot = match slots.free.pop() {
                    Some(slot) => {
                        slots.wakers[slot as usize] = waker;
                        slot
                    }
                    None => {
                        slots.wakers.push(waker);
                        u32::try_from(slots.wakers.len() - 1).unwrap_or(u32::MAX)
                    }
                };
                self.slot = Some(slot);
                drop(slots);
                self.watchers.listen();
            }
        }
        Poll::Pending
    }
}

impl Drop for ShutdownWatch {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            let mut slots = self.watchers.slots.borrow_mut();
            if let Some(kept) = slots.wakers.get_mut(slot as usize) {
                *kept = None;
                slots.free.push(slot);
            }
        }
    }
}

/// A binding's retirement: a configuration reload replaced it, and its streams that carry
/// more than one exchange (an http connection) finish what they carry and close, so that
/// what comes next meets the new binding.
#[derive(Debug)]
pub struct Retirement {
    id: u64,
    token: CancellationToken,
}

/// Makes retirements unique within the process.
static NEXT_RETIREMENT: AtomicU64 = AtomicU64::new(0);

/// A worker's watch lists, one per retirement its streams watch.
#[derive(Default)]
struct RetirementWatchers(RefCell<Vec<(u64, Rc<Watchers>)>>);

impl Default for Retirement {
    fn default() -> Self {
        Retirement {
            id: NEXT_RETIREMENT.fetch_add(1, Ordering::Relaxed),
            token: CancellationToken::new(),
        }
    }
}

impl Retirement {
    /// Retires the binding: every watch of it, on every worker, becomes ready.
    pub fn retire(&self) {
        self.token.cancel();
    }

    /// A watch of this retirement for a stream on `worker`: a flag check per poll, one waker
    /// kept per stream, one task per worker that wakes them all.
    pub fn watch(&self, worker: &Worker) -> ShutdownWatch {
        let lists = worker.local::<RetirementWatchers>();
        let mut lists = lists.0.borrow_mut();
        // Lists of retirements that happened have woken their watches: gone.
        lists.retain(|(_, watchers)| !watchers.token.is_cancelled());
        let watchers = match lists.iter().find(|(id, _)| *id == self.id) {
            Some((_, watchers)) => watchers.clone(),
            None => {
                let watchers = Watchers::new(self.token.clone());
                lists.push((self.id, watchers.clone()));
                watchers
            }
        };
        ShutdownWatch::new(watchers)
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use super::*;

    #[tokio::test]
    async fn every_watch_of_a_worker_wakes_once_the_token_is_cancelled() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let token = CancellationToken::new();
                let watchers = Watchers::new(token.clone());
                let mut first = ShutdownWatch::new(watchers.clone());
                let mut second = ShutdownWatch::new(watchers.clone());
                let dropped = ShutdownWatch::new(watchers.clone());
                poll_fn(|cx| {
                    assert!(first.poll(cx).is_pending());
                    assert!(second.poll(cx).is_pending());
                    Poll::Ready(())
                })
                .await;
                drop(dropped);
                let waiting = tokio::task::spawn_local(async move {
                    poll_fn(|cx| first.poll(cx)).await;
                    poll_fn(|cx| second.poll(cx)).await;
                });
                tokio::task::yield_now().await;
                assert!(!waiting.is_finished());
                token.cancel();
                waiting.await.unwrap();
            })
            .await;
    }

    #[tokio::test]
    async fn a_retirement_wakes_the_watches_of_its_binding_only() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let worker = Worker::new(0, 1, CancellationToken::new());
                let (retired, running) = (Retirement::default(), Retirement::default());
                let mut first = retired.watch(&worker);
                let mut second = retired.watch(&worker);
                let mut other = running.watch(&worker);
                let mut cx = Context::from_waker(Waker::noop());
                assert!(first.poll(&mut cx).is_pending());
                assert!(other.poll(&mut cx).is_pending());
                let waiting = tokio::task::spawn_local(async move {
                    poll_fn(|cx| second.poll(cx)).await;
                });
                tokio::task::yield_now().await;
                assert!(!waiting.is_finished());
                retired.retire();
                waiting.await.unwrap();
                // A watch made after the retirement (a connection that raced it) is ready.
                assert!(retired.watch(&worker).poll(&mut cx).is_ready());
                assert!(first.poll(&mut cx).is_ready());
                assert!(other.poll(&mut cx).is_pending());
                // The retired list goes once another watch is made on the worker.
                let _third = running.watch(&worker);
                assert_eq!(worker.local::<RetirementWatchers>().0.borrow().len(), 1);
            })
            .await;
    }

    #[tokio::test]
    async fn a_dropped_watch_gives_its_slot_to_the_next() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let watchers = Watchers::new(CancellationToken::new());
                let mut first = ShutdownWatch::new(watchers.clone());
                let mut cx = Context::from_waker(Waker::noop());
                assert!(first.poll(&mut cx).is_pending());
                drop(first);
                let mut second = ShutdownWatch::new(watchers.clone());
                assert!(second.poll(&mut cx).is_pending());
                assert_eq!(second.slot, Some(0));
                assert_eq!(watchers.slots.borrow().wakers.len(), 1);
            })
            .await;
    }
}

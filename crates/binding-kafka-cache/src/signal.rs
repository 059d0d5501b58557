//! Wake-ups from a topic to its subscribers that a subscriber's state machine polls, with no
//! future built per wait: [`Signal`] for one subscriber (a record matched it in the wake
//! index), [`Changes`] for every subscriber waiting on the topic (anything appended, a status
//! change). Both may be raised from any thread (the upstream runs on one worker, subscribers
//! on all of them). Subscribers do not wait on [`Changes`] themselves: they wait on their
//! worker's [`WorkerChanges`], and one relay per worker and topic
//! (the crate's `follow` module) waits on the topic for all of them, so a change crosses to each
//! worker once, not once per subscriber.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// One subscriber's wake-up: raised once, seen once.
#[derive(Debug, Default)]
pub struct Signal {
    raised: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Signal {
    /// Raises the signal and wakes its subscriber; a signal raised before its subscriber
    /// waits is seen by the next wait.
    pub fn raise(&self) {
        self.raised.store(true, Ordering::Release);
        let waker = lock(&self.waker).take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// `Ready` once the signal was raised since it was last seen (and lowers it).
    pub fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.raised.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        {
            let mut waker = lock(&self.waker);
            match &*waker {
                Some(known) if known.will_wake(cx.waker()) => {}
                _ => *waker = Some(cx.waker().clone()),
            }
        }
        // Raised between the first look and the registration: the raise may have found no
        // waker to wake.
        if self.raised.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// A topic's version, moved by every change, and the subscribers waiting for the next one.
#[derive(Debug, Default)]
pub struct Changes {
    version: AtomicU64,
    waiters: Mutex<Vec<Waker>>,
}

/// What one subscriber has seen of a topic's [`Changes`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Seen {
    version: u64,
    /// Its waker is among the waiters of `version`.
    registered: bool,
    /// Waiting on a [`WorkerChanges`]: the round of it the waker was kept for.
    round: u64,
}

impl Changes {
    /// Moves the version and wakes every waiter.
    pub fn bump(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
        let waiters = std::mem::take(&mut *lock(&self.waiters));
        for waker in waiters {
            waker.wake();
        }
    }

    /// The current version, as seen.
    pub fn seen(&self) -> Seen {
        Seen {
            version: self.version.load(Ordering::Acquire),
            registered: false,
            round: 0,
        }
    }

    /// Whether the version moved since `seen`; marks the current one seen.
    pub fn take(&self, seen: &mut Seen) -> bool {
        let now = self.version.load(Ordering::Acquire);
        if now == seen.version {
            return false;
        }
        *seen = Seen {
            version: now,
            registered: false,
            round: 0,
        };
        true
    }

    /// `Ready` once the version moved past `seen` (marking it seen); else waits, its waker
    /// registered once per version however often it is polled.
    pub fn poll(&self, seen: &mut Seen, cx: &mut Context<'_>) -> Poll<()> {
        if self.take(seen) {
            return Poll::Ready(());
        }
        if !seen.registered {
            let mut waiters = lock(&self.waiters);
            // Under the lock: a bump either came before (seen here) or drains after.
            if self.take(seen) {
                return Poll::Ready(());
            }
            waiters.push(cx.waker().clone());
            seen.registered = true;
        }
        Poll::Pending
    }

    /// Subscribers waiting now.
    pub fn waiting(&self) -> usize {
        lock(&self.waiters).len()
    }
}

impl Drop for Changes {
    /// A topic that goes away wakes its waiters (its workers' relays), so they end too.
    fn drop(&mut self) {
        let waiters = std::mem::take(self.waiters.get_mut().unwrap_or_else(|e| e.into_inner()));
        waiters.into_iter().for_each(Waker::wake);
    }
}

/// One worker's subscribers of a topic waiting for its next change, on the worker's thread.
///
/// Its waiters are woken in rounds ([`WorkerChanges::wake_all`]); a waker kept in an earlier
/// round is gone, even when the version it waited for is still the topic's (the subscriber
/// saw the change before the relay woke it), and is kept again.
#[derive(Debug, Default)]
pub struct WorkerChanges {
    waiters: RefCell<Vec<Waker>>,
    round: Cell<u64>,
}

impl WorkerChanges {
    /// `Ready` once `changes` moved past `seen` (marking it seen); else waits on this
    /// worker's list, registered once per version however often it is polled.
    pub fn poll(&self, changes: &Changes, seen: &mut Seen, cx: &mut Context<'_>) -> Poll<()> {
        if changes.take(seen) {
            return Poll::Ready(());
        }
        let round = self.round.get();
        if !seen.registered || seen.round != round {
            self.waiters.borrow_mut().push(cx.waker().clone());
            seen.registered = true;
            seen.round = round;
        }
        Poll::Pending
    }

    /// Wakes every subscriber waiting here (the topic changed).
    pub fn wake_all(&self) {
        self.round.set(self.round.get().wrapping_add(1));
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        waiters.into_iter().for_each(Waker::wake);
    }

    /// Subscribers waiting now.
    pub fn waiting(&self) -> usize {
        self.waiters.borrow().len()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks is a single assignment or push: state stays consistent.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    use super::*;

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count::default());
        (count.clone(), Waker::from(count))
    }

    #[test]
    fn a_signal_raised_before_the_wait_is_seen_once() {
        let signal = Signal::default();
        let (_, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        signal.raise();
        assert!(signal.poll(&mut cx).is_ready());
        assert!(signal.poll(&mut cx).is_pending());
    }

    #[test]
    fn a_raise_wakes_the_waiting_subscriber() {
        let signal = Signal::default();
        let (count, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        assert!(signal.poll(&mut cx).is_pending());
        signal.raise();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(signal.poll(&mut cx).is_ready());
    }

    #[test]
    fn a_waiter_registers_once_per_version_and_is_woken_by_the_bump() {
        let changes = Changes::default();
        let mut seen = changes.seen();
        let (count, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        for _ in 0..3 {
            assert!(changes.poll(&mut seen, &mut cx).is_pending());
        }
        assert_eq!(changes.waiting(), 1, "polled thrice, registered once");
        changes.bump();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(changes.waiting(), 0);
        assert!(changes.poll(&mut seen, &mut cx).is_ready());
        assert!(changes.poll(&mut seen, &mut cx).is_pending());
        assert_eq!(changes.waiting(), 1);
    }

    #[test]
    fn a_worker_waiter_registers_once_per_version_and_sees_the_bump_when_woken() {
        let changes = Changes::default();
        let worker = WorkerChanges::default();
        let mut seen = changes.seen();
        let (count, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        for _ in 0..3 {
            assert!(worker.poll(&changes, &mut seen, &mut cx).is_pending());
        }
        assert_eq!(worker.waiting(), 1, "polled thrice, registered once");
        assert_eq!(
            changes.waiting(),
            0,
            "the topic is not waited on per subscriber"
        );
        changes.bump();
        assert!(worker.poll(&changes, &mut seen, &mut cx).is_ready());
        worker.wake_all();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(worker.poll(&changes, &mut seen, &mut cx).is_pending());
        assert_eq!(worker.waiting(), 1);
    }

    #[test]
    fn a_waiter_that_saw_the_change_before_its_relay_woke_it_keeps_its_waker_again() {
        let changes = Changes::default();
        let worker = WorkerChanges::default();
        let mut seen = changes.seen();
        let (count, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        assert!(worker.poll(&changes, &mut seen, &mut cx).is_pending());
        changes.bump();
        // Polled for another reason first: it sees the change and waits for the next one...
        assert!(worker.poll(&changes, &mut seen, &mut cx).is_ready());
        assert!(worker.poll(&changes, &mut seen, &mut cx).is_pending());
        // ...then the relay wakes the round, taking that waker too.
        worker.wake_all();
        assert_eq!(worker.waiting(), 0);
        assert!(worker.poll(&changes, &mut seen, &mut cx).is_pending());
        assert_eq!(worker.waiting(), 1, "the waker is kept again");
        let before = count.0.load(Ordering::SeqCst);
        changes.bump();
        worker.wake_all();
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            before + 1,
            "the next change wakes it"
        );
    }

    #[test]
    fn dropped_changes_wake_their_waiters() {
        let changes = Changes::default();
        let mut seen = changes.seen();
        let (count, waker) = waker();
        assert!(
            changes
                .poll(&mut seen, &mut Context::from_waker(&waker))
                .is_pending()
        );
        drop(changes);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_bump_from_another_thread_is_not_lost() {
        let changes = Arc::new(Changes::default());
        for _ in 0..200 {
            let mut seen = changes.seen();
            let (count, waker) = waker();
            let mut cx = Context::from_waker(&waker);
            let bumper = {
                let changes = changes.clone();
                std::thread::spawn(move || changes.bump())
            };
            let first = changes.poll(&mut seen, &mut cx);
            bumper.join().unwrap();
            // Either the poll saw the bump, or the bump woke the registered waiter.
            assert!(first.is_ready() || count.0.load(Ordering::SeqCst) == 1);
        }
    }
}

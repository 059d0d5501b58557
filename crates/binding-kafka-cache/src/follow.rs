//! A topic's changes relayed to each worker once: the upstream that appends runs on one
//! worker, its subscribers on all of them. Rather than every subscriber waiting on the topic
//! (a shared lock to register, a wake across threads each), each worker keeps one
//! [`WorkerChanges`] per topic that its subscribers wait on, and one relay task per worker
//! and topic waits on the topic for them: a change is one wake per worker, and the relay
//! wakes that worker's subscribers on their own thread.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak as RcWeak};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use binding_api::binding::Worker;
use binding_api::shutdown::ShutdownWatch;

use crate::cache::Topic;
use crate::signal::{Seen, WorkerChanges};

/// One worker's relays, by topic ([`Worker::local`]).
#[derive(Debug, Default)]
pub struct Relays {
    by_topic: RefCell<Vec<(Weak<Topic>, RcWeak<WorkerChanges>)>>,
}

impl Relays {
    /// Where this worker's subscribers of `topic` wait; starts the worker's relay for it the
    /// first time.
    pub fn changes(&self, topic: &Arc<Topic>, worker: &Worker) -> Rc<WorkerChanges> {
        let mut by_topic = self.by_topic.borrow_mut();
        by_topic.retain(|(topic, local)| topic.strong_count() > 0 && local.strong_count() > 0);
        let known = by_topic
            .iter()
            .find(|(known, _)| std::ptr::eq(known.as_ptr(), Arc::as_ptr(topic)))
            .and_then(|(_, local)| local.upgrade());
        if let Some(local) = known {
            return local;
        }
        let local = Rc::new(WorkerChanges::default());
        by_topic.push((Arc::downgrade(topic), Rc::downgrade(&local)));
        drop(by_topic);
        worker.spawn_task(Relay {
            topic: Arc::downgrade(topic),
            local: Rc::downgrade(&local),
            seen: topic.changes().seen(),
            shutdown: worker.shutdown_watch(),
        });
        local
    }
}

/// Waits on a topic's changes for one worker's subscribers of it; ends when they, or the
/// topic, are gone (a topic that goes away wakes it), or at shutdown.
struct Relay {
    topic: Weak<Topic>,
    local: RcWeak<WorkerChanges>,
    seen: Seen,
    shutdown: ShutdownWatch,
}

impl Future for Relay {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let relay = self.get_mut();
        loop {
            let (Some(topic), Some(local)) = (relay.topic.upgrade(), relay.local.upgrade()) else {
                return Poll::Ready(());
            };
            if relay.shutdown.poll(cx).is_ready() {
                // Subscribers see the shutdown themselves; wake them to end.
                local.wake_all();
                return Poll::Ready(());
            }
            if topic.changes().poll(&mut relay.seen, cx).is_pending() {
                return Poll::Pending;
            }
            local.wake_all();
        }
    }
}

//! The [`Binding`] trait the engine drives on its workers, and the [`Worker`] context.
//!
//! The engine builds bindings from `zilla.yaml` with the factories of the `zilla-config`
//! crate, exits first, so at run time a binding holds direct references to the bindings it
//! routes to and never looks a name up.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::rc::{Rc, Weak};

use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::ext::tcp::Endpoint;
use crate::shutdown::{ShutdownWatch, Watchers};
use crate::stream::Acceptor;
use crate::task::{Current, Task};

/// Why a binding could not start.
#[derive(Debug, Error)]
#[error("binding '{binding}': {message}")]
pub struct StartError {
    /// The binding's name.
    pub binding: String,
    /// What went wrong, with the fix when known.
    pub message: String,
}

/// A running binding.
pub trait Binding: Send + Sync + 'static {
    /// The binding's name.
    fn name(&self) -> &str;

    /// Acquires what the binding needs from the OS (listening sockets) before the workers
    /// start. An error stops the engine before it reports ready.
    fn prepare(&self) -> Result<(), StartError> {
        Ok(())
    }

    /// Runs once on each worker as it starts; a server starts accepting here.
    fn start(&self, worker: &Worker) {
        let _ = worker;
    }

    /// Stops taking new work because a configuration reload replaced or removed the binding:
    /// a server stops accepting and lets go of its listening sockets (a replacement listening
    /// on the same address shares them, so no connection is refused meanwhile). Streams
    /// already open are the engine's to end.
    fn retire(&self) {}

    /// Accepts a stream that another binding opened towards this one. Called on a worker
    /// thread; spawn the work with [`Worker::spawn`].
    fn new_stream(&self, stream: Acceptor, worker: &Worker);

    /// Where this binding connects a stream whose begin names no destination: a tcp
    /// client's `options.host` and `port`, or, for a binding in front of one (a tls client),
    /// its exit's. A kafka client without `options.servers` bootstraps there, as in Zilla.
    fn default_destination(&self) -> Option<Endpoint> {
        None
    }
}

/// One worker thread's context: its identity, its task set, the shutdown signal and its
/// per-worker values ([`Worker::local`]).
#[derive(Clone, Debug)]
pub struct Worker {
    index: usize,
    count: usize,
    shutdown: CancellationToken,
    watchers: Rc<Watchers>,
    tasks: TaskTracker,
    current: Current,
    locals: Rc<Locals>,
}

/// A worker's values, one per type.
#[derive(Default)]
struct Locals(RefCell<HashMap<TypeId, Rc<dyn Any>>>);

impl std::fmt::Debug for Locals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locals")
            .field("count", &self.0.borrow().len())
            .finish()
    }
}

impl Worker {
    /// A worker context; the engine makes one per worker thread.
    pub fn new(index: usize, count: usize, shutdown: CancellationToken) -> Self {
        Worker {
            index,
            count,
            watchers: Watchers::new(shutdown.clone()),
            shutdown,
            tasks: TaskTracker::new(),
            current: Current::default(),
            locals: Rc::default(),
        }
    }

    /// This worker's index, from 0.
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many workers there are.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Cancelled when the engine shuts down: stop accepting and end streams cleanly.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// The shutdown for a stream's state machine to poll on every wake: a flag check, and
    /// one waker per stream kept by the worker ([`ShutdownWatch`]).
    pub fn shutdown_watch(&self) -> ShutdownWatch {
        ShutdownWatch::new(self.watchers.clone())
    }

    /// Runs the future of a stream: as a part of the task running now (the connection the
    /// stream belongs to), else as a task of its own. Must be called from the worker's thread.
    pub fn spawn<F>(&self, stream: F)
    where
        F: Future<Output = ()> + 'static,
    {
        if let Err(stream) = self.current.join(stream) {
            self.spawn_task(stream);
        }
    }

    /// Starts a task of its own, tracked so shutdown can wait for it, for work that outlives
    /// any one connection (an accept loop, a shared upstream). What it spawns joins it.
    pub fn spawn_task<F>(&self, task: F)
    where
        F: Future<Output = ()> + 'static,
    {
        let task = Task::new(self.current.clone(), Box::pin(task));
        self.tasks.spawn_local(task);
    }

    /// Starts a connection's task: `open` hands the connection's stream to the next binding
    /// and returns the connection's own future; whatever the streams it leads to spawn runs
    /// in the same task.
    pub fn spawn_connection<F>(&self, open: impl FnOnce(&Worker) -> F)
    where
        F: Future<Output = ()> + 'static,
    {
        let task = Task::open(self.current.clone(), || open(self));
        self.tasks.spawn_local(task);
    }

    /// Runs `open` so that what it spawns runs in tasks of its own instead of joining the task
    /// running now: for a stream shared beyond the connection that happens to open it, such as
    /// a connection to a Kafka broker.
    pub fn standalone<R>(&self, open: impl FnOnce(&Worker) -> R) -> R {
        let _outside = self.current.enter(None);
        open(self)
    }

    /// The tasks spawned on this worker.
    pub fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }

    /// This worker's value of type `T`, made with `T::default()` on first use and shared by
    /// every caller on this worker: state a binding keeps per worker (a memo, its
    /// connections), reached without a lock. Each binding names its own type (a private one
    /// keeps others out). The values drop with the last clone of the worker; one that needs
    /// the worker holds a [`WeakWorker`], else the two would keep each other alive.
    pub fn local<T: Default + 'static>(&self) -> Rc<T> {
        let key = TypeId::of::<T>();
        let known = self.locals.0.borrow().get(&key).cloned();
        let value = known.unwrap_or_else(|| {
            // Made with no borrow held: `T::default()` may ask for other values.
            let made: Rc<dyn Any> = Rc::new(T::default());
            self.locals
                .0
                .borrow_mut()
                .entry(key)
                .or_insert(made)
                .clone()
        });
        match value.downcast::<T>() {
            Ok(value) => value,
            Err(_) => unreachable!("values are kept under their own type's id"),
        }
    }

    /// A handle on this worker that does not keep its values ([`Worker::local`]) alive.
    pub fn downgrade(&self) -> WeakWorker {
        WeakWorker {
            index: self.index,
            count: self.count,
            shutdown: self.shutdown.clone(),
            watchers: self.watchers.clone(),
            tasks: self.tasks.clone(),
            current: self.current.clone(),
            locals: Rc::downgrade(&self.locals),
        }
    }
}

/// A [`Worker`] that does not keep the worker's values alive: what a value kept by
/// [`Worker::local`] holds when it needs the worker (to spawn, to open streams).
#[derive(Clone, Debug)]
pub struct WeakWorker {
    index: usize,
    count: usize,
    shutdown: CancellationToken,
    watchers: Rc<Watchers>,
    tasks: TaskTracker,
    current: Current,
    locals: Weak<Locals>,
}

impl WeakWorker {
    /// The worker, unless every [`Worker`] clone has gone (the worker has ended).
    pub fn upgrade(&self) -> Option<Worker> {
        Some(Worker {
            index: self.index,
            count: self.count,
            shutdown: self.shutdown.clone(),
            watchers: self.watchers.clone(),
            tasks: self.tasks.clone(),
            current: self.current.clone(),
            locals: self.locals.upgrade()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Count(std::cell::Cell<u32>);

    #[test]
    fn one_value_per_type_per_worker() {
        let worker = Worker::new(0, 2, CancellationToken::new());
        worker.local::<Count>().0.set(7);
        assert_eq!(worker.clone().local::<Count>().0.get(), 7);
        assert_eq!(*worker.local::<String>(), "");
        let other = Worker::new(1, 2, CancellationToken::new());
        assert_eq!(other.local::<Count>().0.get(), 0);
    }

    #[test]
    fn values_drop_with_the_worker() {
        let worker = Worker::new(0, 1, CancellationToken::new());
        let weak = worker.downgrade();
        let value = Rc::downgrade(&worker.local::<Count>());
        assert!(weak.upgrade().is_some());
        drop(worker);
        assert!(value.upgrade().is_none());
        assert!(weak.upgrade().is_none());
    }
}

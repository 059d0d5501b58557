//! The [`Binding`] trait the engine drives on its workers, and the [`Worker`] context.
//!
//! The engine builds bindings from `zilla.yaml` with the factories of the `zilla-config`
//! crate, exits first, so at run time a binding holds direct references to the bindings it
//! routes to and never looks a name up.

use std::future::Future;

use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::ext::tcp::Endpoint;
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

/// One worker thread's context: its identity, its task set and the shutdown signal.
#[derive(Clone, Debug)]
pub struct Worker {
    index: usize,
    count: usize,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    current: Current,
}

impl Worker {
    /// A worker context; the engine makes one per worker thread.
    pub fn new(index: usize, count: usize, shutdown: CancellationToken) -> Self {
        Worker {
            index,
            count,
            shutdown,
            tasks: TaskTracker::new(),
            current: Current::default(),
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
}

//! Running built bindings: one single-threaded worker per core, and a clean shutdown.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use binding_api::binding::{Binding, StartError, Worker};
use tokio::sync::mpsc as channel;
use tokio_util::sync::CancellationToken;

use crate::slot::{self, Generation};

/// How many commands may wait for a worker.
const COMMANDS: usize = 4;

/// How long a command waits for every worker to carry it out.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// How long shutdown waits for streams to end before the process exits anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(4500);

/// Why the engine could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A binding could not acquire what it needs.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The OS refused a thread or a runtime.
    #[error("cannot start worker {index}: {source}")]
    Worker {
        /// Which worker.
        index: usize,
        /// Why.
        source: std::io::Error,
    },
}

/// Running workers.
pub struct Running {
    shutdown: CancellationToken,
    workers: Vec<thread::JoinHandle<()>>,
    done: mpsc::Receiver<usize>,
    commands: Vec<channel::Sender<(Command, mpsc::Sender<usize>)>>,
}

/// What a configuration reload asks every worker to do.
pub enum Command {
    /// Start these bindings (new or rebuilt) on the worker.
    Start(Vec<Arc<dyn Binding>>),
    /// End the streams that entered the bindings of these generations.
    Sever(Vec<Generation>),
    /// Stop keeping the streams of these generations, which run on.
    Forget(Vec<Generation>),
}

/// A worker did not carry out a command in time.
#[derive(Debug, thiserror::Error)]
#[error("{answered} of {workers} workers answered within {COMMAND_TIMEOUT:?}")]
pub struct CommandTimeout {
    answered: usize,
    workers: usize,
}

/// Prepares every binding, then starts `count` workers, each starting every binding.
/// Returns once all workers are running.
pub fn start(bindings: &[Arc<dyn Binding>], count: usize) -> Result<Running, RunError> {
    for binding in bindings {
        binding.prepare()?;
    }
    let shutdown = CancellationToken::new();
    let (started_tx, started_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let mut workers = Vec::with_capacity(count);
    let mut commands = Vec::with_capacity(count);
    for index in 0..count {
        let bindings: Vec<Arc<dyn Binding>> = bindings.to_vec();
        let shutdown = shutdown.clone();
        let started = started_tx.clone();
        let done = done_tx.clone();
        let (command_tx, command_rx) = channel::channel(COMMANDS);
        commands.push(command_tx);
        let handle = thread::Builder::new()
            .name(format!("zilla-worker-{index}"))
            .spawn(move || {
                // Made on its thread: a worker's context is not shared with other threads.
                let worker = Worker::new(index, count, shutdown);
                run_worker(&bindings, worker, started, command_rx);
                let _ = done.send(index);
            })
            .map_err(|source| RunError::Worker { index, source })?;
        workers.push(handle);
    }
    drop(started_tx);
    for _ in 0..count {
        match started_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(source)) => {
                shutdown.cancel();
                return Err(RunError::Worker { index: 0, source });
            }
            Err(_) => break,
        }
    }
    Ok(Running {
        shutdown,
        workers,
        done: done_rx,
        commands,
    })
}

fn run_worker(
    bindings: &[Arc<dyn Binding>],
    worker: Worker,
    started: mpsc::Sender<std::io::Result<()>>,
    mut commands: channel::Receiver<(Command, mpsc::Sender<usize>)>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            let _ = started.send(Err(err));
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        for binding in bindings {
            binding.start(&worker);
        }
        let _ = started.send(Ok(()));
        loop {
            let command = tokio::select! {
                biased;
                _ = worker.shutdown().cancelled() => break,
                command = commands.recv() => command,
            };
            match command {
                Some((command, done)) => {
                    let _ = done.send(carry_out(command, &worker));
                }
                None => {
                    worker.shutdown().cancelled().await;
                    break;
                }
            }
        }
        // Stop accepting; let streams end cleanly within the grace period.
        worker.tasks().close();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, worker.tasks().wait()).await;
    });
}

/// Carries out a command on this worker; returns how many streams it ended.
fn carry_out(command: Command, worker: &Worker) -> usize {
    match command {
        Command::Start(bindings) => {
            for binding in bindings {
                binding.start(worker);
            }
            0
        }
        Command::Sever(generations) => slot::sever(worker, &generations),
        Command::Forget(generations) => {
            slot::forget(worker, &generations);
            0
        }
    }
}

impl Running {
    /// Has every worker carry out `command` (made once per worker) and waits until they
    /// have; returns the streams they ended.
    pub fn command(&self, command: impl Fn() -> Command) -> Result<usize, CommandTimeout> {
        let (done_tx, done_rx) = mpsc::channel();
        let mut sent = 0;
        for worker in &self.commands {
            if worker.try_send((command(), done_tx.clone())).is_ok() {
                sent += 1;
            }
        }
        drop(done_tx);
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let mut answered = 0;
        let mut ended = 0;
        while answered < sent {
            match done_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(count) => {
                    answered += 1;
                    ended += count;
                }
                Err(_) => break,
            }
        }
        if answered < self.commands.len() {
            return Err(CommandTimeout {
                answered,
                workers: self.commands.len(),
            });
        }
        Ok(ended)
    }

    /// Asks every worker to stop and waits up to [`SHUTDOWN_GRACE`] for them.
    /// Returns whether all stopped in time.
    pub fn stop(self) -> bool {
        self.shutdown.cancel();
        let deadline = Instant::now() + SHUTDOWN_GRACE + Duration::from_millis(300);
        let mut remaining = self.workers.len();
        while remaining > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.done.recv_timeout(left) {
                Ok(_) => remaining -= 1,
                Err(_) => return false,
            }
        }
        for handle in self.workers {
            let _ = handle.join();
        }
        true
    }
}

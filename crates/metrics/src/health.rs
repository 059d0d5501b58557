//! What the exporter's health check answers: [`Readiness`], ready once the engine says every
//! binding has started and every [`ReadyGate`] a binding declared is open (a kafka client's
//! first metadata from the cluster).
//!
//! Gates are declared while the configuration is built, and count while a binding holds
//! them: a binding replaced by a configuration reload no longer holds readiness back, and its
//! gate is forgotten when the next one is declared, so they are as many as the live
//! configuration's. Opening one is a store, from any thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// Whether the engine is ready for traffic. Cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<State>);

#[derive(Debug, Default)]
struct State {
    started: AtomicBool,
    /// Weak: a gate counts while its binding holds it.
    gates: Mutex<Vec<Weak<Gate>>>,
}

#[derive(Debug)]
struct Gate {
    what: String,
    open: AtomicBool,
}

/// One condition of readiness, declared by a binding as it is built and opened when it holds.
/// The default gate belongs to no readiness: opening it does nothing.
#[derive(Clone, Debug, Default)]
pub struct ReadyGate(Option<Arc<Gate>>);

impl ReadyGate {
    /// The condition holds (again calls are harmless).
    pub fn open(&self) {
        if let Some(gate) = &self.0 {
            gate.open.store(true, Ordering::Release);
        }
    }

    /// Whether [`ReadyGate::open`] was called.
    pub fn is_open(&self) -> bool {
        self.0
            .as_ref()
            .is_none_or(|g| g.open.load(Ordering::Acquire))
    }
}

impl Readiness {
    /// Every binding has started on every worker.
    pub fn set_started(&self) {
        self.0.started.store(true, Ordering::Release);
    }

    /// Whether [`Readiness::set_started`] was called.
    pub fn is_started(&self) -> bool {
        self.0.started.load(Ordering::Acquire)
    }

    /// A condition readiness waits for, described by `what` (for the health check's answer).
    pub fn gate(&self, what: impl Into<String>) -> ReadyGate {
        let gate = Arc::new(Gate {
            what: what.into(),
            open: AtomicBool::new(false),
        });
        let mut gates = self.lock();
        gates.retain(|g| g.strong_count() > 0);
        gates.push(Arc::downgrade(&gate));
        ReadyGate(Some(gate))
    }

    /// Whether the bindings have started and every gate is open.
    pub fn is_ready(&self) -> bool {
        self.is_started() && self.waiting_for().is_empty()
    }

    /// What readiness still waits for: each closed gate's description (the bindings
    /// starting are not listed).
    pub fn waiting_for(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|g| !g.open.load(Ordering::Acquire))
            .map(|g| g.what.clone())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Weak<Gate>>> {
        // Every change is a push: a panic elsewhere cannot leave half of one.
        self.0.gates.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_once_started_and_every_gate_open() {
        let readiness = Readiness::default();
        assert!(!readiness.is_ready());
        readiness.set_started();
        assert!(readiness.is_ready(), "no gate: ready once started");
        let metadata = readiness.gate("kafka metadata of 'north_kafka_client'");
        assert!(!readiness.is_ready());
        assert_eq!(
            readiness.waiting_for(),
            ["kafka metadata of 'north_kafka_client'"]
        );
        let other = readiness.gate("b");
        metadata.open();
        metadata.open();
        assert!(metadata.is_open());
        assert!(!readiness.is_ready());
        other.clone().open();
        assert!(readiness.is_ready());
        // A binding replaced by a reload, whose cluster never answered, holds nothing back.
        let replaced = readiness.gate("kafka metadata from 'old'");
        assert!(!readiness.is_ready());
        drop(replaced);
        assert!(readiness.is_ready());
        ReadyGate::default().open();
        assert!(ReadyGate::default().is_open());
    }
}

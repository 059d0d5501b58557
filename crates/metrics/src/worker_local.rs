//! [`PerBinding`]: a worker's handles for each binding that records, made once per worker
//! and found again without a lock.

use std::cell::RefCell;
use std::rc::Rc;

use crate::binding::{BindingMetrics, Identity};

/// The `T` (a binding's handles) of each binding on one worker, found by the binding's
/// [`BindingMetrics`]. Keep one in a per-worker value (the engine's `Worker::local`); a
/// lookup borrows a cell and scans the bindings of that type, a handful.
pub struct PerBinding<T>(RefCell<Vec<(Identity, Rc<T>)>>);

impl<T> Default for PerBinding<T> {
    fn default() -> Self {
        PerBinding(RefCell::default())
    }
}

impl<T> PerBinding<T> {
    /// The handles of the binding `metrics` belong to on worker `worker`, made by `make` the
    /// first time; `None` when the binding records nothing (no handle is worth holding).
    pub fn get(
        &self,
        metrics: &BindingMetrics,
        worker: usize,
        make: impl FnOnce(&BindingMetrics, usize) -> T,
    ) -> Option<Rc<T>> {
        let identity = metrics.identity()?;
        let mut known = self.0.borrow_mut();
        if let Some((_, handles)) = known.iter().find(|(id, _)| id.is(metrics)) {
            return Some(handles.clone());
        }
        // Forget the bindings that have gone (a configuration replaced).
        known.retain(|(id, _)| id.is_alive());
        let handles = Rc::new(make(metrics, worker));
        known.push((identity, handles.clone()));
        Some(handles)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::STREAM_OPENS_RECEIVED;
    use crate::{Counter, Registry, Selection};

    #[test]
    fn one_set_of_handles_per_binding_and_worker() {
        let registry = Registry::new("ns", &[]).expect("registry");
        let selection = || Selection {
            metrics: vec![&STREAM_OPENS_RECEIVED],
            attributes: Vec::new(),
        };
        let a = registry.binding("a", selection()).expect("a");
        let b = registry.binding("b", selection()).expect("b");
        let local = PerBinding::<Counter>::default();
        let make = |m: &BindingMetrics, w| m.counter(w, &STREAM_OPENS_RECEIVED);
        let first = local.get(&a, 0, make).expect("a records");
        let again = local.get(&a.clone(), 0, |_, _| unreachable!("made once"));
        assert!(Rc::ptr_eq(&first, &again.expect("found")));
        local.get(&b, 0, make).expect("b records").add(5);
        first.increment();
        let snapshot = registry.snapshot();
        assert_eq!(
            snapshot.value("stream.opens.received", "a", &[]),
            Some(&crate::Value::Counter(1))
        );
        assert_eq!(
            snapshot.value("stream.opens.received", "b", &[]),
            Some(&crate::Value::Counter(5))
        );
        assert!(local.get(&BindingMetrics::default(), 0, make).is_none());
        let silent = registry.binding("c", Selection::default()).expect("c");
        assert!(local.get(&silent, 0, make).is_none(), "records nothing");
    }
}

//! [`BindingMetrics`]: what a binding holds to make its handles on each worker, and
//! [`Family`]: the handles of one metric whose labels come from requests.

use std::cell::RefCell;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Weak};

use crate::catalog::{Kind, MetricDef};
use crate::cells::Run;
use crate::handle::{Counter, Gauge, HISTOGRAM_CELLS, Histogram, Level};
use crate::health::ReadyGate;
use crate::registry::{Key, Shared};
use crate::selection::{Dimension, Resolved};
use crate::values::{self, OTHER, ValueCache};

/// One binding's metrics: made by [`Registry::binding`](crate::Registry::binding), given to
/// the binding's factory, and asked for handles on each worker as the binding starts there.
/// The default records nothing. Cloning shares it.
#[derive(Clone, Default)]
pub struct BindingMetrics {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    shared: Arc<Shared>,
    index: usize,
    resolved: Resolved,
}

impl std::fmt::Debug for BindingMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BindingMetrics")
            .field("enabled", &self.inner.is_some())
            .finish_non_exhaustive()
    }
}

impl BindingMetrics {
    pub(crate) fn new(shared: Arc<Shared>, index: usize, resolved: Resolved) -> Self {
        BindingMetrics {
            inner: Some(Arc::new(Inner {
                shared,
                index,
                resolved,
            })),
        }
    }

    /// Whether the binding records any metric at all.
    pub fn records_any(&self) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|inner| inner.resolved.records_any())
    }

    /// A condition the engine's readiness (the exporter's health check) waits for, described
    /// by `what`, which the binding opens when it holds. Declared as the binding is built,
    /// whether or not it records metrics; without a registry it is a gate of nothing.
    pub fn ready_gate(&self, what: impl Into<String>) -> ReadyGate {
        match &self.inner {
            Some(inner) => inner.shared.readiness.gate(what),
            None => ReadyGate::default(),
        }
    }

    /// Who these metrics belong to, while they record anything.
    pub(crate) fn identity(&self) -> Option<Identity> {
        let inner = self.inner.as_ref().filter(|i| i.resolved.records_any())?;
        Some(Identity(Arc::downgrade(inner)))
    }

    /// Whether the binding records `metric`.
    pub fn records(&self, metric: &MetricDef) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|inner| inner.resolved.records(metric))
    }

    /// The counter of `metric` on worker `worker`, for a metric without sources.
    pub fn counter(&self, worker: usize, metric: &'static MetricDef) -> Counter {
        self.counters(worker, metric).get(&[])
    }

    /// The gauge of `metric` on worker `worker`, for a metric without sources.
    pub fn gauge(&self, worker: usize, metric: &'static MetricDef) -> Gauge {
        self.gauges(worker, metric).get(&[])
    }

    /// The level of `metric`, as set on worker `worker`, for a metric without sources.
    pub fn level(&self, worker: usize, metric: &'static MetricDef) -> Level {
        self.levels(worker, metric).get(&[])
    }

    /// The histogram of `metric` on worker `worker`, for a metric without sources.
    pub fn histogram(&self, worker: usize, metric: &'static MetricDef) -> Histogram {
        self.histograms(worker, metric).get(&[])
    }

    /// The counters of `metric` on worker `worker`, one per combination of label values.
    pub fn counters(&self, worker: usize, metric: &'static MetricDef) -> Family<Counter> {
        Family::new(self.core(worker, metric, Kind::Counter, 1))
    }

    /// The gauges of `metric` on worker `worker`, one per combination of label values.
    pub fn gauges(&self, worker: usize, metric: &'static MetricDef) -> Family<Gauge> {
        Family::new(self.core(worker, metric, Kind::Gauge, 1))
    }

    /// The levels of `metric`, as set on worker `worker`, one per combination of label
    /// values (each a cell every worker shares).
    pub fn levels(&self, worker: usize, metric: &'static MetricDef) -> Family<Level> {
        Family::new(self.core(worker, metric, Kind::Level, 1))
    }

    /// The histograms of `metric` on worker `worker`, one per combination of label values.
    pub fn histograms(&self, worker: usize, metric: &'static MetricDef) -> Family<Histogram> {
        Family::new(self.core(worker, metric, Kind::Histogram, HISTOGRAM_CELLS))
    }

    fn core(
        &self,
        worker: usize,
        metric: &'static MetricDef,
        kind: Kind,
        cells: usize,
    ) -> Option<Core> {
        debug_assert_eq!(metric.kind, kind, "{} is a {:?}", metric.name, metric.kind);
        let inner = self.inner.as_ref()?;
        if metric.kind != kind || !inner.resolved.records(metric) {
            return None;
        }
        let dimensions: Vec<Labelled> = inner
            .resolved
            .dimensions(metric)
            .into_iter()
            .map(|dimension| Labelled {
                dimension,
                cache: RefCell::default(),
            })
            .collect();
        let mut core = Core {
            inner: inner.clone(),
            worker,
            metric,
            cells,
            dimensions,
            runs: RefCell::default(),
        };
        // A metric without labels from requests has one series: registered now, so that it is
        // exposed (at zero) from the start.
        if core.dimensions.is_empty() {
            let run = core.register([OTHER; crate::MAX_DIMENSIONS]);
            core.runs
                .get_mut()
                .insert([OTHER; crate::MAX_DIMENSIONS], run);
        }
        Some(core)
    }
}

/// A binding's metrics, known without keeping them: the weak reference keeps their
/// allocation, so no other binding's can take that address while it lives.
pub(crate) struct Identity(Weak<Inner>);

impl Identity {
    /// Whether `metrics` are the ones this names.
    pub(crate) fn is(&self, metrics: &BindingMetrics) -> bool {
        metrics
            .inner
            .as_ref()
            .is_some_and(|inner| std::ptr::eq(self.0.as_ptr(), Arc::as_ptr(inner)))
    }

    /// Whether the binding's metrics still exist.
    pub(crate) fn is_alive(&self) -> bool {
        self.0.strong_count() > 0
    }
}

/// The handles of one metric on one worker, one per combination of label values taken
/// from requests, each registered the first time its values are seen. Values past a
/// source's cap share one series, labelled [`OTHER_VALUE`](crate::OTHER_VALUE).
pub struct Family<H> {
    core: Option<Core>,
    _handle: PhantomData<H>,
}

impl<H> Family<H> {
    fn new(core: Option<Core>) -> Self {
        Family {
            core,
            _handle: PhantomData,
        }
    }

    fn run(&self, values: &[&str]) -> Option<Run> {
        self.core.as_ref().map(|core| core.run(values))
    }
}

impl Family<Counter> {
    /// The counter for these values of the metric's sources, in
    /// [`MetricDef::sources`] order (missing ones are empty).
    pub fn get(&self, values: &[&str]) -> Counter {
        Counter::new(self.run(values))
    }
}

impl Family<Gauge> {
    /// The gauge for these values of the metric's sources, in [`MetricDef::sources`] order.
    pub fn get(&self, values: &[&str]) -> Gauge {
        Gauge::new(self.run(values))
    }
}

impl Family<Level> {
    /// The level for these values of the metric's sources, in [`MetricDef::sources`] order.
    pub fn get(&self, values: &[&str]) -> Level {
        Level::new(self.run(values))
    }
}

impl Family<Histogram> {
    /// The histogram for these values of the metric's sources, in [`MetricDef::sources`]
    /// order.
    pub fn get(&self, values: &[&str]) -> Histogram {
        Histogram::new(self.run(values))
    }
}

/// A dimension and this worker's ids of its values.
struct Labelled {
    dimension: Dimension,
    cache: RefCell<ValueCache>,
}

struct Core {
    inner: Arc<Inner>,
    worker: usize,
    metric: &'static MetricDef,
    cells: usize,
    dimensions: Vec<Labelled>,
    /// This worker's cells of each series seen here.
    runs: RefCell<HashMap<Key, Run>>,
}

impl Core {
    fn run(&self, values: &[&str]) -> Run {
        let mut key = [OTHER; crate::MAX_DIMENSIONS];
        for (slot, labelled) in key.iter_mut().zip(&self.dimensions) {
            let value = values
                .get(labelled.dimension.source)
                .copied()
                .unwrap_or_default();
            *slot = labelled
                .cache
                .borrow_mut()
                .id(value, &labelled.dimension.table);
        }
        if let Some(run) = self.runs.borrow().get(&key) {
            return run.clone();
        }
        let run = self.register(key);
        self.runs.borrow_mut().insert(key, run.clone());
        run
    }

    fn register(&self, key: Key) -> Run {
        let labels = || {
            self.dimensions
                .iter()
                .zip(key)
                .map(|(labelled, id)| {
                    let value = values::lock(&labelled.dimension.table).value(id).to_owned();
                    (labelled.dimension.label.clone(), value)
                })
                .collect()
        };
        self.inner.shared.register(
            self.inner.index,
            self.metric,
            key,
            labels,
            self.worker,
            self.cells,
        )
    }
}

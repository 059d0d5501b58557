//! The [`Registry`]: every series of a configuration, with each worker's cells for it.
//!
//! Series are registered when a binding starts on a worker (and, for labels taken from
//! requests, when a value is first seen on that worker, at most a source's cap of times),
//! under the registry's lock; recording never takes it. A scrape takes it to read the
//! cells, which it does with relaxed loads, then formats outside it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::binding::BindingMetrics;
use crate::catalog::{Kind, MetricDef};
use crate::cells::{Run, Slab};
use crate::health::Readiness;
use crate::selection::{self, Selection, SelectionError, Signature, Tables};

use crate::snapshot::{Sample, Snapshot, Value};

/// Most labels taken from requests per metric: with each source's cap this bounds a
/// binding's series per metric (two sources of 16 values: 17 × 17).
pub const MAX_DIMENSIONS: usize = 2;

/// Value ids of a series' request labels, [`OTHER`](crate::values::OTHER) where folded.
pub(crate) type Key = [u16; MAX_DIMENSIONS];

/// Every series of one configuration. Cloning shares it.
#[derive(Clone)]
pub struct Registry {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    namespace: String,
    /// Labels of every series: the configuration's `telemetry.attributes`.
    constant: Vec<(String, String)>,
    /// What the health check answers; bindings declare its gates.
    pub(crate) readiness: Readiness,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    bindings: Vec<BindingLabels>,
    series: Vec<Series>,
    index: HashMap<SeriesKey, usize>,
    /// Each worker's cells, by worker index.
    slabs: Vec<Slab>,
    /// The cells of levels, which every worker shares (apart from the workers' pages, so a
    /// level set elsewhere never shares a cache line with a worker's counters).
    levels: Slab,
}

/// A binding's name and its literal attributes, with what a rebuild of it shares.
struct BindingLabels {
    name: String,
    labels: Vec<(String, String)>,
    signature: Signature,
    /// Its value tables (their union, when rebuilt recording more sources).
    tables: Tables,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct SeriesKey {
    binding: usize,
    metric: &'static str,
    values: Key,
}

struct Series {
    binding: usize,
    metric: &'static MetricDef,
    /// The request labels, with their values.
    labels: Vec<(String, String)>,
    /// Each worker's cells, by worker index; a level's one shared run is the first.
    runs: Vec<Option<Run>>,
}

impl Registry {
    /// A registry for the configuration named `namespace`, whose every series carries the
    /// `attributes` (label names are checked and made Prometheus names, as for bindings).
    pub fn new(namespace: &str, attributes: &[(String, String)]) -> Result<Self, SelectionError> {
        let mut constant = Vec::with_capacity(attributes.len());
        for (name, value) in attributes {
            let label = selection::label_name(name)?;
            if constant.iter().any(|(l, _)| *l == label) {
                return Err(SelectionError::DuplicateLabel(label));
            }
            constant.push((label, value.clone()));
        }
        Ok(Registry {
            shared: Arc::new(Shared {
                namespace: namespace.to_owned(),
                constant,
                readiness: Readiness::default(),
                state: Mutex::default(),
            }),
        })
    }

    /// The configuration's name, the `namespace` label.
    pub fn namespace(&self) -> &str {
        &self.shared.namespace
    }

    /// The readiness the exporter's health check reports: the engine says when the bindings
    /// have started, bindings open the gates they declared
    /// ([`BindingMetrics::ready_gate`]).
    pub fn readiness(&self) -> Readiness {
        self.shared.readiness.clone()
    }

    /// Declares binding `name` recording what `selection` says; its [`BindingMetrics`] makes
    /// the handles on each worker.
    ///
    /// A binding declared again with the same name and labels (rebuilt by a configuration
    /// reload) continues its series: its counters keep counting and no series appears twice.
    pub fn binding(
        &self,
        name: &str,
        selection: Selection,
    ) -> Result<BindingMetrics, SelectionError> {
        let mut resolved = selection.resolve(&self.shared.constant)?;
        let signature = resolved.signature();
        let index = {
            let mut state = self.shared.lock();
            let known = state
                .bindings
                .iter()
                .position(|b| b.name == name && b.signature == signature);
            match known {
                Some(index) => {
                    let binding = &mut state.bindings[index];
                    resolved.adopt(&binding.tables);
                    for (source, table) in resolved.tables() {
                        binding
                            .tables
                            .entry(source)
                            .or_insert_with(|| table.clone());
                    }
                    index
                }
                None => {
                    state.bindings.push(BindingLabels {
                        name: name.to_owned(),
                        labels: resolved.literal_labels(),
                        signature,
                        tables: resolved.tables().clone(),
                    });
                    state.bindings.len() - 1
                }
            }
        };
        Ok(BindingMetrics::new(self.shared.clone(), index, resolved))
    }

    /// The current value of every series: each worker's cells, summed.
    pub fn snapshot(&self) -> Snapshot {
        let shared = &self.shared;
        let state = shared.lock();
        let mut samples = Vec::with_capacity(state.series.len());
        for series in &state.series {
            let binding = &state.bindings[series.binding];
            let mut labels = Vec::with_capacity(2 + shared.constant.len() + binding.labels.len());
            labels.push(("namespace".to_owned(), shared.namespace.clone()));
            labels.push(("binding".to_owned(), binding.name.clone()));
            labels.extend(shared.constant.iter().cloned());
            labels.extend(binding.labels.iter().cloned());
            labels.extend(series.labels.iter().cloned());
            samples.push(Sample {
                metric: series.metric,
                labels,
                value: Value::sum(series.metric.kind, series.runs.iter().flatten()),
            });
        }
        drop(state);
        Snapshot::new(samples)
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("namespace", &self.shared.namespace)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change under this lock is a push or an insert: a panic cannot leave a half.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cells of a series on `worker`, registering the series and allocating the cells
    /// on first use. `labels` names the request labels of a new series; it may lock value
    /// tables (a table is locked under this lock, never this lock under a table's).
    pub(crate) fn register(
        &self,
        binding: usize,
        metric: &'static MetricDef,
        values: Key,
        labels: impl FnOnce() -> Vec<(String, String)>,
        worker: usize,
        cells: usize,
    ) -> Run {
        let mut state = self.lock();
        let state = &mut *state;
        let key = SeriesKey {
            binding,
            metric: metric.name,
            values,
        };
        let index = match state.index.get(&key) {
            Some(&index) => index,
            None => {
                state.series.push(Series {
                    binding,
                    metric,
                    labels: labels(),
                    runs: Vec::new(),
                });
                state.index.insert(key, state.series.len() - 1);
                state.series.len() - 1
            }
        };
        let series = &mut state.series[index];
        if metric.kind == Kind::Level {
            if series.runs.is_empty() {
                series.runs.push(None);
            }
            return series.runs[0]
                .get_or_insert_with(|| state.levels.allocate(cells))
                .clone();
        }
        if series.runs.len() <= worker {
            series.runs.resize_with(worker + 1, || None);
        }
        if state.slabs.len() <= worker {
            state.slabs.resize_with(worker + 1, Slab::default);
        }
        series.runs[worker]
            .get_or_insert_with(|| state.slabs[worker].allocate(cells))
            .clone()
    }
}

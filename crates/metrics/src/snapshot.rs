//! A [`Snapshot`]: every series' value at one moment, the workers' cells summed.

use crate::catalog::{self, Kind, MetricDef};
use crate::cells::Run;
use crate::handle::BUCKETS;

/// Every series, sorted by metric (in [`CATALOG`](crate::catalog::CATALOG) order) and labels.
#[derive(Clone, Debug)]
pub struct Snapshot {
    samples: Vec<Sample>,
}

/// One series and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The metric.
    pub metric: &'static MetricDef,
    /// Its labels: `namespace`, `binding`, the configured attributes, labels from requests.
    pub labels: Vec<(String, String)>,
    /// The sum over the workers.
    pub value: Value,
}

/// A series' value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A counter's total.
    Counter(u64),
    /// A gauge's value.
    Gauge(i64),
    /// A histogram's buckets and sum.
    Histogram(Box<HistogramValue>),
}

/// A histogram's counts per bucket (not cumulative; the last is `+Inf`) and the sum of the
/// values recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistogramValue {
    /// Values per bucket ([`bucket_bound`](crate::bucket_bound) gives each upper bound).
    pub buckets: [u64; BUCKETS],
    /// Sum of the values.
    pub sum: u64,
}

impl HistogramValue {
    /// How many values were recorded: the buckets' total, so it always equals the `+Inf`
    /// bucket of the exposition, whatever a worker was doing during the scrape.
    pub fn count(&self) -> u64 {
        self.buckets.iter().fold(0u64, |a, b| a.wrapping_add(*b))
    }
}

impl Value {
    /// The sum of `runs`, each one worker's cells of a series of `kind`.
    pub(crate) fn sum<'a>(kind: Kind, runs: impl Iterator<Item = &'a Run>) -> Value {
        match kind {
            Kind::Level => Value::Gauge(runs.last().map_or(0, |run| run.read(0)) as i64),
            Kind::Counter | Kind::Gauge => {
                let total = runs.fold(0u64, |total, run| total.wrapping_add(run.read(0)));
                match kind {
                    Kind::Counter => Value::Counter(total),
                    _ => Value::Gauge(total as i64),
                }
            }
            Kind::Histogram => {
                let mut value = HistogramValue {
                    buckets: [0; BUCKETS],
                    sum: 0,
                };
                for run in runs {
                    for (index, bucket) in value.buckets.iter_mut().enumerate() {
                        *bucket = bucket.wrapping_add(run.read(index));
                    }
                    value.sum = value.sum.wrapping_add(run.read(BUCKETS));
                }
                Value::Histogram(Box::new(value))
            }
        }
    }
}

impl Snapshot {
    pub(crate) fn new(mut samples: Vec<Sample>) -> Self {
        samples.sort_by(|a, b| {
            catalog::position(a.metric)
                .cmp(&catalog::position(b.metric))
                .then_with(|| a.labels.cmp(&b.labels))
        });
        Snapshot { samples }
    }

    /// The series.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// The value of `metric` on `binding` whose other labels include `labels`.
    pub fn value(&self, metric: &str, binding: &str, labels: &[(&str, &str)]) -> Option<&Value> {
        self.samples
            .iter()
            .find(|s| {
                s.metric.name == metric
                    && s.label("binding") == Some(binding)
                    && labels
                        .iter()
                        .all(|(name, value)| s.label(name) == Some(value))
            })
            .map(|s| &s.value)
    }
}

impl Sample {
    /// The value of label `name`.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

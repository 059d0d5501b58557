//! What a binding records with: [`Counter`], [`Gauge`] and [`Histogram`], each a reference
//! to its cells on one worker, and [`Level`], a reference to a cell every worker shares.
//!
//! A handle is made on its worker ([`BindingMetrics`](crate::BindingMetrics)) and cannot
//! leave it (it is neither `Send` nor `Sync`): its cells have one writer, so recording is a
//! relaxed load and store, without a lock, a locked instruction or an allocation. A handle of
//! a metric the binding does not record is disabled: recording does nothing.

use std::marker::PhantomData;

use crate::cells::Run;

/// Keeps handles on the thread that made them.
type OnItsWorker = PhantomData<*const ()>;

/// Finite histogram buckets: upper bounds 2⁰, 2¹, … 2³² (in the metric's unit).
pub const FINITE_BUCKETS: usize = 33;

/// Histogram buckets, the finite ones and `+Inf`.
pub const BUCKETS: usize = FINITE_BUCKETS + 1;

/// Cells of a histogram: its buckets, then the sum.
pub(crate) const HISTOGRAM_CELLS: usize = BUCKETS + 1;

/// The bucket that counts `value`: the first whose upper bound is at least `value`.
pub fn bucket_index(value: u64) -> usize {
    let index = match value {
        0 | 1 => 0,
        v => (u64::BITS - (v - 1).leading_zeros()) as usize,
    };
    index.min(FINITE_BUCKETS)
}

/// The upper bound of bucket `index`; `None` for `+Inf`.
pub fn bucket_bound(index: usize) -> Option<u64> {
    (index < FINITE_BUCKETS).then(|| 1u64 << index)
}

/// Counts up.
#[derive(Clone, Default)]
pub struct Counter {
    run: Option<Run>,
    _worker: OnItsWorker,
}

impl Counter {
    pub(crate) fn new(run: Option<Run>) -> Self {
        Counter {
            run,
            _worker: PhantomData,
        }
    }

    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        if let Some(run) = &self.run {
            run.add(0, n);
        }
    }

    /// Adds one.
    #[inline]
    pub fn increment(&self) {
        self.add(1);
    }

    /// Whether the binding records this metric.
    pub fn is_enabled(&self) -> bool {
        self.run.is_some()
    }
}

/// Goes up and down. Each worker keeps its own share, which may be negative (a stream
/// opened on one worker and closed on another); a scrape sums the shares.
#[derive(Clone, Default)]
pub struct Gauge {
    run: Option<Run>,
    _worker: OnItsWorker,
}

impl Gauge {
    pub(crate) fn new(run: Option<Run>) -> Self {
        Gauge {
            run,
            _worker: PhantomData,
        }
    }

    /// Adds `delta` (negative to subtract).
    #[inline]
    pub fn add(&self, delta: i64) {
        if let Some(run) = &self.run {
            // Two's complement: adding the bits of -1 subtracts one.
            run.add(0, delta as u64);
        }
    }

    /// Adds one.
    #[inline]
    pub fn increment(&self) {
        self.add(1);
    }

    /// Subtracts one.
    #[inline]
    pub fn decrement(&self) {
        self.add(-1);
    }

    /// Whether the binding records this metric.
    pub fn is_enabled(&self) -> bool {
        self.run.is_some()
    }
}

/// Is set to a value (a [`Kind::Level`](crate::catalog::Kind::Level) metric): one cell per
/// series, shared by every worker, so the value is the last one set from anywhere. For what
/// one place knows whole (a topic's lag, a broker connection's state); a plain store, no
/// lock, no locked instruction.
#[derive(Clone, Default)]
pub struct Level {
    run: Option<Run>,
    _worker: OnItsWorker,
}

impl Level {
    pub(crate) fn new(run: Option<Run>) -> Self {
        Level {
            run,
            _worker: PhantomData,
        }
    }

    /// Sets the value.
    #[inline]
    pub fn set(&self, value: i64) {
        if let Some(run) = &self.run {
            // Two's complement, read back as i64 by the scrape.
            run.set(0, value as u64);
        }
    }

    /// Whether the binding records this metric.
    pub fn is_enabled(&self) -> bool {
        self.run.is_some()
    }
}

/// Counts values in power-of-two buckets ([`bucket_index`]) and sums them.
#[derive(Clone, Default)]
pub struct Histogram {
    run: Option<Run>,
    _worker: OnItsWorker,
}

impl Histogram {
    pub(crate) fn new(run: Option<Run>) -> Self {
        Histogram {
            run,
            _worker: PhantomData,
        }
    }

    /// Records one value, in the metric's unit.
    #[inline]
    pub fn record(&self, value: u64) {
        if let Some(run) = &self.run {
            run.add(bucket_index(value), 1);
            run.add(BUCKETS, value);
        }
    }

    /// Whether the binding records this metric.
    pub fn is_enabled(&self) -> bool {
        self.run.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_powers_of_two_with_inclusive_bounds() {
        assert_eq!(bucket_index(0), 0);
        assert_eq!(bucket_index(1), 0);
        assert_eq!(bucket_index(2), 1);
        assert_eq!(bucket_index(3), 2);
        assert_eq!(bucket_index(4), 2);
        assert_eq!(bucket_index(5), 3);
        assert_eq!(bucket_index(1 << 32), 32);
        assert_eq!(bucket_index((1 << 32) + 1), FINITE_BUCKETS);
        assert_eq!(bucket_index(u64::MAX), FINITE_BUCKETS);
        assert_eq!(bucket_bound(0), Some(1));
        assert_eq!(bucket_bound(32), Some(1 << 32));
        assert_eq!(bucket_bound(FINITE_BUCKETS), None);
        for value in [0, 1, 2, 3, 7, 8, 9, 1000, 1 << 20, (1 << 32) - 1, 1 << 32] {
            let index = bucket_index(value);
            let bound = bucket_bound(index).expect("finite");
            assert!(value <= bound, "{value} in bucket {index}");
            assert!(
                index == 0 || value > bound / 2,
                "{value} belongs lower than {index}"
            );
        }
    }

    #[test]
    fn disabled_handles_record_nothing() {
        let counter = Counter::default();
        counter.increment();
        assert!(!counter.is_enabled());
        Gauge::default().decrement();
        Level::default().set(3);
        Histogram::default().record(7);
    }
}

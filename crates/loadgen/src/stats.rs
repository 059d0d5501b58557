//! Counters and latency histograms shared by every subscriber, sharded so that subscribers on
//! different threads rarely touch the same cache line or lock.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};

use hdrhistogram::Histogram;

const SHARDS: usize = 32;
/// Highest latency recorded, in microseconds (larger values are clamped to it).
const MAX_LATENCY_US: u64 = 600_000_000;

#[repr(align(128))]
struct Shard {
    delivered: AtomicU64,
    lost: AtomicU64,
    duplicated: AtomicU64,
    histogram: Mutex<Histogram<u64>>,
}

/// The shared figures of one run.
pub struct Stats {
    shards: Vec<Shard>,
    /// Subscriber streams open right now (response 200 received, not yet ended).
    pub connected: AtomicU64,
    /// Connections or streams that failed or ended unexpectedly.
    pub errors: AtomicU64,
    /// Subscribers that came back after being told to drop (reconnect scenario).
    pub resumed: AtomicU64,
    /// Unix nanos of the latest delivery.
    pub last_delivery_nanos: AtomicU64,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Maximum.
    pub max: u64,
    /// Number of samples.
    pub count: u64,
}

impl Stats {
    /// Empty figures.
    pub fn new() -> Result<Self, hdrhistogram::CreationError> {
        let shards = (0..SHARDS)
            .map(|_| {
                Ok(Shard {
                    delivered: AtomicU64::new(0),
                    lost: AtomicU64::new(0),
                    duplicated: AtomicU64::new(0),
                    histogram: Mutex::new(Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)?),
                })
            })
            .collect::<Result<_, hdrhistogram::CreationError>>()?;
        Ok(Self {
            shards,
            connected: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            resumed: AtomicU64::new(0),
            last_delivery_nanos: AtomicU64::new(0),
        })
    }

    fn shard(&self, subscriber: usize) -> &Shard {
        &self.shards[subscriber % SHARDS]
    }

    /// Records deliveries to `subscriber`, given their produce-to-receive latencies, received
    /// at `now_nanos`.
    pub fn delivered(&self, subscriber: usize, latencies_us: &[u64], now_nanos: u64) {
        if latencies_us.is_empty() {
            return;
        }
        let shard = self.shard(subscriber);
        shard
            .delivered
            .fetch_add(latencies_us.len() as u64, Relaxed);
        let mut histogram = shard
            .histogram
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for &latency in latencies_us {
            histogram.saturating_record(latency.clamp(1, MAX_LATENCY_US));
        }
        drop(histogram);
        self.last_delivery_nanos.fetch_max(now_nanos, Relaxed);
    }

    /// Adds lost and duplicated events seen by `subscriber`.
    pub fn add_loss(&self, subscriber: usize, lost: u64, duplicated: u64) {
        let shard = self.shard(subscriber);
        if lost > 0 {
            shard.lost.fetch_add(lost, Relaxed);
        }
        if duplicated > 0 {
            shard.duplicated.fetch_add(duplicated, Relaxed);
        }
    }

    /// Total deliveries so far.
    pub fn delivered_total(&self) -> u64 {
        self.shards.iter().map(|s| s.delivered.load(Relaxed)).sum()
    }

    /// Total lost so far.
    pub fn lost_total(&self) -> u64 {
        self.shards.iter().map(|s| s.lost.load(Relaxed)).sum()
    }

    /// Total duplicated so far.
    pub fn duplicated_total(&self) -> u64 {
        self.shards.iter().map(|s| s.duplicated.load(Relaxed)).sum()
    }

    /// Merged latency percentiles.
    pub fn latency(&self) -> Latency {
        let mut merged: Option<Histogram<u64>> = None;
        for shard in &self.shards {
            let h = shard
                .histogram
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match merged.as_mut() {
                None => merged = Some(h.clone()),
                Some(m) => {
                    // Same bounds everywhere, so adding cannot fail.
                    let _ = m.add(&*h);
                }
            }
        }
        merged
            .filter(|h| !h.is_empty())
            .map_or_else(Latency::default, |h| Latency {
                p50: h.value_at_quantile(0.5),
                p99: h.value_at_quantile(0.99),
                p999: h.value_at_quantile(0.999),
                max: h.max(),
                count: h.len(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_shards() {
        let stats = Stats::new().unwrap();
        assert_eq!(stats.latency(), Latency::default());
        for i in 0..1000u64 {
            stats.delivered(i as usize, &[i + 1], i);
        }
        stats.delivered(0, &[], 5_000);
        stats.add_loss(3, 2, 1);
        let l = stats.latency();
        assert_eq!((l.count, l.max), (1000, 1000));
        assert!((499..=501).contains(&l.p50) && (989..=991).contains(&l.p99));
        assert_eq!(stats.delivered_total(), 1000);
        assert_eq!((stats.lost_total(), stats.duplicated_total()), (2, 1));
        assert_eq!(stats.last_delivery_nanos.load(Relaxed), 999);
    }
}

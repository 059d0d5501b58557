//! What a cache server records, by topic: from each topic's upstream task, after every
//! batch it applies and every retention tick, the levels `kafka.cache.size`,
//! `kafka.cache.records` and `kafka.consumer.lag` ([`TopicState::totals`]) and the counter
//! `kafka.cache.evictions`; from each subscriber, `kafka.cache.gaps` as gaps are announced.
//!
//! [`TopicState::totals`]: crate::cache::TopicState::totals

use zilla_metrics::catalog::{
    KAFKA_CACHE_EVICTIONS, KAFKA_CACHE_GAPS, KAFKA_CACHE_RECORDS, KAFKA_CACHE_SIZE,
    KAFKA_CONSUMER_LAG,
};
use zilla_metrics::{BindingMetrics, Counter, Family, Level};

use crate::cache::Totals;

/// One topic's handles on the worker its upstream runs on, and what it has reported.
pub(crate) struct TopicMeter {
    size: Level,
    records: Level,
    lag: Level,
    evictions: Counter,
    /// Records appended since the topic started.
    appended: u64,
    /// Records gone from the logs since then (retention, the cap, compaction), as reported.
    evicted: u64,
}

impl TopicMeter {
    /// The handles of `topic` on `worker`; `None` when the binding records none of them.
    pub(crate) fn new(metrics: &BindingMetrics, worker: usize, topic: &str) -> Option<Self> {
        let records_any = [
            &KAFKA_CACHE_SIZE,
            &KAFKA_CACHE_RECORDS,
            &KAFKA_CONSUMER_LAG,
            &KAFKA_CACHE_EVICTIONS,
        ]
        .into_iter()
        .any(|m| metrics.records(m));
        records_any.then(|| TopicMeter {
            size: metrics.levels(worker, &KAFKA_CACHE_SIZE).get(&[topic]),
            records: metrics.levels(worker, &KAFKA_CACHE_RECORDS).get(&[topic]),
            lag: metrics.levels(worker, &KAFKA_CONSUMER_LAG).get(&[topic]),
            evictions: metrics
                .counters(worker, &KAFKA_CACHE_EVICTIONS)
                .get(&[topic]),
            appended: 0,
            evicted: 0,
        })
    }

    /// `appended` more records were appended, and the topic now holds `totals`: what is
    /// neither held nor reported yet was evicted.
    pub(crate) fn update(&mut self, appended: u64, totals: Totals) {
        self.appended += appended;
        let evicted = self.appended.saturating_sub(totals.records);
        if evicted > self.evicted {
            self.evictions.add(evicted - self.evicted);
            self.evicted = evicted;
        }
        self.size
            .set(i64::try_from(totals.bytes).unwrap_or(i64::MAX));
        self.records
            .set(i64::try_from(totals.records).unwrap_or(i64::MAX));
        self.lag.set(totals.lag);
    }

    /// The topic was dropped or forgotten: it holds nothing.
    pub(crate) fn gone(&self) {
        self.size.set(0);
        self.records.set(0);
        self.lag.set(0);
    }
}

/// A worker's `kafka.cache.gaps` counters of one binding, by topic.
pub(crate) struct Gaps(Family<Counter>);

impl Gaps {
    /// The counters on `worker`.
    pub(crate) fn on(metrics: &BindingMetrics, worker: usize) -> Self {
        Gaps(metrics.counters(worker, &KAFKA_CACHE_GAPS))
    }

    /// The counter of `topic`, for one subscriber to hold.
    pub(crate) fn of(&self, topic: &str) -> Counter {
        self.0.get(&[topic])
    }
}

#[cfg(test)]
mod tests {
    use zilla_metrics::{Registry, Selection, Value};

    use super::*;

    #[test]
    fn evictions_are_what_was_appended_and_is_no_longer_held() {
        let registry = Registry::new("ns", &[]).expect("registry");
        let selection = Selection {
            metrics: vec![
                &KAFKA_CACHE_SIZE,
                &KAFKA_CACHE_RECORDS,
                &KAFKA_CONSUMER_LAG,
                &KAFKA_CACHE_EVICTIONS,
            ],
            attributes: Vec::new(),
        };
        let metrics = registry.binding("cache", selection).expect("binding");
        let mut meter = TopicMeter::new(&metrics, 0, "events").expect("records");
        let totals = |records, bytes, lag| Totals {
            records,
            bytes,
            lag,
        };
        meter.update(10, totals(10, 1000, 4));
        meter.update(0, totals(7, 700, 0));
        meter.update(5, totals(12, 1200, 0));
        meter.update(0, totals(12, 1200, 0));
        let value = |metric: &str| {
            registry
                .snapshot()
                .value(metric, "cache", &[("topic", "events")])
                .cloned()
        };
        assert_eq!(value("kafka.cache.evictions"), Some(Value::Counter(3)));
        assert_eq!(value("kafka.cache.records"), Some(Value::Gauge(12)));
        assert_eq!(value("kafka.cache.size"), Some(Value::Gauge(1200)));
        assert_eq!(value("kafka.consumer.lag"), Some(Value::Gauge(0)));
        meter.gone();
        assert_eq!(value("kafka.cache.records"), Some(Value::Gauge(0)));
        assert!(TopicMeter::new(&BindingMetrics::default(), 0, "events").is_none());
    }
}

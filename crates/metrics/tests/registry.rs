//! The registry as bindings and the exporter use it: records on several workers summed by a
//! scrape, labels from requests bounded by their cap.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use zilla_metrics::catalog::{
    HTTP_ACTIVE_REQUESTS, HTTP_DURATION, HTTP_REQUEST_METHOD, HTTP_REQUEST_SIZE, KAFKA_CACHE_GAPS,
    SSE_SUBSCRIBERS_ENDED, STREAM_ACTIVE_RECEIVED, STREAM_OPENS_RECEIVED,
};
use zilla_metrics::{
    Attribute, AttributeValue, BUCKETS, BindingMetrics, OTHER_VALUE, Registry, Selection, Value,
    bucket_index,
};

fn tcp_metrics(registry: &Registry) -> BindingMetrics {
    let selection = Selection {
        metrics: vec![
            &STREAM_OPENS_RECEIVED,
            &STREAM_ACTIVE_RECEIVED,
            &HTTP_REQUEST_SIZE,
        ],
        attributes: Vec::new(),
    };
    registry.binding("tcp", selection).unwrap()
}

/// One thing a worker records.
#[derive(Clone, Debug)]
enum Record {
    Open(u64),
    Active(i64),
    Size(u64),
}

fn record() -> impl Strategy<Value = Record> {
    prop_oneof![
        (0u64..1000).prop_map(Record::Open),
        (-50i64..50).prop_map(Record::Active),
        prop_oneof![0u64..5000, Just(u64::MAX >> 8), Just(1 << 32)].prop_map(Record::Size),
    ]
}

proptest! {
    /// Whatever each worker records, a scrape shows the sum over the workers: counters,
    /// gauges (negative shares included), and each histogram bucket and its sum.
    #[test]
    fn a_scrape_sums_what_every_worker_recorded(
        records in proptest::collection::vec((0usize..4, record()), 0..300),
    ) {
        let registry = Registry::new("ns", &[]).unwrap();
        let metrics = tcp_metrics(&registry);
        let opens: Vec<_> = (0..4).map(|w| metrics.counter(w, &STREAM_OPENS_RECEIVED)).collect();
        let active: Vec<_> = (0..4).map(|w| metrics.gauge(w, &STREAM_ACTIVE_RECEIVED)).collect();
        let sizes: Vec<_> = (0..4).map(|w| metrics.histogram(w, &HTTP_REQUEST_SIZE)).collect();
        let (mut total_opens, mut total_active, mut buckets, mut sum) = (0u64, 0i64, [0u64; BUCKETS], 0u64);
        for (worker, record) in records {
            match record {
                Record::Open(n) => {
                    opens[worker].add(n);
                    total_opens += n;
                }
                Record::Active(d) => {
                    active[worker].add(d);
                    total_active += d;
                }
                Record::Size(v) => {
                    sizes[worker].record(v);
                    buckets[bucket_index(v)] += 1;
                    sum = sum.wrapping_add(v);
                }
            }
        }
        let snapshot = registry.snapshot();
        prop_assert_eq!(
            snapshot.value("stream.opens.received", "tcp", &[]),
            Some(&Value::Counter(total_opens))
        );
        prop_assert_eq!(
            snapshot.value("stream.active.received", "tcp", &[]),
            Some(&Value::Gauge(total_active))
        );
        let Some(Value::Histogram(histogram)) = snapshot.value("http.request.size", "tcp", &[]) else {
            panic!("no histogram");
        };
        prop_assert_eq!(histogram.buckets, buckets);
        prop_assert_eq!(histogram.sum, sum);
        prop_assert_eq!(histogram.count(), buckets.iter().sum::<u64>());
    }

    /// However many distinct methods arrive, on whichever workers, a binding has at most
    /// the cap's series of them plus `other`, and every request is counted once.
    #[test]
    fn request_labels_are_capped_and_nothing_is_lost(
        requests in proptest::collection::vec((0usize..3, 0u32..40), 0..200),
    ) {
        let registry = Registry::new("ns", &[]).unwrap();
        let selection = Selection {
            metrics: vec![&HTTP_ACTIVE_REQUESTS],
            attributes: vec![Attribute {
                name: "method".into(),
                value: AttributeValue::Source(&HTTP_REQUEST_METHOD),
            }],
        };
        let metrics = registry.binding("http", selection).unwrap();
        let families: Vec<_> = (0..3).map(|w| metrics.gauges(w, &HTTP_ACTIVE_REQUESTS)).collect();
        for (worker, method) in &requests {
            families[*worker].get(&[&format!("M{method}")]).increment();
        }
        let snapshot = registry.snapshot();
        let series: Vec<_> = snapshot.samples().iter().filter(|s| s.metric.name == "http.active.requests").collect();
        let distinct: std::collections::HashSet<_> = requests.iter().map(|(_, m)| m).collect();
        let cap = usize::from(HTTP_REQUEST_METHOD.cap);
        prop_assert_eq!(series.len(), distinct.len().min(cap) + usize::from(distinct.len() > cap));
        let total: i64 = series.iter().map(|s| match s.value { Value::Gauge(v) => v, _ => 0 }).sum();
        prop_assert_eq!(total, requests.len() as i64);
        let other = series.iter().filter(|s| s.label("method") == Some(OTHER_VALUE)).count();
        prop_assert!(other <= 1);
    }
}

#[test]
fn workers_on_their_own_threads_are_summed_while_scraped() {
    let registry = Registry::new("ns", &[]).unwrap();
    let metrics = tcp_metrics(&registry);
    let scraper = {
        let registry = registry.clone();
        std::thread::spawn(move || {
            // Counters only go up, whenever the scrape lands.
            let mut last = 0;
            for _ in 0..200 {
                if let Some(Value::Counter(now)) = registry
                    .snapshot()
                    .value("stream.opens.received", "tcp", &[])
                    .cloned()
                {
                    assert!(now >= last, "{now} after {last}");
                    last = now;
                }
            }
        })
    };
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let metrics = metrics.clone();
            std::thread::spawn(move || {
                let opens = metrics.counter(worker, &STREAM_OPENS_RECEIVED);
                let active = metrics.gauge(worker, &STREAM_ACTIVE_RECEIVED);
                for _ in 0..100_000 {
                    opens.increment();
                    active.increment();
                    active.decrement();
                }
                active.add(worker as i64);
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    scraper.join().unwrap();
    let snapshot = registry.snapshot();
    assert_eq!(
        snapshot.value("stream.opens.received", "tcp", &[]),
        Some(&Value::Counter(400_000))
    );
    assert_eq!(
        snapshot.value("stream.active.received", "tcp", &[]),
        Some(&Value::Gauge(6))
    );
}

#[test]
fn metrics_a_binding_does_not_record_get_disabled_handles() {
    let registry = Registry::new("ns", &[]).unwrap();
    let metrics = tcp_metrics(&registry);
    let _opens = metrics.counter(0, &STREAM_OPENS_RECEIVED);
    let duration = metrics.histogram(0, &HTTP_DURATION);
    assert!(!duration.is_enabled());
    duration.record(5);
    assert!(
        !BindingMetrics::default()
            .counter(0, &STREAM_OPENS_RECEIVED)
            .is_enabled()
    );
    let snapshot = registry.snapshot();
    assert!(
        snapshot
            .samples()
            .iter()
            .all(|s| s.metric.name != "http.duration")
    );
    // Registered as the binding starts, so exposed at zero before anything happens.
    assert_eq!(
        snapshot.value("stream.opens.received", "tcp", &[]),
        Some(&Value::Counter(0))
    );
}

#[test]
fn own_labels_and_attributes_label_the_series() {
    let registry = Registry::new("ns", &[("service.name".into(), "zilla".into())]).unwrap();
    let selection = Selection {
        metrics: vec![&SSE_SUBSCRIBERS_ENDED, &KAFKA_CACHE_GAPS, &HTTP_DURATION],
        attributes: vec![
            Attribute {
                name: "region".into(),
                value: AttributeValue::Literal("eu".into()),
            },
            Attribute {
                name: "method".into(),
                value: AttributeValue::Source(&HTTP_REQUEST_METHOD),
            },
        ],
    };
    let metrics = registry.binding("sse", selection).unwrap();
    let ended = metrics.counters(1, &SSE_SUBSCRIBERS_ENDED);
    ended.get(&["client"]).add(2);
    ended.get(&["slow_client"]).increment();
    ended.get(&["client"]).increment();
    metrics
        .counters(0, &KAFKA_CACHE_GAPS)
        .get(&["events"])
        .increment();
    metrics
        .histograms(0, &HTTP_DURATION)
        .get(&["GET", "/items"])
        .record(1500);
    let snapshot = registry.snapshot();
    assert_eq!(
        snapshot.value("sse.subscribers.ended", "sse", &[("reason", "client")]),
        Some(&Value::Counter(3))
    );
    assert_eq!(
        snapshot.value("sse.subscribers.ended", "sse", &[("reason", "slow_client")]),
        Some(&Value::Counter(1))
    );
    let gaps = snapshot
        .samples()
        .iter()
        .find(|s| s.metric.name == "kafka.cache.gaps")
        .unwrap();
    let names: Vec<&str> = gaps.labels.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["namespace", "binding", "service_name", "region", "topic"]
    );
    assert_eq!(
        snapshot.value(
            "http.duration",
            "sse",
            &[("method", "GET"), ("region", "eu")]
        ),
        Some(&Value::Histogram(Box::new(zilla_metrics::HistogramValue {
            buckets: std::array::from_fn(|i| u64::from(i == bucket_index(1500))),
            sum: 1500,
        })))
    );
}

#[test]
fn a_level_is_the_last_value_set_on_any_worker_not_a_sum() {
    use zilla_metrics::catalog::{KAFKA_BROKER_CONNECTED, KAFKA_CONSUMER_LAG};
    let registry = Registry::new("ns", &[]).unwrap();
    let selection = Selection {
        metrics: vec![&KAFKA_CONSUMER_LAG, &KAFKA_BROKER_CONNECTED],
        attributes: Vec::new(),
    };
    let metrics = registry.binding("kafka", selection).unwrap();
    let on_worker = |worker: usize, topic: &str, lag: i64| {
        let metrics = metrics.clone();
        let topic = topic.to_owned();
        std::thread::spawn(move || {
            metrics
                .levels(worker, &KAFKA_CONSUMER_LAG)
                .get(&[&topic])
                .set(lag)
        })
        .join()
        .unwrap();
    };
    on_worker(0, "events", 7);
    on_worker(1, "events", 3);
    on_worker(1, "ticks", 0);
    let broker = metrics.levels(0, &KAFKA_BROKER_CONNECTED).get(&["b:9092"]);
    broker.set(1);
    let snapshot = registry.snapshot();
    let value =
        |metric: &str, labels: &[(&str, &str)]| snapshot.value(metric, "kafka", labels).cloned();
    assert_eq!(
        value("kafka.consumer.lag", &[("topic", "events")]),
        Some(Value::Gauge(3)),
        "the last set, not 7 + 3"
    );
    assert_eq!(
        value("kafka.consumer.lag", &[("topic", "ticks")]),
        Some(Value::Gauge(0))
    );
    assert_eq!(
        value("kafka.broker.connected", &[("broker", "b:9092")]),
        Some(Value::Gauge(1))
    );
    broker.set(0);
    assert_eq!(
        registry
            .snapshot()
            .value("kafka.broker.connected", "kafka", &[])
            .cloned(),
        Some(Value::Gauge(0))
    );
    let text = zilla_metrics::exposition::write(&registry.snapshot());
    assert!(text.contains("# TYPE kafka_consumer_lag gauge\n"), "{text}");
    assert!(
        text.contains(
            "kafka_consumer_lag{namespace=\"ns\",binding=\"kafka\",topic=\"events\"} 3\n"
        ),
        "{text}"
    );
}

#[test]
fn a_binding_declared_again_continues_its_series() {
    let registry = Registry::new("ns", &[]).unwrap();
    let selection = || Selection {
        metrics: vec![&STREAM_OPENS_RECEIVED, &HTTP_DURATION],
        attributes: vec![Attribute {
            name: "method".into(),
            value: AttributeValue::Source(&HTTP_REQUEST_METHOD),
        }],
    };
    let first = registry.binding("http", selection()).unwrap();
    first.counter(0, &STREAM_OPENS_RECEIVED).add(2);
    first.histograms(0, &HTTP_DURATION).get(&["GET"]).record(1);
    // Rebuilt by a reload: the same name and labels.
    let again = registry.binding("http", selection()).unwrap();
    again.counter(0, &STREAM_OPENS_RECEIVED).add(3);
    let durations = again.histograms(1, &HTTP_DURATION);
    durations.get(&["POST"]).record(1);
    durations.get(&["GET"]).record(1);
    let snapshot = registry.snapshot();
    let opens: Vec<_> = snapshot
        .samples()
        .iter()
        .filter(|s| s.metric.name == "stream.opens.received")
        .collect();
    assert_eq!(opens.len(), 1, "one series, not one per build");
    assert_eq!(opens[0].value, Value::Counter(5));
    let count = |method: &str| match snapshot.value("http.duration", "http", &[("method", method)])
    {
        Some(Value::Histogram(h)) => h.count(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (count("GET"), count("POST")),
        (2, 1),
        "values keep their series"
    );
    // Other labels: series of their own.
    let relabelled = Selection {
        metrics: vec![&STREAM_OPENS_RECEIVED],
        attributes: vec![Attribute {
            name: "zone".into(),
            value: AttributeValue::Literal("b".into()),
        }],
    };
    registry
        .binding("http", relabelled)
        .unwrap()
        .counter(0, &STREAM_OPENS_RECEIVED)
        .increment();
    let snapshot = registry.snapshot();
    assert_eq!(
        snapshot.value("stream.opens.received", "http", &[("zone", "b")]),
        Some(&Value::Counter(1))
    );
}

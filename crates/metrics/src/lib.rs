//! # zilla-metrics
//!
//! Counters, gauges and histograms for zilla-rs's bindings, recorded per worker without a
//! lock and summed when scraped, and the Prometheus text format they are served in.
//!
//! ## The configuration it serves
//!
//! The engine reads `zilla.yaml`'s `telemetry` and each binding's `telemetry`, checks them
//! against the [`catalog`] and hands every binding factory its [`BindingMetrics`]:
//!
//! ```yaml
//! telemetry:
//!   attributes:                 # labels of every series (names made Prometheus names:
//!     service.namespace: demo   #   service_namespace="demo")
//!   metrics:                    # what may be recorded
//!     - stream.opens.received
//!     - http.duration
//!   exporters:
//!     prometheus_metrics:
//!       type: prometheus
//!       options:
//!         endpoints: [{scheme: http, port: 7190, path: /metrics}]
//! bindings:
//!   north_http_server:
//!     type: http
//!     kind: server
//!     telemetry:
//!       metrics: [http.*]       # names or NAME.* patterns, among telemetry.metrics
//!       attributes:
//!         region: eu            # a literal label
//!         method: ${http.request.method}   # a label taken from each request
//! ```
//!
//! Every series is labelled `namespace` (the configuration's `name`), `binding`, the
//! attributes, and its own labels ([`Source::label`](catalog::Source::label): `topic`,
//! `broker`, `reason`).
//!
//! ## Metrics
//!
//! | name | kind | unit | labels |
//! |---|---|---|---|
//! | `http.request.size`, `http.response.size` | histogram | bytes | `${http.request.method}`, `${http.request.path}` |
//! | `http.duration` | histogram | µs, exposed as seconds | as above |
//! | `http.active.requests` | gauge | | as above |
//! | `stream.active.received`, `stream.active.sent` | gauge | | |
//! | `stream.opens.*`, `stream.closes.*`, `stream.errors.*` (`received`, `sent`) | counter | | |
//! | `stream.data.received`, `stream.data.sent` | counter | bytes | |
//! | `sse.subscribers.active` | gauge | | |
//! | `sse.subscribers.opened` | counter | | |
//! | `sse.subscribers.ended` | counter | | `reason`: `client`, `slow_client`, `guard_expired`, `server` |
//! | `sse.events.sent` | counter | | |
//! | `sse.data.sent` | counter | bytes | |
//! | `sse.resumes` (a `Last-Event-ID` resumed) | counter | | |
//! | `sse.ids.rejected` (400 for an event id that cannot be read) | counter | | |
//! | `kafka.cache.size` | level | bytes | `topic` |
//! | `kafka.cache.records` | level | | `topic` |
//! | `kafka.cache.evictions`, `kafka.cache.gaps` | counter | | `topic` |
//! | `kafka.fetches` (fetch requests sent upstream) | counter | | `topic` |
//! | `kafka.consumer.lag` (records behind the high watermark) | level | | `topic` |
//! | `kafka.broker.connected` (1 up, 0 down) | level | | `broker` |
//!
//! Zilla's names (`http.*`, `stream.*`) keep Zilla's meaning; `sse.*` and `kafka.*` are
//! ours. Which binding records which is in docs/metrics.md. A gauge is each worker's share,
//! summed; a level ([`Kind::Level`](catalog::Kind::Level)) is set, not summed: one cell per
//! series that every worker shares, the last value set wins (for what one place knows
//! whole, as a topic's lag); both are exposed as Prometheus gauges. The exposed names follow Zilla's exporter: dots become `_`, then `_bytes` or
//! `_seconds` for the unit and `_total` for counters (`stream_opens_received_total`).
//! Histograms have power-of-two buckets, `le` = 1, 2, 4, … 2³² (in the unit) and `+Inf`.
//!
//! ## Recording without a lock
//!
//! Each worker owns its cells: a slab of 512-byte pages aligned to 128 bytes, handed out in
//! runs (one cell for a counter or a gauge, 35 for a histogram). When a binding starts on a
//! worker it asks its [`BindingMetrics`] for handles ([`Counter`], [`Gauge`], [`Histogram`],
//! or a [`Family`] of them for labels taken from requests); registering takes the registry's
//! lock, recording never does. A handle cannot leave its worker (it is not `Send`), so every
//! cell has one writer, which adds with a relaxed atomic load and store: plain moves, no
//! locked instruction, no fence, no allocation.
//!
//! A [`Level`] is the exception: its one cell is set with a plain store from whichever worker
//! knows the value, and lives in pages of their own, apart from every worker's.
//!
//! A binding keeps its handles per worker in a [`PerBinding`] (held in a per-worker value),
//! made the first time and found again by its [`BindingMetrics`] without a lock; a binding
//! that records nothing gets `None` and pays a branch where it would record.
//!
//! A scrape ([`Registry::snapshot`]) reads each worker's cells with relaxed loads and sums
//! them. Workers publish through these atomics rather than a seqlock: each cell is a value
//! on its own (a count, a bucket, a gauge's share), so reading one a record late is the
//! same as scraping a moment earlier, and a seqlock would add two stores and fences to
//! every record to make a histogram's cells agree, which they already do where it matters:
//! `_count` is computed from the buckets, so it always equals the `+Inf` bucket; only
//! `_sum` may lack a value recorded during the scrape.
//!
//! ## Readiness
//!
//! The registry carries the [`Readiness`] the exporter's health check reports: the engine
//! says when every binding has started ([`Readiness::set_started`]); a binding declares, as
//! it is built, a [`ReadyGate`] for a condition of its own ([`BindingMetrics::ready_gate`]:
//! a kafka client's first Metadata answer) and opens it at run time. Ready is both.
//!
//! ## Bounded memory
//!
//! The series are the configuration's: one per binding and metric it records, and, for
//! labels taken from requests, one per combination of values. Each source keeps at most
//! [`Source::cap`](catalog::Source::cap) distinct values per binding (16 for methods and
//! paths, 64 topics, 32 brokers, 8 reasons); later ones, values longer than
//! [`MAX_VALUE_LEN`] bytes and the value `other` itself are counted in one series labelled
//! [`OTHER_VALUE`]. A metric takes at most [`MAX_DIMENSIONS`] labels from requests, so a
//! binding has at most 17 × 17 series of one metric.
//!
//! ## Example
//!
//! ```
//! use zilla_metrics::catalog::{STREAM_ACTIVE_RECEIVED, STREAM_OPENS_RECEIVED};
//! use zilla_metrics::{Registry, Selection, Value};
//!
//! let registry = Registry::new("example", &[]).unwrap();
//! let selection = Selection {
//!     metrics: vec![&STREAM_OPENS_RECEIVED, &STREAM_ACTIVE_RECEIVED],
//!     attributes: Vec::new(),
//! };
//! let metrics = registry.binding("north_tcp_server", selection).unwrap();
//!
//! // On worker 0, as the binding starts there:
//! let opens = metrics.counter(0, &STREAM_OPENS_RECEIVED);
//! opens.increment();
//! opens.add(2);
//!
//! let snapshot = registry.snapshot();
//! let value = snapshot.value("stream.opens.received", "north_tcp_server", &[]);
//! assert_eq!(value, Some(&Value::Counter(3)));
//! let text = zilla_metrics::exposition::write(&snapshot);
//! assert!(text.contains(
//!     "stream_opens_received_total{namespace=\"example\",binding=\"north_tcp_server\"} 3\n"
//! ));
//! ```
//!
//! `examples/two_workers.rs` records on two threads and prints the exposition.

mod binding;
pub mod catalog;
mod cells;
pub mod exposition;
mod handle;
mod health;
mod registry;
mod selection;
mod snapshot;
mod values;
mod worker_local;

pub use binding::{BindingMetrics, Family};
pub use handle::{
    BUCKETS, Counter, FINITE_BUCKETS, Gauge, Histogram, Level, bucket_bound, bucket_index,
};
pub use health::{Readiness, ReadyGate};
pub use registry::{MAX_DIMENSIONS, Registry};
pub use selection::{Attribute, AttributeValue, Selection, SelectionError, label_name};
pub use snapshot::{HistogramValue, Sample, Snapshot, Value};
pub use values::{MAX_VALUE_LEN, OTHER_VALUE};
pub use worker_local::PerBinding;

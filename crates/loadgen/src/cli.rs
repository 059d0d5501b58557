//! Command-line options. The flags are a stable interface: `scripts/bench` drives them.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// What a run measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Connect N subscribers, no traffic, wait `--duration`: memory per connection.
    Idle,
    /// N subscribers, `--rate` msg/s of `--size` bytes for `--duration`: deliveries/s, latency.
    Fanout,
    /// Like fanout, but each subscriber has its own key out of `--keys` (the URL needs `{key}`).
    Filtered,
    /// Fanout in which, at `--reconnect-at`, every subscriber drops its connection and resumes
    /// with `Last-Event-ID`: time until all resumed, lost and duplicated.
    Reconnect,
    /// One subscriber reads `--replay-count` records already in the topic: records/s.
    Replay,
}

/// HTTP version of the subscribers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HttpVersion {
    /// HTTP/1.1, one connection per subscriber.
    #[value(name = "1")]
    H1,
    /// HTTP/2 (h2c with prior knowledge over http://, ALPN h2 over https://).
    #[value(name = "2")]
    H2,
}

/// zilla-loadgen: opens N SSE subscribers, produces paced traffic, and measures.
#[derive(Parser, Debug, Clone)]
#[command(name = "zilla-loadgen", version)]
pub struct Args {
    /// The scenario to run.
    #[arg(value_enum)]
    pub scenario: Scenario,

    /// Subscriber URL template; `{key}` becomes the subscriber's key (`k{i % keys}`), `{i}` its
    /// index. Substituted literally (the URL may hold URL-encoded JSON).
    #[arg(long)]
    pub url: String,
    /// Number of subscribers.
    #[arg(short = 'n', long = "subscribers", default_value_t = 100)]
    pub subscribers: usize,
    /// Number of keys; message j goes to key `k{j % keys}`, subscriber i subscribes to
    /// `k{i % keys}` (default: 1, or N for `filtered`).
    #[arg(long)]
    pub keys: Option<usize>,
    /// HTTP version of the subscribers.
    #[arg(long = "http", value_enum, default_value = "1")]
    pub http: HttpVersion,
    /// With `--http 2`: subscribers (streams) per connection.
    #[arg(long, default_value_t = 1)]
    pub streams_per_conn: usize,
    /// Spread client sockets over source addresses 127.0.0.1..127.0.0.N (loopback targets only).
    #[arg(long, default_value_t = 16)]
    pub sources: u8,
    /// Extra request header `Name: value` (repeatable).
    #[arg(long = "header")]
    pub headers: Vec<String>,
    /// PEM file of CA certificates trusted for https:// (default: none but --insecure).
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Accept any server certificate for https://.
    #[arg(long)]
    pub insecure: bool,
    /// At most this many connection attempts in flight.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,
    /// Seconds to wait for all subscribers to connect.
    #[arg(long, default_value_t = 60.0)]
    pub connect_timeout: f64,

    /// Where to produce: `kafka://HOST:PORT/TOPIC` or `http://HOST:PORT/publish-stream`.
    #[arg(long)]
    pub produce: Option<String>,
    /// Messages per second (all keys together).
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Bytes per message payload (JSON padded to this size).
    #[arg(long, default_value_t = 256)]
    pub size: usize,
    /// Seconds of traffic (idle: seconds connected before measuring memory).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds between all connected and the start of traffic.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// At most this many seconds to wait for in-flight events after traffic ends.
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,
    /// Kafka record header `name=value` (repeatable; `{key}` in value becomes the message key).
    #[arg(long = "kafka-header")]
    pub kafka_headers: Vec<String>,
    /// Kafka partition count for `murmur2(key) % P` (default: the topic's, from metadata).
    #[arg(long)]
    pub partitions: Option<u32>,

    /// reconnect: seconds after traffic starts at which every subscriber drops and resumes
    /// (default: half of --duration).
    #[arg(long)]
    pub reconnect_at: Option<f64>,
    /// replay: first produce this many records as fast as possible, in big batches.
    #[arg(long, default_value_t = 0)]
    pub prefill: u64,
    /// replay: records the subscriber must read (default: --prefill).
    #[arg(long)]
    pub replay_count: Option<u64>,

    /// Process to sample RSS and CPU of (from /proc/PID).
    #[arg(long)]
    pub pid: Option<u32>,
    /// Shell command printing the broker's fetch request count; run before and after.
    #[arg(long)]
    pub fetch_count_cmd: Option<String>,
    /// Target label for the report.
    #[arg(long, default_value = "target")]
    pub label: String,
    /// Also write the figures as flat JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Load generator worker threads (default: one per CPU).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl Args {
    /// The number of keys in effect.
    pub fn key_count(&self) -> usize {
        let default = if self.scenario == Scenario::Filtered {
            self.subscribers
        } else {
            1
        };
        self.keys.unwrap_or(default).max(1)
    }
}

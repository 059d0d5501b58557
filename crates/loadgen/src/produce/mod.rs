//! Producing the benchmark traffic: message j goes to key `k{j % keys}` with per-key sequence
//! `j / keys`, and carries its creation time; it is sent either to Kafka or to the baseline's
//! `/publish-stream`, paced in ~1 ms batches.

pub mod http;
pub mod kafka;

use std::time::{Duration, Instant};

use crate::payload;
use crate::subscriber::unix_nanos;

/// Producing failed.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// `--produce` is neither `kafka://HOST:PORT/TOPIC` nor `http://HOST:PORT/PATH`.
    #[error("--produce must be kafka://HOST:PORT/TOPIC or http://HOST:PORT/PATH, not {0}")]
    Url(String),
    /// A `--kafka-header` is not `name=value`.
    #[error("--kafka-header must be name=value, not {0}")]
    Header(String),
    /// The network failed.
    #[error("{0}: {1}")]
    Io(&'static str, std::io::Error),
    /// The target refused or answered something unexpected.
    #[error("{0}")]
    Protocol(String),
}

/// Where messages go.
pub enum Target {
    /// A Kafka topic.
    Kafka(kafka::Producer),
    /// The baseline's `/publish-stream`.
    Http(http::Producer),
}

impl Target {
    /// Connects to the target named by `url`.
    pub async fn connect(
        url: &str,
        kafka_headers: &[String],
        partitions: Option<u32>,
    ) -> Result<Self, ProduceError> {
        if let Some(rest) = url.strip_prefix("kafka://") {
            let (addr, topic) = rest
                .split_once('/')
                .filter(|(a, t)| !a.is_empty() && !t.is_empty())
                .ok_or_else(|| ProduceError::Url(url.to_string()))?;
            let headers = kafka_headers
                .iter()
                .map(|h| {
                    h.split_once('=')
                        .map(|(n, v)| (n.to_string(), v.to_string()))
                        .ok_or_else(|| ProduceError::Header(h.clone()))
                })
                .collect::<Result<_, _>>()?;
            Ok(Self::Kafka(
                kafka::Producer::connect(addr, topic, headers, partitions).await?,
            ))
        } else if url.starts_with("http://") {
            Ok(Self::Http(http::Producer::connect(url).await?))
        } else {
            Err(ProduceError::Url(url.to_string()))
        }
    }

    async fn send(&mut self, batch: &Batch) -> Result<(), ProduceError> {
        match self {
            Self::Kafka(p) => p.send(batch).await,
            Self::Http(p) => p.send(batch).await,
        }
    }

    /// Waits for every message sent to be acknowledged; returns the errors the target reported.
    pub async fn finish(self) -> Result<u64, ProduceError> {
        match self {
            Self::Kafka(p) => p.finish().await,
            Self::Http(p) => p.finish().await.map(|()| 0),
        }
    }
}

/// Messages of one send, kept in reusable buffers.
#[derive(Default)]
pub struct Batch {
    /// Key number of each message.
    pub keys: Vec<usize>,
    /// All payloads back to back.
    pub data: Vec<u8>,
    /// End offset of each payload in `data`.
    pub ends: Vec<usize>,
}

impl Batch {
    /// The messages as (key number, payload).
    pub fn iter(&self) -> impl Iterator<Item = (usize, &[u8])> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        self.keys
            .iter()
            .zip(starts.zip(self.ends.iter()))
            .map(|(&k, (s, &e))| (k, &self.data[s..e]))
    }

    fn fill(&mut self, from: u64, to: u64, keys: usize, size: usize) {
        self.keys.clear();
        self.data.clear();
        self.ends.clear();
        let keys = keys.max(1) as u64;
        let now = unix_nanos();
        for j in from..to {
            let key = (j % keys) as usize;
            payload::write(&mut self.data, now, j / keys, key, size);
            self.keys.push(key);
            self.ends.push(self.data.len());
        }
    }
}

/// What to produce.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Messages per second (0 = as fast as possible).
    pub rate: u64,
    /// Payload bytes.
    pub size: usize,
    /// Number of keys.
    pub keys: usize,
    /// Messages in all.
    pub total: u64,
}

impl Plan {
    /// How many messages key `key` gets.
    pub fn produced(&self, key: usize) -> u64 {
        let keys = self.keys.max(1) as u64;
        self.total / keys + u64::from((key as u64) < self.total % keys)
    }
}

/// The most messages in one send, bounding memory when the target is slower than the rate.
const MAX_BATCH: u64 = 10_000;
/// The most payload bytes in one send: a Kafka record batch must stay under the broker's
/// `message.max.bytes` (1 MiB by default) even when every message lands on one partition.
const MAX_BATCH_BYTES: u64 = 768 * 1024;

/// Sends the plan's messages, paced at its rate in ~1 ms batches (or as fast as possible in big
/// batches with rate 0). Returns the time it took.
pub async fn run(target: &mut Target, plan: Plan) -> Result<Duration, ProduceError> {
    let start = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_millis(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut batch = Batch::default();
    let mut sent = 0u64;
    // Payload, key and record overhead per message.
    let max_batch = (MAX_BATCH_BYTES / (plan.size as u64 + 64)).clamp(1, MAX_BATCH);
    while sent < plan.total {
        let due = if plan.rate == 0 {
            plan.total
        } else {
            ticks.tick().await;
            ((start.elapsed().as_secs_f64() * plan.rate as f64) as u64).min(plan.total)
        };
        let to = due.min(sent + max_batch);
        if to > sent {
            batch.fill(sent, to, plan.keys, plan.size);
            target.send(&batch).await?;
            sent = to;
        }
    }
    Ok(start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_messages_per_key() {
        let mut batch = Batch::default();
        batch.fill(5, 9, 3, 80);
        let got: Vec<(usize, u64)> = batch
            .iter()
            .map(|(k, p)| (k, payload::extract(p).unwrap().seq))
            .collect();
        assert_eq!(got, vec![(2, 1), (0, 2), (1, 2), (2, 2)]);
        let plan = Plan {
            rate: 0,
            size: 0,
            keys: 3,
            total: 10,
        };
        assert_eq!(
            (plan.produced(0), plan.produced(1), plan.produced(2)),
            (4, 3, 3)
        );
    }
}

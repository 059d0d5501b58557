//! A small Kafka producer on the `kafka-protocol` crate: Metadata (v12) to find the partition
//! leaders, then pipelined Produce (v9, acks=1) requests with one uncompressed RecordBatch per
//! partition. The partition of a record is Kafka's default for keyed records,
//! `murmur2(key) & 0x7fffffff % partitions`, with the topic's partition count unless
//! `--partitions` says otherwise.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, RequestHeader,
    ResponseHeader, TopicName, metadata_request::MetadataRequestTopic,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Semaphore;

use super::{Batch, ProduceError};

const METADATA_VERSION: i16 = 12;
const PRODUCE_VERSION: i16 = 9;
/// Produce requests in flight per broker.
const IN_FLIGHT: u32 = 32;
/// Largest response accepted.
const MAX_RESPONSE: usize = 64 << 20;

/// A producer to one topic.
pub struct Producer {
    topic: TopicName,
    partitions: u32,
    /// Index into `brokers` of each partition's leader.
    leaders: Vec<usize>,
    brokers: Vec<Broker>,
    headers: Vec<(String, String)>,
    errors: Arc<AtomicU64>,
    first_error: Arc<std::sync::Mutex<Option<String>>>,
}

struct Broker {
    writer: OwnedWriteHalf,
    in_flight: Arc<Semaphore>,
    correlation: i32,
    reader: tokio::task::JoinHandle<()>,
}

fn protocol<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> ProduceError + '_ {
    move |e| ProduceError::Protocol(format!("{what}: {e}"))
}

fn frame<R: Encodable + HeaderVersion>(
    key: ApiKey,
    version: i16,
    correlation: i32,
    request: &R,
) -> Result<BytesMut, ProduceError> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation)
        .with_client_id(Some(StrBytes::from_static_str("zilla-loadgen")));
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, R::header_version(version))
        .map_err(protocol("encoding a request header"))?;
    request
        .encode(&mut buf, version)
        .map_err(protocol("encoding a request"))?;
    let len = i32::try_from(buf.len() - 4).map_err(protocol("request size"))?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf)
}

async fn read_frame(reader: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<Bytes> {
    let len = reader.read_u32().await? as usize;
    if len > MAX_RESPONSE {
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    let mut buf = vec![0u8; len];
    reader.read_exact(&mut buf).await?;
    Ok(Bytes::from(buf))
}

async fn metadata(addr: &str, topic: &str) -> Result<MetadataResponse, ProduceError> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| ProduceError::Io("connecting to the Kafka bootstrap", e))?;
    let request = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
            TopicName(StrBytes::from_string(topic.to_string())),
        ))]))
        .with_allow_auto_topic_creation(true);
    let buf = frame(ApiKey::Metadata, METADATA_VERSION, 1, &request)?;
    stream
        .write_all(&buf)
        .await
        .map_err(|e| ProduceError::Io("sending Metadata", e))?;
    let mut answer = read_frame(&mut stream)
        .await
        .map_err(|e| ProduceError::Io("reading Metadata", e))?;
    ResponseHeader::decode(
        &mut answer,
        MetadataResponse::header_version(METADATA_VERSION),
    )
    .map_err(protocol("decoding the Metadata header"))?;
    MetadataResponse::decode(&mut answer, METADATA_VERSION).map_err(protocol("decoding Metadata"))
}

impl Producer {
    /// Looks up the topic (retrying while its leaders are being elected) and connects to the
    /// leaders.
    pub async fn connect(
        bootstrap: &str,
        topic: &str,
        headers: Vec<(String, String)>,
        partitions: Option<u32>,
    ) -> Result<Self, ProduceError> {
        let mut tries = 0;
        let (response, found) = loop {
            let response = metadata(bootstrap, topic).await?;
            let found = response
                .topics
                .iter()
                .find(|t| t.error_code == 0 && !t.partitions.is_empty())
                .filter(|t| {
                    t.partitions
                        .iter()
                        .all(|p| p.error_code == 0 && p.leader_id.0 >= 0)
                })
                .cloned();
            match found {
                Some(found) => break (response, found),
                None if tries < 40 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                None => {
                    return Err(ProduceError::Protocol(format!(
                        "topic {topic} has no leaders: {:?}",
                        response
                            .topics
                            .iter()
                            .map(|t| t.error_code)
                            .collect::<Vec<_>>()
                    )));
                }
            }
        };
        let mut partition_list = found.partitions.clone();
        partition_list.sort_by_key(|p| p.partition_index);
        let errors = Arc::new(AtomicU64::new(0));
        let first_error = Arc::new(std::sync::Mutex::new(None));
        let mut brokers = Vec::new();
        let mut by_node: HashMap<i32, usize> = HashMap::new();
        let mut leaders = Vec::new();
        for p in &partition_list {
            let node = p.leader_id.0;
            if let Some(&i) = by_node.get(&node) {
                leaders.push(i);
                continue;
            }
            let info = response
                .brokers
                .iter()
                .find(|b| b.node_id.0 == node)
                .ok_or_else(|| ProduceError::Protocol(format!("leader {node} not in metadata")))?;
            let addr = format!("{}:{}", info.host.as_str(), info.port);
            let stream = TcpStream::connect(&addr)
                .await
                .map_err(|e| ProduceError::Io("connecting to a partition leader", e))?;
            let _ = stream.set_nodelay(true);
            let (read, writer) = stream.into_split();
            let in_flight = Arc::new(Semaphore::new(IN_FLIGHT as usize));
            let reader = tokio::spawn(read_responses(
                read,
                Arc::clone(&in_flight),
                Arc::clone(&errors),
                Arc::clone(&first_error),
            ));
            by_node.insert(node, brokers.len());
            leaders.push(brokers.len());
            brokers.push(Broker {
                writer,
                in_flight,
                correlation: 0,
                reader,
            });
        }
        let count = u32::try_from(leaders.len()).unwrap_or(u32::MAX);
        Ok(Self {
            topic: found
                .name
                .clone()
                .unwrap_or_else(|| TopicName(StrBytes::from_string(topic.to_string()))),
            partitions: partitions
                .filter(|&p| p > 0 && p <= count)
                .unwrap_or(count)
                .max(1),
            leaders,
            brokers,
            headers,
            errors,
            first_error,
        })
    }

    /// Sends one batch: a RecordBatch per partition, a Produce request per leader.
    pub async fn send(&mut self, batch: &Batch) -> Result<(), ProduceError> {
        let timestamp = i64::try_from(crate::subscriber::unix_nanos() / 1_000_000).unwrap_or(0);
        let mut per_partition: HashMap<u32, Vec<Record>> = HashMap::new();
        for (key, payload) in batch.iter() {
            let key = Bytes::from(format!("k{key}"));
            let partition = murmur2(&key) & 0x7fff_ffff;
            let partition = partition % self.partitions;
            let records = per_partition.entry(partition).or_default();
            let mut record = Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: records.len() as i64,
                // The encoder keeps records in one batch only while offset - sequence stays the
                // same, and Kafka wants one batch per partition; this also gives the batch the
                // base sequence -1 (none) that a producer without a producer id sends.
                sequence: records.len() as i32 - 1,
                timestamp,
                key: Some(key.clone()),
                value: Some(Bytes::copy_from_slice(payload)),
                headers: Default::default(),
            };
            for (name, value) in &self.headers {
                let key_text = std::str::from_utf8(&key).unwrap_or("");
                record.headers.insert(
                    StrBytes::from_string(name.clone()),
                    Some(Bytes::from(value.replace("{key}", key_text))),
                );
            }
            records.push(record);
        }
        let mut per_broker: HashMap<usize, Vec<PartitionProduceData>> = HashMap::new();
        for (partition, records) in per_partition {
            let mut encoded = BytesMut::new();
            RecordBatchEncoder::encode(
                &mut encoded,
                &records,
                &RecordEncodeOptions {
                    version: 2,
                    compression: Compression::None,
                },
            )
            .map_err(protocol("encoding a record batch"))?;
            let leader = self.leaders.get(partition as usize).copied().unwrap_or(0);
            per_broker.entry(leader).or_default().push(
                PartitionProduceData::default()
                    .with_index(partition as i32)
                    .with_records(Some(encoded.freeze())),
            );
        }
        for (index, partitions) in per_broker {
            let request = ProduceRequest::default()
                .with_acks(1)
                .with_timeout_ms(30_000)
                .with_topic_data(vec![
                    TopicProduceData::default()
                        .with_name(self.topic.clone())
                        .with_partition_data(partitions),
                ]);
            let Some(broker) = self.brokers.get_mut(index) else {
                continue;
            };
            broker.correlation = broker.correlation.wrapping_add(1);
            let buf = frame(
                ApiKey::Produce,
                PRODUCE_VERSION,
                broker.correlation,
                &request,
            )?;
            broker
                .in_flight
                .acquire()
                .await
                .map_err(|_| {
                    ProduceError::Protocol(failure(&self.first_error, "broker connection closed"))
                })?
                .forget();
            broker
                .writer
                .write_all(&buf)
                .await
                .map_err(|e| ProduceError::Io("sending Produce", e))?;
        }
        Ok(())
    }

    fn failure(&self, default: &str) -> String {
        failure(&self.first_error, default)
    }

    /// Waits for every request's response; returns how many partitions reported an error.
    pub async fn finish(self) -> Result<u64, ProduceError> {
        for broker in &self.brokers {
            let all = tokio::time::timeout(
                Duration::from_secs(30),
                broker.in_flight.acquire_many(IN_FLIGHT),
            )
            .await;
            match all {
                Ok(Ok(_)) => {}
                _ => {
                    return Err(ProduceError::Protocol(
                        self.failure("Produce responses missing"),
                    ));
                }
            }
        }
        for broker in &self.brokers {
            broker.reader.abort();
        }
        let errors = self.errors.load(Relaxed);
        if errors > 0 {
            eprintln!(
                "zilla-loadgen: {errors} produce errors, the first: {}",
                failure(&self.first_error, "?")
            );
        }
        Ok(errors)
    }
}

fn failure(first_error: &std::sync::Mutex<Option<String>>, default: &str) -> String {
    first_error
        .lock()
        .ok()
        .and_then(|e| e.clone())
        .unwrap_or_else(|| default.to_string())
}

async fn read_responses(
    mut read: OwnedReadHalf,
    in_flight: Arc<Semaphore>,
    errors: Arc<AtomicU64>,
    first_error: Arc<std::sync::Mutex<Option<String>>>,
) {
    let note = |message: String| {
        errors.fetch_add(1, Relaxed);
        if let Ok(mut first) = first_error.lock() {
            first.get_or_insert(message);
        }
    };
    loop {
        let mut answer = match read_frame(&mut read).await {
            Ok(answer) => answer,
            Err(e) => {
                note(format!("broker connection: {e}"));
                in_flight.close();
                return;
            }
        };
        let decoded = ResponseHeader::decode(
            &mut answer,
            ProduceResponse::header_version(PRODUCE_VERSION),
        )
        .and_then(|_| ProduceResponse::decode(&mut answer, PRODUCE_VERSION));
        match decoded {
            Ok(response) => {
                for topic in &response.responses {
                    for p in &topic.partition_responses {
                        if p.error_code != 0 {
                            note(format!("partition {} error code {}", p.index, p.error_code));
                        }
                    }
                }
            }
            Err(e) => note(format!("decoding Produce response: {e}")),
        }
        in_flight.add_permits(1);
    }
}

/// Kafka's murmur2 hash (the default partitioner's), as an unsigned 32-bit value.
pub fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        if tail.len() >= 3 {
            h ^= u32::from(tail[2]) << 16;
        }
        if tail.len() >= 2 {
            h ^= u32::from(tail[1]) << 8;
        }
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use e2e_tests::kafka;

    use super::murmur2;
    use crate::payload::{extract, key_index};
    use crate::produce::{self, Plan, Target};

    #[test]
    fn produces_keyed_records_with_headers_that_a_consumer_reads_back() {
        let topic = kafka::unique_topic("loadgen-produce");
        kafka::create_topic(&topic, 3, &[]);
        let url = format!("kafka://{}/{topic}", kafka::bootstrap());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // 2 MB per key, so per partition: more than one request may carry (message.max.bytes).
        let plan = Plan {
            rate: 0,
            size: 4000,
            keys: 2,
            total: 1000,
        };
        let errors = runtime.block_on(async {
            let headers = ["centrifugo-channels=bench:{key}".to_string()];
            let mut target = Target::connect(&url, &headers, None).await.unwrap();
            produce::run(&mut target, plan).await.unwrap();
            target.finish().await.unwrap()
        });
        assert_eq!(errors, 0);

        let records = kafka::consume_records(&topic, 1000, Duration::from_secs(10));
        assert_eq!(records.len(), 1000);
        let mut seqs: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
        for record in records {
            let value = record.value.unwrap();
            let fields = extract(value.as_bytes()).unwrap();
            let key = record.key.unwrap();
            assert_eq!(fields.key, Some(key.as_bytes()));
            assert_eq!(
                record.headers,
                vec![("centrifugo-channels".to_string(), format!("bench:{key}"))]
            );
            seqs.entry(key_index(key.as_bytes()).unwrap())
                .or_default()
                .push(fields.seq);
        }
        assert_eq!(seqs.len(), 2);
        for per_key in seqs.values() {
            // One key is one partition, so its records come back in order.
            assert_eq!(per_key, &(0..500).collect::<Vec<u64>>());
        }
    }

    #[test]
    fn murmur2_matches_kafkas() {
        // Values from Kafka's own tests of its Utils.murmur2 (as signed ints).
        for (input, expected) in [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            ("abc", 479_470_107),
        ] {
            assert_eq!(murmur2(input.as_bytes()) as i32, expected, "{input}");
        }
    }
}

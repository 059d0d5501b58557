//! Metadata v1–v8: brokers, and the partitions and leaders of topics.

use bytes::{BufMut, Bytes, BytesMut};

use super::wire::{DecodeError, Decoder, Encode};
use super::{ApiKey, Request};

/// A Metadata request for `topics`.
pub fn request(version: i16, topics: &[&str]) -> Request {
    let mut b = BytesMut::new();
    b.put_array_len(topics.len());
    for t in topics {
        b.put_string(t);
    }
    if version >= 4 {
        b.put_i8(0); // allow_auto_topic_creation: false
    }
    if version >= 8 {
        b.put_i8(0);
        b.put_i8(0);
    }
    Request {
        api: ApiKey::Metadata,
        version,
        body: b.freeze(),
    }
}

/// A broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broker {
    /// Node id.
    pub node_id: i32,
    /// Host.
    pub host: String,
    /// Port.
    pub port: i32,
}

/// A partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionMeta {
    /// Error code.
    pub error_code: i16,
    /// Index.
    pub partition: i32,
    /// Leader node id (-1 when none).
    pub leader: i32,
    /// Leader epoch (-1 when unknown).
    pub leader_epoch: i32,
}

/// A topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicMeta {
    /// Error code.
    pub error_code: i16,
    /// Name.
    pub name: String,
    /// Partitions, as the broker listed them.
    pub partitions: Vec<PartitionMeta>,
}

/// A Metadata response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetadataResponse {
    /// Brokers.
    pub brokers: Vec<Broker>,
    /// Topics.
    pub topics: Vec<TopicMeta>,
}

fn skip_i32_array(d: &mut Decoder, field: &'static str) -> Result<(), DecodeError> {
    let n = d.array_len(field, 4)?;
    d.bytes_exact(n * 4, field)?;
    Ok(())
}

/// Decodes a Metadata response of `version` listing at most `max_partitions` partitions over
/// all its topics ([`DecodeError::OverLimit`] naming the topic that passes it).
pub fn decode(
    version: i16,
    body: Bytes,
    max_partitions: usize,
) -> Result<MetadataResponse, DecodeError> {
    let mut d = Decoder::new(body);
    if version >= 3 {
        d.i32("throttle_time_ms")?;
    }
    let n = d.array_len("brokers", 12)?;
    let mut brokers = Vec::with_capacity(n);
    for _ in 0..n {
        let node_id = d.i32("node_id")?;
        let host = d.string("host")?;
        let port = d.i32("port")?;
        if version >= 1 {
            d.nullable_string("rack")?;
        }
        brokers.push(Broker {
            node_id,
            host,
            port,
        });
    }
    if version >= 2 {
        d.nullable_string("cluster_id")?;
    }
    if version >= 1 {
        d.i32("controller_id")?;
    }
    let n = d.array_len("topics", 8)?;
    let mut topics = Vec::with_capacity(n);
    let mut listed: usize = 0;
    for _ in 0..n {
        let error_code = d.i16("topic error_code")?;
        let name = d.string("topic name")?;
        if version >= 1 {
            d.bool("is_internal")?;
        }
        let np = d.array_len("partitions", 18)?;
        listed = listed.saturating_add(np);
        if listed > max_partitions {
            return Err(DecodeError::OverLimit {
                field: "partitions",
                within: name,
                count: listed,
                limit: max_partitions,
            });
        }
        let mut partitions = Vec::with_capacity(np);
        for _ in 0..np {
            let error_code = d.i16("partition error_code")?;
            let partition = d.i32("partition_index")?;
            let leader = d.i32("leader_id")?;
            let leader_epoch = if version >= 7 {
                d.i32("leader_epoch")?
            } else {
                -1
            };
            skip_i32_array(&mut d, "replica_nodes")?;
            skip_i32_array(&mut d, "isr_nodes")?;
            if version >= 5 {
                skip_i32_array(&mut d, "offline_replicas")?;
            }
            partitions.push(PartitionMeta {
                error_code,
                partition,
                leader,
                leader_epoch,
            });
        }
        if version >= 8 {
            d.i32("topic_authorized_operations")?;
        }
        topics.push(TopicMeta {
            error_code,
            name,
            partitions,
        });
    }
    Ok(MetadataResponse { brokers, topics })
}

/// Encodes a response (for scripted brokers, tests and fuzz seeds).
pub fn encode_response(version: i16, response: &MetadataResponse) -> Bytes {
    let mut b = BytesMut::new();
    if version >= 3 {
        b.put_i32(0);
    }
    b.put_array_len(response.brokers.len());
    for br in &response.brokers {
        b.put_i32(br.node_id);
        b.put_string(&br.host);
        b.put_i32(br.port);
        if version >= 1 {
            b.put_nullable_string(None);
        }
    }
    if version >= 2 {
        b.put_nullable_string(Some("cluster"));
    }
    if version >= 1 {
        b.put_i32(0);
    }
    b.put_array_len(response.topics.len());
    for t in &response.topics {
        b.put_i16(t.error_code);
        b.put_string(&t.name);
        if version >= 1 {
            b.put_i8(0);
        }
        b.put_array_len(t.partitions.len());
        for p in &t.partitions {
            b.put_i16(p.error_code);
            b.put_i32(p.partition);
            b.put_i32(p.leader);
            if version >= 7 {
                b.put_i32(p.leader_epoch);
            }
            for _ in 0..if version >= 5 { 3 } else { 2 } {
                b.put_array_len(1);
                b.put_i32(p.leader);
            }
        }
        if version >= 8 {
            b.put_i32(0);
        }
    }
    if version >= 8 {
        b.put_i32(0);
    }
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(version in 1i16..=8, leaders in proptest::collection::vec(-1i32..5, 0..6)) {
            let response = MetadataResponse {
                brokers: vec![Broker { node_id: 1, host: "localhost".into(), port: 9092 }],
                topics: vec![TopicMeta {
                    error_code: 0,
                    name: "t".into(),
                    partitions: leaders.iter().enumerate().map(|(i, l)| PartitionMeta {
                        error_code: 0,
                        partition: i as i32,
                        leader: *l,
                        leader_epoch: if version >= 7 { 3 } else { -1 },
                    }).collect(),
                }],
            };
            let got = decode(version, encode_response(version, &response), 6).unwrap();
            prop_assert_eq!(got, response);
        }

        #[test]
        fn partitions_over_the_limit_are_refused(version in 1i16..=8, n in 1usize..40, limit in 0usize..40) {
            let topic = |name: &str| TopicMeta {
                error_code: 0,
                name: name.into(),
                partitions: (0..n as i32).map(|partition| PartitionMeta {
                    error_code: 0,
                    partition,
                    leader: 1,
                    leader_epoch: -1,
                }).collect(),
            };
            let response = MetadataResponse { brokers: vec![], topics: vec![topic("a"), topic("b")] };
            match decode(version, encode_response(version, &response), limit) {
                Ok(_) => prop_assert!(2 * n <= limit),
                Err(DecodeError::OverLimit { within, count, .. }) => {
                    prop_assert!(2 * n > limit);
                    prop_assert_eq!((within.as_str(), count), if n > limit { ("a", n) } else { ("b", 2 * n) });
                }
                Err(other) => prop_assert!(false, "{other}"),
            }
        }
    }
}

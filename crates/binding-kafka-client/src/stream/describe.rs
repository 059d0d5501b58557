//! Serving describe streams: a topic's configuration (DescribeConfigs), sent once and again
//! whenever a value asked for changes.

use std::rc::Rc;
use std::time::Duration;

use binding_api::ext::kafka::{KafkaBeginEx, KafkaConfigsEx, KafkaDataEx, KafkaReplyBeginEx};
use binding_api::ext::{BeginEx, DataEx};
use binding_api::frame::{Begin, Data, End, Frame, Reason, ReasonKind};
use binding_api::stream::{Acceptor, WriterEvent};

use super::{BACKOFF_MAX, BACKOFF_MIN, refuse};
use crate::ClientError;
use crate::cluster::Cluster;

/// How often a describe stream asks Kafka again.
pub const DESCRIBE_EVERY: Duration = Duration::from_secs(30);

/// How many failed attempts before the first answer refuse the stream.
const FIRST_ATTEMPTS: u32 = 3;

fn transient(err: &ClientError) -> bool {
    matches!(
        err,
        ClientError::Unreachable { .. }
            | ClientError::ConnectionLost { .. }
            | ClientError::UnknownBroker { .. }
    )
}

/// Serves one describe stream of `topic` for `keys` (every config when empty) until the
/// reader ends it or Kafka refuses the topic.
pub async fn serve(cluster: Rc<Cluster>, topic: String, keys: Vec<String>, mut stream: Acceptor) {
    let names: Vec<&str> = keys.iter().map(String::as_str).collect();
    let mut attempts = 0;
    let mut backoff = BACKOFF_MIN;
    let mut last = loop {
        match cluster.topic_configs(&topic, &names).await {
            Ok(configs) => break configs,
            Err(err) if transient(&err) && attempts + 1 < FIRST_ATTEMPTS => {
                attempts += 1;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            Err(err) => return refuse(stream, &err),
        }
    };
    let reply = KafkaReplyBeginEx {
        topic: topic.clone(),
        partitions: Vec::new(),
    };
    let begun = stream.output.begin(Begin {
        ext: BeginEx::Kafka(KafkaBeginEx::Reply(reply)),
    });
    if begun.is_err() || !send(&mut stream, &last).await {
        return;
    }
    let mut every = tokio::time::interval(DESCRIBE_EVERY);
    every.tick().await;
    loop {
        tokio::select! {
            _ = every.tick() => match cluster.topic_configs(&topic, &names).await {
                Ok(configs) if configs != last => {
                    last = configs;
                    if !send(&mut stream, &last).await {
                        return;
                    }
                }
                Ok(_) => {}
                Err(err) if transient(&err) => {
                    tracing::debug!(%topic, %err, "describe configs failed; asking again later");
                }
                Err(err) => {
                    let _ = stream.output.abort(Reason::new(ReasonKind::Refused, err.to_string()));
                    return;
                }
            },
            event = stream.output.event() => if let WriterEvent::Reset(_) = event { return },
            frame = stream.input.frame() => match frame {
                Some(Frame::End(_)) => {
                    let _ = stream.output.end(End::default());
                    return;
                }
                Some(Frame::Abort(_)) | None => return,
                Some(_) => {}
            },
        }
    }
}

async fn send(stream: &mut Acceptor, configs: &[(String, Option<String>)]) -> bool {
    let data = Data {
        payload: bytes::Bytes::new(),
        ext: DataEx::Kafka(KafkaDataEx::Configs(KafkaConfigsEx {
            configs: configs.to_vec(),
        })),
    };
    stream.output.ready(0).await.is_ok() && stream.output.data(data).is_ok()
}

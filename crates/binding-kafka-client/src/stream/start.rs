//! Where partitions start (ListOffsets for earliest, latest and timestamps, retried while
//! leadership settles) and what an out-of-range offset is reported as.

use std::collections::BTreeMap;

use binding_api::ext::kafka::StartPosition;
use binding_api::stream::Acceptor;

use super::{BACKOFF_MAX, BACKOFF_MIN, Part, Plan, START_ATTEMPTS, refuse};
use crate::ClientError;
use crate::cluster::{Cluster, partition_answer};
use crate::proto::error::{self as kerr, OFFSET_OUT_OF_RANGE};
use crate::proto::list_offsets::{self, EARLIEST, LATEST};

async fn resolve_start(
    cluster: &Cluster,
    plan: &Plan,
    partition: i32,
    leader: i32,
    start: StartPosition,
) -> Result<i64, ClientError> {
    let ts = match start {
        StartPosition::Offset(o) => return Ok(o),
        StartPosition::Earliest => EARLIEST,
        StartPosition::Latest => LATEST,
        StartPosition::Timestamp(t) => t,
    };
    let offset = list_offset(cluster, plan, partition, leader, ts).await?;
    if offset >= 0 {
        return Ok(offset);
    }
    // No record at or after the timestamp: start at the end.
    list_offset(cluster, plan, partition, leader, LATEST).await
}

/// [`resolve_start`], retried while leadership settles or a connection is re-established.
pub(super) async fn resolve_with_retries(
    cluster: &Cluster,
    plan: &Plan,
    partition: i32,
    mut leader: i32,
    start: StartPosition,
) -> Result<i64, ClientError> {
    let mut backoff = BACKOFF_MIN;
    let mut attempts = 0;
    loop {
        let err = match resolve_start(cluster, plan, partition, leader, start).await {
            Ok(next) => return Ok(next),
            Err(err) => err,
        };
        let retriable = match &err {
            ClientError::Kafka { code } => kerr::is_retriable(*code),
            ClientError::ConnectionLost { .. } | ClientError::UnknownBroker { .. } => true,
            _ => false,
        };
        attempts += 1;
        if !retriable || attempts >= START_ATTEMPTS {
            return Err(err);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
        if let Ok(meta) = cluster.topic(&plan.topic, true).await
            && let Some(p) = meta.partitions.iter().find(|p| p.partition == partition)
        {
            leader = p.leader;
        }
    }
}

async fn list_offset(
    cluster: &Cluster,
    plan: &Plan,
    partition: i32,
    leader: i32,
    ts: i64,
) -> Result<i64, ClientError> {
    let rc = plan.read_committed;
    let (versions, body) = cluster
        .send(leader, |v| {
            list_offsets::request(v.list_offsets, rc, &plan.topic, &[(partition, ts)])
        })
        .await?;
    let answers = list_offsets::decode(versions.list_offsets, body)?;
    let p = partition_answer(answers, partition, |p| (p.partition, p.error_code))?;
    Ok(p.offset)
}

pub(super) async fn out_of_range(
    cluster: &Cluster,
    plan: &Plan,
    stream: Acceptor,
    parts: &BTreeMap<i32, Part>,
    ids: &[i32],
) {
    for id in ids {
        let Some(part) = parts.get(id) else { continue };
        let earliest = list_offset(cluster, plan, *id, part.leader, EARLIEST).await;
        let latest = list_offset(cluster, plan, *id, part.leader, LATEST).await;
        if let (Ok(earliest), Ok(latest)) = (earliest, latest)
            && (part.next < earliest || part.next > latest)
        {
            let err = ClientError::OffsetOutOfRange {
                partition: *id,
                requested: part.next,
                earliest,
                latest,
            };
            return refuse(stream, &err);
        }
    }
    refuse(
        stream,
        &ClientError::Kafka {
            code: OFFSET_OUT_OF_RANGE,
        },
    );
}

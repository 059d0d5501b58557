//! Where partitions start (ListOffsets for earliest, latest and timestamps, retried while
//! leadership settles) and what an out-of-range offset is reported as.

use std::collections::BTreeMap;

use binding_api::ext::kafka::StartPosition;
use binding_api::stream::Acceptor;

use super::partitions::PartitionSet;
use super::{BACKOFF_MAX, BACKOFF_MIN, Plan, START_ATTEMPTS, refuse};
use crate::ClientError;
use crate::cluster::Cluster;
use crate::proto::error::{self as kerr, OFFSET_OUT_OF_RANGE};
use crate::proto::list_offsets::{self, EARLIEST, LATEST};

/// A partition whose start is to be resolved: its id, its leader, where it starts.
pub(super) type Wanted = (i32, i32, StartPosition);

/// Where each partition starts, as an offset: one ListOffsets per leader for all of its
/// partitions, every leader asked at once, partitions whose leadership is settling asked again
/// after a backoff (at most [`START_ATTEMPTS`] rounds). A timestamp no record reached starts at
/// the end.
pub(super) async fn resolve_starts(
    cluster: &Cluster,
    plan: &Plan,
    wanted: Vec<Wanted>,
) -> Result<BTreeMap<i32, i64>, ClientError> {
    let mut resolved = BTreeMap::new();
    let mut asking: Vec<(i32, i32, i64)> = Vec::new();
    for (partition, leader, start) in wanted {
        let ts = match start {
            StartPosition::Offset(o) => {
                resolved.insert(partition, o);
                continue;
            }
            StartPosition::Earliest => EARLIEST,
            StartPosition::Latest => LATEST,
            StartPosition::Timestamp(t) => t,
        };
        asking.push((partition, leader, ts));
    }
    let mut backoff = BACKOFF_MIN;
    let mut rounds = 0;
    while !asking.is_empty() {
        let mut retry = Vec::new();
        let mut last = None;
        for (partition, leader, ts, answer) in list_offsets(cluster, plan, &asking).await {
            match answer {
                Ok(offset) if offset >= 0 => {
                    resolved.insert(partition, offset);
                }
                // No record at or after the timestamp: the end, asked in the next round.
                Ok(_) if ts != LATEST => retry.push((partition, leader, LATEST)),
                // No latest offset either (never seen from Kafka): ask again.
                Ok(_) => {
                    retry.push((partition, leader, ts));
                    last = Some(ClientError::Kafka {
                        code: kerr::OFFSET_NOT_AVAILABLE,
                    });
                }
                Err(err) if retriable(&err) => {
                    retry.push((partition, leader, ts));
                    last = Some(err);
                }
                Err(err) => return Err(err),
            }
        }
        if let Some(err) = last {
            rounds += 1;
            if rounds >= START_ATTEMPTS {
                return Err(err);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
            if let Ok(meta) = cluster.topic(&plan.topic, true).await {
                for (partition, leader, _) in &mut retry {
                    if let Some(p) = meta.partitions.iter().find(|p| p.partition == *partition) {
                        *leader = p.leader;
                    }
                }
            }
        }
        asking = retry;
    }
    Ok(resolved)
}

/// Whether asking again may succeed: leadership moving, a connection being re-established.
fn retriable(err: &ClientError) -> bool {
    match err {
        ClientError::Kafka { code } => kerr::is_retriable(*code),
        ClientError::ConnectionLost { .. } | ClientError::UnknownBroker { .. } => true,
        _ => false,
    }
}

/// The offsets at `(partition, leader, timestamp)`: one request per leader, all at once; each
/// answer paired with what was asked.
async fn list_offsets(
    cluster: &Cluster,
    plan: &Plan,
    asking: &[(i32, i32, i64)],
) -> Vec<(i32, i32, i64, Result<i64, ClientError>)> {
    let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
    for &(partition, leader, ts) in asking {
        by_leader.entry(leader).or_default().push((partition, ts));
    }
    let rc = plan.read_committed;
    let requests = by_leader
        .into_iter()
        .map(|(leader, partitions)| async move {
            let answers = async {
                let (versions, body) = cluster
                    .send(leader, |v| {
                        list_offsets::request(v.list_offsets, rc, &plan.topic, &partitions)
                    })
                    .await?;
                Ok::<_, ClientError>(list_offsets::decode(versions.list_offsets, body)?)
            }
            .await;
            partitions
                .into_iter()
                .map(|(partition, ts)| {
                    let answer = match &answers {
                        Ok(answers) => answers.iter().find(|a| a.partition == partition).map_or(
                            Err(ClientError::Kafka {
                                code: kerr::UNKNOWN_TOPIC_OR_PARTITION,
                            }),
                            |a| match a.error_code {
                                0 => Ok(a.offset),
                                code => Err(ClientError::Kafka { code }),
                            },
                        ),
                        Err(err) => Err(err.clone()),
                    };
                    (partition, leader, ts, answer)
                })
                .collect::<Vec<_>>()
        });
    futures_util::future::join_all(requests)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Refuses `stream` with the first of `ids` whose next offset is outside what the partition
/// holds, with its earliest and latest offsets; else with OFFSET_OUT_OF_RANGE as Kafka said.
pub(super) async fn out_of_range(
    cluster: &Cluster,
    plan: &Plan,
    stream: Acceptor,
    parts: &PartitionSet,
    ids: &[i32],
) {
    let asked = |ts| -> Vec<(i32, i32, i64)> {
        ids.iter()
            .filter_map(|id| parts.leader(*id).map(|leader| (*id, leader, ts)))
            .collect()
    };
    let (earliest, latest) = futures_util::future::join(
        list_offsets(cluster, plan, &asked(EARLIEST)),
        list_offsets(cluster, plan, &asked(LATEST)),
    )
    .await;
    let found = |answers: &[(i32, i32, i64, Result<i64, ClientError>)], id: i32| {
        answers
            .iter()
            .find_map(|(p, _, _, answer)| (*p == id).then(|| answer.as_ref().ok().copied()))
            .flatten()
    };
    for id in ids {
        let Some(next) = parts.next(*id) else {
            continue;
        };
        if let (Some(earliest), Some(latest)) = (found(&earliest, *id), found(&latest, *id))
            && (next < earliest || next > latest)
        {
            let err = ClientError::OffsetOutOfRange {
                partition: *id,
                requested: next,
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

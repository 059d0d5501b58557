//! Serving fetch and merged streams: a partition set read from the leaders, records filtered
//! and sent with credit, progress kept so that a retry resumes where delivery stopped.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use binding_api::ext::kafka::{
    KafkaBeginEx, KafkaFlushEx, KafkaRecordEx, KafkaReplyBeginEx, KafkaResetEx, Progress,
    StartPosition, matches_any,
};
use binding_api::ext::{BeginEx, FlushEx, ResetEx};
use binding_api::frame::{Begin, End, Flush, Frame, Reason, ReasonKind, Reset};
use binding_api::stream::{Acceptor, WriterEvent};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::ClientError;
use crate::cluster::{Cluster, Lane};
use crate::proto::error::{self as kerr, OFFSET_OUT_OF_RANGE};
use crate::proto::fetch::{self as pfetch, FetchRequest, FetchResponse};
use crate::proto::metadata::TopicMeta;
use crate::record::{Record, RecordOptions, decode_records};

pub mod describe;
mod faults;
mod partitions;
mod stall;
mod start;

use faults::{report_broken, report_stalls};
use partitions::{Answers, PartitionSet};
use start::{Wanted, out_of_range, resolve_starts};

/// Largest fetch response asked for, whatever the credit.
pub const MAX_FETCH_BYTES: i32 = 4 * 1024 * 1024;
/// How long a broker may hold a fetch waiting for records.
const MAX_WAIT_MS: i32 = 500;
/// Largest inflated size of one batch.
const MAX_DECOMPRESSED: usize = 64 * 1024 * 1024;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How often a merged stream looks for partitions the topic gained.
const PARTITION_CHECK: Duration = Duration::from_secs(5);
/// How often a start position is tried before the stream is refused.
const START_ATTEMPTS: u32 = 6;

/// What a stream asks for, from either begin extension.
pub use kafka_serve::ReadPlan as Plan;

/// Work of a stream's own that runs beside its fetches (metadata refresh, partition check).
type Background<T> = Pin<Box<dyn Future<Output = T>>>;

/// The outcome of `work` when there is some; never otherwise.
async fn background<T>(work: &mut Option<Background<T>>) -> T {
    match work {
        Some(work) => work.await,
        None => std::future::pending().await,
    }
}

/// A fetch in flight: its leader, the partitions asked, how long it took, the response.
type Fetched = (i32, Vec<i32>, Duration, Result<FetchResponse, ClientError>);
type Pending = Pin<Box<dyn Future<Output = Fetched>>>;

fn refuse(stream: Acceptor, err: &ClientError) {
    let (kind, ext) = err.reset();
    stream.refuse(Reset {
        reason: Reason::new(kind, err.to_string()),
        ext,
    });
}

/// Serves one fetch or merged stream until it ends or fails.
pub async fn serve(cluster: Rc<Cluster>, plan: Plan, mut stream: Acceptor) {
    let meta = match cluster.topic(&plan.topic, false).await {
        Ok(meta) if meta.error_code == kerr::UNKNOWN_TOPIC_OR_PARTITION => {
            let err = ClientError::UnknownTopic {
                topic: plan.topic.clone(),
            };
            return refuse(stream, &err);
        }
        Ok(meta) => meta,
        Err(err) => return refuse(stream, &err),
    };
    let wanted: Vec<Wanted> = meta
        .partitions
        .iter()
        .filter(|p| plan.only.is_none_or(|only| only == p.partition))
        .map(|p| (p.partition, p.leader, plan.start_of(p.partition)))
        .collect();
    let starts = match resolve_starts(&cluster, &plan, wanted).await {
        Ok(starts) => starts,
        Err(err) => return refuse(stream, &err),
    };
    let mut parts = PartitionSet::new(
        &plan,
        meta.partitions.iter().filter_map(|p| {
            let next = *starts.get(&p.partition)?;
            Some((p.partition, p.leader, next))
        }),
    );
    if parts.is_empty() {
        let err = match plan.only {
            Some(_) => ClientError::Kafka {
                code: kerr::UNKNOWN_TOPIC_OR_PARTITION,
            },
            None => ClientError::UnknownTopic {
                topic: plan.topic.clone(),
            },
        };
        return refuse(stream, &err);
    }
    let reply = KafkaReplyBeginEx {
        topic: plan.topic.clone(),
        partitions: parts.ids(),
    };
    if stream
        .output
        .begin(Begin {
            ext: BeginEx::Kafka(KafkaBeginEx::Reply(reply)),
        })
        .is_err()
    {
        return;
    }
    let mut max_seen = 0;
    let fetches = cluster.fetches(&plan.topic);
    let mut pending: FuturesUnordered<Pending> = FuturesUnordered::new();
    let mut refresh: Option<Background<Option<TopicMeta>>> = None;
    let mut checking: Option<Background<Result<Vec<NewPartition>, ClientError>>> = None;
    let mut partition_check = tokio::time::interval(PARTITION_CHECK);
    partition_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    partition_check.tick().await;
    loop {
        // One fetch in flight per leader, sized by the credit downstream.
        let credit = stream
            .output
            .credit()
            .saturating_sub(u64::from(stream.output.padding()));
        max_seen = max_seen.max(credit);
        let now = Instant::now();
        for fetch in parts.plan_fetches(credit, pending.len(), now) {
            let (leader, asked) = (fetch.leader, fetch.asked());
            let request = FetchRequest {
                max_wait_ms: MAX_WAIT_MS,
                min_bytes: 1,
                max_bytes: fetch.max_bytes,
                read_committed: plan.read_committed,
                topic: plan.topic.clone(),
                partitions: fetch.partitions,
            };
            let cluster = cluster.clone();
            fetches.increment();
            pending.push(Box::pin(async move {
                let started = Instant::now();
                let result = async {
                    let (v, body) = cluster
                        .send_on(leader, Lane::Fetch, |v| pfetch::request(v.fetch, &request))
                        .await?;
                    Ok(pfetch::decode(v.fetch, body)?)
                }
                .await;
                (leader, asked, started.elapsed(), result)
            }));
        }
        let has_pending = !pending.is_empty();
        let resume = parts.resume_at(now);
        // A partition whose leader is unknown (the broker is down or electing) is asked about
        // again after a backoff, beside the fetches of the others: a broker that is down
        // delays only its own partitions.
        if let Some(delay) = parts.refresh_due() {
            let (cluster, topic) = (cluster.clone(), plan.topic.clone());
            refresh = Some(Box::pin(async move {
                tokio::time::sleep(delay).await;
                cluster.topic(&topic, true).await.ok()
            }));
        }
        tokio::select! {
            meta = background(&mut refresh), if refresh.is_some() => {
                refresh = None;
                let found = meta.iter().flat_map(|m| &m.partitions);
                parts.refreshed(found.map(|p| (p.partition, p.leader)));
            }
            () = tokio::time::sleep_until(resume.unwrap_or(now).into()), if resume.is_some() => {}
            done = pending.next(), if has_pending => {
                let Some((leader, asked, elapsed, result)) = done else { continue };
                parts.returned(&asked);
                let mut answers = Answers::default();
                let outcome = match result {
                    Ok(response) => {
                        let mut fetched = Fetch { parts: &mut parts, asked: &asked, answers: &mut answers };
                        deliver(&plan, &mut stream, &mut fetched, &mut max_seen, response).await
                    }
                    Err(err) => Err(err),
                };
                let stalls = parts.settle(answers, elapsed, Instant::now());
                report_stalls(&cluster, &plan, leader, &stalls);
                if let Err(err) = &outcome {
                    report_broken(&cluster, &plan, leader, err);
                }
                match outcome {
                    Ok(Step::Continue) => {}
                    Ok(Step::Stop) => return,
                    Err(ClientError::ConnectionLost { .. } | ClientError::Unreachable { .. } | ClientError::Protocol { .. } | ClientError::Decode(_)) => {
                        // Where the leader is now is asked before these partitions are fetched again.
                        parts.leader_lost(&asked);
                    }
                    Err(ClientError::Kafka { code: OFFSET_OUT_OF_RANGE }) => {
                        return out_of_range(&cluster, &plan, stream, &parts, &asked).await;
                    }
                    Err(err) => return refuse(stream, &err),
                }
            }
            event = stream.output.event() => {
                if let WriterEvent::Reset(_) = event {
                    return;
                }
            }
            _ = partition_check.tick(), if plan.merged && checking.is_none() => {
                checking = Some(Box::pin(new_partitions(cluster.clone(), plan.clone(), parts.ids())));
            }
            found = background(&mut checking), if checking.is_some() => {
                checking = None;
                match found {
                    Ok(found) => {
                        for NewPartition { partition, leader, next } in found {
                            parts.gained(partition, leader, next);
                        }
                    }
                    Err(err) => tracing::debug!(topic = %plan.topic, %err, "partition check failed"),
                }
            }
            frame = stream.input.frame() => match frame {
                Some(Frame::End(_)) => {
                    let _ = stream.output.end(End::default());
                    return;
                }
                Some(Frame::Abort(_)) | None => return,
                Some(_) => {}
            }
        }
    }
}

/// A partition found by a partition check, and where to read it from.
struct NewPartition {
    partition: i32,
    leader: i32,
    next: i64,
}

/// The partitions the topic gained beyond `known`, each with its leader and its earliest
/// offset (whatever the default start: records written before the check must not be lost).
async fn new_partitions(
    cluster: Rc<Cluster>,
    plan: Plan,
    known: Vec<i32>,
) -> Result<Vec<NewPartition>, ClientError> {
    let meta = cluster.topic(&plan.topic, true).await?;
    let wanted: Vec<Wanted> = meta
        .partitions
        .iter()
        .filter(|p| !known.contains(&p.partition))
        .map(|p| (p.partition, p.leader, StartPosition::Earliest))
        .collect();
    let starts = resolve_starts(&cluster, &plan, wanted).await?;
    Ok(meta
        .partitions
        .iter()
        .filter_map(|p| {
            Some(NewPartition {
                partition: p.partition,
                leader: p.leader,
                next: *starts.get(&p.partition)?,
            })
        })
        .collect())
}

/// Whether a stream goes on after a response is delivered.
enum Step {
    Continue,
    Stop,
}

/// The partitions of a stream as one of its fetches returns: those asked, and how each went.
struct Fetch<'a> {
    parts: &'a mut PartitionSet,
    asked: &'a [i32],
    answers: &'a mut Answers,
}

/// Sends the records of `response` that pass the filters, as far as the partition set says
/// they are to be read, then the caught-up flush when it is due.
async fn deliver(
    plan: &Plan,
    stream: &mut Acceptor,
    fetch: &mut Fetch<'_>,
    max_seen: &mut u64,
    response: FetchResponse,
) -> Result<Step, ClientError> {
    if response.error_code != 0 {
        return Err(ClientError::Kafka {
            code: response.error_code,
        });
    }
    let parts = &mut *fetch.parts;
    let answers = &mut *fetch.answers;
    *answers = parts.answers(fetch.asked);
    for data in response.partitions {
        let Some(window) = parts.answer(answers, &data)? else {
            continue;
        };
        let opts = RecordOptions {
            fetch_offset: window.from,
            read_committed: plan.read_committed,
            last_stable_offset: data.last_stable_offset,
            aborted: data.aborted,
            max_decompressed: MAX_DECOMPRESSED,
        };
        let records = decode_records(data.records, &opts)?;
        for record in records.records {
            if record.offset >= window.limit {
                break;
            }
            parts.record_read(answers, &window, record.offset.saturating_add(1));
            if matches_any(&plan.filters, record.key.as_deref(), &record.headers)
                && !send_record(
                    stream,
                    max_seen,
                    parts.record_progress(),
                    data.partition,
                    data.high_watermark,
                    record,
                )
                .await
            {
                return Ok(Step::Stop);
            }
        }
        parts.partition_read(answers, &window, records.next_offset);
    }
    if let Some(progress) = parts.caught_up_flush() {
        if stream.output.ready(0).await.is_err() {
            return Ok(Step::Stop);
        }
        let flush = Flush {
            ext: FlushEx::Kafka(KafkaFlushEx { progress }),
        };
        if stream.output.flush(flush).is_err() {
            return Ok(Step::Stop);
        }
    }
    Ok(Step::Continue)
}

/// Sends one record, split over several frames when it does not fit the credit.
async fn send_record(
    stream: &mut Acceptor,
    max_seen: &mut u64,
    progress: Option<Arc<Progress>>,
    partition: i32,
    high_watermark: i64,
    record: Record,
) -> bool {
    let writer = &mut stream.output;
    let value = record.value.clone().unwrap_or_default();
    let ex = KafkaRecordEx {
        partition,
        offset: record.offset,
        timestamp: record.timestamp,
        key: record.key,
        headers: record.headers.into(),
        value_len: record
            .value
            .as_ref()
            .map(|v| u32::try_from(v.len()).unwrap_or(u32::MAX)),
        high_watermark,
        progress,
    };
    kafka_serve::send_record(writer, max_seen, ex, value).await
}

impl ClientError {
    /// The reset kind and extension for this error.
    pub fn reset(&self) -> (ReasonKind, ResetEx) {
        match self {
            ClientError::UnknownTopic { topic } => (
                ReasonKind::Refused,
                ResetEx::Kafka(KafkaResetEx::UnknownTopic {
                    topic: topic.clone(),
                }),
            ),
            ClientError::OffsetOutOfRange {
                partition,
                requested,
                earliest,
                latest,
            } => (
                ReasonKind::Refused,
                ResetEx::Kafka(KafkaResetEx::OffsetOutOfRange {
                    partition: *partition,
                    requested: *requested,
                    earliest: *earliest,
                    latest: *latest,
                }),
            ),
            ClientError::Kafka { code } | ClientError::Broker { code, .. } => (
                ReasonKind::Refused,
                ResetEx::Kafka(KafkaResetEx::Error { code: *code }),
            ),
            ClientError::Unreachable { .. } | ClientError::UnknownBroker { .. } => {
                (ReasonKind::Unreachable, ResetEx::None)
            }
            ClientError::ConnectionLost { .. } => (ReasonKind::ConnectionLost, ResetEx::None),
            ClientError::Sasl { .. } | ClientError::TooManyPartitions { .. } => {
                (ReasonKind::Refused, ResetEx::None)
            }
            ClientError::Decode(_)
            | ClientError::Records(_)
            | ClientError::Unsupported { .. }
            | ClientError::Protocol { .. } => (ReasonKind::ProtocolViolation, ResetEx::None),
        }
    }
}

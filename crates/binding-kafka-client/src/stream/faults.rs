//! What a stream does about a broker that answers fetches wrongly: partitions without
//! progress wait (see [`super::stall`]), answers that cannot be read are warned about, each
//! cause once per broker per interval.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::stall::{self, Answer, Seen};
use super::{Part, Plan};
use crate::ClientError;
use crate::cluster::Cluster;
use crate::record::RecordError;

/// Partitions of a fetch that came back without progress wait (see [`stall`]); each cause is
/// warned about once per broker per interval.
pub(super) fn pause_stalled(
    cluster: &Cluster,
    plan: &Plan,
    leader: i32,
    parts: &mut BTreeMap<i32, Part>,
    seen: &[Seen],
    elapsed: Duration,
) {
    let now = Instant::now();
    for s in seen.iter().filter(|s| s.after > s.before) {
        if let Some(part) = parts.get_mut(&s.partition) {
            part.pause.progressed();
        }
    }
    for (partition, cause) in stall::judge(seen, elapsed) {
        let Some(part) = parts.get_mut(&partition) else {
            continue;
        };
        let delay = part.pause.stalled(now);
        let broker = cluster.endpoint(leader);
        if cluster.report_due(cause.name(), &broker) {
            let end = seen
                .iter()
                .find(|s| s.partition == partition)
                .and_then(|s| match s.answer {
                    Answer::Records { end, .. } => Some(end),
                    Answer::Missing | Answer::Failed => None,
                });
            tracing::warn!(
                %broker,
                topic = %plan.topic,
                partition,
                offset = part.next,
                end,
                cause = cause.name(),
                ?delay,
                "kafka fetch made no progress: the partition waits before it is fetched again (reported once a minute)"
            );
        }
    }
}

/// Warns, once per cause per broker per interval, of a broker's answer that could not be read.
pub(super) fn report_broken(cluster: &Cluster, plan: &Plan, leader: i32, err: &ClientError) {
    let cause = match err {
        ClientError::Records(RecordError::Crc { .. }) => "bad CRC",
        ClientError::Records(
            RecordError::Decompress { .. }
            | RecordError::TooLarge { .. }
            | RecordError::UnknownCompression(_),
        ) => "decompression refused",
        ClientError::Records(RecordError::Magic { .. }) => "unsupported record format",
        ClientError::Records(RecordError::Decode(_)) => "malformed record batch",
        ClientError::Decode(_) => "unparseable fetch response",
        _ => return,
    };
    let broker = cluster.endpoint(leader);
    if cluster.report_due(cause, &broker) {
        tracing::warn!(
            %broker,
            topic = %plan.topic,
            cause,
            error = %err,
            "kafka broker sent a fetch response that cannot be read (reported once a minute)"
        );
    }
}

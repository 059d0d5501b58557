//! What a stream warns of a broker that answers fetches wrongly: partitions that wait after
//! fetches without progress (see [`super::stall`]) and answers that cannot be read, each cause
//! once per broker per interval.

use super::Plan;
use super::partitions::Stall;
use crate::ClientError;
use crate::cluster::Cluster;
use crate::record::RecordError;

/// Warns of the partitions of a fetch from `leader` that wait because it brought them nothing
/// new (see [`super::stall`]), each cause once per broker per interval.
pub(super) fn report_stalls(cluster: &Cluster, plan: &Plan, leader: i32, stalls: &[Stall]) {
    for stall in stalls {
        let broker = cluster.endpoint(leader);
        if cluster.report_due(stall.cause.name(), &broker) {
            tracing::warn!(
                %broker,
                topic = %plan.topic,
                partition = stall.partition,
                offset = stall.offset,
                end = stall.end,
                cause = stall.cause.name(),
                delay = ?stall.delay,
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

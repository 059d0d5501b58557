//! # kafka-serve
//!
//! What the two bindings that serve Kafka fetch and merged streams (the kafka client, from
//! brokers, and the kafka cache, from its logs) share beyond the stream contract of
//! [`binding_api::ext::kafka`]: the [`ReadPlan`] a begin asks for, whichever of the two kinds
//! it is, and [`send_record`], which sends a record on the reply as that contract says. The
//! two bindings do not depend on each other; both depend on this.

use binding_api::ext::kafka::{
    Filter, Isolation, KafkaBeginEx, KafkaDataEx, KafkaRecordEx, StartPosition,
};
use binding_api::ext::{BeginEx, DataEx};
use binding_api::frame::{Begin, Data};
use std::task::{Context, Poll};

use binding_api::stream::Writer;
use bytes::Bytes;

/// What a fetch or merged stream asks to read, whichever of the two opened it: the view a
/// server of these streams (a Kafka client, a cache) works from.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadPlan {
    /// The topic.
    pub topic: String,
    /// Whether it is a merged stream (every partition) rather than a fetch stream.
    pub merged: bool,
    /// The one partition of a fetch stream.
    pub only: Option<i32>,
    /// Start positions of the partitions named in the begin.
    pub starts: Vec<(i32, StartPosition)>,
    /// The start of every other partition.
    pub default_start: StartPosition,
    /// The filters (OR of ANDs).
    pub filters: Vec<Filter>,
    /// Whether only committed records are read.
    pub read_committed: bool,
}

impl ReadPlan {
    /// The plan of a merged or fetch begin; `None` for a reply or describe begin.
    pub fn of(begin: &KafkaBeginEx) -> Option<ReadPlan> {
        Some(match begin {
            KafkaBeginEx::Merged(m) => ReadPlan {
                topic: m.topic.clone(),
                merged: true,
                only: None,
                starts: m.partitions.clone(),
                default_start: m.default_start,
                filters: m.filters.clone(),
                read_committed: m.isolation == Isolation::ReadCommitted,
            },
            KafkaBeginEx::Fetch(f) => ReadPlan {
                topic: f.topic.clone(),
                merged: false,
                only: Some(f.partition),
                starts: vec![(f.partition, f.start)],
                default_start: f.start,
                filters: f.filters.clone(),
                read_committed: f.isolation == Isolation::ReadCommitted,
            },
            KafkaBeginEx::Reply(_) | KafkaBeginEx::Describe(_) => return None,
        })
    }

    /// The plan of a stream's begin, when it is a Kafka merged or fetch begin.
    pub fn of_begin(begin: &Begin) -> Option<ReadPlan> {
        match &begin.ext {
            BeginEx::Kafka(ext) => ReadPlan::of(ext),
            _ => None,
        }
    }

    /// Where `partition` starts.
    pub fn start_of(&self, partition: i32) -> StartPosition {
        self.starts
            .iter()
            .find(|(p, _)| *p == partition)
            .map_or(self.default_start, |(_, s)| *s)
    }
}

/// Sends one record on a fetch or merged reply as [`binding_api::ext::kafka`] says: whole when
/// its value fits the largest room (credit less padding) the receiver has given at once,
/// tracked in `max_seen`; else split, the first frame carrying `record` and the rest
/// [`KafkaDataEx::Continuation`]. Returns `false` when the reader reset the stream.
pub async fn send_record(
    writer: &mut Writer,
    max_seen: &mut u64,
    record: KafkaRecordEx,
    value: Bytes,
) -> bool {
    let mut outgoing = OutgoingRecord::new(record, value);
    std::future::poll_fn(|cx| outgoing.poll_send(writer, max_seen, cx)).await
}

/// A record being sent, for a sender that is a state machine: [`OutgoingRecord::poll_send`]
/// sends what the credit allows and keeps the rest.
#[derive(Debug)]
pub struct OutgoingRecord {
    /// The first frame's extension, until it is sent.
    record: Option<DataEx>,
    /// The value bytes not sent yet.
    value: Bytes,
}

impl OutgoingRecord {
    /// `record` with `value`, nothing sent yet.
    pub fn new(record: KafkaRecordEx, value: Bytes) -> Self {
        OutgoingRecord {
            record: Some(DataEx::Kafka(KafkaDataEx::Record(record))),
            value,
        }
    }

    /// Sends as the credit allows: `Ready(true)` once the whole record is sent,
    /// `Ready(false)` when the reader reset the stream, `Pending` while credit is short.
    pub fn poll_send(
        &mut self,
        writer: &mut Writer,
        max_seen: &mut u64,
        cx: &mut Context<'_>,
    ) -> Poll<bool> {
        loop {
            let (credit, padding) = (writer.credit(), u64::from(writer.padding()));
            *max_seen = (*max_seen).max(credit.saturating_sub(padding));
            // Whole when it fits what the receiver has ever given at once; else a byte at a
            // time is enough to go on.
            let want = if self.value.len() as u64 <= (*max_seen).max(1) {
                self.value.len()
            } else {
                1
            };
            match writer.poll_ready(cx, want) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => return Poll::Ready(false),
                Poll::Ready(Ok(())) => {}
            }
            let room = writer.credit().saturating_sub(u64::from(writer.padding()));
            *max_seen = (*max_seen).max(room);
            let n = usize::try_from(room)
                .unwrap_or(usize::MAX)
                .min(self.value.len());
            let payload = self.value.split_to(n);
            let ext = self
                .record
                .take()
                .unwrap_or(DataEx::Kafka(KafkaDataEx::Continuation));
            if writer.data(Data { payload, ext }).is_err() {
                return Poll::Ready(false);
            }
            if self.value.is_empty() {
                return Poll::Ready(true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use binding_api::ext::kafka::{KafkaFetchBeginEx, KafkaMergedBeginEx};
    use binding_api::frame::{Frame, Window};
    use binding_api::stream;

    use super::*;

    #[test]
    fn a_plan_reads_either_begin() {
        let merged = KafkaBeginEx::Merged(KafkaMergedBeginEx {
            topic: "t".into(),
            partitions: vec![(1, StartPosition::Offset(7))],
            default_start: StartPosition::Latest,
            ..Default::default()
        });
        let plan = ReadPlan::of(&merged).unwrap();
        assert!(plan.merged && plan.only.is_none());
        assert_eq!(plan.start_of(1), StartPosition::Offset(7));
        assert_eq!(plan.start_of(0), StartPosition::Latest);
        let fetch = KafkaBeginEx::Fetch(KafkaFetchBeginEx {
            topic: "t".into(),
            partition: 2,
            start: StartPosition::Earliest,
            ..Default::default()
        });
        let plan = ReadPlan::of(&fetch).unwrap();
        assert!(!plan.merged);
        assert_eq!(plan.only, Some(2));
        assert_eq!(plan.start_of(2), StartPosition::Earliest);
    }

    /// The frames of a record sent with `credit` granted at first, then as each is read.
    async fn frames(credit: u32, value: &'static [u8]) -> Vec<Frame> {
        let (mut initiator, mut acceptor) = stream::open(Begin {
            ext: BeginEx::Kafka(KafkaBeginEx::Merged(KafkaMergedBeginEx::default())),
        });
        acceptor.output.begin(Begin { ext: BeginEx::None }).unwrap();
        let reader = &mut initiator.input;
        reader.window(Window { credit, padding: 0 }).unwrap();
        let record = KafkaRecordEx {
            value_len: Some(value.len() as u32),
            ..Default::default()
        };
        let mut max_seen = 0;
        let send = send_record(
            &mut acceptor.output,
            &mut max_seen,
            record,
            Bytes::from(value),
        );
        let read = async {
            let mut frames = Vec::new();
            let mut got = 0;
            while got < value.len() {
                match reader.frame().await {
                    Some(Frame::Data(data)) => {
                        got += data.payload.len();
                        frames.push(Frame::Data(data));
                        reader.replenish();
                    }
                    Some(_) => {}
                    None => break,
                }
            }
            frames
        };
        let (sent, frames) = tokio::join!(send, read);
        assert!(sent);
        frames
    }

    fn ext(frame: &Frame) -> &DataEx {
        match frame {
            Frame::Data(data) => &data.ext,
            other => panic!("not data: {other:?}"),
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_record_within_the_credit_goes_whole_else_split() {
        let whole = frames(16, b"0123456789").await;
        assert_eq!(whole.len(), 1);
        assert!(matches!(
            ext(&whole[0]),
            DataEx::Kafka(KafkaDataEx::Record(_))
        ));
        let split = frames(4, b"0123456789").await;
        assert_eq!(split.len(), 3);
        assert!(matches!(
            ext(&split[0]),
            DataEx::Kafka(KafkaDataEx::Record(_))
        ));
        for frame in &split[1..] {
            assert!(matches!(
                ext(frame),
                DataEx::Kafka(KafkaDataEx::Continuation)
            ));
        }
    }
}

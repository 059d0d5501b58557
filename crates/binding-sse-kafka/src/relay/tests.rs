use binding_api::ext::kafka::{KafkaFlushEx, KafkaGapEx};
use binding_api::frame::{Abort, Begin, End, ReasonKind};
use proptest::prelude::*;

use super::*;
use crate::config::IdFormat;

fn relay(format: IdFormat) -> Relay {
    Relay::new(Ids::new(format, Default::default()))
}

fn progress(next: i64) -> Arc<Progress> {
    Arc::new(Progress {
        partitions: vec![(0, next)],
    })
}

/// A record's first frame: `value` of a value `len` bytes long (`None`: a tombstone).
fn record(offset: i64, key: &str, value: &[u8], len: Option<u32>) -> Frame {
    Frame::Data(Data {
        payload: Bytes::copy_from_slice(value),
        ext: DataEx::Kafka(KafkaDataEx::Record(KafkaRecordEx {
            partition: 0,
            offset,
            timestamp: 1_000 + offset,
            key: Some(Bytes::copy_from_slice(key.as_bytes())),
            headers: Default::default(),
            value_len: len,
            high_watermark: offset + 1,
            progress: Some(progress(offset + 1)),
        })),
    })
}

fn sse_ex(reaction: &Reaction) -> &SseDataEx {
    match &reaction.send {
        Some(Out::Event(Data {
            ext: DataEx::Sse(ex),
            ..
        })) => ex,
        other => panic!("an event expected, got {other:?}"),
    }
}

fn no_refusal() -> Option<Reset> {
    None
}

#[test]
fn a_record_becomes_an_event_and_the_first_begins_the_reply() {
    let mut relay = relay(IdFormat::Etag);
    let first = relay.on_kafka(record(0, "k", b"{}", Some(2)), no_refusal);
    assert!(first.begin && first.replenish && first.done.is_none());
    let ex = sse_ex(&first);
    assert_eq!(
        ex.id.as_deref(),
        Some("AQIAAg=="),
        "Zilla's id for offset 0 of one partition"
    );
    assert_eq!(ex.timestamp, Some(1_000));
    assert!(!ex.continues);
    let second = relay.on_kafka(record(1, "k", b"{}", Some(2)), no_refusal);
    assert!(!second.begin);
    assert_eq!(
        relay.delivered().map(|p| p.partitions.clone()),
        Some(vec![(0, 2)])
    );
}

#[test]
fn a_tombstone_is_a_delete_event_carrying_the_key() {
    let mut relay = relay(IdFormat::Etag);
    let reaction = relay.on_kafka(record(0, "AAPL", b"", None), no_refusal);
    let Some(Out::Event(data)) = &reaction.send else {
        panic!("an event expected");
    };
    assert_eq!(&data.payload[..], b"QUFQTA==");
    assert_eq!(sse_ex(&reaction).event_type.as_deref(), Some(DELETE_EVENT));
}

#[test]
fn caught_up_flushes_checkpoint_once_and_only_in_the_etag_format() {
    let caught_up = |next| {
        Frame::Flush(Flush {
            ext: FlushEx::Kafka(KafkaFlushEx {
                progress: progress(next),
            }),
        })
    };
    let flush_id = |reaction: Reaction| match reaction.send {
        Some(Out::Flush(Flush {
            ext: FlushEx::Sse(ex),
        })) => ex.id,
        other => panic!("a flush expected, got {other:?}"),
    };
    let mut etag = relay(IdFormat::Etag);
    let first = etag.on_kafka(caught_up(5), no_refusal);
    assert!(!first.begin && first.replenish);
    assert_eq!(flush_id(first).as_deref(), Some("AQIACg=="));
    assert_eq!(flush_id(etag.on_kafka(caught_up(5), no_refusal)), None);
    assert_eq!(
        etag.delivered().map(|p| p.partitions.clone()),
        Some(vec![(0, 5)])
    );
    // After a record with that very id, the checkpoint would repeat it: left out.
    etag.new_stream();
    etag.on_kafka(record(5, "k", b"x", Some(1)), no_refusal);
    assert_eq!(flush_id(etag.on_kafka(caught_up(6), no_refusal)), None);

    let mut keyed = relay(IdFormat::KeyAndEtag);
    assert_eq!(flush_id(keyed.on_kafka(caught_up(5), no_refusal)), None);
}

#[test]
fn a_gap_is_an_event_and_begins_the_reply() {
    let mut relay = relay(IdFormat::Etag);
    let reaction = relay.on_kafka(
        Frame::Flush(Flush {
            ext: FlushEx::KafkaGap(KafkaGapEx {
                partition: 0,
                from: 3,
                to: 10,
            }),
        }),
        no_refusal,
    );
    assert!(reaction.begin && reaction.replenish);
    assert_eq!(sse_ex(&reaction).event_type.as_deref(), Some(GAP_EVENT));
    assert_eq!(
        reaction.send,
        Some(Out::Event(gap_event(0, 3, 10))),
        "the same event the driver sends after a reopen"
    );
}

#[test]
fn end_abort_and_a_refused_offset_finish_the_stream_as_each_says() {
    let mut relay = relay(IdFormat::Etag);
    assert!(
        relay
            .on_kafka(Frame::Begin(Begin::default()), no_refusal)
            .begin
    );
    assert!(
        !relay
            .on_kafka(Frame::Begin(Begin::default()), no_refusal)
            .begin
    );
    assert_eq!(
        relay.on_kafka(Frame::End(End::default()), no_refusal).done,
        Some(Done::Finished(None))
    );
    let abort = || {
        Frame::Abort(Abort {
            reason: Reason::new(ReasonKind::ConnectionLost, "broker gone"),
        })
    };
    let Some(Done::Finished(Some(reason))) = relay.on_kafka(abort(), no_refusal).done else {
        panic!("finished with the abort's reason expected");
    };
    assert_eq!(reason.kind, ReasonKind::ConnectionLost);
    let refused = || {
        Some(Reset {
            reason: Reason::new(ReasonKind::Refused, "offset out of range"),
            ext: ResetEx::Kafka(KafkaResetEx::OffsetOutOfRange {
                partition: 2,
                requested: 100,
                earliest: 0,
                latest: 50,
            }),
        })
    };
    assert_eq!(
        relay.on_kafka(abort(), refused).done,
        Some(Done::OffsetOutOfRange {
            partition: 2,
            requested: 100,
            earliest: 0,
            latest: 50
        })
    );
}

proptest! {
    /// However records are cut into frames, the events carry each record's value whole and
    /// in order: an event continues exactly until its record's last byte.
    #[test]
    fn events_carry_each_record_whole_whatever_the_frames(
        records in prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 1..40), prop::collection::vec(1usize..8, 1..6)),
            1..20,
        )
    ) {
        let mut relay = relay(IdFormat::Etag);
        let mut events: Vec<Vec<u8>> = Vec::new();
        let mut open = false;
        for (offset, (value, cuts)) in records.iter().enumerate() {
            let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
            let mut pieces = Vec::new();
            let mut at = 0;
            for cut in cuts.iter().cycle() {
                if at >= value.len() {
                    break;
                }
                let end = (at + cut).min(value.len());
                pieces.push(&value[at..end]);
                at = end;
            }
            for (i, piece) in pieces.iter().enumerate() {
                let frame = if i == 0 {
                    record(offset as i64, "k", piece, Some(len))
                } else {
                    Frame::Data(Data::new(Bytes::copy_from_slice(piece)))
                };
                let reaction = relay.on_kafka(frame, no_refusal);
                let Some(Out::Event(data)) = reaction.send else {
                    return Err(TestCaseError::fail("an event frame expected"));
                };
                let DataEx::Sse(ex) = &data.ext else {
                    return Err(TestCaseError::fail("an sse extension expected"));
                };
                if !open {
                    events.push(Vec::new());
                }
                if let Some(last) = events.last_mut() {
                    last.extend_from_slice(&data.payload);
                }
                open = ex.continues;
            }
            prop_assert!(!open, "the event of record {} still continues", offset);
        }
        let values: Vec<Vec<u8>> = records.into_iter().map(|(v, _)| v).collect();
        prop_assert_eq!(events, values);
    }
}

//! One subscription's relay from Kafka to SSE as a state machine, sans-IO: each frame of the
//! merged Kafka stream goes in, what to send the client comes out ([`Reaction`]). The async
//! driver in [`proxy`](crate::proxy) only moves frames and waits for credit.
//!
//! - A record's first frame becomes an event: its id from the progress after it (shared by
//!   subscribers at the same position), `delete` with the key for a tombstone; its further
//!   frames continue the event.
//! - The cache's gap flush becomes a `gap` event; a caught-up flush an id-only checkpoint (the
//!   etag format only, and not twice the same id).
//! - The first record, gap or Kafka begin begins the SSE reply; end and abort finish it, an
//!   abort that refuses an offset asks the driver to reopen.

use std::sync::{Arc, LazyLock};

use binding_api::ext::kafka::{KafkaDataEx, KafkaRecordEx, KafkaResetEx, Progress};
use binding_api::ext::sse::{SseDataEx, SseFlushEx};
use binding_api::ext::{DataEx, FlushEx, ResetEx};
use binding_api::frame::{Data, Flush, Frame, Reason, Reset};
use bytes::Bytes;

use crate::event_id;
use crate::ids::{Ids, etag};

/// The SSE type of the event a tombstone becomes.
pub const DELETE_EVENT: &str = "delete";

/// The SSE type of the event that says a partition resumed later than asked.
pub const GAP_EVENT: &str = "gap";

/// What the client has been sent, across the Kafka streams of one subscription.
pub struct Relay {
    ids: Ids,
    begun: bool,
    delivered: Option<Arc<Progress>>,
    /// Bytes of the current record's value still to come in continuation frames.
    remaining: u64,
    /// The id the client holds (the last one sent on this Kafka stream).
    last_id: Option<Arc<str>>,
}

/// What to do for one Kafka frame, in this order.
#[derive(Debug, Default, PartialEq)]
pub struct Reaction {
    /// Begin the SSE reply first: the response's headers leave.
    pub begin: bool,
    /// Send this to the client.
    pub send: Option<Out>,
    /// Give the Kafka reply back the credit the frame spent.
    pub replenish: bool,
    /// The Kafka stream is over.
    pub done: Option<Done>,
}

/// Something for the client.
#[derive(Debug, PartialEq)]
pub enum Out {
    /// An event frame, sent once the client's credit allows.
    Event(Data),
    /// A flush (with an id-only checkpoint when it carries one), sent only once the reply
    /// has begun.
    Flush(Flush),
}

impl Out {
    /// The payload bytes it spends credit for (besides the padding every frame costs).
    pub fn payload_len(&self) -> usize {
        match self {
            Out::Event(data) => data.payload.len(),
            Out::Flush(_) => 0,
        }
    }
}

/// How a Kafka stream ended.
#[derive(Debug, PartialEq)]
pub enum Done {
    /// Ended (`None`) or failed: the reply ends cleanly when it has begun (the client
    /// resumes by id), else the subscription is refused.
    Finished(Option<Reason>),
    /// An offset asked for is not in its partition: reopen there as the route's policy says.
    OffsetOutOfRange {
        /// The partition.
        partition: i32,
        /// What was asked.
        requested: i64,
        /// The oldest offset held.
        earliest: i64,
        /// The offset after the newest record.
        latest: i64,
    },
}

impl Relay {
    /// A relay writing ids in `ids`' format, nothing sent yet.
    pub fn new(ids: Ids) -> Self {
        Relay {
            ids,
            begun: false,
            delivered: None,
            remaining: 0,
            last_id: None,
        }
    }

    /// Whether the SSE reply has begun.
    pub fn begun(&self) -> bool {
        self.begun
    }

    /// Notes that the driver began the SSE reply (Kafka was slow to answer).
    pub fn mark_begun(&mut self) {
        self.begun = true;
    }

    /// The progress of what the client has been sent, where a reopened stream resumes.
    pub fn delivered(&self) -> Option<&Arc<Progress>> {
        self.delivered.as_ref()
    }

    /// A new Kafka stream begins (a reopen): no event is half sent on it.
    pub fn new_stream(&mut self) {
        self.remaining = 0;
        self.last_id = None;
    }

    /// What to do for `frame`; `refusal` is asked for the Kafka side's reset on an abort.
    pub fn on_kafka(&mut self, frame: Frame, refusal: impl FnOnce() -> Option<Reset>) -> Reaction {
        match frame {
            Frame::Begin(_) => Reaction {
                begin: self.begin(),
                ..Reaction::default()
            },
            Frame::Data(data) => {
                let begin = self.begin();
                let event = match data.ext {
                    DataEx::Kafka(KafkaDataEx::Record(record)) => {
                        if record.progress.is_some() {
                            self.delivered.clone_from(&record.progress);
                        }
                        let (event, remaining) = record_event(&self.ids, &record, data.payload);
                        self.remaining = remaining;
                        self.last_id = match &event.ext {
                            DataEx::Sse(ex) => ex.id.clone(),
                            _ => None,
                        };
                        event
                    }
                    _ => {
                        self.remaining = self.remaining.saturating_sub(data.payload.len() as u64);
                        Data {
                            ext: DataEx::Sse(SseDataEx {
                                continues: self.remaining > 0,
                                ..SseDataEx::default()
                            }),
                            payload: data.payload,
                        }
                    }
                };
                Reaction {
                    begin,
                    send: Some(Out::Event(event)),
                    replenish: true,
                    done: None,
                }
            }
            // The cache dropped records this subscriber had not read yet.
            Frame::Flush(Flush {
                ext: FlushEx::KafkaGap(gap),
            }) => Reaction {
                begin: self.begin(),
                send: Some(Out::Event(gap_event(gap.partition, gap.from, gap.to))),
                replenish: true,
                done: None,
            },
            Frame::Flush(flush) => {
                let id = match flush.ext {
                    FlushEx::Kafka(caught_up) => {
                        let id = self.ids.checkpoint(&caught_up.progress);
                        self.delivered = Some(caught_up.progress);
                        id
                    }
                    _ => None,
                };
                let id = id.filter(|id| self.last_id.as_deref() != Some(id.as_str()));
                if let Some(id) = &id {
                    self.last_id = Some(Arc::from(id.as_str()));
                }
                Reaction {
                    begin: false,
                    send: Some(Out::Flush(Flush {
                        ext: FlushEx::Sse(SseFlushEx { id }),
                    })),
                    replenish: true,
                    done: None,
                }
            }
            Frame::End(_) => Reaction {
                done: Some(Done::Finished(None)),
                ..Reaction::default()
            },
            Frame::Abort(abort) => {
                let done = match refusal() {
                    Some(Reset {
                        ext:
                            ResetEx::Kafka(KafkaResetEx::OffsetOutOfRange {
                                partition,
                                requested,
                                earliest,
                                latest,
                            }),
                        ..
                    }) => Done::OffsetOutOfRange {
                        partition,
                        requested,
                        earliest,
                        latest,
                    },
                    Some(reset) => Done::Finished(Some(reset.reason)),
                    None => Done::Finished(Some(abort.reason)),
                };
                Reaction {
                    done: Some(done),
                    ..Reaction::default()
                }
            }
        }
    }

    /// Whether the reply must begin now; it counts as begun from here.
    fn begin(&mut self) -> bool {
        !std::mem::replace(&mut self.begun, true)
    }
}

/// The event for a record's first frame, and how many value bytes are still to come.
fn record_event(ids: &Ids, record: &KafkaRecordEx, payload: Bytes) -> (Data, u64) {
    static EMPTY: LazyLock<Arc<Progress>> = LazyLock::new(Arc::default);
    let progress = record.progress.as_ref().unwrap_or(&EMPTY);
    let id = ids.record_id(progress, record.key.as_ref(), etag(&record.headers));
    let timestamp = u64::try_from(record.timestamp).ok();
    let (event_type, payload, remaining) = match record.value_len {
        // A tombstone: a delete event whose data is the key, base64url as Zilla writes it.
        None => {
            let key = record
                .key
                .as_ref()
                .map(|k| event_id::base64url(k))
                .unwrap_or_default();
            (Some(DELETE_EVENT.to_owned()), Bytes::from(key), 0)
        }
        Some(len) => {
            let rest = u64::from(len).saturating_sub(payload.len() as u64);
            (None, payload, rest)
        }
    };
    let data = Data {
        payload,
        ext: DataEx::Sse(SseDataEx {
            id,
            event_type,
            timestamp,
            continues: remaining > 0,
        }),
    };
    (data, remaining)
}

/// The `gap` event: `partition` resumes at `earliest` rather than where it was asked
/// (older records were no longer retained, or the offset asked for was past its end).
pub fn gap_event(partition: i32, requested: i64, earliest: i64) -> Data {
    let payload =
        format!("{{\"partition\":{partition},\"requested\":{requested},\"earliest\":{earliest}}}");
    Data {
        payload: Bytes::from(payload),
        ext: DataEx::Sse(SseDataEx {
            event_type: Some(GAP_EVENT.to_owned()),
            ..SseDataEx::default()
        }),
    }
}

#[cfg(test)]
mod tests;

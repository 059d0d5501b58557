//! One SSE subscription: the merged Kafka stream it reads and the events it writes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use binding_api::ext::kafka::{
    KafkaDataEx, KafkaHeader, KafkaRecordEx, KafkaResetEx, Progress, StartPosition,
};
use binding_api::ext::sse::{SseDataEx, SseEndEx, SseFlushEx};
use binding_api::ext::{DataEx, EndEx, FlushEx, ResetEx};
use binding_api::frame::{Begin, Data, End, Flush, Frame, Reason, ReasonKind, Reset, Window};
use binding_api::stream::{Reader, Writer};
use bytes::Bytes;

use crate::config::IdFormat;
use crate::event_id::{self, Fitted, KeyField};
use crate::id_memo::{self, IdInput};

/// Credit granted to the Kafka reply: what may wait between Kafka and the SSE stream.
pub const KAFKA_WINDOW: u32 = 64 * 1024;

/// The SSE type of the event a tombstone becomes.
pub const DELETE_EVENT: &str = "delete";

/// The SSE type of the event that says a partition resumed later than asked.
pub const GAP_EVENT: &str = "gap";

/// The two ends of an SSE subscription, as the sse server gave them.
pub struct SseSide {
    /// Requests from the client (nothing but end or abort is expected).
    pub input: Reader,
    /// Events to the client.
    pub output: Writer,
}

/// The two ends of the merged Kafka stream.
pub struct KafkaSide {
    /// Our initial direction (nothing is sent after its begin).
    pub output: Writer,
    /// Records.
    pub input: Reader,
}

/// How a Kafka stream finished, for the caller to decide what comes next.
pub enum Outcome {
    /// The subscription is over (ended, reset, or the client went away).
    Done,
    /// A requested offset is not in the partition: older than what is retained, or past its
    /// end (a topic deleted and recreated, a forged id). Reopen with the partition where the
    /// route's policy says, and tell the client.
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

/// Encodes record metadata as SSE event ids.
pub struct Ids {
    /// Which of Zilla's formats.
    pub format: IdFormat,
}

impl Ids {
    /// The record's id, within [`MAX_EVENT_ID`](binding_api::ext::sse::MAX_EVENT_ID): what
    /// did not fit is left out and logged (at most once a minute).
    /// Subscribers at the same position share the id ([`id_memo`]).
    fn record_id(
        &self,
        progress: &Arc<Progress>,
        key: Option<&Bytes>,
        etag: Option<&str>,
    ) -> Option<Arc<str>> {
        let input = IdInput {
            format: self.format,
            progress,
            key,
            etag,
        };
        id_memo::id(&input, || {
            let key = match self.format {
                IdFormat::Etag => KeyField::Absent,
                IdFormat::KeyAndEtag => KeyField::Key(key.map(|k| &k[..])),
            };
            let fitted = event_id::fitted_id(&progress.partitions, key, etag);
            if fitted.id.is_none() || fitted.etag_dropped {
                warn_oversized(&fitted, progress.partitions.len(), etag.map_or(0, str::len));
            }
            fitted.id
        })
    }

    /// An id-only checkpoint: only in the etag format, where it reads like any other id.
    fn checkpoint(&self, progress: &Progress) -> Option<String> {
        match self.format {
            IdFormat::Etag => event_id::fitted_id(&progress.partitions, KeyField::Absent, None).id,
            IdFormat::KeyAndEtag => None,
        }
    }
}

/// When the last oversized-id warning was logged, in seconds since the Unix epoch.
static LAST_OVERSIZED_WARNING: AtomicU64 = AtomicU64::new(0);

/// Logs, at most once a minute for the whole process, that an id lost its etag or was left
/// out to stay within the limit every client can send back.
fn warn_oversized(fitted: &Fitted, partitions: usize, etag_len: usize) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST_OVERSIZED_WARNING.load(Ordering::Relaxed);
    if now < last.saturating_add(60)
        || LAST_OVERSIZED_WARNING
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    if fitted.id.is_none() {
        tracing::warn!(
            partitions,
            limit = binding_api::ext::sse::MAX_EVENT_ID,
            "an event id cannot hold the progress of this many partitions: events go without an id (clients resume from the last id they had); further cases are not logged for a minute"
        );
    } else {
        tracing::warn!(
            etag_bytes = etag_len,
            partitions,
            limit = binding_api::ext::sse::MAX_EVENT_ID,
            "an etag too long for the event id was left out of it (the id still resumes exactly); further cases are not logged for a minute"
        );
    }
}

/// The `etag` header's value, when it can be part of an id.
fn etag(headers: &[KafkaHeader]) -> Option<&str> {
    let value = headers
        .iter()
        .find(|h| &h.name[..] == b"etag")?
        .value
        .as_ref()?;
    std::str::from_utf8(value)
        .ok()
        .filter(|v| !v.contains(['\r', '\n', '\0']))
}

/// Relays one merged Kafka stream to the SSE reply until either side ends. `begun` says
/// whether the SSE reply has begun already (it has, on a reopened stream); `delivered` keeps
/// the progress of what the client has been sent, where a reopened stream resumes.
pub async fn relay(
    sse: &mut SseSide,
    kafka: &mut KafkaSide,
    ids: &Ids,
    begun: &mut bool,
    delivered: &mut Option<Arc<Progress>>,
    start_timeout: Duration,
) -> Outcome {
    if kafka
        .input
        .window(Window {
            credit: KAFKA_WINDOW,
            padding: 0,
        })
        .is_err()
    {
        return Outcome::Done;
    }
    let deadline = tokio::time::sleep(start_timeout);
    tokio::pin!(deadline);
    // Bytes of the current record's value still to come in continuation frames.
    let mut remaining: u64 = 0;
    let mut last_id: Option<Arc<str>> = None;
    loop {
        tokio::select! {
            frame = kafka.input.frame() => {
                let Some(frame) = frame else {
                    return finish(sse, kafka, *begun, None);
                };
                match frame {
                    Frame::Begin(_) => {
                        if !*begun && !begin(sse, begun) {
                            return close_kafka(kafka, "client gone");
                        }
                    }
                    Frame::Data(data) => {
                        if !*begun && !begin(sse, begun) {
                            return close_kafka(kafka, "client gone");
                        }
                        let event = match data.ext {
                            DataEx::Kafka(KafkaDataEx::Record(record)) => {
                                if record.progress.is_some() {
                                    delivered.clone_from(&record.progress);
                                }
                                let (event, rest) = record_event(ids, &record, data.payload);
                                remaining = rest;
                                last_id = event.ext_id();
                                event.data
                            }
                            _ => {
                                remaining = remaining.saturating_sub(data.payload.len() as u64);
                                Data {
                                    ext: DataEx::Sse(SseDataEx {
                                        continues: remaining > 0,
                                        ..SseDataEx::default()
                                    }),
                                    payload: data.payload,
                                }
                            }
                        };
                        if !send(&mut sse.output, event).await {
                            return close_kafka(kafka, "client gone");
                        }
                        kafka.input.replenish();
                    }
                    Frame::Flush(Flush { ext: FlushEx::KafkaGap(gap) }) => {
                        // The cache dropped records this subscriber had not read yet.
                        if !*begun && !begin(sse, begun) {
                            return close_kafka(kafka, "client gone");
                        }
                        if !send_gap(sse, gap.partition, gap.from, gap.to).await {
                            return close_kafka(kafka, "client gone");
                        }
                        kafka.input.replenish();
                    }
                    Frame::Flush(flush) => {
                        let id = match flush.ext {
                            FlushEx::Kafka(caught_up) => {
                                let id = ids.checkpoint(&caught_up.progress);
                                *delivered = Some(caught_up.progress);
                                id
                            }
                            _ => None,
                        };
                        let id = id.filter(|id| last_id.as_deref() != Some(id.as_str()));
                        if let Some(id) = &id {
                            last_id = Some(Arc::from(id.as_str()));
                        }
                        let flush = Flush { ext: FlushEx::Sse(SseFlushEx { id }) };
                        if *begun && sse.output.ready(0).await.is_ok() {
                            let _ = sse.output.flush(flush);
                        }
                        kafka.input.replenish();
                    }
                    Frame::End(_) => return finish(sse, kafka, *begun, None),
                    Frame::Abort(abort) => {
                        let refusal = kafka.output.reset_reason();
                        if let Some(Reset { ext: ResetEx::Kafka(KafkaResetEx::OffsetOutOfRange {
                            partition, requested, earliest, latest
                        }), .. }) = refusal {
                            return Outcome::OffsetOutOfRange { partition, requested, earliest, latest };
                        }
                        return finish(sse, kafka, *begun, Some(refusal.map_or(abort.reason, |r| r.reason)));
                    }
                }
            }
            _ = &mut deadline, if !*begun => {
                // Kafka is slow or unreachable: answer now, heartbeats keep the stream alive.
                if !begin(sse, begun) {
                    return close_kafka(kafka, "client gone");
                }
            }
            frame = sse.input.frame() => {
                if !matches!(frame, Some(Frame::Begin(_) | Frame::Flush(_))) {
                    // The client went away (or sent a body, which an SSE request has not).
                    sse.output_reset();
                    return close_kafka(kafka, "client gone");
                }
            }
            // Not every window the sse server grants: only its reset (the client gone).
            _ = sse.output.reset_by_reader() => return close_kafka(kafka, "client gone"),
        }
    }
}

/// An SSE event built from a record's first frame.
struct Event {
    data: Data,
}

impl Event {
    fn ext_id(&self) -> Option<Arc<str>> {
        match &self.data.ext {
            DataEx::Sse(ex) => ex.id.clone(),
            _ => None,
        }
    }
}

/// The event for a record's first frame, and how many value bytes are still to come.
fn record_event(ids: &Ids, record: &KafkaRecordEx, payload: Bytes) -> (Event, u64) {
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
    (Event { data }, remaining)
}

/// Sends the SSE reply's begin: the response's headers leave now.
pub fn begin(sse: &mut SseSide, begun: &mut bool) -> bool {
    *begun = sse.output.begin(Begin::default()).is_ok();
    *begun
}

/// Sends one event frame once the client's credit allows.
async fn send(output: &mut Writer, data: Data) -> bool {
    output.ready(data.payload.len()).await.is_ok() && output.data(data).is_ok()
}

/// Tells the client that `partition` resumes at `earliest` rather than where it asked (older
/// records were no longer retained, or the offset asked for was past the partition's end).
pub async fn send_gap(sse: &mut SseSide, partition: i32, requested: i64, earliest: i64) -> bool {
    let payload =
        format!("{{\"partition\":{partition},\"requested\":{requested},\"earliest\":{earliest}}}");
    let data = Data {
        payload: Bytes::from(payload),
        ext: DataEx::Sse(SseDataEx {
            event_type: Some(GAP_EVENT.to_owned()),
            ..SseDataEx::default()
        }),
    };
    send(&mut sse.output, data).await
}

impl SseSide {
    fn output_reset(&mut self) {
        let _ = self
            .output
            .abort(Reason::new(ReasonKind::ConnectionLost, "client gone"));
    }

    /// Refuses the subscription before its response began.
    pub fn refuse(&mut self, reason: Reason) {
        self.input.reset(Reset {
            reason: reason.clone(),
            ext: ResetEx::None,
        });
        let _ = self.output.abort(reason);
    }
}

fn close_kafka(kafka: &mut KafkaSide, why: &str) -> Outcome {
    kafka.input.reset(Reset::new(ReasonKind::Dropped, why));
    let _ = kafka.output.end(End::default());
    Outcome::Done
}

/// The Kafka stream ended or failed: end the subscription cleanly when its response has
/// begun (the client reconnects and resumes), or refuse it when it has not.
fn finish(
    sse: &mut SseSide,
    kafka: &mut KafkaSide,
    begun: bool,
    failure: Option<Reason>,
) -> Outcome {
    let _ = kafka.output.end(End::default());
    if begun {
        let _ = sse.output.end(End {
            ext: EndEx::Sse(SseEndEx::default()),
        });
    } else {
        sse.refuse(failure.unwrap_or_else(|| Reason::new(ReasonKind::Refused, "kafka ended")));
    }
    Outcome::Done
}

/// Where each partition starts, from a `Last-Event-ID`'s progress.
pub fn resume_positions(progress: &[(i32, i64)]) -> Vec<(i32, StartPosition)> {
    progress
        .iter()
        .map(|&(partition, next)| (partition, StartPosition::Offset(next)))
        .collect()
}

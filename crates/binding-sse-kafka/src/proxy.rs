//! One SSE subscription's async edge: the merged Kafka stream it reads and the SSE reply it
//! writes, driving a [`Relay`] frame by frame.

use std::time::Duration;

use binding_api::ext::kafka::StartPosition;
use binding_api::ext::sse::SseEndEx;
use binding_api::ext::{EndEx, ResetEx};
use binding_api::frame::{Begin, Data, End, Frame, Reason, ReasonKind, Reset, Window};
use binding_api::stream::{Reader, Writer};

use crate::relay::{Done, Out, Relay, gap_event};

/// Credit granted to the Kafka reply: what may wait between Kafka and the SSE stream.
pub const KAFKA_WINDOW: u32 = 64 * 1024;

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

/// Relays one merged Kafka stream to the SSE reply until either side ends; `relay` keeps
/// what the client has been sent across the streams of one subscription.
pub async fn relay(
    sse: &mut SseSide,
    kafka: &mut KafkaSide,
    relay: &mut Relay,
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
    relay.new_stream();
    let deadline = tokio::time::sleep(start_timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            frame = kafka.input.frame() => {
                let Some(frame) = frame else {
                    return finish(sse, kafka, relay.begun(), None);
                };
                let reaction = relay.on_kafka(frame, || kafka.output.reset_reason());
                if reaction.begin && !begin(sse) {
                    return close_kafka(kafka, "client gone");
                }
                let sent = match reaction.send {
                    Some(Out::Event(event)) => send(&mut sse.output, event).await,
                    Some(Out::Flush(flush)) => {
                        if relay.begun() && sse.output.ready(0).await.is_ok() {
                            let _ = sse.output.flush(flush);
                        }
                        true
                    }
                    None => true,
                };
                if !sent {
                    return close_kafka(kafka, "client gone");
                }
                if reaction.replenish {
                    kafka.input.replenish();
                }
                match reaction.done {
                    Some(Done::Finished(failure)) => return finish(sse, kafka, relay.begun(), failure),
                    Some(Done::OffsetOutOfRange { partition, requested, earliest, latest }) => {
                        return Outcome::OffsetOutOfRange { partition, requested, earliest, latest };
                    }
                    None => {}
                }
            }
            _ = &mut deadline, if !relay.begun() => {
                // Kafka is slow or unreachable: answer now, heartbeats keep the stream alive.
                if !begin(sse) {
                    return close_kafka(kafka, "client gone");
                }
                relay.mark_begun();
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

/// Sends the SSE reply's begin: the response's headers leave now.
pub fn begin(sse: &mut SseSide) -> bool {
    sse.output.begin(Begin::default()).is_ok()
}

/// Sends one event frame once the client's credit allows.
async fn send(output: &mut Writer, data: Data) -> bool {
    output.ready(data.payload.len()).await.is_ok() && output.data(data).is_ok()
}

/// Tells the client that `partition` resumes at `earliest` rather than where it asked.
pub async fn send_gap(sse: &mut SseSide, partition: i32, requested: i64, earliest: i64) -> bool {
    send(&mut sse.output, gap_event(partition, requested, earliest)).await
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

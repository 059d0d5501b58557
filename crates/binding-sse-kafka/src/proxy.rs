//! One SSE subscription's edge as a state machine ([`Subscription`], polled as a future): the
//! merged Kafka stream it reads, the SSE reply it writes, a [`Relay`] deciding what each Kafka
//! frame becomes, and the reopen of the Kafka stream when a requested offset is not in its
//! partition.
//!
//! Each poll looks at exactly what the subscription waits for: the client's credit while an
//! event waits, else the next Kafka frame, the client going away, and, until the reply has
//! begun, the start timer. It holds no future of its own between polls.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use binding_api::binding::Worker;
use binding_api::ext::kafka::{KafkaBeginEx, KafkaMergedBeginEx, StartPosition};
use binding_api::ext::sse::SseEndEx;
use binding_api::ext::{BeginEx, EndEx, ResetEx};
use binding_api::frame::{Begin, End, Frame, Reason, ReasonKind, Reset, Window};
use binding_api::stream::{self, Reader, Writer};
use tokio::time::Sleep;

use crate::config::{ProxyRoute, ProxyRoutes, Start};
use crate::relay::{Done, Out, Reaction, Relay, gap_event};

/// Credit granted to the Kafka reply: what may wait between Kafka and the SSE stream.
pub const KAFKA_WINDOW: u32 = 64 * 1024;

/// How many times one subscription reopens its Kafka stream after offsets fell out of
/// retention (once per partition at most, in practice).
const MAX_REOPENS: u32 = 64;

/// The two ends of an SSE subscription, as the sse server gave them.
pub struct SseSide {
    /// Requests from the client (nothing but end or abort is expected).
    pub input: Reader,
    /// Events to the client.
    pub output: Writer,
}

/// The two ends of the merged Kafka stream.
struct KafkaSide {
    /// Our initial direction (nothing is sent after its begin).
    output: Writer,
    /// Records.
    input: Reader,
}

/// What to do once the waiting output has been sent.
enum After {
    /// Nothing more (a gap event).
    Nothing,
    /// The rest of a Kafka frame's reaction.
    Reaction { replenish: bool, done: Option<Done> },
}

/// One subscription: relays merged Kafka streams to the SSE reply until either side ends.
pub struct Subscription {
    sse: SseSide,
    kafka: KafkaSide,
    relay: Relay,
    routes: Arc<ProxyRoutes>,
    route: usize,
    /// The Kafka stream's begin, kept to reopen it (boxed: read only then).
    merged: Box<KafkaMergedBeginEx>,
    worker: Worker,
    /// Until the reply has begun: when to answer anyway, with heartbeats to follow.
    start_timer: Option<Pin<Box<Sleep>>>,
    /// Output waiting for the client's credit, and what follows it (boxed: output goes at
    /// once while the client keeps up, and a quiet subscription holds none).
    waiting: Option<Box<(Out, After)>>,
    reopens: u32,
}

impl Subscription {
    /// Opens the Kafka stream of `merged` through route `route`'s exit and relays it to `sse`.
    /// Returns `None` when the Kafka stream could not be read at all.
    pub fn start(
        sse: SseSide,
        routes: Arc<ProxyRoutes>,
        route: usize,
        merged: KafkaMergedBeginEx,
        start_timeout: Duration,
        worker: &Worker,
        relay: Relay,
    ) -> Option<Subscription> {
        let kafka = open_kafka(&routes[route], &merged, worker)?;
        Some(Subscription {
            sse,
            kafka,
            relay,
            routes,
            route,
            merged: Box::new(merged),
            worker: worker.clone(),
            start_timer: Some(Box::pin(tokio::time::sleep(start_timeout))),
            waiting: None,
            reopens: 0,
        })
    }

    /// Sends what waits for credit once the client's credit allows; an error stops the
    /// subscription.
    fn poll_waiting(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Stop>> {
        let Some(waiting) = &self.waiting else {
            return Poll::Ready(Ok(()));
        };
        match self.sse.output.poll_ready(cx, waiting.0.payload_len()) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(_)) => return Poll::Ready(Err(Stop::ClientGone)),
            Poll::Ready(Ok(())) => {}
        }
        let Some(waiting) = self.waiting.take() else {
            return Poll::Ready(Ok(()));
        };
        let (out, after) = *waiting;
        Poll::Ready(self.send(out, after))
    }

    /// Sends `out` now when the client's credit allows, else keeps it until it does.
    fn send_or_wait(&mut self, out: Out, after: After) -> Result<(), Stop> {
        if self.sse.output.can_send(out.payload_len()) {
            self.send(out, after)
        } else {
            self.waiting = Some(Box::new((out, after)));
            Ok(())
        }
    }

    /// Sends `out`, for which there is credit, then does what follows it.
    fn send(&mut self, out: Out, after: After) -> Result<(), Stop> {
        let sent = match out {
            Out::Event(data) => self.sse.output.data(data).is_ok(),
            Out::Flush(flush) => {
                let _ = self.sse.output.flush(flush);
                true
            }
        };
        if !sent {
            return Err(Stop::ClientGone);
        }
        match after {
            After::Nothing => Ok(()),
            After::Reaction { replenish, done } => self.after(replenish, done),
        }
    }

    /// Applies a Kafka frame's reaction.
    fn react(&mut self, reaction: Reaction) -> Result<(), Stop> {
        if reaction.begin && !self.begin() {
            return Err(Stop::ClientGone);
        }
        let out = match reaction.send {
            Some(Out::Flush(_)) if !self.relay.begun() => None,
            out => out,
        };
        match out {
            Some(out) => {
                let after = After::Reaction {
                    replenish: reaction.replenish,
                    done: reaction.done,
                };
                self.send_or_wait(out, after)
            }
            None => self.after(reaction.replenish, reaction.done),
        }
    }

    fn after(&mut self, replenish: bool, done: Option<Done>) -> Result<(), Stop> {
        if replenish {
            self.kafka.input.replenish();
        }
        match done {
            None => Ok(()),
            Some(Done::Finished(failure)) => Err(Stop::Finished(failure)),
            Some(Done::OffsetOutOfRange {
                partition,
                requested,
                earliest,
                latest,
            }) => self.reopen(partition, requested, earliest, latest),
        }
    }

    /// Reopens the Kafka stream where the route's policy says, and tells the client.
    fn reopen(
        &mut self,
        partition: i32,
        requested: i64,
        earliest: i64,
        latest: i64,
    ) -> Result<(), Stop> {
        self.reopens += 1;
        if self.reopens >= MAX_REOPENS {
            return Err(Stop::Refused(Reason::new(
                ReasonKind::Refused,
                "too many reopens",
            )));
        }
        let route = &self.routes[self.route];
        let resume = resume_offset(route.with.start, requested, earliest, latest);
        tracing::info!(topic = %self.merged.topic, partition, requested, earliest, latest, resume,
            "resume offset not in the partition: resuming where the route's start says");
        // What the client has seen stays seen: the other partitions resume after it.
        for &(p, next) in self.relay.delivered().iter().flat_map(|d| &d.partitions) {
            set_start(&mut self.merged, p, StartPosition::Offset(next));
        }
        set_start(&mut self.merged, partition, StartPosition::Offset(resume));
        self.kafka = open_kafka(route, &self.merged, &self.worker).ok_or(Stop::Done)?;
        self.relay.new_stream();
        if !self.relay.begun() {
            if !self.begin() {
                return Err(Stop::ClientGone);
            }
            self.relay.mark_begun();
        }
        let gap = gap_event(partition, requested, resume);
        self.send_or_wait(Out::Event(gap), After::Nothing)
    }

    /// Sends the SSE reply's begin: the response's headers leave now.
    fn begin(&mut self) -> bool {
        self.sse.output.begin(Begin::default()).is_ok()
    }

    /// One step: `Ready(Err(stop))` when the subscription is over.
    fn step(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Stop>> {
        // The client going away, or sending a body, which an SSE request has not.
        while let Poll::Ready(frame) = self.sse.input.poll_frame(cx) {
            if !matches!(frame, Some(Frame::Begin(_) | Frame::Flush(_))) {
                return Poll::Ready(Err(Stop::ClientGone));
            }
        }
        if self.waiting.is_some() {
            return self.poll_waiting(cx);
        }
        // Not every window the sse server grants: only its reset (the client gone).
        if self.sse.output.poll_reset(cx).is_ready() {
            return Poll::Ready(Err(Stop::ClientGone));
        }
        if self.relay.begun() {
            self.start_timer = None;
        } else if let Some(timer) = &mut self.start_timer
            && timer.as_mut().poll(cx).is_ready()
        {
            // Kafka is slow or unreachable: answer now, heartbeats keep the stream alive.
            self.start_timer = None;
            if !self.begin() {
                return Poll::Ready(Err(Stop::ClientGone));
            }
            self.relay.mark_begun();
        }
        let frame = match self.kafka.input.poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => return Poll::Ready(Err(Stop::Finished(None))),
            Poll::Ready(Some(frame)) => frame,
        };
        let output = &self.kafka.output;
        let reaction = self.relay.on_kafka(frame, || output.reset_reason());
        Poll::Ready(self.react(reaction))
    }

    /// Ends both sides as `stop` says.
    fn stop(&mut self, stop: Stop) {
        match stop {
            Stop::ClientGone => {
                let _ = self
                    .sse
                    .output
                    .abort(Reason::new(ReasonKind::ConnectionLost, "client gone"));
                self.close_kafka();
            }
            Stop::Done => self.close_kafka(),
            Stop::Refused(reason) => {
                self.close_kafka();
                self.sse.refuse(reason);
            }
            Stop::Finished(failure) => {
                // The Kafka stream ended or failed: end the subscription cleanly when its
                // response has begun (the client reconnects and resumes), else refuse it.
                let _ = self.kafka.output.end(End::default());
                if self.relay.begun() {
                    let _ = self.sse.output.end(End {
                        ext: EndEx::Sse(SseEndEx::default()),
                    });
                } else {
                    self.sse.refuse(
                        failure.unwrap_or_else(|| Reason::new(ReasonKind::Refused, "kafka ended")),
                    );
                }
            }
        }
    }

    fn close_kafka(&mut self) {
        self.kafka
            .input
            .reset(Reset::new(ReasonKind::Dropped, "client gone"));
        let _ = self.kafka.output.end(End::default());
    }
}

/// Why a subscription stops.
enum Stop {
    /// The client went away.
    ClientGone,
    /// The Kafka stream ended or failed.
    Finished(Option<Reason>),
    /// Refused before the reply began.
    Refused(Reason),
    /// Nothing left to tell anyone.
    Done,
}

impl Future for Subscription {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let subscription = self.get_mut();
        loop {
            match subscription.step(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(stop)) => {
                    subscription.stop(stop);
                    return Poll::Ready(());
                }
            }
        }
    }
}

/// Opens a merged Kafka stream through `route`'s exit and grants it credit.
fn open_kafka(
    route: &ProxyRoute,
    merged: &KafkaMergedBeginEx,
    worker: &Worker,
) -> Option<KafkaSide> {
    let begin = Begin {
        ext: BeginEx::Kafka(KafkaBeginEx::Merged(merged.clone())),
    };
    let (initiator, acceptor) = stream::open(begin);
    route.exit.new_stream(acceptor, worker);
    let mut kafka = KafkaSide {
        output: initiator.output,
        input: initiator.input,
    };
    let window = Window {
        credit: KAFKA_WINDOW,
        padding: 0,
    };
    kafka.input.window(window).ok()?;
    Some(kafka)
}

impl SseSide {
    /// Refuses the subscription before its response began.
    pub fn refuse(&mut self, reason: Reason) {
        self.input.reset(Reset {
            reason: reason.clone(),
            ext: ResetEx::None,
        });
        let _ = self.output.abort(reason);
    }
}

/// Where a partition resumes when `requested` is not in it: the oldest record when it is older
/// than retention; past the end (a topic deleted and recreated, a forged id), where the
/// route's `start` policy says, as Kafka's `auto.offset.reset`: `historical` from the oldest
/// record, `live` from the end.
pub fn resume_offset(policy: Start, requested: i64, earliest: i64, latest: i64) -> i64 {
    if requested < earliest || policy == Start::Historical {
        earliest
    } else {
        latest
    }
}

fn set_start(merged: &mut KafkaMergedBeginEx, partition: i32, position: StartPosition) {
    match merged.partitions.iter_mut().find(|(p, _)| *p == partition) {
        Some(entry) => entry.1 = position,
        None => merged.partitions.push((partition, position)),
    }
}

/// Where each partition starts, from a `Last-Event-ID`'s progress.
pub fn resume_positions(progress: &[(i32, i64)]) -> Vec<(i32, StartPosition)> {
    progress
        .iter()
        .map(|&(partition, next)| (partition, StartPosition::Offset(next)))
        .collect()
}

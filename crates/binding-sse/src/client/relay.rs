//! One subscription relayed from the upstream's event stream to the sse server in front, as
//! a state machine ([`Relay`]): the response checked, its bytes parsed, each event passed on
//! within the server's credit (in pieces when larger), nothing read ahead of it.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use binding_api::ext::BeginEx;
use binding_api::ext::http::HttpBeginEx;
use binding_api::ext::sse::{SseDataEx, SseFlushEx};
use binding_api::ext::{DataEx, FlushEx};
use binding_api::frame::{Begin, Data, End, Flush, Frame, Reason, ReasonKind, Reset, Window};
use binding_api::stream::{Duplex, Initiator, WriterEvent};
use bytes::Bytes;

use super::parser::{EventStreamParser, Parsed};

/// Credit granted to the upstream response: what may be read ahead of the parser.
const HTTP_WINDOW: u32 = 16 * 1024;

/// Largest data frame sent to the sse server.
const MAX_FRAME: u64 = 16 * 1024;

/// The relay of one subscription.
pub(crate) struct Relay {
    binding: Arc<str>,
    /// The sse server's stream: its initial direction (never data), our reply of events.
    app: Duplex,
    /// The request to the http client (ended at once) and its response.
    http: Initiator,
    phase: Phase,
}

enum Phase {
    /// Waiting for the response head.
    Awaiting {
        max_event: usize,
    },
    /// Relaying events.
    Streaming(Box<Streaming>),
    Over,
}

/// What a running relay holds.
struct Streaming {
    parser: EventStreamParser,
    /// Parsed and not yet passed on: at most what one response frame completes.
    parsed: VecDeque<Parsed>,
    /// The rest of the event being passed on in pieces.
    current: Option<Piece>,
    /// The upstream broke the stream: once what came before is passed on, the reply is
    /// aborted for this reason.
    failed: Option<Reason>,
}

/// The rest of an event, and the head its first frame carries.
struct Piece {
    rest: Bytes,
    ex: SseDataEx,
}

/// What one look did.
enum Step {
    Progress,
    Idle,
    Over,
}

impl Relay {
    pub(crate) fn new(
        binding: Arc<str>,
        max_event: usize,
        app: Duplex,
        mut http: Initiator,
    ) -> Self {
        let _ = http.input.window(Window {
            credit: HTTP_WINDOW,
            padding: 0,
        });
        Relay {
            binding,
            app,
            http,
            phase: Phase::Awaiting { max_event },
        }
    }

    /// The subscriber went away (the sse server reset our reply or aborted its request):
    /// the upstream request is dropped.
    fn gone(&mut self, reason: Reason) -> Step {
        let _ = self.app.output.abort(reason.clone());
        self.http.input.reset(Reset {
            reason: reason.clone(),
            ext: Default::default(),
        });
        let _ = self.http.output.abort(reason);
        Step::Over
    }

    /// Looks for the subscriber going away.
    fn poll_subscriber(&mut self, cx: &mut Context<'_>) -> Option<Step> {
        if let Poll::Ready(reset) = self.app.output.poll_reset(cx) {
            return Some(self.gone(reset.reason));
        }
        match self.app.input.poll_frame(cx) {
            Poll::Pending => None,
            Poll::Ready(Some(Frame::Abort(abort))) => Some(self.gone(abort.reason)),
            Poll::Ready(Some(Frame::End(_)) | None) => {
                Some(self.gone(Reason::new(ReasonKind::Dropped, "the subscriber ended")))
            }
            Poll::Ready(Some(_)) => Some(Step::Progress),
        }
    }

    fn poll_awaiting(&mut self, cx: &mut Context<'_>, max_event: usize) -> Step {
        let begin = match self.http.input.poll_frame(cx) {
            Poll::Pending => return Step::Idle,
            Poll::Ready(Some(Frame::Begin(begin))) => begin,
            Poll::Ready(other) => {
                let reason = match other {
                    Some(Frame::Abort(abort)) => abort.reason,
                    _ => Reason::new(ReasonKind::ConnectionLost, "the upstream gave no response"),
                };
                return self.refuse(reason.kind, reason.detail);
            }
        };
        let BeginEx::Http(head) = &begin.ext else {
            return self.refuse(
                ReasonKind::ConnectionLost,
                "the upstream response has no head".into(),
            );
        };
        if let Err((kind, detail)) = check(head) {
            return self.refuse(kind, detail);
        }
        if self.app.output.begin(Begin::default()).is_err() {
            return self.gone(Reason::new(ReasonKind::Dropped, "the subscriber went away"));
        }
        self.phase = Phase::Streaming(Box::new(Streaming {
            parser: EventStreamParser::new(max_event),
            parsed: VecDeque::new(),
            current: None,
            failed: None,
        }));
        Step::Progress
    }

    /// Refuses the subscription before its reply began: the sse server answers with the
    /// status the reason maps to.
    fn refuse(&mut self, kind: ReasonKind, detail: String) -> Step {
        tracing::debug!(binding = %self.binding, %kind, %detail, "sse client: upstream refused the subscription");
        self.app.refuse_in_place(Reset::new(kind, detail.clone()));
        self.http
            .input
            .reset(Reset::new(ReasonKind::Refused, detail));
        Step::Over
    }

    fn poll_streaming(&mut self, cx: &mut Context<'_>) -> Step {
        let Phase::Streaming(streaming) = &mut self.phase else {
            return Step::Over;
        };
        if let Some(piece) = &mut streaming.current {
            let output = &mut self.app.output;
            let room = output.credit().saturating_sub(u64::from(output.padding()));
            let whole = piece.rest.len() as u64;
            if output.credit() < output.cost(usize::from(whole > 0)) {
                return match output.poll_event(cx) {
                    Poll::Pending => Step::Idle,
                    Poll::Ready(WriterEvent::Reset(reset)) => self.gone(reset.reason),
                    Poll::Ready(_) => Step::Progress,
                };
            }
            let n = whole.min(room).min(MAX_FRAME) as usize;
            let payload = piece.rest.split_to(n);
            let continues = !piece.rest.is_empty();
            let ex = SseDataEx {
                continues,
                ..piece.ex.clone()
            };
            let data = Data {
                payload,
                ext: DataEx::Sse(ex),
            };
            if let Err(err) = output.data(data) {
                return self.gone(Reason::new(ReasonKind::Dropped, err.to_string()));
            }
            if !continues {
                streaming.current = None;
            }
            return Step::Progress;
        }
        match streaming.parsed.pop_front() {
            Some(Parsed::Event {
                id,
                event_type,
                data,
            }) => {
                streaming.current = Some(Piece {
                    rest: data,
                    ex: SseDataEx {
                        id: id.map(Arc::from),
                        event_type,
                        timestamp: None,
                        continues: false,
                    },
                });
                return Step::Progress;
            }
            Some(Parsed::Id(id)) => {
                let output = &mut self.app.output;
                if output.credit() < output.cost(0) {
                    streaming.parsed.push_front(Parsed::Id(id));
                    return match output.poll_event(cx) {
                        Poll::Pending => Step::Idle,
                        Poll::Ready(WriterEvent::Reset(reset)) => self.gone(reset.reason),
                        Poll::Ready(_) => Step::Progress,
                    };
                }
                let flush = Flush {
                    ext: FlushEx::Sse(SseFlushEx { id: Some(id) }),
                };
                if let Err(err) = output.flush(flush) {
                    return self.gone(Reason::new(ReasonKind::Dropped, err.to_string()));
                }
                return Step::Progress;
            }
            None => {}
        }
        if let Some(reason) = streaming.failed.take() {
            let _ = self.app.output.abort(reason);
            return Step::Over;
        }
        match self.http.input.poll_frame(cx) {
            Poll::Pending => Step::Idle,
            Poll::Ready(Some(Frame::Data(data))) => {
                let mut parsed = Vec::new();
                let fed = streaming.parser.feed(&data.payload, &mut parsed);
                streaming.parsed.extend(parsed);
                self.http.input.replenish();
                if let Err(err) = fed {
                    // The events before it go on; the upstream is not read further.
                    tracing::warn!(binding = %self.binding, %err, "sse client: stream ended");
                    let reason = Reason::new(ReasonKind::ProtocolViolation, err.to_string());
                    self.http.input.reset(Reset {
                        reason: reason.clone(),
                        ext: Default::default(),
                    });
                    streaming.failed = Some(reason);
                }
                Step::Progress
            }
            Poll::Ready(Some(Frame::Begin(_) | Frame::Flush(_))) => Step::Progress,
            Poll::Ready(Some(Frame::End(_))) => {
                // The upstream ended: an unfinished event is dropped, as a browser drops it.
                let _ = self.app.output.end(End::default());
                Step::Over
            }
            Poll::Ready(Some(Frame::Abort(abort))) => {
                let _ = self.app.output.abort(abort.reason);
                Step::Over
            }
            Poll::Ready(None) => {
                let reason = Reason::new(ReasonKind::ConnectionLost, "the upstream went away");
                let _ = self.app.output.abort(reason);
                Step::Over
            }
        }
    }
}

/// Whether the response head opens an event stream: `200` with `text/event-stream`. Else
/// the reason kind whose status the sse server answers with, and why.
fn check(head: &HttpBeginEx) -> Result<(), (ReasonKind, String)> {
    let status = head.status().unwrap_or(0);
    if status != 200 {
        let kind = match status {
            400 => ReasonKind::Invalid,
            401 => ReasonKind::Unauthorized,
            403 => ReasonKind::Forbidden,
            503 => ReasonKind::Shutdown,
            504 => ReasonKind::Timeout,
            402 | 404..=499 => ReasonKind::Refused,
            _ => ReasonKind::Unreachable,
        };
        return Err((kind, format!("the upstream answered {status}")));
    }
    let content_type = head.get("content-type").unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("text/event-stream") {
        return Err((
            ReasonKind::Unreachable,
            format!(
                "the upstream answered 200 with content-type '{content_type}', not text/event-stream"
            ),
        ));
    }
    Ok(())
}

impl Future for Relay {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let relay = self.get_mut();
        loop {
            if let Some(step) = relay.poll_subscriber(cx) {
                if let Step::Over = step {
                    relay.phase = Phase::Over;
                    return Poll::Ready(());
                }
                continue;
            }
            let step = match relay.phase {
                Phase::Awaiting { max_event } => relay.poll_awaiting(cx, max_event),
                Phase::Streaming(_) => relay.poll_streaming(cx),
                Phase::Over => Step::Over,
            };
            match step {
                Step::Progress => {}
                Step::Idle => return Poll::Pending,
                Step::Over => {
                    relay.phase = Phase::Over;
                    return Poll::Ready(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use binding_api::ext::http::Header;

    use super::*;

    fn head(status: u16, content_type: &str) -> HttpBeginEx {
        HttpBeginEx::response(
            status,
            [Header::new("content-type", content_type.to_owned())],
        )
    }

    #[test]
    fn only_200_event_streams_are_relayed() {
        assert!(check(&head(200, "text/event-stream")).is_ok());
        assert!(check(&head(200, "Text/Event-Stream; charset=utf-8")).is_ok());
        assert_eq!(
            check(&head(200, "text/html")).unwrap_err().0,
            ReasonKind::Unreachable
        );
        assert_eq!(
            check(&head(404, "text/event-stream")).unwrap_err().0,
            ReasonKind::Refused
        );
        assert_eq!(
            check(&head(401, "")).unwrap_err().0,
            ReasonKind::Unauthorized
        );
        assert_eq!(check(&head(403, "")).unwrap_err().0, ReasonKind::Forbidden);
        assert_eq!(check(&head(400, "")).unwrap_err().0, ReasonKind::Invalid);
        assert_eq!(
            check(&head(500, "")).unwrap_err().0,
            ReasonKind::Unreachable
        );
        assert_eq!(check(&head(503, "")).unwrap_err().0, ReasonKind::Shutdown);
        assert_eq!(check(&head(504, "")).unwrap_err().0, ReasonKind::Timeout);
    }
}

//! The output half of an HTTP/1.1 connection: the front response's frames encoded into the
//! output buffer, and the buffer moved to the network as its credit allows.

use binding_api::frame::{Data, Frame, Reason, ReasonKind, Reset, Window};
use bytes::BytesMut;

use super::{Exchange, H1, Kind};
use crate::dispatch::refusal_head;
use crate::h1::encode::{self, CHUNK_OVERHEAD, ResponseEncoder};

/// Room for a response head: a status line and a few headers; more grows it.
const RESPONSE_HEAD_CAPACITY: usize = 256;

impl H1 {
    /// Gives the front response the network credit not already committed.
    pub(super) fn grant_reply(&mut self) {
        let net_credit = self.net.output.credit();
        let committed = self.outbuf.len() as u64;
        let Some(Exchange {
            kind: Kind::App(app),
            ..
        }) = self.queue.front_mut()
        else {
            return;
        };
        if app.encoder.is_none() || app.done {
            return;
        }
        let room = net_credit.saturating_sub(committed + app.inflight);
        if room > u64::from(CHUNK_OVERHEAD) {
            let credit = u32::try_from(room).unwrap_or(u32::MAX);
            if app
                .input
                .window(Window {
                    credit,
                    padding: CHUNK_OVERHEAD,
                })
                .is_ok()
            {
                app.inflight += u64::from(credit);
            }
        }
    }

    /// Handles a frame of the front response.
    pub(super) fn on_reply(&mut self, frame: Option<Frame>) -> Result<(), ()> {
        let Some(front) = self.queue.front_mut() else {
            return Ok(());
        };
        let (head_request, minor, keep_alive) = (front.head_request, front.minor, front.keep_alive);
        let Kind::App(app) = &mut front.kind else {
            return Ok(());
        };
        let cost = |len: usize| (len as u64 + u64::from(CHUNK_OVERHEAD)).max(1);
        match frame {
            Some(Frame::Begin(begin)) => {
                let (status, headers) = self.shared.response_head(&begin, &app.cors);
                let mut close = !keep_alive;
                // A buffer of its own, freed once written: a response that then streams
                // (events framed once for every connection) holds none for hours.
                let mut head = BytesMut::with_capacity(RESPONSE_HEAD_CAPACITY);
                app.encoder = Some(ResponseEncoder::head(
                    status,
                    &headers,
                    head_request,
                    minor,
                    &mut close,
                    &mut head,
                ));
                self.outbuf.push(head.freeze());
                if close {
                    self.closing = true;
                }
            }
            Some(Frame::Data(data)) => {
                app.inflight = app.inflight.saturating_sub(cost(data.payload.len()));
                if let Some(meter) = &mut app.meter {
                    meter.response_body(data.payload.len());
                }
                let Some(encoder) = &mut app.encoder else {
                    return Err(());
                };
                if encoder
                    .data(&data.payload, &self.chunks, &mut self.outbuf)
                    .is_err()
                {
                    return self.abort("the application sent more than its content-length");
                }
            }
            Some(Frame::Flush(_)) => app.inflight = app.inflight.saturating_sub(cost(0)),
            Some(Frame::End(_)) => {
                let Some(encoder) = &mut app.encoder else {
                    return Err(());
                };
                if encoder.end(self.outbuf.tail()).is_err() {
                    return self.abort("the application ended before its content-length");
                }
                app.done = true;
            }
            Some(Frame::Abort(abort)) if app.encoder.is_none() => {
                let (status, headers) = refusal_head(&abort.reason, &app.output, &app.cors);
                tracing::debug!(binding = %self.shared.name, reason = %abort.reason, status, "refused");
                let close = !keep_alive;
                encode::simple(status, &headers, close, self.outbuf.tail());
                app.done = true;
                let _ = app.output.abort(abort.reason);
                app.discard = true;
            }
            Some(Frame::Abort(abort)) => return self.abort(&abort.reason.to_string()),
            None => return self.abort("the application went away"),
        }
        Ok(())
    }

    /// The application broke off a response already begun: HTTP/1.1 can only close.
    pub(super) fn abort(&mut self, why: &str) -> Result<(), ()> {
        tracing::debug!(binding = %self.shared.name, why, "response aborted: closing the connection");
        self.flush_out();
        let _ = self
            .net
            .output
            .abort(Reason::new(ReasonKind::Refused, why.to_owned()));
        self.net
            .input
            .reset(Reset::new(ReasonKind::Refused, why.to_owned()));
        Err(())
    }

    /// Moves buffered output to the network as far as its credit allows.
    pub(super) fn flush_out(&mut self) {
        loop {
            let credit = self.net.output.credit();
            let Some(chunk) = self
                .outbuf
                .take(usize::try_from(credit).unwrap_or(usize::MAX))
            else {
                break;
            };
            if self.net.output.data(Data::new(chunk)).is_err() {
                self.outbuf.clear();
                break;
            }
        }
        self.grant_reply();
    }
}

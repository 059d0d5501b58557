//! One subscription: events at the interval, as the reply's credit allows, until the count is
//! reached or the subscriber goes away.

use std::sync::Arc;

use binding_api::ext::sse::SseDataEx;
use binding_api::ext::{BeginEx, DataEx};
use binding_api::frame::{Begin, Data, End, Frame, Reason, ReasonKind, Reset};
use binding_api::stream::{Acceptor, Reader};

use crate::schedule::{TickerOptions, first_counter};

/// Serves one subscription.
pub(crate) async fn serve(stream: Acceptor, options: Arc<TickerOptions>) {
    let Acceptor {
        begin,
        input: mut initial,
        output: mut reply,
    } = stream;
    let BeginEx::Sse(subscription) = begin.ext else {
        initial.reset(Reset::new(ReasonKind::Refused, "ticker takes sse streams"));
        let _ = reply.abort(Reason::new(ReasonKind::Refused, "ticker takes sse streams"));
        return;
    };
    let mut counter = first_counter(subscription.last_event_id.as_deref());
    tracing::debug!(path = %subscription.path, counter, "ticker: subscribed");
    if reply.begin(Begin::default()).is_err() {
        return;
    }
    let mut sent = 0u64;
    loop {
        if options.is_over(counter) || options.batch.is_some_and(|batch| sent >= batch) {
            let _ = reply.end(End::default());
            return;
        }
        let payload = options.render(counter);
        tokio::select! {
            biased;
            () = closed(&mut initial) => return,
            ready = reply.ready(payload.len()) => if ready.is_err() {
                return;
            },
        }
        let data = Data {
            payload: payload.into(),
            ext: DataEx::Sse(SseDataEx {
                id: Some(counter.to_string().into()),
                event_type: options.event_type.clone(),
                timestamp: None,
                continues: false,
            }),
        };
        if reply.data(data).is_err() {
            return;
        }
        counter = counter.saturating_add(1);
        sent += 1;
        tokio::select! {
            biased;
            () = closed(&mut initial) => return,
            () = tokio::time::sleep(options.interval) => {}
        }
    }
}

/// Returns when the subscriber is gone: the initial direction ended, aborted or was reset.
async fn closed(initial: &mut Reader) {
    while let Some(frame) = initial.frame().await {
        if matches!(frame, Frame::End(_) | Frame::Abort(_)) {
            return;
        }
    }
}

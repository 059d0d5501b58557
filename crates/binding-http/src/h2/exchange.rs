//! One HTTP/2 request: its stream to the application, body both ways with credit.

use std::future::poll_fn;
use std::sync::Arc;

use binding_api::binding::Worker;
use binding_api::ext::http::Header;
use binding_api::frame::{Data, End, Frame, Reason, ReasonKind, Reset, Window};
use binding_api::stream::{Reader, Writer};
use bytes::Bytes;
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};

use crate::dispatch::{Dispatch, Shared, refusal_status};
use crate::request::{HOP_BY_HOP, RequestHead};

/// Credit granted to the application's reply: what may wait to be sent on one stream.
const REPLY_WINDOW: u32 = 64 * 1024;

/// Serves one request until its response is complete or reset.
pub(crate) async fn run(
    shared: Arc<Shared>,
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    worker: Worker,
    scheme: &'static str,
) {
    let (parts, body) = request.into_parts();
    let head = head(&parts, scheme, !body.is_end_stream());
    let dispatch = shared.dispatch(&head, &worker);
    // The request's headers are not kept for the life of the exchange.
    drop((parts, head));
    match dispatch {
        Dispatch::Local { status, headers } => {
            let _ = respond.send_response(response(status, &headers), true);
        }
        Dispatch::App { stream, cors } => {
            let mut initial = stream.output;
            let mut reply = stream.input;
            let aborted = {
                let request_body = forward_body(body, &mut initial);
                let response = forward_response(&shared, &mut reply, respond, &cors);
                tokio::pin!(request_body, response);
                let mut body_done = false;
                let aborted = loop {
                    tokio::select! {
                        () = &mut request_body, if !body_done => body_done = true,
                        aborted = &mut response => break aborted,
                    }
                };
                // A response that ended lets the body finish; one that was reset or aborted
                // stops reading it (dropping the body releases its window).
                if aborted.is_none() && !body_done {
                    request_body.await;
                }
                aborted
            };
            if let Some(reason) = aborted {
                let _ = initial.abort(reason);
            }
        }
    }
}

fn head(parts: &http::request::Parts, scheme: &'static str, has_body: bool) -> RequestHead {
    let uri = &parts.uri;
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            parts
                .headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let headers = parts
        .headers
        .iter()
        .filter(|(name, _)| !HOP_BY_HOP.contains(&name.as_str()) && *name != http::header::HOST)
        .map(|(name, value)| {
            Header::new(
                name.as_str().to_owned(),
                Bytes::copy_from_slice(value.as_bytes()),
            )
        })
        .collect();
    RequestHead {
        method: parts.method.as_str().to_owned(),
        scheme: uri.scheme_str().unwrap_or(scheme).to_owned(),
        authority,
        path: uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        headers,
        h1_minor: None,
        keep_alive: true,
        expect_continue: false,
        h2c_settings: None,
        has_body,
    }
}

fn response(status: u16, headers: &[Header]) -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let map = response.headers_mut();
    for header in headers {
        if header.name.starts_with(':') || HOP_BY_HOP.contains(&header.name.as_str()) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(header.name.as_bytes()),
            HeaderValue::from_bytes(&header.value),
        ) {
            map.append(name, value);
        }
    }
    response
}

/// The client's body to the application, no faster than the application grants credit; the
/// HTTP/2 window is released only as bytes are passed on.
async fn forward_body(mut body: RecvStream, initial: &mut Writer) {
    while let Some(chunk) = body.data().await {
        let mut chunk = match chunk {
            Ok(chunk) => chunk,
            Err(err) => {
                let _ = initial.abort(Reason::new(ReasonKind::ConnectionLost, err.to_string()));
                return;
            }
        };
        let len = chunk.len();
        while !chunk.is_empty() {
            if initial.ready(1).await.is_err() {
                // The application will not read the body: drop the rest.
                let _ = body.flow_control().release_capacity(len);
                drain(body).await;
                return;
            }
            let room = initial
                .credit()
                .saturating_sub(u64::from(initial.padding()));
            let n = chunk.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            if initial.data(Data::new(chunk.split_to(n))).is_err() {
                drain(body).await;
                return;
            }
        }
        let _ = body.flow_control().release_capacity(len);
    }
    let _ = initial.end(End::default());
}

/// Reads and drops the rest of a body, releasing its window.
async fn drain(mut body: RecvStream) {
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
    }
}

/// The application's reply to the client. Returns a reason when the client reset the stream,
/// for the request direction to be aborted too.
async fn forward_response(
    shared: &Shared,
    reply: &mut Reader,
    mut respond: SendResponse<Bytes>,
    cors: &[Header],
) -> Option<Reason> {
    let lost = |why: String| Some(Reason::new(ReasonKind::ConnectionLost, why));
    let frame = tokio::select! {
        frame = reply.frame() => frame,
        reason = poll_fn(|cx| respond.poll_reset(cx)) => {
            reply.reset(Reset::new(ReasonKind::ConnectionLost, "the client reset the stream"));
            return lost(format!("client reset: {reason:?}"));
        }
    };
    let begin = match frame {
        Some(Frame::Begin(begin)) => begin,
        Some(Frame::Abort(abort)) => {
            let mut headers = cors.to_vec();
            let status = refusal_status(&abort.reason);
            if status == 503 {
                headers.push(Header::new("retry-after", "1"));
            }
            let _ = respond.send_response(response(status, &headers), true);
            return Some(abort.reason);
        }
        _ => {
            respond.send_reset(h2::Reason::INTERNAL_ERROR);
            return lost("the application replied without a begin".into());
        }
    };
    let (status, headers) = shared.response_head(&begin, cors);
    let mut send = match respond.send_response(response(status, &headers), false) {
        Ok(send) => send,
        Err(err) => {
            reply.reset(Reset::new(ReasonKind::ConnectionLost, err.to_string()));
            return lost(err.to_string());
        }
    };
    if reply
        .window(Window {
            credit: REPLY_WINDOW,
            padding: 0,
        })
        .is_err()
    {
        return None;
    }
    loop {
        let frame = tokio::select! {
            frame = reply.frame() => frame,
            reason = poll_fn(|cx| send.poll_reset(cx)) => {
                reply.reset(Reset::new(ReasonKind::ConnectionLost, "the client reset the stream"));
                return lost(format!("client reset: {reason:?}"));
            }
        };
        match frame {
            Some(Frame::Data(data)) => {
                if let Err(err) = send_data(&mut send, data.payload).await {
                    reply.reset(Reset::new(ReasonKind::ConnectionLost, err));
                    return lost("the client went away".into());
                }
                reply.replenish();
            }
            Some(Frame::Flush(_)) => reply.replenish(),
            Some(Frame::End(_)) => {
                let _ = send.send_data(Bytes::new(), true);
                return None;
            }
            Some(Frame::Abort(abort)) => {
                send.send_reset(h2::Reason::INTERNAL_ERROR);
                return Some(abort.reason);
            }
            Some(Frame::Begin(_)) | None => {
                send.send_reset(h2::Reason::INTERNAL_ERROR);
                return lost("the application went away".into());
            }
        }
    }
}

/// Sends `payload` as the client's window allows.
async fn send_data(send: &mut SendStream<Bytes>, mut payload: Bytes) -> Result<(), String> {
    while !payload.is_empty() {
        send.reserve_capacity(payload.len());
        let capacity = match poll_fn(|cx| send.poll_capacity(cx)).await {
            Some(Ok(capacity)) => capacity,
            Some(Err(err)) => return Err(err.to_string()),
            None => return Err("stream closed".into()),
        };
        if capacity == 0 {
            continue;
        }
        let chunk = payload.split_to(capacity.min(payload.len()));
        send.send_data(chunk, false).map_err(|e| e.to_string())?;
    }
    Ok(())
}

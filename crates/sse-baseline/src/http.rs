//! The HTTP routes: `GET /events[/{key}]`, `POST /publish?key=K`, `POST /publish-stream`.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode, header};

use crate::hub::{Closed, Hub, Live};

/// The largest body of `POST /publish` and the longest line of `POST /publish-stream`.
pub const MAX_EVENT: usize = 1 << 20;
/// Live events already queued are coalesced into one write of at most this many bytes.
const MAX_WRITE: usize = 64 * 1024;

/// The response body type of every route.
pub type Body = BoxBody<Bytes, hyper::Error>;

/// Serves one request.
pub async fn route(hub: Arc<Hub>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path();
    let response = match (req.method(), path) {
        (&Method::GET, "/events") => events(&hub, None, &req),
        (&Method::GET, p) if p.starts_with("/events/") && p.len() > "/events/".len() => {
            let key = percent_decode(&p.as_bytes()["/events/".len()..]);
            events(&hub, Some(&key), &req)
        }
        (&Method::POST, "/publish") => {
            let key = req
                .uri()
                .query()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("key=")))
                .map(|k| percent_decode(k.as_bytes()));
            match key {
                None => status(StatusCode::BAD_REQUEST, "missing ?key=\n"),
                Some(key) => publish(&hub, &key, req.into_body()).await,
            }
        }
        (&Method::POST, "/publish-stream") => publish_stream(&hub, req.into_body()).await,
        (_, "/events" | "/publish" | "/publish-stream") => {
            status(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => status(StatusCode::NOT_FOUND, "not found\n"),
    };
    Ok(response)
}

fn status(code: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(full(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = code;
    response
}

fn full(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

fn events(hub: &Arc<Hub>, key: Option<&[u8]>, req: &Request<Incoming>) -> Response<Body> {
    let last_id = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let sub = hub.subscribe(key, last_id);
    let backlog = if sub.backlog.is_empty() {
        None
    } else {
        Some(sub.backlog.concat().into())
    };
    let stream = futures_util::stream::unfold((backlog, sub.live), |(backlog, mut live)| async {
        if let Some(bytes) = backlog {
            return Some((Ok(Frame::data(bytes)), (None, live)));
        }
        let first = live.recv().await.ok()?;
        Some((Ok(Frame::data(coalesce(first, &mut live))), (None, live)))
    });
    let mut response = Response::new(StreamBody::new(stream).boxed());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    response
}

/// Appends the events already queued (up to [`MAX_WRITE`] bytes) to `first`, so a burst costs
/// one write instead of one per event. A lagged receiver ends the stream at its next `recv`.
fn coalesce(first: Bytes, live: &mut Live) -> Bytes {
    let mut out: Option<BytesMut> = None;
    while out.as_ref().map_or(first.len(), BytesMut::len) < MAX_WRITE {
        match live.try_recv() {
            Some(Ok(frame)) => out
                .get_or_insert_with(|| BytesMut::from(&first[..]))
                .extend_from_slice(&frame),
            Some(Err(Closed::Lagged | Closed::Gone)) | None => break,
        }
    }
    out.map_or(first, BytesMut::freeze)
}

async fn publish(hub: &Hub, key: &[u8], body: Incoming) -> Response<Body> {
    match Limited::new(body, MAX_EVENT).collect().await {
        Ok(data) => {
            let seq = hub.publish(key, &data.to_bytes());
            let mut response = Response::new(full(Bytes::from(format!("{seq}\n"))));
            *response.status_mut() = StatusCode::OK;
            response
        }
        Err(_) => status(StatusCode::PAYLOAD_TOO_LARGE, "body too large or broken\n"),
    }
}

/// Publishes each `key\tdata\n` line of a (chunked, long-lived) body as it arrives.
async fn publish_stream(hub: &Hub, mut body: Incoming) -> Response<Body> {
    let mut pending = BytesMut::new();
    let mut count = 0u64;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return status(StatusCode::BAD_REQUEST, "broken body\n");
        };
        let Ok(mut data) = frame.into_data() else {
            continue;
        };
        while data.has_remaining() {
            let chunk = data.chunk();
            let n = chunk.len();
            pending.extend_from_slice(chunk);
            data.advance(n);
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let line = pending.split_to(end + 1);
                count += u64::from(publish_line(hub, &line[..end]));
            }
            if pending.len() > MAX_EVENT {
                return status(StatusCode::PAYLOAD_TOO_LARGE, "line too long\n");
            }
        }
    }
    if !pending.is_empty() {
        count += u64::from(publish_line(hub, &pending));
    }
    Response::new(full(Bytes::from(format!("{count}\n"))))
}

fn publish_line(hub: &Hub, line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match line.iter().position(|&b| b == b'\t') {
        Some(tab) => {
            hub.publish(&line[..tab], &line[tab + 1..]);
            true
        }
        None => false,
    }
}

/// Decodes `%XX` escapes; anything malformed is kept as is.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (input[i], input.get(i + 1), input.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push(((hex(h).unwrap_or(0) << 4) | hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_decode(b"a%2Fb%zz%4"), b"a/b%zz%4");
    }
}

//! HTTP/1.1 subscribers: a hand-written request, `httparse` for the response head, then the
//! body (chunked, sized, or until close) straight into the SSE parser from one small buffer.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::chunked::Chunked;
use crate::subscriber::{ConnectedGuard, Ctx, Outcome, Phase, Subscriber, backoff, stopped};

/// Read buffer per connection at first (an idle subscriber keeps this little)...
const BUFFER: usize = 2048;
/// ... doubled, up to this, each time a read fills it (a busy one reads in fewer calls).
const MAX_BUFFER: usize = 64 * 1024;

/// Runs one subscriber until the run stops; returns it for the final accounting.
pub async fn run(mut sub: Subscriber, ctx: Arc<Ctx>) -> Subscriber {
    let mut phase = ctx.phase.clone();
    let mut stop = ctx.phase.clone();
    let mut delay = Duration::from_millis(50);
    loop {
        if *phase.borrow_and_update() == Phase::Stop {
            break;
        }
        // Also stops a connection attempt that hangs (or waits for its turn) at the end.
        let outcome = tokio::select! {
            outcome = session(&mut sub, &ctx, &mut phase) => outcome,
            () = stopped(&mut stop) => Outcome::Stop,
        };
        match outcome {
            Outcome::Stop => break,
            Outcome::Dropped => delay = Duration::from_millis(50),
            Outcome::Failed => {
                ctx.stats.errors.fetch_add(1, Relaxed);
                if backoff(delay, &mut phase).await {
                    break;
                }
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
    sub
}

async fn session(
    sub: &mut Subscriber,
    ctx: &Ctx,
    phase: &mut tokio::sync::watch::Receiver<Phase>,
) -> Outcome {
    let Ok(permit) = ctx.connecting.acquire().await else {
        return Outcome::Stop;
    };
    let Ok(tcp) = ctx.net.connect(sub.index).await else {
        return Outcome::Failed;
    };
    match &ctx.net.tls {
        None => exchange(tcp, sub, ctx, phase, permit).await,
        Some((connector, name)) => match connector.connect(name.clone(), tcp).await {
            Ok(tls) => exchange(tls, sub, ctx, phase, permit).await,
            Err(_) => Outcome::Failed,
        },
    }
}

enum Body {
    Chunked(Chunked),
    Length(u64),
    Close,
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    sub: &mut Subscriber,
    ctx: &Ctx,
    phase: &mut tokio::sync::watch::Receiver<Phase>,
    permit: tokio::sync::SemaphorePermit<'_>,
) -> Outcome {
    let mut request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n",
        ctx.path(sub),
        ctx.template.authority
    );
    if let Ok(id) = std::str::from_utf8(sub.parser.last_id())
        && !id.is_empty()
    {
        let _ = write!(request, "Last-Event-ID: {id}\r\n");
    }
    for (name, value) in &ctx.headers {
        let _ = write!(request, "{name}: {value}\r\n");
    }
    request.push_str("\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return Outcome::Failed;
    }
    drop(request);

    let mut buf = vec![0u8; BUFFER];
    let mut filled = 0;
    let (head_len, mut body) = loop {
        let read = tokio::select! {
            read = stream.read(&mut buf[filled..]) => read,
            changed = phase.changed() => {
                // A new epoch does not concern a connection still being made.
                if changed.is_err() || *phase.borrow_and_update() == Phase::Stop {
                    return Outcome::Stop;
                }
                continue;
            }
        };
        match read {
            Ok(0) | Err(_) => return Outcome::Failed,
            Ok(n) => filled += n,
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf[..filled]) {
            Ok(httparse::Status::Complete(len)) => {
                if response.code != Some(200) {
                    return Outcome::Failed;
                }
                break (len, body_kind(response.headers));
            }
            Ok(httparse::Status::Partial) if filled < buf.len() => {}
            _ => return Outcome::Failed,
        }
    };
    drop(permit);
    let epoch = match *phase.borrow_and_update() {
        Phase::Run { epoch } => epoch,
        Phase::Stop => return Outcome::Stop,
    };
    sub.connected(epoch, &ctx.stats);
    let _open = ConnectedGuard::new(&ctx.stats);

    let mut start = head_len;
    loop {
        if !feed_body(&mut body, &buf[start..filled], sub, ctx) {
            return Outcome::Failed;
        }
        if matches!(&body, Body::Chunked(c) if c.is_done()) || matches!(body, Body::Length(0)) {
            // The server ended the stream.
            return Outcome::Failed;
        }
        start = 0;
        if filled == buf.len() && buf.len() < MAX_BUFFER {
            buf.resize(buf.len() * 2, 0);
        }
        filled = loop {
            tokio::select! {
                read = stream.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return Outcome::Failed,
                    Ok(n) => break n,
                },
                changed = phase.changed() => {
                    if changed.is_err() {
                        return Outcome::Stop;
                    }
                    if let Some(outcome) = sub.told_to_leave(*phase.borrow_and_update()) {
                        return outcome;
                    }
                }
            }
        };
    }
}

fn body_kind(headers: &[httparse::Header<'_>]) -> Body {
    let mut kind = Body::Close;
    for h in headers {
        if h.name.eq_ignore_ascii_case("transfer-encoding")
            && h.value.to_ascii_lowercase().ends_with(b"chunked")
        {
            return Body::Chunked(Chunked::default());
        }
        if h.name.eq_ignore_ascii_case("content-length")
            && let Some(n) = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
        {
            kind = Body::Length(n);
        }
    }
    kind
}

/// Feeds body bytes to the subscriber; false when the body or the events are malformed.
fn feed_body(body: &mut Body, bytes: &[u8], sub: &mut Subscriber, ctx: &Ctx) -> bool {
    match body {
        Body::Close => sub.feed(bytes, &ctx.stats).is_ok(),
        Body::Length(left) => {
            let n = usize::try_from(*left)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            *left -= n as u64;
            sub.feed(&bytes[..n], &ctx.stats).is_ok()
        }
        Body::Chunked(decoder) => {
            matches!(
                decoder.decode(bytes, &mut |d| sub.feed(d, &ctx.stats)),
                Ok(Ok(()))
            )
        }
    }
}

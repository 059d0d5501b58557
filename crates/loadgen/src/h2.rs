//! HTTP/2 subscribers (h2c with prior knowledge, or h2 over TLS): `--streams-per-conn`
//! subscribers share one connection, each its own stream.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use h2::client::SendRequest;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use crate::subscriber::{ConnectedGuard, Ctx, Outcome, Phase, Subscriber, backoff, stopped};

/// Runs the subscribers sharing connection `conn` until the run stops; returns them.
pub async fn run_group(mut subs: Vec<Subscriber>, conn: usize, ctx: Arc<Ctx>) -> Vec<Subscriber> {
    let mut phase = ctx.phase.clone();
    let mut stop = ctx.phase.clone();
    let mut delay = Duration::from_millis(50);
    loop {
        if *phase.borrow_and_update() == Phase::Stop {
            break;
        }
        // Also stops a connection attempt that hangs (or waits for its turn) at the end.
        let outcome = tokio::select! {
            outcome = session(&mut subs, conn, &ctx, &mut phase) => outcome,
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
    subs
}

async fn session(
    subs: &mut [Subscriber],
    conn: usize,
    ctx: &Ctx,
    phase: &mut watch::Receiver<Phase>,
) -> Outcome {
    let Ok(permit) = ctx.connecting.acquire().await else {
        return Outcome::Stop;
    };
    let Ok(tcp) = ctx.net.connect(conn).await else {
        return Outcome::Failed;
    };
    let client = match &ctx.net.tls {
        None => handshake(tcp).await,
        Some((connector, name)) => match connector.connect(name.clone(), tcp).await {
            Ok(tls) => handshake(tls).await,
            Err(_) => None,
        },
    };
    drop(permit);
    let Some((client, _driver)) = client else {
        return Outcome::Failed;
    };
    let epoch = match *phase.borrow_and_update() {
        Phase::Run { epoch } => epoch,
        Phase::Stop => return Outcome::Stop,
    };
    let mut streams: FuturesUnordered<_> = subs
        .iter_mut()
        .map(|sub| stream(client.clone(), sub, ctx, epoch))
        .collect();
    loop {
        tokio::select! {
            // A stream only returns when the connection is unusable.
            _ = streams.next() => return Outcome::Failed,
            changed = phase.changed() => {
                if changed.is_err() {
                    return Outcome::Stop;
                }
                match *phase.borrow_and_update() {
                    Phase::Stop => return Outcome::Stop,
                    Phase::Run { epoch: now } if now > epoch => return Outcome::Dropped,
                    Phase::Run { .. } => {}
                }
            }
        }
    }
}

/// Aborts the connection's driver task when the session ends.
struct Driver(tokio::task::JoinHandle<()>);

impl Drop for Driver {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn handshake<S>(io: S) -> Option<(SendRequest<Bytes>, Driver)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (client, connection) = h2::client::Builder::new()
        .initial_window_size(1 << 20)
        .initial_connection_window_size(8 << 20)
        .handshake::<_, Bytes>(io)
        .await
        .ok()?;
    let driver = tokio::spawn(async move {
        // Its end shows up as errors on the streams.
        let _ = connection.await;
    });
    Some((client, Driver(driver)))
}

/// One subscriber's stream on a shared connection; re-requests after a stream-level failure and
/// returns only when the connection itself is unusable.
async fn stream(client: SendRequest<Bytes>, sub: &mut Subscriber, ctx: &Ctx, epoch: u32) {
    let scheme = if ctx.template.tls { "https" } else { "http" };
    let mut delay = Duration::from_millis(50);
    loop {
        let Ok(mut ready) = client.clone().ready().await else {
            return;
        };
        let uri = format!("{scheme}://{}{}", ctx.template.authority, ctx.path(sub));
        let mut builder = http::Request::get(uri).header("accept", "text/event-stream");
        if !sub.parser.last_id().is_empty() {
            builder = builder.header("last-event-id", sub.parser.last_id());
        }
        for (name, value) in &ctx.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let Ok(request) = builder.body(()) else {
            return;
        };
        let Ok((response, _)) = ready.send_request(request, true) else {
            return;
        };
        if let Ok(response) = response.await
            && response.status() == http::StatusCode::OK
        {
            sub.connected(epoch, &ctx.stats);
            let _open = ConnectedGuard::new(&ctx.stats);
            let mut body = response.into_body();
            while let Some(Ok(chunk)) = body.data().await {
                let _ = body.flow_control().release_capacity(chunk.len());
                if sub.feed(&chunk, &ctx.stats).is_err() {
                    break;
                }
            }
        }
        ctx.stats.errors.fetch_add(1, Relaxed);
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

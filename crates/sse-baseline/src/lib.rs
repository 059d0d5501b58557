//! `sse-baseline`: a plain Server-Sent Events broadcaster built on hyper 1 and tokio, with no
//! Kafka. It is the near-limit reference the benchmarks compare zilla-rs with: whatever it does,
//! it does the cheapest honest way hyper and tokio allow.
//!
//! Routes (HTTP/1.1, and h2c with prior knowledge, on one port):
//! - `GET /events/{key}`: the events published to `key`, as `text/event-stream`;
//!   `GET /events`: the events of every key. Each event carries `id: <seq>` (a global sequence);
//!   a `Last-Event-ID` header replays the newer events still in the bounded history first.
//! - `POST /publish?key=K`: publishes the body as one event to `K`; answers its `seq`.
//! - `POST /publish-stream`: a long-lived (chunked) body of `key\tdata\n` lines, each published
//!   as it arrives; answers the count at the end.
//!
//! Each key (and the all-stream) is a bounded `tokio::sync::broadcast` channel: a subscriber that
//! falls more than `--channel-capacity` events behind is disconnected.
//!
//! ```text
//! sse-baseline --listen 127.0.0.1:7200 --workers 2 &
//! curl -N http://127.0.0.1:7200/events/k1 &
//! curl -d 'hello' 'http://127.0.0.1:7200/publish?key=k1'
//! ```
//! The first line on stdout is `listening on ADDR` (useful with port 0).

mod http;
mod hub;

use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::hub::Hub;
pub use crate::hub::HubLimits;

/// Serves the routes on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, limits: HubLimits) {
    let hub = Hub::new(limits);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http2().max_concurrent_streams(100_000);
    let builder = Arc::new(builder);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE and friends: back off briefly rather than spin.
                eprintln!("sse-baseline: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let hub = Arc::clone(&hub);
        let builder = Arc::clone(&builder);
        tokio::spawn(async move {
            let service = service_fn(move |req| http::route(Arc::clone(&hub), req));
            // A client going away mid-stream is normal here.
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

//! HTTP/2 with the `h2` crate, run directly over the connection's network stream
//! ([`io::NetIo`]: `AsyncRead + AsyncWrite` over its two directions, with their credit).

mod exchange;
pub(crate) mod io;
pub(crate) mod upgrade;

use std::sync::Arc;

use binding_api::binding::Worker;
use bytes::Bytes;

use self::io::NetIo;
use crate::dispatch::Shared;
use crate::net::Net;
use crate::request::RequestHead;

/// The client connection preface.
pub(crate) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What `h2` may buffer to send, per connection.
const MAX_SEND_BUFFER: usize = 64 * 1024;

/// Runs an HTTP/2 connection. `prefix`: bytes already read from the network. `upgrade`: the
/// HTTP/1.1 request that asked for `h2c`, to answer on stream 1.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    net: Net,
    worker: Worker,
    prefix: Bytes,
    upgrade: Option<Box<RequestHead>>,
    scheme: &'static str,
) {
    let splice = upgrade.map(|head| upgrade::Splice::new(*head));
    run_connection(shared, NetIo::new(net, prefix, splice), worker, scheme).await;
}

async fn run_connection(shared: Arc<Shared>, io: NetIo, worker: Worker, scheme: &'static str) {
    let limits = &shared.options.limits;
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(limits.concurrent_streams)
        .max_header_list_size(limits.head.max_header_list as u32)
        .max_frame_size(limits.max_frame_size)
        .initial_window_size(limits.initial_window_size)
        .max_send_buffer_size(MAX_SEND_BUFFER)
        .max_pending_accept_reset_streams(limits.max_pending_accept_reset_streams)
        .max_local_error_reset_streams(Some(limits.max_local_error_reset_streams));
    // The client's preface and SETTINGS must come within the head timeout, as a head must.
    let timeout = tokio::time::sleep(limits.request_header_timeout);
    let mut connection = tokio::select! {
        handshake = builder.handshake::<_, Bytes>(io) => match handshake {
            Ok(connection) => connection,
            Err(err) => {
                tracing::debug!(binding = %shared.name, %err, "h2 handshake failed");
                return;
            }
        },
        _ = timeout => {
            tracing::debug!(binding = %shared.name, "h2 preface timeout: closing");
            return;
        }
    };
    let shutdown = worker.shutdown().clone();
    // A reload that replaces the binding drains its connections as shutdown does: `GOAWAY`,
    // the streams open run on, the client opens its next ones on a new connection.
    let mut retired = shared.retirement.watch(&worker);
    let mut draining = false;
    loop {
        let accepted = tokio::select! {
            accepted = connection.accept() => accepted,
            _ = shutdown.cancelled(), if !draining => {
                draining = true;
                connection.graceful_shutdown();
                continue;
            }
            _ = std::future::poll_fn(|cx| retired.poll(cx)), if !draining => {
                tracing::debug!(binding = %shared.name, "retired by a reload: GOAWAY");
                draining = true;
                connection.graceful_shutdown();
                continue;
            }
        };
        match accepted {
            Some(Ok((request, respond))) => {
                if let Some(exchange) =
                    exchange::start(shared.clone(), request, respond, &worker, scheme)
                {
                    worker.spawn(exchange);
                }
            }
            Some(Err(err)) => {
                tracing::debug!(binding = %shared.name, %err, "h2 connection error");
                break;
            }
            None => break,
        }
    }
}

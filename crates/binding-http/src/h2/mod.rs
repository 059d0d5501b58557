//! HTTP/2 with the `h2` crate, run over an in-memory duplex transport.
//!
//! `h2` wants `AsyncRead + AsyncWrite`; a connection here is a stream of frames. Two pumps
//! bridge them: the network's data frames are written into one end of a
//! [`tokio::io::duplex`] and their credit returned only once the duplex took them; what
//! `h2` writes is read from the duplex no faster than the network grants credit. The duplex
//! buffer bounds what a connection holds in either direction.

mod exchange;
pub(crate) mod upgrade;

use std::sync::Arc;

use binding_api::binding::Worker;
use binding_api::frame::{Data, End, Frame};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio_util::sync::CancellationToken;

use crate::dispatch::Shared;
use crate::net::Net;
use crate::request::RequestHead;

/// The client connection preface.
pub(crate) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Bytes the duplex holds each way.
const DUPLEX_CAPACITY: usize = 64 * 1024;

/// Largest data frame sent to the network.
const MAX_WRITE: u64 = 16 * 1024;

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
    let Net { input, output } = net;
    let (ours, theirs) = tokio::io::duplex(DUPLEX_CAPACITY);
    let (from_h2, to_h2) = tokio::io::split(ours);
    let stop = CancellationToken::new();
    let inbound = pump_in(input, to_h2, prefix, upgrade, stop.clone());
    let outbound = async {
        pump_out(from_h2, output).await;
        stop.cancel();
    };
    let connection = run_connection(shared, theirs, worker, scheme, stop.clone());
    tokio::join!(inbound, outbound, connection);
}

async fn run_connection(
    shared: Arc<Shared>,
    io: DuplexStream,
    worker: Worker,
    scheme: &'static str,
    stop: CancellationToken,
) {
    let limits = &shared.options.limits;
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(limits.concurrent_streams)
        .max_header_list_size(limits.head.max_header_list as u32)
        .max_frame_size(limits.max_frame_size)
        .initial_window_size(limits.initial_window_size)
        .max_send_buffer_size(DUPLEX_CAPACITY)
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
        _ = stop.cancelled() => return,
    };
    let shutdown = worker.shutdown().clone();
    let mut draining = false;
    loop {
        let accepted = tokio::select! {
            accepted = connection.accept() => accepted,
            _ = shutdown.cancelled(), if !draining => {
                draining = true;
                connection.graceful_shutdown();
                continue;
            }
        };
        match accepted {
            Some(Ok((request, respond))) => {
                let shared = shared.clone();
                let w = worker.clone();
                worker.spawn(exchange::run(shared, request, respond, w, scheme));
            }
            Some(Err(err)) => {
                tracing::debug!(binding = %shared.name, %err, "h2 connection error");
                break;
            }
            None => break,
        }
    }
}

/// Network data frames into the duplex; credit back once the duplex took them.
async fn pump_in(
    mut input: binding_api::stream::Reader,
    mut to_h2: WriteHalf<DuplexStream>,
    prefix: Bytes,
    upgrade: Option<Box<RequestHead>>,
    stop: CancellationToken,
) {
    let mut splice = upgrade.map(|head| upgrade::Splice::new(*head));
    let mut pending = BytesMut::from(&prefix[..]);
    loop {
        if !pending.is_empty() {
            let bytes = match &mut splice {
                Some(s) => match s.feed(&mut pending) {
                    Ok(Some(bytes)) => {
                        splice = None;
                        bytes
                    }
                    Ok(None) => Bytes::new(),
                    Err(err) => {
                        tracing::debug!(%err, "h2c upgrade: bad client preface");
                        break;
                    }
                },
                None => pending.split().freeze(),
            };
            if !bytes.is_empty() && to_h2.write_all(&bytes).await.is_err() {
                break;
            }
        }
        input.replenish();
        let frame = tokio::select! {
            frame = input.frame() => frame,
            _ = stop.cancelled() => break,
        };
        match frame {
            Some(Frame::Data(data)) => pending.extend_from_slice(&data.payload),
            Some(Frame::Begin(_) | Frame::Flush(_)) => {}
            Some(Frame::End(_) | Frame::Abort(_)) | None => break,
        }
    }
    let _ = to_h2.shutdown().await;
}

/// What `h2` writes, out to the network as its credit allows.
async fn pump_out(mut from_h2: ReadHalf<DuplexStream>, mut output: binding_api::stream::Writer) {
    loop {
        if output.ready(1).await.is_err() {
            return;
        }
        let room = output.credit().min(MAX_WRITE) as usize;
        let mut buf = BytesMut::with_capacity(room);
        match (&mut from_h2).take(room as u64).read_buf(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = output.end(End::default());
                return;
            }
            Ok(_) => {
                if output.data(Data::new(buf.freeze())).is_err() {
                    return;
                }
            }
        }
    }
}

//! Moving bytes between a socket and a stream direction, with credit.

use std::io::{self, IoSlice};

use binding_api::frame::{Data, End, Frame, Reason, ReasonKind, Reset, Window};
use binding_api::stream::{Reader, Writer, WriterEvent};
use bytes::{Buf, Bytes, BytesMut};
use socket2::SockRef;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Largest single read from a socket.
const MAX_READ: u64 = 64 * 1024;

/// Most bytes gathered from queued frames for one write.
const MAX_WRITE: usize = 64 * 1024;
/// Most buffers in one write.
const MAX_SLICES: usize = 64;

/// Credit granted to the direction that writes to the socket: what may wait to be written.
pub(crate) const WRITE_WINDOW: u32 = 64 * 1024;

/// How a pump finished.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The direction ended cleanly.
    Ended,
    /// The application reset the direction: it will read no more.
    Refused,
    /// The direction failed: the whole connection should close abruptly.
    Failed,
}

/// Reads the socket into `writer`, never reading more than the writer's credit allows: with
/// no credit the socket is not read, and TCP pushes back on the peer.
///
/// On `stop` (engine shutdown) the direction is ended cleanly; on `kill` it is aborted.
pub(crate) async fn socket_to_stream(
    socket: &TcpStream,
    writer: &mut Writer,
    stop: &CancellationToken,
    kill: &CancellationToken,
) -> Outcome {
    loop {
        tokio::select! {
            biased;
            _ = kill.cancelled() => {
                let _ = writer.abort(Reason::new(ReasonKind::ConnectionLost, "connection closed"));
                return Outcome::Failed;
            }
            _ = stop.cancelled() => {
                let _ = writer.end(End::default());
                return Outcome::Ended;
            }
            ready = writer.ready(1) => if ready.is_err() {
                // The application refused the stream or stopped reading it.
                return Outcome::Refused;
            },
        }
        tokio::select! {
            biased;
            _ = kill.cancelled() => continue,
            _ = stop.cancelled() => continue,
            event = writer.event() => {
                if let WriterEvent::Reset(_) = event {
                    return Outcome::Refused;
                }
                continue;
            }
            readable = socket.readable() => if let Err(err) = readable {
                return abort(writer, &err);
            },
        }
        let room = writer.credit().saturating_sub(u64::from(writer.padding()));
        let mut buf = BytesMut::with_capacity(room.clamp(1, MAX_READ) as usize);
        match socket.try_read_buf(&mut buf) {
            Ok(0) => {
                let _ = writer.end(End::default());
                return Outcome::Ended;
            }
            Ok(_) => {
                if writer.data(Data::new(buf.freeze())).is_err() {
                    return Outcome::Refused;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => return abort(writer, &err),
        }
    }
}

fn abort(writer: &mut Writer, err: &io::Error) -> Outcome {
    let _ = writer.abort(Reason::new(ReasonKind::ConnectionLost, err.to_string()));
    Outcome::Failed
}

/// Writes what `reader` receives to the socket, granting credit back as bytes leave.
///
/// End shuts the socket's write side; abort, or a socket error, fails the connection. When the
/// application refuses the other direction (`refused`) before this one has begun, nothing will
/// ever be written either, and the connection fails, as in Zilla.
pub(crate) async fn stream_to_socket(
    socket: &TcpStream,
    reader: &mut Reader,
    mut begun: bool,
    refused: &CancellationToken,
    kill: &CancellationToken,
) -> Outcome {
    if reader
        .window(Window {
            credit: WRITE_WINDOW,
            padding: 0,
        })
        .is_err()
    {
        return Outcome::Failed;
    }
    // A frame taken while gathering a write, handled next.
    let mut next = None;
    loop {
        let frame = if let Some(frame) = next.take() {
            Some(frame)
        } else {
            tokio::select! {
            biased;
            _ = kill.cancelled() => {
                reader.reset(Reset::new(ReasonKind::ConnectionLost, "connection closed"));
                return Outcome::Failed;
            }
            frame = reader.frame() => frame,
            _ = refused.cancelled(), if !begun => {
                reader.reset(Reset::new(ReasonKind::Refused, "the application refused the connection"));
                return Outcome::Failed;
            }
            }
        };
        match frame {
            Some(Frame::Data(data)) => {
                // What else is queued goes out with it, in one write: a burst of events, or
                // a large chunk's size, payload and CRLF. A lone frame needs no list.
                // One await point for both: the connection's task holds one write's state.
                let mut lone: [Bytes; 1];
                let mut many: Vec<Bytes>;
                let batch: &mut [Bytes] = match reader.try_frame() {
                    Some(Frame::Data(more)) => {
                        let mut size = data.payload.len() + more.payload.len();
                        many = vec![data.payload, more.payload];
                        while size < MAX_WRITE && many.len() < MAX_SLICES {
                            match reader.try_frame() {
                                Some(Frame::Data(more)) => {
                                    size += more.payload.len();
                                    many.push(more.payload);
                                }
                                Some(other) => {
                                    next = Some(other);
                                    break;
                                }
                                None => break,
                            }
                        }
                        &mut many
                    }
                    other => {
                        next = other;
                        lone = [data.payload];
                        &mut lone
                    }
                };
                let written = write_all(socket, batch, reader, kill).await;
                if let Err(outcome) = written {
                    return outcome;
                }
                reader.replenish();
            }
            Some(Frame::Begin(_)) => begun = true,
            Some(Frame::Flush(_)) => reader.replenish(),
            Some(Frame::End(_)) => {
                let _ = SockRef::from(socket).shutdown(std::net::Shutdown::Write);
                return Outcome::Ended;
            }
            Some(Frame::Abort(_)) | None => return Outcome::Failed,
        }
    }
}

/// Writes `batch` to the socket, several buffers per system call.
async fn write_all(
    socket: &TcpStream,
    batch: &mut [Bytes],
    reader: &mut Reader,
    kill: &CancellationToken,
) -> Result<(), Outcome> {
    let mut first = 0;
    while first < batch.len() {
        tokio::select! {
            biased;
            _ = kill.cancelled() => {
                reader.reset(Reset::new(ReasonKind::ConnectionLost, "connection closed"));
                return Err(Outcome::Failed);
            }
            writable = socket.writable() => if let Err(err) = writable {
                return Err(reset(reader, &err));
            },
        }
        let written = match write_vectored(socket, &batch[first..]) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            Err(err) => return Err(reset(reader, &err)),
        };
        let mut left = written;
        while left > 0 && first < batch.len() {
            let len = batch[first].len();
            if left >= len {
                left -= len;
                first += 1;
            } else {
                batch[first].advance(left);
                left = 0;
            }
        }
        while first < batch.len() && batch[first].is_empty() {
            first += 1;
        }
    }
    Ok(())
}

/// One `writev` of the front of `batch`. A plain function: its `iovec` array lives on the
/// stack while it runs, not in the connection's task between writes.
fn write_vectored(socket: &TcpStream, batch: &[Bytes]) -> io::Result<usize> {
    let mut slices = [IoSlice::new(&[]); MAX_SLICES];
    let mut count = 0;
    for (slice, bytes) in slices.iter_mut().zip(batch) {
        *slice = IoSlice::new(bytes);
        count += 1;
    }
    socket.try_write_vectored(&slices[..count])
}

fn reset(reader: &mut Reader, err: &io::Error) -> Outcome {
    reader.reset(Reset::new(ReasonKind::ConnectionLost, err.to_string()));
    Outcome::Failed
}

/// Runs both directions of a connection until both are done. A failure in either closes the
/// connection abruptly (RST), so the peer and the application both learn of it.
/// `from_app_begun` says whether the direction read from the application has already begun
/// (a client's initial direction has; a server's reply has not).
pub(crate) async fn run(
    socket: TcpStream,
    mut to_app: Writer,
    mut from_app: Reader,
    from_app_begun: bool,
    stop: CancellationToken,
) {
    let kill = CancellationToken::new();
    let refused = CancellationToken::new();
    let read = async {
        match socket_to_stream(&socket, &mut to_app, &stop, &kill).await {
            Outcome::Failed => kill.cancel(),
            Outcome::Refused => refused.cancel(),
            Outcome::Ended => {}
        }
    };
    let write = async {
        let outcome =
            stream_to_socket(&socket, &mut from_app, from_app_begun, &refused, &kill).await;
        if outcome == Outcome::Failed {
            kill.cancel();
        }
    };
    tokio::join!(read, write);
    if kill.is_cancelled() {
        let _ = SockRef::from(&socket).set_linger(Some(std::time::Duration::ZERO));
    }
}

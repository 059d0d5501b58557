//! Moving bytes between a socket and a stream, with credit: one state machine per connection,
//! polled as one future, that reads the socket into one direction and writes the other to it.
//!
//! It waits on exactly what it needs: the reader's credit or the socket's read readiness on
//! one side, the application's next frame or the socket's write readiness on the other. The
//! shutdown signal is registered once per connection, not on every wake.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use binding_api::frame::{Data, End, Frame, Reason, ReasonKind, Reset, Window};
use binding_api::shutdown::ShutdownWatch;
use binding_api::stream::{Reader, Writer};
use bytes::{Buf, Bytes, BytesMut};
use socket2::SockRef;
use tokio::net::TcpStream;

use crate::metrics::{Failure, Open};

/// Largest single read from a socket.
const MAX_READ: u64 = 64 * 1024;

/// Most bytes gathered from queued frames for one write.
const MAX_WRITE: usize = 64 * 1024;
/// Most buffers in one write.
const MAX_SLICES: usize = 64;

/// Credit granted to the direction that writes to the socket: what may wait to be written.
pub(crate) const WRITE_WINDOW: u32 = 64 * 1024;

/// Runs both directions of a connection until both are done. A failure in either closes the
/// connection abruptly (RST), so the peer and the application both learn of it.
/// `from_app_begun` says whether the direction read from the application has already begun
/// (a client's initial direction has; a server's reply has not).
///
/// On `stop` (engine shutdown) the direction read from the socket ends cleanly. When the
/// application refuses that direction before the other has begun, nothing will ever be
/// written either, and the connection fails, as in Zilla.
pub(crate) fn run(
    socket: TcpStream,
    to_app: Writer,
    from_app: Reader,
    from_app_begun: bool,
    stop: ShutdownWatch,
) -> Pump {
    Pump {
        socket,
        to_app,
        from_app,
        stop,
        inbound: Side::Open,
        outbound: Side::Open,
        begun: from_app_begun,
        windowed: false,
        refused: false,
        killed: false,
        pending: Vec::new(),
        next: None,
        open: None,
        failure: None,
    }
}

/// Where one direction stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Open,
    Done,
}

/// A connection's two pumps.
pub(crate) struct Pump {
    socket: TcpStream,
    /// Bytes read from the socket go here.
    to_app: Writer,
    /// Frames read here are written to the socket.
    from_app: Reader,
    /// The engine's shutdown, registered once.
    stop: ShutdownWatch,
    inbound: Side,
    outbound: Side,
    /// Whether the direction read from the application has begun.
    begun: bool,
    /// Whether the write window was granted.
    windowed: bool,
    /// The application refused the inbound direction.
    refused: bool,
    /// Either direction failed: the connection closes abruptly.
    killed: bool,
    /// The rest of a write the socket could not take at once.
    pending: Vec<Bytes>,
    /// A frame taken while gathering a write, handled next.
    next: Option<Frame>,
    /// Counts the connection closed when the pump drops, and its bytes.
    open: Option<Open>,
    /// Which side failed the connection first, when one did.
    failure: Option<Failure>,
}

impl Future for Pump {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let pump = self.get_mut();
        // A failure on one side decides the other, so go round until neither changes.
        loop {
            let before = (pump.inbound, pump.outbound, pump.killed, pump.refused);
            if pump.inbound == Side::Open {
                pump.poll_inbound(cx);
            }
            if pump.outbound == Side::Open {
                pump.poll_outbound(cx);
            }
            if before == (pump.inbound, pump.outbound, pump.killed, pump.refused) {
                break;
            }
        }
        if pump.inbound == Side::Done && pump.outbound == Side::Done {
            if pump.killed {
                let _ = SockRef::from(&pump.socket).set_linger(Some(std::time::Duration::ZERO));
                if let (Some(open), Some(by)) = (&pump.open, pump.failure) {
                    open.failed(by);
                }
            }
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Pump {
    /// The pump of a connection that `open` counts closed when the pump drops.
    pub(crate) fn counted(mut self, open: Option<Open>) -> Self {
        self.open = open;
        self
    }

    /// Reads the socket into `to_app`, never reading more than its credit allows: with no
    /// credit the socket is not read, and TCP pushes back on the peer.
    fn poll_inbound(&mut self, cx: &mut Context<'_>) {
        loop {
            if self.killed {
                let _ = self
                    .to_app
                    .abort(Reason::new(ReasonKind::ConnectionLost, "connection closed"));
                self.inbound = Side::Done;
                return;
            }
            if self.stop.poll(cx).is_ready() {
                let _ = self.to_app.end(End::default());
                self.inbound = Side::Done;
                return;
            }
            match self.to_app.poll_ready(cx, 1) {
                Poll::Pending => return,
                Poll::Ready(Err(_)) => return self.inbound_refused(),
                Poll::Ready(Ok(())) => {}
            }
            // Credit is there: wait for bytes, or for the application to go away.
            if self.to_app.poll_reset(cx).is_ready() {
                return self.inbound_refused();
            }
            match self.socket.poll_read_ready(cx) {
                Poll::Pending => return,
                Poll::Ready(Err(err)) => return self.inbound_failed(&err),
                Poll::Ready(Ok(())) => {}
            }
            let room = self
                .to_app
                .credit()
                .saturating_sub(u64::from(self.to_app.padding()));
            let mut buf = BytesMut::with_capacity(room.clamp(1, MAX_READ) as usize);
            match self.socket.try_read_buf(&mut buf) {
                Ok(0) => {
                    let _ = self.to_app.end(End::default());
                    self.inbound = Side::Done;
                    return;
                }
                Ok(read) => {
                    if let Some(open) = &self.open {
                        open.received(read);
                    }
                    if self.to_app.data(Data::new(buf.freeze())).is_err() {
                        return self.inbound_refused();
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return self.inbound_failed(&err),
            }
        }
    }

    /// The application refused the inbound direction or stopped reading it.
    fn inbound_refused(&mut self) {
        self.refused = true;
        self.inbound = Side::Done;
    }

    fn inbound_failed(&mut self, err: &io::Error) {
        self.failure.get_or_insert(Failure::Network);
        let _ = self
            .to_app
            .abort(Reason::new(ReasonKind::ConnectionLost, err.to_string()));
        self.killed = true;
        self.inbound = Side::Done;
    }

    /// Writes what `from_app` receives to the socket, granting credit back as bytes leave.
    /// End shuts the socket's write side; abort, or a socket error, fails the connection.
    fn poll_outbound(&mut self, cx: &mut Context<'_>) {
        if !self.windowed {
            self.windowed = true;
            let window = Window {
                credit: WRITE_WINDOW,
                padding: 0,
            };
            if self.from_app.window(window).is_err() {
                return self.outbound_failed(None);
            }
        }
        loop {
            if self.killed {
                return self.outbound_failed(Some(Reset::new(
                    ReasonKind::ConnectionLost,
                    "connection closed",
                )));
            }
            if !self.pending.is_empty() {
                match self.write_pending(cx) {
                    Poll::Pending => return,
                    Poll::Ready(Err(err)) => {
                        self.failure.get_or_insert(Failure::Network);
                        let reset = Reset::new(ReasonKind::ConnectionLost, err.to_string());
                        return self.outbound_failed(Some(reset));
                    }
                    Poll::Ready(Ok(())) => self.from_app.replenish(),
                }
            }
            let frame = match self.next.take() {
                Some(frame) => Some(frame),
                None => match self.from_app.poll_frame(cx) {
                    Poll::Ready(frame) => frame,
                    Poll::Pending if self.refused && !self.begun => {
                        return self.outbound_failed(Some(Reset::new(
                            ReasonKind::Refused,
                            "the application refused the connection",
                        )));
                    }
                    Poll::Pending => return,
                },
            };
            match frame {
                Some(Frame::Data(data)) => {
                    // What else is queued goes out with it, in one write: a burst of events,
                    // or a large chunk's size, payload and CRLF.
                    match self.write_now(data.payload) {
                        Ok(()) if self.pending.is_empty() => self.from_app.replenish(),
                        Ok(()) => {}
                        Err(err) => {
                            self.failure.get_or_insert(Failure::Network);
                            let reset = Reset::new(ReasonKind::ConnectionLost, err.to_string());
                            return self.outbound_failed(Some(reset));
                        }
                    }
                }
                Some(Frame::Begin(_)) => self.begun = true,
                Some(Frame::Flush(_)) => self.from_app.replenish(),
                Some(Frame::End(_)) => {
                    let _ = SockRef::from(&self.socket).shutdown(std::net::Shutdown::Write);
                    self.outbound = Side::Done;
                    return;
                }
                Some(Frame::Abort(_)) | None => return self.outbound_failed(None),
            }
        }
    }

    /// Writes `first` and the data frames queued behind it with one vectored write; what the
    /// socket does not take waits in `pending`. A lone frame needs no list.
    fn write_now(&mut self, first: Bytes) -> io::Result<()> {
        match self.from_app.try_frame() {
            Some(Frame::Data(more)) => {
                let mut size = first.len() + more.payload.len();
                let mut batch = vec![first, more.payload];
                while size < MAX_WRITE && batch.len() < MAX_SLICES {
                    match self.from_app.try_frame() {
                        Some(Frame::Data(more)) => {
                            size += more.payload.len();
                            batch.push(more.payload);
                        }
                        other => {
                            self.next = other;
                            break;
                        }
                    }
                }
                self.write_slices(&mut batch)
            }
            other => {
                self.next = other;
                self.write_slices(&mut [first])
            }
        }
    }

    fn write_slices(&mut self, batch: &mut [Bytes]) -> io::Result<()> {
        let written = match write_vectored(&self.socket, batch) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => 0,
            Err(err) => return Err(err),
        };
        if let Some(open) = &self.open {
            open.sent(written);
        }
        let rest = advance(batch, written);
        self.pending.extend(rest.iter_mut().map(std::mem::take));
        Ok(())
    }

    /// Writes what is pending as the socket allows.
    fn write_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            ready!(self.socket.poll_write_ready(cx))?;
            let written = match write_vectored(&self.socket, &self.pending) {
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Err(err) => return Poll::Ready(Err(err)),
            };
            if let Some(open) = &self.open {
                open.sent(written);
            }
            let done = self.pending.len() - advance(&mut self.pending, written).len();
            self.pending.drain(..done);
        }
        self.pending = Vec::new();
        Poll::Ready(Ok(()))
    }

    /// The outbound direction failed (`reset` tells the application why, when it is still
    /// there to hear it): the whole connection closes abruptly.
    fn outbound_failed(&mut self, reset: Option<Reset>) {
        // Not already the network's: the application aborted, refused or stopped reading.
        self.failure.get_or_insert(Failure::Application);
        if let Some(reset) = reset {
            self.from_app.reset(reset);
        }
        self.pending = Vec::new();
        self.killed = true;
        self.outbound = Side::Done;
    }
}

/// Drops `written` bytes from the front of `batch`; returns what is left to write.
fn advance(batch: &mut [Bytes], mut written: usize) -> &mut [Bytes] {
    let mut first = 0;
    while written > 0 && first < batch.len() {
        let len = batch[first].len();
        if written >= len {
            written -= len;
            first += 1;
        } else {
            batch[first].advance(written);
            written = 0;
        }
    }
    while first < batch.len() && batch[first].is_empty() {
        first += 1;
    }
    &mut batch[first..]
}

/// One `writev` of the front of `batch`. A plain function: its `iovec` array lives on the
/// stack while it runs, not in the connection's state between writes.
fn write_vectored(socket: &TcpStream, batch: &[Bytes]) -> io::Result<usize> {
    let mut slices = [IoSlice::new(&[]); MAX_SLICES];
    let mut count = 0;
    for (slice, bytes) in slices.iter_mut().zip(batch) {
        *slice = IoSlice::new(bytes);
        count += 1;
    }
    socket.try_write_vectored(&slices[..count])
}

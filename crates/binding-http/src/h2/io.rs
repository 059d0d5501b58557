//! The network stream as the byte transport `h2` reads and writes.
//!
//! `h2` wants `AsyncRead + AsyncWrite`; a connection here is a stream of frames. [`NetIo`]
//! is both, directly over the connection's two directions: a read hands `h2` the bytes of the
//! network's data frames and returns their credit once `h2` has taken them all; a write
//! becomes one data frame, no larger than the network's credit allows. Nothing sits between
//! the two but the bytes of the frame being read, so the connection holds no buffer of its
//! own beyond `h2`'s, and needs no task or pump besides `h2`'s connection.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use binding_api::frame::{Data, End, Frame};
use binding_api::stream::{Reader, Writer};
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::upgrade::Splice;
use crate::net::Net;

/// Largest data frame sent to the network.
const MAX_WRITE: u64 = 16 * 1024;

/// A connection's network stream, read and written by `h2`.
pub(crate) struct NetIo {
    input: Reader,
    output: Writer,
    /// Received bytes `h2` has not read yet.
    ready: Bytes,
    /// Received bytes held back until an `h2c` upgrade's splice has what it needs.
    held: BytesMut,
    splice: Option<Splice>,
    input_done: bool,
}

impl NetIo {
    /// The transport of `net`; `prefix` was read already; `splice` rewrites the start of an
    /// upgraded connection.
    pub(crate) fn new(net: Net, prefix: Bytes, splice: Option<Splice>) -> Self {
        let mut io = NetIo {
            input: net.input,
            output: net.output,
            ready: Bytes::new(),
            held: BytesMut::new(),
            splice,
            input_done: false,
        };
        io.received(&prefix);
        io
    }

    /// Takes received bytes, through the splice while there is one.
    fn received(&mut self, bytes: &[u8]) {
        let Some(splice) = &mut self.splice else {
            self.ready = Bytes::copy_from_slice(bytes);
            return;
        };
        self.held.extend_from_slice(bytes);
        match splice.feed(&mut self.held) {
            Ok(Some(spliced)) => {
                self.splice = None;
                self.ready = spliced;
            }
            Ok(None) => {}
            Err(err) => {
                tracing::debug!(%err, "h2c upgrade: bad client preface");
                self.input_done = true;
            }
        }
    }
}

impl AsyncRead for NetIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let io = self.get_mut();
        loop {
            if !io.ready.is_empty() {
                let n = io.ready.len().min(buf.remaining());
                buf.put_slice(&io.ready[..n]);
                io.ready.advance(n);
                if io.ready.is_empty() {
                    io.input.replenish();
                }
                return Poll::Ready(Ok(()));
            }
            if io.input_done {
                return Poll::Ready(Ok(()));
            }
            match ready!(io.input.poll_frame(cx)) {
                Some(Frame::Data(data)) => {
                    if io.splice.is_none() {
                        io.ready = data.payload;
                    } else {
                        io.received(&data.payload);
                        if io.ready.is_empty() {
                            io.input.replenish();
                        }
                    }
                }
                Some(Frame::Begin(_) | Frame::Flush(_)) => {}
                Some(Frame::End(_) | Frame::Abort(_)) | None => io.input_done = true,
            }
        }
    }
}

impl AsyncWrite for NetIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let io = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if ready!(io.output.poll_ready(cx, 1)).is_err() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let room = io
            .output
            .credit()
            .saturating_sub(u64::from(io.output.padding()))
            .min(MAX_WRITE);
        let n = buf
            .len()
            .min(usize::try_from(room).unwrap_or(usize::MAX))
            .max(1);
        match io.output.data(Data::new(Bytes::copy_from_slice(&buf[..n]))) {
            Ok(()) => Poll::Ready(Ok(n)),
            Err(_) => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let _ = self.get_mut().output.end(End::default());
        Poll::Ready(Ok(()))
    }
}

impl Drop for NetIo {
    /// The connection is over however `h2` finished: the network output ends cleanly.
    fn drop(&mut self) {
        let _ = self.output.end(End::default());
    }
}

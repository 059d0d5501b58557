//! One TLS connection between a ciphertext stream and a plaintext stream.
//!
//! rustls does the protocol with no I/O of its own: ciphertext frames are fed to
//! `read_tls`, what it decrypts is read from `reader()` no faster than the plaintext side
//! grants credit, plaintext frames go to `writer()`, and `write_tls` output leaves as
//! ciphertext frames no faster than the network grants credit.
//!
//! Memory per connection is bounded by credit: the network is granted [`CIPHER_WINDOW`]
//! bytes and replenished only once a frame has been handed to rustls entirely; rustls stops
//! taking bytes when 16 KiB of decrypted data wait for the application, so then the network
//! is not replenished and TCP pushes back. The application is granted [`PLAIN_WINDOW`]
//! bytes and replenished only once their ciphertext has left. An idle connection holds no
//! buffer of ours, and rustls's read buffer is trimmed back to 4 KiB after every frame.

use std::io::{self, Read};
use std::time::Duration;

use binding_api::frame::{Data, End, Frame, Reason, ReasonKind, Reset, Window};
use binding_api::stream::{Reader, Writer, WriterEvent};
use bytes::{Bytes, BytesMut};
use rustls::Connection;

/// Credit granted to the ciphertext coming in: one TLS record and some.
pub(crate) const CIPHER_WINDOW: u32 = 20 * 1024;

/// Credit granted to the plaintext coming in from the application.
pub(crate) const PLAIN_WINDOW: u32 = 16 * 1024;

/// How long a handshake may take (Zilla's `handshake.timeout`).
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The plaintext side, once the handshake is done.
pub(crate) struct Plain {
    /// Decrypted bytes towards the application.
    pub(crate) output: Writer,
    /// Bytes from the application, to encrypt.
    pub(crate) input: Reader,
}

/// What the owner does once the handshake completes.
pub(crate) trait Handshaken {
    /// Opens (server) or begins (client) the plaintext side; `None` closes the connection.
    fn open(&mut self, conn: &Connection) -> Option<Plain>;

    /// The handshake failed: log it.
    fn failed(&mut self, error: &rustls::Error);

    /// The connection closed before the plaintext side was opened.
    fn closed(&mut self, reason: &Reason) {
        let _ = reason;
    }
}

/// A reader that has nothing yet: lets rustls trim its buffer without seeing end of file.
pub(crate) struct Nothing;

impl Read for Nothing {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
}

/// Grants the network side its credit; call once before [`run`].
pub(crate) fn grant(cipher_in: &mut Reader) -> bool {
    cipher_in.window(window(CIPHER_WINDOW)).is_ok()
}

/// Drives one connection until both sides are over. `pending_in` is ciphertext already
/// received and not yet given to `conn`.
pub(crate) async fn run(
    conn: Connection,
    pending_in: Bytes,
    cipher_in: Reader,
    cipher_out: Writer,
    handshaken: impl Handshaken,
) {
    let mut session = Session {
        conn,
        cipher_in,
        cipher_out,
        plain: None,
        out: BytesMut::new(),
        pending_in,
        cipher_done: false,
        plain_in_done: false,
        plain_out_done: false,
        closing: false,
    };
    let mut handshaken = handshaken;
    let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    loop {
        if let Err(err) = session.step(&mut handshaken) {
            session.fail(&mut handshaken, &err);
            return;
        }
        if session.finished() {
            return;
        }
        let Session {
            conn,
            cipher_in,
            cipher_out,
            plain,
            out,
            pending_in,
            cipher_done,
            plain_in_done,
            plain_out_done,
            closing,
        } = &mut session;
        let read_cipher = !*cipher_done && pending_in.is_empty() && conn.wants_read();
        let read_plain = plain.is_some() && !*plain_in_done && out.is_empty() && !*closing;
        let wait_plain_credit = plain.is_some() && !*plain_out_done;
        let handshaking = conn.is_handshaking();
        let (plain_out, plain_in) = match plain {
            Some(p) => (Some(&mut p.output), Some(&mut p.input)),
            None => (None, None),
        };
        let plain_input = async {
            match plain_in {
                Some(input) if read_plain => input.frame().await,
                _ => std::future::pending().await,
            }
        };
        let plain_credit = async {
            match plain_out {
                Some(out) if wait_plain_credit => out.event().await,
                _ => std::future::pending().await,
            }
        };
        // Biased: what the network sent (an alert, say) is read before its reset is seen.
        tokio::select! {
            biased;
            frame = cipher_in.frame(), if read_cipher => match frame {
                Some(Frame::Data(data)) => *pending_in = data.payload,
                Some(Frame::Flush(_)) => cipher_in.replenish(),
                Some(Frame::Begin(_)) => {}
                Some(Frame::End(_)) => *cipher_done = true,
                Some(Frame::Abort(abort)) => {
                    session.abort(&mut handshaken, abort.reason);
                    return;
                }
                None => {
                    session.abort(&mut handshaken, lost("the network stream was aborted"));
                    return;
                }
            },
            frame = plain_input => match frame {
                Some(Frame::Data(data)) => {
                    if io::Write::write_all(&mut conn.writer(), &data.payload).is_err() {
                        session.abort(&mut handshaken, lost("rustls refused plaintext"));
                        return;
                    }
                }
                // Its credit returns with the ciphertext's departure, in `flush_out`.
                Some(Frame::Flush(_) | Frame::Begin(_)) => {}
                Some(Frame::End(_)) => {
                    *plain_in_done = true;
                    conn.send_close_notify();
                }
                Some(Frame::Abort(_)) | None => {
                    session.abort(&mut handshaken, lost("the application aborted"));
                    return;
                }
            },
            event = cipher_out.event(), if !cipher_out.is_closed() => {
                if let WriterEvent::Reset(reset) = event {
                    session.abort(&mut handshaken, reset.reason);
                    return;
                }
            }
            event = plain_credit => {
                if let WriterEvent::Reset(_) = event {
                    session.abort(&mut handshaken, lost("the application reset its stream"));
                    return;
                }
            }
            _ = tokio::time::sleep_until(deadline), if handshaking => {
                tracing::info!(
                    event = "tls_handshake_failed",
                    cause = "timeout",
                    "tls handshake timed out after {HANDSHAKE_TIMEOUT:?}"
                );
                session.abort(&mut handshaken, lost("tls handshake timed out"));
                return;
            }
        }
    }
}

fn lost(why: &str) -> Reason {
    Reason::new(ReasonKind::ConnectionLost, why)
}

fn window(credit: u32) -> Window {
    Window { credit, padding: 0 }
}

/// What [`Session::deliver`] managed.
enum Delivered {
    /// Everything rustls had was passed on, or credit ran out first.
    Waiting,
    /// The peer closed the TLS session cleanly (close_notify or end of stream).
    Closed,
}

struct Session {
    conn: Connection,
    cipher_in: Reader,
    cipher_out: Writer,
    plain: Option<Plain>,
    out: BytesMut,
    pending_in: Bytes,
    cipher_done: bool,
    plain_in_done: bool,
    plain_out_done: bool,
    closing: bool,
}

impl Session {
    /// Moves everything that can move without waiting.
    fn step(&mut self, handshaken: &mut impl Handshaken) -> Result<(), rustls::Error> {
        if !self.pending_in.is_empty() {
            self.feed()?;
        }
        if self.cipher_done && self.pending_in.is_empty() && self.conn.wants_read() {
            // The network ended: rustls learns of it (a truncation if no close_notify).
            let _ = self.conn.read_tls(&mut io::empty());
            self.conn.process_new_packets()?;
        }
        self.flush_out();
        if self.plain.is_none() && !self.conn.is_handshaking() && !self.closing {
            match handshaken.open(&self.conn) {
                Some(mut plain) => {
                    if plain.input.window(window(PLAIN_WINDOW)).is_err() {
                        self.closing = true;
                    }
                    self.plain = Some(plain);
                }
                None => {
                    self.closing = true;
                    self.conn.send_close_notify();
                    self.flush_out();
                }
            }
        }
        if !self.plain_out_done
            && self.plain.is_some()
            && let Delivered::Closed = self.deliver()
        {
            if let Some(p) = &mut self.plain {
                let _ = p.output.end(End::default());
            }
            self.plain_out_done = true;
        }
        if (self.closing || self.plain_in_done) && self.out.is_empty() {
            let _ = self.cipher_out.end(End::default());
        }
        Ok(())
    }

    /// Hands the held-back ciphertext to rustls as far as it takes it, then processes it.
    fn feed(&mut self) -> Result<(), rustls::Error> {
        while !self.pending_in.is_empty() {
            let mut rest = &self.pending_in[..];
            match self.conn.read_tls(&mut rest) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    bytes::Buf::advance(&mut self.pending_in, n);
                    self.conn.process_new_packets()?;
                }
            }
        }
        if self.pending_in.is_empty() {
            self.pending_in = Bytes::new();
            self.cipher_in.replenish();
            // Let rustls shrink its read buffer while it holds no partial record.
            let _ = self.conn.read_tls(&mut Nothing);
        }
        Ok(())
    }

    /// Takes what rustls wrote and sends as much as the network's credit allows.
    fn flush_out(&mut self) {
        while self.conn.wants_write() {
            let mut writer = BufWriter(&mut self.out);
            if self.conn.write_tls(&mut writer).is_err() {
                break;
            }
        }
        while !self.out.is_empty() && !self.cipher_out.is_closed() {
            let room = self
                .cipher_out
                .credit()
                .saturating_sub(u64::from(self.cipher_out.padding()));
            let len = usize::try_from(room)
                .unwrap_or(usize::MAX)
                .min(self.out.len());
            if len == 0 {
                break;
            }
            let chunk = self.out.split_to(len).freeze();
            if self.cipher_out.data(Data::new(chunk)).is_err() {
                break;
            }
        }
        if self.out.is_empty() {
            // Free the buffer while idle; return the application's credit now that its
            // bytes have left.
            self.out = BytesMut::new();
            if let Some(p) = &mut self.plain {
                p.input.replenish();
            }
        }
    }

    /// Passes decrypted bytes to the application within its credit.
    fn deliver(&mut self) -> Delivered {
        let Some(plain) = &mut self.plain else {
            return Delivered::Waiting;
        };
        loop {
            let room = plain
                .output
                .credit()
                .saturating_sub(u64::from(plain.output.padding()));
            if room == 0 {
                return Delivered::Waiting;
            }
            let len = usize::try_from(room).unwrap_or(usize::MAX).min(16 * 1024);
            let mut buf = vec![0; len];
            match self.conn.reader().read(&mut buf) {
                Ok(0) => return Delivered::Closed,
                Ok(n) => {
                    buf.truncate(n);
                    if plain.output.data(Data::new(buf)).is_err() {
                        return Delivered::Waiting;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    return Delivered::Waiting;
                }
                // The network ended without close_notify: end the application's stream
                // too, as the peer is gone either way.
                Err(_) => return Delivered::Closed,
            }
        }
    }

    /// Whether both sides are over.
    fn finished(&self) -> bool {
        let cipher_over = self.cipher_out.is_closed() || self.cipher_done;
        match &self.plain {
            None => self.cipher_out.is_closed() || (self.cipher_done && !self.conn.wants_write()),
            Some(_) => cipher_over && self.plain_out_done && self.cipher_out.is_closed(),
        }
    }

    /// A protocol error: send rustls's alert if any and end the network stream (only this
    /// connection is affected), and tell the application, if it was reached, that the
    /// connection is lost.
    fn fail(&mut self, handshaken: &mut impl Handshaken, err: &rustls::Error) {
        if self.plain.is_none() {
            handshaken.failed(err);
        } else {
            tracing::debug!(%err, "tls error");
        }
        self.flush_out();
        let _ = self.cipher_out.end(End::default());
        self.abort(handshaken, lost(&format!("tls: {err}")));
    }

    /// Closes everything abruptly.
    fn abort(&mut self, handshaken: &mut impl Handshaken, reason: Reason) {
        let reset = |reason: &Reason| Reset::new(reason.kind, reason.detail.clone());
        let _ = self.cipher_out.abort(reason.clone());
        self.cipher_in.reset(reset(&reason));
        match &mut self.plain {
            Some(p) => {
                let _ = p.output.abort(reason.clone());
                p.input.reset(reset(&reason));
            }
            None => handshaken.closed(&reason),
        }
    }
}

/// `io::Write` into a `BytesMut`.
pub(crate) struct BufWriter<'a>(pub(crate) &'a mut BytesMut);

impl io::Write for BufWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

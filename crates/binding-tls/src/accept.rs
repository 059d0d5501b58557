//! The first flight of a server connection: read the client's hello, then choose the ALPN
//! protocol by the client's preference among those `options.alpn` allows.
//!
//! rustls alone picks by the server's order, so `alpn: [http/1.1, h2]` (the seed's order)
//! would give a browser HTTP/1.1; the hello is read with rustls's `Acceptor` and the
//! connection is configured with the allowed protocols in the client's order.

use std::sync::Arc;

use binding_api::frame::{End, Frame, ReasonKind, Reset};
use binding_api::stream::{Reader, Writer};
use bytes::{Buf, Bytes, BytesMut};
use rustls::server::{Accepted, Acceptor};
use rustls::{Connection, ServerConfig};

use crate::session::{self, BufWriter, HANDSHAKE_TIMEOUT, Handshaken};

/// Reads the hello, then hands the connection to [`session::run`].
pub(crate) async fn accept(
    config: Arc<ServerConfig>,
    mut cipher_in: Reader,
    cipher_out: Writer,
    mut handshaken: impl Handshaken,
) {
    if !session::grant(&mut cipher_in) {
        return;
    }
    let mut acceptor = Acceptor::default();
    let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    let mut pending = Bytes::new();
    let accepted = loop {
        match take(&mut acceptor, &mut pending) {
            Ok(Some(accepted)) => break accepted,
            Ok(None) => {}
            Err((err, mut alert)) => {
                handshaken.failed(&err);
                let mut out = BytesMut::new();
                let _ = alert.write_all(&mut BufWriter(&mut out));
                return refuse(cipher_in, cipher_out, out.freeze());
            }
        }
        if pending.is_empty() {
            cipher_in.replenish();
        }
        let frame = tokio::select! {
            frame = cipher_in.frame() => frame,
            _ = tokio::time::sleep_until(deadline) => {
                let err = rustls::Error::General("no client hello within the handshake timeout".into());
                handshaken.failed(&err);
                return refuse(cipher_in, cipher_out, Bytes::new());
            }
        };
        match frame {
            Some(Frame::Data(data)) => pending = data.payload,
            Some(Frame::Begin(_) | Frame::Flush(_)) => {}
            Some(Frame::End(_) | Frame::Abort(_)) | None => return,
        }
    };
    let config = by_client_preference(&config, &accepted);
    match accepted.into_connection(config) {
        Ok(conn) => {
            session::run(
                Connection::Server(conn),
                pending,
                cipher_in,
                cipher_out,
                handshaken,
            )
            .await;
        }
        Err((err, mut alert)) => {
            handshaken.failed(&err);
            let mut out = BytesMut::new();
            let _ = alert.write_all(&mut BufWriter(&mut out));
            refuse(cipher_in, cipher_out, out.freeze());
        }
    }
}

/// Feeds what was received to the acceptor, as far as it takes it, and asks for the hello.
fn take(
    acceptor: &mut Acceptor,
    pending: &mut Bytes,
) -> Result<Option<Accepted>, (rustls::Error, rustls::server::AcceptedAlert)> {
    while !pending.is_empty() {
        match acceptor.read_tls(&mut &pending[..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => pending.advance(n),
        }
        if let Some(accepted) = acceptor.accept()? {
            return Ok(Some(accepted));
        }
    }
    Ok(None)
}

/// The configuration with the allowed protocols in the order the client prefers them.
fn by_client_preference(config: &Arc<ServerConfig>, accepted: &Accepted) -> Arc<ServerConfig> {
    let hello = accepted.client_hello();
    let Some(offered) = hello.alpn() else {
        return config.clone();
    };
    let ordered: Vec<Vec<u8>> = offered
        .filter(|p| config.alpn_protocols.iter().any(|a| a == p))
        .map(<[u8]>::to_vec)
        .collect();
    if ordered == config.alpn_protocols {
        return config.clone();
    }
    let mut custom = ServerConfig::clone(config);
    custom.alpn_protocols = ordered;
    Arc::new(custom)
}

/// Sends the alert, if any, ends the network stream and stops reading it.
fn refuse(mut cipher_in: Reader, mut cipher_out: Writer, alert: Bytes) {
    let room = cipher_out
        .credit()
        .saturating_sub(u64::from(cipher_out.padding()));
    if !alert.is_empty() && room >= alert.len() as u64 {
        let _ = cipher_out.data(binding_api::frame::Data::new(alert));
    }
    let _ = cipher_out.end(End::default());
    cipher_in.reset(Reset::new(ReasonKind::Refused, "tls handshake failed"));
}

//! TLS vocabulary: what a TLS server binding negotiated, for the binding behind it.
//!
//! A tls server opens the stream carrying the decrypted bytes with [`TlsBeginEx`]; an http
//! server reads `alpn` to choose HTTP/2 (`h2`) or HTTP/1.1 (`http/1.1`, or none) and
//! reports `:scheme` `https` for requests on such a connection.

use crate::ext::tcp::TcpBeginEx;

/// Begin extension of a decrypted TLS stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsBeginEx {
    /// The application protocol negotiated by ALPN (`h2`, `http/1.1`), if any.
    pub alpn: Option<String>,
    /// The server name the client asked for (SNI), if any.
    pub server_name: Option<String>,
    /// The addresses of the TCP connection underneath, when known.
    pub tcp: Option<TcpBeginEx>,
}

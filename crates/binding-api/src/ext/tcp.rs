//! TCP vocabulary: the addresses of a connection.

use std::fmt;
use std::net::SocketAddr;

/// Begin extension of a TCP stream.
///
/// A tcp server opens its application stream with the connection's `local` and `remote`
/// addresses. A binding that wants a tcp client to connect somewhere opens a stream with
/// `remote` naming the destination; `local` is then `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpBeginEx {
    /// The local address of the connection, when known.
    pub local: Option<SocketAddr>,
    /// The peer: where the connection came from, or where to connect.
    pub remote: Endpoint,
}

/// A TCP endpoint: a resolved socket address, or a host name and port to resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// An IP address and port.
    Addr(SocketAddr),
    /// A host name (or IP literal) and a port.
    Host {
        /// Host name or IP literal.
        host: String,
        /// Port.
        port: u16,
    },
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Addr(addr) => write!(f, "{addr}"),
            Endpoint::Host { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Endpoint::Host { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

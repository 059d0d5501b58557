//! Listening sockets shared by address among the servers of one factory: a server a
//! configuration reload builds to replace another listening on the same address takes the
//! same socket, so no connection is refused while one hands over to the other.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::{Arc, Mutex, Weak};

use socket2::{Domain, Protocol, Socket, Type};

/// How many connections may wait to be accepted.
const BACKLOG: i32 = 1024;

/// The sockets servers listen on now, by the address they are bound to. Entries whose
/// servers have all let go are pruned on the next call, so there are no more than the
/// configured addresses.
#[derive(Debug, Default)]
pub struct Listeners(Mutex<Vec<(SocketAddr, Weak<StdListener>)>>);

impl Listeners {
    /// A socket listening on `addr`: the one a server sharing these listeners already
    /// listens with, else a new one. Port 0 always gets a new socket (each asks for a port of
    /// its own).
    pub(crate) fn listen(&self, addr: SocketAddr) -> std::io::Result<Arc<StdListener>> {
        let mut listening = self.0.lock().unwrap_or_else(|e| e.into_inner());
        listening.retain(|(_, listener)| listener.strong_count() > 0);
        if addr.port() != 0
            && let Some(shared) = listening
                .iter()
                .find(|(at, _)| *at == addr)
                .and_then(|(_, listener)| listener.upgrade())
        {
            return Ok(shared);
        }
        let listener = Arc::new(bind(addr)?);
        // Kept by the address bound, so a port 0 server's port can be asked for again.
        let bound = listener.local_addr().unwrap_or(addr);
        listening.push((bound, Arc::downgrade(&listener)));
        Ok(listener)
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<StdListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(false).ok();
    }
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_server_on_the_same_address_shares_the_socket_until_both_let_go() {
        let listeners = Listeners::default();
        let first = listeners.listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = first.local_addr().unwrap();
        let second = listeners.listen(addr).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        drop((first, second));
        // Released: the port can be bound again from scratch.
        let third = listeners.listen(addr).unwrap();
        assert_eq!(third.local_addr().unwrap(), addr);
    }

    #[test]
    fn port_zero_is_never_shared() {
        let listeners = Listeners::default();
        let a = listeners.listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let b = listeners.listen("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_ne!(a.local_addr().unwrap(), b.local_addr().unwrap());
    }
}

//! Fixed addresses for `host:port` destinations, as curl's `--resolve`: the engine's
//! `zilla start --resolve kafka:29092:127.0.0.1:39092` makes every tcp client that is asked
//! for `kafka:29092` connect to `127.0.0.1:39092` instead of looking `kafka` up.
//!
//! The engine parses the entries and hands them to every factory with the configuration
//! ([`RunOptions`](crate::factory::RunOptions)); a tcp client keeps them. Routes (`when`
//! conditions of a tcp client) still see the name the stream asked for.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use binding_api::ext::tcp::Endpoint;

/// One entry: connections to `host:port` go to `addr`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolve {
    host: String,
    port: u16,
    addr: SocketAddr,
}

/// Why a `--resolve` entry is not `HOST:PORT:ADDR[:PORT]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolveParseError {
    entry: String,
    reason: &'static str,
}

impl fmt::Display for ResolveParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "'{}' is not HOST:PORT:ADDRESS[:PORT] ({})",
            self.entry, self.reason
        )
    }
}

impl std::error::Error for ResolveParseError {}

impl Resolve {
    /// Connections to `host:port` go to `addr`.
    pub fn new(host: impl Into<String>, port: u16, addr: SocketAddr) -> Self {
        Resolve {
            host: host.into(),
            port,
            addr,
        }
    }

    /// The address for `endpoint` when this entry names it.
    pub fn apply(&self, endpoint: &Endpoint) -> Option<SocketAddr> {
        match endpoint {
            Endpoint::Host { host, port } if *port == self.port => {
                let host = host.trim_start_matches('[').trim_end_matches(']');
                host.eq_ignore_ascii_case(&self.host).then_some(self.addr)
            }
            _ => None,
        }
    }
}

impl fmt::Display for Resolve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} → {}", self.host, self.port, self.addr)
    }
}

impl FromStr for Resolve {
    type Err = ResolveParseError;

    /// `HOST:PORT:ADDRESS` (the port stays) or `HOST:PORT:ADDRESS:PORT`; an IPv6 address in
    /// brackets (`[::1]`) when a port follows it.
    fn from_str(entry: &str) -> Result<Self, Self::Err> {
        let error = |reason| ResolveParseError {
            entry: entry.to_owned(),
            reason,
        };
        let mut parts = entry.splitn(3, ':');
        let host = parts.next().unwrap_or_default();
        let port = parts.next().ok_or_else(|| error("no port"))?;
        let target = parts.next().ok_or_else(|| error("no address"))?;
        if host.is_empty() {
            return Err(error("no host"));
        }
        let port: u16 = port.parse().map_err(|_| error("bad port"))?;
        let addr = match SocketAddr::from_str(target) {
            Ok(addr) => addr,
            Err(_) => {
                let ip = target.trim_start_matches('[').trim_end_matches(']');
                let ip = IpAddr::from_str(ip).map_err(|_| error("bad address"))?;
                SocketAddr::new(ip, port)
            }
        };
        Ok(Resolve::new(host, port, addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(host: &str, port: u16) -> Endpoint {
        Endpoint::Host {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn parses_both_forms() {
        let entry: Resolve = "kafka:29092:127.0.0.1:39092".parse().unwrap();
        assert_eq!(
            entry.apply(&host("kafka", 29092)),
            "127.0.0.1:39092".parse().ok()
        );
        assert_eq!(
            entry.apply(&host("KAFKA", 29092)),
            "127.0.0.1:39092".parse().ok()
        );
        assert_eq!(entry.apply(&host("kafka", 9092)), None);
        assert_eq!(entry.apply(&host("other", 29092)), None);
        let same_port: Resolve = "kafka:29092:10.0.0.1".parse().unwrap();
        assert_eq!(same_port.addr, "10.0.0.1:29092".parse().unwrap());
        let v6: Resolve = "kafka:29092:[::1]:1".parse().unwrap();
        assert_eq!(v6.addr, "[::1]:1".parse().unwrap());
        let v6: Resolve = "kafka:29092:::1".parse().unwrap();
        assert_eq!(v6.addr, "[::1]:29092".parse().unwrap());
        assert_eq!(entry.to_string(), "kafka:29092 → 127.0.0.1:39092");
    }

    #[test]
    fn refuses_malformed_entries() {
        for bad in [
            "",
            "kafka",
            "kafka:29092",
            ":1:127.0.0.1",
            "kafka:x:127.0.0.1",
            "kafka:70000:127.0.0.1",
            "kafka:1:localhost",
            "kafka:1:127.0.0.1:x",
        ] {
            let err = bad.parse::<Resolve>().unwrap_err();
            assert!(
                err.to_string().contains("HOST:PORT:ADDRESS"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn addresses_are_never_rewritten() {
        let entry: Resolve = "127.0.0.1:1:127.0.0.2".parse().unwrap();
        let addr = Endpoint::Addr("127.0.0.1:1".parse().unwrap());
        assert_eq!(entry.apply(&addr), None);
    }
}

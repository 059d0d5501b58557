//! Typed frame extensions in scenarios: one optional field per protocol, used both to build
//! the extension a stream peer sends and to match the one it receives.
//!
//! A protocol is added by adding its field to [`BeginExt`] (and to the other frames'
//! extension types as they gain one) with a `build` and a `check`.

use std::net::SocketAddr;

use binding_api::ext::BeginEx;
use binding_api::ext::tcp::{Endpoint, TcpBeginEx};
use serde::Deserialize;

use crate::value::Pattern;

/// The extension of a begin frame: at most one protocol's fields.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BeginExt {
    /// TCP addresses.
    pub tcp: Option<TcpBegin>,
}

/// The tcp begin extension: the connection's local and remote addresses as `host:port`
/// (IPv6 as `[addr]:port`). When matching, `*` matches any run of characters.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TcpBegin {
    /// The local address (`none` when not known).
    pub local: Option<Pattern>,
    /// The remote address: the peer, or where to connect.
    pub remote: Option<Pattern>,
}

impl BeginExt {
    /// The extension to send.
    pub fn build(&self) -> Result<BeginEx, String> {
        match &self.tcp {
            None => Ok(BeginEx::None),
            Some(tcp) => tcp.build().map(BeginEx::Tcp),
        }
    }

    /// Whether `got` has every field this one gives (fields not given match anything).
    pub fn check(&self, got: &BeginEx) -> Result<(), String> {
        match (&self.tcp, got) {
            (None, _) => Ok(()),
            (Some(want), BeginEx::Tcp(got)) => want.check(got),
            (Some(_), other) => Err(format!(
                "expected a tcp extension, got {}",
                show_begin(other)
            )),
        }
    }
}

impl TcpBegin {
    fn build(&self) -> Result<TcpBeginEx, String> {
        let local = match &self.local {
            None => None,
            Some(text) if text.0 == "none" => None,
            Some(text) => Some(text.0.parse::<SocketAddr>().map_err(|_| {
                format!("tcp local '{text}' is not an address such as 127.0.0.1:8080")
            })?),
        };
        let Some(remote) = &self.remote else {
            return Err("a tcp extension to send needs `remote`".to_owned());
        };
        Ok(TcpBeginEx {
            local,
            remote: endpoint(&remote.0)?,
        })
    }

    fn check(&self, got: &TcpBeginEx) -> Result<(), String> {
        let local = got
            .local
            .map_or_else(|| "none".to_owned(), |a| a.to_string());
        if let Some(want) = &self.local
            && !want.matches(&local)
        {
            return Err(format!("tcp local is {local}, expected {want}"));
        }
        let remote = got.remote.to_string();
        if let Some(want) = &self.remote
            && !want.matches(&remote)
        {
            return Err(format!("tcp remote is {remote}, expected {want}"));
        }
        Ok(())
    }
}

/// `host:port`, `[v6]:port` or `a.b.c.d:port` as an endpoint.
fn endpoint(text: &str) -> Result<Endpoint, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(Endpoint::Addr(addr));
    }
    let bad = || format!("tcp remote '{text}' is not host:port");
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || host.contains('*') {
        return Err(bad());
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok(Endpoint::Host {
        host: host.to_owned(),
        port,
    })
}

/// A begin extension for messages.
pub fn show_begin(ext: &BeginEx) -> String {
    match ext {
        BeginEx::None => "no extension".to_owned(),
        BeginEx::Tcp(tcp) => format!(
            "tcp {{local: {}, remote: {}}}",
            tcp.local
                .map_or_else(|| "none".to_owned(), |a| a.to_string()),
            tcp.remote
        ),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(local: Option<&str>, remote: &str) -> BeginExt {
        BeginExt {
            tcp: Some(TcpBegin {
                local: local.map(|s| Pattern(s.to_owned())),
                remote: Some(Pattern(remote.to_owned())),
            }),
        }
    }

    #[test]
    fn builds_and_checks_tcp() {
        let built = tcp(None, "127.0.0.1:9").build().unwrap();
        assert!(tcp(Some("none"), "127.0.0.1:*").check(&built).is_ok());
        assert!(tcp(None, "10.*").check(&built).is_err());
        assert!(BeginExt::default().check(&built).is_ok());
        assert!(tcp(None, "*").check(&BeginEx::None).is_err());
        let host = tcp(None, "localhost:80").build().unwrap();
        assert!(tcp(None, "localhost:80").check(&host).is_ok());
    }
}

//! Typed frame extensions in scenarios: one optional field per protocol, used both to build
//! the extension a stream peer sends and to match the one it receives.
//!
//! A protocol is added by adding its field to [`BeginExt`] (and to the other frames'
//! extension types as they gain one) with a `build` and a `check`.

pub mod kafka;
pub mod sse;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use binding_api::ext::BeginEx;
use binding_api::ext::http::{Header, HttpBeginEx};
use binding_api::ext::tcp::{Endpoint, TcpBeginEx};
use binding_api::ext::tls::TlsBeginEx;
use serde::Deserialize;

use crate::value::Pattern;

/// The extension of a begin frame: at most one protocol's fields.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BeginExt {
    /// TCP addresses.
    pub tcp: Option<TcpBegin>,
    /// An SSE subscription.
    pub sse: Option<sse::SseBegin>,
    /// HTTP request or response headers.
    pub http: Option<HttpBegin>,
    /// A Kafka merged stream, or its reply.
    pub kafka: Option<Box<kafka::KafkaBegin>>,
    /// What a TLS handshake selected.
    pub tls: Option<Box<TlsBegin>>,
}

/// The tls begin extension: the protocol ALPN chose and the server name the client asked
/// for, each `none` when there is none. When matching, `*` matches any run of characters.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsBegin {
    /// The ALPN protocol (`h2`, `http/1.1`, `none`).
    pub alpn: Option<Pattern>,
    /// The SNI server name (`none` when the client sent none).
    pub server_name: Option<Pattern>,
}

impl TlsBegin {
    fn build(&self) -> TlsBeginEx {
        let given = |p: &Option<Pattern>| p.as_ref().filter(|p| p.0 != "none").map(|p| p.0.clone());
        TlsBeginEx {
            alpn: given(&self.alpn),
            server_name: given(&self.server_name),
            tcp: None,
        }
    }

    fn check(&self, got: &TlsBeginEx) -> Result<(), String> {
        for (field, want, value) in [
            ("alpn", &self.alpn, &got.alpn),
            ("server-name", &self.server_name, &got.server_name),
        ] {
            let value = value.as_deref().unwrap_or("none");
            if let Some(want) = want
                && !want.matches(value)
            {
                return Err(format!("tls {field} is '{value}', expected '{want}'"));
            }
        }
        Ok(())
    }
}

/// The http begin extension: header name → value, pseudo-headers (`:method`, `:path`,
/// `:status`...) included. When matching, each header given must be present with a value
/// matching its pattern (`*` matches any run of characters); other headers may be present.
/// A value of `~` (null) matches only when the header is absent.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HttpBegin {
    /// Header name → value (pattern when matching).
    pub headers: BTreeMap<String, Option<Pattern>>,
}

impl HttpBegin {
    fn build(&self) -> HttpBeginEx {
        // Pseudo-headers sort first (':' precedes letters), as HTTP requires.
        let headers = self
            .headers
            .iter()
            .filter_map(|(name, value)| {
                value
                    .as_ref()
                    .map(|v| Header::new(name.clone(), v.0.clone()))
            })
            .collect();
        HttpBeginEx::new(headers)
    }

    fn check(&self, got: &HttpBeginEx) -> Result<(), String> {
        for (name, want) in &self.headers {
            let value = got.get_bytes(name).map(String::from_utf8_lossy);
            match (want, value) {
                (None, None) => {}
                (None, Some(value)) => {
                    return Err(format!("http header {name} is '{value}', expected none"));
                }
                (Some(want), None) => {
                    return Err(format!("http header {name} is missing, expected '{want}'"));
                }
                (Some(want), Some(value)) if !want.matches(&value) => {
                    return Err(format!(
                        "http header {name} is '{value}', expected '{want}'"
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The extension of a data, flush or end frame (the step modifier `ext`): at most one
/// protocol's fields.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FrameExt {
    /// An SSE event's fields, or a flush's or end's id.
    pub sse: Option<sse::SseFrame>,
    /// A Kafka record (data), or a caught-up or gap flush.
    pub kafka: Option<Box<kafka::KafkaFrame>>,
}

impl FrameExt {
    /// The extension of a data frame of `len` bytes to send.
    pub fn data(&self, len: usize) -> binding_api::ext::DataEx {
        use binding_api::ext::DataEx;
        if let Some(kafka) = &self.kafka {
            return kafka.data(len);
        }
        self.sse
            .as_ref()
            .map_or(DataEx::None, |sse| DataEx::Sse(sse.data()))
    }

    /// The extension of a flush to send.
    pub fn flush(&self) -> Result<binding_api::ext::FlushEx, String> {
        use binding_api::ext::FlushEx;
        if let Some(kafka) = &self.kafka {
            return Ok(kafka.flush());
        }
        Ok(match &self.sse {
            Some(sse) => FlushEx::Sse(sse.flush()?),
            None => FlushEx::None,
        })
    }

    /// The extension of an end to send.
    pub fn end(&self) -> Result<binding_api::ext::EndEx, String> {
        use binding_api::ext::EndEx;
        Ok(match &self.sse {
            Some(sse) => EndEx::Sse(sse.end()?),
            None => EndEx::None,
        })
    }

    /// Whether a received data frame's extension has every field given.
    pub fn check_data(&self, got: &binding_api::ext::DataEx) -> Result<(), String> {
        use binding_api::ext::DataEx;
        if let Some(kafka) = &self.kafka {
            return kafka.check_data(got);
        }
        match (&self.sse, got) {
            (None, _) => Ok(()),
            (Some(want), DataEx::Sse(got)) => want.check_data(got),
            (Some(_), other) => Err(format!("expected an sse extension, got {other:?}")),
        }
    }

    /// Whether a received flush's extension has every field given.
    pub fn check_flush(&self, got: &binding_api::ext::FlushEx) -> Result<(), String> {
        use binding_api::ext::FlushEx;
        if let Some(kafka) = &self.kafka {
            return kafka.check_flush(got);
        }
        match (&self.sse, got) {
            (None, _) => Ok(()),
            (Some(want), FlushEx::Sse(got)) if want.id == got.id => Ok(()),
            (Some(_), other) => Err(format!("flush extension is {other:?}, expected {self:?}")),
        }
    }

    /// Whether a received end's extension has every field given.
    pub fn check_end(&self, got: &binding_api::ext::EndEx) -> Result<(), String> {
        use binding_api::ext::EndEx;
        match (&self.sse, got) {
            (None, _) => Ok(()),
            (Some(want), EndEx::Sse(got)) if want.id == got.id => Ok(()),
            (Some(_), other) => Err(format!("end extension is {other:?}, expected {self:?}")),
        }
    }
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
        if let Some(tls) = &self.tls {
            if self.tcp.is_some()
                || self.sse.is_some()
                || self.http.is_some()
                || self.kafka.is_some()
            {
                return Err("a begin extension names one protocol".to_owned());
            }
            return Ok(BeginEx::Tls(tls.build()));
        }
        if let Some(kafka) = &self.kafka {
            if self.tcp.is_some() || self.sse.is_some() || self.http.is_some() {
                return Err("a begin extension names one protocol".to_owned());
            }
            return kafka.build().map(BeginEx::Kafka);
        }
        if let Some(sse) = &self.sse {
            if self.tcp.is_some() {
                return Err("a begin extension names one protocol".to_owned());
            }
            return Ok(BeginEx::Sse(Box::new(sse.build())));
        }
        match (&self.tcp, &self.http) {
            (Some(_), Some(_)) => Err("a begin extension names one protocol".to_owned()),
            (Some(tcp), None) => tcp.build().map(BeginEx::Tcp),
            (None, Some(http)) => Ok(BeginEx::Http(http.build())),
            (None, None) => Ok(BeginEx::None),
        }
    }

    /// Whether `got` has every field this one gives (fields not given match anything).
    pub fn check(&self, got: &BeginEx) -> Result<(), String> {
        if let Some(want) = &self.tls {
            let BeginEx::Tls(got) = got else {
                return Err(format!("expected a tls extension, got {}", show_begin(got)));
            };
            want.check(got)?;
        }
        if let Some(want) = &self.kafka {
            let BeginEx::Kafka(got) = got else {
                return Err(format!(
                    "expected a kafka extension, got {}",
                    show_begin(got)
                ));
            };
            want.check(got)?;
        }
        if let Some(want) = &self.sse {
            let BeginEx::Sse(got) = got else {
                return Err(format!(
                    "expected an sse extension, got {}",
                    show_begin(got)
                ));
            };
            want.check(got)?;
        }
        match (&self.tcp, got) {
            (None, _) => Ok(()),
            (Some(want), BeginEx::Tcp(got)) => want.check(got),
            (Some(_), other) => Err(format!(
                "expected a tcp extension, got {}",
                show_begin(other)
            )),
        }?;
        match (&self.http, got) {
            (None, _) => Ok(()),
            (Some(want), BeginEx::Http(got)) => want.check(got),
            (Some(_), other) => Err(format!(
                "expected an http extension, got {}",
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
        BeginEx::Http(http) => {
            let fields: Vec<String> = http
                .headers
                .iter()
                .map(|h| format!("{}: {}", h.name, String::from_utf8_lossy(&h.value)))
                .collect();
            format!("http {{{}}}", fields.join(", "))
        }
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn builds_and_checks_http() {
        let p = |s: &str| Some(Pattern(s.to_owned()));
        let want = BeginExt {
            tcp: None,
            sse: None,
            kafka: None,
            tls: None,
            http: Some(HttpBegin {
                headers: [(":status".to_owned(), p("200")), ("x".to_owned(), None)]
                    .into_iter()
                    .collect(),
            }),
        };
        let built = want.build().unwrap();
        assert!(want.check(&built).is_ok());
        let BeginEx::Http(http) = &built else {
            panic!("expected http");
        };
        assert_eq!(http.status(), Some(200));
        let mut other = http.clone();
        other.headers.push(Header::new("x", "1"));
        assert!(want.check(&BeginEx::Http(other)).is_err());
    }

    use super::*;

    fn tcp(local: Option<&str>, remote: &str) -> BeginExt {
        BeginExt {
            tcp: Some(TcpBegin {
                local: local.map(|s| Pattern(s.to_owned())),
                remote: Some(Pattern(remote.to_owned())),
            }),
            http: None,
            sse: None,
            kafka: None,
            tls: None,
        }
    }

    #[test]
    fn builds_and_checks_tls() {
        let want = BeginExt {
            tls: Some(Box::new(TlsBegin {
                alpn: Some(Pattern("h2".to_owned())),
                server_name: Some(Pattern("local*".to_owned())),
            })),
            ..BeginExt::default()
        };
        let got = |alpn: Option<&str>| {
            BeginEx::Tls(TlsBeginEx {
                alpn: alpn.map(str::to_owned),
                server_name: Some("localhost".to_owned()),
                tcp: None,
            })
        };
        assert!(want.check(&got(Some("h2"))).is_ok());
        let err = want.check(&got(None)).unwrap_err();
        assert_eq!(err, "tls alpn is 'none', expected 'h2'");
        assert!(want.check(&BeginEx::None).is_err());
        let none = TlsBegin {
            alpn: Some(Pattern("none".to_owned())),
            server_name: None,
        };
        assert_eq!(none.build().alpn, None);
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

//! # binding-tls
//!
//! Zilla's `tls` binding, with [rustls](https://docs.rs/rustls) (the *ring* provider):
//! `kind: server` decrypts connections from a tcp server and opens a plaintext stream per
//! connection; `kind: client` encrypts a stream towards a tcp client, so that Kafka (or
//! anything behind a client) can be reached over TLS; `kind: proxy` routes connections by
//! their ClientHello without decrypting them. TLS 1.2 and 1.3 only.
//!
//! ## Configuration
//!
//! ```yaml
//! vaults:
//!   my_servers:
//!     type: filesystem
//!     options:
//!       keys: {store: tls/localhost.p12, type: pkcs12, password: ${{env.KEYSTORE_PASSWORD}}}
//! bindings:
//!   north_tls_server:
//!     type: tls
//!     kind: server
//!     vault: my_servers          # required: where the keys are
//!     options:
//!       keys: [localhost]        # key aliases in the vault's keys store
//!       sni: [localhost]         # server names accepted (any when absent)
//!       alpn: [http/1.1, h2]     # allowed protocols; the client's preferred one is chosen
//!       mutual: none             # none | requested | required (default: required if trust)
//!       trust: [clientca]        # aliases in the trust store, for client certificates
//!       version: TLS             # TLS (1.2 and 1.3), TLSv1.2 or TLSv1.3
//!     routes:
//!       - when: [{alpn: h2}, {authority: localhost, port: 7143}]
//!         exit: north_http_server
//!     exit: north_http_server    # when no route matches (else the connection is closed)
//!   south_tls_client:
//!     type: tls
//!     kind: client
//!     vault: my_clients          # optional: trust store, client key
//!     options:
//!       trust: [kafkaca]         # aliases in the trust store
//!       trustcacerts: true       # also trust the public authorities (default when no trust)
//!       sni: [kafka.example.com] # name to ask for and verify (default: the destination host)
//!       alpn: [kafka]
//!       keys: [client]           # a client certificate, for servers that require one
//!     exit: south_tcp_client
//!   north_tls_proxy:
//!     type: tls
//!     kind: proxy                # no options, no vault: TLS is not terminated
//!     routes:
//!       - when: [{authority: example.com, alpn: h2}]
//!         exit: south_tcp_client # connects to its options' host and port
//!     exit: other_tcp_client     # when no route matches (else the connection is closed)
//! ```
//!
//! Route conditions (`when`, OR-ed; fields of one AND-ed): `authority` (the server name the
//! client sent), `alpn` (the protocol negotiated), `port` (the local port of the TCP
//! connection underneath). Keys are chosen by server name: a key whose alias equals the
//! name, else one whose certificate covers it, else the first key. With `sni` set, a hello
//! naming another server is refused. A hello naming none (no SNI: a client by IP address, a
//! load balancer's health check) is accepted, as Zilla does whatever `sni` says, and routed
//! by the routes without `authority` and the `exit`; with neither it is refused in the
//! handshake (docs/architecture.md).
//!
//! Keys are read from the vault in `prepare`, before the engine reports ready: a missing
//! store, a wrong password or an unknown alias stops start-up (exit code 1) with the
//! vault's message naming the vault, the file and the cause.
//!
//! Revocation: when the vault checks it (`revocation: crl` with `crls: [files]`, see
//! `vault-filesystem`), a server checks the certificates clients present and a client the
//! server's, against the vault's lists, each certificate of the chain but the anchor. A
//! revoked certificate, one whose issuer has no list, or a list past its `nextUpdate` fails
//! the handshake (`tls_handshake_failed`); with `mutual: requested` a client that presents
//! no certificate is still served. An unreadable list stops start-up, naming the file.
//!
//! ## Streams
//!
//! - Server: takes the network stream from a tcp server and answers it at once. After the
//!   handshake it opens the plaintext stream with
//!   [`BeginEx::Tls`](binding_api::ext::BeginEx) ([`TlsBeginEx`](binding_api::ext::tls::TlsBeginEx):
//!   negotiated ALPN, server name and the tcp addresses underneath); the http binding reads
//!   the ALPN to speak HTTP/2 and sets `:scheme: https`. A bad hello or any handshake failure
//!   sends rustls's alert, ends that network stream, and logs one `tls_handshake_failed` line:
//!   nothing else is affected. Handshakes time out after 10 s.
//! - Client: takes a stream whose begin names the destination (as for a tcp client), opens
//!   the same begin towards its exit, and begins its reply with `BeginEx::Tls` once the
//!   handshake is done. A failed handshake refuses the stream (`unreachable`) with the cause.
//! - Proxy: takes the network stream from a tcp server and answers it at once, reads the
//!   ClientHello with [`hello::parse`] (server name and offered ALPN protocols; a route's
//!   `alpn` matches a protocol the client offers), then opens a stream towards the route's
//!   exit with `BeginEx::Tls` (server name and tcp addresses, no ALPN: none is negotiated
//!   here) and passes the bytes on, the hello first, both ways within each side's credit
//!   (20 KiB); end, abort and reset cross as they come. Not a hello, or none within 10 s:
//!   one `tls_handshake_failed` line and the connection ends; no route: the connection ends.
//! - Server and client: end ↔ `close_notify` + end; abort ↔ abort. Credit both ways: the network side is
//!   granted 20 KiB and replenished only when a frame is wholly inside rustls, which takes no
//!   more while 16 KiB of decrypted bytes wait for the application's credit; the application
//!   is granted 16 KiB and replenished only when its ciphertext has left. An idle connection
//!   holds no buffer of this binding, and rustls's read buffer is trimmed to 4 KiB after each
//!   frame; its session state is a few KiB.
//!
//! `tests/tls.rs` runs the bindings back to back against a rustls client (the proxy in
//! front of servers); the hello parser is property-tested and fuzzed (`tls_client_hello`):
//! `cargo test -p binding-tls`.

mod accept;
mod client;
mod config;
pub mod hello;
mod keys;
mod proxy;
mod server;
mod session;

use std::sync::Arc;

use binding_api::binding::Binding;
use binding_api::route::Route;
use zilla_config::factory::{BindingConfig, BindingFactory, ExitRule, Kind};
use zilla_config::{ConfigError, ConfigErrorKind};

pub use client::TlsClient;
pub use config::{Condition, Mutual, TlsOptions, Version};
pub use proxy::TlsProxy;
pub use server::TlsServer;

/// Builds tls bindings from configuration.
#[derive(Debug, Default)]
pub struct TlsFactory;

impl BindingFactory for TlsFactory {
    fn type_name(&self) -> &'static str {
        "tls"
    }

    fn kinds(&self) -> &[Kind] {
        &[Kind::Server, Kind::Client, Kind::Proxy]
    }

    fn exit_rule(&self, _kind: Kind) -> ExitRule {
        ExitRule::Required
    }

    fn build(&self, config: &BindingConfig<'_>) -> Result<Arc<dyn Binding>, ConfigError> {
        if config.kind == Kind::Proxy {
            if let Some(options) = config.options {
                return Err(ConfigError::at(
                    options.mark,
                    ConfigErrorKind::Custom(
                        "a tls proxy takes no options: it does not terminate TLS".into(),
                    ),
                )
                .with_help("remove 'options'; use a tls server to terminate"));
            }
            if config.vault_ref()?.is_some() {
                return Err(config
                    .error("a tls proxy uses no vault: it holds no keys")
                    .with_help("remove 'vault'"));
            }
        }
        let options = config::parse_options(config.options)?;
        let vault = config.vault_ref()?;
        let mut routes = Vec::with_capacity(config.routes.len());
        for route in config.routes {
            if let Some(with) = &route.with {
                return Err(ConfigError::at(
                    with.mark,
                    ConfigErrorKind::Custom("tls routes take no 'with'".into()),
                )
                .with_help("remove 'with'"));
            }
            let when = route
                .when
                .iter()
                .map(config::parse_condition)
                .collect::<Result<Vec<_>, _>>()?;
            let Some(exit) = &route.exit else {
                return Err(ConfigError::at(
                    route.mark,
                    ConfigErrorKind::MissingField {
                        field: "exit".into(),
                    },
                ));
            };
            routes.push(Route {
                when,
                exit: config.exit_binding(exit, route.mark)?,
                with: (),
            });
        }
        let exit = match config.exit {
            Some(exit) => Some(config.exit_binding(exit, config.mark)?),
            None => None,
        };
        match config.kind {
            Kind::Server => {
                let Some(vault) = vault else {
                    return Err(config
                        .error("a tls server needs a 'vault' with its keys")
                        .with_help("add 'vault: <name>' and a filesystem vault under 'vaults'"));
                };
                if options.keys.is_empty() {
                    return Err(config
                        .error("a tls server needs options.keys")
                        .with_help("add options: {keys: [<alias in the vault's keys store>]}"));
                }
                if options.mutual() != Mutual::None
                    && options.trust.is_empty()
                    && options.signers.is_empty()
                {
                    return Err(config
                        .error("'mutual' needs 'trust' or 'signers' to verify client certificates")
                        .with_help("add options.trust: [<alias in the vault's trust store>]"));
                }
                Ok(Arc::new(TlsServer::new(
                    config.name,
                    options,
                    vault,
                    routes,
                    exit,
                )))
            }
            Kind::Proxy => Ok(Arc::new(TlsProxy::new(config.name, routes, exit))),
            _ => {
                if options.mutual.is_some() || !options.signers.is_empty() {
                    return Err(config
                        .error("'mutual' and 'signers' are server options")
                        .with_help("remove them from the tls client"));
                }
                let exit = exit
                    .or_else(|| routes.first().map(|r| r.exit.clone()))
                    .ok_or_else(|| config.error("a tls client needs an 'exit' (a tcp client)"))?;
                Ok(Arc::new(TlsClient::new(config.name, options, vault, exit)))
            }
        }
    }
}

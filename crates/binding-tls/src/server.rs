//! `kind: server`: decrypts connections from the network and opens a plaintext stream per
//! connection towards the route its server name, ALPN and port select.

use std::fmt;
use std::sync::{Arc, OnceLock};

use binding_api::binding::{Binding, StartError, Worker};
use binding_api::ext::BeginEx;
use binding_api::ext::tls::TlsBeginEx;
use binding_api::frame::{Begin, ReasonKind, Reset};
use binding_api::route::{Route, Routes};
use binding_api::stream::{self, Acceptor};
use binding_api::vault::{StoreKind, Vault};
use rustls::server::{
    ClientHello, ResolvesServerCert, ResolvesServerCertUsingSni, WebPkiClientVerifier,
};
use rustls::sign::CertifiedKey;
use rustls::{Connection, ServerConfig};

use crate::accept;
use crate::config::{Condition, Mutual, TlsOptions};
use crate::keys::{certified_key, protocol_versions, provider, revocation_lists, root_store};
use crate::session::{Handshaken, Plain};

/// A tls server binding.
pub struct TlsServer {
    name: String,
    options: TlsOptions,
    vault: Arc<dyn Vault>,
    routes: Arc<Routes<Condition>>,
    config: OnceLock<Arc<ServerConfig>>,
}

impl fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsServer")
            .field("name", &self.name)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl TlsServer {
    /// A server taking its keys from `vault` ([`Binding::prepare`] reads them) that routes
    /// connections by `routes`, then to `exit`.
    pub fn new(
        name: impl Into<String>,
        options: TlsOptions,
        vault: Arc<dyn Vault>,
        routes: Vec<Route<Condition>>,
        exit: Option<Arc<dyn Binding>>,
    ) -> Self {
        TlsServer {
            name: name.into(),
            options,
            vault,
            routes: Arc::new(Routes::new(routes, exit)),
            config: OnceLock::new(),
        }
    }

    fn server_config(&self) -> Result<ServerConfig, String> {
        let mut keys = Vec::with_capacity(self.options.keys.len());
        for alias in &self.options.keys {
            let entry = self.vault.key(alias).map_err(|e| e.to_string())?;
            keys.push((alias.clone(), Arc::new(certified_key(&entry)?)));
        }
        let resolver = Arc::new(Resolver::new(
            keys,
            &self.options.sni,
            self.name_required(),
        )?);
        // Read even when no client is asked for a certificate: a bad list stops start-up.
        let crls = revocation_lists(self.vault.as_ref())?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(protocol_versions(self.options.version))
            .map_err(|e| e.to_string())?;
        let builder = match self.options.mutual() {
            Mutual::None => builder.with_no_client_auth(),
            mutual => {
                let mut certs = Vec::new();
                for alias in &self.options.trust {
                    certs.extend(
                        self.vault
                            .certificates(StoreKind::Trust, alias)
                            .map_err(|e| e.to_string())?,
                    );
                }
                for alias in &self.options.signers {
                    certs.extend(
                        self.vault
                            .certificates(StoreKind::Signers, alias)
                            .map_err(|e| e.to_string())?,
                    );
                }
                let roots = Arc::new(root_store(certs, false)?);
                let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider());
                let verifier = match crls {
                    Some(crls) => verifier.with_crls(crls).enforce_revocation_expiration(),
                    None => verifier,
                };
                let verifier = match mutual {
                    Mutual::Requested => verifier.allow_unauthenticated(),
                    _ => verifier,
                };
                builder.with_client_cert_verifier(verifier.build().map_err(|e| e.to_string())?)
            }
        };
        let mut config = builder.with_cert_resolver(resolver);
        config.alpn_protocols = self
            .options
            .alpn
            .iter()
            .map(|p| p.as_bytes().to_vec())
            .collect();
        Ok(config)
    }
}

impl Binding for TlsServer {
    fn name(&self) -> &str {
        &self.name
    }

    fn prepare(&self) -> Result<(), StartError> {
        let config = self.server_config().map_err(|message| StartError {
            binding: self.name.clone(),
            message,
        })?;
        let _ = self.config.set(Arc::new(config));
        Ok(())
    }

    fn new_stream(&self, mut stream: Acceptor, worker: &Worker) {
        let Some(config) = self.config.get().cloned() else {
            stream.refuse(Reset::new(ReasonKind::Refused, "tls server not prepared"));
            return;
        };
        if stream.output.begin(Begin::default()).is_err() {
            return;
        }
        let tcp = match &stream.begin.ext {
            BeginEx::Tcp(tcp) => Some(tcp.clone()),
            _ => None,
        };
        let open = Open {
            binding: self.name.clone(),
            routes: self.routes.clone(),
            tcp,
            worker: worker.clone(),
        };
        worker.spawn(accept::accept(config, stream.input, stream.output, open));
    }
}

impl TlsServer {
    /// Whether a hello must name a server: only when nothing would take a connection without
    /// one (no `exit`, and every route needs an `authority`). As in Zilla, `sni` does not
    /// refuse a nameless hello: clients by IP address and load balancers' health checks send
    /// no name, and a server Zilla answers must answer them too.
    fn name_required(&self) -> bool {
        let nameless_route = self
            .routes
            .iter()
            .any(|route| route.when.is_empty() || route.when.iter().any(|c| c.authority.is_none()));
        self.routes.fallback().is_none() && !nameless_route
    }
}

/// Opens the plaintext stream of a server connection once its handshake is done.
struct Open {
    binding: String,
    routes: Arc<Routes<Condition>>,
    tcp: Option<binding_api::ext::tcp::TcpBeginEx>,
    worker: Worker,
}

impl Handshaken for Open {
    fn open(&mut self, conn: &Connection) -> Option<Plain> {
        let Connection::Server(server) = conn else {
            return None;
        };
        let ext = TlsBeginEx {
            alpn: conn
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            server_name: server.server_name().map(str::to_owned),
            tcp: self.tcp.clone(),
        };
        let port = ext
            .tcp
            .as_ref()
            .and_then(|tcp| tcp.local.map(|addr| addr.port()));
        let name = ext.server_name.as_deref();
        let alpn = ext.alpn.as_deref();
        let Some(exit) = self
            .routes
            .resolve(|c| c.matches(name, alpn, port))
            .map(|resolved| resolved.exit())
        else {
            tracing::info!(
                binding = %self.binding,
                server_name = ?ext.server_name,
                alpn = ?ext.alpn,
                "tls: no route for this connection"
            );
            return None;
        };
        let (initiator, acceptor) = stream::open(Begin {
            ext: BeginEx::Tls(ext),
        });
        exit.new_stream(acceptor, &self.worker);
        Some(Plain {
            output: initiator.output,
            input: initiator.input,
        })
    }

    fn failed(&mut self, error: &rustls::Error) {
        let peer = self.tcp.as_ref().map(|t| t.remote.to_string());
        tracing::info!(
            event = "tls_handshake_failed",
            binding = %self.binding,
            peer = peer.as_deref().unwrap_or("-"),
            %error,
            "tls handshake failed"
        );
    }
}

/// Chooses the key by the server name the client asked for, refuses names outside `sni`
/// when that list is given, and a hello naming no server when a name is required.
#[derive(Debug)]
struct Resolver {
    sni: Vec<String>,
    name_required: bool,
    by_name: ResolvesServerCertUsingSni,
    named: Vec<(String, Arc<CertifiedKey>)>,
    default: Option<Arc<CertifiedKey>>,
}

impl Resolver {
    fn new(
        keys: Vec<(String, Arc<CertifiedKey>)>,
        sni: &[String],
        name_required: bool,
    ) -> Result<Self, String> {
        let mut by_name = ResolvesServerCertUsingSni::new();
        for name in sni {
            // A key whose certificate covers the name serves it; others are skipped.
            for (_, key) in &keys {
                if by_name.add(name, CertifiedKey::clone(key)).is_ok() {
                    break;
                }
            }
        }
        Ok(Resolver {
            sni: sni.iter().map(|s| s.to_ascii_lowercase()).collect(),
            name_required,
            by_name,
            default: keys.first().map(|(_, k)| k.clone()),
            named: keys,
        })
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match hello.server_name() {
            Some(name) => {
                let name = name.to_ascii_lowercase();
                if !self.sni.is_empty() && !self.sni.contains(&name) {
                    return None;
                }
                if let Some(key) = self.named.iter().find(|(alias, _)| *alias == name) {
                    return Some(key.1.clone());
                }
                self.by_name.resolve(hello).or_else(|| self.default.clone())
            }
            None if self.name_required => None,
            None => self.default.clone(),
        }
    }
}

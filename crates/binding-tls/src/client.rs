//! `kind: client`: encrypts a stream towards its exit (a tcp client) and gives the
//! application the plaintext once the handshake is done.

use std::fmt;
use std::sync::{Arc, OnceLock};

use binding_api::binding::{Binding, StartError, Worker};
use binding_api::ext::BeginEx;
use binding_api::ext::tcp::Endpoint;
use binding_api::ext::tls::TlsBeginEx;
use binding_api::frame::{Begin, Reason, ReasonKind, Reset};
use binding_api::stream::{self, Acceptor};
use binding_api::vault::{StoreKind, Vault};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, Connection};

use crate::config::TlsOptions;
use crate::keys::{protocol_versions, provider, revocation_lists, root_store};
use crate::session::{self, Handshaken, Plain};

/// A tls client binding.
pub struct TlsClient {
    name: String,
    options: TlsOptions,
    vault: Option<Arc<dyn Vault>>,
    exit: Arc<dyn Binding>,
    config: OnceLock<Arc<ClientConfig>>,
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClient")
            .field("name", &self.name)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// A client reaching servers through `exit`, trusting what `options` and `vault` say.
    pub fn new(
        name: impl Into<String>,
        options: TlsOptions,
        vault: Option<Arc<dyn Vault>>,
        exit: Arc<dyn Binding>,
    ) -> Self {
        TlsClient {
            name: name.into(),
            options,
            vault,
            exit,
            config: OnceLock::new(),
        }
    }

    fn client_config(&self) -> Result<ClientConfig, String> {
        let mut certs = Vec::new();
        if let Some(vault) = &self.vault {
            for alias in &self.options.trust {
                certs.extend(
                    vault
                        .certificates(StoreKind::Trust, alias)
                        .map_err(|e| e.to_string())?,
                );
            }
        } else if !self.options.trust.is_empty() || !self.options.keys.is_empty() {
            return Err("'trust' and 'keys' need a 'vault' on the binding".into());
        }
        // Zilla trusts the public authorities when no trust store is named.
        let public = self
            .options
            .trustcacerts
            .unwrap_or(self.options.trust.is_empty());
        let roots = root_store(certs, public)?;
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(protocol_versions(self.options.version))
            .map_err(|e| e.to_string())?;
        let crls = match &self.vault {
            Some(vault) => revocation_lists(vault.as_ref())?,
            None => None,
        };
        let builder = match crls {
            Some(crls) => builder.with_webpki_verifier(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                    .with_crls(crls)
                    .enforce_revocation_expiration()
                    .build()
                    .map_err(|e| e.to_string())?,
            ),
            None => builder.with_root_certificates(roots),
        };
        let mut config = match (self.options.keys.first(), &self.vault) {
            (Some(alias), Some(vault)) => {
                let entry = vault.key(alias).map_err(|e| e.to_string())?;
                let chain = entry
                    .chain
                    .iter()
                    .map(|der| CertificateDer::from(der.clone()))
                    .collect();
                let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(entry.key.clone()));
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("unusable key '{alias}': {e}"))?
            }
            _ => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self
            .options
            .alpn
            .iter()
            .map(|p| p.as_bytes().to_vec())
            .collect();
        Ok(config)
    }

    /// The name to verify the server's certificate against: `sni`, else the destination.
    fn server_name(&self, begin: &Begin) -> Option<ServerName<'static>> {
        if let Some(name) = self.options.sni.first() {
            return ServerName::try_from(name.clone()).ok();
        }
        match &begin.ext {
            BeginEx::Tcp(tcp) => match &tcp.remote {
                Endpoint::Host { host, .. } => ServerName::try_from(host.clone()).ok(),
                Endpoint::Addr(addr) => Some(ServerName::IpAddress(addr.ip().into())),
            },
            _ => None,
        }
    }
}

impl Binding for TlsClient {
    fn name(&self) -> &str {
        &self.name
    }

    fn prepare(&self) -> Result<(), StartError> {
        let config = self.client_config().map_err(|message| StartError {
            binding: self.name.clone(),
            message,
        })?;
        let _ = self.config.set(Arc::new(config));
        Ok(())
    }

    fn new_stream(&self, stream: Acceptor, worker: &Worker) {
        let Some(config) = self.config.get().cloned() else {
            stream.refuse(Reset::new(ReasonKind::Refused, "tls client not prepared"));
            return;
        };
        let Some(server_name) = self.server_name(&stream.begin) else {
            stream.refuse(Reset::new(
                ReasonKind::Refused,
                format!(
                    "tls client '{}': no server name (set options.sni or name a host)",
                    self.name
                ),
            ));
            return;
        };
        let conn = match ClientConnection::new(config, server_name.clone()) {
            Ok(conn) => conn,
            Err(err) => {
                stream.refuse(Reset::new(ReasonKind::Refused, err.to_string()));
                return;
            }
        };
        let (mut cipher, network) = stream::open(stream.begin.clone());
        self.exit.new_stream(network, worker);
        if !session::grant(&mut cipher.input) {
            return;
        }
        let ready = Ready {
            binding: self.name.clone(),
            server_name: server_name.to_str().into_owned(),
            application: Some(stream),
        };
        worker.spawn(session::run(
            Connection::Client(conn),
            bytes::Bytes::new(),
            cipher.input,
            cipher.output,
            ready,
        ));
    }

    fn default_destination(&self) -> Option<Endpoint> {
        self.exit.default_destination()
    }
}

/// Begins the application's reply once the handshake is done.
struct Ready {
    binding: String,
    server_name: String,
    application: Option<Acceptor>,
}

impl Handshaken for Ready {
    fn open(&mut self, conn: &Connection) -> Option<Plain> {
        let mut application = self.application.take()?;
        let tcp = match &application.begin.ext {
            BeginEx::Tcp(tcp) => Some(tcp.clone()),
            _ => None,
        };
        let ext = TlsBeginEx {
            alpn: conn
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            server_name: Some(self.server_name.clone()),
            tcp,
        };
        application
            .output
            .begin(Begin {
                ext: BeginEx::Tls(ext),
            })
            .ok()?;
        Some(Plain {
            output: application.output,
            input: application.input,
        })
    }

    fn failed(&mut self, error: &rustls::Error) {
        tracing::warn!(
            event = "tls_handshake_failed",
            binding = %self.binding,
            server_name = %self.server_name,
            %error,
            "tls handshake failed"
        );
        if let Some(application) = self.application.take() {
            application.refuse(Reset::new(
                ReasonKind::Unreachable,
                format!("tls handshake with {} failed: {error}", self.server_name),
            ));
        }
    }

    fn closed(&mut self, reason: &Reason) {
        if let Some(application) = self.application.take() {
            application.refuse(Reset::new(reason.kind, reason.detail.clone()));
        }
    }
}

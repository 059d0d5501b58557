//! Reaching the target: source-address spreading, TLS (rustls) with ALPN, the fd limit.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;

/// Setting up the network side failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The CA file could not be read or holds no certificate.
    #[error("CA file {0}: {1}")]
    Ca(String, String),
    /// https:// without --ca or --insecure.
    #[error("https:// needs --ca FILE or --insecure")]
    NoTrust,
    /// The host is not a valid TLS server name.
    #[error("bad TLS server name {0}")]
    ServerName(String),
    /// The host did not resolve.
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, io::Error),
}

/// How to open connections to the target.
pub struct Net {
    /// The target's address.
    pub addr: SocketAddr,
    /// Number of loopback source addresses to spread over (1 = let the kernel choose).
    pub sources: u8,
    /// TLS, when the URL is https://.
    pub tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl Net {
    /// Resolves `host:port` and prepares TLS when asked.
    pub async fn new(
        host: &str,
        port: u16,
        sources: u8,
        tls: Option<TlsOptions<'_>>,
    ) -> Result<Self, NetError> {
        // IPv4 first: `localhost` often resolves to ::1 before 127.0.0.1, and servers listening
        // on 0.0.0.0 only answer the latter.
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| NetError::Resolve(host.to_string(), e))?
            .collect();
        let addr = addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or(addrs.first())
            .copied()
            .ok_or_else(|| NetError::Resolve(host.to_string(), io::ErrorKind::NotFound.into()))?;
        let tls = match tls {
            None => None,
            Some(options) => {
                let name = ServerName::try_from(host.to_string())
                    .map_err(|_| NetError::ServerName(host.to_string()))?;
                Some((TlsConnector::from(Arc::new(client_config(options)?)), name))
            }
        };
        Ok(Self { addr, sources, tls })
    }

    /// Opens a TCP connection; connection `index` binds source address `127.0.0.(1 + index %
    /// sources)` when the target is on IPv4 loopback, so many thousands of connections do not
    /// exhaust one address's ephemeral ports.
    pub async fn connect(&self, index: usize) -> io::Result<TcpStream> {
        let socket = match self.addr.ip() {
            IpAddr::V4(ip) => {
                let socket = TcpSocket::new_v4()?;
                if ip.is_loopback() && self.sources > 1 {
                    let last = 1 + (index % usize::from(self.sources)) as u8;
                    socket.bind(SocketAddr::new(Ipv4Addr::new(127, 0, 0, last).into(), 0))?;
                }
                socket
            }
            IpAddr::V6(_) => TcpSocket::new_v6()?,
        };
        let stream = socket.connect(self.addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

/// What to trust and which protocol to ask for.
pub struct TlsOptions<'a> {
    /// PEM file of trusted CA certificates.
    pub ca: Option<&'a Path>,
    /// Trust any certificate.
    pub insecure: bool,
    /// ALPN protocol, `h2` or `http/1.1`.
    pub alpn: &'static [u8],
}

fn client_config(options: TlsOptions<'_>) -> Result<ClientConfig, NetError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| NetError::Ca(String::new(), e.to_string()))?;
    let mut config = if options.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let path = options.ca.ok_or(NetError::NoTrust)?;
        let shown = path.display().to_string();
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(path)
            .map_err(|e| NetError::Ca(shown.clone(), e.to_string()))?
        {
            let cert = cert.map_err(|e| NetError::Ca(shown.clone(), e.to_string()))?;
            roots
                .add(cert)
                .map_err(|e| NetError::Ca(shown.clone(), e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(NetError::Ca(shown, "no certificate".to_string()));
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![options.alpn.to_vec()];
    Ok(config)
}

/// `--insecure`: accepts any certificate, still checking the handshake signatures.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Raises the open-file limit for `wanted` descriptors: to the hard limit, and above it when the
/// process may (root). Returns the soft limit in force.
pub fn raise_fd_limit(wanted: u64) -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let current = getrlimit(Resource::Nofile);
    let hard = current.maximum.unwrap_or(u64::MAX);
    if wanted > hard {
        let raised = Rlimit {
            current: Some(wanted),
            maximum: Some(wanted),
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return wanted;
        }
    }
    let soft = Rlimit {
        current: Some(hard),
        maximum: current.maximum,
    };
    if setrlimit(Resource::Nofile, soft).is_ok() {
        hard
    } else {
        current.current.unwrap_or(0)
    }
}

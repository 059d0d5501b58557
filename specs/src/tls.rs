//! The `tls` network step: a TLS client handshake (rustls) on the connection, offering a
//! server name and application protocols, checking the protocol the server chose.
//!
//! The server's certificate is not verified (scenarios use throw-away keys); its signature
//! over the handshake is. After the step the connection carries TLS records: it is for
//! scenarios about what the handshake selects, which the binding behind the tls server then
//! sees in its begin extension.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::{Instant, timeout_at};

/// `tls: {server-name, alpn, expect-alpn}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsArgs {
    /// The name sent with SNI.
    pub server_name: String,
    /// The protocols offered by ALPN, in the client's order of preference.
    #[serde(default)]
    pub alpn: Vec<String>,
    /// The protocol the server must choose; `none` when it must choose none.
    pub expect_alpn: Option<String>,
}

/// Accepts any certificate; checks the handshake signatures with the provider's algorithms.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

fn config(alpn: &[String]) -> Result<ClientConfig, String> {
    let provider: CryptoProvider = rustls::crypto::ring::default_provider();
    let algorithms = provider.signature_verification_algorithms;
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(algorithms)))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok(config)
}

/// Writes whatever the connection has to send.
async fn flush(conn: &mut ClientConnection, write: &mut OwnedWriteHalf) -> Result<(), String> {
    while conn.wants_write() {
        let mut out = Vec::new();
        conn.write_tls(&mut out).map_err(|e| e.to_string())?;
        write
            .write_all(&out)
            .await
            .map_err(|e| format!("write failed during the handshake: {e}"))?;
    }
    Ok(())
}

/// Runs the handshake on the connection's halves by `deadline`, then checks the protocol.
pub async fn handshake(
    read: &mut OwnedReadHalf,
    write: &mut OwnedWriteHalf,
    args: &TlsArgs,
    deadline: Instant,
) -> Result<(), String> {
    let name = ServerName::try_from(args.server_name.clone())
        .map_err(|_| format!("'{}' is not a server name", args.server_name))?;
    let mut conn =
        ClientConnection::new(Arc::new(config(&args.alpn)?), name).map_err(|e| e.to_string())?;
    let mut buf = vec![0; 16 * 1024];
    while conn.is_handshaking() {
        flush(&mut conn, write).await?;
        let n = timeout_at(deadline, read.read(&mut buf))
            .await
            .map_err(|_| "the handshake did not finish in time".to_owned())?
            .map_err(|e| format!("read failed during the handshake: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection during the handshake".to_owned());
        }
        let mut received = &buf[..n];
        while !received.is_empty() {
            conn.read_tls(&mut received).map_err(|e| e.to_string())?;
            if let Err(err) = conn.process_new_packets() {
                // Tell the server why, as a client would.
                let _ = flush(&mut conn, write).await;
                return Err(format!("the handshake failed: {err}"));
            }
        }
    }
    flush(&mut conn, write).await?;
    let chosen = conn.alpn_protocol().map_or_else(
        || "none".to_owned(),
        |p| String::from_utf8_lossy(p).into_owned(),
    );
    match &args.expect_alpn {
        Some(want) if *want != chosen => Err(format!(
            "the server chose ALPN protocol '{chosen}', expected '{want}'"
        )),
        _ => Ok(()),
    }
}

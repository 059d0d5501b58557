//! From vault entries (DER bytes) to rustls's types.

use std::sync::Arc;

use binding_api::vault::{KeyEntry, Vault};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, PrivatePkcs8KeyDer,
};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, SupportedProtocolVersion};

use crate::config::Version;

/// The cryptography: *ring*, which builds with a C compiler alone.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// TLS 1.2 and 1.3, or the one `version` names.
pub(crate) fn protocol_versions(
    version: Option<Version>,
) -> &'static [&'static SupportedProtocolVersion] {
    static BOTH: [&SupportedProtocolVersion; 2] =
        [&rustls::version::TLS13, &rustls::version::TLS12];
    static TLS12: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
    static TLS13: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    match version {
        None | Some(Version::Any) => &BOTH,
        Some(Version::Tls12) => &TLS12,
        Some(Version::Tls13) => &TLS13,
    }
}

/// A signing key with its chain.
pub(crate) fn certified_key(entry: &KeyEntry) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = entry
        .chain
        .iter()
        .map(|der| CertificateDer::from(der.clone()))
        .collect();
    if chain.is_empty() {
        return Err("the key has no certificate".into());
    }
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(entry.key.clone()));
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| format!("unusable key: {e}"))
}

/// Roots from DER certificates, plus the public authorities when `public` is set.
pub(crate) fn root_store(certs: Vec<Vec<u8>>, public: bool) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for der in certs {
        roots
            .add(CertificateDer::from(der))
            .map_err(|e| format!("unusable trusted certificate: {e}"))?;
    }
    if public {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if roots.is_empty() {
        return Err("no trusted certificates: set 'trust' or 'trustcacerts: true'".into());
    }
    Ok(roots)
}

/// The vault's revocation lists, when it checks revocation (`revocation: crl`).
pub(crate) fn revocation_lists(
    vault: &dyn Vault,
) -> Result<Option<Vec<CertificateRevocationListDer<'static>>>, String> {
    match vault.revocation_lists().map_err(|e| e.to_string())? {
        // rustls checks nothing without lists: never take that for checking.
        Some(crls) if crls.is_empty() => Err(format!(
            "vault '{}' checks revocation but holds no revocation list",
            vault.name()
        )),
        crls => Ok(crls.map(|crls| {
            crls.into_iter()
                .map(CertificateRevocationListDer::from)
                .collect()
        })),
    }
}

//! # vault-filesystem
//!
//! Zilla's `filesystem` vault: private keys, trusted certificates and signers read from
//! PKCS#12 files, handed to bindings (the tls binding) by alias through
//! [`binding_api::vault::Vault`], and certificate revocation lists that the certificates
//! peers present are checked against.
//!
//! ## Configuration
//!
//! ```yaml
//! vaults:
//!   my_servers:
//!     type: filesystem
//!     options:
//!       keys:                          # private keys with their chains; alias = friendlyName
//!         store: tls/localhost.p12     # relative to the directory of zilla.yaml
//!         type: pkcs12                 # the only type (default)
//!         password: ${{env.KEYSTORE_PASSWORD}}
//!       trust:                         # certificates to trust (tls client, mutual tls)
//!         store: tls/truststore.p12
//!         password: ${{env.TRUSTSTORE_PASSWORD}}
//!       signers:                       # authorities that sign client certificates
//!         store: tls/signers.p12
//!       revocation: crl                # check peers' certificates against CRLs
//!       crls: [tls/ca.crl]             # ours: the CRL files (PEM or DER), needed with crl
//! ```
//!
//! An alias is the PKCS#12 `friendlyName` of the entry (`openssl pkcs12 -export -name
//! localhost`, `keytool -alias`). A certificate without one (openssl writes none for
//! `-nokeys` exports) is known by its subject's common name (`CN=test ca` → `test ca`), or
//! by its whole subject when it has no common name.
//!
//! ## Revocation
//!
//! `revocation: crl` is Zilla's switch; where the lists come from is ours: `crls` names the
//! files (PEM with one or more `X509 CRL` sections, or DER), relative to the configuration's
//! directory. Zilla has its JVM look the lists up; zilla-rs fetches nothing, so
//! `revocation: crl` without `crls` is a configuration error, as is `crls` without it and any
//! other `revocation` value. Every certificate of a peer's chain but the trust anchor is
//! checked: a listed serial, a certificate whose issuer has no list here, or a list past its
//! `nextUpdate` refuses the handshake. The lists are read once, at start-up: replace the
//! files and restart to take in a new list.
//!
//! ## When files are read
//!
//! Building a vault reads nothing, so `zilla validate` needs no key files. A store is read
//! and decrypted the first time a binding asks for an entry (the tls binding does so in
//! `prepare`, before the engine reports ready) and kept for the life of the process. A
//! missing file, a wrong password or a file that is not PKCS#12 (or not a CRL) is then a
//! start-up error naming the vault, the store, the file and the cause; `zilla start` exits with code 1
//! before the ready line.
//!
//! ## Example
//!
//! ```no_run
//! use binding_api::vault::Vault;
//! use vault_filesystem::{FilesystemVault, StoreConfig};
//!
//! let vault = FilesystemVault::new("my_servers")
//!     .with_keys(StoreConfig::new("tls/localhost.p12").password("generated"));
//! let key = vault.key("localhost")?;
//! println!("{} certificates, {} key bytes", key.chain.len(), key.key.len());
//! # Ok::<(), binding_api::vault::VaultError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use binding_api::vault::{KeyEntry, StoreKind, Vault, VaultError};
use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12Archive, Pkcs12ImportPolicy};
use rustls_pki_types::CertificateRevocationListDer;
use rustls_pki_types::pem::PemObject;
use webpki::OwnedCertRevocationList;

/// Where one store is and how to open it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreConfig {
    path: PathBuf,
    password: String,
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl StoreConfig {
    /// A store at `path` with an empty password.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StoreConfig {
            path: path.into(),
            password: String::new(),
        }
    }

    /// Sets the password.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = password.into();
        self
    }

    /// Resolves a relative path against `base` (the configuration file's directory).
    pub fn relative_to(mut self, base: &Path) -> Self {
        if self.path.is_relative() {
            self.path = base.join(&self.path);
        }
        self
    }
}

/// What a store held once read.
#[derive(Default)]
struct Loaded {
    keys: BTreeMap<String, KeyEntry>,
    certificates: BTreeMap<String, Vec<Vec<u8>>>,
}

struct Store {
    config: StoreConfig,
    loaded: OnceLock<Result<Loaded, String>>,
}

impl Store {
    fn new(config: StoreConfig) -> Self {
        Store {
            config,
            loaded: OnceLock::new(),
        }
    }

    fn get(&self, vault: &str, kind: StoreKind) -> Result<&Loaded, VaultError> {
        let loaded = self.loaded.get_or_init(|| read_store(&self.config, kind));
        loaded.as_ref().map_err(|cause| VaultError::Store {
            vault: vault.to_owned(),
            store: kind,
            path: self.config.path.clone(),
            cause: cause.clone(),
        })
    }
}

/// Reads and decrypts a PKCS#12 file. A key store links keys to their chains; a trust or
/// signers store takes every certificate it holds.
fn read_store(config: &StoreConfig, kind: StoreKind) -> Result<Loaded, String> {
    let bytes = std::fs::read(&config.path).map_err(|err| err.to_string())?;
    let loaded = match kind {
        StoreKind::Keys => read_keys(&bytes, &config.password)?,
        StoreKind::Trust | StoreKind::Signers => read_certificates(&bytes, &config.password)?,
    };
    if loaded.keys.is_empty() && loaded.certificates.is_empty() {
        return Err("the store holds no key or certificate".into());
    }
    Ok(loaded)
}

fn read_keys(bytes: &[u8], password: &str) -> Result<Loaded, String> {
    let store = KeyStore::from_pkcs12(bytes, password, Pkcs12ImportPolicy::Relaxed)
        .map_err(|err| describe(&err))?;
    let mut loaded = Loaded::default();
    for (alias, entry) in store.entries() {
        if let KeyStoreEntry::PrivateKeyChain(chain) = entry {
            let certs: Vec<Vec<u8>> = chain.certs().iter().map(|c| c.as_der().to_vec()).collect();
            loaded.certificates.insert(alias.clone(), certs.clone());
            loaded.keys.insert(
                alias.clone(),
                KeyEntry {
                    chain: certs,
                    key: chain.key().as_der().to_vec(),
                },
            );
        }
    }
    Ok(loaded)
}

/// Certificates by alias: the bag's friendlyName, else its subject's common name (openssl
/// writes no friendlyName for certificates exported without a key), else the whole subject.
fn read_certificates(bytes: &[u8], password: &str) -> Result<Loaded, String> {
    let archive = Pkcs12Archive::from_pkcs12(bytes, password).map_err(|err| describe(&err))?;
    let mut loaded = Loaded::default();
    for bag in archive.certs {
        let subject = bag.cert.subject();
        let alias = bag.friendly_name.clone().unwrap_or_else(|| {
            subject
                .split(", ")
                .find_map(|part| part.strip_prefix("CN="))
                .unwrap_or(subject)
                .to_owned()
        });
        loaded
            .certificates
            .entry(alias)
            .or_default()
            .push(bag.cert.as_der().to_vec());
    }
    Ok(loaded)
}

/// The revocation lists of `revocation: crl`, read on first use.
struct Crls {
    paths: Vec<PathBuf>,
    loaded: OnceLock<Result<Vec<Vec<u8>>, VaultError>>,
}

impl Crls {
    fn get(&self, vault: &str) -> Result<Vec<Vec<u8>>, VaultError> {
        self.loaded
            .get_or_init(|| {
                let mut crls = Vec::new();
                for path in &self.paths {
                    crls.extend(read_crls(path).map_err(|cause| VaultError::Crl {
                        vault: vault.to_owned(),
                        path: path.clone(),
                        cause,
                    })?);
                }
                Ok(crls)
            })
            .clone()
    }
}

/// The CRLs of one file, DER (a file starting with an ASN.1 SEQUENCE) or else PEM, each
/// checked to decode.
fn read_crls(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let bytes = std::fs::read(path).map_err(|err| err.to_string())?;
    let crls = if bytes.first() == Some(&0x30) {
        vec![bytes]
    } else {
        CertificateRevocationListDer::pem_slice_iter(&bytes)
            .map(|crl| crl.map(|der| der.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| format!("not a readable PEM file ({err})"))?
    };
    if crls.is_empty() {
        return Err("the file holds no 'X509 CRL' section".into());
    }
    for der in &crls {
        OwnedCertRevocationList::from_der(der)
            .map_err(|err| format!("not a certificate revocation list ({err})"))?;
    }
    Ok(crls)
}

/// A PKCS#12 error in words an operator can act on: a MAC failure means a wrong password.
fn describe(err: &p12_keystore::error::Error) -> String {
    let text = err.to_string();
    if text.to_ascii_lowercase().contains("mac") {
        format!("wrong password or corrupt file ({text})")
    } else {
        format!("not a readable PKCS#12 store ({text})")
    }
}

/// A `filesystem` vault.
pub struct FilesystemVault {
    name: String,
    keys: Option<Store>,
    trust: Option<Store>,
    signers: Option<Store>,
    crls: Option<Crls>,
}

impl fmt::Debug for FilesystemVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = |s: &Option<Store>| s.as_ref().map(|s| s.config.path.clone());
        f.debug_struct("FilesystemVault")
            .field("name", &self.name)
            .field("keys", &path(&self.keys))
            .field("trust", &path(&self.trust))
            .field("signers", &path(&self.signers))
            .field("crls", &self.crls.as_ref().map(|c| c.paths.clone()))
            .finish()
    }
}

impl FilesystemVault {
    /// A vault with no stores yet.
    pub fn new(name: impl Into<String>) -> Self {
        FilesystemVault {
            name: name.into(),
            keys: None,
            trust: None,
            signers: None,
            crls: None,
        }
    }

    /// Sets the `keys` store.
    pub fn with_keys(mut self, store: StoreConfig) -> Self {
        self.keys = Some(Store::new(store));
        self
    }

    /// Sets the `trust` store.
    pub fn with_trust(mut self, store: StoreConfig) -> Self {
        self.trust = Some(Store::new(store));
        self
    }

    /// Sets the `signers` store.
    pub fn with_signers(mut self, store: StoreConfig) -> Self {
        self.signers = Some(Store::new(store));
        self
    }

    /// Checks peers' certificates against the CRLs in `paths` (`revocation: crl`).
    pub fn with_revocation_lists(mut self, paths: impl IntoIterator<Item = PathBuf>) -> Self {
        self.crls = Some(Crls {
            paths: paths.into_iter().collect(),
            loaded: OnceLock::new(),
        });
        self
    }

    fn store(&self, kind: StoreKind) -> Result<&Loaded, VaultError> {
        let store = match kind {
            StoreKind::Keys => &self.keys,
            StoreKind::Trust => &self.trust,
            StoreKind::Signers => &self.signers,
        };
        match store {
            Some(store) => store.get(&self.name, kind),
            None => Err(VaultError::NoStore {
                vault: self.name.clone(),
                store: kind,
            }),
        }
    }
}

impl Vault for FilesystemVault {
    fn name(&self) -> &str {
        &self.name
    }

    fn key(&self, alias: &str) -> Result<KeyEntry, VaultError> {
        let loaded = self.store(StoreKind::Keys)?;
        loaded
            .keys
            .get(alias)
            .cloned()
            .ok_or_else(|| VaultError::NoEntry {
                vault: self.name.clone(),
                store: StoreKind::Keys,
                alias: alias.to_owned(),
                entries: loaded.keys.keys().cloned().collect(),
            })
    }

    fn certificates(&self, store: StoreKind, alias: &str) -> Result<Vec<Vec<u8>>, VaultError> {
        let loaded = self.store(store)?;
        loaded
            .certificates
            .get(alias)
            .cloned()
            .ok_or_else(|| VaultError::NoEntry {
                vault: self.name.clone(),
                store,
                alias: alias.to_owned(),
                entries: loaded.certificates.keys().cloned().collect(),
            })
    }

    fn all_certificates(&self, store: StoreKind) -> Result<Vec<Vec<u8>>, VaultError> {
        let loaded = self.store(store)?;
        Ok(loaded.certificates.values().flatten().cloned().collect())
    }

    fn revocation_lists(&self) -> Result<Option<Vec<Vec<u8>>>, VaultError> {
        self.crls
            .as_ref()
            .map(|crls| crls.get(&self.name))
            .transpose()
    }
}

#[cfg(test)]
mod tests;

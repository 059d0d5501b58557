//! Vaults: where bindings find keys and certificates by alias.
//!
//! A vault is named in `zilla.yaml` under `vaults` and referenced by a binding's `vault`. The
//! engine builds every vault before the bindings and hands a binding its vault in
//! [`BindingConfig::vault_ref`](crate::binding::BindingConfig::vault_ref). Building is pure:
//! a vault reads its stores when first asked, so a missing file or a wrong password surfaces
//! from [`Binding::prepare`](crate::binding::Binding::prepare) as a start-up error, before
//! the ready line, naming the vault, the file and the cause.
//!
//! Everything crosses this interface as DER bytes, so the api crate depends on no TLS library.

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

/// A private key with its certificate chain.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyEntry {
    /// The certificate chain, leaf first, each certificate DER-encoded.
    pub chain: Vec<Vec<u8>>,
    /// The private key, PKCS#8 DER.
    pub key: Vec<u8>,
}

impl fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEntry")
            .field("chain", &self.chain.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Which store of a vault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// `keys`: private keys with their certificates.
    Keys,
    /// `trust`: certificates of peers or authorities to trust.
    Trust,
    /// `signers`: authorities that sign the certificates clients present.
    Signers,
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreKind::Keys => "keys",
            StoreKind::Trust => "trust",
            StoreKind::Signers => "signers",
        })
    }
}

/// Why a vault could not give what was asked.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum VaultError {
    /// The store file could not be read or decoded.
    #[error("vault '{vault}': {store} store '{}': {cause}", path.display())]
    Store {
        /// The vault's name.
        vault: String,
        /// Which store.
        store: StoreKind,
        /// The file, resolved against the configuration's directory.
        path: PathBuf,
        /// What went wrong (not found, wrong password, not PKCS#12...).
        cause: String,
    },
    /// The vault has no such store configured.
    #[error("vault '{vault}' has no '{store}' store")]
    NoStore {
        /// The vault's name.
        vault: String,
        /// Which store.
        store: StoreKind,
    },
    /// A certificate revocation list could not be read or decoded.
    #[error("vault '{vault}': revocation list '{}': {cause}", path.display())]
    Crl {
        /// The vault's name.
        vault: String,
        /// The file, resolved against the configuration's directory.
        path: PathBuf,
        /// What went wrong (not found, not a CRL...).
        cause: String,
    },
    /// The store has no entry of that alias.
    #[error("vault '{vault}': {store} store has no entry '{alias}' (entries: {})", entries.join(", "))]
    NoEntry {
        /// The vault's name.
        vault: String,
        /// Which store.
        store: StoreKind,
        /// The alias asked for.
        alias: String,
        /// The aliases it has.
        entries: Vec<String>,
    },
}

/// A source of keys and certificates.
pub trait Vault: Send + Sync + fmt::Debug {
    /// The vault's name.
    fn name(&self) -> &str;

    /// The private key and chain stored under `alias` in the `keys` store.
    fn key(&self, alias: &str) -> Result<KeyEntry, VaultError>;

    /// The DER certificates stored under `alias` in the `trust` or `signers` store.
    fn certificates(&self, store: StoreKind, alias: &str) -> Result<Vec<Vec<u8>>, VaultError>;

    /// Every certificate of the `trust` or `signers` store, for bindings that name no alias.
    fn all_certificates(&self, store: StoreKind) -> Result<Vec<Vec<u8>>, VaultError>;

    /// The certificate revocation lists (DER) that peers' certificates are checked against,
    /// or `None` when the vault checks no revocation. A certificate whose status they do not
    /// settle is refused.
    fn revocation_lists(&self) -> Result<Option<Vec<Vec<u8>>>, VaultError>;
}

//! cosign-compatible signatures of pushed manifests, without Rekor or Fulcio: an offline
//! ECDSA P-256 key signs cosign's "simple signing" payload ([`payload`]), and the signature
//! is stored where `cosign verify --key` looks for it ([`store`]: the `sha256-<hex>.sig`
//! tag of the signed manifest's repository, one layer per signature).

pub mod docs;
mod keys;
pub mod payload;
pub mod store;

pub use keys::{PublicKey, SigningKey};

use crate::config::SigningConfig;

/// Why a key cannot be used or a signature not made or read.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The configured private key cannot be read; never shows the key.
    #[error("{0}")]
    BadKey(String),
    #[error("{0}")]
    BadPublicKey(String),
    #[error("signing failed in the crypto library")]
    Sign,
    /// A `.sig` manifest that is not what cosign writes (named by its tag).
    #[error("{tag}: not a cosign signature manifest: {reason}")]
    BadManifest { tag: String, reason: String },
}

/// The property a key error belongs to.
pub const KEY_PROPERTY: &str = "signing.key";

/// The signing key of a configuration (the configuration is checked with [`check`] first).
pub fn signer(config: &SigningConfig) -> Result<SigningKey, SigningError> {
    match &config.key {
        Some(pem) => SigningKey::from_pem(pem.expose()),
        None => Err(SigningError::BadKey("set key".into())),
    }
}

/// Check of the `signing` block: `(field under signing, reason)`.
pub fn check(config: &SigningConfig) -> Result<(), (&'static str, String)> {
    match &config.key {
        None => Err((
            "",
            "set key (a PEM PKCS#8 EC P-256 private key) to sign what is pushed".into(),
        )),
        Some(pem) => SigningKey::from_pem(pem.expose())
            .map(|_| ())
            .map_err(|e| (".key", e.to_string())),
    }
}

//! cosign-compatible signatures of pushed manifests, without Rekor or Fulcio: an offline
//! ECDSA P-256 key signs cosign's "simple signing" payload ([`payload`]), and the signature
//! is stored where `cosign verify --key` looks for it ([`store`]: the `sha256-<hex>.sig`
//! tag of the signed manifest's repository, one layer per signature).

pub mod docs;
mod keys;
pub mod payload;
pub mod store;

pub use keys::{PublicKey, SigningKey};

use crate::config::{SecretString, SigningConfig};
use crate::ecr::EcrTokens;

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
    #[error("AWS KMS: {0}")]
    Kms(String),
    /// A `.sig` manifest that is not what cosign writes (named by its tag).
    #[error("{tag}: not a cosign signature manifest: {reason}")]
    BadManifest { tag: String, reason: String },
}

/// The property a key error belongs to.
pub const KEY_PROPERTY: &str = "signing.key";
/// The property a KMS key error belongs to.
pub const KMS_PROPERTY: &str = "signing.kmsKeyId";

/// The configured signing key, opened when an operation signs (a KMS key's public key is
/// asked for then).
#[derive(Clone)]
pub enum Signer {
    Pem(SecretString),
    Kms { key_id: String, aws: EcrTokens },
}

impl Signer {
    /// The signer of a `signing` block (checked with [`check`] first); `aws`: the identity
    /// KMS calls use.
    pub fn new(config: &SigningConfig, aws: EcrTokens) -> Option<Self> {
        match (&config.key, &config.kms_key_id) {
            (Some(pem), _) => Some(Signer::Pem(pem.clone())),
            (None, Some(id)) => Some(Signer::Kms {
                key_id: id.clone(),
                aws,
            }),
            (None, None) => None,
        }
    }

    /// The property a failure of this signer belongs to.
    pub fn property(&self) -> &'static str {
        match self {
            Signer::Pem(_) => KEY_PROPERTY,
            Signer::Kms { .. } => KMS_PROPERTY,
        }
    }

    pub async fn open(&self) -> Result<OpenSigner, SigningError> {
        match self {
            Signer::Pem(pem) => {
                let key = SigningKey::from_pem(pem.expose())?;
                let public = key.public_key().clone();
                Ok(OpenSigner {
                    how: How::Local(key),
                    public,
                })
            }
            Signer::Kms { key_id, aws } => {
                let der = aws
                    .kms_public_key(key_id)
                    .await
                    .map_err(|e| SigningError::Kms(format!("GetPublicKey of {key_id}: {e}")))?;
                let public = PublicKey::from_der(der)?;
                Ok(OpenSigner {
                    how: How::Kms(key_id.clone(), aws.clone()),
                    public,
                })
            }
        }
    }
}

enum How {
    Local(SigningKey),
    Kms(String, EcrTokens),
}

/// A signer ready to sign, with its public key.
pub struct OpenSigner {
    how: How,
    public: PublicKey,
}

impl OpenSigner {
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// An ASN.1 DER ECDSA P-256 SHA-256 signature of `message`.
    pub async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        match &self.how {
            How::Local(k) => k.sign(message),
            How::Kms(id, aws) => aws
                .kms_sign(id, message)
                .await
                .map_err(|e| SigningError::Kms(format!("Sign with {id}: {e}"))),
        }
    }
}

/// Check of the `signing` block: `(field under signing, reason)`.
pub fn check(config: &SigningConfig) -> Result<(), (&'static str, String)> {
    match (&config.key, &config.kms_key_id) {
        (None, None) => Err((
            "",
            "set key (a PEM PKCS#8 EC P-256 private key) or kmsKeyId to sign what is pushed".into(),
        )),
        (Some(_), Some(_)) => Err(("", "set key or kmsKeyId, not both".into())),
        (None, Some(id)) if id.trim().is_empty() => Err((
            ".kmsKeyId",
            "is empty; give a key id, ARN or alias/…".into(),
        )),
        (None, Some(_)) => Ok(()),
        (Some(pem), None) => SigningKey::from_pem(pem.expose())
            .map(|_| ())
            .map_err(|e| (".key", e.to_string())),
    }
}

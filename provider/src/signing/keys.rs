//! Keys: a PEM PKCS#8 ECDSA P-256 private key (what `openssl genpkey -algorithm EC -pkeyopt
//! ec_paramgen_curve:P-256` writes) signs; PEM public keys (what `cosign public-key` and
//! `openssl pkey -pubout` write) verify. A key is named by its fingerprint, the SHA-256 of its
//! public key's DER (SubjectPublicKeyInfo), which is safe to record and show.

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_ASN1,
    ECDSA_P256_SHA256_ASN1_SIGNING,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivatePkcs8KeyDer, SubjectPublicKeyInfoDer};

use super::SigningError;
use crate::registry::manifest::sha256_digest;

/// A private signing key. Its Debug and Display show the fingerprint only.
pub struct SigningKey {
    pair: EcdsaKeyPair,
    public: PublicKey,
}

impl SigningKey {
    /// Reads a PEM `PRIVATE KEY` (PKCS#8, unencrypted) holding an ECDSA P-256 key. The error
    /// says what is wrong without repeating any of the key.
    pub fn from_pem(pem: &str) -> Result<Self, SigningError> {
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem.trim().as_bytes()).map_err(|_| {
            SigningError::BadKey(
                "not a PEM `PRIVATE KEY` block (PKCS#8, unencrypted; convert with \
                 `openssl pkcs8 -topk8 -nocrypt`)"
                    .into(),
            )
        })?;
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der.secret_pkcs8_der())
                .map_err(|e| {
                    SigningError::BadKey(format!("not an ECDSA P-256 private key ({e})"))
                })?;
        let spki = pair
            .public_key()
            .as_der()
            .map_err(|_| SigningError::BadKey("its public key cannot be encoded".into()))?;
        let public = PublicKey {
            spki: spki.as_ref().to_vec(),
        };
        Ok(SigningKey { pair, public })
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// An ASN.1 DER ECDSA signature over SHA-256 of `message` (what cosign verifies).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        self.pair
            .sign(&SystemRandom::new(), message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| SigningError::Sign)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.public.fingerprint())
    }
}

/// An ECDSA P-256 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    spki: Vec<u8>,
}

impl PublicKey {
    /// Reads a PEM `PUBLIC KEY` block (SubjectPublicKeyInfo) of an ECDSA P-256 key.
    pub fn from_pem(pem: &str) -> Result<Self, SigningError> {
        let der = SubjectPublicKeyInfoDer::from_pem_slice(pem.trim().as_bytes())
            .map_err(|_| SigningError::BadPublicKey("not a PEM `PUBLIC KEY` block".into()))?;
        let key = PublicKey {
            spki: der.as_ref().to_vec(),
        };
        // The curve is checked now, not at the first signature it fails to verify.
        if !key.is_p256() {
            return Err(SigningError::BadPublicKey(
                "not an ECDSA P-256 public key".into(),
            ));
        }
        Ok(key)
    }

    /// A DER SubjectPublicKeyInfo (what KMS's GetPublicKey answers).
    pub fn from_der(spki: Vec<u8>) -> Result<Self, SigningError> {
        let key = PublicKey { spki };
        if !key.is_p256() {
            return Err(SigningError::BadPublicKey(
                "not an ECDSA P-256 public key (a KMS key of spec ECC_NIST_P256 is needed)".into(),
            ));
        }
        Ok(key)
    }

    /// The id of the P-256 curve (1.2.840.10045.3.1.7) in the key's algorithm identifier.
    fn is_p256(&self) -> bool {
        const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        self.spki.windows(P256.len()).any(|w| w == P256)
    }

    /// `sha256:<hex>` of the DER SubjectPublicKeyInfo.
    pub fn fingerprint(&self) -> String {
        sha256_digest(&self.spki)
    }

    /// The key as PEM, as `cosign verify --key` reads it.
    #[cfg(test)]
    pub fn to_pem(&self) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.spki);
        let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("-----END PUBLIC KEY-----\n");
        out
    }

    /// True when `signature` (ASN.1 DER ECDSA) is this key's over `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.spki)
            .verify(message, signature)
            .is_ok()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway key made for these tests (`openssl genpkey -algorithm EC -pkeyopt
    /// ec_paramgen_curve:P-256`).
    pub(crate) const TEST_KEY: &str = include_str!("testdata/key.pem");
    const TEST_PUB: &str = include_str!("testdata/pub.pem");

    #[test]
    fn signs_what_the_public_key_verifies() {
        let k = SigningKey::from_pem(TEST_KEY).unwrap();
        let sig = k.sign(b"payload").unwrap();
        let p = PublicKey::from_pem(TEST_PUB).unwrap();
        assert_eq!(&p, k.public_key());
        assert!(p.verifies(b"payload", &sig));
        assert!(!p.verifies(b"other", &sig));
        assert_eq!(PublicKey::from_pem(&p.to_pem()).unwrap(), p);
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        for bad in ["", "hello", TEST_PUB] {
            let e = SigningKey::from_pem(bad).unwrap_err().to_string();
            assert!(e.contains("PRIVATE KEY"), "{e}");
        }
        let rsa = include_str!("testdata/rsa.pem");
        let e = SigningKey::from_pem(rsa).unwrap_err().to_string();
        assert!(e.contains("P-256"), "{e}");
        assert!(!e.contains("MII"), "{e}");
        assert!(PublicKey::from_pem(TEST_KEY).is_err());
    }

    #[test]
    fn debug_shows_the_fingerprint_only() {
        let k = SigningKey::from_pem(TEST_KEY).unwrap();
        let d = format!("{k:?}");
        assert!(d.starts_with("SigningKey(sha256:"), "{d}");
    }
}

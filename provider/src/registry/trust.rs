//! Server certificate checks for the registry client: the system's trusted roots plus the
//! configured CAs, loaded when the first TLS handshake needs them.
//!
//! Loading the system's roots reads and parses every certificate of the system's store
//! (about 140 files here). reqwest's default verifier does that each time a client is
//! built, oci-client builds two, and the provider builds one set before Configure and one
//! after: seven loads before the first registry answer of a cold `up`. Here the system's
//! roots are read once per process, on the first handshake (off the Configure path), and
//! every client of the process shares them.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// The system's trusted roots (honouring `SSL_CERT_FILE` / `SSL_CERT_DIR`), read once per
/// process. Unreadable entries are skipped, as the platform verifier does.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::debug!("the system's trusted roots: {e}");
        }
        roots.add_parsable_certificates(found.certs);
        roots
    })
}

/// A CA certificate that cannot be a trust anchor.
#[derive(Debug, thiserror::Error)]
#[error("a trusted CA certificate: {0}")]
pub struct BadCa(rustls::Error);

/// Verifies like rustls' WebPKI verifier over the system's roots and `extra`, building it on
/// first use.
#[derive(Debug)]
pub struct LazyRoots {
    extra: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
    verifier: OnceLock<Result<Arc<WebPkiServerVerifier>, rustls::Error>>,
}

impl LazyRoots {
    /// Checks now that each of `extra` can be a trust anchor (so a bad CA fails Configure);
    /// the system's roots are read later.
    pub fn new(extra: Vec<CertificateDer<'static>>) -> Result<Self, BadCa> {
        let mut probe = RootCertStore::empty();
        for c in &extra {
            probe.add(c.clone()).map_err(BadCa)?;
        }
        Ok(LazyRoots {
            extra,
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
            verifier: OnceLock::new(),
        })
    }

    /// Reads the roots now if nobody has (a blocking call: for a worker thread).
    pub fn warm(&self) {
        let _ = self.verifier();
    }

    fn verifier(&self) -> Result<&Arc<WebPkiServerVerifier>, rustls::Error> {
        self.verifier
            .get_or_init(|| {
                let mut roots = system_roots().clone();
                for c in &self.extra {
                    // Checked in `new`.
                    let _ = roots.add(c.clone());
                }
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                    .build()
                    .map_err(|e| rustls::Error::General(format!("no trusted roots: {e}")))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// A client configuration offering the protocols of `alpn`.
    pub fn client_config(
        self: &Arc<Self>,
        alpn: Alpn,
    ) -> Result<rustls::ClientConfig, rustls::Error> {
        let mut config = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(self.clone())
            .with_no_client_auth();
        config.alpn_protocols = match alpn {
            Alpn::Http2OrHttp1 => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            Alpn::Http1 => vec![b"http/1.1".to_vec()],
        };
        Ok(config)
    }
}

/// The protocols a client offers through ALPN.
#[derive(Debug, Clone, Copy)]
pub enum Alpn {
    /// HTTP/2 where the server takes it.
    Http2OrHttp1,
    /// HTTP/1.1 only (one request per connection at a time).
    Http1,
}

impl ServerCertVerifier for LazyRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_that_is_no_ca_is_refused_before_any_handshake() {
        let err = LazyRoots::new(vec![CertificateDer::from(vec![1, 2, 3])]).unwrap_err();
        assert!(
            err.to_string().starts_with("a trusted CA certificate"),
            "{err}"
        );
    }

    #[test]
    fn the_system_roots_are_read_on_first_use_only() {
        let roots = Arc::new(LazyRoots::new(Vec::new()).unwrap());
        let config = roots.client_config(Alpn::Http2OrHttp1).unwrap();
        assert!(roots.verifier.get().is_none());
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        roots.warm();
        assert!(roots.verifier.get().is_some_and(|v| v.is_ok()));
    }
}

//! go-plugin's AutoMTLS: Terraform passes its client certificate (self-signed ECDSA P-521)
//! in `PLUGIN_CLIENT_CERT`; the plugin answers with its own self-signed certificate in the
//! handshake line and accepts only connections presenting exactly Terraform's certificate.
//! The crypto provider is aws-lc-rs, set explicitly on these configs (ring cannot verify
//! P-521 signatures), so no process-wide default is installed or needed.

use std::sync::Arc;

use base64::Engine as _;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// Our certificate and the server configuration that requires Terraform's.
pub struct Tls {
    /// DER of the server certificate, base64 without padding (go-plugin's RawStdEncoding).
    pub cert_line: String,
    pub config: Arc<rustls::ServerConfig>,
}

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Builds the server side of AutoMTLS for the client certificate `client_pem`.
pub fn server(client_pem: &str) -> anyhow::Result<Tls> {
    let client = CertificateDer::from_pem_slice(client_pem.as_bytes())
        .map_err(|e| anyhow::anyhow!("PLUGIN_CLIENT_CERT is not a PEM certificate: {e}"))?;

    // Like go-plugin's own: valid for `localhost` (the name the client verifies), its own
    // issuer, usable for both ends.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "multiarch");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
        rcgen::KeyUsagePurpose::KeyAgreement,
        rcgen::KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = params.self_signed(&key)?;
    let cert_der: CertificateDer<'static> = cert.der().clone();
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));

    let provider = provider();
    let verifier = PinnedClient {
        expected: client.into_owned(),
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(vec![cert_der.clone()], key_der)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Tls {
        cert_line: base64::engine::general_purpose::STANDARD_NO_PAD.encode(cert_der.as_ref()),
        config: Arc::new(config),
    })
}

/// Accepts exactly one client certificate (the one Terraform generated for this run), and
/// only from a peer that proves it holds its key (the handshake signature, verified with
/// aws-lc-rs, P-521 included). Client authentication is mandatory.
#[derive(Debug)]
struct PinnedClient {
    expected: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for PinnedClient {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.expected.as_ref() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p521_is_verifiable_and_config_builds() {
        let schemes = provider()
            .signature_verification_algorithms
            .supported_schemes();
        assert!(schemes.contains(&SignatureScheme::ECDSA_NISTP521_SHA512));
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let client = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let tls = server(&client.pem()).unwrap();
        assert!(!tls.cert_line.contains('='));
        let der = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(&tls.cert_line)
            .unwrap();
        assert!(!der.is_empty());
        assert!(server("not a pem").is_err());
    }
}

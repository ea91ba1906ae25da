//! TLS to a standalone buildkitd over `tcp://` (`builderTls`): the server verified against
//! the given CA or the system's roots, an optional client certificate, ALPN `h2` (grpc-go
//! servers refuse TLS connections that do not offer it).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls_platform_verifier::BuilderVerifierExt;

use super::InvalidSetting;
use crate::config::BuilderTlsConfig;

/// A ready client configuration and the name buildkitd's certificate must carry.
pub(crate) struct TlsClient {
    pub config: Arc<rustls::ClientConfig>,
    pub server_name: ServerName<'static>,
}

fn bad(property: &str, reason: impl Into<String>) -> InvalidSetting {
    InvalidSetting {
        property: format!("builderTls.{property}"),
        reason: reason.into(),
    }
}

fn certificates(pem: &str, property: &str) -> Result<Vec<CertificateDer<'static>>, InvalidSetting> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(property, format!("not a PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(bad(
            property,
            "no PEM certificate found (expected -----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(certs)
}

/// Builds the client side for a buildkitd at `address` (`host:port`).
pub(crate) fn client(tls: &BuilderTlsConfig, address: &str) -> Result<TlsClient, InvalidSetting> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| InvalidSetting::new("builderTls", e.to_string()))?;
    let builder = match &tls.ca_cert {
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates(pem, "caCert")? {
                roots
                    .add(cert)
                    .map_err(|e| bad("caCert", format!("unusable certificate: {e}")))?;
            }
            builder.with_root_certificates(roots)
        }
        None => builder.with_platform_verifier().map_err(|e| {
            InvalidSetting::new("builderTls", format!("the system's trusted roots: {e}"))
        })?,
    };
    let mut config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = certificates(cert, "cert")?;
            // A PEM block of garbage would otherwise surface as a key that does not match.
            webpki::EndEntityCert::try_from(&chain[0])
                .map_err(|e| bad("cert", format!("not a valid X.509 certificate: {e}")))?;
            // The key's parse error could quote it: say only what is wrong.
            let key = PrivateKeyDer::from_pem_slice(key.expose().as_bytes())
                .map_err(|_| bad("key", "not a PEM private key (PKCS#8, PKCS#1 or SEC1)"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad("key", format!("does not go with builderTls.cert: {e}")))?
        }
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => return Err(bad("key", "required with builderTls.cert")),
        (None, Some(_)) => return Err(bad("cert", "required with builderTls.key")),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let name = match &tls.server_name {
        Some(n) => n.clone(),
        None => host_of(address).to_string(),
    };
    let server_name = ServerName::try_from(name.clone())
        .map_err(|e| bad("serverName", format!("{name:?} is not a host name: {e}")))?;
    Ok(TlsClient {
        config: Arc::new(config),
        server_name,
    })
}

/// `host` of `host:port`, `[v6]:port` or a bare host.
fn host_of(address: &str) -> &str {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match address.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => address,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretString;

    #[test]
    fn host_is_taken_from_the_address() {
        assert_eq!(host_of("buildkit.internal:1234"), "buildkit.internal");
        assert_eq!(host_of("[::1]:1234"), "::1");
        assert_eq!(host_of("10.0.0.1"), "10.0.0.1");
    }

    #[test]
    fn bad_settings_name_the_property() {
        let err = |tls: BuilderTlsConfig| client(&tls, "h:1").err().unwrap().to_string();
        let e = err(BuilderTlsConfig {
            ca_cert: Some("nope".into()),
            ..Default::default()
        });
        assert!(e.starts_with("builderTls.caCert:"), "{e}");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["c".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let e = err(BuilderTlsConfig {
            ca_cert: Some(cert.pem()),
            cert: Some(cert.pem()),
            ..Default::default()
        });
        assert!(e.starts_with("builderTls.key:"), "{e}");
        let e = err(BuilderTlsConfig {
            cert: Some(
                "-----BEGIN CERTIFICATE-----\nZ2FyYmFnZQ==\n-----END CERTIFICATE-----\n".into(),
            ),
            key: Some(SecretString::new(key.serialize_pem())),
            ..Default::default()
        });
        assert!(e.starts_with("builderTls.cert:"), "{e}");
        let e = err(BuilderTlsConfig {
            ca_cert: Some(cert.pem()),
            cert: Some(cert.pem()),
            key: Some(SecretString::new(
                "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
            )),
            ..Default::default()
        });
        assert!(e.starts_with("builderTls."), "{e}");
        assert!(!e.contains("c2VjcmV0"), "the key leaked into {e}");
        let ok = client(
            &BuilderTlsConfig {
                ca_cert: Some(cert.pem()),
                cert: Some(cert.pem()),
                key: Some(SecretString::new(key.serialize_pem())),
                server_name: Some("buildkitd".into()),
            },
            "10.0.0.1:1234",
        )
        .unwrap();
        assert_eq!(ok.config.alpn_protocols, vec![b"h2".to_vec()]);
        assert_eq!(ok.server_name.to_str(), "buildkitd");
    }
}

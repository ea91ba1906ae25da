//! TLS to a standalone buildkitd or a Docker Engine over `tcp://`: the server verified
//! against the given CA or the system's roots, an optional client certificate, ALPN `h2`
//! (grpc-go servers refuse TLS connections that do not offer it). The settings' property names are the caller's
//! (`builderTls`, `builders[0].tls`): errors here name the field only.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls_platform_verifier::BuilderVerifierExt;

use crate::secret::SecretString;

/// TLS settings for a buildkitd, as `buildctl --tlscacert --tlscert --tlskey
/// --tlsservername` takes them, but PEM contents rather than paths.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsSettings {
    /// PEM CA certificate(s) (default: the system's trusted roots).
    pub ca_cert: Option<String>,
    /// PEM client certificate (chain).
    pub cert: Option<String>,
    /// PEM private key of `cert`.
    pub key: Option<SecretString>,
    /// Name to verify the server's certificate against (default: the address's host).
    pub server_name: Option<String>,
}

/// A TLS setting that cannot be used: the field (`caCert`, `cert`, `key`, `serverName`;
/// `None` for the settings as a whole) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError {
    /// The field at fault.
    pub field: Option<&'static str>,
    reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Reason {
    Text(String),
    /// Required together with the other field.
    RequiredWith(&'static str),
    /// The key does not go with the certificate.
    KeyMismatch(String),
}

impl TlsError {
    fn whole(reason: impl Into<String>) -> Self {
        TlsError {
            field: None,
            reason: Reason::Text(reason.into()),
        }
    }

    /// Why, naming any other field under `prefix` (`builderTls`, `builders[0].tls`).
    pub fn reason(&self, prefix: &str) -> String {
        match &self.reason {
            Reason::Text(t) => t.clone(),
            Reason::RequiredWith(other) => format!("required with {prefix}.{other}"),
            Reason::KeyMismatch(e) => format!("does not go with {prefix}.cert: {e}"),
        }
    }

    /// The property under `prefix`.
    pub fn property(&self, prefix: &str) -> String {
        match self.field {
            Some(f) => format!("{prefix}.{f}"),
            None => prefix.to_owned(),
        }
    }
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.property("tls"), self.reason("tls"))
    }
}

impl std::error::Error for TlsError {}

/// A ready client configuration and the name buildkitd's certificate must carry.
pub(crate) struct TlsClient {
    pub config: Arc<rustls::ClientConfig>,
    pub server_name: ServerName<'static>,
}

fn bad(field: &'static str, reason: impl Into<String>) -> TlsError {
    TlsError {
        field: Some(field),
        reason: Reason::Text(reason.into()),
    }
}

fn certificates(
    pem: &str,
    property: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
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
pub(crate) fn client(tls: &TlsSettings, address: &str) -> Result<TlsClient, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::whole(e.to_string()))?;
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
        None => builder
            .with_platform_verifier()
            .map_err(|e| TlsError::whole(format!("the system's trusted roots: {e}")))?,
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
                .map_err(|e| TlsError {
                    field: Some("key"),
                    reason: Reason::KeyMismatch(e.to_string()),
                })?
        }
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => return Err(required("key", "cert")),
        (None, Some(_)) => return Err(required("cert", "key")),
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

fn required(field: &'static str, with: &'static str) -> TlsError {
    TlsError {
        field: Some(field),
        reason: Reason::RequiredWith(with),
    }
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

    #[test]
    fn host_is_taken_from_the_address() {
        assert_eq!(host_of("buildkit.internal:1234"), "buildkit.internal");
        assert_eq!(host_of("[::1]:1234"), "::1");
        assert_eq!(host_of("10.0.0.1"), "10.0.0.1");
    }

    #[test]
    fn bad_settings_name_the_property() {
        let err = |tls: TlsSettings| {
            let e = client(&tls, "h:1").err().unwrap();
            format!("{}: {}", e.property("builderTls"), e.reason("builderTls"))
        };
        let e = err(TlsSettings {
            ca_cert: Some("nope".into()),
            ..Default::default()
        });
        assert!(e.starts_with("builderTls.caCert:"), "{e}");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["c".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let e = err(TlsSettings {
            ca_cert: Some(cert.pem()),
            cert: Some(cert.pem()),
            ..Default::default()
        });
        assert!(e.starts_with("builderTls.key:"), "{e}");
        let e = err(TlsSettings {
            cert: Some(
                "-----BEGIN CERTIFICATE-----\nZ2FyYmFnZQ==\n-----END CERTIFICATE-----\n".into(),
            ),
            key: Some(SecretString::new(key.serialize_pem())),
            ..Default::default()
        });
        assert!(e.starts_with("builderTls.cert:"), "{e}");
        let e = err(TlsSettings {
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
            &TlsSettings {
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

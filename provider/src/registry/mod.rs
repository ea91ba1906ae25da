//! Registry operations on oci-client, with per-registry credentials looked up through
//! [`crate::credentials`].
//!
//! Every write goes through [`Registries::guard_write`], so a read-only handle (preview)
//! cannot write whatever the resource code asks for.

mod body;
mod copy;
pub mod index;
mod layout;
mod limit;
pub mod manifest;
mod read;
mod retry;
mod trust;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use rustls::pki_types::pem::PemObject;

use crate::config::{ProviderConfig, RegistryConfig};
use crate::credentials::{ecr_settings, CredentialError, Credentials};
use crate::ecr::{self, EcrTokens};
pub use crate::host::{normalize_host, same_host};
pub use body::{guarded as guarded_body, idle_window};
pub use copy::CopyChild;
pub use manifest::RawManifest;
pub use read::ReadError;
use retry::{retry, HttpFailure, Retried, Timeout};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "refusing to {operation} {reference}: nothing is written to a registry during preview"
    )]
    WriteInPreview {
        operation: &'static str,
        reference: String,
    },
    #[error("{operation} {reference}: {source}")]
    Failed {
        operation: &'static str,
        reference: String,
        /// What failed underneath, kept for its kind (and its own sources).
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A read that failed (the body too large or stalled, a digest that does not match, …).
    #[error("{operation} {reference}: {source}")]
    Read {
        operation: &'static str,
        reference: String,
        #[source]
        source: ReadError,
    },
    #[error("registry client settings: {message}")]
    Setup { message: String },
    #[error("authenticate to {host}: {source}")]
    Credentials {
        host: String,
        source: Box<CredentialError>,
    },
    #[error("{operation} {reference}: {source}")]
    Ecr {
        operation: &'static str,
        reference: String,
        source: Box<ecr::EcrError>,
    },
}

impl RegistryError {
    fn failed(
        operation: &'static str,
        reference: &Reference,
        e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        RegistryError::Failed {
            operation,
            reference: reference.whole(),
            source: e.into(),
        }
    }
}

struct Inner {
    config: ProviderConfig,
    /// See [`Registries::oci`].
    client: OnceLock<Client>,
    oci_certs: Vec<Certificate>,
    roots: Arc<trust::LazyRoots>,
    http: reqwest::Client,
    /// Large blob uploads: a TCP connection each. Multiplexed on the one HTTP/2 connection,
    /// several uploads share one flow-control window and one congestion window.
    bulk: reqwest::Client,
    ecr: EcrTokens,
    credentials: Credentials,
    in_flight: copy::InFlight,
    tokens: read::Tokens,
    /// One bound per registry host on the requests in flight from this process
    /// (over HTTP/2 they share one connection; over HTTP/1.1 it bounds the connections).
    per_host: std::sync::Mutex<std::collections::HashMap<String, Arc<limit::HostLimit>>>,
}

/// What became of a tag asked to be deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    Removed,
    AlreadyGone,
    /// The registry deletes by digest only and another tag still uses the digest: the tag
    /// was left in place so the other one keeps working.
    KeptShared {
        other: String,
    },
}

/// Access to every registry the provider talks to. Cheap to clone.
#[derive(Clone)]
pub struct Registries {
    inner: Arc<Inner>,
    read_only: bool,
}

/// Splits a PEM bundle into single certificates (a bundle given as one is cut to its first).
fn pem_certificates(pem: &str) -> Vec<Certificate> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in pem.lines() {
        if line.starts_with("-----BEGIN CERTIFICATE-----") {
            cur.clear();
        }
        cur.push_str(line);
        cur.push('\n');
        if line.starts_with("-----END CERTIFICATE-----") {
            out.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data: cur.clone().into_bytes(),
            });
        }
    }
    out
}

impl Registries {
    /// Access with no registry settings (before the engine configures the provider).
    pub fn unconfigured() -> Self {
        Self::new(ProviderConfig::default()).expect("default settings always build")
    }

    /// Fails rather than fall back to defaults: a client without the configured CAs or
    /// plain-HTTP hosts would speak to registries differently from what was asked.
    pub fn new(config: ProviderConfig) -> Result<Self, RegistryError> {
        let mut certs = Vec::new();
        for r in &config.registries {
            if let Some(ca) = &r.ca_cert {
                certs.extend(pem_certificates(ca));
            }
        }
        if let Ok(path) = std::env::var("SSL_CERT_FILE") {
            if let Ok(pem) = std::fs::read_to_string(path) {
                certs.extend(pem_certificates(&pem));
            }
        }
        let setup = |e: &dyn std::fmt::Display| RegistryError::Setup {
            message: e.to_string(),
        };
        let ders = certs
            .iter()
            .map(|c| {
                rustls::pki_types::CertificateDer::from_pem_slice(&c.data)
                    .map_err(|e| setup(&format_args!("a trusted CA certificate: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let roots = Arc::new(trust::LazyRoots::new(ders).map_err(|e| setup(&e))?);
        let client = |alpn: trust::Alpn| {
            let tls = roots.client_config(alpn).map_err(|e| setup(&e))?;
            let builder = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(15))
                .pool_idle_timeout(Duration::from_secs(90))
                .timeout(Duration::from_secs(120))
                .user_agent(concat!("multiarch/", env!("CARGO_PKG_VERSION")))
                .tls_backend_preconfigured(tls);
            match alpn {
                trust::Alpn::Http2OrHttp1 => builder,
                trust::Alpn::Http1 => builder.http1_only(),
            }
            .build()
            .map_err(|e| setup(&e))
        };
        // One client (one connection pool per host) for every operation of the process;
        // HTTP/2 where the registry offers it through ALPN, HTTP/1.1 otherwise.
        let http = client(trust::Alpn::Http2OrHttp1)?;
        let bulk = client(trust::Alpn::Http1)?;
        let ecr = EcrTokens::new(config.aws.clone());
        let credentials = Credentials::new(&config, ecr.clone());
        Ok(Registries {
            inner: Arc::new(Inner {
                config,
                client: OnceLock::new(),
                oci_certs: certs,
                roots,
                http,
                bulk,
                ecr,
                credentials,
                in_flight: Default::default(),
                tokens: Default::default(),
                per_host: Default::default(),
            }),
            read_only: false,
        })
    }

    /// Reads the trusted roots on a worker thread now, so that the first handshake does not
    /// wait for them (called once the engine has configured the provider).
    pub fn warm_up(&self) {
        let roots = self.inner.roots.clone();
        tokio::task::spawn_blocking(move || roots.warm());
    }

    /// oci-client, for what the direct requests leave to it (token challenges, pulls).
    /// Built on first use: it builds two reqwest clients, each reading the system's roots.
    fn oci(&self) -> &Client {
        self.inner.client.get_or_init(|| {
            let insecure: Vec<String> = self
                .inner
                .config
                .registries
                .iter()
                .filter(|r| r.insecure)
                .map(|r| normalize_host(&r.address))
                .collect();
            Client::new(ClientConfig {
                protocol: if insecure.is_empty() {
                    ClientProtocol::Https
                } else {
                    ClientProtocol::HttpsExcept(insecure)
                },
                // ECR rejects small PATCH chunks: upload each blob in one request.
                use_monolithic_push: true,
                extra_root_certificates: self.inner.oci_certs.clone(),
                platform_resolver: None,
                connect_timeout: Some(Duration::from_secs(15)),
                read_timeout: Some(Duration::from_secs(120)),
                user_agent: concat!("multiarch/", env!("CARGO_PKG_VERSION")),
                ..Default::default()
            })
        })
    }

    /// A turn to send a request to `host` (held until its answer is read; see [`limit`]).
    async fn permit(&self, host: &str) -> limit::HostPermit {
        let limit = {
            let mut hosts = self
                .inner
                .per_host
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            hosts
                .entry(normalize_host(host))
                .or_insert_with(limit::HostLimit::new)
                .clone()
        };
        limit.acquire().await
    }

    /// The same access with every write refused (preview).
    pub fn read_only(&self) -> Self {
        Registries {
            inner: self.inner.clone(),
            read_only: true,
        }
    }

    pub fn config(&self) -> &ProviderConfig {
        &self.inner.config
    }

    /// The AWS identities of ECR look-ups (KMS signing uses the same).
    pub(crate) fn aws_identity(&self) -> crate::ecr::EcrTokens {
        self.inner.ecr.clone()
    }

    fn guard_write(&self, operation: &'static str, r: &Reference) -> Result<(), RegistryError> {
        if self.read_only {
            return Err(RegistryError::WriteInPreview {
                operation,
                reference: r.whole(),
            });
        }
        Ok(())
    }

    fn entry(&self, host: &str) -> Option<&RegistryConfig> {
        let host = normalize_host(host);
        self.inner
            .config
            .registries
            .iter()
            .find(|r| normalize_host(&r.address) == host)
    }

    /// `Some(entry)` when `host` authenticates through AWS (see [`ecr_settings`]).
    fn ecr_settings(&self, host: &str) -> Option<Option<&RegistryConfig>> {
        ecr_settings(&self.inner.config, host)
    }

    /// True when `host` is authenticated (and its tags deleted) through the ECR API.
    pub fn is_ecr(&self, host: &str) -> bool {
        self.ecr_settings(host).is_some()
    }

    /// Credentials for a registry host, looked up now (ECR tokens are fetched on demand and
    /// cached in memory only).
    pub async fn credentials(&self, host: &str) -> Result<RegistryAuth, RegistryError> {
        match self.inner.credentials.lookup(host).await {
            Ok(Some(c)) => Ok(RegistryAuth::Basic(
                c.username,
                c.secret.expose().to_owned(),
            )),
            Ok(None) => Ok(RegistryAuth::Anonymous),
            Err(source) => Err(RegistryError::Credentials {
                host: host.to_owned(),
                source: Box::new(source),
            }),
        }
    }

    /// oci-client, holding the credentials for `r`'s registry.
    async fn login(&self, r: &Reference) -> Result<&Client, RegistryError> {
        let auth = self.credentials(r.registry()).await?;
        let client = self.oci();
        client
            .store_auth_if_needed(r.resolve_registry(), &auth)
            .await;
        Ok(client)
    }

    /// A plain request to `path` under the repository of `r`, with basic or no auth.
    fn direct_request(
        &self,
        method: reqwest::Method,
        r: &Reference,
        path: &str,
        auth: &RegistryAuth,
    ) -> reqwest::RequestBuilder {
        let url = format!(
            "{}://{}/v2/{}/{path}",
            self.scheme(r),
            r.resolve_registry(),
            r.repository()
        );
        self.request_to(method, &url, auth)
    }

    /// A plain request to a full URL (an upload location), with basic or no auth.
    fn request_to(
        &self,
        method: reqwest::Method,
        url: &str,
        auth: &RegistryAuth,
    ) -> reqwest::RequestBuilder {
        Self::authorized(self.inner.http.request(method, url), auth)
    }

    /// A large blob's upload to a full URL, on a connection of its own.
    fn upload_to(&self, url: &str, auth: &RegistryAuth) -> reqwest::RequestBuilder {
        Self::authorized(self.inner.bulk.put(url), auth)
    }

    fn authorized(req: reqwest::RequestBuilder, auth: &RegistryAuth) -> reqwest::RequestBuilder {
        match auth {
            RegistryAuth::Basic(u, p) => req.basic_auth(u, Some(p)),
            _ => req,
        }
    }

    /// One plain manifest request where basic or no auth is enough (oci-client pings `/v2/`
    /// before every call on anonymous registries and answers a 404 HEAD with a second, GET
    /// request). 429, 5xx and transport errors are retried here, once, and then are the
    /// answer: a persistent failure is not retried a second time by oci-client.
    async fn direct_send(
        &self,
        method: reqwest::Method,
        r: &Reference,
        path: &str,
        auth: &RegistryAuth,
    ) -> Result<reqwest::Response, Retried<HttpFailure>> {
        retry(Timeout::Manifest, || async {
            let permit = self.permit(r.registry()).await;
            let resp = self
                .direct_request(method.clone(), r, path, auth)
                .header(reqwest::header::ACCEPT, manifest::ACCEPTED.join(", "))
                .timeout(Duration::from_secs(30))
                .send()
                .await?;
            permit.answered(resp.version());
            retryable_status(resp)
        })
        .await
    }

    /// A manifest PUT in one request where basic or no auth is enough (429, 5xx and transport
    /// errors retried). Ok(false) means "ask oci-client" (token auth, an error answer it
    /// words better).
    async fn direct_put(
        &self,
        r: &Reference,
        m: &RawManifest,
        auth: &RegistryAuth,
    ) -> Result<bool, Retried<HttpFailure>> {
        let resp = retry(Timeout::Manifest, || async {
            let _permit = self.permit(r.registry()).await;
            let resp = self
                .direct_request(reqwest::Method::PUT, r, &Self::manifest_path(r), auth)
                .header(reqwest::header::CONTENT_TYPE, m.media_type.as_str())
                .timeout(Duration::from_secs(30))
                .body(m.bytes.clone())
                .send()
                .await?;
            retryable_status(resp)
        })
        .await?;
        Ok(resp.status().as_u16() == 201)
    }

    fn manifest_path(r: &Reference) -> String {
        format!("manifests/{}", r.digest().or(r.tag()).unwrap_or("latest"))
    }

    fn scheme(&self, r: &Reference) -> &'static str {
        self.scheme_of(r.registry())
    }

    fn scheme_of(&self, host: &str) -> &'static str {
        if self.entry(host).is_some_and(|e| e.insecure) {
            "http"
        } else {
            "https"
        }
    }

    /// Puts a manifest at `r` (a tag or a digest reference).
    pub async fn put_manifest(&self, r: &Reference, m: &RawManifest) -> Result<(), RegistryError> {
        self.guard_write("push", r)?;
        let auth = self.credentials(r.registry()).await?;
        match self.direct_put(r, m, &auth).await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => return Err(RegistryError::failed("push", r, e)),
        }
        let client = self.login(r).await?;
        let content_type = reqwest::header::HeaderValue::from_str(&m.media_type)
            .map_err(|e| RegistryError::failed("push", r, e))?;
        retry(Timeout::Manifest, || {
            client.push_manifest_raw(r, m.bytes.clone(), content_type.clone())
        })
        .await
        .map_err(|e| RegistryError::failed("push", r, e))?;
        Ok(())
    }

    /// Removes the tag `r`, never anything another tag still uses. ECR registries remove
    /// the tag alone through `BatchDeleteImage` (or, when the ECR API does not see the
    /// image, by moving the tag to a placeholder deleted by digest); other registries can
    /// only delete a manifest by digest, which is done only when no other tag of the
    /// repository points to it.
    /// A tag that is already gone is success.
    /// `going` are other tags being removed in the same operation: they do not protect the
    /// digest (otherwise two tags of one resource would keep each other alive).
    pub async fn delete_tag(
        &self,
        r: &Reference,
        going: &[Reference],
    ) -> Result<Deleted, RegistryError> {
        self.guard_write("delete", r)?;
        let host = r.registry();
        if let Some(entry) = self.ecr_settings(host) {
            let tag = r.tag().unwrap_or("latest");
            let deleted = self
                .inner
                .ecr
                .delete_tag(host, entry, r.repository(), tag)
                .await
                .map_err(|source| RegistryError::Ecr {
                    operation: "delete",
                    reference: r.whole(),
                    source: Box::new(source),
                })?;
            if deleted {
                return Ok(Deleted::Removed);
            }
            // The ECR API does not know the image: if the registry still serves the tag (an
            // ECR-compatible registry without the ECR API's view of it), fall through.
        }
        // An ECR host promises what BatchDeleteImage does, one tag alone, also when its
        // registry is reached by digest only.
        let alone = self.ecr_settings(host).is_some();
        let Some(digest) = self.digest_of(r).await? else {
            return Ok(Deleted::AlreadyGone);
        };
        for other in self.tags(r).await? {
            if Some(other.as_str()) == r.tag() {
                continue;
            }
            let o = Reference::with_tag(host.into(), r.repository().into(), other.clone());
            if going.iter().any(|g| g.whole() == o.whole()) {
                continue;
            }
            if self.digest_of(&o).await?.as_deref() == Some(digest.as_str()) {
                if alone {
                    self.untag(r).await?;
                    return Ok(Deleted::Removed);
                }
                return Ok(Deleted::KeptShared { other: o.whole() });
            }
        }
        self.delete_manifest(r, &digest).await?;
        Ok(Deleted::Removed)
    }

    /// Removes tag `r` alone from a registry that deletes by digest only, while other tags
    /// keep its manifest: `r` is pointed at a placeholder of its own (an empty index, made
    /// unique by an annotation), which is then deleted by digest.
    async fn untag(&self, r: &Reference) -> Result<(), RegistryError> {
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let annotations = std::collections::BTreeMap::from([(
            "dev.multiarch.untag".to_owned(),
            format!("{}@{nonce}", r.whole()),
        )]);
        let placeholder = manifest::build_index(manifest::OCI_INDEX, &[], &annotations);
        self.put_manifest(r, &placeholder).await?;
        self.delete_manifest(r, &placeholder.digest).await
    }

    async fn delete_manifest(&self, r: &Reference, digest: &str) -> Result<(), RegistryError> {
        let auth = self.credentials(r.registry()).await?;
        let url = format!(
            "{}://{}/v2/{}/manifests/{digest}",
            self.scheme(r),
            r.resolve_registry(),
            r.repository()
        );
        let http = &self.inner.http;
        let status = retry(Timeout::Manifest, || async {
            let _permit = self.permit(r.registry()).await;
            let mut req = http.delete(&url);
            if let RegistryAuth::Basic(u, p) = &auth {
                req = req.basic_auth(u, Some(p));
            }
            let resp = retryable_status(req.send().await?)?;
            Ok::<_, HttpFailure>(resp.status())
        })
        .await
        .map_err(|e| RegistryError::failed("delete", r, e))?;
        match status.as_u16() {
            200..=299 | 404 => Ok(()),
            405 => Err(RegistryError::failed(
                "delete",
                r,
                "the registry does not allow deletes (405); enable them or set keepRemotely",
            )),
            code => Err(RegistryError::failed(
                "delete",
                r,
                format!("HTTP {code} for {url}"),
            )),
        }
    }
}

/// 429 and 5xx answers as retryable failures, every other answer as it is.
fn retryable_status(resp: reqwest::Response) -> Result<reqwest::Response, HttpFailure> {
    let code = resp.status().as_u16();
    if code == 429 || code >= 500 {
        return Err(HttpFailure::Status {
            code,
            retry_after: retry::retry_after(resp.headers()),
        });
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_bundles_split() {
        let one = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let bundle = format!("# comment\n{one}{one}");
        assert_eq!(pem_certificates(&bundle).len(), 2);
        assert_eq!(pem_certificates("nothing").len(), 0);
    }

    #[test]
    fn hosts_normalize() {
        assert_eq!(normalize_host("https://GHCR.io/"), "ghcr.io");
        assert_eq!(normalize_host("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(normalize_host("index.docker.io"), "docker.io");
    }

    #[tokio::test]
    async fn preview_handle_refuses_writes() {
        let r = Registries::unconfigured().read_only();
        let tag: Reference = "127.0.0.1:1/app:1".parse().unwrap();
        let m = manifest::build_index(manifest::OCI_INDEX, &[], &Default::default());
        assert!(matches!(
            r.put_manifest(&tag, &m).await,
            Err(RegistryError::WriteInPreview { .. })
        ));
        assert!(matches!(
            r.delete_tag(&tag, &[]).await,
            Err(RegistryError::WriteInPreview { .. })
        ));
        let child = CopyChild {
            from: tag.clone(),
            digest: "sha256:00".into(),
            manifest: None,
        };
        assert!(matches!(
            r.copy_into(&tag, std::slice::from_ref(&child)).await,
            Err(RegistryError::WriteInPreview { .. })
        ));
    }
}

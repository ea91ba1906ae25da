//! What an operation reaches outside the process, as traits: the registries and BuildKit.
//! The fronts wire the real ones ([`OpContext::live`]); unit tests wire fakes.

use std::sync::Arc;

use async_trait::async_trait;
use oci_client::secrets::RegistryAuth;
use oci_client::Reference;
use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;

use super::Error;
use std::time::Duration;

use super::pool::{self, Member, Pools};
use crate::buildkit::{self, BuildOutcome, BuildSpec, Endpoint, Output};
use crate::config::ProviderConfig;
use crate::log::Logger;
use crate::registry::manifest::RawManifest;
use crate::registry::{CopyChild, Deleted, Registries, RegistryError};

/// The registry operations the resources use.
#[async_trait]
pub trait Registry: Send + Sync {
    /// The digest `r` points to now; None when it does not exist.
    async fn digest_of(&self, r: &Reference) -> Result<Option<String>, RegistryError>;
    async fn manifest(&self, r: &Reference) -> Result<Option<RawManifest>, RegistryError>;
    async fn json_blob(&self, r: &Reference, digest: &str) -> Result<Json, RegistryError>;
    /// Makes `children` (manifests of other repositories) available in `dst`'s repository,
    /// each unique blob moved once.
    async fn copy_into(&self, dst: &Reference, children: &[CopyChild])
        -> Result<(), RegistryError>;
    /// True when `host` is an ECR registry (IMMUTABLE repositories refuse a re-push).
    fn is_ecr(&self, host: &str) -> bool;
    async fn put_manifest(&self, r: &Reference, m: &RawManifest) -> Result<(), RegistryError>;
    /// Removes tag `t`; `going` are the tags removed with it.
    async fn delete_tag(
        &self,
        t: &Reference,
        going: &[Reference],
    ) -> Result<Deleted, RegistryError>;
    /// The OCI 1.1 referrers API's index for `digest`; None where the registry has no such API.
    async fn referrers(
        &self,
        _r: &Reference,
        _digest: &str,
    ) -> Result<Option<Json>, RegistryError> {
        Ok(None)
    }
    /// The tags of `r`'s repository.
    async fn tags(&self, r: &Reference) -> Result<Vec<String>, RegistryError> {
        Err(RegistryError::Setup {
            message: format!("this registry client cannot list the tags of {}", r.whole()),
        })
    }
    /// A small blob's exact bytes (a signature payload).
    async fn small_blob(&self, r: &Reference, digest: &str) -> Result<bytes::Bytes, RegistryError> {
        Err(RegistryError::Setup {
            message: format!(
                "this registry client cannot read blob {digest} of {}",
                r.whole()
            ),
        })
    }
    /// Uploads `data` as a blob of `r`'s repository, unless the repository has it.
    async fn push_blob(&self, r: &Reference, data: bytes::Bytes) -> Result<(), RegistryError> {
        let _ = data;
        Err(RegistryError::Setup {
            message: format!("this registry client cannot push blobs to {}", r.whole()),
        })
    }
    /// Basic credentials for `host`, for BuildKit's session.
    async fn basic_auth(&self, host: &str) -> Option<(String, String)>;
    /// Pushes an image from an OCI layout directory (a classic-store Engine's build):
    /// `(reference, tagged)` targets.
    async fn push_layout(
        &self,
        _dir: &std::path::Path,
        _root: &Json,
        _targets: &[(Reference, bool)],
    ) -> Result<(), RegistryError> {
        Err(RegistryError::Setup {
            message: "this registry client cannot push from a layout".into(),
        })
    }
}

#[async_trait]
impl Registry for Registries {
    async fn digest_of(&self, r: &Reference) -> Result<Option<String>, RegistryError> {
        Registries::digest_of(self, r).await
    }
    async fn manifest(&self, r: &Reference) -> Result<Option<RawManifest>, RegistryError> {
        Registries::manifest(self, r).await
    }
    async fn json_blob(&self, r: &Reference, digest: &str) -> Result<Json, RegistryError> {
        Registries::json_blob(self, r, digest).await
    }
    async fn copy_into(
        &self,
        dst: &Reference,
        children: &[CopyChild],
    ) -> Result<(), RegistryError> {
        Registries::copy_into(self, dst, children).await
    }
    fn is_ecr(&self, host: &str) -> bool {
        Registries::is_ecr(self, host)
    }
    async fn put_manifest(&self, r: &Reference, m: &RawManifest) -> Result<(), RegistryError> {
        Registries::put_manifest(self, r, m).await
    }
    async fn push_blob(&self, r: &Reference, data: bytes::Bytes) -> Result<(), RegistryError> {
        Registries::push_blob(self, r, data).await
    }
    async fn small_blob(&self, r: &Reference, digest: &str) -> Result<bytes::Bytes, RegistryError> {
        Registries::small_blob(self, r, digest).await
    }
    async fn tags(&self, r: &Reference) -> Result<Vec<String>, RegistryError> {
        Registries::tags(self, r).await
    }
    async fn referrers(&self, r: &Reference, digest: &str) -> Result<Option<Json>, RegistryError> {
        Registries::referrers(self, r, digest).await
    }
    async fn delete_tag(
        &self,
        t: &Reference,
        going: &[Reference],
    ) -> Result<Deleted, RegistryError> {
        Registries::delete_tag(self, t, going).await
    }
    async fn push_layout(
        &self,
        dir: &std::path::Path,
        root: &Json,
        targets: &[(Reference, bool)],
    ) -> Result<(), RegistryError> {
        Registries::push_layout(self, dir, root, targets).await
    }
    async fn basic_auth(&self, host: &str) -> Option<(String, String)> {
        match self.credentials(host).await {
            Ok(RegistryAuth::Basic(u, p)) => Some((u, p)),
            _ => None,
        }
    }
}

pub use super::endpoint::Node;

/// One build: solve `spec` on `node`, export as `output`.
#[async_trait]
pub trait Builder: Send + Sync {
    /// The node that builds `platform` (normalized): the pool of `builders` endpoints
    /// listing it, or the default node.
    fn node_for(&self, platform: &str) -> Node;
    /// The node as messages name it, e.g. `builders[1] (buildkitd at tcp://…)`.
    fn node_name(&self, node: Node) -> String;
    /// The node as progress prefixes name it, e.g. `builders[1]`.
    fn node_label(&self, node: Node) -> String {
        match node {
            None => "builder".to_owned(),
            Some(i) => format!("builders[{i}]"),
        }
    }
    /// Builds on `node`; in a pool, on the first usable node in the order `placement` (the
    /// resource's URN, else its context hash) gives.
    async fn build(
        &self,
        node: Node,
        placement: &str,
        spec: &BuildSpec,
        output: Output,
        log: Arc<dyn Logger>,
        cancel: CancellationToken,
    ) -> Result<BuildOutcome, Error>;
}

/// The configured BuildKit endpoints, authenticating to registries through `registry`.
pub struct BuildKit {
    config: ProviderConfig,
    pools: Pools,
    registry: Arc<dyn Registry>,
}

/// How long a pool node has to answer its health probe before the next one is tried.
const PROBE_DEADLINE: Duration = Duration::from_secs(3);

impl BuildKit {
    fn member_endpoint(&self, m: &Member) -> Result<Endpoint, Error> {
        super::endpoint::member_endpoint(&self.config, m.entry, m.index)
            .map_err(|f| Error::Invalid(vec![f]))
    }

    /// One build on one member: a slot under its limit, then the build; the error says
    /// whether the next member may take it.
    async fn build_on_member(
        &self,
        m: &Member,
        endpoint: &Endpoint,
        spec: &BuildSpec,
        output: Output,
        log: Arc<dyn Logger>,
        cancel: CancellationToken,
    ) -> Result<BuildOutcome, buildkit::BuildError> {
        let name = format!("{} ({endpoint})", m.label);
        let Some(_slot) = pool::slot(m, &name, log.as_ref(), &cancel).await else {
            return Err(buildkit::BuildError::Cancelled {
                endpoint: endpoint.to_string(),
            });
        };
        let auth = Arc::new(SessionAuth(self.registry.clone()));
        // Any Engine: a classic-store one pushes through the provider's registry client.
        buildkit::build_anywhere(endpoint, spec, output, auth.clone(), auth, log, cancel).await
    }

    /// A build on pool `node`: its members in rendezvous order for `placement`, each probed
    /// first when there is another to fall over to; a member that fails the probe, cannot
    /// be connected to or goes away during the solve passes the build to the next.
    async fn build_in_pool(
        &self,
        node: usize,
        placement: &str,
        spec: &BuildSpec,
        output: Output,
        log: Arc<dyn Logger>,
        cancel: CancellationToken,
    ) -> Result<BuildOutcome, Error> {
        let order = self.pools.order(node, placement);
        let pooled = order.len() > 1;
        let mut passed = Vec::new();
        for (n, m) in order.iter().enumerate() {
            let endpoint = self.member_endpoint(m)?;
            let name = format!("{} ({endpoint})", m.label);
            let last = n + 1 == order.len();
            if pooled && !last {
                if let Err(why) = buildkit::probe(&endpoint, PROBE_DEADLINE).await {
                    log.warn(&format!(
                        "{name} failed its health probe ({why}); trying the next node"
                    ));
                    passed.push(format!("{name}: health probe: {why}"));
                    continue;
                }
            }
            let node_log: Arc<dyn Logger> = if pooled {
                log.info(&format!("building on {name}"));
                Arc::new(Prefixed {
                    prefix: format!("[{}] ", m.label),
                    inner: log.clone(),
                })
            } else {
                log.clone()
            };
            let r = self
                .build_on_member(m, &endpoint, spec, output.clone(), node_log, cancel.clone())
                .await;
            match r {
                Err(e) if pooled && !last && e.node_unusable() => {
                    log.warn(&format!("{name}: {e}; trying the next node"));
                    passed.push(format!("{name}: {e}"));
                }
                Err(e) if pooled => {
                    return Err(match build_error(e) {
                        Error::Other(text) => Error::Other(node_failure(&name, &text, &passed)),
                        other => other,
                    })
                }
                r => return r.map_err(build_error),
            }
        }
        Err(Error::Other(format!(
            "no node of {} could build: {}",
            self.pools.label(node),
            passed.join("; ")
        )))
    }
}

/// A pool build's failure: the node it failed on and the nodes passed over before it.
fn node_failure(name: &str, text: &str, passed: &[String]) -> String {
    if passed.is_empty() {
        format!("on {name}: {text}")
    } else {
        format!(
            "on {name}: {text} (passed over before it: {})",
            passed.join("; ")
        )
    }
}

/// Progress and log lines of a build on one pool node, prefixed with the node.
struct Prefixed {
    prefix: String,
    inner: Arc<dyn Logger>,
}

impl Logger for Prefixed {
    fn log(&self, level: crate::log::Level, message: &str) {
        self.inner.log(level, &format!("{}{message}", self.prefix))
    }
    fn status(&self, message: &str) {
        self.inner.status(&format!("{}{message}", self.prefix))
    }
}

/// Registry credentials for BuildKit's session, looked up when BuildKit asks; and the
/// pusher of what a classic-store Engine built.
struct SessionAuth(Arc<dyn Registry>);

#[async_trait]
impl buildkit::LayoutPusher for SessionAuth {
    async fn push_layout(
        &self,
        dir: &std::path::Path,
        root: &Json,
        targets: &[(String, bool)],
    ) -> Result<(), String> {
        let refs = targets
            .iter()
            .map(|(t, tagged)| {
                t.parse::<Reference>()
                    .map(|r| (r, *tagged))
                    .map_err(|e| format!("{t}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.0
            .push_layout(dir, root, &refs)
            .await
            .map_err(|e| e.to_string())
    }
}

#[async_trait]
impl buildkit::RegistryAuth for SessionAuth {
    async fn basic(&self, host: &str) -> Option<(String, String)> {
        self.0.basic_auth(host).await
    }
}

#[async_trait]
impl Builder for BuildKit {
    fn node_for(&self, platform: &str) -> Node {
        self.pools.node_for(platform)
    }

    fn node_name(&self, node: Node) -> String {
        let Some(i) = node else {
            let at = match super::endpoint::default_endpoint(&self.config) {
                Ok(e) => e.to_string(),
                Err(f) => format!("{}: {}", f.property, f.reason),
            };
            return format!("builder ({at})");
        };
        let members = self.pools.members(i);
        let at: Vec<String> = members
            .iter()
            .map(|m| match self.member_endpoint(m) {
                Ok(e) => e.to_string(),
                Err(e) => e.to_string(),
            })
            .collect();
        match members {
            [one] => format!("{} ({})", one.label, at.join("")),
            _ => format!(
                "{} (a pool of {}: {})",
                self.pools.label(i),
                members.len(),
                at.join(", ")
            ),
        }
    }

    fn node_label(&self, node: Node) -> String {
        match node {
            None => "builder".to_owned(),
            Some(i) => self.pools.label(i),
        }
    }

    async fn build(
        &self,
        node: Node,
        placement: &str,
        spec: &BuildSpec,
        output: Output,
        log: Arc<dyn Logger>,
        cancel: CancellationToken,
    ) -> Result<BuildOutcome, Error> {
        match node {
            Some(i) => {
                self.build_in_pool(i, placement, spec, output, log, cancel)
                    .await
            }
            None => {
                let endpoint = super::endpoint::default_endpoint(&self.config)
                    .map_err(|f| Error::Invalid(vec![f]))?;
                let auth = Arc::new(SessionAuth(self.registry.clone()));
                buildkit::build_anywhere(&endpoint, spec, output, auth.clone(), auth, log, cancel)
                    .await
                    .map_err(build_error)
            }
        }
    }
}

fn build_error(e: buildkit::BuildError) -> Error {
    match e {
        buildkit::BuildError::Cancelled { .. } => Error::Cancelled,
        e @ buildkit::BuildError::Solve {
            kind: buildkit::SolveFailure::PlatformMissing,
            ..
        } => Error::invalid(
            "platforms",
            format!("a base image has no manifest for one of the requested platforms: {e}"),
        ),
        other => Error::Other(other.to_string()),
    }
}

impl super::OpContext {
    /// The real registries and BuildKit of `registries`' configuration. In preview the
    /// registry handle is read-only as well, so "nothing is written" holds at both levels.
    pub fn live(
        registries: Registries,
        log: Arc<dyn Logger>,
        cancel: CancellationToken,
        preview: bool,
        urn: Option<String>,
    ) -> Self {
        let registries = if preview {
            registries.read_only()
        } else {
            registries
        };
        let config = registries.config().clone();
        let signing = config
            .signing
            .as_ref()
            .and_then(|s| crate::signing::Signer::new(s, registries.aws_identity()));
        let registry: Arc<dyn Registry> = Arc::new(registries);
        super::OpContext {
            signing,
            builder: Arc::new(BuildKit {
                pools: Pools::new(&config),
                config,
                registry: registry.clone(),
            }),
            registry,
            log,
            cancel,
            preview,
            urn,
        }
    }
}

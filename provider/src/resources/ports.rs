//! What an operation reaches outside the process, as traits: the registries and BuildKit.
//! The fronts wire the real ones ([`OpContext::live`]); unit tests wire fakes.

use std::sync::Arc;

use async_trait::async_trait;
use oci_client::secrets::RegistryAuth;
use oci_client::Reference;
use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;

use super::Error;
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
    /// The node that builds `platform` (normalized): the `builders` entry listing it, or
    /// the default node.
    fn node_for(&self, platform: &str) -> Node;
    /// The node as messages name it, e.g. `builders[1] (buildkitd at tcp://…)`.
    fn node_name(&self, node: Node) -> String;
    async fn build(
        &self,
        node: Node,
        spec: &BuildSpec,
        output: Output,
        log: Arc<dyn Logger>,
        cancel: CancellationToken,
    ) -> Result<BuildOutcome, Error>;
}

/// The configured BuildKit endpoints, authenticating to registries through `registry`.
pub struct BuildKit {
    config: ProviderConfig,
    registry: Arc<dyn Registry>,
}

impl BuildKit {
    fn endpoint(&self, node: Node) -> Result<Endpoint, Error> {
        if let Some(i) = node.filter(|&i| i >= self.config.builders.len()) {
            return Err(Error::Other(format!("no build node builders[{i}]")));
        }
        super::endpoint::endpoint(&self.config, node).map_err(|f| Error::Invalid(vec![f]))
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
        self.config.builders.iter().position(|n| {
            n.platforms
                .iter()
                .any(|p| crate::platform::normalize(p).is_ok_and(|p| p == platform))
        })
    }

    fn node_name(&self, node: Node) -> String {
        let at = match self.endpoint(node) {
            Ok(e) => e.to_string(),
            Err(e) => e.to_string(),
        };
        match node {
            None => format!("builder ({at})"),
            Some(i) => format!("builders[{i}] ({at})"),
        }
    }

    async fn build(
        &self,
        node: Node,
        spec: &BuildSpec,
        output: Output,
        log: Arc<dyn Logger>,
        cancel: CancellationToken,
    ) -> Result<BuildOutcome, Error> {
        let endpoint = self.endpoint(node)?;
        let auth = Arc::new(SessionAuth(self.registry.clone()));
        // Any Engine: a classic-store one pushes through the provider's registry client.
        buildkit::build_anywhere(&endpoint, spec, output, auth.clone(), auth, log, cancel)
            .await
            .map_err(build_error)
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
    ) -> Self {
        let registries = if preview {
            registries.read_only()
        } else {
            registries
        };
        let config = registries.config().clone();
        let registry: Arc<dyn Registry> = Arc::new(registries);
        super::OpContext {
            builder: Arc::new(BuildKit {
                config,
                registry: registry.clone(),
            }),
            registry,
            log,
            cancel,
            preview,
        }
    }
}

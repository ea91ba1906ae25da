//! The image lookup (`multiarch:index:getImage`, the `multiarch_image` data source): a
//! reference in, what it points to out. Read-only, so it runs the same in preview/plan as
//! in up/apply; both fronts call [`get_image`] through [`Function`].

use std::time::Duration;

use async_trait::async_trait;
use oci_client::Reference;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::{decode, to_map, Error, OpContext, Registry};
use crate::model::FunctionModel;
use crate::platform::Platform;
use crate::reference::parse_qualified;
use crate::registry::manifest::{self, entry_platform, index_entries, RawManifest};

/// The whole lookup (every request has its own deadline too): a registry that keeps
/// answering slowly cannot hold a preview forever.
const LOOKUP_TIME: Duration = Duration::from_secs(120);

/// What to look up.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetImageArgs {
    /// The image: `registry/repository:tag` or `registry/repository@sha256:…`, with its
    /// registry host (any registry; credentials as for the resources).
    #[serde(rename = "ref")]
    pub reference: String,
}

/// One platform of the image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LookupPlatform {
    /// Normalized platform, e.g. `linux/arm64`.
    pub platform: String,
    /// Digest of that platform's image manifest.
    pub digest: String,
}

/// What the reference points to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetImageResult {
    /// Digest of the index (or of the manifest, for a single-platform image).
    pub digest: String,
    /// `registry/repository:tag@digest` (`registry/repository@digest` when looked up by
    /// digest): a pinned reference for task definitions.
    #[serde(rename = "ref")]
    #[schemars(extend("x-terraform-name" = "pinned_ref"))]
    pub reference: String,
    /// Media type of what the reference points to (an OCI index, a Docker manifest list,
    /// or an image manifest).
    pub media_type: String,
    /// The platform images, in the index's order (attestations left out); one entry for a
    /// single-platform image.
    pub manifests: Vec<LookupPlatform>,
}

/// A function both fronts serve: arguments in, a result out, nothing written.
#[async_trait]
pub trait Function: Send + Sync {
    fn model(&self) -> &FunctionModel;
    /// The failures of known arguments, each naming its property.
    fn check(&self, args: &Map<String, Json>) -> Vec<super::Failure>;
    async fn invoke(
        &self,
        ctx: &OpContext,
        args: &Map<String, Json>,
    ) -> Result<Map<String, Json>, Error>;
}

/// `multiarch:index:getImage` / `multiarch_image`.
pub struct GetImage {
    model: FunctionModel,
}

impl GetImage {
    pub fn new() -> Self {
        GetImage {
            model: FunctionModel::new::<GetImageArgs, GetImageResult>(
                "multiarch:index:getImage",
                "multiarch_image",
                "Looks up an image by tag or digest, read-only (also during preview and plan): \
the index (or manifest) digest, a pinned reference and the per-platform digests, e.g. for \
task definitions of images built elsewhere.",
            ),
        }
    }

    fn args(args: &Map<String, Json>) -> Result<(GetImageArgs, Reference), Error> {
        let a: GetImageArgs = decode(args).map_err(|f| Error::Invalid(vec![f]))?;
        let r = parse_qualified(&a.reference).map_err(|e| Error::invalid("ref", e))?;
        Ok((a, r))
    }
}

#[async_trait]
impl Function for GetImage {
    fn model(&self) -> &FunctionModel {
        &self.model
    }

    fn check(&self, args: &Map<String, Json>) -> Vec<super::Failure> {
        match Self::args(args) {
            Ok(_) => vec![],
            Err(Error::Invalid(f)) => f,
            Err(e) => vec![super::Failure::new("", e.to_string())],
        }
    }

    async fn invoke(
        &self,
        ctx: &OpContext,
        args: &Map<String, Json>,
    ) -> Result<Map<String, Json>, Error> {
        let (a, r) = Self::args(args)?;
        let found = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => return Err(Error::Cancelled),
            r = tokio::time::timeout(LOOKUP_TIME, get_image(ctx.registry.as_ref(), &a.reference, &r)) => r,
        };
        let found = found.map_err(|_| {
            Error::Other(format!(
                "looking up {}: no answer within {}s",
                a.reference,
                LOOKUP_TIME.as_secs()
            ))
        })??;
        to_map(&found)
    }
}

/// Looks `r` (written `written`) up: the manifest it points to, and for an index its
/// platform entries; for a single image its config's platform.
pub async fn get_image(
    registry: &dyn Registry,
    written: &str,
    r: &Reference,
) -> Result<GetImageResult, Error> {
    let m = registry.manifest(r).await?.ok_or_else(|| {
        Error::invalid(
            "ref",
            format!("{written} does not exist in its registry (no such tag or digest)"),
        )
    })?;
    let manifests = if m.is_index() {
        platforms_of_index(&m)
    } else {
        vec![LookupPlatform {
            platform: platform_of_image(registry, r, &m, written).await?,
            digest: m.digest.clone(),
        }]
    };
    Ok(GetImageResult {
        reference: pinned(r, &m.digest),
        digest: m.digest,
        media_type: m.media_type,
        manifests,
    })
}

/// `registry/repository[:tag]@digest`.
fn pinned(r: &Reference, digest: &str) -> String {
    let repo = crate::reference::repository_of(r);
    match r.tag() {
        Some(t) => format!("{repo}:{t}@{digest}"),
        None => format!("{repo}@{digest}"),
    }
}

/// The platform entries of an index, attestations left out; a platform that does not
/// normalize is shown as written.
fn platforms_of_index(m: &RawManifest) -> Vec<LookupPlatform> {
    index_entries(&m.json())
        .iter()
        .filter_map(|e| {
            let p = entry_platform(e);
            if p.is_attestation() {
                return None;
            }
            let digest = e.get("digest").and_then(Json::as_str)?.to_owned();
            let platform = match Platform::new(p.os, p.architecture, p.variant) {
                Ok(n) => n.to_string(),
                Err(_) => [Some(p.os), Some(p.architecture), p.variant]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("/"),
            };
            Some(LookupPlatform { platform, digest })
        })
        .collect()
}

/// A single image's platform, from its config.
async fn platform_of_image(
    registry: &dyn Registry,
    r: &Reference,
    m: &RawManifest,
    written: &str,
) -> Result<String, Error> {
    let json = m.json();
    let config = manifest::blobs_of(&json)
        .first()
        .and_then(|c| c.get("digest").and_then(Json::as_str).map(str::to_owned))
        .ok_or_else(|| Error::invalid("ref", format!("{written} has no image config")))?;
    let c = registry.json_blob(r, &config).await?;
    let field = |k: &str| c.get(k).and_then(Json::as_str);
    Platform::new(
        field("os").unwrap_or(""),
        field("architecture").unwrap_or(""),
        field("variant"),
    )
    .map(|p| p.to_string())
    .map_err(|e| Error::invalid("ref", format!("{written}: its config's platform: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_references_keep_the_tag() {
        let r = parse_qualified("r.example:5000/a/b:v1").unwrap();
        assert_eq!(pinned(&r, "sha256:00"), "r.example:5000/a/b:v1@sha256:00");
        let d = format!("r.example/a@sha256:{}", "0".repeat(64));
        let r = parse_qualified(&d).unwrap();
        assert_eq!(pinned(&r, "sha256:11"), "r.example/a@sha256:11");
    }

    #[test]
    fn index_platforms_skip_attestations() {
        let index = serde_json::json!({
            "mediaType": manifest::OCI_INDEX,
            "manifests": [
                {"digest": "sha256:a", "platform": {"os": "linux", "architecture": "amd64"}},
                {"digest": "sha256:b", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
                {"digest": "sha256:c", "platform": {"os": "unknown", "architecture": "unknown"}},
            ]
        });
        let m = RawManifest::from_bytes(serde_json::to_vec(&index).unwrap().into()).unwrap();
        let got = platforms_of_index(&m);
        assert_eq!(
            got.iter()
                .map(|p| (p.platform.as_str(), p.digest.as_str()))
                .collect::<Vec<_>>(),
            [("linux/amd64", "sha256:a"), ("linux/arm/v7", "sha256:b")]
        );
    }

    #[test]
    fn bad_references_name_the_property() {
        let g = GetImage::new();
        let args = |v: Json| v.as_object().unwrap().clone();
        let f = g.check(&args(serde_json::json!({"ref": "app:v1"})));
        assert_eq!(f[0].property, "ref");
        assert!(f[0].reason.contains("registry host"), "{}", f[0].reason);
        let f = g.check(&args(serde_json::json!({})));
        assert_eq!(f[0].property, "ref");
        assert!(g
            .check(&args(serde_json::json!({"ref": "r.example/a:v1"})))
            .is_empty());
    }
}

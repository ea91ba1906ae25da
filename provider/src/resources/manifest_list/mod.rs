//! `multiarch:index:ManifestList`: stitches existing per-architecture images into one
//! manifest list / OCI image index pushed under a set of tags.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use futures::StreamExt;
use oci_client::Reference;
use serde_json::{Map, Value as Json};

use crate::platform::{self, Platform};
use crate::reference::{parse_qualified, parse_tag, repository_of};
use crate::registry::index::{self, assemble_index, IndexKind};
use crate::registry::manifest::{
    entry_platform, index_entries, EntryPlatform, IndexEntry, RawManifest, DOCKER_LIST,
    DOCKER_MANIFEST, OCI_INDEX,
};
use crate::registry::CopyChild;
use crate::resources::{
    tags, Applied, Change, Error, Failure, OpContext, PropertyPath, Resource, ResourceDocs,
    UnknownOutputs,
};

/// The media type of the pushed index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IndexMediaType {
    /// `application/vnd.oci.image.index.v1+json`
    Oci,
    /// `application/vnd.docker.distribution.manifest.list.v2+json`
    Docker,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestListInputs {
    /// Fully qualified references to push the index under, e.g.
    /// `123456789012.dkr.ecr.us-east-1.amazonaws.com/app:10`. Compared as a set.
    #[schemars(extend("x-set" = true))]
    pub tags: Vec<String>,
    /// Images to combine, by tag or digest, from any repository or registry. Each is a
    /// single-platform image (its platform read from its config) or an index (its platform
    /// entries are taken). Compared as a set.
    #[schemars(extend("x-set" = true))]
    pub sources: Vec<String>,
    /// `oci` or `docker`. Unset: a Docker manifest list when every child is a Docker
    /// manifest, otherwise an OCI index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<IndexMediaType>,
    /// Annotations on the index (OCI indexes only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Platform to record for a source, keyed by the source as written in `sources`, e.g.
    /// `{"…/app:10.20": "linux/arm64/v8"}`: for images whose config lacks or misstates it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub platform_overrides: BTreeMap<String, String>,
    /// Leave the tags in the registry when the resource is deleted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_remotely: bool,
}

/// One platform entry of the pushed index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManifestEntry {
    /// The source it came from, as written in `sources`.
    pub source: String,
    /// Digest of the platform manifest.
    pub digest: String,
    /// Normalized platform, e.g. `linux/arm64`.
    pub platform: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManifestListState {
    #[serde(flatten)]
    pub inputs: ManifestListInputs,
    /// Digest of the pushed index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-output" = "always", "x-preview" = "unknown"))]
    pub digest: Option<String>,
    /// `repository@digest` of the first tag: a pinned reference for task definitions.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-output" = "always", "x-preview" = "unknown"))]
    pub reference: Option<String>,
    /// The platform entries of the index.
    #[serde(default)]
    #[schemars(extend("x-output" = "always"))]
    pub manifests: Vec<ManifestEntry>,
    /// The index's platforms, normalized and sorted.
    #[serde(default)]
    #[schemars(extend("x-output" = "always", "x-set" = true))]
    pub platforms: Vec<String>,
    /// The digest each source resolved to when the index was pushed; a source tag that
    /// moves shows up as a change.
    #[serde(default)]
    #[schemars(extend("x-output" = "always"))]
    pub source_digests: BTreeMap<String, String>,
}

pub struct ManifestList;

fn unknown_under(unknown: &BTreeSet<PropertyPath>, root: &str) -> bool {
    unknown.iter().any(|p| p.root() == Some(root))
}

#[async_trait]
impl Resource for ManifestList {
    const TOKEN: &'static str = "multiarch:index:ManifestList";
    const TF_NAME: &'static str = "multiarch_manifest_list";

    type Inputs = ManifestListInputs;
    type State = ManifestListState;

    fn description() -> &'static str {
        "A manifest list (OCI image index) that combines existing per-architecture images \
         under one set of tags, like `docker buildx imagetools create`."
    }

    fn docs() -> ResourceDocs {
        ResourceDocs {
            examples: &["manifest-list", "promotion"],
            import: docs::import(),
        }
    }

    fn check(inputs: &ManifestListInputs, unknown: &BTreeSet<PropertyPath>) -> Vec<Failure> {
        let mut failures = Vec::new();
        if inputs.tags.is_empty() && !unknown_under(unknown, "tags") {
            failures.push(Failure::new("tags", "at least one tag is required"));
        }
        for (i, t) in inputs.tags.iter().enumerate() {
            if let Err(e) = parse_tag(t) {
                failures.push(Failure::new(format!("tags[{i}]"), e));
            }
        }
        if inputs.sources.is_empty() && !unknown_under(unknown, "sources") {
            failures.push(Failure::new(
                "sources",
                "at least one source image is required",
            ));
        }
        let mut seen = BTreeMap::new();
        for (i, s) in inputs.sources.iter().enumerate() {
            if let Err(e) = parse_qualified(s) {
                failures.push(Failure::new(format!("sources[{i}]"), e));
            }
            if let Some(first) = seen.insert(s.trim(), i) {
                failures.push(Failure::new(
                    format!("sources[{i}]"),
                    format!("{s:?} is listed twice (also sources[{first}])"),
                ));
            }
        }
        for (source, p) in &inputs.platform_overrides {
            let path = PropertyPath::root_key("platformOverrides")
                .key(source)
                .to_string();
            if !inputs.sources.iter().any(|s| s.trim() == source.trim()) {
                failures.push(Failure::new(
                    path.clone(),
                    format!("{source:?} is not one of the sources"),
                ));
            }
            if let Err(e) = platform::normalize(p) {
                failures.push(Failure::new(path, e.to_string()));
            }
        }
        if inputs.media_type == Some(IndexMediaType::Docker) && !inputs.annotations.is_empty() {
            failures.push(Failure::new(
                "annotations",
                "a Docker manifest list has no annotations; set mediaType to oci",
            ));
        }
        failures
    }

    fn normalize(mut inputs: ManifestListInputs) -> ManifestListInputs {
        for t in &mut inputs.tags {
            *t = t.trim().to_owned();
        }
        for s in &mut inputs.sources {
            *s = s.trim().to_owned();
        }
        for p in inputs.platform_overrides.values_mut() {
            if let Ok(n) = platform::normalize(p) {
                *p = n;
            }
        }
        inputs
    }

    fn inputs_of(state: &ManifestListState) -> &ManifestListInputs {
        &state.inputs
    }

    async fn review_changes(
        &self,
        ctx: &OpContext,
        _id: &str,
        olds: &ManifestListState,
        news: &ManifestListInputs,
        mut changes: Vec<Change>,
    ) -> Result<Vec<Change>, Error> {
        // Sources written differently (tags where an import recorded digests, a pinned
        // digest where a tag was) that resolve to the very images recorded are no change.
        if changes.iter().any(|c| c.path == "sources") && same_images(ctx, olds, news).await {
            changes.retain(|c| c.path != "sources");
        }
        // A source tag that now points elsewhere (app:10.20 was rebuilt) is a change.
        changes.extend(moved_sources(ctx, olds, news).await);
        Ok(changes)
    }

    async fn create(
        &self,
        ctx: &OpContext,
        inputs: ManifestListInputs,
    ) -> Result<Applied<ManifestListState>, Error> {
        let id = inputs.tags[0].clone();
        apply(ctx, id, inputs, None).await
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        state: Option<ManifestListState>,
    ) -> Result<Option<(String, ManifestListState)>, Error> {
        match state {
            Some(state) => refresh(ctx, id, state).await,
            None => import(ctx, id).await,
        }
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        olds: ManifestListState,
        news: ManifestListInputs,
    ) -> Result<Applied<ManifestListState>, Error> {
        apply(ctx, id.to_owned(), news, Some(olds)).await
    }

    async fn delete(
        &self,
        ctx: &OpContext,
        _id: &str,
        state: ManifestListState,
    ) -> Result<(), Error> {
        if state.inputs.keep_remotely {
            return Ok(());
        }
        tags::remove(ctx, &state.inputs.tags).await
    }
}

mod apply;
mod docs;
mod resolve;

use apply::*;
use resolve::*;

#[cfg(test)]
mod tests;

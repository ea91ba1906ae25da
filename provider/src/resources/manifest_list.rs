//! `multiarch:index:ManifestList`: stitches existing per-architecture images into one
//! manifest list / OCI image index pushed under a set of tags.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Applied, Change, Error, Failure, OpContext, PropertyPath, Resource};
use crate::platform;
use crate::reference::{parse_qualified, parse_tag};

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
    pub tags: Vec<String>,
    /// Images to combine, by tag or digest, from any repository or registry. Each is a
    /// single-platform image (its platform read from its config) or an index (its platform
    /// entries are taken). Compared as a set.
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
    pub digest: Option<String>,
    /// `repository@digest` of the first tag: a pinned reference for task definitions.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The platform entries of the index.
    #[serde(default)]
    pub manifests: Vec<ManifestEntry>,
    /// The index's platforms, normalized and sorted.
    #[serde(default)]
    pub platforms: Vec<String>,
    /// The digest each source resolved to when the index was pushed; a source tag that
    /// moves shows up as a change.
    #[serde(default)]
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
    const COMPUTED: &'static [&'static str] =
        &["digest", "ref", "manifests", "platforms", "sourceDigests"];

    type Inputs = ManifestListInputs;
    type State = ManifestListState;

    fn description() -> &'static str {
        "A manifest list (OCI image index) that combines existing per-architecture images \
         under one set of tags, like `docker buildx imagetools create`."
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

    async fn diff(
        &self,
        _ctx: &OpContext,
        _id: &str,
        olds: &ManifestListState,
        news: &ManifestListInputs,
    ) -> Result<Vec<Change>, Error> {
        Ok(input_changes(&olds.inputs, news))
    }

    async fn create(
        &self,
        _ctx: &OpContext,
        _inputs: ManifestListInputs,
    ) -> Result<Applied<ManifestListState>, Error> {
        Err(Error::Unsupported(
            "ManifestList create is not available in this build yet".into(),
        ))
    }

    async fn read(
        &self,
        _ctx: &OpContext,
        _id: &str,
        state: Option<ManifestListState>,
    ) -> Result<Option<(String, ManifestListState)>, Error> {
        Err(Error::Unsupported(format!(
            "ManifestList read is not available in this build yet (state present: {})",
            state.is_some()
        )))
    }

    async fn update(
        &self,
        _ctx: &OpContext,
        _id: &str,
        _olds: ManifestListState,
        _news: ManifestListInputs,
    ) -> Result<Applied<ManifestListState>, Error> {
        Err(Error::Unsupported(
            "ManifestList update is not available in this build yet".into(),
        ))
    }

    async fn delete(
        &self,
        _ctx: &OpContext,
        _id: &str,
        _state: ManifestListState,
    ) -> Result<(), Error> {
        Err(Error::Unsupported(
            "ManifestList delete is not available in this build yet".into(),
        ))
    }
}

/// Differences in the inputs themselves, sets compared as sets.
fn input_changes(olds: &ManifestListInputs, news: &ManifestListInputs) -> Vec<Change> {
    let mut changes = Vec::new();
    if !super::same_set(&olds.tags, &news.tags) {
        changes.push(Change::update("tags"));
    }
    if !super::same_set(&olds.sources, &news.sources) {
        changes.push(Change::update("sources"));
    }
    if olds.media_type != news.media_type {
        changes.push(Change::update("mediaType"));
    }
    if olds.annotations != news.annotations {
        changes.push(Change::update("annotations"));
    }
    if olds.platform_overrides != news.platform_overrides {
        changes.push(Change::update("platformOverrides"));
    }
    if olds.keep_remotely != news.keep_remotely {
        changes.push(Change::update("keepRemotely"));
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(tags: &[&str], sources: &[&str]) -> ManifestListInputs {
        ManifestListInputs {
            tags: tags.iter().map(|s| s.to_string()).collect(),
            sources: sources.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    const R: &str = "127.0.0.1:5000/app";

    #[test]
    fn reordering_is_no_change() {
        let a = inputs(
            &[&format!("{R}:10"), &format!("{R}:latest")],
            &[&format!("{R}:a"), &format!("{R}:b")],
        );
        let b = inputs(
            &[&format!("{R}:latest"), &format!("{R}:10")],
            &[&format!("{R}:b"), &format!("{R}:a")],
        );
        assert!(input_changes(&a, &b).is_empty());
        let c = inputs(
            &[&format!("{R}:10")],
            &[&format!("{R}:b"), &format!("{R}:a")],
        );
        assert_eq!(input_changes(&a, &c), vec![Change::update("tags")]);
    }

    #[test]
    fn check_names_each_bad_property() {
        let mut i = inputs(
            &["app:10", &format!("{R}:ok")],
            &[&format!("{R}:a"), &format!("{R}:a"), "nohost"],
        );
        i.platform_overrides
            .insert(format!("{R}:a"), "linux/sparc".into());
        i.platform_overrides
            .insert("other".into(), "linux/arm64".into());
        let f = ManifestList::check(&i, &BTreeSet::new());
        let props: Vec<&str> = f.iter().map(|f| f.property.as_str()).collect();
        assert!(props.contains(&"tags[0]"), "{f:?}");
        assert!(props.contains(&"sources[1]"), "{f:?}");
        assert!(props.contains(&"sources[2]"), "{f:?}");
        assert!(
            props.contains(&"platformOverrides[\"127.0.0.1:5000/app:a\"]"),
            "{f:?}"
        );
        assert!(props.contains(&"platformOverrides.other"), "{f:?}");
        assert!(!props.contains(&"tags[1]"));
    }

    #[test]
    fn missing_lists_fail_unless_unknown() {
        let f = ManifestList::check(&inputs(&[], &[]), &BTreeSet::new());
        assert_eq!(f.len(), 2);
        let unknown: BTreeSet<_> = [
            PropertyPath::root_key("tags"),
            PropertyPath::root_key("sources"),
        ]
        .into();
        assert!(ManifestList::check(&inputs(&[], &[]), &unknown).is_empty());
    }
}

//! `multiarch:index:Image`: builds a Dockerfile through BuildKit for a set of platforms and
//! pushes the resulting index under a set of tags.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Applied, Change, Error, Failure, OpContext, PropertyPath, Resource};
use crate::config::SecretString;
use crate::platform;
use crate::reference::parse_tag;

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// Where the build context comes from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BuildContext {
    /// A local directory (relative to the program's directory) or a Git/HTTP URL.
    pub location: String,
    /// Extra named contexts (`FROM <name>` / `COPY --from=<name>`): name to directory,
    /// URL or `docker-image://` reference.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub named: BTreeMap<String, String>,
}

/// The Dockerfile: a path or inline text (exactly one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dockerfile {
    /// Path to the Dockerfile (default `<context>/Dockerfile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The Dockerfile's contents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<String>,
}

/// Network mode for `RUN` steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    #[default]
    Default,
    None,
    Host,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageInputs {
    /// The build context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<BuildContext>,
    /// The Dockerfile (default `Dockerfile` in the context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<Dockerfile>,
    /// Platforms to build, e.g. `linux/amd64`, `linux/arm64`. Compared as a set after
    /// normalization (`aarch64` = `arm64`).
    #[serde(default)]
    pub platforms: Vec<String>,
    /// Fully qualified references to push to. Compared as a set.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Push the result to `tags` (never during preview).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    #[schemars(extend("default" = true))]
    pub push: bool,
    /// Build arguments (`ARG`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub build_args: BTreeMap<String, String>,
    /// The Dockerfile stage to build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Image labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Build secrets by id, for `RUN --mount=type=secret,id=<id>`. Never stored in the image.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("x-secret" = true))]
    pub secrets: BTreeMap<String, SecretString>,
    /// Cache sources, buildx syntax, e.g. `type=registry,ref=<repo>:cache`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cache_from: Vec<String>,
    /// Cache exports, buildx syntax. On ECR add `image-manifest=true,oci-mediatypes=true`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cache_to: Vec<String>,
    /// Do not use the build cache.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_cache: bool,
    /// Always look for newer base images.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pull: bool,
    /// Network mode for `RUN` steps: `default`, `none` or `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkMode>,
    /// Build during preview (without exporting) so Dockerfile errors show before `up`.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    #[schemars(extend("default" = true))]
    pub build_on_preview: bool,
    /// Attach a provenance attestation (adds `unknown/unknown` entries to the index).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub provenance: bool,
    /// Attach an SBOM attestation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sbom: bool,
    /// Arbitrary values; changing any of them rebuilds the image.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub triggers: BTreeMap<String, String>,
    /// Leave the tags in the registry when the resource is deleted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_remotely: bool,
}

/// A platform entry of the pushed index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlatformManifest {
    pub platform: String,
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageState {
    #[serde(flatten)]
    pub inputs: ImageInputs,
    /// Digest of the pushed index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// `repository@digest` of the first tag.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// One entry per platform.
    #[serde(default)]
    pub manifests: Vec<PlatformManifest>,
    /// SHA-256 over the Dockerfile and the files the context sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_hash: Option<String>,
}

pub struct Image;

fn is_url(s: &str) -> bool {
    ["http://", "https://", "git://", "git@", "ssh://"]
        .iter()
        .any(|p| s.starts_with(p))
}

#[async_trait]
impl Resource for Image {
    const TOKEN: &'static str = "multiarch:index:Image";
    const TF_NAME: &'static str = "multiarch_image";
    const COMPUTED: &'static [&'static str] = &["digest", "ref", "manifests", "contextHash"];

    type Inputs = ImageInputs;
    type State = ImageState;

    fn description() -> &'static str {
        "A container image built through BuildKit for a set of platforms and pushed as one \
         index under a set of tags, like `docker buildx build --platform … --push`."
    }

    fn check(inputs: &ImageInputs, unknown: &BTreeSet<PropertyPath>) -> Vec<Failure> {
        let mut failures = Vec::new();
        let unknown_root = |r: &str| unknown.iter().any(|p| p.root() == Some(r));
        let context = inputs.context.as_ref().map(|c| c.location.as_str());
        match context {
            Some(loc) if !is_url(loc) && !Path::new(loc).is_dir() => failures.push(Failure::new(
                "context.location",
                format!("{loc:?} is not a directory"),
            )),
            _ => {}
        }
        if let Some(df) = &inputs.dockerfile {
            match (&df.location, &df.inline) {
                (Some(_), Some(_)) => failures.push(Failure::new(
                    "dockerfile",
                    "set either location or inline, not both",
                )),
                (Some(loc), None) if !Path::new(loc).is_file() => failures.push(Failure::new(
                    "dockerfile.location",
                    format!("{loc:?} is not a file"),
                )),
                _ => {}
            }
        }
        let inline = inputs
            .dockerfile
            .as_ref()
            .is_some_and(|d| d.inline.is_some());
        let located = inputs
            .dockerfile
            .as_ref()
            .is_some_and(|d| d.location.is_some());
        if !inline && !located && !unknown_root("dockerfile") {
            match context {
                Some(loc)
                    if !is_url(loc)
                        && Path::new(loc).is_dir()
                        && !Path::new(loc).join("Dockerfile").is_file() =>
                {
                    failures.push(Failure::new(
                        "dockerfile",
                        format!("no Dockerfile in {loc:?}; set dockerfile.location or dockerfile.inline"),
                    ));
                }
                None if !unknown_root("context") => failures.push(Failure::new(
                    "dockerfile",
                    "without a context, dockerfile.inline is required",
                )),
                _ => {}
            }
        }
        let mut seen = BTreeMap::new();
        for (i, p) in inputs.platforms.iter().enumerate() {
            match platform::normalize(p) {
                Err(e) => failures.push(Failure::new(format!("platforms[{i}]"), e.to_string())),
                Ok(n) => {
                    if let Some(j) = seen.insert(n.clone(), i) {
                        failures.push(Failure::new(
                            format!("platforms[{i}]"),
                            format!("{p:?} is the same platform as platforms[{j}] ({n})"),
                        ));
                    }
                }
            }
        }
        for (i, t) in inputs.tags.iter().enumerate() {
            if let Err(e) = parse_tag(t) {
                failures.push(Failure::new(format!("tags[{i}]"), e));
            }
        }
        if inputs.push && inputs.tags.is_empty() && !unknown_root("tags") {
            failures.push(Failure::new("tags", "push is true but no tags are given"));
        }
        failures
    }

    fn normalize(mut inputs: ImageInputs) -> ImageInputs {
        for p in &mut inputs.platforms {
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
        olds: &ImageState,
        news: &ImageInputs,
    ) -> Result<Vec<Change>, Error> {
        let o = &olds.inputs;
        let mut changes = Vec::new();
        let norm = |v: &[String]| -> BTreeSet<String> {
            v.iter()
                .map(|p| platform::normalize(p).unwrap_or_else(|_| p.clone()))
                .collect()
        };
        if norm(&o.platforms) != norm(&news.platforms) {
            changes.push(Change::update("platforms"));
        }
        if !super::same_set(&o.tags, &news.tags) {
            changes.push(Change::update("tags"));
        }
        macro_rules! plain {
            ($($field:ident => $name:literal),* $(,)?) => {
                $(if o.$field != news.$field { changes.push(Change::update($name)); })*
            };
        }
        plain!(
            context => "context", dockerfile => "dockerfile", push => "push",
            build_args => "buildArgs", target => "target", labels => "labels",
            secrets => "secrets", cache_from => "cacheFrom", cache_to => "cacheTo",
            no_cache => "noCache", pull => "pull", network => "network",
            build_on_preview => "buildOnPreview", provenance => "provenance", sbom => "sbom",
            triggers => "triggers", keep_remotely => "keepRemotely",
        );
        Ok(changes)
    }

    async fn create(
        &self,
        _ctx: &OpContext,
        _inputs: ImageInputs,
    ) -> Result<Applied<ImageState>, Error> {
        Err(Error::Unsupported(
            "Image builds need the BuildKit client, which this build does not include yet".into(),
        ))
    }

    async fn read(
        &self,
        _ctx: &OpContext,
        id: &str,
        state: Option<ImageState>,
    ) -> Result<Option<(String, ImageState)>, Error> {
        // Without registry look-ups yet, the recorded state stands.
        Ok(state.map(|s| (id.to_owned(), s)))
    }

    async fn update(
        &self,
        _ctx: &OpContext,
        _id: &str,
        _olds: ImageState,
        _news: ImageInputs,
    ) -> Result<Applied<ImageState>, Error> {
        Err(Error::Unsupported(
            "Image builds need the BuildKit client, which this build does not include yet".into(),
        ))
    }

    async fn delete(&self, _ctx: &OpContext, _id: &str, _state: ImageState) -> Result<(), Error> {
        Err(Error::Unsupported(
            "Image delete needs registry support, which this build does not include yet".into(),
        ))
    }
}

//! `multiarch:index:ManifestList`: stitches existing per-architecture images into one
//! manifest list / OCI image index pushed under a set of tags.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use futures::StreamExt;
use oci_client::Reference;
use serde_json::{Map, Value as Json};

use super::{
    tags, Applied, Change, Error, Failure, OpContext, PropertyPath, Resource, UnknownOutputs,
};
use crate::platform::{self, Platform};
use crate::reference::{parse_qualified, parse_tag, repository_of};
use crate::registry::index::{self, assemble_index, IndexKind};
use crate::registry::manifest::{
    entry_platform, index_entries, EntryPlatform, IndexEntry, RawManifest, DOCKER_LIST,
    DOCKER_MANIFEST, OCI_INDEX,
};
use crate::registry::CopyChild;

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
    #[schemars(extend("x-output" = "always"))]
    pub digest: Option<String>,
    /// `repository@digest` of the first tag: a pinned reference for task definitions.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-output" = "always"))]
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

/// A platform entry (or an attestation riding along with one) to put in the index.
struct Child {
    source: String,
    from: Reference,
    entry: IndexEntry,
    platform: Option<String>,
    /// The manifest, when resolving already read it (single-platform sources): the copy
    /// reuses it instead of reading it again.
    manifest: Option<RawManifest>,
}

struct Resolved {
    children: Vec<Child>,
    source_digests: BTreeMap<String, String>,
    /// The source when there is exactly one and it is an index (a promotion).
    sole_index: Option<RawManifest>,
}

fn not_found(i: usize, source: &str) -> Error {
    Error::invalid(
        format!("sources[{i}]"),
        format!("{source} does not exist in its registry"),
    )
}

/// The platform's name and its index object (`os.version`, `os.features` of `original` kept).
fn named_platform(
    os: &str,
    arch: &str,
    variant: Option<&str>,
    original: Option<&Json>,
) -> Result<(String, Map<String, Json>), String> {
    let p = Platform::new(os, arch, variant).map_err(|e| e.to_string())?;
    Ok((p.to_string(), index::platform_object(&p, original)))
}

/// Reads every source (read-only) and works out the index's entries.
async fn resolve(ctx: &OpContext, inputs: &ManifestListInputs) -> Result<Resolved, Error> {
    // Sources are independent: look them up concurrently.
    let per_source = futures::future::try_join_all(
        inputs
            .sources
            .iter()
            .enumerate()
            .map(|(i, source)| resolve_source(ctx, inputs, i, source)),
    )
    .await?;
    let sole_index = match per_source.as_slice() {
        [(_, _, _, Some(index))] => Some(index.clone()),
        _ => None,
    };
    let mut children = Vec::new();
    let mut source_digests = BTreeMap::new();
    for (source, digest, mut kids, _) in per_source {
        source_digests.insert(source, digest);
        children.append(&mut kids);
    }
    // Two sources giving the same platform: the engine could pull either.
    let mut by_platform: BTreeMap<&str, &str> = BTreeMap::new();
    for c in &children {
        if let Some(p) = &c.platform {
            if let Some(other) = by_platform.insert(p, &c.source) {
                if other != c.source {
                    return Err(Error::invalid(
                        "sources",
                        format!(
                            "{other} and {} both provide {p}; keep one or set platformOverrides",
                            c.source
                        ),
                    ));
                }
                return Err(Error::invalid(
                    "sources",
                    format!("{} lists {p} twice", c.source),
                ));
            }
        }
    }
    Ok(Resolved {
        children,
        source_digests,
        sole_index,
    })
}

/// One source: its digest, the index entries it contributes, and itself if an index.
async fn resolve_source(
    ctx: &OpContext,
    inputs: &ManifestListInputs,
    i: usize,
    source: &str,
) -> Result<(String, String, Vec<Child>, Option<RawManifest>), Error> {
    let path = format!("sources[{i}]");
    let r = parse_qualified(source).map_err(|e| Error::invalid(&path, e))?;
    let m = ctx
        .registry
        .manifest(&r)
        .await?
        .ok_or_else(|| not_found(i, source))?;
    let digest = m.digest.clone();
    if m.is_index() {
        let children = index_children(inputs, source, &r, &m, &path)?;
        return Ok((source.to_owned(), digest, children, Some(m)));
    }
    let child = image_child(ctx, inputs, source, &r, m, &path).await?;
    Ok((source.to_owned(), digest, vec![child], None))
}

fn override_path(source: &str) -> String {
    PropertyPath::root_key("platformOverrides")
        .key(source)
        .to_string()
}

/// The entries of an index source, attestations included.
fn index_children(
    inputs: &ManifestListInputs,
    source: &str,
    r: &Reference,
    m: &RawManifest,
    path: &str,
) -> Result<Vec<Child>, Error> {
    if inputs.platform_overrides.contains_key(source) {
        return Err(Error::invalid(
            override_path(source),
            format!("{source} is an index; its entries already name their platforms"),
        ));
    }
    index_entries(&m.json())
        .iter()
        .map(|e| index_child(source, r, e, path))
        .collect()
}

/// One entry of an index source: a platform image or an attestation.
fn index_child(source: &str, r: &Reference, e: &Json, path: &str) -> Result<Child, Error> {
    let EntryPlatform {
        os,
        architecture: arch,
        variant,
    } = entry_platform(e);
    let (platform, pm) = if Platform::is_unknown_attestation(os, arch) {
        let mut pm = Map::new();
        pm.insert("architecture".into(), Json::String("unknown".into()));
        pm.insert("os".into(), Json::String("unknown".into()));
        (None, pm)
    } else {
        let (name, pm) = named_platform(os, arch, variant, e.get("platform")).map_err(|err| {
            Error::invalid(
                path,
                format!("{source} has an entry with a bad platform: {err}"),
            )
        })?;
        (Some(name), pm)
    };
    let field = |k: &str| {
        e.get(k)
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Ok(Child {
        source: source.to_owned(),
        from: r.clone(),
        entry: IndexEntry {
            media_type: field("mediaType"),
            digest: field("digest"),
            size: e.get("size").and_then(Json::as_i64).unwrap_or(0),
            platform: pm,
            annotations: e
                .get("annotations")
                .and_then(Json::as_object)
                .cloned()
                .unwrap_or_default(),
        },
        platform,
        manifest: None,
    })
}

/// A single-platform source; its manifest is kept for the copy.
async fn image_child(
    ctx: &OpContext,
    inputs: &ManifestListInputs,
    source: &str,
    r: &Reference,
    m: RawManifest,
    path: &str,
) -> Result<Child, Error> {
    let (name, pm) = match inputs.platform_overrides.get(source) {
        Some(p) => override_platform(source, p)?,
        None => config_platform(ctx, source, r, &m, path).await?,
    }
    .map_err(|e| Error::invalid(path, format!("{source}: {e}; set platformOverrides for it")))?;
    Ok(Child {
        source: source.to_owned(),
        from: r.clone(),
        entry: IndexEntry {
            media_type: m.media_type.clone(),
            digest: m.digest.clone(),
            size: m.size(),
            platform: pm,
            annotations: Map::new(),
        },
        platform: Some(name),
        manifest: Some(m),
    })
}

type PlatformResult = Result<(String, Map<String, Json>), String>;

fn override_platform(source: &str, p: &str) -> Result<PlatformResult, Error> {
    let p: Platform = p.parse().map_err(|e: crate::platform::PlatformError| {
        Error::invalid(override_path(source), e.to_string())
    })?;
    Ok(named_platform(
        &p.os,
        &p.architecture,
        p.variant.as_deref(),
        None,
    ))
}

/// The platform an image's config names (one blob read).
async fn config_platform(
    ctx: &OpContext,
    source: &str,
    r: &Reference,
    m: &RawManifest,
    path: &str,
) -> Result<PlatformResult, Error> {
    let json = m.json();
    let config = json
        .get("config")
        .and_then(|c| c.get("digest"))
        .and_then(Json::as_str)
        .ok_or_else(|| Error::invalid(path, format!("{source} has no image config")))?;
    let cfg = ctx.registry.json_blob(r, config).await?;
    let field = |k: &str| cfg.get(k).and_then(Json::as_str).unwrap_or("");
    Ok(named_platform(
        field("os"),
        field("architecture"),
        cfg.get("variant").and_then(Json::as_str),
        None,
    ))
}

/// The index to push and which children it holds (in the order they are copied): the
/// source index itself for a promotion, else one assembled from the children.
fn index_for(
    inputs: &ManifestListInputs,
    resolved: &Resolved,
    targets: &[Reference],
) -> (RawManifest, Vec<usize>) {
    if let Some(index) = promoted(inputs, resolved, targets) {
        return (index.clone(), (0..resolved.children.len()).collect());
    }
    let children: Vec<(&IndexEntry, Option<&str>)> = resolved
        .children
        .iter()
        .map(|c| (&c.entry, c.platform.as_deref()))
        .collect();
    let kind = inputs.media_type.map(|m| match m {
        IndexMediaType::Docker => IndexKind::Docker,
        IndexMediaType::Oci => IndexKind::Oci,
    });
    assemble_index(&children, kind, &inputs.annotations)
}

/// A promotion (`dev/app:v1` to `prod/app:stable`): one source that is an index, in another
/// repository than every tag, and nothing asked that would change it (annotations, another
/// media type). The tags then get that index byte for byte, so its digest stays what clients
/// pinned (task definitions, signatures). Within the source's own repository the index is
/// written anew: two tags on one digest there could not be deleted one at a time on
/// registries that delete by digest only.
fn promoted<'a>(
    inputs: &ManifestListInputs,
    resolved: &'a Resolved,
    targets: &[Reference],
) -> Option<&'a RawManifest> {
    let index = resolved.sole_index.as_ref()?;
    let source = resolved.children.first().map(|c| repository_of(&c.from))?;
    if targets.iter().any(|t| repository_of(t) == source) {
        return None;
    }
    let same_type = match inputs.media_type {
        None => true,
        Some(IndexMediaType::Docker) => index.media_type == DOCKER_LIST,
        Some(IndexMediaType::Oci) => index.media_type == OCI_INDEX,
    };
    (same_type && inputs.annotations.is_empty() && inputs.platform_overrides.is_empty())
        .then_some(index)
}

fn state_for(
    inputs: ManifestListInputs,
    resolved: &Resolved,
    index: Option<&RawManifest>,
) -> ManifestListState {
    let mut manifests: Vec<ManifestEntry> = resolved
        .children
        .iter()
        .filter_map(|c| {
            c.platform.as_ref().map(|p| ManifestEntry {
                source: c.source.clone(),
                digest: c.entry.digest.clone(),
                platform: p.clone(),
            })
        })
        .collect();
    manifests.sort_by(|a, b| a.platform.cmp(&b.platform));
    let platforms = manifests.iter().map(|m| m.platform.clone()).collect();
    let reference = index.and_then(|ix| {
        parse_tag(&inputs.tags[0])
            .ok()
            .map(|t| format!("{}@{}", repository_of(&t), ix.digest))
    });
    ManifestListState {
        digest: index.map(|ix| ix.digest.clone()),
        reference,
        manifests,
        platforms,
        source_digests: resolved.source_digests.clone(),
        inputs,
    }
}

/// Create and update: resolve, then (unless previewing) copy children and push every tag.
async fn apply(
    ctx: &OpContext,
    id: String,
    inputs: ManifestListInputs,
    olds: Option<ManifestListState>,
) -> Result<Applied<ManifestListState>, Error> {
    if ctx.preview {
        return match resolve(ctx, &inputs).await {
            Ok(resolved) => Ok(Applied {
                id,
                state: state_for(inputs, &resolved, None),
                unknown_outputs: UnknownOutputs::Only(&["digest", "ref"]),
            }),
            // Sources may be pushed by this very update (an Image earlier in the program).
            Err(e) => {
                ctx.log
                    .warn(&format!("preview cannot resolve the sources yet: {e}"));
                Ok(Applied {
                    id,
                    state: ManifestListState {
                        inputs,
                        ..Default::default()
                    },
                    unknown_outputs: UnknownOutputs::All,
                })
            }
        };
    }
    let mut targets = Vec::new();
    for tag in &inputs.tags {
        targets.push(parse_tag(tag).map_err(|e| Error::invalid("tags", e))?);
    }
    // What each tag points to now does not depend on the sources: look both up at once.
    // Only IMMUTABLE (ECR) repositories need to know (they reject an identical re-push);
    // elsewhere pushing the same index again is one request, the same as asking.
    let current = futures::future::try_join_all(targets.iter().map(|t| async move {
        if ctx.registry.is_ecr(t.registry()) {
            ctx.registry.digest_of(t).await
        } else {
            Ok(None)
        }
    }));
    let (resolved, current) = futures::future::try_join(resolve(ctx, &inputs), async {
        current.await.map_err(Error::from)
    })
    .await?;
    let (index, order) = index_for(&inputs, &resolved, &targets);
    copy_children(ctx, &targets, &resolved, &order).await?;
    futures::future::try_join_all(targets.iter().zip(&current).map(|(t, now)| {
        let index = &index;
        async move {
            // IMMUTABLE ECR repositories reject even an identical re-push.
            if now.as_deref() == Some(index.digest.as_str()) {
                return Ok::<(), Error>(());
            }
            ctx.log.status(&format!("pushing {}", t.whole()));
            ctx.registry.put_manifest(t, index).await?;
            Ok(())
        }
    }))
    .await?;
    if let Some(olds) = olds {
        if !inputs.keep_remotely {
            let dropped: Vec<String> = olds
                .inputs
                .tags
                .into_iter()
                .filter(|t| !inputs.tags.contains(t))
                .collect();
            tags::remove(ctx, &dropped).await?;
        }
    }
    Ok(Applied {
        id,
        state: state_for(inputs, &resolved, Some(&index)),
        unknown_outputs: UnknownOutputs::None,
    })
}

/// Children living in another repository are copied into each target repository first
/// (ECR refuses an index whose children it does not hold): one copy per target repository,
/// all concurrently, each moving every unique blob once.
async fn copy_children(
    ctx: &OpContext,
    targets: &[Reference],
    resolved: &Resolved,
    order: &[usize],
) -> Result<(), Error> {
    let mut per_repo: BTreeMap<String, (&Reference, Vec<CopyChild>)> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for t in targets {
        let repo = repository_of(t);
        for &i in order {
            let c = &resolved.children[i];
            let same_repo =
                c.from.registry() == t.registry() && c.from.repository() == t.repository();
            if same_repo || !seen.insert((repo.clone(), c.entry.digest.clone())) {
                continue;
            }
            ctx.log.status(&format!(
                "copying {} ({}) into {repo}",
                c.entry.digest,
                c.platform.as_deref().unwrap_or("attestation"),
            ));
            per_repo
                .entry(repo.clone())
                .or_insert((t, Vec::new()))
                .1
                .push(CopyChild {
                    from: c.from.clone(),
                    digest: c.entry.digest.clone(),
                    manifest: c.manifest.clone(),
                });
        }
    }
    futures::future::try_join_all(
        per_repo
            .into_values()
            .map(|(t, children)| async move { ctx.registry.copy_into(t, &children).await }),
    )
    .await?;
    Ok(())
}

/// Sources given by tag whose digest moved since the last push (`app:10.20` was rebuilt),
/// looked up concurrently (at most `LOOKUPS` at a time).
async fn moved_sources(
    ctx: &OpContext,
    olds: &ManifestListState,
    news: &ManifestListInputs,
) -> Vec<Change> {
    const LOOKUPS: usize = 16;
    let lookups: Vec<_> = news
        .sources
        .iter()
        .enumerate()
        .filter_map(|(i, source)| {
            let recorded = olds.source_digests.get(source)?;
            let r = parse_qualified(source).ok()?;
            r.digest().is_none().then_some((i, source, recorded, r))
        })
        .map(|(i, source, recorded, r)| async move {
            let now = ctx.registry.digest_of(&r).await;
            (i, source, recorded, now)
        })
        .collect();
    let answers: Vec<_> = futures::stream::iter(lookups)
        .buffered(LOOKUPS)
        .collect()
        .await;
    let mut changes = Vec::new();
    for (i, source, recorded, now) in answers {
        match now {
            Ok(Some(now)) if &now != recorded => {
                changes.push(Change::update(format!("sources[{i}]")))
            }
            Ok(None) => changes.push(Change::update(format!("sources[{i}]"))),
            Ok(Some(_)) => {}
            Err(e) => ctx.log.warn(&format!(
                "could not check whether source {source} moved: {e}"
            )),
        }
    }
    changes
}

/// Whether `news.sources` resolve to exactly the images the state records: one source per
/// platform manifest (the same digests), or one source that is the recorded index itself.
/// A look-up that fails answers no: the change stays.
async fn same_images(ctx: &OpContext, olds: &ManifestListState, news: &ManifestListInputs) -> bool {
    const LOOKUPS: usize = 16;
    let lookups: Vec<_> = news
        .sources
        .iter()
        .map(|source| async move {
            let r = parse_qualified(source).ok()?;
            match r.digest() {
                Some(d) => Some(d.to_owned()),
                None => ctx.registry.digest_of(&r).await.ok().flatten(),
            }
        })
        .collect();
    let resolved: Vec<Option<String>> = futures::stream::iter(lookups)
        .buffered(LOOKUPS)
        .collect()
        .await;
    let Some(now) = resolved.into_iter().collect::<Option<BTreeSet<String>>>() else {
        return false;
    };
    let children: BTreeSet<String> = olds.manifests.iter().map(|m| m.digest.clone()).collect();
    let index: BTreeSet<String> = olds.digest.iter().cloned().collect();
    now.len() == news.sources.len() && (now == children || now == index)
}

/// Refresh: tags still pointing at our digest stay; 404 (or another digest) drops a tag;
/// no tags left means gone. Any other error keeps the state as it was.
async fn refresh(
    ctx: &OpContext,
    id: &str,
    state: ManifestListState,
) -> Result<Option<(String, ManifestListState)>, Error> {
    let digest = state.digest.clone();
    Ok(
        tags::refresh(ctx, id, state, digest, |s: &mut ManifestListState| {
            &mut s.inputs.tags
        })
        .await,
    )
}

/// Import by reference: the index at `id` becomes the state, its children the sources.
async fn import(ctx: &OpContext, id: &str) -> Result<Option<(String, ManifestListState)>, Error> {
    let t = parse_tag(id).map_err(|e| Error::invalid("id", e))?;
    let Some(m) = ctx.registry.manifest(&t).await? else {
        return Ok(None);
    };
    if !m.is_index() {
        return Err(Error::invalid(
            "id",
            format!("{id} is a single image, not a manifest list"),
        ));
    }
    let repo = repository_of(&t);
    let json = m.json();
    let children: Vec<&Json> = index_entries(&json)
        .iter()
        .filter(|e| !entry_platform(e).is_attestation())
        .collect();
    let sources: Vec<String> = children
        .iter()
        .filter_map(|e| e.get("digest").and_then(Json::as_str))
        .map(|d| format!("{repo}@{d}"))
        .collect();
    // The media type is recorded only where it is not what these sources give unset, so
    // that a program which does not set it plans no change.
    let all_docker = children
        .iter()
        .all(|e| e.get("mediaType").and_then(Json::as_str) == Some(DOCKER_MANIFEST));
    let media_type = match (m.media_type == DOCKER_LIST, all_docker) {
        (true, true) | (false, false) => None,
        (true, false) => Some(IndexMediaType::Docker),
        (false, true) => Some(IndexMediaType::Oci),
    };
    let inputs = ManifestListInputs {
        tags: vec![id.to_owned()],
        sources,
        media_type,
        annotations: m
            .json()
            .get("annotations")
            .and_then(Json::as_object)
            .map(|a| {
                a.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default(),
        ..Default::default()
    };
    let resolved = resolve(ctx, &inputs).await?;
    let state = state_for(inputs, &resolved, Some(&m));
    Ok(Some((id.to_owned(), state)))
}

/// Differences in the inputs themselves, sets compared as sets.
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

    /// The input keys the model-driven Diff reports.
    fn input_changes(a: &ManifestListInputs, b: &ManifestListInputs) -> Vec<String> {
        let model = crate::model::ResourceModel::new::<ManifestListInputs, ManifestListState>(
            ManifestList::TOKEN,
            ManifestList::TF_NAME,
            "",
        );
        let json = |v: &ManifestListInputs| {
            serde_json::to_value(v)
                .unwrap()
                .as_object()
                .unwrap()
                .clone()
        };
        crate::model::changes(&model.inputs, &json(a), &json(b))
    }

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
        assert_eq!(input_changes(&a, &c), ["tags"]);
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

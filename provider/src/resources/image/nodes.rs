//! Several build nodes (`builders`): the platforms routed to the node that builds them,
//! each node's share built and pushed by digest in parallel, then one index assembled from
//! their manifests and pointed at by every tag.

use std::collections::BTreeMap;
use std::sync::Arc;

use oci_client::Reference;
use serde_json::Value as Json;

use super::inputs::{ImageState, PlatformManifest};
use crate::buildkit::{BuildOutcome, BuildSpec, CacheEntry, Output};
use crate::log::{Level, Logger};
use crate::platform::{self, Platform};
use crate::reference::{parse_tag, repository_of};
use crate::registry::index::{assemble_index, platform_object};
use crate::registry::manifest::{self, IndexEntry, RawManifest};
use crate::registry::CopyChild;
use crate::resources::ports::Node;
use crate::resources::{tags, Applied, Error, Failure, OpContext, UnknownOutputs};

/// The image's platforms grouped by the node that builds them, in node order (the default
/// node first). No platforms at all: no group (the default node builds its own platform).
pub(super) fn route(ctx: &OpContext, platforms: &[String]) -> Vec<(Node, Vec<String>)> {
    let mut groups: BTreeMap<Node, Vec<String>> = BTreeMap::new();
    for p in platforms {
        let p = platform::normalize(p).unwrap_or_else(|_| p.clone());
        groups.entry(ctx.builder.node_for(&p)).or_default().push(p);
    }
    groups.into_iter().collect()
}

/// The platforms grouped by node, and the key that places them on a pool's nodes.
pub(super) struct Placed<'a> {
    pub groups: &'a [(Node, Vec<String>)],
    pub placement: &'a str,
}

/// Progress and log lines of one node's build, prefixed with the node and its platforms.
struct NodeLog {
    prefix: String,
    inner: Arc<dyn Logger>,
}

impl Logger for NodeLog {
    fn log(&self, level: Level, message: &str) {
        self.inner.log(level, &format!("{}{message}", self.prefix))
    }
    fn status(&self, message: &str) {
        self.inner.status(&format!("{}{message}", self.prefix))
    }
}

/// One node's share of a multi-node build: `spec` for `platforms` only, on `node`; a
/// failure names the node (with its endpoint) and the platforms.
async fn build_on(
    ctx: &OpContext,
    node: Node,
    placement: &str,
    spec: &BuildSpec,
    platforms: &[String],
    output: Output,
) -> Result<BuildOutcome, Error> {
    let name = ctx.builder.node_name(node);
    let label = ctx.builder.node_label(node);
    let list = platforms.join(", ");
    // Each node imports and exports its own registry cache (`<ref>-linux-arm64`): nodes
    // sharing one cache ref would overwrite each other's, keeping only the last platform.
    let suffix = platforms.join("-").replace('/', "-");
    let split = |entries: &[CacheEntry]| entries.iter().map(|e| e.split(&suffix)).collect();
    let spec = BuildSpec {
        platforms: platforms.to_vec(),
        cache_from: split(&spec.cache_from),
        cache_to: split(&spec.cache_to),
        ..spec.clone()
    };
    let log: Arc<dyn Logger> = Arc::new(NodeLog {
        prefix: format!("[{label} {list}] "),
        inner: ctx.log.clone(),
    });
    log.info(&format!("building {list} on {name}"));
    let what = format!("{name}, platform {list}");
    match ctx
        .builder
        .build(node, placement, &spec, output, log, ctx.cancel.clone())
        .await
    {
        Ok(o) => Ok(o),
        Err(Error::Cancelled) => Err(Error::Cancelled),
        Err(Error::Invalid(failures)) => Err(Error::Invalid(
            failures
                .into_iter()
                .map(|f| Failure::new(f.property, format!("on {what}: {}", f.reason)))
                .collect(),
        )),
        Err(e) => Err(Error::Other(format!("on {what}: {e}"))),
    }
}

/// The index entries one node pushed by `digest` for `platforms`: a single manifest (one
/// platform, no attestations) or the entries of its index (attestations included).
async fn node_children(
    ctx: &OpContext,
    repository: &Reference,
    digest: &str,
    platforms: &[String],
) -> Result<Vec<(IndexEntry, Option<String>)>, Error> {
    let at = Reference::with_digest(
        repository.registry().into(),
        repository.repository().into(),
        digest.into(),
    );
    let Some(m) = ctx.registry.manifest(&at).await? else {
        return Err(Error::Other(format!(
            "{} is missing right after the push",
            at.whole()
        )));
    };
    if !m.is_index() {
        let [p] = platforms else {
            return Err(Error::Other(format!(
                "{} is one manifest for several platforms ({})",
                at.whole(),
                platforms.join(", ")
            )));
        };
        let platform: Platform = p
            .parse()
            .map_err(|e: platform::PlatformError| Error::invalid("platforms", e.to_string()))?;
        return Ok(vec![(
            IndexEntry::of_manifest(&m, platform_object(&platform, None)),
            Some(platform.to_string()),
        )]);
    }
    let json = m.json();
    let mut out = Vec::new();
    for e in manifest::index_entries(&json) {
        let p = manifest::entry_platform(e);
        let platform = if p.is_attestation() {
            None
        } else {
            Some(
                Platform::new(p.os, p.architecture, p.variant).map_err(|err| {
                    Error::Other(format!("{} has a bad platform entry: {err}", at.whole()))
                })?,
            )
        };
        let object = match &platform {
            Some(p) => platform_object(p, None),
            None => e
                .get("platform")
                .and_then(Json::as_object)
                .cloned()
                .unwrap_or_default(),
        };
        out.push((
            IndexEntry::from_descriptor(e, object),
            platform.map(|p| p.to_string()),
        ));
    }
    Ok(out)
}

/// Several nodes: each builds its platforms in parallel. In preview (and without push) only
/// building; otherwise each pushes its manifests by digest to the first tag's repository,
/// and once every node has succeeded the provider assembles the index (as a ManifestList
/// does) and pushes it to every tag. A failing node fails the whole: no tag is written.
pub(super) async fn multi_node(
    ctx: &OpContext,
    id: String,
    mut state: ImageState,
    spec: &BuildSpec,
    at: Placed<'_>,
    dropped_tags: &[String],
) -> Result<Applied<ImageState>, Error> {
    let Placed { groups, placement } = at;
    if ctx.preview || !state.inputs.push {
        if !ctx.preview || state.inputs.build_on_preview {
            futures::future::try_join_all(groups.iter().map(|(node, platforms)| {
                build_on(ctx, *node, placement, spec, platforms, Output::BuildOnly)
            }))
            .await?;
        }
        if ctx.preview {
            return Ok(Applied {
                id,
                state,
                unknown_outputs: UnknownOutputs::All,
            });
        }
        state.digest = Some(String::new());
        state.reference = Some(String::new());
        tags::remove(ctx, dropped_tags).await?;
        return Ok(Applied {
            id,
            state,
            unknown_outputs: UnknownOutputs::None,
        });
    }
    tags::reachable_before_push(ctx, &state.inputs.tags).await?;
    let mut targets = Vec::new();
    for (i, t) in state.inputs.tags.iter().enumerate() {
        targets.push(parse_tag(t).map_err(|e| Error::invalid(format!("tags[{i}]"), e))?);
    }
    let home = targets[0].clone();
    let repository = repository_of(&home);
    let outcomes = futures::future::try_join_all(groups.iter().map(|(node, platforms)| {
        let output = Output::PushByDigest {
            repository: repository.clone(),
        };
        build_on(ctx, *node, placement, spec, platforms, output)
    }))
    .await?;
    let mut children = Vec::new();
    for ((node, platforms), outcome) in groups.iter().zip(outcomes) {
        let digest = outcome.digest.ok_or_else(|| {
            Error::Other(format!(
                "{} pushed {} but reported no digest",
                ctx.builder.node_name(*node),
                platforms.join(", ")
            ))
        })?;
        children.extend(node_children(ctx, &home, &digest, platforms).await?);
    }
    let refs: Vec<(&IndexEntry, Option<&str>)> =
        children.iter().map(|(e, p)| (e, p.as_deref())).collect();
    let (index, order) = assemble_index(&refs, None, &BTreeMap::new());
    let child_digests: Vec<String> = order
        .iter()
        .map(|&i| children[i].0.digest.clone())
        .collect();
    point_tags(ctx, &home, &index, &child_digests, &targets).await?;
    let mut manifests: Vec<PlatformManifest> = children
        .iter()
        .filter_map(|(e, p)| {
            p.as_ref().map(|p| PlatformManifest {
                platform: p.clone(),
                digest: e.digest.clone(),
            })
        })
        .collect();
    manifests.sort();
    state.manifests = manifests;
    state.reference = Some(format!("{repository}@{}", index.digest));
    state.digest = Some(index.digest.clone());
    tags::remove(ctx, dropped_tags).await?;
    Ok(Applied {
        id,
        state,
        unknown_outputs: UnknownOutputs::None,
    })
}

/// Points `targets` at `index`, whose children (`child_digests`) are in `home`'s repository.
/// Tags in other repositories get the children first (ECR refuses an index whose children it
/// does not hold), each unique blob moved once per repository.
pub(super) async fn point_tags(
    ctx: &OpContext,
    home: &Reference,
    index: &RawManifest,
    child_digests: &[String],
    targets: &[Reference],
) -> Result<(), Error> {
    let repository = repository_of(home);
    let mut per_repo: BTreeMap<String, (&Reference, Vec<CopyChild>)> = BTreeMap::new();
    for t in targets {
        if repository_of(t) == repository || per_repo.contains_key(&repository_of(t)) {
            continue;
        }
        let kids = child_digests
            .iter()
            .map(|d| CopyChild {
                from: home.clone(),
                digest: d.clone(),
                manifest: None,
            })
            .collect();
        per_repo.insert(repository_of(t), (t, kids));
    }
    futures::future::try_join_all(
        per_repo
            .into_values()
            .map(|(t, kids)| async move { ctx.registry.copy_into(t, &kids).await }),
    )
    .await?;
    futures::future::try_join_all(targets.iter().map(|t| async move {
        // IMMUTABLE ECR repositories reject even an identical re-push.
        if ctx.registry.digest_of(t).await?.as_deref() == Some(index.digest.as_str()) {
            return Ok::<(), Error>(());
        }
        ctx.log.status(&format!("pushing {}", t.whole()));
        ctx.registry.put_manifest(t, index).await?;
        Ok(())
    }))
    .await?;
    Ok(())
}

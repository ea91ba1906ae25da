//! One node's build: the context hashed, the build described, then built, pushed (BuildKit
//! pushes the index itself) and exported, and the state read back from the registry.

use std::collections::BTreeSet;

use oci_client::Reference;

use super::check::{self, BuildPlan, ContextPlan, Located};
use super::inputs::{Export, ExportedArtifact, ImageInputs, ImageState, PlatformManifest};
use super::nodes;
use crate::buildkit::{BuildOutcome, BuildSpec, DockerfileSource, Exports, Output};
use crate::platform::Platform;
use crate::reference::{engine_name, parse_tag, repository_of};
use crate::registry::manifest::{self, RawManifest};
use crate::resources::{tags, Applied, Error, OpContext, UnknownOutputs};

/// The contextHash of `inputs` (review and adoption: no build follows).
pub(super) async fn hash_inputs(ctx: &OpContext, inputs: &ImageInputs) -> Result<String, Error> {
    let plan = ContextPlan::of(inputs);
    let (at, _empty) = plan.locate()?;
    hash_context(ctx, &plan, &at).await
}

/// [`ContextPlan::hash`] on a blocking thread (it reads files), with what it read logged.
async fn hash_context(ctx: &OpContext, plan: &ContextPlan, at: &Located) -> Result<String, Error> {
    let (plan, at) = (plan.clone(), at.clone());
    let (hash, reads) = tokio::task::spawn_blocking(move || plan.hash(&at))
        .await
        .map_err(|e| Error::Other(format!("hashing the build context: {e}")))??;
    ctx.log.log(
        crate::log::Level::Debug,
        &format!(
            "contextHash: {} files, {} read ({} bytes), {} unchanged since hashed",
            reads.files,
            reads.read,
            reads.bytes,
            reads.files - reads.read
        ),
    );
    Ok(hash)
}

/// The build's description, from the inputs and their plan.
fn spec(inputs: &ImageInputs, plan: BuildPlan, at: Located) -> BuildSpec {
    let dockerfile = match plan.context.inline() {
        Some(text) => DockerfileSource::Inline(text.to_owned()),
        None => DockerfileSource::Path(at.dockerfile.clone().unwrap_or_default()),
    };
    BuildSpec {
        context_dir: at.dir,
        remote_context: at.remote,
        dockerfile,
        ignore_file: at.ignore_file,
        named_contexts: plan.context.named,
        platforms: inputs.platforms.clone(),
        build_args: inputs.build_args.clone(),
        target: inputs.target.clone(),
        labels: inputs.labels.clone(),
        no_cache: inputs.no_cache,
        pull: inputs.pull,
        network: inputs.network.map(Into::into),
        add_hosts: plan.add_hosts,
        ssh: plan.ssh,
        secrets: inputs
            .secrets
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().as_bytes().to_vec()))
            .collect(),
        cache_from: plan.cache_from,
        cache_to: plan.cache_to,
        provenance: inputs.provenance,
        sbom: inputs.sbom,
        sbom_generator: inputs.sbom_generator.clone(),
    }
}

/// Create and update: hash the context, build (only building, in preview), push, record.
pub(super) async fn build_and_push(
    ctx: &OpContext,
    id: String,
    inputs: ImageInputs,
    dropped_tags: &[String],
) -> Result<Applied<ImageState>, Error> {
    let plan = check::plan(&inputs, &BTreeSet::new()).map_err(Error::Invalid)?;
    let (at, _empty_context) = plan.context.locate()?;
    let hash = hash_context(ctx, &plan.context, &at).await?;
    let spec = spec(&inputs, plan, at);
    let mut state = ImageState {
        inputs,
        digest: None,
        reference: None,
        manifests: Vec::new(),
        context_hash: Some(hash),
        exported: Vec::new(),
        signatures: None,
    };
    let groups = nodes::route(ctx, &state.inputs.platforms);
    // The same resource goes to the same node of a pool (its warm cache) on every build.
    let placement = ctx
        .urn
        .clone()
        .unwrap_or_else(|| state.context_hash.clone().unwrap_or_default());
    let exporting = state.inputs.load || !state.inputs.exports.is_empty();
    if groups.len() > 1 && exporting {
        let what = if state.inputs.exports.is_empty() {
            "load"
        } else {
            "exports"
        };
        return Err(Error::invalid(
            what,
            format!(
                "exports and load need every platform built on one node, and builders \
                 splits {} across {} nodes",
                state.inputs.platforms.join(", "),
                groups.len()
            ),
        ));
    }
    if groups.len() > 1 {
        let at = nodes::Placed {
            groups: &groups,
            placement: &placement,
        };
        return nodes::multi_node(ctx, id, state, &spec, at, dropped_tags).await;
    }
    // One node (the default one, or the `builders` entry that lists every platform): one
    // solve, BuildKit pushes the index itself.
    let node = groups.first().and_then(|g| g.0);
    let build = |output| {
        ctx.builder.build(
            node,
            &placement,
            &spec,
            output,
            ctx.log.clone(),
            ctx.cancel.clone(),
        )
    };
    if ctx.preview {
        // Dockerfile errors show at preview, push or not; nothing is exported.
        if state.inputs.build_on_preview {
            build(Output::BuildOnly).await?;
        }
        return Ok(Applied {
            id,
            state,
            // contextHash too: the files may change before apply (Terraform checks).
            unknown_outputs: UnknownOutputs::All,
        });
    }
    if exporting {
        export(ctx, &mut state, build).await?;
    } else if !state.inputs.push {
        build(Output::BuildOnly).await?;
        // The outputs exist after every create (SDKs type them non-optional): nothing was
        // pushed, so there is no digest and no reference.
        state.digest = Some(String::new());
        state.reference = Some(String::new());
    } else {
        tags::reachable_before_push(ctx, &state.inputs.tags).await?;
        let outcome = build(Output::Push {
            tags: state.inputs.tags.clone(),
        })
        .await?;
        let digest = outcome
            .digest
            .ok_or_else(|| Error::Other("BuildKit pushed but reported no digest".into()))?;
        let first = &state.inputs.tags[0];
        tracing::debug!("{first}: built and pushed, reading it back");
        state.manifests = pushed_manifests(ctx, first).await?;
        tracing::debug!("{first}: read back");
        let t = parse_tag(first).map_err(|e| Error::invalid("tags", e))?;
        state.reference = Some(format!("{}@{digest}", repository_of(&t)));
        state.digest = Some(digest);
    }
    tags::remove(ctx, dropped_tags).await?;
    Ok(Applied {
        id,
        state,
        unknown_outputs: UnknownOutputs::None,
    })
}

/// One solve for the push (if any), `load` and `exports`; the state records what was
/// pushed (read back from the registry) and what the exports wrote.
async fn export<F, Fut>(ctx: &OpContext, state: &mut ImageState, build: F) -> Result<(), Error>
where
    F: Fn(Output) -> Fut,
    Fut: std::future::Future<Output = Result<BuildOutcome, Error>>,
{
    let inputs = &state.inputs;
    let tags = inputs.tags.clone();
    if inputs.push {
        crate::resources::tags::reachable_before_push(ctx, &tags).await?;
    }
    let exports = Exports {
        push: if inputs.push {
            tags.clone()
        } else {
            Vec::new()
        },
        // Local names (`myapp:dev`) as the Engine stores them (`docker.io/library/…`).
        load: if inputs.load {
            tags.iter().map(|t| engine_name(t)).collect()
        } else {
            Vec::new()
        },
        names: tags.iter().map(|t| engine_name(t)).collect(),
        files: inputs
            .exports
            .iter()
            .filter_map(Export::file_export)
            .collect(),
    };
    let kinds: Vec<(&'static str, String)> = inputs
        .exports
        .iter()
        .filter_map(|e| match e.variants().as_slice() {
            [(kind, Some(dest))] => Some((*kind, (*dest).to_owned())),
            _ => None,
        })
        .collect();
    let outcome = build(Output::Export(exports)).await?;
    state.exported = kinds
        .into_iter()
        .zip(outcome.exported)
        .map(|((kind, dest), w)| ExportedArtifact {
            kind: kind.to_owned(),
            dest,
            digest: w.sha256,
        })
        .collect();
    if !state.inputs.push {
        state.digest = Some(String::new());
        state.reference = Some(String::new());
        return Ok(());
    }
    // With several exporters BuildKit merges their answers into one map, so the pushed
    // digest is read from the registry rather than taken from `containerimage.digest`.
    let first = &state.inputs.tags[0];
    let t = parse_tag(first).map_err(|e| Error::invalid("tags", e))?;
    let digest = ctx
        .registry
        .digest_of(&t)
        .await?
        .ok_or_else(|| Error::Other(format!("{first} is missing right after the push")))?;
    state.manifests = pushed_manifests(ctx, first).await?;
    state.reference = Some(format!("{}@{digest}", repository_of(&t)));
    state.digest = Some(digest);
    Ok(())
}

/// The platform entries of what the registry now holds at `tag`.
pub(super) async fn pushed_manifests(
    ctx: &OpContext,
    tag: &str,
) -> Result<Vec<PlatformManifest>, Error> {
    let t = parse_tag(tag).map_err(|e| Error::invalid("tags", e))?;
    let Some(m) = ctx.registry.manifest(&t).await? else {
        return Err(Error::Other(format!(
            "{tag} is missing right after the push"
        )));
    };
    manifests_of(ctx, &t, &m).await
}

/// The platform entries of manifest `m`, read from `t`: an index's entries (attestations
/// left out), or a single image's platform from its config.
pub(super) async fn manifests_of(
    ctx: &OpContext,
    t: &Reference,
    m: &RawManifest,
) -> Result<Vec<PlatformManifest>, Error> {
    let tag = t.whole();
    let json = m.json();
    if !m.is_index() {
        // One platform without attestations: BuildKit pushes the image manifest itself,
        // whose platform is in its config.
        let config = json
            .pointer("/config/digest")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let cfg = ctx.registry.json_blob(t, config).await?;
        let field = |k: &str| cfg.get(k).and_then(|v| v.as_str()).unwrap_or_default();
        let platform = Platform::new(
            field("os"),
            field("architecture"),
            cfg.get("variant").and_then(|v| v.as_str()),
        )
        .map_err(|e| Error::Other(format!("{tag}: the pushed image's config: {e}")))?;
        return Ok(vec![PlatformManifest {
            platform: platform.to_string(),
            digest: m.digest.clone(),
        }]);
    }
    let mut out = Vec::new();
    for e in manifest::index_entries(&json) {
        let p = manifest::entry_platform(e);
        if p.is_attestation() {
            continue;
        }
        let (Ok(platform), Some(d)) = (
            Platform::new(p.os, p.architecture, p.variant),
            e.get("digest").and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        out.push(PlatformManifest {
            platform: platform.to_string(),
            digest: d.to_owned(),
        });
    }
    out.sort();
    Ok(out)
}

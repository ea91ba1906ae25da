//! Import and adoption: an Image read from its registry by tag, and the first update of
//! such an image, which records the program's build inputs without building.

use oci_client::Reference;
use serde_json::Value as Json;

use super::build::{hash_inputs, manifests_of};
use super::inputs::{ImageInputs, ImageState};
use super::nodes::point_tags;
use crate::reference::{parse_tag, repository_of};
use crate::registry::manifest;
use crate::resources::{tags, Applied, Error, OpContext, UnknownOutputs};

/// Import by tag: the image the tag names, as its registry shows it. The program supplies
/// the context and the Dockerfile; until they are known (see [`ImageState::adopted`]) they
/// are no change.
pub(super) async fn import(
    ctx: &OpContext,
    id: &str,
) -> Result<Option<(String, ImageState)>, Error> {
    let t = parse_tag(id).map_err(|e| {
        Error::invalid(
            "id",
            format!("{e}; import an Image by one of its tags, <registry>/<repository>:<tag>"),
        )
    })?;
    let Some(m) = ctx.registry.manifest(&t).await? else {
        return Ok(None);
    };
    let manifests = manifests_of(ctx, &t, &m).await?;
    let inputs: ImageInputs = serde_json::from_value(serde_json::json!({
        "tags": [id],
        "platforms": manifests.iter().map(|p| &p.platform).collect::<Vec<_>>(),
    }))
    .map_err(|e| Error::Other(format!("importing {id}: {e}")))?;
    let state = ImageState {
        inputs,
        reference: Some(format!("{}@{}", repository_of(&t), m.digest)),
        digest: Some(m.digest),
        manifests,
        context_hash: None,
        exported: Vec::new(),
        signatures: None,
    };
    Ok(Some((id.to_owned(), state)))
}

/// The first update of an imported image with the same platforms: nothing is built. The
/// program's inputs and the context's hash are recorded (from now on a changed file is a
/// change), tags added since the import are pointed at the imported image, dropped ones
pub(super) async fn adopt(
    ctx: &OpContext,
    id: String,
    olds: ImageState,
    news: ImageInputs,
    dropped_tags: &[String],
) -> Result<Applied<ImageState>, Error> {
    let digest = olds.digest.clone().unwrap_or_default();
    let first = parse_tag(&news.tags[0]).map_err(|e| Error::invalid("tags[0]", e))?;
    let mut state = ImageState {
        reference: Some(format!("{}@{digest}", repository_of(&first))),
        digest: olds.digest,
        manifests: olds.manifests,
        context_hash: None,
        exported: Vec::new(),
        signatures: None,
        inputs: news,
    };
    if ctx.preview {
        // The files may still change before the update runs.
        return Ok(Applied {
            id,
            state,
            unknown_outputs: UnknownOutputs::Declared,
        });
    }
    state.context_hash = Some(hash_inputs(ctx, &state.inputs).await?);
    ctx.log.info(&format!(
        "adopting the imported image {digest}: its build inputs are recorded, nothing is built"
    ));
    let Some(home) = olds.inputs.tags.iter().find_map(|t| parse_tag(t).ok()) else {
        return Err(Error::Other("the imported state has no tag".into()));
    };
    let added: Vec<Reference> = state
        .inputs
        .tags
        .iter()
        .filter(|t| !olds.inputs.tags.contains(t))
        .map(|t| parse_tag(t).map_err(|e| Error::invalid("tags", e)))
        .collect::<Result<_, _>>()?;
    if !added.is_empty() {
        let at = Reference::with_digest(
            home.registry().into(),
            home.repository().into(),
            digest.clone(),
        );
        let Some(index) = ctx.registry.manifest(&at).await? else {
            return Err(Error::Other(format!(
                "the imported image {} is no longer in its registry",
                at.whole()
            )));
        };
        let child_digests: Vec<String> = if index.is_index() {
            manifest::index_entries(&index.json())
                .iter()
                .filter_map(|e| e.get("digest").and_then(Json::as_str).map(str::to_owned))
                .collect()
        } else {
            vec![index.digest.clone()]
        };
        point_tags(ctx, &home, &index, &child_digests, &added).await?;
    }
    tags::remove(ctx, dropped_tags).await?;
    Ok(Applied {
        id,
        state,
        unknown_outputs: UnknownOutputs::None,
    })
}

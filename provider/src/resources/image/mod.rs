//! `multiarch:index:Image`: builds a Dockerfile through BuildKit for a set of platforms and
//! pushes the resulting index under a set of tags.
//!
//! One concern per file: [`inputs`] (the input and output types), [`check`] (inputs to a
//! typed build plan or the failures), [`build`] (one node: build, push, export), [`nodes`]
//! (several nodes: routing, each node's share, the assembled index), [`adopt`] (import and
//! the first update of an imported image); this file is the Resource impl.

mod adopt;
mod build;
mod check;
mod docs;
mod inputs;
mod nodes;

use std::collections::BTreeSet;

use async_trait::async_trait;

pub use inputs::*;

use super::{
    tags, Applied, Change, Error, Failure, OpContext, PropertyPath, Resource, ResourceDocs,
};
use crate::platform;

/// The Image resource.
pub struct Image;

#[async_trait]
impl Resource for Image {
    const TOKEN: &'static str = "multiarch:index:Image";
    const TF_NAME: &'static str = "multiarch_image";

    type Inputs = ImageInputs;
    type State = ImageState;

    fn description() -> &'static str {
        "A container image built through BuildKit for a set of platforms and pushed as one \
         index under a set of tags, like `docker buildx build --platform … --push`."
    }

    fn docs() -> ResourceDocs {
        ResourceDocs {
            examples: &["image-ecr", "caches", "builders"],
            import: docs::import(),
        }
    }

    fn check(inputs: &ImageInputs, unknown: &BTreeSet<PropertyPath>) -> Vec<Failure> {
        check::check(inputs, unknown)
    }

    fn normalize(mut inputs: ImageInputs) -> ImageInputs {
        for p in &mut inputs.platforms {
            if let Ok(n) = platform::normalize(p) {
                *p = n;
            }
        }
        inputs
    }

    fn inputs_of(state: &ImageState) -> &ImageInputs {
        &state.inputs
    }

    async fn review_changes(
        &self,
        ctx: &OpContext,
        _id: &str,
        olds: &ImageState,
        news: &ImageInputs,
        mut changes: Vec<Change>,
    ) -> Result<Vec<Change>, Error> {
        if olds.adopted() {
            // An import records no context hash to compare with; the context and Dockerfile
            // the program adds show as changes, and that update records them (no build).
            return Ok(changes);
        }
        // The content decides, not timestamps or permission bits: hash what the context
        // sends now and compare with what was built.
        // Files unchanged since they were last hashed (stat cache) are not read again.
        match build::hash_inputs(ctx, news).await {
            Ok(h) if Some(&h) != olds.context_hash.as_ref() => {
                changes.push(Change::update("contextHash"))
            }
            Ok(_) => {}
            Err(e) => ctx.log.warn(&format!("cannot hash the build context: {e}")),
        }
        Ok(changes)
    }

    async fn create(
        &self,
        ctx: &OpContext,
        inputs: ImageInputs,
    ) -> Result<Applied<ImageState>, Error> {
        let id = inputs
            .tags
            .first()
            .cloned()
            .unwrap_or_else(|| "multiarch-image".to_owned());
        build::build_and_push(ctx, id, inputs, &[]).await
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        state: Option<ImageState>,
    ) -> Result<Option<(String, ImageState)>, Error> {
        let Some(state) = state else {
            return adopt::import(ctx, id).await;
        };
        if !state.inputs.push || state.digest.is_none() {
            return Ok(Some((id.to_owned(), state)));
        }
        let digest = state.digest.clone();
        Ok(tags::refresh(ctx, id, state, digest, |s: &mut ImageState| {
            &mut s.inputs.tags
        })
        .await)
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        olds: ImageState,
        news: ImageInputs,
    ) -> Result<Applied<ImageState>, Error> {
        let dropped: Vec<String> = if olds.inputs.push && !news.keep_remotely {
            olds.inputs
                .tags
                .iter()
                .filter(|t| !news.tags.contains(t) || !news.push)
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        // `platforms` is declared a set: the model compares it (reordering is no change).
        let same_platforms = !super::changed_inputs::<Image>(&olds.inputs, &news)
            .iter()
            .any(|k| k == "platforms");
        // Exports and load need the build's result: an imported image is built then.
        if olds.adopted()
            && olds.inputs.push
            && news.push
            && news.exports.is_empty()
            && !news.load
            && same_platforms
        {
            return adopt::adopt(ctx, id.to_owned(), olds, news, &dropped).await;
        }
        build::build_and_push(ctx, id.to_owned(), news, &dropped).await
    }

    async fn delete(&self, ctx: &OpContext, _id: &str, state: ImageState) -> Result<(), Error> {
        if state.inputs.keep_remotely || !state.inputs.push || state.digest.is_none() {
            return Ok(());
        }
        tags::remove(ctx, &state.inputs.tags).await
    }
}

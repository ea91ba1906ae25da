//! Create, update, refresh and import: children copied where the tags need them, every tag
//! pointed at the index, the state recorded.

use super::*;

pub(super) fn state_for(
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
        signatures: None,
        inputs,
    }
}

/// Create and update: resolve, then (unless previewing) copy children and push every tag.
pub(super) async fn apply(
    ctx: &OpContext,
    id: String,
    inputs: ManifestListInputs,
    olds: Option<ManifestListState>,
) -> Result<Applied<ManifestListState>, Error> {
    if ctx.preview {
        return match resolve(ctx, &inputs).await {
            Ok(resolved) => {
                require_signed(ctx, &inputs, &resolved).await?;
                Ok(Applied {
                    id,
                    state: state_for(inputs, &resolved, None),
                    unknown_outputs: UnknownOutputs::Declared,
                })
            }
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
    // Before anything is written: an unsigned source is refused with nothing pushed.
    require_signed(ctx, &inputs, &resolved).await?;
    let (index, order) = index_for(&inputs, &resolved, &targets, &|host| {
        ctx.registry.is_ecr(host)
    });
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

/// `requireSignedBy`: each source's manifest (an index or an image) and each platform
/// manifest taken from it must be signed by one of the keys.
async fn require_signed(
    ctx: &OpContext,
    inputs: &ManifestListInputs,
    resolved: &Resolved,
) -> Result<(), Error> {
    use crate::resources::signing::{require_signed, Required};
    if inputs.require_signed_by.is_empty() {
        return Ok(());
    }
    let mut required = Vec::new();
    let mut seen = BTreeSet::new();
    for (source, digest) in &resolved.source_digests {
        let from = parse_qualified(source).map_err(|e| Error::invalid("sources", e))?;
        if seen.insert((repository_of(&from), digest.clone())) {
            let what = if resolved.children.iter().any(|c| &c.entry.digest == digest) {
                "image"
            } else {
                "index"
            };
            required.push(Required {
                source: source.clone(),
                from,
                digest: digest.clone(),
                what: what.into(),
            });
        }
    }
    for c in &resolved.children {
        let Some(p) = &c.platform else { continue };
        if seen.insert((repository_of(&c.from), c.entry.digest.clone())) {
            required.push(Required {
                source: c.source.clone(),
                from: c.from.clone(),
                digest: c.entry.digest.clone(),
                what: p.clone(),
            });
        }
    }
    require_signed(ctx, &inputs.require_signed_by, &required).await
}

/// Children living in another repository are copied into each target repository first
/// (ECR refuses an index whose children it does not hold): one copy per target repository,
/// all concurrently, each moving every unique blob once.
pub(super) async fn copy_children(
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

/// Source look-ups in flight at once. The registry client bounds them again per host (one
/// probe, then the HTTP/2 streams of one connection or a few HTTP/1.1 connections): 64
/// sources behind a 20 ms round trip are then one round trip of look-ups over HTTP/2,
/// where 16 at a time were four.
const LOOKUPS: usize = 64;

/// Sources given by tag whose digest moved since the last push (`app:10.20` was rebuilt),
/// looked up concurrently (at most `LOOKUPS` at a time).
pub(super) async fn moved_sources(
    ctx: &OpContext,
    olds: &ManifestListState,
    news: &ManifestListInputs,
) -> Vec<Change> {
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
pub(super) async fn same_images(
    ctx: &OpContext,
    olds: &ManifestListState,
    news: &ManifestListInputs,
) -> bool {
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
pub(super) async fn refresh(
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
pub(super) async fn import(
    ctx: &OpContext,
    id: &str,
) -> Result<Option<(String, ManifestListState)>, Error> {
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
        sign: true,
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

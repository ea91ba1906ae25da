//! Reading the sources (read-only): each source's children and platforms, and the index
//! they make.

use super::*;

/// A platform entry (or an attestation riding along with one) to put in the index.
pub(super) struct Child {
    pub(super) source: String,
    pub(super) from: Reference,
    pub(super) entry: IndexEntry,
    pub(super) platform: Option<String>,
    /// The manifest, when resolving already read it (single-platform sources): the copy
    /// reuses it instead of reading it again.
    pub(super) manifest: Option<RawManifest>,
}

pub(super) struct Resolved {
    pub(super) children: Vec<Child>,
    pub(super) source_digests: BTreeMap<String, String>,
    /// The source when there is exactly one and it is an index (a promotion).
    pub(super) sole_index: Option<RawManifest>,
}

pub(super) fn not_found(i: usize, source: &str) -> Error {
    Error::invalid(
        format!("sources[{i}]"),
        format!("{source} does not exist in its registry"),
    )
}

/// The platform's name and its index object (`os.version`, `os.features` of `original` kept).
pub(super) fn named_platform(
    os: &str,
    arch: &str,
    variant: Option<&str>,
    original: Option<&Json>,
) -> Result<(String, Map<String, Json>), String> {
    let p = Platform::new(os, arch, variant).map_err(|e| e.to_string())?;
    Ok((p.to_string(), index::platform_object(&p, original)))
}

/// Reads every source (read-only) and works out the index's entries.
pub(super) async fn resolve(
    ctx: &OpContext,
    inputs: &ManifestListInputs,
) -> Result<Resolved, Error> {
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
pub(super) async fn resolve_source(
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

pub(super) fn override_path(source: &str) -> String {
    PropertyPath::root_key("platformOverrides")
        .key(source)
        .to_string()
}

/// The entries of an index source, attestations included.
pub(super) fn index_children(
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
pub(super) fn index_child(
    source: &str,
    r: &Reference,
    e: &Json,
    path: &str,
) -> Result<Child, Error> {
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
    Ok(Child {
        source: source.to_owned(),
        from: r.clone(),
        entry: IndexEntry::from_descriptor(e, pm),
        platform,
        manifest: None,
    })
}

/// A single-platform source; its manifest is kept for the copy.
pub(super) async fn image_child(
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
        entry: IndexEntry::of_manifest(&m, pm),
        platform: Some(name),
        manifest: Some(m),
    })
}

pub(super) type PlatformResult = Result<(String, Map<String, Json>), String>;

pub(super) fn override_platform(source: &str, p: &str) -> Result<PlatformResult, Error> {
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
pub(super) async fn config_platform(
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
/// `tags_deleted_alone` says whether a registry host deletes a tag without the other tags
/// on its digest (ECR's `BatchDeleteImage`).
pub(super) fn index_for(
    inputs: &ManifestListInputs,
    resolved: &Resolved,
    targets: &[Reference],
    tags_deleted_alone: &dyn Fn(&str) -> bool,
) -> (RawManifest, Vec<usize>) {
    if let Some(index) = promoted(inputs, resolved, targets, tags_deleted_alone) {
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

/// A promotion (`dev/app:v1` to `prod/app:stable`, or `app:v1` to `app:stable`): one
/// source that is an index, and nothing asked that would change it (annotations, another
/// media type). The tags then get that index byte for byte, so its digest stays what
/// clients pinned (task definitions, signatures). Within the source's own repository that
/// holds only where the registry deletes one tag alone (ECR): elsewhere (distribution
/// deletes by digest) two tags on one digest could not be deleted one at a time, so the
/// index is written anew there.
pub(super) fn promoted<'a>(
    inputs: &ManifestListInputs,
    resolved: &'a Resolved,
    targets: &[Reference],
    tags_deleted_alone: &dyn Fn(&str) -> bool,
) -> Option<&'a RawManifest> {
    let index = resolved.sole_index.as_ref()?;
    let source = resolved.children.first().map(|c| repository_of(&c.from))?;
    if targets
        .iter()
        .any(|t| repository_of(t) == source && !tags_deleted_alone(t.registry()))
    {
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

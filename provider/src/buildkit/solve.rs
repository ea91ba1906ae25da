//! Turning a [`BuildSpec`] into a Dockerfile-frontend solve request and the
//! local directories the session serves.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use bollard_buildkit_proto::moby::buildkit::v1::{
    CacheOptions, CacheOptionsEntry, Exporter as ExporterEntry, SolveRequest,
};

use super::content::{find_in_index, has_blob, local_store_id, Layout, EXPORT_STORE};
use super::filesend::{Target, TargetKind};
use super::filesync::DirSource;
use super::sources::{check_key, invalid, main_context, named_contexts};
use super::{BuildError, BuildSpec, Exports, FileExport, NetworkMode, Output};

/// A solve request plus what the session has to serve for it.
pub(crate) struct Prepared {
    pub request: SolveRequest,
    pub dirs: BTreeMap<String, DirSource>,
    /// Where the file and directory exporters write, by exporter index.
    pub targets: BTreeMap<u32, Target>,
    /// The content stores the session serves, by store id.
    pub stores: BTreeMap<String, Layout>,
    /// Local cache exports whose index.json names the cache once the solve is done.
    pub cache_indexes: Vec<CacheIndex>,
    /// `oci` exports to a layout directory (`tar=false`), by exporter index.
    pub layouts: BTreeMap<u32, PathBuf>,
    /// The exporter index of each file export, in their order.
    pub file_order: Vec<u32>,
    /// What to tell the user (a local cache with nothing to import yet).
    pub warnings: Vec<String>,
}

/// Builds the request. `Output::BuildOnly` gets no exporter and no cache
/// export at all, so such a solve cannot write to any registry.
pub(crate) fn prepare(
    spec: &BuildSpec,
    output: &Output,
    session_id: &str,
    build_ref: &str,
) -> Result<Prepared, BuildError> {
    let mut attrs: HashMap<String, String> = HashMap::new();
    let mut dirs = BTreeMap::new();
    main_context(spec, &mut attrs, &mut dirs)?;
    named_contexts(spec, &mut attrs, &mut dirs)?;
    build_options(spec, &mut attrs)?;
    let mut stores = BTreeMap::new();
    let mut warnings = Vec::new();
    let imports = local_imports(
        super::cache::imports(&spec.cache_from),
        &mut stores,
        &mut warnings,
    )?;
    if !imports.is_empty() {
        attrs.insert("cache-imports".into(), cache_imports_attr(&imports)?);
    }
    let (exporter, exporter_attrs, exports, exporters, targets, layouts, file_order) = match output
    {
        Output::Export(x) => {
            let (list, targets, layouts, order) = export_list(x)?;
            let cache = super::cache::exports(&spec.cache_to);
            (
                String::new(),
                HashMap::new(),
                cache,
                list,
                targets,
                layouts,
                order,
            )
        }
        _ => {
            let (e, a, c) = exporter(spec, output)?;
            (
                e,
                a,
                c,
                Vec::new(),
                BTreeMap::new(),
                BTreeMap::new(),
                Vec::new(),
            )
        }
    };
    if let Some((id, dir)) = layouts.iter().next() {
        let at = file_order.iter().position(|x| x == id).unwrap_or_default();
        std::fs::create_dir_all(dir)
            .map_err(|e| invalid(format!("exports[{at}].oci.dest {}: {e}", dir.display())))?;
        stores.insert(
            EXPORT_STORE.to_string(),
            Layout {
                root: dir.to_path_buf(),
            },
        );
    }
    let cache_indexes = local_exports(&exports, &mut stores)?;
    let request = SolveRequest {
        r#ref: build_ref.to_string(),
        exporter_deprecated: exporter,
        exporter_attrs_deprecated: exporter_attrs,
        exporters,
        session: session_id.to_string(),
        frontend: "dockerfile.v0".into(),
        frontend_attrs: attrs,
        cache: Some(CacheOptions {
            exports,
            imports,
            ..Default::default()
        }),
        entitlements: entitlements(spec),
        ..Default::default()
    };
    Ok(Prepared {
        request,
        dirs,
        targets,
        stores,
        cache_indexes,
        layouts,
        file_order,
        warnings,
    })
}

/// A local cache export's directory, whose index.json names the cache under `tag` once the
/// solve is done; `property` names the entry (`cacheTo[0]`) in messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CacheIndex {
    pub dir: PathBuf,
    pub tag: String,
    pub property: String,
}

/// Local cache imports, as BuildKit's client sends them: each directory is served as the
/// content store `local:<src>`, and the cache manifest is named by its `digest` attribute,
/// read from `<src>/index.json` under `tag` (default `latest`) unless given. An import with
/// nothing to import yet (no index.json, no such tag, a missing blob) is left out with a
/// warning, as buildx does, so the first build of a cache does not fail.
fn local_imports(
    imports: Vec<CacheOptionsEntry>,
    stores: &mut BTreeMap<String, Layout>,
    warnings: &mut Vec<String>,
) -> Result<Vec<CacheOptionsEntry>, BuildError> {
    let mut out = Vec::new();
    for (i, mut e) in imports.into_iter().enumerate() {
        if e.r#type != "local" {
            out.push(e);
            continue;
        }
        let at = format!("cacheFrom[{i}]");
        let src = e.attrs.get("src").cloned().unwrap_or_default();
        if src.is_empty() {
            return Err(invalid(format!("{at}: a local cache import needs src")));
        }
        let dir = PathBuf::from(&src);
        let digest = match e.attrs.get("digest").filter(|d| !d.is_empty()) {
            Some(d) => d.clone(),
            None => {
                let tag = e
                    .attrs
                    .get("tag")
                    .cloned()
                    .unwrap_or_else(|| "latest".to_string());
                match find_in_index(&dir, &tag) {
                    Ok(Some(d)) => d,
                    Ok(None) => {
                        warnings.push(format!(
                            "{at}: local cache {src}: nothing to import yet (no {tag:?} in {})",
                            dir.join("index.json").display()
                        ));
                        continue;
                    }
                    Err(err) => {
                        warnings.push(format!("{at}: local cache {src} not imported: {err}"));
                        continue;
                    }
                }
            }
        };
        if !has_blob(&dir, &digest) {
            warnings.push(format!(
                "{at}: local cache {src} not imported: it lacks the blob {digest}"
            ));
            continue;
        }
        e.attrs.insert("digest".into(), digest);
        stores.insert(local_store_id(&src), Layout { root: dir });
        out.push(e);
    }
    Ok(out)
}

/// Local cache exports: each `dest` is created and served as the content store
/// `local:<dest>`; the directories and tags whose index.json names the cache afterwards.
fn local_exports(
    exports: &[CacheOptionsEntry],
    stores: &mut BTreeMap<String, Layout>,
) -> Result<Vec<CacheIndex>, BuildError> {
    let mut out = Vec::new();
    for (i, e) in exports.iter().enumerate() {
        if e.r#type != "local" {
            continue;
        }
        let property = format!("cacheTo[{i}]");
        let dest = e.attrs.get("dest").cloned().unwrap_or_default();
        if dest.is_empty() {
            return Err(invalid(format!(
                "{property}: a local cache export needs dest"
            )));
        }
        let dir = PathBuf::from(&dest);
        std::fs::create_dir_all(&dir)
            .map_err(|err| invalid(format!("{property}: local cache dest {dest}: {err}")))?;
        let tag = e
            .attrs
            .get("tag")
            .cloned()
            .unwrap_or_else(|| "latest".to_string());
        stores.insert(local_store_id(&dest), Layout { root: dir.clone() });
        out.push(CacheIndex { dir, tag, property });
    }
    Ok(out)
}

/// Platforms, build args, labels, target and the build flags, as frontend attributes.
fn build_options(spec: &BuildSpec, attrs: &mut HashMap<String, String>) -> Result<(), BuildError> {
    if !spec.platforms.is_empty() {
        if let Some(p) = spec
            .platforms
            .iter()
            .find(|p| p.trim().is_empty() || p.contains(','))
        {
            return Err(invalid(format!("invalid platform {p:?}")));
        }
        let platforms: Vec<&str> = spec.platforms.iter().map(|p| p.trim()).collect();
        attrs.insert("platform".into(), platforms.join(","));
    }
    for (k, v) in &spec.build_args {
        check_key("build arg", k)?;
        attrs.insert(format!("build-arg:{k}"), v.clone());
    }
    for (k, v) in &spec.labels {
        check_key("label", k)?;
        attrs.insert(format!("label:{k}"), v.clone());
    }
    if let Some(t) = spec.target.as_deref().filter(|t| !t.is_empty()) {
        attrs.insert("target".into(), t.to_string());
    }
    if spec.no_cache {
        attrs.insert("no-cache".into(), String::new());
    }
    if spec.pull {
        attrs.insert("image-resolve-mode".into(), "pull".into());
    }
    match spec.network {
        None | Some(NetworkMode::Default) => {}
        Some(NetworkMode::None) => {
            attrs.insert("force-network-mode".into(), "none".into());
        }
        Some(NetworkMode::Host) => {
            attrs.insert("force-network-mode".into(), "host".into());
        }
    }
    if !spec.add_hosts.is_empty() {
        let hosts: Vec<String> = spec
            .add_hosts
            .iter()
            .map(|(host, ip)| format!("{host}={ip}"))
            .collect();
        attrs.insert("add-hosts".into(), hosts.join(","));
    }
    if spec.provenance {
        attrs.insert("attest:provenance".into(), "mode=min".into());
    }
    if spec.sbom {
        let generator = match &spec.sbom_generator {
            Some(g) => format!("generator={g}"),
            None => String::new(),
        };
        attrs.insert("attest:sbom".into(), generator);
    }
    Ok(())
}

/// The host network must be granted by the builder.
fn entitlements(spec: &BuildSpec) -> Vec<String> {
    match spec.network {
        Some(NetworkMode::Host) => vec!["network.host".to_string()],
        _ => Vec::new(),
    }
}

/// The `cache-imports` frontend attribute: the entries as the Dockerfile frontend reads them.
fn cache_imports_attr(imports: &[CacheOptionsEntry]) -> Result<String, BuildError> {
    #[derive(serde::Serialize)]
    struct Entry<'a> {
        #[serde(rename = "Type")]
        ty: &'a str,
        #[serde(rename = "Attrs")]
        attrs: &'a HashMap<String, String>,
    }
    let json: Vec<Entry> = imports
        .iter()
        .map(|e| Entry {
            ty: &e.r#type,
            attrs: &e.attrs,
        })
        .collect();
    serde_json::to_string(&json).map_err(|e| invalid(e.to_string()))
}

type Exporter = (String, HashMap<String, String>, Vec<CacheOptionsEntry>);

/// The image exporter and cache exports of a push; nothing at all for a build only.
fn exporter(spec: &BuildSpec, output: &Output) -> Result<Exporter, BuildError> {
    let (name, by_digest) = match output {
        // No exporter and no cache export: nothing leaves BuildKit.
        Output::BuildOnly => return Ok((String::new(), HashMap::new(), Vec::new())),
        Output::Push { tags } => {
            let tags: Vec<&str> = tags
                .iter()
                .map(|t| t.trim())
                .filter(|t| !t.is_empty())
                .collect();
            if tags.is_empty() {
                return Err(invalid("push needs at least one tag"));
            }
            if let Some(bad) = tags.iter().find(|t| t.contains([',', ' '])) {
                return Err(invalid(format!("invalid tag {bad:?}")));
            }
            (tags.join(","), false)
        }
        Output::PushByDigest { repository } => {
            let r = repository.trim();
            if r.is_empty() || r.contains([',', ' ', '@']) {
                return Err(invalid(format!("invalid repository {repository:?}")));
            }
            (r.to_owned(), true)
        }
        Output::Export(_) => return Err(invalid("exports take the exporters list")),
    };
    let mut attrs = HashMap::from([
        ("name".to_string(), name),
        ("push".to_string(), "true".to_string()),
        ("store".to_string(), "false".to_string()),
    ]);
    if by_digest {
        // The manifests go up under no tag; the provider writes the index itself.
        attrs.insert("push-by-digest".to_string(), "true".to_string());
    }
    Ok((
        "image".to_string(),
        attrs,
        super::cache::exports(&spec.cache_to),
    ))
}

/// Tags joined for an exporter's `name`, each checked.
fn names(tags: &[String]) -> Result<String, BuildError> {
    let tags: Vec<&str> = tags
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .collect();
    if let Some(bad) = tags.iter().find(|t| t.contains([',', ' '])) {
        return Err(invalid(format!("invalid tag {bad:?}")));
    }
    Ok(tags.join(","))
}

/// The image exporter for the push and the load, if either is asked for.
fn image_exporter(x: &Exports) -> Result<Option<ExporterEntry>, BuildError> {
    let push = !x.push.is_empty();
    let load = !x.load.is_empty();
    if !push && !load {
        return Ok(None);
    }
    let mut all = x.push.clone();
    all.extend(x.load.iter().filter(|t| !x.push.contains(t)).cloned());
    let name = names(&all)?;
    if name.is_empty() {
        return Err(invalid("push and load need at least one tag"));
    }
    let mut attrs = HashMap::from([("name".to_string(), name)]);
    if push {
        attrs.insert("push".into(), "true".into());
    }
    // Pushed only: not kept in the Engine's image store; loaded: kept there.
    attrs.insert("store".into(), load.to_string());
    Ok(Some(ExporterEntry {
        r#type: "image".into(),
        attrs,
    }))
}

/// The exporters of [`Output::Export`], in one solve (BuildKit 0.13+'s `exporters` list):
/// first the `image` exporter when pushing or loading (one exporter does both: `push=true`
/// pushes, `store` keeps the image in the Engine's image store), then one per file or
/// directory export, whose index BuildKit names when it sends the files back. Nothing at
/// all is a cache-only build: no exporter, only the cache exports.
/// An `oci` export with `tar: false` is written through the session's content store (the
/// one named `export`; BuildKit has one such store per solve, so one such export). Last:
/// the exporter index of each file export, in their order.
#[allow(clippy::type_complexity)]
fn export_list(
    x: &Exports,
) -> Result<
    (
        Vec<ExporterEntry>,
        BTreeMap<u32, Target>,
        BTreeMap<u32, PathBuf>,
        Vec<u32>,
    ),
    BuildError,
> {
    let mut list = Vec::new();
    let mut targets = BTreeMap::new();
    let mut layouts = BTreeMap::new();
    let mut layout = None;
    let mut order: Vec<Option<u32>> = Vec::new();
    if let Some(image) = image_exporter(x)? {
        list.push(image);
    }
    let name = names(&x.names)?;
    for f in &x.files {
        let (ty, dest, kind, mut attrs) = match f {
            FileExport::Oci { dest, tar } => {
                let kind = if *tar {
                    TargetKind::File
                } else {
                    TargetKind::Dir
                };
                let attrs = HashMap::from([("tar".to_string(), tar.to_string())]);
                ("oci", dest, kind, attrs)
            }
            FileExport::Docker { dest } => ("docker", dest, TargetKind::File, HashMap::new()),
            FileExport::Tar { dest } => ("tar", dest, TargetKind::File, HashMap::new()),
            FileExport::Local { dest } => ("local", dest, TargetKind::Dir, HashMap::new()),
        };
        if dest.as_os_str().is_empty() {
            return Err(invalid(format!("the {ty} export has no dest")));
        }
        if matches!(ty, "oci" | "docker") && !name.is_empty() {
            attrs.insert("name".into(), name.clone());
        }
        if matches!(f, FileExport::Oci { tar: false, .. }) {
            if layout.is_some() {
                return Err(invalid(
                    "only one oci export with tar: false per build (BuildKit has one export store)",
                ));
            }
            order.push(None);
            layout = Some((
                dest.clone(),
                ExporterEntry {
                    r#type: ty.into(),
                    attrs,
                },
            ));
            continue;
        }
        let index = u32::try_from(list.len()).map_err(|_| invalid("too many exports"))?;
        order.push(Some(index));
        let dest = dest.clone();
        targets.insert(index, Target { kind, dest });
        list.push(ExporterEntry {
            r#type: ty.into(),
            attrs,
        });
    }
    // The layout goes last: BuildKit merges the exporters' answers into one map, the last
    // one's winning, and its `containerimage.descriptor` is what its index.json must name.
    if let Some((dest, entry)) = layout {
        let index = u32::try_from(list.len()).map_err(|_| invalid("too many exports"))?;
        layouts.insert(index, dest);
        list.push(entry);
        for o in order.iter_mut().filter(|o| o.is_none()) {
            *o = Some(index);
        }
    }
    let order = order.into_iter().flatten().collect();
    Ok((list, targets, layouts, order))
}

#[cfg(test)]
mod tests;

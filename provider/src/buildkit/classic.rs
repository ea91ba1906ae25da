//! Engines with the classic image store (overlay2 and the other graph drivers, the default
//! before Engine 29). Their BuildKit has no `image`, `oci` or `docker` exporter, only `moby`
//! (load one platform into the Engine's store), `local` and `tar`; so a push, on any
//! number of platforms, goes the way the Engine itself allows:
//!
//! 1. each platform is built with the `moby` exporter under a private name,
//! 2. the Engine hands it back as an OCI layout (`GET /images/{name}/get`, Engine 25+) and
//!    forgets the private name,
//! 3. the provider pushes the blobs and manifests (digests as the Engine made them) and,
//!    for several platforms, an index of them, with its own registry client.
//!
//! `load` follows the Engine's rule: one platform. The store is told by `GET /info`
//! (`DriverStatus` has `driver-type io.containerd.snapshotter.v1` with the containerd store).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value as Json};
use tokio_util::sync::CancellationToken;

use super::{
    build, build_via, engine_conn, transport, BuildError, BuildOutcome, BuildSpec, Endpoint,
    FileExport, Output, RegistryAuth,
};
use crate::docker::Engine;
use crate::log::Logger;

/// Pushes an OCI layout's image with the provider's registry client.
#[async_trait]
pub trait LayoutPusher: Send + Sync {
    /// Pushes every blob and manifest under `root` (a descriptor of the layout in `dir`) to
    /// each target: `(repo:tag, true)` under the tag, `(repo, false)` by digest only.
    async fn push_layout(
        &self,
        dir: &Path,
        root: &Json,
        targets: &[(String, bool)],
    ) -> Result<(), String>;
}

/// How long `GET /info` may take.
const INFO_DEADLINE: Duration = Duration::from_secs(20);
/// How long the image save may stay idle.
const SAVE_IDLE: Duration = Duration::from_secs(120);

/// Builds as [`build`] does, on any Engine: on one with the classic image store an output
/// that needs the `image` exporter takes the route of this module.
pub async fn build_anywhere(
    endpoint: &Endpoint,
    spec: &BuildSpec,
    output: Output,
    auth: Arc<dyn RegistryAuth>,
    pusher: Arc<dyn LayoutPusher>,
    log: Arc<dyn Logger>,
    cancel: CancellationToken,
) -> Result<BuildOutcome, BuildError> {
    let Endpoint::DockerEngine(engine) = endpoint else {
        return build(endpoint, spec, output, auth, log, cancel).await;
    };
    if !needs_image_exporter(&output) {
        return build(endpoint, spec, output, auth, log, cancel).await;
    }
    let driver = classic_driver(engine)
        .await
        .map_err(|detail| BuildError::Connect {
            endpoint: endpoint.to_string(),
            detail,
        })?;
    let Some(driver) = driver else {
        return build(endpoint, spec, output, auth, log, cancel).await;
    };
    let plan = plan(endpoint, &driver, spec, output)?;
    log.info(&format!(
        "the {endpoint} uses the classic image store ({driver}): building each platform \
         with its moby exporter{}",
        if plan.push.is_empty() {
            ""
        } else {
            " and pushing with the provider's registry client"
        }
    ));
    run(endpoint, engine, spec, plan, auth, pusher, log, cancel).await
}

fn needs_image_exporter(output: &Output) -> bool {
    match output {
        Output::BuildOnly => false,
        Output::Push { .. } | Output::PushByDigest { .. } => true,
        Output::Export(x) => {
            !x.push.is_empty()
                || !x.load.is_empty()
                || x.files
                    .iter()
                    .any(|f| matches!(f, FileExport::Oci { .. } | FileExport::Docker { .. }))
        }
    }
}

/// The Engine's graph driver when it uses the classic image store; `None` with the
/// containerd store. Asked once per Engine and process.
async fn classic_driver(engine: &Engine) -> Result<Option<String>, String> {
    static SEEN: OnceLock<Mutex<HashMap<String, Option<String>>>> = OnceLock::new();
    let key = engine.host.to_string();
    let seen = SEEN.get_or_init(Default::default);
    if let Some(d) = seen.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return Ok(d);
    }
    let info = engine_conn::get_json(engine, "/info", INFO_DEADLINE).await?;
    let driver = store_of(&info);
    if let Ok(mut m) = seen.lock() {
        m.insert(key, driver.clone());
    }
    Ok(driver)
}

/// From `/info`: the graph driver for the classic store, `None` for containerd's.
fn store_of(info: &Json) -> Option<String> {
    let containerd = info
        .get("DriverStatus")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .any(|kv| {
            kv.get(0).and_then(Json::as_str) == Some("driver-type")
                && kv
                    .get(1)
                    .and_then(Json::as_str)
                    .is_some_and(|v| v.starts_with("io.containerd.snapshotter"))
        });
    if containerd {
        return None;
    }
    Some(
        info.get("Driver")
            .and_then(Json::as_str)
            .unwrap_or("unknown driver")
            .to_owned(),
    )
}

/// What to do on a classic-store Engine.
#[derive(Debug, PartialEq)]
struct Plan {
    /// Push targets: `(repo:tag, true)`, or `(repo, false)` for by digest.
    push: Vec<(String, bool)>,
    /// Load under these tags (one platform).
    load: Vec<String>,
    files: Vec<FileExport>,
}

fn plan(
    endpoint: &Endpoint,
    driver: &str,
    spec: &BuildSpec,
    output: Output,
) -> Result<Plan, BuildError> {
    let cause = format!("the {endpoint} uses the classic image store ({driver})");
    let fix = "turn on the containerd image store (\"features\": {\"containerd-snapshotter\": \
               true} in the Engine's daemon.json, then restart it; Docker Desktop: Settings > \
               General > Use containerd for pulling and storing images), or set `builder` to \
               a standalone buildkitd";
    let p = match output {
        Output::Push { tags } => Plan {
            push: tags.into_iter().map(|t| (t, true)).collect(),
            load: vec![],
            files: vec![],
        },
        Output::PushByDigest { repository } => Plan {
            push: vec![(repository, false)],
            load: vec![],
            files: vec![],
        },
        Output::Export(x) => Plan {
            push: x.push.into_iter().map(|t| (t, true)).collect(),
            load: x.load,
            files: x.files,
        },
        Output::BuildOnly => unreachable!("a build only needs no image exporter"),
    };
    if let Some(f) = p
        .files
        .iter()
        .find(|f| matches!(f, FileExport::Oci { .. } | FileExport::Docker { .. }))
    {
        let kind = if matches!(f, FileExport::Oci { .. }) {
            "oci"
        } else {
            "docker"
        };
        return Err(BuildError::Invalid(format!(
            "exports: a {kind} export needs BuildKit's {kind} exporter, which {cause} does not \
             have; {fix}"
        )));
    }
    if spec.provenance || spec.sbom {
        // The moby exporter stores an image, not an index: attestations have nowhere to go.
        return Err(BuildError::Invalid(format!(
            "provenance/sbom: attestations need BuildKit's image exporter, which {cause} does \
             not have; build without them, or {fix}"
        )));
    }
    if spec.platforms.len() > 1 && !p.load.is_empty() {
        return Err(BuildError::Invalid(format!(
            "load: {cause}, which holds one platform per image, and {} platforms were \
             requested; load one platform (set platforms to one of them), push instead, or \
             {fix}",
            spec.platforms.len()
        )));
    }
    if spec.platforms.len() > 1 && !p.files.is_empty() {
        return Err(BuildError::Invalid(format!(
            "exports: {cause}; its tar and local exporters take one platform per build here; \
             {fix}"
        )));
    }
    Ok(p)
}

/// Retypes the `image` exporter of a request as `moby`, with only the attributes it takes.
pub(super) fn use_moby_exporter(
    req: &mut bollard_buildkit_proto::moby::buildkit::v1::SolveRequest,
) {
    for e in &mut req.exporters {
        if e.r#type == "image" {
            e.r#type = "moby".into();
            e.attrs.retain(|k, _| k == "name");
        }
    }
    if req.exporter_deprecated == "image" {
        req.exporter_deprecated = "moby".into();
        req.exporter_attrs_deprecated.retain(|k, _| k == "name");
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    endpoint: &Endpoint,
    engine: &Engine,
    spec: &BuildSpec,
    plan: Plan,
    auth: Arc<dyn RegistryAuth>,
    pusher: Arc<dyn LayoutPusher>,
    log: Arc<dyn Logger>,
    cancel: CancellationToken,
) -> Result<BuildOutcome, BuildError> {
    let protocol = |detail: String| BuildError::Protocol {
        endpoint: endpoint.to_string(),
        detail,
    };
    let layout = tempfile::Builder::new()
        .prefix("multiarch-classic-")
        .tempdir()
        .map_err(|e| BuildError::Invalid(format!("a temporary directory: {e}")))?;
    let platforms: Vec<Option<String>> = if spec.platforms.is_empty() {
        vec![None]
    } else {
        spec.platforms.iter().cloned().map(Some).collect()
    };
    let id = super::new_id();
    // The platforms build at the same time (BuildKit runs the solves side by side; over
    // ssh each one's connections are set up in parallel too), in their order.
    let jobs = platforms.iter().enumerate().map(|(i, platform)| {
        let job = PlatformJob {
            endpoint,
            engine,
            spec,
            plan: &plan,
            layout: layout.path(),
            private: format!("multiarch-classic-{id}:{i}"),
            i,
        };
        job.run(platform.clone(), auth.clone(), log.clone(), cancel.clone())
    });
    let results = futures::future::try_join_all(jobs).await?;
    let mut children = Vec::new();
    let (mut digest, mut exported) = (None, Vec::new());
    for (out, saved) in results {
        (digest, exported) = (out.digest, out.exported);
        children.extend(saved);
    }
    if plan.push.is_empty() {
        return Ok(BuildOutcome { digest, exported });
    }
    let root = if children.len() == 1 {
        children.remove(0)
    } else {
        index_of(layout.path(), &children).map_err(protocol)?
    };
    log.info(&format!(
        "pushing {} ({} platform{}) to {}",
        root["digest"].as_str().unwrap_or_default(),
        platforms.len(),
        if platforms.len() == 1 { "" } else { "s" },
        plan.push
            .iter()
            .map(|(t, _)| t.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let push = pusher.push_layout(layout.path(), &root, &plan.push);
    tokio::select! {
        biased;
        _ = cancel.cancelled() => return Err(BuildError::Cancelled { endpoint: endpoint.to_string() }),
        r = push => r.map_err(|e| BuildError::Protocol { endpoint: endpoint.to_string(), detail: format!("pushing: {e}") })?,
    }
    Ok(BuildOutcome {
        digest: root["digest"].as_str().map(str::to_owned),
        exported,
    })
}

/// One platform's build (and, when pushing, its save into the shared layout).
struct PlatformJob<'a> {
    endpoint: &'a Endpoint,
    engine: &'a Engine,
    spec: &'a BuildSpec,
    plan: &'a Plan,
    layout: &'a Path,
    /// The name the image has in the Engine until it is saved.
    private: String,
    i: usize,
}

impl PlatformJob<'_> {
    async fn run(
        self,
        platform: Option<String>,
        auth: Arc<dyn RegistryAuth>,
        log: Arc<dyn Logger>,
        cancel: CancellationToken,
    ) -> Result<(BuildOutcome, Option<Json>), BuildError> {
        let pushing = !self.plan.push.is_empty();
        let mut names = Vec::new();
        if pushing {
            names.push(self.private.clone());
        }
        names.extend(self.plan.load.iter().cloned());
        let mut one = self.spec.clone();
        one.platforms = platform.into_iter().collect();
        let x = super::Exports {
            load: names,
            files: self.plan.files.clone(),
            ..Default::default()
        };
        let via = transport::SessionVia::default_for(self.endpoint);
        let out = build_via(
            self.endpoint,
            via,
            &one,
            Output::Export(x),
            auth,
            log.clone(),
            cancel.clone(),
            true,
        )
        .await?;
        if !pushing {
            return Ok((out, None));
        }
        let saved = save(self.engine, &self.private, self.layout, self.i, &cancel).await;
        // The private name goes whatever happened (the loaded tags stay).
        if let Err(e) = engine_conn::delete_image(self.engine, &self.private).await {
            log.warn(&format!(
                "{}: could not remove {}: {e}",
                self.endpoint, self.private
            ));
        }
        let saved = saved.map_err(|detail| BuildError::Protocol {
            endpoint: self.endpoint.to_string(),
            detail,
        })?;
        Ok((out, Some(saved)))
    }
}

/// Saves image `name` from the Engine into the layout at `dir` (blobs merged); its manifest
/// descriptor, with the platform its config names.
async fn save(
    engine: &Engine,
    name: &str,
    dir: &Path,
    i: usize,
    cancel: &CancellationToken,
) -> Result<Json, String> {
    let tar = dir.join(format!("save-{i}.tar"));
    let path = format!("/images/{name}/get");
    tokio::select! {
        biased;
        _ = cancel.cancelled() => return Err("cancelled".into()),
        r = engine_conn::download(engine, &path, &tar, SAVE_IDLE) => r?,
    }
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || unpack(&tar, &dir, i))
        .await
        .map_err(|e| e.to_string())?
}

/// Unpacks a saved image (an OCI layout, Engine 25+) into `dir` and describes its manifest.
fn unpack(tar: &Path, dir: &Path, i: usize) -> Result<Json, String> {
    let scratch = dir.join(format!("save-{i}"));
    let file = std::fs::File::open(tar).map_err(|e| format!("{}: {e}", tar.display()))?;
    tar::Archive::new(file)
        .unpack(&scratch)
        .map_err(|e| format!("unpacking the saved image: {e}"))?;
    std::fs::remove_file(tar).ok();
    let index: Json = read_json(&scratch.join("index.json")).map_err(|e| {
        format!("{e} (the Engine saved no OCI layout: Engine 25 or newer is needed)")
    })?;
    let desc = index["manifests"]
        .get(0)
        .cloned()
        .ok_or("the saved image's index.json names no manifest")?;
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).map_err(|e| e.to_string())?;
    for entry in
        std::fs::read_dir(scratch.join("blobs").join("sha256")).map_err(|e| e.to_string())?
    {
        let entry = entry.map_err(|e| e.to_string())?;
        std::fs::rename(entry.path(), blobs.join(entry.file_name())).map_err(|e| e.to_string())?;
    }
    std::fs::remove_dir_all(&scratch).ok();
    let manifest = read_json(&blob_path(dir, &desc)?)?;
    let config = read_json(&blob_path(dir, &manifest["config"])?)?;
    let mut platform = json!({
        "architecture": config["architecture"],
        "os": config["os"],
    });
    if let Some(v) = config.get("variant").filter(|v| v.is_string()) {
        platform["variant"] = v.clone();
    }
    Ok(json!({
        "mediaType": desc["mediaType"],
        "digest": desc["digest"],
        "size": desc["size"],
        "platform": platform,
    }))
}

fn blob_path(dir: &Path, desc: &Json) -> Result<PathBuf, String> {
    let digest = desc["digest"].as_str().unwrap_or_default();
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| format!("unexpected digest {digest:?}"))?;
    Ok(dir.join("blobs").join("sha256").join(hex))
}

fn read_json(path: &Path) -> Result<Json, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: not JSON: {e}", path.display()))
}

/// Writes an OCI index of `children` into the layout; its descriptor.
fn index_of(dir: &Path, children: &[Json]) -> Result<Json, String> {
    let index = json!({
        "schemaVersion": 2,
        "mediaType": crate::registry::manifest::OCI_INDEX,
        "manifests": children,
    });
    let bytes = serde_json::to_vec(&index).map_err(|e| e.to_string())?;
    let digest = crate::registry::manifest::sha256_digest(&bytes);
    let desc = json!({
        "mediaType": crate::registry::manifest::OCI_INDEX,
        "digest": digest,
        "size": bytes.len(),
    });
    std::fs::write(blob_path(dir, &desc)?, &bytes).map_err(|e| e.to_string())?;
    Ok(desc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::Engine;

    #[test]
    fn the_store_is_read_from_info() {
        let classic =
            json!({"Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "extfs"]]});
        assert_eq!(store_of(&classic).as_deref(), Some("overlay2"));
        let containerd = json!({"Driver": "overlayfs",
            "DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]]});
        assert_eq!(store_of(&containerd), None);
    }

    fn spec(platforms: &[&str]) -> BuildSpec {
        BuildSpec {
            platforms: platforms.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn load_of_several_platforms_names_the_cause_and_the_fix() {
        let ep = Endpoint::DockerEngine(Engine::unix("/run/d.sock", "DOCKER_HOST"));
        let x = super::super::Exports {
            load: vec!["app:1".into()],
            ..Default::default()
        };
        let e = plan(
            &ep,
            "overlay2",
            &spec(&["linux/amd64", "linux/arm64"]),
            Output::Export(x.clone()),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("load: the Docker Engine at unix:///run/d.sock from DOCKER_HOST uses the classic image store (overlay2)"), "{e}");
        assert!(e.contains("containerd-snapshotter"), "{e}");
        assert!(plan(&ep, "overlay2", &spec(&["linux/arm64"]), Output::Export(x)).is_ok());
        let x = super::super::Exports {
            files: vec![FileExport::Oci {
                dest: "/o".into(),
                tar: true,
            }],
            ..Default::default()
        };
        let sbom = BuildSpec {
            sbom: true,
            ..spec(&["linux/amd64"])
        };
        let push = Output::Push {
            tags: vec!["r/a:1".into()],
        };
        let e = plan(&ep, "overlay2", &sbom, push).unwrap_err().to_string();
        assert!(
            e.starts_with("invalid build input: provenance/sbom:"),
            "{e}"
        );
        let e = plan(&ep, "overlay2", &spec(&[]), Output::Export(x))
            .unwrap_err()
            .to_string();
        assert!(e.contains("oci exporter"), "{e}");
    }

    #[test]
    fn the_image_exporter_becomes_moby() {
        use bollard_buildkit_proto::moby::buildkit::v1::{Exporter, SolveRequest};
        let mut req = SolveRequest {
            exporters: vec![Exporter {
                r#type: "image".into(),
                attrs: HashMap::from([
                    ("name".into(), "a:1".into()),
                    ("store".into(), "true".into()),
                ]),
            }],
            ..Default::default()
        };
        use_moby_exporter(&mut req);
        assert_eq!(req.exporters[0].r#type, "moby");
        assert_eq!(req.exporters[0].attrs.len(), 1);
    }
}

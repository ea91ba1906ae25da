//! Unit tests of Dispatch, the resources' check/diff and the refresh/delete rule, with fake
//! registries and BuildKit behind the `ports` traits. The end-to-end suite (tests/) drives
//! the same code against the real registry and BuildKit.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use oci_client::Reference;
use serde_json::{json, Value as Json};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::buildkit::{BuildOutcome, BuildSpec, Output};
use crate::log::{Level, Logger};
use crate::registry::manifest::RawManifest;
use crate::registry::{CopyChild, Deleted, RegistryError};

#[derive(Default)]
struct FakeRegistry {
    /// `registry/repository:tag` or `…@digest` -> manifest.
    manifests: Mutex<BTreeMap<String, RawManifest>>,
    /// References whose look-up fails (auth, network).
    failing: Mutex<BTreeSet<String>>,
    writes: Mutex<Vec<String>>,
    /// Whether every host deletes one tag alone (ECR).
    ecr: std::sync::atomic::AtomicBool,
}

impl FakeRegistry {
    fn put(&self, reference: &str, m: RawManifest) {
        self.manifests
            .lock()
            .unwrap()
            .insert(reference.to_owned(), m);
    }
    fn writes(&self) -> Vec<String> {
        self.writes.lock().unwrap().clone()
    }
    fn check(&self, r: &Reference) -> Result<(), RegistryError> {
        if self.failing.lock().unwrap().contains(&r.whole()) {
            return Err(RegistryError::Setup {
                message: format!("{} unreachable", r.whole()),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl Registry for FakeRegistry {
    async fn digest_of(&self, r: &Reference) -> Result<Option<String>, RegistryError> {
        Ok(self.manifest(r).await?.map(|m| m.digest))
    }
    async fn manifest(&self, r: &Reference) -> Result<Option<RawManifest>, RegistryError> {
        self.check(r)?;
        Ok(self.manifests.lock().unwrap().get(&r.whole()).cloned())
    }
    async fn json_blob(&self, r: &Reference, digest: &str) -> Result<Json, RegistryError> {
        Err(RegistryError::Setup {
            message: format!("no blob {digest} in {}", r.whole()),
        })
    }
    async fn copy_into(
        &self,
        dst: &Reference,
        children: &[CopyChild],
    ) -> Result<(), RegistryError> {
        for c in children {
            self.writes
                .lock()
                .unwrap()
                .push(format!("copy {} to {}", c.digest, dst.whole()));
        }
        Ok(())
    }
    fn is_ecr(&self, _host: &str) -> bool {
        self.ecr.load(std::sync::atomic::Ordering::Relaxed)
    }
    async fn put_manifest(&self, r: &Reference, m: &RawManifest) -> Result<(), RegistryError> {
        self.writes
            .lock()
            .unwrap()
            .push(format!("put {}", r.whole()));
        self.put(&r.whole(), m.clone());
        Ok(())
    }
    async fn delete_tag(
        &self,
        t: &Reference,
        _going: &[Reference],
    ) -> Result<Deleted, RegistryError> {
        self.writes
            .lock()
            .unwrap()
            .push(format!("delete {}", t.whole()));
        Ok(match self.manifests.lock().unwrap().remove(&t.whole()) {
            Some(_) => Deleted::Removed,
            None => Deleted::AlreadyGone,
        })
    }
    async fn basic_auth(&self, _host: &str) -> Option<(String, String)> {
        None
    }
}

/// One recorded build: its platforms and, for a push, its tags.
type Build = (Vec<String>, Option<Vec<String>>);

/// Records each build; a push puts a two-platform index under every tag, a push by digest
/// one manifest per platform (an index of them for several) at `repository@digest`.
#[derive(Default)]
struct FakeBuilder {
    registry: Arc<FakeRegistry>,
    builds: Mutex<Vec<Build>>,
    /// The platforms of `builders[i]`; every other platform goes to the default node.
    nodes: Vec<Vec<String>>,
    /// Platforms whose build fails.
    failing: BTreeSet<String>,
    /// Each build's node, platforms and output.
    routed: Mutex<Vec<(ports::Node, Vec<String>, Output)>>,
    /// Each build's node, cache imports and exports.
    caches: Mutex<Vec<Caches>>,
}

type Caches = (
    ports::Node,
    Vec<crate::buildkit::CacheEntry>,
    Vec<crate::buildkit::CacheEntry>,
);

fn platform_manifest(platform: &str) -> RawManifest {
    let body = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"digest": format!("sha256:{}", "c".repeat(64)), "size": 1},
        "layers": [],
        "platform-for-test": platform,
    });
    RawManifest::from_bytes(serde_json::to_vec(&body).unwrap().into()).unwrap()
}

fn index() -> RawManifest {
    let platform = |arch: &str, d: char| {
        json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", d.to_string().repeat(64)),
            "size": 100,
            "platform": {"os": "linux", "architecture": arch},
        })
    };
    let body = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [platform("amd64", 'a'), platform("arm64", 'b')],
    });
    RawManifest::from_bytes(serde_json::to_vec(&body).unwrap().into()).unwrap()
}

#[async_trait]
impl Builder for FakeBuilder {
    fn node_for(&self, platform: &str) -> ports::Node {
        self.nodes
            .iter()
            .position(|n| n.iter().any(|p| p == platform))
    }

    fn node_name(&self, node: ports::Node) -> String {
        match node {
            None => "builder (fake)".into(),
            Some(i) => format!("builders[{i}] (fake)"),
        }
    }

    async fn build(
        &self,
        node: ports::Node,
        _placement: &str,
        spec: &BuildSpec,
        output: Output,
        log: Arc<dyn Logger>,
        _cancel: CancellationToken,
    ) -> Result<BuildOutcome, Error> {
        self.routed
            .lock()
            .unwrap()
            .push((node, spec.platforms.clone(), output.clone()));
        self.caches
            .lock()
            .unwrap()
            .push((node, spec.cache_from.clone(), spec.cache_to.clone()));
        log.info("#1 RUN make");
        if let Some(p) = spec.platforms.iter().find(|p| self.failing.contains(*p)) {
            return Err(Error::Other(format!(
                "build failed: process \"make\" did not complete successfully ({p})"
            )));
        }
        let pushed = match output {
            Output::BuildOnly => None,
            Output::Push { tags } => Some(tags),
            Output::Export(x) if x.push.is_empty() => None,
            Output::Export(x) => Some(x.push),
            Output::PushByDigest { repository } => {
                let manifests: Vec<RawManifest> = spec
                    .platforms
                    .iter()
                    .map(|p| platform_manifest(p))
                    .collect();
                let result = if let [m] = manifests.as_slice() {
                    m.clone()
                } else {
                    let entries: Vec<Json> = spec
                        .platforms
                        .iter()
                        .zip(&manifests)
                        .map(|(p, m)| {
                            let (os, arch) = p.split_once('/').unwrap();
                            json!({"mediaType": m.media_type, "digest": m.digest, "size": m.size(),
                                   "platform": {"os": os, "architecture": arch}})
                        })
                        .collect();
                    let body = json!({"schemaVersion": 2,
                        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
                        "manifests": entries});
                    RawManifest::from_bytes(serde_json::to_vec(&body).unwrap().into()).unwrap()
                };
                for m in manifests.iter().chain([&result]) {
                    self.registry
                        .put(&format!("{repository}@{}", m.digest), m.clone());
                }
                return Ok(BuildOutcome {
                    digest: Some(result.digest),
                    exported: Vec::new(),
                });
            }
        };
        self.builds
            .lock()
            .unwrap()
            .push((spec.platforms.clone(), pushed.clone()));
        let Some(tags) = pushed else {
            return Ok(BuildOutcome {
                digest: None,
                exported: Vec::new(),
            });
        };
        let m = index();
        for t in &tags {
            self.registry.put(t, m.clone());
        }
        Ok(BuildOutcome {
            digest: Some(m.digest),
            exported: Vec::new(),
        })
    }
}

#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

impl Logger for Lines {
    fn log(&self, _: Level, message: &str) {
        self.0.lock().unwrap().push(message.to_owned());
    }
    fn status(&self, _: &str) {}
}

struct World {
    registry: Arc<FakeRegistry>,
    builder: Arc<FakeBuilder>,
    log: Arc<Lines>,
}

impl World {
    fn new() -> Self {
        let registry = Arc::new(FakeRegistry::default());
        World {
            builder: Arc::new(FakeBuilder {
                registry: registry.clone(),
                ..Default::default()
            }),
            registry,
            log: Arc::default(),
        }
    }
    /// A world whose builder has nodes `builders[i]` building `nodes[i]`, and where the
    /// platforms in `failing` fail to build.
    fn with_nodes(nodes: &[&[&str]], failing: &[&str]) -> Self {
        let registry = Arc::new(FakeRegistry::default());
        let strings = |l: &[&str]| l.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        World {
            builder: Arc::new(FakeBuilder {
                registry: registry.clone(),
                nodes: nodes.iter().map(|n| strings(n)).collect(),
                failing: strings(failing).into_iter().collect(),
                ..Default::default()
            }),
            registry,
            log: Arc::default(),
        }
    }
    fn routed(&self) -> Vec<(ports::Node, Vec<String>, Output)> {
        self.builder.routed.lock().unwrap().clone()
    }
    fn ctx(&self, preview: bool) -> OpContext {
        OpContext {
            registry: self.registry.clone(),
            builder: self.builder.clone(),
            log: self.log.clone(),
            cancel: CancellationToken::new(),
            preview,
            signing: None,
            urn: None,
        }
    }
    fn builds(&self) -> Vec<Build> {
        self.builder.builds.lock().unwrap().clone()
    }
}

fn resource(token: &str) -> Arc<dyn Dispatch> {
    all().iter().find(|r| r.token() == token).cloned().unwrap()
}

fn props(v: Json) -> Props {
    Props {
        value: v.as_object().unwrap().clone(),
        unknowns: BTreeSet::new(),
    }
}

fn with_unknown(v: Json, unknown: &[&str]) -> Props {
    Props {
        unknowns: unknown
            .iter()
            .map(|p| PropertyPath::parse(p).unwrap())
            .collect(),
        ..props(v)
    }
}

fn keys(set: &BTreeSet<PropertyPath>) -> Vec<String> {
    set.iter().map(|p| p.to_string()).collect()
}

fn changed(outcome: DiffOutcome) -> Vec<String> {
    match outcome {
        DiffOutcome::NoChange => vec![],
        DiffOutcome::Changes(c) => c.into_iter().map(|c| c.path).collect(),
    }
}

const IMAGE: &str = "multiarch:index:Image";
const LIST: &str = "multiarch:index:ManifestList";

/// A context directory with a Dockerfile, and the Image inputs that build it.
fn image_inputs(dir: &std::path::Path, tags: &[&str], platforms: &[&str]) -> Json {
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY a /a\n").unwrap();
    std::fs::write(dir.join("a"), "one").unwrap();
    json!({
        "context": {"location": dir.to_str().unwrap()},
        "tags": tags,
        "platforms": platforms,
        "buildArgs": {"A": "1"},
        "secrets": {"token": "s3cret"},
    })
}

#[tokio::test]
async fn preview_with_unknown_inputs_echoes_them_and_leaves_every_output_unknown() {
    let w = World::new();
    let img = resource(IMAGE);
    let news = with_unknown(
        json!({"platforms": ["linux/amd64"], "dockerfile": {"inline": "FROM scratch"}}),
        &["tags"],
    );
    // Check passes: a required value may just not be known yet.
    assert!(img.check(&news).is_ok());
    let out = img.create(&w.ctx(true), &news).await.unwrap();
    assert_eq!(out.value.get("platforms"), Some(&json!(["linux/amd64"])));
    assert_eq!(
        keys(&out.unknowns),
        [
            "contextHash",
            "digest",
            "exported",
            "manifests",
            "ref",
            "signatures",
            "tags"
        ]
    );
    assert!(
        w.builds().is_empty(),
        "nothing is built before the inputs are known"
    );
    let out = img
        .update(&w.ctx(true), "id-1", &props(json!({"tags": []})), &news)
        .await
        .unwrap();
    assert_eq!(out.id, "id-1");
    assert!(out.unknowns.contains(&PropertyPath::root_key("digest")));
}

#[tokio::test]
async fn check_names_the_property_and_normalizes_known_inputs() {
    let img = resource(IMAGE);
    let dir = tempfile::tempdir().unwrap();
    let mut v = image_inputs(dir.path(), &["127.0.0.1:5000/app:1"], &["linux/aarch64"]);
    let checked = img.check(&props(v.clone())).unwrap();
    assert_eq!(checked["platforms"], json!(["linux/arm64"]));
    // Secrets reach the front in plain text, and the model says where they are.
    assert_eq!(checked["secrets"], json!({"token": "s3cret"}));
    let fields: Vec<_> = img.model().state_fields().cloned().collect();
    assert_eq!(
        keys(&crate::model::secret_paths(&fields, &checked)),
        ["secrets"]
    );
    v["platforms"] = json!(["linux/amd64", "linux/x86_64"]);
    let failures = img.check(&props(v)).unwrap_err();
    assert_eq!(failures[0].property, "platforms[1]");
}

#[test]
fn local_names_serve_load_only_images_and_never_a_push() {
    let img = resource(IMAGE);
    let dir = tempfile::tempdir().unwrap();
    let mut v = image_inputs(dir.path(), &["myapp:dev"], &["linux/amd64"]);
    v["load"] = json!(true);
    v["push"] = json!(false);
    assert!(img.check(&props(v.clone())).is_ok());
    v["push"] = json!(true);
    let failures = img.check(&props(v.clone())).unwrap_err();
    assert_eq!(failures[0].property, "tags[0]");
    assert!(
        failures[0].reason.contains("does not name a registry host")
            && failures[0].reason.contains("push: false"),
        "{}",
        failures[0].reason
    );
    v["push"] = json!(false);
    v["tags"] = json!([format!("myapp@sha256:{}", "0".repeat(64))]);
    let failures = img.check(&props(v)).unwrap_err();
    assert!(
        failures[0].reason.contains("digest"),
        "{}",
        failures[0].reason
    );
}

#[tokio::test]
async fn reordering_tags_or_platforms_is_no_change_and_content_is() {
    let w = World::new();
    let img = resource(IMAGE);
    let dir = tempfile::tempdir().unwrap();
    let inputs = image_inputs(
        dir.path(),
        &["127.0.0.1:5000/app:1", "127.0.0.1:5000/app:latest"],
        &["linux/amd64", "linux/arm64"],
    );
    let state = img
        .create(&w.ctx(false), &props(inputs.clone()))
        .await
        .unwrap();
    let olds = Props {
        value: state.value.clone(),
        unknowns: BTreeSet::new(),
    };
    let mut same = inputs.clone();
    same["tags"] = json!(["127.0.0.1:5000/app:latest", "127.0.0.1:5000/app:1"]);
    same["platforms"] = json!(["linux/aarch64", "linux/amd64"]);
    let diff = |news: Json| {
        let (img, ctx, olds) = (img.clone(), w.ctx(true), olds.clone());
        async move { changed(img.diff(&ctx, "id", &olds, &props(news)).await.unwrap()) }
    };
    assert_eq!(diff(same.clone()).await, Vec::<String>::new());
    let mut args = same.clone();
    args["buildArgs"] = json!({"A": "2"});
    assert_eq!(diff(args).await, ["buildArgs"]);
    let mut secret = same.clone();
    secret["secrets"] = json!({"token": "other"});
    assert_eq!(diff(secret).await, ["secrets"]);
    std::fs::write(dir.path().join("a"), "two").unwrap();
    assert_eq!(diff(same).await, ["contextHash"]);
}

#[tokio::test]
async fn image_preview_builds_without_exporting_and_create_pushes() {
    let w = World::new();
    let img = resource(IMAGE);
    let dir = tempfile::tempdir().unwrap();
    let inputs = props(image_inputs(
        dir.path(),
        &["127.0.0.1:5000/app:1"],
        &["linux/amd64", "linux/arm64"],
    ));
    let preview = img.create(&w.ctx(true), &inputs).await.unwrap();
    assert_eq!(
        w.builds(),
        [(vec!["linux/amd64".into(), "linux/arm64".into()], None)]
    );
    assert!(w.registry.writes().is_empty());
    assert!(preview
        .unknowns
        .contains(&PropertyPath::root_key("contextHash")));

    let out = img.create(&w.ctx(false), &inputs).await.unwrap();
    let digest = index().digest;
    assert_eq!(out.value["digest"], json!(digest));
    assert_eq!(
        out.value["ref"],
        json!(format!("127.0.0.1:5000/app@{digest}"))
    );
    assert_eq!(out.value["manifests"][1]["platform"], "linux/arm64");
    assert!(out.unknowns.is_empty());
    assert_eq!(
        w.builds()[1].1,
        Some(vec!["127.0.0.1:5000/app:1".to_owned()])
    );
}

#[tokio::test]
async fn manifest_list_diff_reports_a_source_tag_that_moved() {
    let w = World::new();
    let ml = resource(LIST);
    let src = "127.0.0.1:5000/app:amd64";
    w.registry.put(src, index());
    let state = props(json!({
        "tags": ["127.0.0.1:5000/app:all"],
        "sources": [src],
        "sourceDigests": {src: "sha256:0000000000000000000000000000000000000000000000000000000000000000"},
    }));
    let news = props(json!({"tags": ["127.0.0.1:5000/app:all"], "sources": [src]}));
    let outcome = ml.diff(&w.ctx(true), "id", &state, &news).await.unwrap();
    assert_eq!(changed(outcome), ["sources[0]"]);
    let state = props(json!({
        "tags": ["127.0.0.1:5000/app:all"],
        "sources": [src],
        "sourceDigests": {src: index().digest},
    }));
    let outcome = ml.diff(&w.ctx(true), "id", &state, &news).await.unwrap();
    assert!(matches!(outcome, DiffOutcome::NoChange));
}

#[tokio::test]
async fn refresh_keeps_our_tags_drops_moved_ones_and_keeps_state_on_errors() {
    let w = World::new();
    let ml = resource(LIST);
    let (ours, moved, gone) = (
        "127.0.0.1:5000/app:ours",
        "127.0.0.1:5000/app:moved",
        "127.0.0.1:5000/app:gone",
    );
    let digest = index().digest;
    w.registry.put(ours, index());
    let other =
        RawManifest::from_bytes(br#"{"schemaVersion":2,"manifests":[]}"#.to_vec().into()).unwrap();
    w.registry.put(moved, other);
    let state = props(json!({
        "tags": [ours, moved, gone],
        "sources": ["127.0.0.1:5000/app:amd64"],
        "digest": digest,
    }));
    let out = ml
        .read(&w.ctx(false), "id", Some(&state))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.value["tags"], json!([ours]));

    w.registry.failing.lock().unwrap().insert(ours.to_owned());
    let out = ml
        .read(&w.ctx(false), "id", Some(&state))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        out.value["tags"],
        json!([ours, moved, gone]),
        "a failed look-up changes nothing"
    );
    assert!(w
        .log
        .0
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("keeping the recorded state")));

    w.registry.failing.lock().unwrap().clear();
    w.registry.manifests.lock().unwrap().clear();
    assert!(ml
        .read(&w.ctx(false), "id", Some(&state))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn delete_removes_the_tags_unless_kept_remotely() {
    let w = World::new();
    let ml = resource(LIST);
    let tags = ["127.0.0.1:5000/app:a", "127.0.0.1:5000/app:b"];
    let state =
        json!({"tags": tags, "sources": ["127.0.0.1:5000/app:amd64"], "digest": "sha256:x"});
    let mut kept = state.clone();
    kept["keepRemotely"] = json!(true);
    ml.delete(&w.ctx(false), "id", &props(kept)).await.unwrap();
    assert!(w.registry.writes().is_empty());
    ml.delete(&w.ctx(false), "id", &props(state)).await.unwrap();
    assert_eq!(
        w.registry.writes(),
        ["delete 127.0.0.1:5000/app:a", "delete 127.0.0.1:5000/app:b"]
    );
}

#[test]
fn provider_passwords_never_make_a_configuration_change() {
    let config = |pw: &str, host: &str| {
        props(json!({"registries": [{"address": host, "username": "u", "password": pw}]}))
    };
    assert!(!config_changed(
        &config("one", "a.example"),
        &config("two", "a.example")
    ));
    assert!(config_changed(
        &config("one", "a.example"),
        &config("one", "b.example")
    ));
    let unknown = with_unknown(json!({}), &["registries"]);
    assert!(config_changed(&config("one", "a.example"), &unknown));
    assert_eq!(
        config_changes(&config("one", "a.example"), &config("one", "b.example")),
        ["registries"],
        "the Diff names the keys that changed"
    );
    let builder = |b: &str| props(json!({"builder": b}));
    assert_eq!(
        config_changes(&builder("unix:///a.sock"), &builder("unix:///b.sock")),
        ["builder"]
    );
}

mod lookup;
mod nodes;
mod signing;

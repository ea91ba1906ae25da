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
        false
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
}

fn strings(l: &[&str]) -> Vec<String> {
    l.iter().map(|p| p.to_string()).collect()
}

#[tokio::test]
async fn nodes_build_their_platforms_push_by_digest_and_the_provider_writes_the_index() {
    let w = World::with_nodes(&[&["linux/arm64"]], &[]);
    let img = resource(IMAGE);
    let dir = tempfile::tempdir().unwrap();
    let tags = ["127.0.0.1:5000/app:1", "127.0.0.1:5000/other:2"];
    let inputs = props(image_inputs(
        dir.path(),
        &tags,
        &["linux/s390x", "linux/arm64", "linux/amd64"],
    ));
    let out = img.create(&w.ctx(false), &inputs).await.unwrap();
    let by_digest = |r: &str| Output::PushByDigest {
        repository: r.into(),
    };
    let mut routed = w.routed();
    routed.sort_by_key(|r| r.0);
    assert_eq!(
        routed,
        [
            (
                None,
                strings(&["linux/s390x", "linux/amd64"]),
                by_digest("127.0.0.1:5000/app")
            ),
            (
                Some(0),
                strings(&["linux/arm64"]),
                by_digest("127.0.0.1:5000/app")
            ),
        ]
    );
    // The index the provider wrote: every platform, sorted, under both tags.
    let index = w.registry.manifests.lock().unwrap()[tags[0]].clone();
    assert_eq!(
        w.registry.manifests.lock().unwrap()[tags[1]].digest,
        index.digest
    );
    let json = index.json();
    let platforms: Vec<&str> = json["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["amd64", "arm64", "s390x"]);
    assert_eq!(
        index.media_type,
        crate::registry::manifest::DOCKER_LIST,
        "Docker manifests only: a Docker list, as BuildKit writes it"
    );
    assert_eq!(out.value["digest"], json!(index.digest));
    assert_eq!(
        out.value["ref"],
        json!(format!("127.0.0.1:5000/app@{}", index.digest))
    );
    let arm64 = platform_manifest("linux/arm64").digest;
    assert_eq!(
        out.value["manifests"],
        json!([
            {"platform": "linux/amd64", "digest": platform_manifest("linux/amd64").digest},
            {"platform": "linux/arm64", "digest": arm64},
            {"platform": "linux/s390x", "digest": platform_manifest("linux/s390x").digest},
        ])
    );
    // The other repository gets the children before the index.
    let writes = w.registry.writes();
    assert!(writes.contains(&format!("copy {arm64} to 127.0.0.1:5000/other:2")));
    let first_put = writes.iter().position(|w| w.starts_with("put")).unwrap();
    assert!(writes[..first_put].iter().all(|w| w.starts_with("copy")));
    // Progress lines carry the node and the platforms.
    let lines = w.log.0.lock().unwrap().clone();
    assert!(lines.contains(&"[builders[0] linux/arm64] #1 RUN make".to_owned()));
    assert!(lines.contains(&"[builder linux/s390x, linux/amd64] #1 RUN make".to_owned()));
}

#[tokio::test]
async fn a_node_listing_every_platform_builds_in_one_solve_as_before() {
    let w = World::with_nodes(&[&["linux/amd64", "linux/arm64"]], &[]);
    let img = resource(IMAGE);
    let dir = tempfile::tempdir().unwrap();
    let inputs = props(image_inputs(
        dir.path(),
        &["127.0.0.1:5000/app:1"],
        &["linux/amd64", "linux/arm64"],
    ));
    let out = img.create(&w.ctx(false), &inputs).await.unwrap();
    assert_eq!(
        w.routed(),
        [(
            Some(0),
            strings(&["linux/amd64", "linux/arm64"]),
            Output::Push {
                tags: strings(&["127.0.0.1:5000/app:1"])
            }
        )]
    );
    assert_eq!(out.value["digest"], json!(index().digest));
}

#[tokio::test]
async fn a_failing_node_fails_preview_and_up_naming_node_and_platform_and_writes_no_tag() {
    let w = World::with_nodes(&[&["linux/arm64"]], &["linux/arm64"]);
    let img = resource(IMAGE);
    let dir = tempfile::tempdir().unwrap();
    let tag = "127.0.0.1:5000/app:1";
    let inputs = props(image_inputs(
        dir.path(),
        &[tag],
        &["linux/amd64", "linux/arm64"],
    ));
    for preview in [true, false] {
        let Err(e) = img.create(&w.ctx(preview), &inputs).await else {
            panic!("the arm64 node fails");
        };
        let text = e.to_string();
        assert!(
            text.contains("builders[0] (fake), platform linux/arm64")
                && text.contains("did not complete successfully"),
            "{text}"
        );
    }
    assert!(w.registry.writes().is_empty(), "{:?}", w.registry.writes());
    assert!(!w.registry.manifests.lock().unwrap().contains_key(tag));
}

#[tokio::test]
async fn preview_on_several_nodes_builds_on_each_and_exports_nothing() {
    let w = World::with_nodes(&[&["linux/arm64"]], &[]);
    let img = resource(IMAGE);
    let dir = tempfile::tempdir().unwrap();
    let inputs = props(image_inputs(
        dir.path(),
        &["127.0.0.1:5000/app:1"],
        &["linux/amd64", "linux/arm64"],
    ));
    let preview = img.create(&w.ctx(true), &inputs).await.unwrap();
    let mut routed = w.routed();
    routed.sort_by_key(|r| r.0);
    assert_eq!(
        routed,
        [
            (None, strings(&["linux/amd64"]), Output::BuildOnly),
            (Some(0), strings(&["linux/arm64"]), Output::BuildOnly),
        ]
    );
    assert!(w.registry.writes().is_empty());
    assert!(w.registry.manifests.lock().unwrap().is_empty());
    assert!(preview.unknowns.contains(&PropertyPath::root_key("digest")));
}

#[test]
fn builders_are_checked_at_configuration_naming_the_entry() {
    let check = |v: Json| {
        decode_config(v.as_object().unwrap(), &BTreeSet::new())
            .err()
            .map(|f| (f.property, f.reason))
    };
    let node =
        |endpoint: &str, platforms: &[&str]| json!({"endpoint": endpoint, "platforms": platforms});
    assert_eq!(
        check(
            json!({"builders": [node("docker", &["linux/amd64"]), node("tcp://b:1", &["linux/arm64"])]})
        ),
        None
    );
    let (p, r) = check(json!({"builders": [
        node("docker", &["linux/amd64"]),
        node("tcp://b:1", &["linux/arm64", "linux/x86_64"]),
    ]}))
    .unwrap();
    assert_eq!(p, "builders[1].platforms[1]");
    assert!(r.contains("builders[0]"), "{r}");
    let (p, _) =
        check(json!({"builders": [node("docker", &["linux/amd64"]), node("docker", &["lin ux"])]}))
            .unwrap();
    assert_eq!(p, "builders[1].platforms[0]");
    let (p, _) = check(json!({"builders": [node("docker", &[])]})).unwrap();
    assert_eq!(p, "builders[0].platforms");
    let (p, _) = check(json!({"builders": [node("ftp://x", &["linux/amd64"])]})).unwrap();
    assert_eq!(p, "builders[0].endpoint");
    let (p, r) = check(
        json!({"builders": [{"endpoint": "unix:///b.sock", "platforms": ["linux/amd64"],
        "tls": {"serverName": "b"}}]}),
    )
    .unwrap();
    assert_eq!(p, "builders[0].tls");
    assert!(!r.contains("builderTls"), "{r}");
    let (p, _) = check(
        json!({"builders": [{"endpoint": "tcp://b:1", "platforms": ["linux/amd64"],
        "tls": {"caCert": "not PEM"}}]}),
    )
    .unwrap();
    assert_eq!(p, "builders[0].tls.caCert");
    // An entry still unknown (preview) is checked once known.
    let unknown = with_unknown(
        json!({"builders": [node("docker", &[])]}),
        &["builders[0].endpoint"],
    );
    assert!(decode_config(&unknown.value, &unknown.unknowns).is_ok());
}

#[test]
fn reordering_a_nodes_platforms_is_no_configuration_change() {
    let config = |platforms: &[&str]| {
        props(json!({"builders": [{"endpoint": "docker", "platforms": platforms}]}))
    };
    assert!(!config_changed(
        &config(&["linux/amd64", "linux/arm64"]),
        &config(&["linux/arm64", "linux/amd64"])
    ));
    assert!(config_changed(
        &config(&["linux/amd64"]),
        &config(&["linux/arm64"])
    ));
}

#[tokio::test]
async fn several_nodes_each_use_their_own_registry_cache() {
    let w = World::with_nodes(&[&["linux/arm64"]], &[]);
    let img = resource(IMAGE);
    let dir = tempfile::tempdir().unwrap();
    let mut inputs = image_inputs(
        dir.path(),
        &["127.0.0.1:5000/app:1"],
        &["linux/amd64", "linux/arm64"],
    );
    inputs["cacheFrom"] = json!(["127.0.0.1:5000/app:cache", "type=gha,scope=app"]);
    inputs["cacheTo"] = json!([
        "type=registry,ref=127.0.0.1:5000/app:cache,mode=max",
        {"registry": {"ref": "127.0.0.1:5000/app:typed", "mode": "max"}}
    ]);
    img.create(&w.ctx(false), &props(inputs)).await.unwrap();
    let entries = |l: &[&str]| -> Vec<crate::buildkit::CacheEntry> {
        l.iter()
            .map(|s| crate::buildkit::CacheEntry::parse(s).unwrap())
            .collect()
    };
    let mut caches = w.builder.caches.lock().unwrap().clone();
    caches.sort_by_key(|c| c.0);
    assert_eq!(
        caches,
        [
            (
                None,
                entries(&[
                    "type=registry,ref=127.0.0.1:5000/app:cache-linux-amd64",
                    "type=gha,scope=app"
                ]),
                entries(&[
                    "type=registry,mode=max,ref=127.0.0.1:5000/app:cache-linux-amd64",
                    "type=registry,mode=max,ref=127.0.0.1:5000/app:typed-linux-amd64"
                ])
            ),
            (
                Some(0),
                entries(&[
                    "type=registry,ref=127.0.0.1:5000/app:cache-linux-arm64",
                    "type=gha,scope=app"
                ]),
                entries(&[
                    "type=registry,mode=max,ref=127.0.0.1:5000/app:cache-linux-arm64",
                    "type=registry,mode=max,ref=127.0.0.1:5000/app:typed-linux-arm64"
                ])
            ),
        ]
    );
}

#[tokio::test]
async fn an_imported_image_is_adopted_by_its_first_update_without_a_build() {
    let w = World::new();
    let img = resource(IMAGE);
    w.registry.put("127.0.0.1:5000/app:1", index());
    let imported = img
        .read(&w.ctx(false), "127.0.0.1:5000/app:1", None)
        .await
        .unwrap()
        .expect("the tag exists");
    assert_eq!(
        imported.value["platforms"],
        json!(["linux/amd64", "linux/arm64"])
    );
    assert!(imported.value.get("contextHash").is_none());
    let olds = props(Json::Object(imported.value.clone()));

    let dir = tempfile::tempdir().unwrap();
    let news = props(image_inputs(
        dir.path(),
        &["127.0.0.1:5000/app:1"],
        &["linux/arm64", "linux/amd64"],
    ));
    // What the import could not know is a change; no contextHash is compared.
    assert_eq!(
        changed(img.diff(&w.ctx(true), "id", &olds, &news).await.unwrap()),
        ["buildArgs", "context", "secrets"]
    );
    let planned = img.update(&w.ctx(true), "id", &olds, &news).await.unwrap();
    assert_eq!(keys(&planned.unknowns), ["contextHash"]);
    let adopted = img.update(&w.ctx(false), "id", &olds, &news).await.unwrap();
    assert!(w.builds().is_empty(), "adopting builds nothing");
    assert!(w.registry.writes().is_empty(), "and writes nothing");
    assert_eq!(adopted.value["digest"], json!(index().digest));
    assert!(adopted.value["contextHash"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    let recorded = props(Json::Object(adopted.value.clone()));
    assert!(changed(
        img.diff(&w.ctx(true), "id", &recorded, &news)
            .await
            .unwrap()
    )
    .is_empty());

    // Another platform set is a build.
    let other = props(image_inputs(
        dir.path(),
        &["127.0.0.1:5000/app:1"],
        &["linux/amd64"],
    ));
    img.update(&w.ctx(false), "id", &olds, &other)
        .await
        .unwrap();
    assert_eq!(w.builds().len(), 1);
}

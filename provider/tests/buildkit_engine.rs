//! The BuildKit client against the real Docker Engine of the test world
//! (`scripts/testenv.sh`): multi-platform builds pushed to the plain
//! registry and to the ECR look-alike, build-only runs that must not write,
//! secrets, cross-compilation, context filtering and cancellation.
//!
//! Skipped (with a printed reason) when /var/run/docker.sock is absent.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use multiarch::buildkit::{
    build, BuildError, BuildOutcome, BuildSpec, CacheEntry, DockerfileSource, Endpoint,
    NetworkMode, Output, RegistryAuth,
};
use multiarch::log::{Level, Logger};
use sha2::Digest;
use tokio_util::sync::CancellationToken;

const SOCKET: &str = "/var/run/docker.sock";
const ENV_FILE: &str = "/var/lib/multiarch-testenv/env";

/// Build-only checks of the registry log take this exclusively, so no push
/// from this file runs meanwhile.
static REGISTRY_WRITES: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

struct World {
    env: HashMap<String, String>,
    endpoint: Endpoint,
}

impl World {
    fn get(&self, k: &str) -> String {
        self.env
            .get(k)
            .cloned()
            .unwrap_or_else(|| panic!("{k} missing from {ENV_FILE}"))
    }
    fn ecr_password(&self) -> String {
        std::fs::read_to_string(self.get("ECR_PASSWORD_FILE"))
            .expect("read ECR password")
            .trim()
            .to_string()
    }
}

fn world(test: &str) -> Option<World> {
    if !Path::new(SOCKET).exists() {
        // In CI the test world is part of the job: its absence is a failure, not a skip
        // (a broken test world must not leave CI green).
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: {SOCKET} is absent and CI is set: the test world is missing \
             (run scripts/testenv.sh)"
        );
        eprintln!("skipping {test}: {SOCKET} is absent (no Docker Engine)");
        return None;
    }
    let text = std::fs::read_to_string(ENV_FILE).unwrap_or_else(|e| {
        panic!("{SOCKET} exists but {ENV_FILE} cannot be read ({e}): run scripts/testenv.sh")
    });
    let env = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<HashMap<_, _>>();
    let socket = env
        .get("DOCKER_HOST")
        .and_then(|h| h.strip_prefix("unix://"))
        .unwrap_or(SOCKET)
        .to_string();
    Some(World {
        env,
        endpoint: Endpoint::DockerEngine(multiarch::buildkit::Engine::unix(socket, "DOCKER_HOST")),
    })
}

#[derive(Default)]
struct Collect {
    status: Mutex<Vec<String>>,
    warnings: Mutex<Vec<String>>,
}

impl Logger for Collect {
    fn log(&self, level: Level, message: &str) {
        if level == Level::Warning {
            self.warnings.lock().unwrap().push(message.to_string());
        }
    }
    fn status(&self, message: &str) {
        self.status.lock().unwrap().push(message.to_string());
    }
}

/// Credentials per registry host; records which hosts BuildKit asked for.
#[derive(Default)]
struct Creds {
    by_host: BTreeMap<String, (String, String)>,
    asked: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl RegistryAuth for Creds {
    async fn basic(&self, host: &str) -> Option<(String, String)> {
        self.asked.lock().unwrap().push(host.to_string());
        self.by_host.get(host).cloned()
    }
}

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

fn temp_dir(files: &[(&str, &str)]) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bk-test-{}", unique()));
    for (name, content) in files {
        let p = d.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn skopeo(args: &[&str]) -> Vec<u8> {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn tls_args(image: &str, creds: Option<&str>) -> Vec<String> {
    let mut v = Vec::new();
    if image.starts_with("127.0.0.1:") {
        v.push("--tls-verify=false".to_string());
    }
    if let Some(c) = creds {
        v.push(format!("--creds={c}"));
    }
    v
}

/// The raw manifest (index) at `image` and its sha256 digest.
fn raw_manifest(image: &str, creds: Option<&str>) -> (serde_json::Value, String) {
    let mut args = vec!["inspect".to_string(), "--raw".to_string()];
    args.extend(tls_args(image, creds));
    args.push(format!("docker://{image}"));
    let raw = skopeo(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&raw)));
    (serde_json::from_slice(&raw).expect("manifest JSON"), digest)
}

fn platforms_of(index: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = index["manifests"]
        .as_array()
        .expect("an index")
        .iter()
        .filter(|m| m["platform"]["os"] != "unknown")
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    v.sort();
    v
}

/// Copies one platform's image to a directory; returns it and its manifest.
fn pull_platform(image: &str, arch: &str, creds: Option<&str>) -> (PathBuf, serde_json::Value) {
    let dir = std::env::temp_dir().join(format!("bk-pull-{}", unique()));
    let mut args = vec![
        "copy".to_string(),
        format!("--override-arch={arch}"),
        "--override-os=linux".to_string(),
    ];
    if image.starts_with("127.0.0.1:") {
        args.push("--src-tls-verify=false".into());
    }
    if let Some(c) = creds {
        args.push(format!("--src-creds={c}"));
    }
    args.push(format!("docker://{image}"));
    args.push(format!("dir:{}", dir.display()));
    skopeo(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    (dir, manifest)
}

fn blob(dir: &Path, digest: &str) -> PathBuf {
    dir.join(digest.trim_start_matches("sha256:"))
}

/// A file's content in the image pulled by [`pull_platform`] (top layer
/// first).
fn file_in_image(dir: &Path, manifest: &serde_json::Value, path: &str) -> Option<Vec<u8>> {
    for layer in manifest["layers"].as_array().unwrap().iter().rev() {
        let b = blob(dir, layer["digest"].as_str().unwrap());
        let out = Command::new("tar")
            .arg("-xzOf")
            .arg(&b)
            .arg(path)
            .output()
            .unwrap();
        if out.status.success() {
            return Some(out.stdout);
        }
    }
    None
}

/// Everything in the image (config and decompressed layers) as bytes.
fn image_bytes(dir: &Path, manifest: &serde_json::Value) -> Vec<u8> {
    let mut all = std::fs::read(blob(dir, manifest["config"]["digest"].as_str().unwrap())).unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        let b = blob(dir, layer["digest"].as_str().unwrap());
        let out = Command::new("gzip").arg("-dc").arg(&b).output().unwrap();
        all.extend(out.stdout);
    }
    all
}

fn registry_log_offset(w: &World) -> u64 {
    std::fs::metadata(w.get("PLAIN_REGISTRY_LOG"))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// BuildKit's access-log lines written since `offset` with a write method
/// (other clients' writes, e.g. from other test suites, are not ours).
fn registry_writes_since(w: &World, offset: u64) -> Vec<String> {
    let mut f = std::fs::File::open(w.get("PLAIN_REGISTRY_LOG")).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    s.lines()
        .filter(|l| l.contains("buildkit/"))
        .filter(|l| {
            ["\"PUT ", "\"POST ", "\"PATCH ", "\"DELETE "]
                .iter()
                .any(|m| l.contains(m))
                || ["method=PUT", "method=POST", "method=PATCH", "method=DELETE"]
                    .iter()
                    .any(|m| l.contains(m))
        })
        .map(str::to_string)
        .collect()
}

fn quiet() -> Arc<Collect> {
    Arc::new(Collect::default())
}

fn anon() -> Arc<Creds> {
    Arc::new(Creds::default())
}

/// A build with no credentials and no progress output.
async fn build_quietly(
    w: &World,
    spec: &BuildSpec,
    output: Output,
) -> Result<BuildOutcome, BuildError> {
    build(
        &w.endpoint,
        spec,
        output,
        anon(),
        quiet(),
        CancellationToken::new(),
    )
    .await
}

/// Builds and pushes to `tag`; any failure fails the test.
async fn push_quietly(w: &World, spec: &BuildSpec, tag: &str) -> BuildOutcome {
    let output = Output::Push {
        tags: vec![tag.to_owned()],
    };
    build_quietly(w, spec, output)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_platform_build_pushes_an_index() {
    let Some(w) = world("two_platform_build_pushes_an_index") else {
        return;
    };
    let _g = REGISTRY_WRITES.read().await;
    let base = w.get("BASE_IMAGE_PLAIN");
    // a fresh marker keeps the RUN step from being cached, so the timing
    // below is that of a real two-platform build (arm64 under QEMU)
    let marker = unique();
    let ctx = temp_dir(&[
        (
            "Dockerfile",
            &format!(
                "FROM {base}\nRUN echo {marker} > /marker && uname -m > /arch\n\
                 COPY hello.txt /hello.txt\n"
            ),
        ),
        ("hello.txt", "hello\n"),
    ]);
    let tag = format!("{}/bk-test/app:{}", w.get("PLAIN_REGISTRY"), unique());
    let spec = BuildSpec {
        context_dir: ctx.clone(),
        dockerfile: DockerfileSource::Path(ctx.join("Dockerfile")),
        platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
        network: Some(NetworkMode::None),
        labels: BTreeMap::from([("org.example.test".to_string(), "yes".to_string())]),
        ..Default::default()
    };
    let log = quiet();
    let started = Instant::now();
    let out = build(
        &w.endpoint,
        &spec,
        Output::Push {
            tags: vec![tag.clone()],
        },
        anon(),
        log.clone(),
        CancellationToken::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "two-platform build+push took {:.2}s",
        started.elapsed().as_secs_f64()
    );
    let digest = out.digest.expect("a digest");
    let (index, raw_digest) = raw_manifest(&tag, None);
    assert_eq!(digest, raw_digest, "returned digest is the pushed index's");
    assert_eq!(platforms_of(&index), vec!["linux/amd64", "linux/arm64"]);
    assert_eq!(
        index["manifests"].as_array().unwrap().len(),
        2,
        "no attestation manifests unless asked for"
    );
    // the digest is addressable too
    let by_digest = format!("{}@{}", tag.rsplit_once(':').unwrap().0, digest);
    assert_eq!(raw_manifest(&by_digest, None).1, digest);
    for (arch, uname) in [("amd64", "x86_64"), ("arm64", "aarch64")] {
        let (dir, m) = pull_platform(&tag, arch, None);
        let got = file_in_image(&dir, &m, "arch").expect("/arch in image");
        assert_eq!(String::from_utf8_lossy(&got).trim(), uname);
        assert_eq!(file_in_image(&dir, &m, "hello.txt").unwrap(), b"hello\n");
        let _ = std::fs::remove_dir_all(dir);
    }
    let status = log.status.lock().unwrap().join("\n");
    assert!(
        status.contains("uname -m > /arch"),
        "status lines: {status}"
    );
    let _ = std::fs::remove_dir_all(ctx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_only_writes_nothing_and_reports_the_failing_step() {
    let Some(w) = world("build_only_writes_nothing_and_reports_the_failing_step") else {
        return;
    };
    let _g = REGISTRY_WRITES.write().await;
    let base = w.get("BASE_IMAGE_PLAIN");
    let marker = unique();
    let dockerfile = format!(
        "FROM {base}\nRUN echo ok-{marker}\n\
         RUN echo first-line; for i in $(seq 1 30); do echo noise-$i; done; echo last-words-{marker}; exit 7\n"
    );
    let ctx = temp_dir(&[]);
    let spec = BuildSpec {
        context_dir: ctx.clone(),
        dockerfile: DockerfileSource::Inline(dockerfile),
        platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
        network: Some(NetworkMode::None),
        cache_to: vec![CacheEntry::parse(&format!(
            "type=registry,ref={}/bk-test/cache:{marker},mode=max",
            w.get("PLAIN_REGISTRY")
        ))
        .unwrap()],
        ..Default::default()
    };
    let offset = registry_log_offset(&w);
    let err = build_quietly(&w, &spec, Output::BuildOnly)
        .await
        .expect_err("the RUN step exits 7");
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(matches!(err, BuildError::Solve { .. }), "{msg}");
    assert!(msg.contains("exit code: 7"), "{msg}");
    assert!(msg.contains(&format!("last-words-{marker}")), "{msg}");
    assert!(msg.contains("noise-30"), "{msg}");
    assert!(msg.contains("Docker Engine at unix://"), "{msg}");
    if let BuildError::Solve { log_tail, step, .. } = &err {
        assert!(log_tail.len() <= 20);
        assert!(
            !log_tail.iter().any(|l| l == "first-line"),
            "only the tail: {msg}"
        );
        assert!(step
            .as_deref()
            .unwrap_or("")
            .contains("RUN echo first-line"));
    }

    // a successful build-only run with a cache export configured writes
    // nothing either
    let ok_spec = BuildSpec {
        dockerfile: DockerfileSource::Inline(format!("FROM {base}\nRUN echo fine-{marker} > /f\n")),
        ..spec.clone()
    };
    let out = build(
        &w.endpoint,
        &ok_spec,
        Output::BuildOnly,
        anon(),
        quiet(),
        CancellationToken::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.digest, None);
    // the registry flushes its log asynchronously
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writes = registry_writes_since(&w, offset);
    assert!(
        writes.is_empty(),
        "registry writes during build-only: {writes:#?}"
    );
    let _ = std::fs::remove_dir_all(ctx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_is_used_but_not_stored() {
    let Some(w) = world("secret_is_used_but_not_stored") else {
        return;
    };
    let _g = REGISTRY_WRITES.read().await;
    let base = w.get("BASE_IMAGE_PLAIN");
    let secret = format!("s3cr3t-{}", unique());
    let dockerfile = format!(
        "FROM {base}\n\
         RUN --mount=type=secret,id=tok,required=true wc -c < /run/secrets/tok > /tok.len\n"
    );
    let ctx = temp_dir(&[]);
    let spec = BuildSpec {
        context_dir: ctx.clone(),
        dockerfile: DockerfileSource::Inline(dockerfile),
        platforms: vec!["linux/amd64".into()],
        network: Some(NetworkMode::None),
        secrets: BTreeMap::from([("tok".to_string(), secret.clone().into_bytes())]),
        ..Default::default()
    };
    let tag = format!("{}/bk-test/secret:{}", w.get("PLAIN_REGISTRY"), unique());
    let out = push_quietly(&w, &spec, &tag).await;
    assert!(out.digest.is_some());
    let (dir, m) = pull_platform(&tag, "amd64", None);
    let len = file_in_image(&dir, &m, "tok.len").expect("/tok.len");
    assert_eq!(
        String::from_utf8_lossy(&len).trim(),
        secret.len().to_string(),
        "the RUN step saw the secret"
    );
    let all = image_bytes(&dir, &m);
    assert!(
        !all.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "secret value found in the pushed image"
    );
    let _ = std::fs::remove_dir_all(dir);

    // without the secret, the required mount fails, and the error does not
    // carry any secret value
    let mut no_secret = spec.clone();
    no_secret.secrets.clear();
    no_secret.no_cache = true;
    let err = build(
        &w.endpoint,
        &no_secret,
        Output::BuildOnly,
        anon(),
        quiet(),
        CancellationToken::new(),
    )
    .await
    .expect_err("required secret missing");
    assert!(err.to_string().contains("tok"), "{err}");
    let _ = std::fs::remove_dir_all(ctx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_to_ecr_lookalike_with_basic_credentials() {
    let Some(w) = world("push_to_ecr_lookalike_with_basic_credentials") else {
        return;
    };
    let _g = REGISTRY_WRITES.read().await;
    let ecr = w.get("ECR_REGISTRY");
    let password = w.ecr_password();
    let base = w.get("BASE_IMAGE_ECR");
    let ctx = temp_dir(&[]);
    let spec = BuildSpec {
        context_dir: ctx.clone(),
        dockerfile: DockerfileSource::Inline(format!("FROM {base}\nRUN echo ecr > /where\n")),
        platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
        network: Some(NetworkMode::None),
        ..Default::default()
    };
    let tag = format!("{ecr}/bk-test/ecr:{}", unique());
    let creds = Arc::new(Creds {
        by_host: BTreeMap::from([(ecr.clone(), (w.get("ECR_USERNAME"), password.clone()))]),
        ..Default::default()
    });

    // without credentials the pull of the base image is refused
    let err = build(
        &w.endpoint,
        &BuildSpec {
            pull: true,
            ..spec.clone()
        },
        Output::BuildOnly,
        anon(),
        quiet(),
        CancellationToken::new(),
    )
    .await
    .expect_err("anonymous access to the ECR look-alike");
    let msg = err.to_string();
    eprintln!("anonymous: {msg}");
    assert!(
        ["401", "nauthorized", "authoriz"]
            .iter()
            .any(|m| msg.contains(m)),
        "{msg}"
    );
    assert!(!msg.contains(&password));

    let out = build(
        &w.endpoint,
        &spec,
        Output::Push {
            tags: vec![tag.clone()],
        },
        creds.clone(),
        quiet(),
        CancellationToken::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(creds.asked.lock().unwrap().iter().any(|h| h == &ecr));
    let c = format!("{}:{password}", w.get("ECR_USERNAME"));
    let (index, digest) = raw_manifest(&tag, Some(&c));
    assert_eq!(out.digest.as_deref(), Some(digest.as_str()));
    assert_eq!(platforms_of(&index), vec!["linux/amd64", "linux/arm64"]);
    let _ = std::fs::remove_dir_all(ctx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_compile_with_buildplatform_and_named_context() {
    let Some(w) = world("cross_compile_with_buildplatform_and_named_context") else {
        return;
    };
    let _g = REGISTRY_WRITES.read().await;
    let dockerfile = "ARG BASE\n\
        FROM --platform=$BUILDPLATFORM $BASE AS build\n\
        ARG TARGETARCH\n\
        ARG BUILDARCH\n\
        RUN echo \"target=$TARGETARCH build=$BUILDARCH ran-on=$(uname -m)\" > /out\n\
        FROM $BASE\n\
        COPY --from=build /out /out\n\
        COPY --from=extra note.txt /note.txt\n";
    let ctx = temp_dir(&[("Dockerfile.cross", dockerfile)]);
    let extra = temp_dir(&[("note.txt", "from a named context\n")]);
    let spec = BuildSpec {
        context_dir: ctx.clone(),
        dockerfile: DockerfileSource::Path(ctx.join("Dockerfile.cross")),
        platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
        network: Some(NetworkMode::None),
        build_args: BTreeMap::from([("BASE".to_string(), w.get("BASE_IMAGE_PLAIN"))]),
        named_contexts: BTreeMap::from([(
            "extra".to_string(),
            extra.to_string_lossy().into_owned(),
        )]),
        ..Default::default()
    };
    let tag = format!("{}/bk-test/cross:{}", w.get("PLAIN_REGISTRY"), unique());
    let out = push_quietly(&w, &spec, &tag).await;
    let (index, digest) = raw_manifest(&tag, None);
    assert_eq!(out.digest.as_deref(), Some(digest.as_str()));
    assert_eq!(platforms_of(&index), vec!["linux/amd64", "linux/arm64"]);
    for arch in ["amd64", "arm64"] {
        let (dir, m) = pull_platform(&tag, arch, None);
        let got = String::from_utf8(file_in_image(&dir, &m, "out").unwrap()).unwrap();
        assert_eq!(
            got.trim(),
            format!("target={arch} build=amd64 ran-on=x86_64")
        );
        assert_eq!(
            file_in_image(&dir, &m, "note.txt").unwrap(),
            b"from a named context\n"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
    let _ = std::fs::remove_dir_all(ctx);
    let _ = std::fs::remove_dir_all(extra);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_honours_dockerignore_and_custom_ignore_file() {
    let Some(w) = world("context_honours_dockerignore_and_custom_ignore_file") else {
        return;
    };
    let _g = REGISTRY_WRITES.read().await;
    let base = w.get("BASE_IMAGE_PLAIN");
    let ctx = temp_dir(&[
        (
            ".dockerignore",
            "ignored.txt\nnode_modules\n*.log\n!keep.log\n",
        ),
        ("ignored.txt", "no"),
        ("node_modules/x/index.js", "no"),
        ("a.log", "no"),
        ("keep.log", "yes"),
        ("src/main.txt", "yes"),
        ("custom.ignore", "src\n"),
    ]);
    let check = |present: &[&str], absent: &[&str]| {
        let mut s = format!("FROM {base}\nCOPY . /ctx/\nRUN ls -laR /ctx");
        for p in present {
            s.push_str(&format!(" && test -e /ctx/{p}"));
        }
        for p in absent {
            s.push_str(&format!(" && test ! -e /ctx/{p}"));
        }
        s.push('\n');
        s
    };
    let spec = BuildSpec {
        context_dir: ctx.clone(),
        dockerfile: DockerfileSource::Inline(check(
            &["keep.log", "src/main.txt", ".dockerignore"],
            &["ignored.txt", "node_modules", "a.log"],
        )),
        platforms: vec!["linux/amd64".into()],
        network: Some(NetworkMode::None),
        no_cache: true,
        ..Default::default()
    };
    build_quietly(&w, &spec, Output::BuildOnly)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // a custom ignore file replaces .dockerignore
    let custom = BuildSpec {
        dockerfile: DockerfileSource::Inline(check(
            &["ignored.txt", "node_modules/x/index.js", "a.log"],
            &["src"],
        )),
        ignore_file: Some(ctx.join("custom.ignore")),
        ..spec.clone()
    };
    build(
        &w.endpoint,
        &custom,
        Output::BuildOnly,
        anon(),
        quiet(),
        CancellationToken::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_dir_all(ctx);
}

fn processes_with_cmdline(needle: &str) -> usize {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return 0;
    };
    rd.flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| {
            String::from_utf8_lossy(c)
                .replace('\0', " ")
                .contains(needle)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_stops_the_build() {
    let Some(w) = world("cancellation_stops_the_build") else {
        return;
    };
    let _g = REGISTRY_WRITES.read().await;
    let base = w.get("BASE_IMAGE_PLAIN");
    let secs = 200 + (std::process::id() % 500);
    let needle = format!("sleep {secs}");
    let ctx = temp_dir(&[]);
    let spec = BuildSpec {
        context_dir: ctx.clone(),
        dockerfile: DockerfileSource::Inline(format!("FROM {base}\nRUN {needle}\n")),
        platforms: vec!["linux/amd64".into()],
        network: Some(NetworkMode::None),
        no_cache: true,
        ..Default::default()
    };
    let cancel = CancellationToken::new();
    let log = quiet();
    let task = {
        let (w_ep, spec, cancel, log) = (
            w.endpoint.clone(),
            spec.clone(),
            cancel.clone(),
            log.clone(),
        );
        tokio::spawn(
            async move { build(&w_ep, &spec, Output::BuildOnly, anon(), log, cancel).await },
        )
    };
    // wait until the step runs
    let deadline = Instant::now() + Duration::from_secs(60);
    while processes_with_cmdline(&needle) == 0 {
        assert!(Instant::now() < deadline, "the RUN step never started");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let cancelled_at = Instant::now();
    cancel.cancel();
    let res = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("build returns within 5 s of cancellation")
        .unwrap();
    assert!(matches!(res, Err(BuildError::Cancelled { .. })), "{res:?}");
    // and BuildKit really stops the step
    while processes_with_cmdline(&needle) > 0 {
        assert!(
            cancelled_at.elapsed() < Duration::from_secs(15),
            "the RUN step is still running 15 s after cancellation"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "step stopped {:.2}s after cancellation",
        cancelled_at.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(ctx);
}

/// BuildKit health-checks the session every 5 s and asks it for push
/// credentials only at the end: a build outliving several checks must still
/// find the session (and our Auth service) alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_build_keeps_the_session_alive() {
    let Some(w) = world("long_build_keeps_the_session_alive") else {
        return;
    };
    let _g = REGISTRY_WRITES.read().await;
    let ecr = w.get("ECR_REGISTRY");
    let ctx = temp_dir(&[]);
    let spec = BuildSpec {
        context_dir: ctx.clone(),
        dockerfile: DockerfileSource::Inline(format!(
            "FROM {}\nRUN sleep 13 && echo {} > /slow\n",
            w.get("BASE_IMAGE_PLAIN"),
            unique()
        )),
        platforms: vec!["linux/amd64".into()],
        network: Some(NetworkMode::None),
        ..Default::default()
    };
    let creds = Arc::new(Creds {
        by_host: BTreeMap::from([(ecr.clone(), (w.get("ECR_USERNAME"), w.ecr_password()))]),
        ..Default::default()
    });
    let tag = format!("{ecr}/bk-test/slow:{}", unique());
    let out = build(
        &w.endpoint,
        &spec,
        Output::Push { tags: vec![tag] },
        creds.clone(),
        quiet(),
        CancellationToken::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.digest.is_some());
    assert!(creds.asked.lock().unwrap().iter().any(|h| h == &ecr));
    let _ = std::fs::remove_dir_all(ctx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provenance_is_opt_in_and_cache_export_reaches_the_registry() {
    let Some(w) = world("provenance_is_opt_in_and_cache_export_reaches_the_registry") else {
        return;
    };
    let _g = REGISTRY_WRITES.read().await;
    let ecr = w.get("ECR_REGISTRY");
    let ctx = temp_dir(&[]);
    let cache_ref = format!("{ecr}/bk-test/cache:{}", unique());
    let spec = BuildSpec {
        context_dir: ctx.clone(),
        dockerfile: DockerfileSource::Inline(format!(
            "FROM {}\nRUN echo {} > /x\n",
            w.get("BASE_IMAGE_PLAIN"),
            unique()
        )),
        platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
        network: Some(NetworkMode::None),
        provenance: true,
        cache_to: vec![CacheEntry::parse(&format!(
            "type=registry,ref={cache_ref},mode=max,image-manifest=true,oci-mediatypes=true"
        ))
        .unwrap()],
        cache_from: vec![CacheEntry::parse(&cache_ref).unwrap()],
        ..Default::default()
    };
    let creds = Arc::new(Creds {
        by_host: BTreeMap::from([(ecr.clone(), (w.get("ECR_USERNAME"), w.ecr_password()))]),
        ..Default::default()
    });
    let tag = format!("{ecr}/bk-test/prov:{}", unique());
    let out = build(
        &w.endpoint,
        &spec,
        Output::Push {
            tags: vec![tag.clone()],
        },
        creds.clone(),
        quiet(),
        CancellationToken::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let c = format!("{}:{}", w.get("ECR_USERNAME"), w.ecr_password());
    let (index, digest) = raw_manifest(&tag, Some(&c));
    assert_eq!(out.digest.as_deref(), Some(digest.as_str()));
    assert_eq!(platforms_of(&index), vec!["linux/amd64", "linux/arm64"]);
    let attestations = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["annotations"]["vnd.docker.reference.type"] == "attestation-manifest")
        .count();
    assert_eq!(attestations, 2, "one provenance attestation per platform");
    // the cache export is an image manifest in the registry
    let (cache, _) = raw_manifest(&cache_ref, Some(&c));
    assert!(
        cache["layers"].as_array().is_some_and(|l| !l.is_empty()),
        "{cache}"
    );
    let _ = std::fs::remove_dir_all(ctx);
}

/// Context transfer timing on a larger tree (3000 files, ~48 MiB); run with
/// `cargo test --test buildkit_engine -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_large_context() {
    let Some(w) = world("bench_large_context") else {
        return;
    };
    let ctx = std::env::temp_dir().join(format!("bk-bench-{}", unique()));
    for d in 0..30 {
        for f in 0..100 {
            let p = ctx.join(format!("d{d}/f{f}.bin"));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            let size = if f % 10 == 0 { 150_000 } else { 1_000 };
            std::fs::write(p, vec![(d * 100 + f) as u8; size]).unwrap();
        }
    }
    let dockerfile = format!(
        "FROM {}\nCOPY . /ctx/\nRUN du -s /ctx\n",
        w.get("BASE_IMAGE_PLAIN")
    );
    std::fs::write(ctx.join("Dockerfile"), &dockerfile).unwrap();
    let spec = BuildSpec {
        context_dir: ctx.clone(),
        dockerfile: DockerfileSource::Path(ctx.join("Dockerfile")),
        platforms: vec!["linux/amd64".into()],
        network: Some(NetworkMode::None),
        no_cache: true,
        ..Default::default()
    };
    for round in 0..3 {
        let started = Instant::now();
        build(
            &w.endpoint,
            &spec,
            Output::BuildOnly,
            anon(),
            quiet(),
            CancellationToken::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        eprintln!(
            "large context build-only, round {round}: {:.2}s",
            started.elapsed().as_secs_f64()
        );
        // touch every file so the next round transfers everything again
        for d in 0..30 {
            std::fs::write(ctx.join(format!("d{d}/f1.bin")), format!("{round}")).unwrap();
        }
    }
    eprintln!("context kept at {} for comparison", ctx.display());
}

// ---------------------------------------------------------------------------
// Standalone buildkitd transports (unix://, tcp:// with mutual TLS).
//
// There is no buildkitd package on this machine kind, so the Engine's own
// BuildKit is made to look like one: every connection accepted by the shim
// below is spliced onto a `POST /grpc` h2c upgrade of the Engine socket. What
// our client does on the unix:// and tcp:// paths (its own gRPC connection,
// TLS, the session tunnelled through `Control.Session`) then meets real
// BuildKit; only the server's TLS termination is the shim's.

use multiarch::buildkit::SecretString;
use multiarch::buildkit::TlsSettings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A connection to the Engine's BuildKit gRPC API, upgraded and ready for h2.
async fn engine_grpc(socket: &Path) -> tokio::net::UnixStream {
    let mut s = tokio::net::UnixStream::connect(socket).await.unwrap();
    s.write_all(
        b"POST /grpc HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\
          Content-Length: 0\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "Engine refused the upgrade: {}",
        String::from_utf8_lossy(&head)
    );
    s
}

fn engine_socket(w: &World) -> PathBuf {
    match &w.endpoint {
        Endpoint::DockerEngine(e) => e.socket().expect("a unix socket").to_path_buf(),
        other => panic!("the test world's endpoint is {other}"),
    }
}

/// Serves `unix://<dir>/buildkitd.sock` until dropped.
fn unix_buildkitd(w: &World) -> (PathBuf, tokio::task::JoinHandle<()>) {
    let engine = engine_socket(w);
    let sock = std::env::temp_dir()
        .join(format!("bk-{}", unique()))
        .join("buildkitd.sock");
    std::fs::create_dir_all(sock.parent().unwrap()).unwrap();
    let listener = tokio::net::UnixListener::bind(&sock).unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let engine = engine.clone();
            tokio::spawn(async move {
                let mut up = engine_grpc(&engine).await;
                let _ = tokio::io::copy_bidirectional(&mut conn, &mut up).await;
            });
        }
    });
    (sock, task)
}

struct TestPki {
    ca_pem: String,
    server_cert: rustls::pki_types::CertificateDer<'static>,
    server_key: rustls::pki_types::PrivateKeyDer<'static>,
    client_cert_pem: String,
    client_key_pem: String,
}

/// A CA, a server certificate for `buildkitd.test` and a client certificate, as one would
/// make for `buildkitd --tlscacert --tlscert --tlskey`.
fn test_pki() -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "multiarch test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |name: &str, usage: rcgen::ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec![name.to_string()]).unwrap();
        p.extended_key_usages = vec![usage];
        (p.signed_by(&key, &issuer).unwrap(), key)
    };
    let (server, server_key) = leaf("buildkitd.test", rcgen::ExtendedKeyUsagePurpose::ServerAuth);
    let (client, client_key) = leaf("client", rcgen::ExtendedKeyUsagePurpose::ClientAuth);
    TestPki {
        ca_pem: ca_cert.pem(),
        server_cert: server.der().clone(),
        server_key: rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
        client_cert_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

/// What the TLS listener saw of each client.
#[derive(Default)]
struct TlsSeen {
    handshakes: Mutex<Vec<Result<Option<Vec<u8>>, String>>>,
}

/// Serves `tcp://127.0.0.1:PORT` with TLS that requires a client certificate from the test
/// CA, as `buildkitd --tlscacert` does.
async fn tls_buildkitd(
    w: &World,
    pki: &TestPki,
) -> (String, Arc<TlsSeen>, tokio::task::JoinHandle<()>) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap())
        .unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![pki.server_cert.clone()], pki.server_key.clone_key())
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(TlsSeen::default());
    let engine = engine_socket(w);
    let seen2 = seen.clone();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, engine, seen) = (acceptor.clone(), engine.clone(), seen2.clone());
            tokio::spawn(async move {
                match acceptor.accept(tcp).await {
                    Ok(mut tls) => {
                        let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
                        seen.handshakes.lock().unwrap().push(Ok(alpn));
                        let mut up = engine_grpc(&engine).await;
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                    }
                    Err(e) => seen.handshakes.lock().unwrap().push(Err(e.to_string())),
                }
            });
        }
    });
    (address, seen, task)
}

/// A two-platform build with a context file, pushed through `endpoint`; the index must
/// hold both platforms and the file.
async fn build_through(w: &World, endpoint: Endpoint) {
    // Fresh contents, so the file really travels through the tunnelled session.
    let hello = format!("hello through buildkitd {}\n", unique());
    let ctx = temp_dir(&[
        (
            "Dockerfile",
            "FROM scratch\nARG TARGETARCH\nCOPY hello.txt /hello.txt\nLABEL arch=$TARGETARCH\n",
        ),
        ("hello.txt", &hello),
    ]);
    let spec = BuildSpec {
        context_dir: ctx.clone(),
        dockerfile: DockerfileSource::Path(ctx.join("Dockerfile")),
        platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
        ..Default::default()
    };
    let tag = format!(
        "{}/bk-test/standalone:{}",
        w.get("PLAIN_REGISTRY"),
        unique()
    );
    let through = World {
        env: w.env.clone(),
        endpoint,
    };
    let out = push_quietly(&through, &spec, &tag).await;
    let (index, digest) = raw_manifest(&tag, None);
    assert_eq!(out.digest.as_deref(), Some(digest.as_str()));
    assert_eq!(platforms_of(&index), vec!["linux/amd64", "linux/arm64"]);
    let (dir, m) = pull_platform(&tag, "arm64", None);
    assert_eq!(
        file_in_image(&dir, &m, "hello.txt").unwrap(),
        hello.as_bytes()
    );
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(ctx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_buildkitd_on_a_unix_socket() {
    let Some(w) = world("standalone_buildkitd_on_a_unix_socket") else {
        return;
    };
    let _g = REGISTRY_WRITES.read().await;
    let (sock, task) = unix_buildkitd(&w);
    let endpoint =
        Endpoint::from_setting(Some(&format!("unix://{}", sock.display())), None).unwrap();
    assert_eq!(endpoint, Endpoint::Unix(sock.clone()));
    build_through(&w, endpoint).await;
    task.abort();
    let _ = std::fs::remove_dir_all(sock.parent().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_buildkitd_over_tcp_with_mutual_tls() {
    let Some(w) = world("standalone_buildkitd_over_tcp_with_mutual_tls") else {
        return;
    };
    let _g = REGISTRY_WRITES.read().await;
    let pki = test_pki();
    let (address, seen, task) = tls_buildkitd(&w, &pki).await;
    let builder = format!("tcp://{address}");
    let good = TlsSettings {
        ca_cert: Some(pki.ca_pem.clone()),
        cert: Some(pki.client_cert_pem.clone()),
        key: Some(SecretString::new(pki.client_key_pem.clone())),
        server_name: Some("buildkitd.test".into()),
    };
    let endpoint = Endpoint::from_setting(Some(&builder), Some(&good)).unwrap();
    assert!(endpoint.to_string().ends_with("(TLS)"), "{endpoint}");
    build_through(&w, endpoint).await;
    {
        let handshakes = seen.handshakes.lock().unwrap();
        assert!(!handshakes.is_empty(), "no TLS connection was made");
        for h in handshakes.iter() {
            assert_eq!(
                h,
                &Ok(Some(b"h2".to_vec())),
                "every connection negotiates h2"
            );
        }
    }

    // Refusals, each a clear connection error rather than a hang or a panic.
    let spec = BuildSpec {
        context_dir: temp_dir(&[]),
        dockerfile: DockerfileSource::Inline("FROM scratch\n".into()),
        ..Default::default()
    };
    let other_ca = test_pki().ca_pem;
    let cases = [
        (
            "no client certificate",
            TlsSettings {
                cert: None,
                key: None,
                ..good.clone()
            },
            // The alert itself (CertificateRequired) may lose the race with a reset.
            "no client certificate was offered",
        ),
        (
            "an unknown CA",
            TlsSettings {
                ca_cert: Some(other_ca),
                ..good.clone()
            },
            "invalid peer certificate",
        ),
        (
            "the wrong server name",
            TlsSettings {
                server_name: Some("elsewhere.test".into()),
                ..good.clone()
            },
            "not valid for name \"elsewhere.test\"",
        ),
    ];
    for (what, tls, why) in cases {
        let endpoint = Endpoint::from_setting(Some(&builder), Some(&tls)).unwrap();
        let through = World {
            env: w.env.clone(),
            endpoint,
        };
        let started = Instant::now();
        let err = build_quietly(&through, &spec, Output::BuildOnly)
            .await
            .expect_err(what);
        assert!(
            matches!(err, BuildError::Connect { .. } | BuildError::Session { .. }),
            "{what}: {err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what}: took too long"
        );
        assert!(err.to_string().contains(why), "{what}: {err}");
        assert!(!err.to_string().contains("PRIVATE KEY"), "{what}: {err}");
        eprintln!("{what}: {err}");
    }
    task.abort();
}

//! BuildKit client: transports, session services, solve, progress.
//!
//! A thin async client of BuildKit's gRPC API (`bollard-buildkit-proto`),
//! without the docker CLI or buildx:
//!
//! - reaches BuildKit through the Docker Engine API (`POST /grpc` and
//!   `POST /session` upgraded to h2c; the Engine on a unix socket, TCP, TLS or ssh) or a
//!   standalone buildkitd (`unix://`, or `tcp://` in plain text or TLS,
//!   session through `Control.Session`);
//! - serves the session BuildKit calls back into: local directories
//!   (`FileSync/DiffCopy`), registry credentials (`Auth/Credentials`), secrets
//!   (`Secrets/GetSecret`) and health;
//! - solves with the Dockerfile frontend and, only for [`Output::Push`], the
//!   `image` exporter with `push=true,store=false` (pushed, not kept in the
//!   Engine's image store). [`Output::BuildOnly`] sends no
//!   exporter and no cache export, so nothing is written to any registry;
//!   [`Output::Export`] sends BuildKit's `exporters` list: the `image` exporter to push
//!   and/or load into the Engine's image store, and file exporters (`oci`, `docker`,
//!   `tar`, `local`) whose output BuildKit sends back through the session
//!   (`FileSend/DiffCopy`), written next to their destination and moved there once the
//!   solve has succeeded;
//! - forwards progress to a [`Logger`] and puts the failing step's last
//!   output lines into the error.

mod content;
mod engine_conn;
mod error;
mod filesend;
mod filesync;
mod progress;
mod session;
mod solve;
mod sources;
pub use cache::{
    backend, check_cache_entry, string_holds_secret, Backend, CacheEntry, CacheEntryError, BACKENDS,
};
mod cache;
mod classic;
pub use classic::{build_anywhere, LayoutPusher};
mod collect;
mod conns;
use crate::tls;
pub use crate::tls::{TlsError, TlsSettings};
pub use conns::probe;
// What a caller needs to name an Engine endpoint and to fill TLS settings.
pub use crate::docker::Engine;
pub use crate::secret::SecretString;
mod transport;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::Digest;
use tokio_util::sync::CancellationToken;

use crate::log::{Level, Logger};

/// Where BuildKit runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    /// BuildKit embedded in the Docker Engine, reached over its API (unix, TCP, TLS, ssh).
    DockerEngine(crate::docker::Engine),
    /// A standalone buildkitd listening on a unix socket.
    Unix(PathBuf),
    /// A standalone buildkitd listening on `host:port`, in plain text or, with `tls`, TLS.
    Tcp {
        /// `host:port`, without the scheme.
        address: String,
        /// Client TLS settings; `None` speaks plain text.
        tls: Option<TlsSettings>,
    },
}

#[cfg(test)]
const DEFAULT_DOCKER_SOCKET: &str = crate::docker::DEFAULT_SOCKET;

impl Endpoint {
    /// Parses a `builder` setting:
    ///
    /// - `None`, `""`, `"docker"` or `"default"`: the Docker Engine the docker CLI would
    ///   use (`DOCKER_HOST`, else the current Docker context, else
    ///   `/var/run/docker.sock`; see [`crate::docker`]);
    /// - `"docker+unix:///path"`: the Docker Engine at that socket;
    /// - `"docker+tcp://host:port"`: the Docker Engine over TCP, with TLS when `builderTls`
    ///   is set;
    /// - `"ssh://[user@]host[:port]"` (or `docker+ssh://`): the Docker Engine on that host,
    ///   through `ssh … docker system dial-stdio`;
    /// - `"unix:///path"`: a standalone buildkitd on that socket;
    /// - `"tcp://host:port"`: a standalone buildkitd over TCP, with TLS when `tls` is given
    ///   (only a `tcp://` builder takes it).
    pub fn from_setting(
        builder: Option<&str>,
        tls: Option<&TlsSettings>,
    ) -> Result<Self, InvalidSetting> {
        let endpoint = Self::parse(builder).map_err(InvalidSetting::Builder)?;
        match (endpoint, tls) {
            (Endpoint::Tcp { address, .. }, Some(t)) => {
                tls::client(t, &address).map_err(InvalidSetting::Tls)?;
                Ok(Endpoint::Tcp {
                    address,
                    tls: Some(t.clone()),
                })
            }
            (Endpoint::DockerEngine(mut e), Some(t)) if e.source == "builder" => {
                match &mut e.host {
                    crate::docker::DockerHost::Tcp { address, tls: slot } => {
                        tls::client(t, address).map_err(InvalidSetting::Tls)?;
                        *slot = Some(t.clone());
                        Ok(Endpoint::DockerEngine(e))
                    }
                    _ => Err(InvalidSetting::TlsNotTcp(
                        Endpoint::DockerEngine(e).to_string(),
                    )),
                }
            }
            (endpoint, Some(_)) => Err(InvalidSetting::TlsNotTcp(endpoint.to_string())),
            (Endpoint::DockerEngine(e), None) => {
                // TLS from DOCKER_CERT_PATH or a context's store: checked now, named by file.
                if let crate::docker::DockerHost::Tcp {
                    address,
                    tls: Some(t),
                } = &e.host
                {
                    tls::client(t, address).map_err(|x| {
                        InvalidSetting::Builder(format!(
                            "{e}: {}: {}",
                            crate::docker::tls_file_of(x.field),
                            x.reason("TLS")
                        ))
                    })?;
                }
                Ok(Endpoint::DockerEngine(e))
            }
            (endpoint, None) => Ok(endpoint),
        }
    }

    fn parse(builder: Option<&str>) -> Result<Self, String> {
        let b = builder.map(str::trim).unwrap_or("");
        match b {
            "" | "docker" | "default" => crate::docker::from_env()
                .map(Endpoint::DockerEngine)
                .map_err(|e| e.to_string()),
            _ => {
                let docker = b
                    .strip_prefix("docker+")
                    .or(b.strip_prefix("ssh://").map(|_| b));
                if let Some(host) = docker {
                    let host = crate::docker::DockerHost::parse(host, false)
                        .map_err(|e| format!("{b:?}: {e}"))?;
                    Ok(Endpoint::DockerEngine(crate::docker::Engine {
                        host,
                        source: "builder".into(),
                    }))
                } else if let Some(p) = b.strip_prefix("unix://").filter(|p| !p.is_empty()) {
                    Ok(Endpoint::Unix(PathBuf::from(p)))
                } else if let Some(a) = b.strip_prefix("tcp://").filter(|a| !a.is_empty()) {
                    Ok(Endpoint::Tcp {
                        address: a.trim_end_matches('/').to_string(),
                        tls: None,
                    })
                } else {
                    Err(format!(
                        "builder {b:?}: expected \"docker\", \"docker+unix:///path\", \
                         \"docker+tcp://host:port\", \"ssh://user@host\", \
                         \"unix:///path\" or \"tcp://host:port\""
                    ))
                }
            }
        }
    }
}

impl Endpoint {
    /// A Docker Engine's BuildKit (with the Engine's image store).
    pub fn is_engine(&self) -> bool {
        matches!(self, Endpoint::DockerEngine(_))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::DockerEngine(e) => write!(f, "Docker Engine at {e}"),
            Endpoint::Unix(p) => write!(f, "buildkitd at unix://{}", p.display()),
            Endpoint::Tcp { address, tls: None } => write!(f, "buildkitd at tcp://{address}"),
            Endpoint::Tcp {
                address,
                tls: Some(_),
            } => write!(f, "buildkitd at tcp://{address} (TLS)"),
        }
    }
}

/// A builder setting that cannot be used, and why. The caller names the properties (the
/// provider's `builder`/`builderTls`, a node's `endpoint`/`tls`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSetting {
    /// The endpoint string.
    #[error("builder: {0}")]
    Builder(String),
    /// TLS settings for an endpoint that is not `tcp://` (the endpoint, described).
    #[error(
        "tls: only a tcp:// or docker+tcp:// builder takes TLS settings, and the builder is the {0}"
    )]
    TlsNotTcp(String),
    /// A TLS field.
    #[error("{0}")]
    Tls(tls::TlsError),
}

impl InvalidSetting {
    /// The property at fault and why, with the endpoint's property named `endpoint` and the
    /// TLS settings' `tls` (`builders[0].tls.caCert`).
    pub fn describe(&self, endpoint: &str, tls: &str) -> (String, String) {
        match self {
            InvalidSetting::Builder(r) => (endpoint.to_owned(), r.clone()),
            InvalidSetting::TlsNotTcp(e) => (
                tls.to_owned(),
                format!(
                    "only a tcp:// or docker+tcp:// builder takes TLS settings, and the builder \
                     is the {e}"
                ),
            ),
            InvalidSetting::Tls(e) => (e.property(tls), e.reason(tls)),
        }
    }
}

/// Where the Dockerfile comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerfileSource {
    /// A file (relative paths are relative to the current directory).
    Path(PathBuf),
    /// The Dockerfile's text.
    Inline(String),
}

impl Default for DockerfileSource {
    fn default() -> Self {
        DockerfileSource::Path(PathBuf::from("Dockerfile"))
    }
}

/// Network mode for `RUN` steps (the resource's input type maps onto this one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// The builder's default network.
    #[default]
    Default,
    /// No network at all.
    None,
    /// The builder host's network (needs the `network.host` entitlement).
    Host,
}

/// What to build.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct BuildSpec {
    /// The local build context, served to BuildKit through the session.
    pub context_dir: PathBuf,
    /// A Git or HTTP(S) URL BuildKit fetches itself (the frontend's `context` attribute),
    /// as `docker buildx build <url>` passes it; `context_dir` then serves nothing. The
    /// Dockerfile comes from that context when `dockerfile` is an empty path.
    pub remote_context: Option<String>,
    /// The Dockerfile: a path or its text.
    pub dockerfile: DockerfileSource,
    /// Replaces `.dockerignore` / `<Dockerfile>.dockerignore`.
    pub ignore_file: Option<PathBuf>,
    /// `name` -> a local directory, or a `docker-image://`, `oci-layout://`,
    /// `https://`, `git://`-style source or `target:<stage>`.
    pub named_contexts: BTreeMap<String, String>,
    /// e.g. `linux/amd64`; empty = BuildKit's own platform.
    pub platforms: Vec<String>,
    /// `ARG` values (`--build-arg`).
    pub build_args: BTreeMap<String, String>,
    /// The stage to build; `None` builds the last one.
    pub target: Option<String>,
    /// Labels added to the image config.
    pub labels: BTreeMap<String, String>,
    /// Ignore BuildKit's cache for every step.
    pub no_cache: bool,
    /// Always pull base images (`image-resolve-mode=pull`).
    pub pull: bool,
    /// `RUN` network.
    pub network: Option<NetworkMode>,
    /// Extra `/etc/hosts` entries for `RUN` steps.
    pub add_hosts: Vec<(String, std::net::IpAddr)>,
    /// Secrets for `RUN --mount=type=secret,id=...`; never logged.
    pub secrets: BTreeMap<String, Vec<u8>>,
    /// SSH agent sockets for `RUN --mount=type=ssh,id=...` (`default` without an id).
    pub ssh: BTreeMap<String, PathBuf>,
    /// Cache imports (credentials print as `***`).
    pub cache_from: Vec<CacheEntry>,
    /// Cache exports (ignored for [`Output::BuildOnly`]).
    pub cache_to: Vec<CacheEntry>,
    /// Attach a provenance attestation (`mode=min`).
    pub provenance: bool,
    /// Attach an SBOM attestation.
    pub sbom: bool,
    /// The SBOM generator image (default: BuildKit's, `docker/buildkit-syft-scanner`).
    pub sbom_generator: Option<String>,
}

impl fmt::Debug for BuildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuildSpec")
            .field("context_dir", &self.context_dir)
            .field("remote_context", &self.remote_context)
            .field("dockerfile", &self.dockerfile)
            .field("ignore_file", &self.ignore_file)
            .field("named_contexts", &self.named_contexts)
            .field("platforms", &self.platforms)
            .field("build_args", &self.build_args)
            .field("target", &self.target)
            .field("labels", &self.labels)
            .field("no_cache", &self.no_cache)
            .field("pull", &self.pull)
            .field("network", &self.network)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("cache_from", &self.cache_from)
            .field("cache_to", &self.cache_to)
            .field("provenance", &self.provenance)
            .field("sbom", &self.sbom)
            .field("sbom_generator", &self.sbom_generator)
            .finish()
    }
}

/// What happens to the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Build only (preview): no exporter, no cache export; nothing is
    /// written to any registry.
    BuildOnly,
    /// Push the image (an index when several platforms) under these tags.
    Push {
        /// Fully qualified references (`registry/repo:tag`).
        tags: Vec<String>,
    },
    /// Push the image (an index when several platforms or attestations) to `repository`
    /// by digest only, under no tag: one node's share of a multi-node build.
    PushByDigest {
        /// `registry/repo`, without a tag.
        repository: String,
    },
    /// Any mix of push, load and file exports in one solve; all empty: a cache-only build
    /// (the cache exports run, no image is exported).
    Export(Exports),
}

/// What [`Output::Export`] exports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exports {
    /// Push under these tags (empty: no push).
    pub push: Vec<String>,
    /// Load into the Engine's image store under these tags (empty: no load).
    pub load: Vec<String>,
    /// The image's names in `oci` and `docker` tarballs (what `docker load` tags).
    pub names: Vec<String>,
    /// Exports written to the provider's file system, in this order.
    pub files: Vec<FileExport>,
}

/// An export to the provider's file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileExport {
    /// An OCI image layout: a tarball, or with `tar: false` a directory.
    Oci {
        /// The tarball or directory written.
        dest: PathBuf,
        /// A tarball (`true`) or a layout directory (`false`).
        tar: bool,
    },
    /// A Docker image tarball (`docker load`).
    Docker {
        /// The tarball written.
        dest: PathBuf,
    },
    /// The image's file system as a tarball.
    Tar {
        /// The tarball written.
        dest: PathBuf,
    },
    /// The image's file system into a directory.
    Local {
        /// The directory written.
        dest: PathBuf,
    },
}

/// Registry credentials BuildKit asks for during the build (pulls, pushes,
/// cache). `host` is the registry host as BuildKit names it, e.g.
/// `123456789012.dkr.ecr.us-east-1.amazonaws.com` or `127.0.0.1:5000`.
#[async_trait::async_trait]
pub trait RegistryAuth: Send + Sync {
    /// `(username, password)`, or `None` for anonymous access.
    async fn basic(&self, host: &str) -> Option<(String, String)>;
}

/// No credentials for any registry.
pub struct Anonymous;

#[async_trait::async_trait]
impl RegistryAuth for Anonymous {
    async fn basic(&self, _host: &str) -> Option<(String, String)> {
        None
    }
}

/// The result of a successful build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOutcome {
    /// The pushed image's digest (the index digest for several platforms);
    /// `None` for a build-only run.
    pub digest: Option<String>,
    /// What the file and directory exports wrote, in their order.
    pub exported: Vec<Written>,
}

use error::lost;
pub use error::{BuildError, SolveFailure};
pub use filesend::Written;

/// Aborts the task when dropped.
pub(crate) struct AbortOnDrop<T>(pub tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Builds `spec` with BuildKit at `endpoint` and, for [`Output::Push`],
/// pushes it. Cancelling `cancel` abandons the solve and the session
/// (BuildKit stops the build when the call goes away).
pub async fn build(
    endpoint: &Endpoint,
    spec: &BuildSpec,
    output: Output,
    auth: Arc<dyn RegistryAuth>,
    log: Arc<dyn Logger>,
    cancel: CancellationToken,
) -> Result<BuildOutcome, BuildError> {
    let via = transport::SessionVia::default_for(endpoint);
    match output {
        Output::Export(x) if !x.load.is_empty() && !endpoint.is_engine() => {
            build_and_load(endpoint, via, spec, x, auth, log, cancel).await
        }
        output => build_via(endpoint, via, spec, output, auth, log, cancel, false).await,
    }
}

/// `load` on a standalone buildkitd, which has no image store the local Engine runs from:
/// the result comes back as one more export, an OCI archive in a private temporary
/// directory, which the Engine at `DOCKER_HOST` (or `/var/run/docker.sock`) then loads
/// through `POST /images/load` (every platform, with its containerd image store).
async fn build_and_load(
    endpoint: &Endpoint,
    via: transport::SessionVia,
    spec: &BuildSpec,
    mut x: Exports,
    auth: Arc<dyn RegistryAuth>,
    log: Arc<dyn Logger>,
    cancel: CancellationToken,
) -> Result<BuildOutcome, BuildError> {
    let engine = match Endpoint::from_setting(None, None) {
        Ok(Endpoint::DockerEngine(e)) if e.socket().is_none_or(|s| s.exists()) => e,
        Ok(e) => {
            return Err(BuildError::Invalid(format!(
                "load: the build runs on the {endpoint}, and there is no Docker Engine to load \
                 the result into ({e} is absent)"
            )))
        }
        Err(e) => {
            return Err(BuildError::Invalid(format!(
                "load: the build runs on the {endpoint}, and there is no Docker Engine to load \
                 the result into: {e}"
            )))
        }
    };
    let dir = tempfile::Builder::new()
        .prefix("multiarch-load-")
        .tempdir()
        .map_err(|e| BuildError::Invalid(format!("load: a temporary directory: {e}")))?;
    let tar = dir.path().join("image.tar");
    let tags = std::mem::take(&mut x.load);
    if x.names.is_empty() {
        x.names = tags.clone();
    }
    x.files.push(FileExport::Oci {
        dest: tar.clone(),
        tar: true,
    });
    let mut outcome = build_via(
        endpoint,
        via,
        spec,
        Output::Export(x),
        auth,
        log.clone(),
        cancel.clone(),
        false,
    )
    .await?;
    outcome.exported.pop();
    let engine_name = Endpoint::DockerEngine(engine.clone()).to_string();
    log.info(&format!(
        "loading {} into the {engine_name}",
        tags.join(", ")
    ));
    let load = transport::engine_load(&engine, &tar);
    let loaded = tokio::select! {
        biased;
        _ = cancel.cancelled() => return Err(BuildError::Cancelled { endpoint: engine_name }),
        r = load => r,
    }
    .map_err(|detail| BuildError::Protocol {
        endpoint: engine_name.clone(),
        detail: format!("loading the image: {detail}"),
    })?;
    for l in loaded {
        log.log(Level::Debug, &l);
    }
    Ok(outcome)
}

/// The pieces of one solve, handed to [`run`].
struct Job {
    meta: transport::SessionMeta,
    services: session::SessionServices,
    request: bollard_buildkit_proto::moby::buildkit::v1::SolveRequest,
    build_ref: String,
    push: bool,
    exports: filesend::Receipts,
    /// Local cache exports whose index.json names the cache once the solve is done.
    cache_indexes: Vec<solve::CacheIndex>,
    /// OCI layout exports by exporter index, named in their index.json afterwards.
    layouts: BTreeMap<u32, PathBuf>,
    /// The exporter index of each file export, in their order.
    file_order: Vec<u32>,
}

#[allow(clippy::too_many_arguments)]
async fn build_via(
    endpoint: &Endpoint,
    via: transport::SessionVia,
    spec: &BuildSpec,
    output: Output,
    auth: Arc<dyn RegistryAuth>,
    log: Arc<dyn Logger>,
    cancel: CancellationToken,
    moby: bool,
) -> Result<BuildOutcome, BuildError> {
    let session_id = new_id();
    let build_ref = new_id();
    let mut prepared = solve::prepare(spec, &output, &session_id, &build_ref)?;
    if moby {
        // A classic-store Engine: its `moby` exporter loads what `image` would have.
        classic::use_moby_exporter(&mut prepared.request);
    }
    let exports = filesend::Receipts::new(prepared.targets);
    for w in &prepared.warnings {
        log.warn(w);
    }
    if matches!(output, Output::BuildOnly) && !spec.cache_to.is_empty() {
        log.info("build only: cache export skipped");
    }
    let shared_key = {
        let ctx = std::fs::canonicalize(&spec.context_dir).unwrap_or(spec.context_dir.clone());
        hex::encode(sha2::Sha256::digest(ctx.to_string_lossy().as_bytes()))[..32].to_string()
    };
    let job = Job {
        meta: transport::SessionMeta {
            id: session_id,
            name: "multiarch".into(),
            shared_key,
        },
        services: session::SessionServices {
            dirs: prepared.dirs,
            auth,
            secrets: spec.secrets.clone(),
            ssh: spec.ssh.clone(),
            exports: exports.clone(),
            content: prepared.stores,
        },
        request: prepared.request,
        build_ref,
        // The image exporter answers with the digest; file exports and a cache-only build
        // may not.
        push: match &output {
            Output::BuildOnly => false,
            Output::Export(x) => (!x.push.is_empty() || !x.load.is_empty()) && !moby,
            _ => true,
        },
        exports,
        cache_indexes: prepared.cache_indexes,
        layouts: prepared.layouts,
        file_order: prepared.file_order,
    };
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(BuildError::Cancelled { endpoint: endpoint.to_string() }),
        r = run(endpoint, via, job, log) => r,
    }
}

async fn run(
    endpoint: &Endpoint,
    via: transport::SessionVia,
    job: Job,
    log: Arc<dyn Logger>,
) -> Result<BuildOutcome, BuildError> {
    let Job {
        meta,
        services,
        request,
        build_ref,
        push,
        exports,
        cache_indexes,
        layouts,
        file_order,
    } = job;
    let ep = endpoint.to_string();
    log.log(Level::Debug, &format!("connecting to BuildKit ({ep})"));
    let control = conns::control(endpoint)
        .await
        .map_err(|detail| BuildError::Connect {
            endpoint: ep.clone(),
            detail,
        })?;
    let _session = transport::start_session(endpoint, via, &control, &meta, services)
        .await
        .map_err(|detail| BuildError::Session {
            endpoint: ep.clone(),
            detail,
        })?;
    let state = Arc::new(std::sync::Mutex::new(progress::Progress::default()));
    let mut status = AbortOnDrop(tokio::spawn(progress::follow(
        control.clone(),
        build_ref,
        log.clone(),
        state.clone(),
    )));
    let solved = control.clone().solve(request).await;
    // BuildKit answers a finished solve only once the build's record is written, which on a
    // busy node can be seconds after its push (measured with scripts/stack_timeline.py); by
    // then its status stream has ended. These two lines time that (stderr at -v=9).
    tracing::debug!(ok = solved.is_ok(), "{ep}: the solve answered");
    // let the status stream deliver its last updates (the failing step's logs)
    let _ = tokio::time::timeout(Duration::from_secs(3), &mut status.0).await;
    tracing::debug!("{ep}: status followed");
    match solved {
        Ok(resp) => {
            let resp = resp.into_inner().exporter_response;
            let written = collect::Collected {
                exports,
                cache_indexes,
                layouts,
                file_order,
            };
            collect::finish(ep, resp, push, written, log.as_ref()).await
        }
        Err(status) if lost(&status) => {
            conns::forget(endpoint);
            Err(BuildError::Lost {
                endpoint: ep,
                detail: transport::status_chain(&status),
            })
        }
        Err(status) => {
            let detail = state.lock().unwrap_or_else(|p| p.into_inner()).failure();
            let message = status.message().trim().to_string();
            let message = if message.is_empty() {
                format!("{:?}", status.code())
            } else {
                message
            };
            Err(BuildError::Solve {
                endpoint: ep,
                kind: SolveFailure::of(&message),
                message,
                step: detail.step,
                log_tail: detail.log_tail,
            })
        }
    }
}

#[cfg(test)]
mod tests;

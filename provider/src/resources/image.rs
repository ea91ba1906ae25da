//! `multiarch:index:Image`: builds a Dockerfile through BuildKit for a set of platforms and
//! pushes the resulting index under a set of tags.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use std::path::PathBuf;

use super::{
    tags, Applied, Change, Error, Failure, OpContext, PropertyPath, Resource, UnknownOutputs,
};
pub use crate::buildkit::NetworkMode;
use std::sync::Arc;

use oci_client::Reference;
use serde_json::{Map, Value as Json};

use super::cache::{self, CacheFromEntry, CacheToEntry};
use super::manifest_list::assemble_index;
use super::ports::Node;
use crate::buildkit::{
    BuildOutcome, BuildSpec, CacheEntry, DockerfileSource, Exports, FileExport, Output,
};
use crate::config::SecretString;
use crate::context;
use crate::log::{Level, Logger};
use crate::platform::{self, Platform};
use crate::reference::{parse_qualified, parse_tag, repository_of};
use crate::registry::manifest::{IndexEntry, RawManifest};
use crate::registry::{manifest, CopyChild};
use crate::remote_context;

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// Where the build context comes from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BuildContext {
    /// A local directory (relative to the program's directory), or a remote context that
    /// BuildKit fetches itself, as `docker buildx build <url>` takes it: a Git repository
    /// (`https://host/org/app.git`, `ssh://git@host/org/app.git`, `git@host:org/app.git`,
    /// `git://…`; `#<ref>`, `#<ref>:<subdir>` or `#:<subdir>` pick a branch, tag or commit
    /// and a directory; the Dockerfile comes from there unless `dockerfile` is set) or an
    /// HTTP(S) tarball. contextHash: for Git the commit the ref resolves to now (`git
    /// ls-remote`, read-only) and the subdirectory, so a moved branch is an update; for a
    /// tarball the SHA-256 of its bytes. SSH URLs need an `ssh` entry with id `default`;
    /// URLs holding credentials or query options are refused at Check.
    pub location: String,
    /// Extra named contexts (`FROM <name>` / `COPY --from=<name>`): name to directory,
    /// URL or `docker-image://` reference.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub named: BTreeMap<String, String>,
}

/// The Dockerfile: a path or inline text (exactly one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dockerfile {
    /// Path to the Dockerfile (default `<context>/Dockerfile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The Dockerfile's contents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<String>,
}

/// An SSH agent for `RUN --mount=type=ssh,id=<id>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SshAgent {
    /// The id `RUN --mount=type=ssh,id=…` names (`default` when the mount names none).
    pub id: String,
    /// The agent's socket; the first that exists is used. Default: `SSH_AUTH_SOCK` of the
    /// provider's environment. (Key files are not loaded: add them to an agent.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}

/// An OCI image layout of the result (all platforms, as one index).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportOci {
    /// The file to write (with `tar: false`, the directory).
    pub dest: String,
    /// A tarball (`oci-archive`); `false`: an OCI image layout directory (`oci:<dest>`:
    /// blobs, `index.json` naming the image by `tags` or `latest`). One per image.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    #[schemars(extend("default" = true))]
    pub tar: bool,
}

/// A Docker image tarball of the result, as `docker load` takes it, named by `tags`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportDocker {
    /// The file to write.
    pub dest: String,
}

/// The result's file system as a tarball (several platforms: one top-level directory
/// each, e.g. `linux_amd64/`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportTar {
    /// The file to write.
    pub dest: String,
}

/// The result's file system into a directory (several platforms: one subdirectory each,
/// e.g. `linux_amd64/`). An existing directory keeps its other entries; each top-level
/// entry of the export replaces the one of the same name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportLocal {
    /// The directory to write.
    pub dest: String,
}

/// Build and export the cache (`cacheTo`) only: no image is exported anywhere.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportCacheOnly {}

/// One export of the result besides the registry push: set exactly one field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Export {
    /// An OCI image layout: a tarball, or with `tar: false` a directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci: Option<ExportOci>,
    /// A Docker image tarball.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<ExportDocker>,
    /// The file system as a tarball.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tar: Option<ExportTar>,
    /// The file system into a directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<ExportLocal>,
    /// The cache only (with `cacheTo`, `push: false`, no other export and no `load`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cacheonly: Option<ExportCacheOnly>,
}

impl Export {
    /// The variants set, as `(name, dest)` (`cacheonly` has no dest).
    fn variants(&self) -> Vec<(&'static str, Option<&str>)> {
        let mut v = Vec::new();
        if let Some(e) = &self.oci {
            v.push(("oci", Some(e.dest.as_str())));
        }
        if let Some(e) = &self.docker {
            v.push(("docker", Some(e.dest.as_str())));
        }
        if let Some(e) = &self.tar {
            v.push(("tar", Some(e.dest.as_str())));
        }
        if let Some(e) = &self.local {
            v.push(("local", Some(e.dest.as_str())));
        }
        if self.cacheonly.is_some() {
            v.push(("cacheonly", None));
        }
        v
    }

    /// Whether the export writes a directory (else a file).
    fn is_dir(&self) -> bool {
        self.local.is_some() || self.oci.as_ref().is_some_and(|o| !o.tar)
    }

    /// The BuildKit side of the export; `None` for `cacheonly`.
    fn file_export(&self) -> Option<FileExport> {
        let p = |d: &str| PathBuf::from(d);
        if let Some(e) = &self.oci {
            return Some(FileExport::Oci {
                dest: p(&e.dest),
                tar: e.tar,
            });
        }
        if let Some(e) = &self.docker {
            return Some(FileExport::Docker { dest: p(&e.dest) });
        }
        if let Some(e) = &self.tar {
            return Some(FileExport::Tar { dest: p(&e.dest) });
        }
        self.local
            .as_ref()
            .map(|e| FileExport::Local { dest: p(&e.dest) })
    }
}

/// What one file or directory export wrote.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportedArtifact {
    /// The export's kind: `oci`, `docker`, `tar` or `local`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The file or directory written, as `exports` names it.
    pub dest: String,
    /// `sha256:<hex>` of the written file's bytes (what `sha256sum` prints); absent for a
    /// directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageInputs {
    /// The build context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<BuildContext>,
    /// The Dockerfile (default `Dockerfile` in the context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<Dockerfile>,
    /// Platforms to build, e.g. `linux/amd64`, `linux/arm64`. Compared as a set after
    /// normalization (`aarch64` = `arm64`).
    #[serde(default)]
    #[schemars(extend("x-set" = true))]
    pub platforms: Vec<String>,
    /// Fully qualified references to push to. Compared as a set.
    #[serde(default)]
    #[schemars(extend("x-set" = true))]
    pub tags: Vec<String>,
    /// Push the result to `tags` (never during preview). This is the only way to push:
    /// `exports` writes files and directories, `load` the Engine's image store.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    #[schemars(extend("default" = true))]
    pub push: bool,
    /// Load the result into the builder Docker Engine's image store under `tags` (all
    /// platforms, with the Engine's containerd image store), as `docker buildx build
    /// --load` does. With a standalone buildkitd builder the result comes back as an OCI
    /// archive which the Docker Engine at the provider's `DOCKER_HOST` loads. Never during
    /// preview. Refresh and delete leave the Engine's images alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub load: bool,
    /// Exports to the provider's file system (besides `push`, in the same build): each
    /// entry sets exactly one of `oci`, `docker`, `tar`, `local`, or `cacheonly`.
    /// Relative `dest` paths are relative to the program's directory; a file appears only
    /// once the whole build has succeeded (written next to it, then renamed). Never during
    /// preview. These are local artefacts: refresh does not look at them and delete
    /// leaves them in place.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exports: Vec<Export>,
    /// Build arguments (`ARG`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub build_args: BTreeMap<String, String>,
    /// The Dockerfile stage to build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Image labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Build secrets by id, for `RUN --mount=type=secret,id=<id>`. Never stored in the image.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretString>,
    /// SSH agents the build may use (`RUN --mount=type=ssh`), served through the BuildKit
    /// session like secrets; nothing of the agent ends up in the image. Compared as a set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-set" = true))]
    pub ssh: Vec<SshAgent>,
    /// Cache sources: buildx strings, e.g. `type=registry,ref=<repo>:cache` or a bare ref,
    /// or (Pulumi) typed entries, e.g. `{registry: {ref: "<repo>:cache"}}`; Terraform takes
    /// the strings. With several build nodes each node reads its own registry cache:
    /// `<repo>:cache-linux-arm64`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cache_from: Vec<CacheFromEntry>,
    /// Cache exports: buildx strings, e.g. `type=registry,ref=<repo>:cache,mode=max`, or
    /// (Pulumi) typed entries, e.g. `{registry: {ref: "<repo>:cache", mode: "max"}}`;
    /// Terraform takes the strings. ECR hosts get `image-manifest=true,oci-mediatypes=true`
    /// unless the entry sets them. With several build nodes each node writes its own registry
    /// cache, the ref's tag suffixed with its platforms (`<repo>:cache` ->
    /// `<repo>:cache-linux-arm64`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cache_to: Vec<CacheToEntry>,
    /// Do not use the build cache.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_cache: bool,
    /// Always look for newer base images.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pull: bool,
    /// Extra `/etc/hosts` entries for `RUN` steps, `host:ip` as `docker build --add-host`
    /// takes them (e.g. `db.internal:10.0.0.5`, `v6.internal:fd00::1`). Compared as a set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-set" = true))]
    pub add_hosts: Vec<String>,
    /// Network mode for `RUN` steps: `default`, `none` or `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkMode>,
    /// Build during preview (without exporting) so Dockerfile errors show before `up`.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    #[schemars(extend("default" = true))]
    pub build_on_preview: bool,
    /// Attach a provenance attestation (adds `unknown/unknown` entries to the index).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub provenance: bool,
    /// Attach an SBOM attestation (SPDX, one per platform, as `unknown/unknown` entries).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sbom: bool,
    /// The SBOM generator image (BuildKit's SBOM scanning protocol) when `sbom` is true;
    /// default `docker/buildkit-syft-scanner`. Set it to a mirror in your own registry where
    /// Docker Hub is out of reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom_generator: Option<String>,
    /// Arbitrary values; changing any of them rebuilds the image.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub triggers: BTreeMap<String, String>,
    /// Leave the tags in the registry when the resource is deleted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_remotely: bool,
}

/// A platform entry of the pushed index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlatformManifest {
    /// Normalized platform, e.g. `linux/arm64`.
    pub platform: String,
    /// Digest of the platform's image manifest, as the registry holds it.
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageState {
    #[serde(flatten)]
    pub inputs: ImageInputs,
    /// Digest of the pushed index (empty when `push` is false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-output" = "always"))]
    pub digest: Option<String>,
    /// `repository@digest` of the first tag (empty when `push` is false).
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-output" = "always"))]
    pub reference: Option<String>,
    /// One entry per platform.
    #[serde(default)]
    #[schemars(extend("x-output" = "always"))]
    pub manifests: Vec<PlatformManifest>,
    /// SHA-256 over the Dockerfile and the files the context sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-output" = "always"))]
    pub context_hash: Option<String>,
    /// What the `exports` wrote, in their order (`cacheonly` writes nothing here).
    #[serde(default)]
    #[schemars(extend("x-output" = "always"))]
    pub exported: Vec<ExportedArtifact>,
}

impl ImageState {
    /// Imported from its registry and not built here since: nothing records what it was
    /// built from. The first update takes the program's build inputs on trust, recording
    /// them and the context's hash without building (see [`adopt`]).
    fn adopted(&self) -> bool {
        self.context_hash.is_none() && self.digest.as_deref().is_some_and(|d| !d.is_empty())
    }
}

pub struct Image;

/// The agent socket of an `ssh` entry: the first of its paths that is a socket, or
/// `SSH_AUTH_SOCK`. The error names the failing field (`.paths[1]`, `.paths`).
fn agent_socket(agent: &SshAgent) -> Result<PathBuf, (String, String)> {
    use std::os::unix::fs::FileTypeExt;
    let is_socket = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket());
    if agent.paths.is_empty() {
        return match std::env::var_os("SSH_AUTH_SOCK") {
            Some(s) if is_socket(Path::new(&s)) => Ok(PathBuf::from(s)),
            Some(s) => Err((
                ".paths".into(),
                format!(
                    "SSH_AUTH_SOCK ({}) is not a socket; start an agent or give paths",
                    Path::new(&s).display()
                ),
            )),
            None => Err((
                ".paths".into(),
                "no paths and no SSH_AUTH_SOCK in the provider's environment".into(),
            )),
        };
    }
    for p in &agent.paths {
        if is_socket(Path::new(p)) {
            return Ok(PathBuf::from(p));
        }
    }
    let i = agent.paths.len() - 1;
    let last = &agent.paths[i];
    let why = if Path::new(last).is_file() {
        "is a file; only agent sockets are supported (ssh-add the key to an agent)"
    } else {
        "is not an SSH agent socket"
    };
    Err((format!(".paths[{i}]"), format!("{last:?} {why}")))
}

/// `host:ip` (the IP may be IPv6 and hold colons itself) as a host name and an address.
fn parse_add_host(entry: &str) -> Result<(String, std::net::IpAddr), String> {
    let Some((host, ip)) = entry.split_once(':') else {
        return Err(format!(
            "{entry:?} is not host:ip, e.g. db.internal:10.0.0.5"
        ));
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if !host_ok {
        return Err(format!(
            "{host:?} is not a host name (letters, digits, '-', '.', '_')"
        ));
    }
    let ip = ip
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| format!("{ip:?} is not an IPv4 or IPv6 address"))?;
    Ok((host.to_owned(), ip))
}

/// The `exports` entries' failures: one variant each, a usable `dest` (its directory
/// exists, no two exports write the same), `cacheonly` alone.
fn check_exports(inputs: &ImageInputs, cache_known: bool) -> Vec<Failure> {
    let mut failures = Vec::new();
    let mut dests: BTreeMap<PathBuf, usize> = BTreeMap::new();
    let mut layout_dir = None;
    for (i, e) in inputs.exports.iter().enumerate() {
        let variants = e.variants();
        let [(kind, dest)] = variants.as_slice() else {
            let set: Vec<&str> = variants.iter().map(|v| v.0).collect();
            let what = if set.is_empty() {
                "none is set".to_owned()
            } else {
                format!("{} are set", set.join(", "))
            };
            failures.push(Failure::new(
                format!("exports[{i}]"),
                format!("set exactly one of oci, docker, tar, local, cacheonly; {what}"),
            ));
            continue;
        };
        let Some(dest) = dest else {
            let others = inputs.exports.len() > 1 || inputs.push || inputs.load;
            if others {
                failures.push(Failure::new(
                    format!("exports[{i}].cacheonly"),
                    "cannot be combined with other exports, push or load (set push: false)",
                ));
            }
            if inputs.cache_to.is_empty() && cache_known {
                failures.push(Failure::new(
                    format!("exports[{i}].cacheonly"),
                    "exports nothing without cacheTo",
                ));
            }
            continue;
        };
        if e.oci.as_ref().is_some_and(|o| !o.tar) {
            if let Some(j) = layout_dir {
                failures.push(Failure::new(
                    format!("exports[{i}].oci.tar"),
                    format!(
                        "exports[{j}] already writes an OCI layout directory; a build writes \
                         one (BuildKit has one export store per build)"
                    ),
                ));
            }
            layout_dir = Some(i);
        }
        if *kind == "docker" && inputs.platforms.len() > 1 {
            failures.push(Failure::new(
                format!("exports[{i}].docker"),
                "a Docker tarball holds one platform (BuildKit's docker exporter refuses \
                 manifest lists); use oci for several, which `docker load` takes too with \
                 the containerd image store",
            ));
        }
        let field = format!("exports[{i}].{kind}.dest");
        if dest.trim().is_empty() {
            failures.push(Failure::new(field, "must not be empty"));
            continue;
        }
        let path = Path::new(dest);
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if path.file_name().is_none() {
            failures.push(Failure::new(
                field,
                format!("{dest:?} does not name a file or directory"),
            ));
            continue;
        }
        if !parent.is_dir() {
            failures.push(Failure::new(
                field,
                format!("{:?} is not an existing directory", parent.display()),
            ));
            continue;
        }
        if e.is_dir() {
            if path.exists() && !path.is_dir() {
                failures.push(Failure::new(
                    field,
                    format!("{dest:?} exists and is not a directory"),
                ));
                continue;
            }
        } else if path.is_dir() {
            failures.push(Failure::new(
                field,
                format!("{dest:?} is a directory; this export writes a file"),
            ));
            continue;
        }
        // The same place however it is spelt (`./a.tar`, `a.tar`, `dir//a.tar`).
        let key: PathBuf = std::fs::canonicalize(parent)
            .unwrap_or_else(|_| parent.to_path_buf())
            .join(path.file_name().unwrap_or_default());
        if let Some(j) = dests.insert(key, i) {
            failures.push(Failure::new(
                field,
                format!("{dest:?} is also written by exports[{j}]"),
            ));
        }
    }
    failures
}

fn is_url(s: &str) -> bool {
    remote_context::is_remote(s)
}

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

    fn check(inputs: &ImageInputs, unknown: &BTreeSet<PropertyPath>) -> Vec<Failure> {
        let mut failures = Vec::new();
        let unknown_root = |r: &str| unknown.iter().any(|p| p.root() == Some(r));
        let context = inputs.context.as_ref().map(|c| c.location.as_str());
        match context {
            Some(loc) if is_url(loc) => failures.extend(
                remote_context::check(loc, inputs.ssh.iter().map(|a| a.id.as_str()))
                    .map(|reason| Failure::new("context.location", reason)),
            ),
            Some(loc) if !Path::new(loc).is_dir() => failures.push(Failure::new(
                "context.location",
                format!("{loc:?} is not a directory"),
            )),
            _ => {}
        }
        if let Some(df) = &inputs.dockerfile {
            match (&df.location, &df.inline) {
                (Some(_), Some(_)) => failures.push(Failure::new(
                    "dockerfile",
                    "set either location or inline, not both",
                )),
                (Some(loc), None) if !Path::new(loc).is_file() => failures.push(Failure::new(
                    "dockerfile.location",
                    format!("{loc:?} is not a file"),
                )),
                _ => {}
            }
        }
        let inline = inputs
            .dockerfile
            .as_ref()
            .is_some_and(|d| d.inline.is_some());
        let located = inputs
            .dockerfile
            .as_ref()
            .is_some_and(|d| d.location.is_some());
        if !inline && !located && !unknown_root("dockerfile") {
            match context {
                Some(loc)
                    if !is_url(loc)
                        && Path::new(loc).is_dir()
                        && !Path::new(loc).join("Dockerfile").is_file() =>
                {
                    failures.push(Failure::new(
                        "dockerfile",
                        format!("no Dockerfile in {loc:?}; set dockerfile.location or dockerfile.inline"),
                    ));
                }
                None if !unknown_root("context") => failures.push(Failure::new(
                    "dockerfile",
                    "without a context, dockerfile.inline is required",
                )),
                _ => {}
            }
        }
        let mut seen = BTreeMap::new();
        for (i, p) in inputs.platforms.iter().enumerate() {
            match platform::normalize(p) {
                Err(e) => failures.push(Failure::new(format!("platforms[{i}]"), e.to_string())),
                Ok(n) => {
                    if let Some(j) = seen.insert(n.clone(), i) {
                        failures.push(Failure::new(
                            format!("platforms[{i}]"),
                            format!("{p:?} is the same platform as platforms[{j}] ({n})"),
                        ));
                    }
                }
            }
        }
        for (i, t) in inputs.tags.iter().enumerate() {
            if let Err(e) = parse_tag(t) {
                failures.push(Failure::new(format!("tags[{i}]"), e));
            }
        }
        if let Some(g) = &inputs.sbom_generator {
            if !inputs.sbom {
                failures.push(Failure::new(
                    "sbomGenerator",
                    "is only used with sbom: true (set sbom, or remove sbomGenerator)",
                ));
            }
            if let Err(e) = parse_qualified(g) {
                failures.push(Failure::new("sbomGenerator", e));
            }
        }
        if !unknown_root("cacheFrom") {
            failures.extend(cache::failures(&inputs.cache_from));
        }
        if !unknown_root("cacheTo") {
            failures.extend(cache::failures(&inputs.cache_to));
        }
        if let Some(text) = inputs.dockerfile.as_ref().and_then(|d| d.inline.as_ref()) {
            if text.contains('\0') {
                failures.push(Failure::new(
                    "dockerfile.inline",
                    "contains a NUL byte; a Dockerfile is text",
                ));
            }
        }
        for (name, map) in [
            ("buildArgs", &inputs.build_args),
            ("labels", &inputs.labels),
        ] {
            for (k, v) in map.iter() {
                if k.is_empty() || k.contains(['=', '\0']) || v.contains('\0') {
                    failures.push(Failure::new(
                        format!("{name}[{k:?}]"),
                        "names must be non-empty without '=' or NUL, values without NUL",
                    ));
                }
            }
        }
        let mut ids = BTreeMap::new();
        for (i, agent) in inputs.ssh.iter().enumerate() {
            if let Some(j) = ids.insert(agent.id.as_str(), i) {
                failures.push(Failure::new(
                    format!("ssh[{i}].id"),
                    format!("{:?} is already used by ssh[{j}]", agent.id),
                ));
            }
            if agent.id.is_empty() || agent.id.contains([',', '=', '\0']) {
                failures.push(Failure::new(
                    format!("ssh[{i}].id"),
                    "must be non-empty, without ',', '=' or NUL (e.g. default)",
                ));
            }
            if let Err((field, reason)) = agent_socket(agent) {
                failures.push(Failure::new(format!("ssh[{i}]{field}"), reason));
            }
        }
        for (i, entry) in inputs.add_hosts.iter().enumerate() {
            if let Err(reason) = parse_add_host(entry) {
                failures.push(Failure::new(format!("addHosts[{i}]"), reason));
            }
        }
        if inputs.push && inputs.tags.is_empty() && !unknown_root("tags") {
            failures.push(Failure::new("tags", "push is true but no tags are given"));
        }
        if inputs.load && inputs.tags.is_empty() && !unknown_root("tags") {
            failures.push(Failure::new(
                "load",
                "load needs tags: the names the image gets in the Engine's image store",
            ));
        }
        if !unknown_root("exports") {
            failures.extend(check_exports(inputs, !unknown_root("cacheTo")));
        }
        failures
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
        match hash_context(ctx, news).await {
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
        build_and_push(ctx, id, inputs, &[]).await
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        state: Option<ImageState>,
    ) -> Result<Option<(String, ImageState)>, Error> {
        let Some(state) = state else {
            return import(ctx, id).await;
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
        let same_platforms = |a: &[String], b: &[String]| {
            a.iter().collect::<BTreeSet<_>>() == b.iter().collect::<BTreeSet<_>>()
        };
        // Exports and load need the build's result: an imported image is built then.
        if olds.adopted()
            && olds.inputs.push
            && news.push
            && news.exports.is_empty()
            && !news.load
            && same_platforms(&olds.inputs.platforms, &news.platforms)
        {
            return adopt(ctx, id.to_owned(), olds, news, &dropped).await;
        }
        build_and_push(ctx, id.to_owned(), news, &dropped).await
    }

    async fn delete(&self, ctx: &OpContext, _id: &str, state: ImageState) -> Result<(), Error> {
        if state.inputs.keep_remotely || !state.inputs.push || state.digest.is_none() {
            return Ok(());
        }
        tags::remove(ctx, &state.inputs.tags).await
    }
}

/// The remote `context.location` (Git or HTTP(S)), if it is one.
fn remote_location(inputs: &ImageInputs) -> Option<&str> {
    inputs
        .context
        .as_ref()
        .map(|c| c.location.as_str())
        .filter(|l| is_url(l))
}

/// The build context directory. Without a context it is a private, empty temporary
/// directory (nobody else can put files into it), removed when the guard is dropped.
fn context_dir(inputs: &ImageInputs) -> Result<(PathBuf, Option<tempfile::TempDir>), Error> {
    match &inputs.context {
        Some(c) if !is_url(&c.location) => Ok((PathBuf::from(&c.location), None)),
        // A remote context is fetched by BuildKit: nothing local is sent.
        _ => {
            let dir = tempfile::Builder::new()
                .prefix("multiarch-empty-context-")
                .tempdir()
                .map_err(|e| Error::Other(format!("creating an empty build context: {e}")))?;
            Ok((dir.path().to_path_buf(), Some(dir)))
        }
    }
}

fn dockerfile_path(inputs: &ImageInputs, context: &Path) -> Option<PathBuf> {
    match &inputs.dockerfile {
        Some(Dockerfile {
            inline: Some(_), ..
        }) => None,
        Some(Dockerfile {
            location: Some(l), ..
        }) => Some(PathBuf::from(l)),
        // Read by BuildKit from the remote context.
        _ if remote_location(inputs).is_some() => None,
        _ => Some(context.join("Dockerfile")),
    }
}

/// The contextHash: the Dockerfile, then what the context sends (with its ignore rules),
/// then each local named context with its own.
pub fn context_hash(inputs: &ImageInputs) -> Result<(String, context::Reads), Error> {
    let (dir, _empty) = context_dir(inputs)?;
    let dockerfile = dockerfile_path(inputs, &dir);
    let inline = inputs.dockerfile.as_ref().and_then(|d| d.inline.as_ref());
    let mut contents = match (&dockerfile, inline) {
        (_, Some(text)) => text.clone().into_bytes(),
        (Some(path), None) => std::fs::read(path).map_err(|e| {
            Error::invalid(
                "dockerfile.location",
                format!("reading {}: {e}", path.display()),
            )
        })?,
        (None, None) => Vec::new(),
    };
    if let Some(loc) = remote_location(inputs) {
        let pinned = remote_context::hash_input(loc)
            .map_err(|e| Error::invalid("context.location", e.to_string()))?;
        contents.splice(0..0, pinned.into_bytes());
    }
    let fail = |e: context::ContextError| Error::invalid("context", e.to_string());
    let ignore = context::ignore_file_for(&dir, dockerfile.as_deref());
    let files = context::walk(&dir, ignore.as_deref()).map_err(fail)?;
    let mut named = Vec::new();
    if let Some(c) = &inputs.context {
        for (name, loc) in &c.named {
            let p = Path::new(loc);
            if !is_url(loc) && p.is_dir() {
                let ig = context::ignore_file_for(p, None);
                named.push((name.clone(), context::walk(p, ig.as_deref()).map_err(fail)?));
            }
        }
    }
    context::context_hash_counted(&contents, &files, &named).map_err(fail)
}

/// [`context_hash`] on a blocking thread (it reads files), with what it read logged.
async fn hash_context(ctx: &OpContext, inputs: &ImageInputs) -> Result<String, Error> {
    let for_hash = inputs.clone();
    let (hash, reads) = tokio::task::spawn_blocking(move || context_hash(&for_hash))
        .await
        .map_err(|e| Error::Other(format!("hashing the build context: {e}")))??;
    ctx.log.log(
        crate::log::Level::Debug,
        &format!(
            "contextHash: {} files, {} read ({} bytes), {} unchanged since hashed",
            reads.files,
            reads.read,
            reads.bytes,
            reads.files - reads.read
        ),
    );
    Ok(hash)
}

/// The build's description, with the guard of its empty context when it has none.
fn spec(inputs: &ImageInputs) -> Result<(BuildSpec, Option<tempfile::TempDir>), Error> {
    let (dir, empty) = context_dir(inputs)?;
    let path = dockerfile_path(inputs, &dir);
    let dockerfile = match inputs.dockerfile.as_ref().and_then(|d| d.inline.clone()) {
        Some(text) => DockerfileSource::Inline(text),
        None => DockerfileSource::Path(path.clone().unwrap_or_default()),
    };
    let ignore_file = context::ignore_file_for(&dir, path.as_deref());
    let spec = BuildSpec {
        context_dir: dir,
        remote_context: remote_location(inputs).map(str::to_owned),
        dockerfile,
        ignore_file,
        named_contexts: inputs
            .context
            .as_ref()
            .map(|c| c.named.clone())
            .unwrap_or_default(),
        platforms: inputs.platforms.clone(),
        build_args: inputs.build_args.clone(),
        target: inputs.target.clone(),
        labels: inputs.labels.clone(),
        no_cache: inputs.no_cache,
        pull: inputs.pull,
        network: inputs.network,
        add_hosts: inputs
            .add_hosts
            .iter()
            .filter_map(|e| parse_add_host(e).ok())
            .collect(),
        ssh: inputs
            .ssh
            .iter()
            .filter_map(|a| agent_socket(a).ok().map(|p| (a.id.clone(), p)))
            .collect(),
        secrets: inputs
            .secrets
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().as_bytes().to_vec()))
            .collect(),
        cache_from: cache::entries(&inputs.cache_from),
        cache_to: cache::entries(&inputs.cache_to),
        provenance: inputs.provenance,
        sbom: inputs.sbom,
        sbom_generator: inputs.sbom_generator.clone(),
    };
    Ok((spec, empty))
}

/// Import by tag: the image the tag names, as its registry shows it. The program supplies
/// the context and the Dockerfile; until they are known (see [`ImageState::adopted`]) they
/// are no change.
async fn import(ctx: &OpContext, id: &str) -> Result<Option<(String, ImageState)>, Error> {
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
    };
    Ok(Some((id.to_owned(), state)))
}

/// The platform entries of what the registry now holds at `tag`.
async fn pushed_manifests(ctx: &OpContext, tag: &str) -> Result<Vec<PlatformManifest>, Error> {
    let t = parse_tag(tag).map_err(|e| Error::invalid("tags", e))?;
    let Some(m) = ctx.registry.manifest(&t).await? else {
        return Err(Error::Other(format!(
            "{tag} is missing right after the push"
        )));
    };
    manifests_of(ctx, &t, &m).await
}

/// The platform entries of manifest `m`, read from `t`: an index's entries (attestations
/// left out), or a single image's platform from its config.
async fn manifests_of(
    ctx: &OpContext,
    t: &Reference,
    m: &RawManifest,
) -> Result<Vec<PlatformManifest>, Error> {
    let tag = t.whole();
    let json = m.json();
    if !m.is_index() {
        // One platform without attestations: BuildKit pushes the image manifest itself,
        // whose platform is in its config.
        let config = json
            .pointer("/config/digest")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let cfg = ctx.registry.json_blob(t, config).await?;
        let field = |k: &str| cfg.get(k).and_then(|v| v.as_str()).unwrap_or_default();
        let platform = Platform::new(
            field("os"),
            field("architecture"),
            cfg.get("variant").and_then(|v| v.as_str()),
        )
        .map_err(|e| Error::Other(format!("{tag}: the pushed image's config: {e}")))?;
        return Ok(vec![PlatformManifest {
            platform: platform.to_string(),
            digest: m.digest.clone(),
        }]);
    }
    let mut out = Vec::new();
    for e in manifest::index_entries(&json) {
        let p = manifest::entry_platform(e);
        if p.is_attestation() {
            continue;
        }
        let (Ok(platform), Some(d)) = (
            Platform::new(p.os, p.architecture, p.variant),
            e.get("digest").and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        out.push(PlatformManifest {
            platform: platform.to_string(),
            digest: d.to_owned(),
        });
    }
    out.sort();
    Ok(out)
}

/// Create and update: hash the context, build (only building, in preview), push, record.
async fn build_and_push(
    ctx: &OpContext,
    id: String,
    inputs: ImageInputs,
    dropped_tags: &[String],
) -> Result<Applied<ImageState>, Error> {
    let hash = hash_context(ctx, &inputs).await?;
    let (spec, _empty_context) = spec(&inputs)?;
    let mut state = ImageState {
        inputs,
        digest: None,
        reference: None,
        manifests: Vec::new(),
        context_hash: Some(hash),
        exported: Vec::new(),
    };
    let groups = route(ctx, &state.inputs.platforms);
    let exporting = state.inputs.load || !state.inputs.exports.is_empty();
    if groups.len() > 1 && exporting {
        let what = if state.inputs.exports.is_empty() {
            "load"
        } else {
            "exports"
        };
        return Err(Error::invalid(
            what,
            format!(
                "exports and load need every platform built on one node, and builders \
                 splits {} across {} nodes",
                state.inputs.platforms.join(", "),
                groups.len()
            ),
        ));
    }
    if groups.len() > 1 {
        return multi_node(ctx, id, state, &spec, &groups, dropped_tags).await;
    }
    // One node (the default one, or the `builders` entry that lists every platform): one
    // solve, BuildKit pushes the index itself.
    let node = groups.first().and_then(|g| g.0);
    let build = |output| {
        ctx.builder
            .build(node, &spec, output, ctx.log.clone(), ctx.cancel.clone())
    };
    if ctx.preview {
        // Dockerfile errors show at preview, push or not; nothing is exported.
        if state.inputs.build_on_preview {
            build(Output::BuildOnly).await?;
        }
        return Ok(Applied {
            id,
            state,
            // contextHash too: the files may change before apply (Terraform checks).
            unknown_outputs: UnknownOutputs::All,
        });
    }
    if exporting {
        export(ctx, &mut state, build).await?;
    } else if !state.inputs.push {
        build(Output::BuildOnly).await?;
        // The outputs exist after every create (SDKs type them non-optional): nothing was
        // pushed, so there is no digest and no reference.
        state.digest = Some(String::new());
        state.reference = Some(String::new());
    } else {
        reachable_before_push(ctx, &state.inputs.tags).await?;
        let outcome = build(Output::Push {
            tags: state.inputs.tags.clone(),
        })
        .await?;
        let digest = outcome
            .digest
            .ok_or_else(|| Error::Other("BuildKit pushed but reported no digest".into()))?;
        let first = &state.inputs.tags[0];
        state.manifests = pushed_manifests(ctx, first).await?;
        let t = parse_tag(first).map_err(|e| Error::invalid("tags", e))?;
        state.reference = Some(format!("{}@{digest}", repository_of(&t)));
        state.digest = Some(digest);
    }
    tags::remove(ctx, dropped_tags).await?;
    Ok(Applied {
        id,
        state,
        unknown_outputs: UnknownOutputs::None,
    })
}

/// One solve for the push (if any), `load` and `exports`; the state records what was
/// pushed (read back from the registry) and what the exports wrote.
async fn export<F, Fut>(ctx: &OpContext, state: &mut ImageState, build: F) -> Result<(), Error>
where
    F: Fn(Output) -> Fut,
    Fut: std::future::Future<Output = Result<BuildOutcome, Error>>,
{
    let inputs = &state.inputs;
    let tags = inputs.tags.clone();
    if inputs.push {
        reachable_before_push(ctx, &tags).await?;
    }
    let exports = Exports {
        push: if inputs.push {
            tags.clone()
        } else {
            Vec::new()
        },
        load: if inputs.load {
            tags.clone()
        } else {
            Vec::new()
        },
        names: tags.clone(),
        files: inputs
            .exports
            .iter()
            .filter_map(Export::file_export)
            .collect(),
    };
    let kinds: Vec<(&'static str, String)> = inputs
        .exports
        .iter()
        .filter_map(|e| match e.variants().as_slice() {
            [(kind, Some(dest))] => Some((*kind, (*dest).to_owned())),
            _ => None,
        })
        .collect();
    let outcome = build(Output::Export(exports)).await?;
    state.exported = kinds
        .into_iter()
        .zip(outcome.exported)
        .map(|((kind, dest), w)| ExportedArtifact {
            kind: kind.to_owned(),
            dest,
            digest: w.sha256,
        })
        .collect();
    if !state.inputs.push {
        state.digest = Some(String::new());
        state.reference = Some(String::new());
        return Ok(());
    }
    // With several exporters BuildKit merges their answers into one map, so the pushed
    // digest is read from the registry rather than taken from `containerimage.digest`.
    let first = &state.inputs.tags[0];
    let t = parse_tag(first).map_err(|e| Error::invalid("tags", e))?;
    let digest = ctx
        .registry
        .digest_of(&t)
        .await?
        .ok_or_else(|| Error::Other(format!("{first} is missing right after the push")))?;
    state.manifests = pushed_manifests(ctx, first).await?;
    state.reference = Some(format!("{}@{digest}", repository_of(&t)));
    state.digest = Some(digest);
    Ok(())
}

/// The image's platforms grouped by the node that builds them, in node order (the default
/// node first). No platforms at all: no group (the default node builds its own platform).
fn route(ctx: &OpContext, platforms: &[String]) -> Vec<(Node, Vec<String>)> {
    let mut groups: BTreeMap<Node, Vec<String>> = BTreeMap::new();
    for p in platforms {
        let p = platform::normalize(p).unwrap_or_else(|_| p.clone());
        groups.entry(ctx.builder.node_for(&p)).or_default().push(p);
    }
    groups.into_iter().collect()
}

/// Progress and log lines of one node's build, prefixed with the node and its platforms.
struct NodeLog {
    prefix: String,
    inner: Arc<dyn Logger>,
}

impl Logger for NodeLog {
    fn log(&self, level: Level, message: &str) {
        self.inner.log(level, &format!("{}{message}", self.prefix))
    }
    fn status(&self, message: &str) {
        self.inner.status(&format!("{}{message}", self.prefix))
    }
}

/// One node's share of a multi-node build: `spec` for `platforms` only, on `node`; a
/// failure names the node (with its endpoint) and the platforms.
async fn build_on(
    ctx: &OpContext,
    node: Node,
    spec: &BuildSpec,
    platforms: &[String],
    output: Output,
) -> Result<BuildOutcome, Error> {
    let name = ctx.builder.node_name(node);
    let label = match node {
        None => "builder".to_owned(),
        Some(i) => format!("builders[{i}]"),
    };
    let list = platforms.join(", ");
    // Each node imports and exports its own registry cache (`<ref>-linux-arm64`): nodes
    // sharing one cache ref would overwrite each other's, keeping only the last platform.
    let suffix = platforms.join("-").replace('/', "-");
    let split = |entries: &[CacheEntry]| entries.iter().map(|e| e.split(&suffix)).collect();
    let spec = BuildSpec {
        platforms: platforms.to_vec(),
        cache_from: split(&spec.cache_from),
        cache_to: split(&spec.cache_to),
        ..spec.clone()
    };
    let log: Arc<dyn Logger> = Arc::new(NodeLog {
        prefix: format!("[{label} {list}] "),
        inner: ctx.log.clone(),
    });
    log.info(&format!("building {list} on {name}"));
    let what = format!("{name}, platform {list}");
    match ctx
        .builder
        .build(node, &spec, output, log, ctx.cancel.clone())
        .await
    {
        Ok(o) => Ok(o),
        Err(Error::Cancelled) => Err(Error::Cancelled),
        Err(Error::Invalid(failures)) => Err(Error::Invalid(
            failures
                .into_iter()
                .map(|f| Failure::new(f.property, format!("on {what}: {}", f.reason)))
                .collect(),
        )),
        Err(e) => Err(Error::Other(format!("on {what}: {e}"))),
    }
}

/// The platform object of an index entry for `p`.
fn platform_object(p: &Platform) -> Map<String, Json> {
    let mut m = Map::new();
    m.insert("architecture".into(), Json::String(p.architecture.clone()));
    m.insert("os".into(), Json::String(p.os.clone()));
    if let Some(v) = &p.variant {
        m.insert("variant".into(), Json::String(v.clone()));
    }
    m
}

/// The index entries one node pushed by `digest` for `platforms`: a single manifest (one
/// platform, no attestations) or the entries of its index (attestations included).
async fn node_children(
    ctx: &OpContext,
    repository: &Reference,
    digest: &str,
    platforms: &[String],
) -> Result<Vec<(IndexEntry, Option<String>)>, Error> {
    let at = Reference::with_digest(
        repository.registry().into(),
        repository.repository().into(),
        digest.into(),
    );
    let Some(m) = ctx.registry.manifest(&at).await? else {
        return Err(Error::Other(format!(
            "{} is missing right after the push",
            at.whole()
        )));
    };
    if !m.is_index() {
        let [p] = platforms else {
            return Err(Error::Other(format!(
                "{} is one manifest for several platforms ({})",
                at.whole(),
                platforms.join(", ")
            )));
        };
        let platform: Platform = p
            .parse()
            .map_err(|e: platform::PlatformError| Error::invalid("platforms", e.to_string()))?;
        return Ok(vec![(
            IndexEntry {
                media_type: m.media_type.clone(),
                digest: m.digest.clone(),
                size: m.size(),
                platform: platform_object(&platform),
                annotations: Map::new(),
            },
            Some(platform.to_string()),
        )]);
    }
    let json = m.json();
    let mut out = Vec::new();
    for e in manifest::index_entries(&json) {
        let field = |k: &str| e.get(k).and_then(Json::as_str).unwrap_or_default();
        let p = manifest::entry_platform(e);
        let platform = if p.is_attestation() {
            None
        } else {
            Some(
                Platform::new(p.os, p.architecture, p.variant).map_err(|err| {
                    Error::Other(format!("{} has a bad platform entry: {err}", at.whole()))
                })?,
            )
        };
        let object = match &platform {
            Some(p) => platform_object(p),
            None => e
                .get("platform")
                .and_then(Json::as_object)
                .cloned()
                .unwrap_or_default(),
        };
        out.push((
            IndexEntry {
                media_type: field("mediaType").to_owned(),
                digest: field("digest").to_owned(),
                size: e.get("size").and_then(Json::as_i64).unwrap_or(0),
                platform: object,
                annotations: e
                    .get("annotations")
                    .and_then(Json::as_object)
                    .cloned()
                    .unwrap_or_default(),
            },
            platform.map(|p| p.to_string()),
        ));
    }
    Ok(out)
}

/// Several nodes: each builds its platforms in parallel. In preview (and without push) only
/// building; otherwise each pushes its manifests by digest to the first tag's repository,
/// and once every node has succeeded the provider assembles the index (as a ManifestList
/// does) and pushes it to every tag. A failing node fails the whole: no tag is written.
async fn multi_node(
    ctx: &OpContext,
    id: String,
    mut state: ImageState,
    spec: &BuildSpec,
    groups: &[(Node, Vec<String>)],
    dropped_tags: &[String],
) -> Result<Applied<ImageState>, Error> {
    if ctx.preview || !state.inputs.push {
        if !ctx.preview || state.inputs.build_on_preview {
            futures::future::try_join_all(
                groups.iter().map(|(node, platforms)| {
                    build_on(ctx, *node, spec, platforms, Output::BuildOnly)
                }),
            )
            .await?;
        }
        if ctx.preview {
            return Ok(Applied {
                id,
                state,
                unknown_outputs: UnknownOutputs::All,
            });
        }
        state.digest = Some(String::new());
        state.reference = Some(String::new());
        tags::remove(ctx, dropped_tags).await?;
        return Ok(Applied {
            id,
            state,
            unknown_outputs: UnknownOutputs::None,
        });
    }
    reachable_before_push(ctx, &state.inputs.tags).await?;
    let mut targets = Vec::new();
    for (i, t) in state.inputs.tags.iter().enumerate() {
        targets.push(parse_tag(t).map_err(|e| Error::invalid(format!("tags[{i}]"), e))?);
    }
    let home = targets[0].clone();
    let repository = repository_of(&home);
    let outcomes = futures::future::try_join_all(groups.iter().map(|(node, platforms)| {
        let output = Output::PushByDigest {
            repository: repository.clone(),
        };
        build_on(ctx, *node, spec, platforms, output)
    }))
    .await?;
    let mut children = Vec::new();
    for ((node, platforms), outcome) in groups.iter().zip(outcomes) {
        let digest = outcome.digest.ok_or_else(|| {
            Error::Other(format!(
                "{} pushed {} but reported no digest",
                ctx.builder.node_name(*node),
                platforms.join(", ")
            ))
        })?;
        children.extend(node_children(ctx, &home, &digest, platforms).await?);
    }
    let refs: Vec<(&IndexEntry, Option<&str>)> =
        children.iter().map(|(e, p)| (e, p.as_deref())).collect();
    let (index, order) = assemble_index(&refs, None, &BTreeMap::new());
    let child_digests: Vec<String> = order
        .iter()
        .map(|&i| children[i].0.digest.clone())
        .collect();
    point_tags(ctx, &home, &index, &child_digests, &targets).await?;
    let mut manifests: Vec<PlatformManifest> = children
        .iter()
        .filter_map(|(e, p)| {
            p.as_ref().map(|p| PlatformManifest {
                platform: p.clone(),
                digest: e.digest.clone(),
            })
        })
        .collect();
    manifests.sort();
    state.manifests = manifests;
    state.reference = Some(format!("{repository}@{}", index.digest));
    state.digest = Some(index.digest.clone());
    tags::remove(ctx, dropped_tags).await?;
    Ok(Applied {
        id,
        state,
        unknown_outputs: UnknownOutputs::None,
    })
}

/// Points `targets` at `index`, whose children (`child_digests`) are in `home`'s repository.
/// Tags in other repositories get the children first (ECR refuses an index whose children it
/// does not hold), each unique blob moved once per repository.
async fn point_tags(
    ctx: &OpContext,
    home: &Reference,
    index: &RawManifest,
    child_digests: &[String],
    targets: &[Reference],
) -> Result<(), Error> {
    let repository = repository_of(home);
    let mut per_repo: BTreeMap<String, (&Reference, Vec<CopyChild>)> = BTreeMap::new();
    for t in targets {
        if repository_of(t) == repository || per_repo.contains_key(&repository_of(t)) {
            continue;
        }
        let kids = child_digests
            .iter()
            .map(|d| CopyChild {
                from: home.clone(),
                digest: d.clone(),
                manifest: None,
            })
            .collect();
        per_repo.insert(repository_of(t), (t, kids));
    }
    futures::future::try_join_all(
        per_repo
            .into_values()
            .map(|(t, kids)| async move { ctx.registry.copy_into(t, &kids).await }),
    )
    .await?;
    futures::future::try_join_all(targets.iter().map(|t| async move {
        // IMMUTABLE ECR repositories reject even an identical re-push.
        if ctx.registry.digest_of(t).await?.as_deref() == Some(index.digest.as_str()) {
            return Ok::<(), Error>(());
        }
        ctx.log.status(&format!("pushing {}", t.whole()));
        ctx.registry.put_manifest(t, index).await?;
        Ok(())
    }))
    .await?;
    Ok(())
}

/// The first update of an imported image with the same platforms: nothing is built. The
/// program's inputs and the context's hash are recorded (from now on a changed file is a
/// change), tags added since the import are pointed at the imported image, dropped ones
/// removed. Its digest stays what the registry holds.
async fn adopt(
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
        inputs: news,
    };
    if ctx.preview {
        // The files may still change before the update runs.
        return Ok(Applied {
            id,
            state,
            unknown_outputs: UnknownOutputs::Only(&["contextHash"]),
        });
    }
    state.context_hash = Some(hash_context(ctx, &state.inputs).await?);
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

/// BuildKit pushes with the Engine's or buildkitd's own registry rules (the Engine speaks
/// plain HTTP to 127.0.0.0/8 without being told), the provider with its configuration. A
/// registry the provider cannot read would get a pushed tag that the provider then fails to
/// read back and record, so each tag's registry is read first and nothing is built or pushed
/// when one of them fails.
async fn reachable_before_push(ctx: &OpContext, tags: &[String]) -> Result<(), Error> {
    let mut seen = BTreeSet::new();
    for (i, t) in tags.iter().enumerate() {
        let r = parse_tag(t).map_err(|e| Error::invalid(format!("tags[{i}]"), e))?;
        if !seen.insert((r.registry().to_owned(), r.repository().to_owned())) {
            continue;
        }
        if let Err(e) = ctx.registry.digest_of(&r).await {
            return Err(Error::Other(format!(
                "tags[{i}]: the provider cannot read {t} ({e}); nothing was built or pushed. \
                 A registry that speaks plain HTTP needs \
                 registries: [{{address: \"{}\", insecure: true}}]",
                r.registry()
            )));
        }
    }
    Ok(())
}

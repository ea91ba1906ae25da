//! The Image's input and output types: what the schema, the SDKs and the docs are made
//! from. No behaviour beyond small accessors lives here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::buildkit::FileExport;
use crate::config::SecretString;
use crate::resources::cache::{CacheFromEntry, CacheToEntry};

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// Network mode for `RUN` steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// The builder's default network (BuildKit's bridge or host network, as configured).
    #[default]
    Default,
    /// No network at all: `RUN` steps cannot reach anything.
    None,
    /// The builder host's network (the builder must grant the `network.host` entitlement).
    Host,
}

impl From<NetworkMode> for crate::buildkit::NetworkMode {
    fn from(m: NetworkMode) -> Self {
        match m {
            NetworkMode::Default => crate::buildkit::NetworkMode::Default,
            NetworkMode::None => crate::buildkit::NetworkMode::None,
            NetworkMode::Host => crate::buildkit::NetworkMode::Host,
        }
    }
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
    pub(super) fn variants(&self) -> Vec<(&'static str, Option<&str>)> {
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
    pub(super) fn is_dir(&self) -> bool {
        self.local.is_some() || self.oci.as_ref().is_some_and(|o| !o.tar)
    }

    /// The BuildKit side of the export; `None` for `cacheonly`.
    pub(super) fn file_export(&self) -> Option<FileExport> {
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
    #[schemars(extend(
        "x-required-when" = "`context` is omitted: `dockerfile.inline` then holds the Dockerfile"
    ))]
    pub dockerfile: Option<Dockerfile>,
    /// Platforms to build, e.g. `linux/amd64`, `linux/arm64`. Compared as a set after
    /// normalization (`aarch64` = `arm64`).
    #[serde(default)]
    #[schemars(extend("x-set" = true))]
    pub platforms: Vec<String>,
    /// Fully qualified references to push to. Compared as a set.
    #[serde(default)]
    #[schemars(extend("x-set" = true, "x-required-when" = "`push` is true (the default)"))]
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
    #[schemars(extend("x-secret-strings" = "buildx-cache"))]
    pub cache_from: Vec<CacheFromEntry>,
    /// Cache exports: buildx strings, e.g. `type=registry,ref=<repo>:cache,mode=max`, or
    /// (Pulumi) typed entries, e.g. `{registry: {ref: "<repo>:cache", mode: "max"}}`;
    /// Terraform takes the strings. ECR hosts get `image-manifest=true,oci-mediatypes=true`
    /// unless the entry sets them. With several build nodes each node writes its own registry
    /// cache, the ref's tag suffixed with its platforms (`<repo>:cache` ->
    /// `<repo>:cache-linux-arm64`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-secret-strings" = "buildx-cache"))]
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
    #[schemars(extend("x-output" = "always", "x-preview" = "unknown"))]
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
    pub(super) fn adopted(&self) -> bool {
        self.context_hash.is_none() && self.digest.as_deref().is_some_and(|d| !d.is_empty())
    }
}

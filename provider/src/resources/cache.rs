//! An Image's `cacheFrom` and `cacheTo` entries: each is a buildx string (as buildx and
//! Terraform users write them) or a typed object with exactly one variant set (`registry`,
//! `local`, `inline`, `gha`, `s3`, `raw`), as Pulumi's docker-build provider has them.
//!
//! Both forms become one [`CacheEntry`] (BuildKit's type and attributes) here, in
//! [`convert`], which Check, preview and up share, so what Check accepts is what
//! the build gets. The variant types are shared by both directions; the fields only an
//! export has (`mode`, `ignoreError`, the registry manifest flags, `local.dest`) are
//! rejected in `cacheFrom` with the property named.
//!
//! The string-or-object union is an `untagged` enum: JSON Schema `anyOf`, which the model
//! (`crate::model`) reads as a union: Pulumi `oneOf` (`string | CacheTo`), Terraform the
//! string alternative (`list(string)`).

use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value as Json;

use super::Failure;
use crate::buildkit::CacheEntry;
use crate::reference::parse_qualified;
use crate::secret::SecretString;

/// Which cache layers an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CacheMode {
    /// Only the layers of the exported image (BuildKit's default).
    Min,
    /// Every intermediate step's layers too: more cache hits, notably for multi-stage builds.
    Max,
}

impl CacheMode {
    fn as_str(self) -> &'static str {
        match self {
            CacheMode::Min => "min",
            CacheMode::Max => "max",
        }
    }
}

/// A registry cache (`type=registry`): the cache stored as an image in a repository.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CacheRegistry {
    /// The cache's reference, with its registry host, e.g. `<registry>/app:cache`. With
    /// several build nodes each node uses its own: `<registry>/app:cache-linux-arm64`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// cacheTo only: `min` (default) or `max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<CacheMode>,
    /// cacheTo only: write the cache as an image manifest (`image-manifest`). Default: true
    /// on ECR hosts (ECR refuses BuildKit's cache manifest), BuildKit's default elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_manifest: Option<bool>,
    /// cacheTo only: OCI media types (`oci-mediatypes`). Default: true on ECR hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci_media_types: Option<bool>,
    /// cacheTo only: a failed cache export is a warning instead of a failed build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_error: Option<bool>,
}

/// A local directory cache (`type=local`, an OCI image layout on the provider's host): a
/// cacheTo writes `dest` (blobs, and `index.json` naming the cache `latest`), a cacheFrom
/// reads `src`; a `src` with nothing in it yet is skipped with a warning.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CacheLocal {
    /// cacheFrom: the directory to import from (what a cacheTo `dest` wrote; its index.json
    /// names the cache `latest`). Nothing there yet: skipped with a warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    /// cacheTo: the directory to export to (created if absent): an OCI image layout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest: Option<String>,
    /// cacheTo only: `min` (default) or `max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<CacheMode>,
    /// cacheTo only: a failed cache export is a warning instead of a failed build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_error: Option<bool>,
}

/// An inline cache (`type=inline`, cacheTo only): cache metadata inside the pushed image;
/// a later build imports it with a registry cacheFrom naming that image.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheInline {}

/// The GitHub Actions cache (`type=gha`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CacheGha {
    /// The cache's scope (BuildKit's default: `buildkit`); give each image its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The cache service URL. Default: `ACTIONS_CACHE_URL` of the provider's environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The cache service token. Default: `ACTIONS_RUNTIME_TOKEN` of the provider's
    /// environment. It changes every workflow run, so a new one is never a change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-diff" = "ignore"))]
    pub token: Option<SecretString>,
    /// cacheTo only: `min` (default) or `max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<CacheMode>,
    /// cacheTo only: a failed cache export is a warning instead of a failed build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_error: Option<bool>,
}

/// An S3 bucket cache (`type=s3`). Without keys, BuildKit uses its own AWS credentials.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CacheS3 {
    /// The bucket.
    pub bucket: String,
    /// The bucket's region, e.g. `us-east-1`.
    pub region: String,
    /// The cache manifest's name (BuildKit's default: `buildkit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A prefix for every object the cache writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// An S3-compatible endpoint instead of AWS's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// Path-style bucket URLs (`<endpoint>/<bucket>`), as MinIO and most S3-compatible
    /// stores need.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_path_style: Option<bool>,
    /// The access key id. A new key is never a change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-diff" = "ignore"))]
    pub access_key_id: Option<String>,
    /// The secret access key. A new key is never a change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-diff" = "ignore"))]
    pub secret_access_key: Option<SecretString>,
    /// The session token of temporary credentials. A new one is never a change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-diff" = "ignore"))]
    pub session_token: Option<SecretString>,
    /// cacheTo only: `min` (default) or `max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<CacheMode>,
    /// cacheTo only: a failed cache export is a warning instead of a failed build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_error: Option<bool>,
}

/// A typed cache source: set exactly one of `registry`, `local`, `gha`, `s3`, `raw`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CacheFrom {
    /// Import a registry cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<CacheRegistry>,
    /// Import a local directory cache (`src`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<CacheLocal>,
    /// Import the GitHub Actions cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gha: Option<CacheGha>,
    /// Import an S3 bucket cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<CacheS3>,
    /// A buildx string, e.g. `type=registry,ref=<repo>:cache`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// Not a cache source (no schema, no SDK field): read only so Check can say so.
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub inline: Option<Json>,
}

/// A typed cache export: set exactly one of `registry`, `local`, `inline`, `gha`, `s3`,
/// `raw`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CacheTo {
    /// Export to a registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<CacheRegistry>,
    /// Export to a local directory (`dest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<CacheLocal>,
    /// Write cache metadata into the pushed image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<CacheInline>,
    /// Export to the GitHub Actions cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gha: Option<CacheGha>,
    /// Export to an S3 bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<CacheS3>,
    /// A buildx string, e.g. `type=registry,ref=<repo>:cache,mode=max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}

/// A `cacheFrom` entry: a buildx string or a [`CacheFrom`].
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum CacheFromEntry {
    Raw(String),
    Typed(Box<CacheFrom>),
}

/// A `cacheTo` entry: a buildx string or a [`CacheTo`].
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum CacheToEntry {
    Raw(String),
    Typed(Box<CacheTo>),
}

/// A string is the string form, an object the typed form; a mistake inside the object is
/// reported at its own path (`cacheTo[0].registry.mode`), which serde's own untagged enums
/// cannot do.
macro_rules! string_or_typed {
    ($entry:ident, $typed:ident, $what:literal) => {
        impl<'de> Deserialize<'de> for $entry {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $entry;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_str<E: de::Error>(self, s: &str) -> Result<$entry, E> {
                        Ok($entry::Raw(s.to_owned()))
                    }
                    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<$entry, A::Error> {
                        $typed::deserialize(de::value::MapAccessDeserializer::new(map))
                            .map(|t| $entry::Typed(Box::new(t)))
                    }
                }
                d.deserialize_any(V)
            }
        }

        impl From<&str> for $entry {
            fn from(s: &str) -> $entry {
                $entry::Raw(s.to_owned())
            }
        }
    };
}

string_or_typed!(
    CacheFromEntry,
    CacheFrom,
    "a buildx cache string or a CacheFrom object"
);
string_or_typed!(
    CacheToEntry,
    CacheTo,
    "a buildx cache string or a CacheTo object"
);

/// Import or export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    From,
    To,
}

impl Direction {
    pub fn property(self) -> &'static str {
        match self {
            Direction::From => "cacheFrom",
            Direction::To => "cacheTo",
        }
    }

    fn variants(self) -> &'static str {
        match self {
            Direction::From => "registry, local, gha, s3, raw",
            Direction::To => "registry, local, inline, gha, s3, raw",
        }
    }
}

/// What is wrong with one entry: the path below it (`.registry.ref`; empty for the entry
/// itself) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryError {
    pub at: String,
    pub reason: String,
}

impl EntryError {
    fn new(at: impl Into<String>, reason: impl Into<String>) -> EntryError {
        EntryError {
            at: at.into(),
            reason: reason.into(),
        }
    }
}

/// The typed variants of either direction, borrowed.
#[derive(Default)]
pub struct Variants<'a> {
    registry: Option<&'a CacheRegistry>,
    local: Option<&'a CacheLocal>,
    /// `Some` when the key was given (in a cacheFrom: a mistake).
    inline: Option<()>,
    gha: Option<&'a CacheGha>,
    s3: Option<&'a CacheS3>,
    raw: Option<&'a str>,
}

/// One entry of either list.
pub trait CacheItem {
    const DIRECTION: Direction;
    /// The buildx string, or the typed variants.
    fn form(&self) -> Result<&str, Variants<'_>>;
}

impl CacheItem for CacheFromEntry {
    const DIRECTION: Direction = Direction::From;
    fn form(&self) -> Result<&str, Variants<'_>> {
        match self {
            CacheFromEntry::Raw(s) => Ok(s),
            CacheFromEntry::Typed(t) => Err(Variants {
                registry: t.registry.as_ref(),
                local: t.local.as_ref(),
                inline: t.inline.as_ref().map(|_| ()),
                gha: t.gha.as_ref(),
                s3: t.s3.as_ref(),
                raw: t.raw.as_deref(),
            }),
        }
    }
}

impl CacheItem for CacheToEntry {
    const DIRECTION: Direction = Direction::To;
    fn form(&self) -> Result<&str, Variants<'_>> {
        match self {
            CacheToEntry::Raw(s) => Ok(s),
            CacheToEntry::Typed(t) => Err(Variants {
                registry: t.registry.as_ref(),
                local: t.local.as_ref(),
                inline: t.inline.as_ref().map(|_| ()),
                gha: t.gha.as_ref(),
                s3: t.s3.as_ref(),
                raw: t.raw.as_deref(),
            }),
        }
    }
}

/// The provider's environment, for the gha defaults.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// One entry as BuildKit takes it, or every problem with it.
pub fn to_entry<E: CacheItem>(item: &E, env: Env) -> Result<CacheEntry, Vec<EntryError>> {
    match item.form() {
        Ok(s) => CacheEntry::parse(s).map_err(|e| vec![EntryError::new("", e.to_string())]),
        Err(v) => typed(&v, E::DIRECTION, env),
    }
}

fn typed(v: &Variants, dir: Direction, env: Env) -> Result<CacheEntry, Vec<EntryError>> {
    let set = [
        v.registry.is_some(),
        v.local.is_some(),
        v.inline.is_some(),
        v.gha.is_some(),
        v.s3.is_some(),
        v.raw.is_some(),
    ]
    .iter()
    .filter(|s| **s)
    .count();
    if v.inline.is_some() && dir == Direction::From {
        return Err(vec![EntryError::new(
            ".inline",
            "inline is a cache export only (it writes cache metadata into the pushed image); \
             to import it, name that image: registry {ref}",
        )]);
    }
    if set != 1 {
        return Err(vec![EntryError::new(
            "",
            format!("set exactly one of {}", dir.variants()),
        )]);
    }
    let export = dir == Direction::To;
    let mut errors = if export {
        Vec::new()
    } else {
        export_only_given(v)
    };
    let e = if let Some(r) = v.registry {
        registry(r, export, &mut errors)
    } else if let Some(l) = v.local {
        local(l, dir, &mut errors)
    } else if v.inline.is_some() {
        CacheEntry::new("inline")
    } else if let Some(g) = v.gha {
        gha(g, export, env)
    } else if let Some(s) = v.s3 {
        s3(s, export, &mut errors)
    } else {
        let raw = v.raw.unwrap_or_default();
        return CacheEntry::parse(raw)
            .map_err(|err| vec![EntryError::new(".raw", err.to_string())]);
    };
    if errors.is_empty() {
        Ok(e)
    } else {
        Err(errors)
    }
}

/// The typed forms' fields only a cache export has, per backend: a `cacheFrom` entry that
/// sets one is refused naming it.
const EXPORT_ONLY: &[(&str, &[&str])] = &[
    (
        "registry",
        &["mode", "imageManifest", "ociMediaTypes", "ignoreError"],
    ),
    ("local", &["mode", "ignoreError"]),
    ("gha", &["mode", "ignoreError"]),
    ("s3", &["mode", "ignoreError"]),
];

/// The export-only fields an import's typed variant sets.
fn export_only_given(v: &Variants) -> Vec<EntryError> {
    let set = [
        ("registry", v.registry.map(serde_json::to_value)),
        ("local", v.local.map(serde_json::to_value)),
        ("gha", v.gha.map(serde_json::to_value)),
        ("s3", v.s3.map(serde_json::to_value)),
    ];
    let mut errors = Vec::new();
    for (name, value) in set {
        let (Some(Ok(value)), Some((_, fields))) =
            (value, EXPORT_ONLY.iter().find(|(n, _)| *n == name))
        else {
            continue;
        };
        for field in fields.iter().filter(|f| value.get(**f).is_some()) {
            errors.push(EntryError::new(
                format!(".{name}.{field}"),
                "is for cache exports only (cacheTo); remove it here",
            ));
        }
    }
    errors
}

fn registry(r: &CacheRegistry, export: bool, errors: &mut Vec<EntryError>) -> CacheEntry {
    if let Err(reason) = parse_qualified(&r.reference) {
        errors.push(EntryError::new(
            ".registry.ref",
            format!("not a valid reference: {reason}"),
        ));
    }
    let mut e = CacheEntry::new("registry");
    e.set("ref", r.reference.trim());
    if export {
        flag(&mut e, "image-manifest", r.image_manifest);
        flag(&mut e, "oci-mediatypes", r.oci_media_types);
    }
    common(&mut e, export, r.mode, r.ignore_error);
    e
}

fn local(l: &CacheLocal, dir: Direction, errors: &mut Vec<EntryError>) -> CacheEntry {
    let export = dir == Direction::To;
    let (key, other) = if export {
        ("dest", "src")
    } else {
        ("src", "dest")
    };
    let (given, stray) = if export {
        (&l.dest, &l.src)
    } else {
        (&l.src, &l.dest)
    };
    if stray.is_some() {
        errors.push(EntryError::new(
            format!(".local.{other}"),
            format!(
                "is for {}; a {} reads {key}",
                if export { "cacheFrom" } else { "cacheTo" },
                dir.property()
            ),
        ));
    }
    let mut e = CacheEntry::new("local");
    match given.as_deref().map(str::trim) {
        Some(d) if !d.is_empty() => e.set(key, d),
        _ => errors.push(EntryError::new(
            format!(".local.{key}"),
            format!(
                "a directory is required ({} local needs {key})",
                dir.property()
            ),
        )),
    }
    common(&mut e, export, l.mode, l.ignore_error);
    e
}

fn gha(g: &CacheGha, export: bool, env: Env) -> CacheEntry {
    let mut e = CacheEntry::new("gha");
    if let Some(s) = &g.scope {
        e.set("scope", s);
    }
    if let Some(u) = g.url.clone().or_else(|| env("ACTIONS_CACHE_URL")) {
        e.set("url", u);
    }
    match &g.token {
        Some(t) => e.set_secret("token", t.clone()),
        None => {
            if let Some(t) = env("ACTIONS_RUNTIME_TOKEN") {
                e.set_secret("token", SecretString::new(t));
            }
        }
    }
    common(&mut e, export, g.mode, g.ignore_error);
    e
}

fn s3(s: &CacheS3, export: bool, errors: &mut Vec<EntryError>) -> CacheEntry {
    for (at, value) in [(".s3.bucket", &s.bucket), (".s3.region", &s.region)] {
        if value.trim().is_empty() {
            errors.push(EntryError::new(at, "must not be empty"));
        }
    }
    let mut e = CacheEntry::new("s3");
    e.set("bucket", s.bucket.trim());
    e.set("region", s.region.trim());
    for (k, v) in [
        ("name", &s.name),
        ("prefix", &s.prefix),
        ("endpoint_url", &s.endpoint_url),
        ("access_key_id", &s.access_key_id),
    ] {
        if let Some(v) = v {
            e.set(k, v);
        }
    }
    flag(&mut e, "use_path_style", s.use_path_style);
    for (k, v) in [
        ("secret_access_key", &s.secret_access_key),
        ("session_token", &s.session_token),
    ] {
        if let Some(v) = v {
            e.set_secret(k, v.clone());
        }
    }
    common(&mut e, export, s.mode, s.ignore_error);
    e
}

fn flag(e: &mut CacheEntry, key: &str, value: Option<bool>) {
    if let Some(b) = value {
        e.set(key, b.to_string());
    }
}

/// `mode` and `ignore-error`, which only exports have.
fn common(e: &mut CacheEntry, export: bool, mode: Option<CacheMode>, ignore_error: Option<bool>) {
    if !export {
        return;
    }
    if let Some(m) = mode {
        e.set("mode", m.as_str());
    }
    flag(e, "ignore-error", ignore_error);
}

/// The provider's process environment (empty values count as unset), which Check,
/// preview and up all read.
pub fn process_env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

/// A local cache's directory (`dest`, `src`) that exists and is not a directory: the
/// attribute and why.
fn local_dir_problem(e: &CacheEntry) -> Option<(&'static str, String)> {
    if e.ty != "local" {
        return None;
    }
    ["dest", "src"].into_iter().find_map(|key| {
        let dir = e.get(key)?;
        let p = std::path::Path::new(dir);
        (p.exists() && !p.is_dir()).then(|| (key, format!("{dir:?} exists and is not a directory")))
    })
}

/// The entries as BuildKit takes them, or every problem of every entry named by its
/// property path (`cacheTo[1].registry.ref`): the one conversion Check, preview and up share,
/// so what Check accepts is exactly what the build gets.
pub fn convert<E: CacheItem>(items: &[E], env: Env) -> Result<Vec<CacheEntry>, Vec<Failure>> {
    let name = E::DIRECTION.property();
    let mut out = Vec::new();
    let mut failures = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let errors = match to_entry(item, env) {
            Err(errors) => errors,
            Ok(e) => match local_dir_problem(&e) {
                None => {
                    out.push(e);
                    continue;
                }
                Some((key, reason)) => {
                    let at = match item.form() {
                        Ok(_) => String::new(),
                        Err(v) if v.local.is_some() => format!(".local.{key}"),
                        Err(_) => ".raw".to_owned(),
                    };
                    vec![EntryError::new(at, reason)]
                }
            },
        };
        failures.extend(
            errors
                .into_iter()
                .map(|e| Failure::new(format!("{name}[{i}]{}", e.at), e.reason)),
        );
    }
    if failures.is_empty() {
        Ok(out)
    } else {
        Err(failures)
    }
}

#[cfg(test)]
mod tests;

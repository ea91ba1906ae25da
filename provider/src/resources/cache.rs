//! An Image's `cacheFrom` and `cacheTo` entries: each is a buildx string (as buildx and
//! Terraform users write them) or a typed object with exactly one variant set (`registry`,
//! `local`, `inline`, `gha`, `s3`, `raw`), as Pulumi's docker-build provider has them.
//!
//! Both forms become one [`CacheEntry`] (BuildKit's type and attributes) here, in
//! [`convert`], which Check, preview and up share, so what Check accepts is what
//! the build gets. Each backend has an import type and an export type (`CacheFromS3`,
//! `CacheToS3`) declared from one field list, so the options only an export has (`mode`,
//! `ignoreError`, the registry manifest flags) exist on cacheTo only, in the schema and SDKs
//! as in Check.
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

/// Declares a backend's import type and its export type from one list of fields: the
/// export type has every field of the import type plus the export options. The schema and
/// SDKs thus offer `mode`, `ignoreError` and the registry manifest flags on cacheTo only,
/// and each shared field's facts (docs, secrecy, diff) are written once.
macro_rules! cache_backend {
    (
        $(#[$from_meta:meta])* $from:ident,
        $(#[$to_meta:meta])* $to:ident {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty, )*
        }
        export { $( $(#[$emeta:meta])* $efield:ident : $ety:ty, )* }
    ) => {
        $(#[$from_meta])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $from {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        $(#[$to_meta])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $to {
            $( $(#[$fmeta])* pub $field: $ty, )*
            $( $(#[$emeta])* pub $efield: $ety, )*
        }

        impl $to {
            /// Where the cache lives, as an import names it.
            fn location(&self) -> $from {
                $from { $( $field: self.$field.clone(), )* }
            }
        }
    };
}

cache_backend! {
    /// A registry cache to import (`type=registry`): the cache stored as an image in a
    /// repository.
    CacheFromRegistry,
    /// A registry cache to export (`type=registry`): the cache stored as an image in a
    /// repository.
    CacheToRegistry {
        /// The cache's reference, with its registry host, e.g. `<registry>/app:cache`. With
        /// several build nodes each node uses its own: `<registry>/app:cache-linux-arm64`.
        #[serde(rename = "ref")]
        reference: String,
    }
    export {
        /// `min` (default) or `max`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<CacheMode>,
        /// Write the cache as an image manifest (`image-manifest`). Default: true on ECR
        /// hosts (ECR refuses BuildKit's cache manifest), BuildKit's default elsewhere.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image_manifest: Option<bool>,
        /// OCI media types (`oci-mediatypes`). Default: true on ECR hosts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        oci_media_types: Option<bool>,
        /// A failed cache export is a warning instead of a failed build.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ignore_error: Option<bool>,
    }
}

/// A local directory cache to import (`type=local`): an OCI image layout on the provider's
/// host, as a cacheTo `dest` wrote it (its index.json names the cache `latest`); a `src`
/// with nothing in it yet is skipped with a warning.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CacheFromLocal {
    /// The directory to import from.
    pub src: String,
}

/// A local directory cache to export (`type=local`): an OCI image layout on the provider's
/// host (blobs, and `index.json` naming the cache `latest`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CacheToLocal {
    /// The directory to export to (created if absent).
    pub dest: String,
    /// `min` (default) or `max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<CacheMode>,
    /// A failed cache export is a warning instead of a failed build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_error: Option<bool>,
}

/// An inline cache (`type=inline`, cacheTo only): cache metadata inside the pushed image;
/// a later build imports it with a registry cacheFrom naming that image.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheInline {}

cache_backend! {
    /// The GitHub Actions cache to import (`type=gha`).
    CacheFromGha,
    /// The GitHub Actions cache to export to (`type=gha`).
    CacheToGha {
        /// The cache's scope (BuildKit's default: `buildkit`); give each image its own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<String>,
        /// The cache service URL. Default: `ACTIONS_CACHE_URL` of the provider's environment.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        /// The cache service token. Default: `ACTIONS_RUNTIME_TOKEN` of the provider's
        /// environment. It changes every workflow run, so a new one is never a change.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(extend("x-diff" = "ignore"))]
        token: Option<SecretString>,
    }
    export {
        /// `min` (default) or `max`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<CacheMode>,
        /// A failed cache export is a warning instead of a failed build.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ignore_error: Option<bool>,
    }
}

cache_backend! {
    /// An S3 bucket cache to import (`type=s3`). Without keys, BuildKit uses its own AWS
    /// credentials.
    CacheFromS3,
    /// An S3 bucket cache to export to (`type=s3`). Without keys, BuildKit uses its own AWS
    /// credentials.
    CacheToS3 {
        /// The bucket.
        bucket: String,
        /// The bucket's region, e.g. `us-east-1`.
        region: String,
        /// The cache manifest's name (BuildKit's default: `buildkit`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// A prefix for every object the cache writes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
        /// An S3-compatible endpoint instead of AWS's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint_url: Option<String>,
        /// Path-style bucket URLs (`<endpoint>/<bucket>`), as MinIO and most S3-compatible
        /// stores need.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        use_path_style: Option<bool>,
        /// The access key id. A new key is never a change.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(extend("x-diff" = "ignore"))]
        access_key_id: Option<String>,
        /// The secret access key. A new key is never a change.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(extend("x-diff" = "ignore"))]
        secret_access_key: Option<SecretString>,
        /// The session token of temporary credentials. A new one is never a change.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(extend("x-diff" = "ignore"))]
        session_token: Option<SecretString>,
    }
    export {
        /// `min` (default) or `max`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<CacheMode>,
        /// A failed cache export is a warning instead of a failed build.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ignore_error: Option<bool>,
    }
}

/// A typed cache source: set exactly one of `registry`, `local`, `gha`, `s3`, `raw`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CacheFrom {
    /// Import a registry cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<CacheFromRegistry>,
    /// Import a local directory cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<CacheFromLocal>,
    /// Import the GitHub Actions cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gha: Option<CacheFromGha>,
    /// Import an S3 bucket cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<CacheFromS3>,
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
    pub registry: Option<CacheToRegistry>,
    /// Export to a local directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<CacheToLocal>,
    /// Write cache metadata into the pushed image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<CacheInline>,
    /// Export to the GitHub Actions cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gha: Option<CacheToGha>,
    /// Export to an S3 bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<CacheToS3>,
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

/// One entry of either list.
pub trait CacheItem {
    const DIRECTION: Direction;
    /// The entry as BuildKit takes it, or every problem with it.
    fn typed(&self, env: Env) -> Result<CacheEntry, Vec<EntryError>>;
    /// The buildx string, when the entry is one.
    fn raw(&self) -> Option<&str>;
    /// Whether the entry is the typed `local` variant (its directory is `.local.<key>`).
    fn is_typed_local(&self) -> bool;
}

impl CacheItem for CacheFromEntry {
    const DIRECTION: Direction = Direction::From;
    fn typed(&self, env: Env) -> Result<CacheEntry, Vec<EntryError>> {
        let t = match self {
            CacheFromEntry::Raw(s) => return parse_raw(s, ""),
            CacheFromEntry::Typed(t) => t,
        };
        if t.inline.is_some() {
            return Err(vec![EntryError::new(
                ".inline",
                "inline is a cache export only (it writes cache metadata into the pushed \
                 image); to import it, name that image: registry {ref}",
            )]);
        }
        let set = [
            t.registry.is_some(),
            t.local.is_some(),
            t.gha.is_some(),
            t.s3.is_some(),
            t.raw.is_some(),
        ];
        exactly_one(&set, Direction::From)?;
        let mut errors = Vec::new();
        let e = if let Some(r) = &t.registry {
            registry(r, &mut errors)
        } else if let Some(l) = &t.local {
            local(&l.src, Direction::From, &mut errors)
        } else if let Some(g) = &t.gha {
            gha(g, env)
        } else if let Some(s) = &t.s3 {
            s3(s, &mut errors)
        } else {
            return parse_raw(t.raw.as_deref().unwrap_or_default(), ".raw");
        };
        finish(e, errors)
    }
    fn raw(&self) -> Option<&str> {
        match self {
            CacheFromEntry::Raw(s) => Some(s),
            CacheFromEntry::Typed(_) => None,
        }
    }
    fn is_typed_local(&self) -> bool {
        matches!(self, CacheFromEntry::Typed(t) if t.local.is_some())
    }
}

impl CacheItem for CacheToEntry {
    const DIRECTION: Direction = Direction::To;
    fn typed(&self, env: Env) -> Result<CacheEntry, Vec<EntryError>> {
        let t = match self {
            CacheToEntry::Raw(s) => return parse_raw(s, ""),
            CacheToEntry::Typed(t) => t,
        };
        let set = [
            t.registry.is_some(),
            t.local.is_some(),
            t.inline.is_some(),
            t.gha.is_some(),
            t.s3.is_some(),
            t.raw.is_some(),
        ];
        exactly_one(&set, Direction::To)?;
        let mut errors = Vec::new();
        let e = if let Some(r) = &t.registry {
            let mut e = registry(&r.location(), &mut errors);
            flag(&mut e, "image-manifest", r.image_manifest);
            flag(&mut e, "oci-mediatypes", r.oci_media_types);
            export_options(e, r.mode, r.ignore_error)
        } else if let Some(l) = &t.local {
            let e = local(&l.dest, Direction::To, &mut errors);
            export_options(e, l.mode, l.ignore_error)
        } else if t.inline.is_some() {
            CacheEntry::new("inline")
        } else if let Some(g) = &t.gha {
            export_options(gha(&g.location(), env), g.mode, g.ignore_error)
        } else if let Some(s) = &t.s3 {
            export_options(s3(&s.location(), &mut errors), s.mode, s.ignore_error)
        } else {
            return parse_raw(t.raw.as_deref().unwrap_or_default(), ".raw");
        };
        finish(e, errors)
    }
    fn raw(&self) -> Option<&str> {
        match self {
            CacheToEntry::Raw(s) => Some(s),
            CacheToEntry::Typed(_) => None,
        }
    }
    fn is_typed_local(&self) -> bool {
        matches!(self, CacheToEntry::Typed(t) if t.local.is_some())
    }
}

/// The provider's environment, for the gha defaults.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// One entry as BuildKit takes it, or every problem with it.
pub fn to_entry<E: CacheItem>(item: &E, env: Env) -> Result<CacheEntry, Vec<EntryError>> {
    item.typed(env)
}

fn parse_raw(s: &str, at: &str) -> Result<CacheEntry, Vec<EntryError>> {
    CacheEntry::parse(s).map_err(|e| vec![EntryError::new(at, e.to_string())])
}

fn exactly_one(set: &[bool], dir: Direction) -> Result<(), Vec<EntryError>> {
    if set.iter().filter(|s| **s).count() == 1 {
        Ok(())
    } else {
        Err(vec![EntryError::new(
            "",
            format!("set exactly one of {}", dir.variants()),
        )])
    }
}

fn finish(e: CacheEntry, errors: Vec<EntryError>) -> Result<CacheEntry, Vec<EntryError>> {
    if errors.is_empty() {
        Ok(e)
    } else {
        Err(errors)
    }
}

fn registry(r: &CacheFromRegistry, errors: &mut Vec<EntryError>) -> CacheEntry {
    if let Err(reason) = parse_qualified(&r.reference) {
        errors.push(EntryError::new(
            ".registry.ref",
            format!("not a valid reference: {reason}"),
        ));
    }
    let mut e = CacheEntry::new("registry");
    e.set("ref", r.reference.trim());
    e
}

/// A local cache: `src` to import from, `dest` to export to.
fn local(dir: &str, direction: Direction, errors: &mut Vec<EntryError>) -> CacheEntry {
    let key = match direction {
        Direction::From => "src",
        Direction::To => "dest",
    };
    let mut e = CacheEntry::new("local");
    if dir.trim().is_empty() {
        errors.push(EntryError::new(
            format!(".local.{key}"),
            format!(
                "a directory is required ({} local needs {key})",
                direction.property()
            ),
        ));
    } else {
        e.set(key, dir.trim());
    }
    e
}

fn gha(g: &CacheFromGha, env: Env) -> CacheEntry {
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
    e
}

fn s3(s: &CacheFromS3, errors: &mut Vec<EntryError>) -> CacheEntry {
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
    e
}

fn flag(e: &mut CacheEntry, key: &str, value: Option<bool>) {
    if let Some(b) = value {
        e.set(key, b.to_string());
    }
}

/// `mode` and `ignore-error`, which only exports have.
fn export_options(
    mut e: CacheEntry,
    mode: Option<CacheMode>,
    ignore_error: Option<bool>,
) -> CacheEntry {
    if let Some(m) = mode {
        e.set("mode", m.as_str());
    }
    flag(&mut e, "ignore-error", ignore_error);
    e
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
                    let at = if item.raw().is_some() {
                        String::new()
                    } else if item.is_typed_local() {
                        format!(".local.{key}")
                    } else {
                        ".raw".to_owned()
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

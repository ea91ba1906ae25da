//! Cache imports and exports in the one form BuildKit takes them: a type and attributes
//! (`CacheOptionsEntry`). Buildx strings (`type=registry,ref=…,mode=max`, a bare ref) and
//! the typed entries of an Image (`crate::resources::cache`) both become a [`CacheEntry`];
//! the per-node split, the ECR defaults and the solve request all work on that.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use bollard_buildkit_proto::moby::buildkit::v1::CacheOptionsEntry;

use crate::secret::SecretString;

/// One cache backend BuildKit knows, as data: its type name, whether it imports
/// (`cacheFrom`; every backend exports), the attributes of which it needs one, and the
/// attributes that are credentials (kept as [`SecretString`]s, so a spec or entry printed
/// with `Debug` shows `***`, and a buildx string holding one is a secret as a whole).
#[derive(Debug)]
pub struct Backend {
    /// BuildKit's `type`.
    pub name: &'static str,
    /// Whether a cache import may name it (`inline` is written into the pushed image).
    pub imports: bool,
    /// A buildx string of this type needs one of these attributes.
    pub needs_one_of: &'static [&'static str],
    /// Credential attributes.
    pub secret: &'static [&'static str],
}

/// Every cache backend BuildKit knows; adding one is an entry here (and its typed form in
/// `crate::resources::cache`, if it gets one).
pub const BACKENDS: &[Backend] = &[
    Backend {
        name: "registry",
        imports: true,
        needs_one_of: &["ref"],
        secret: &[],
    },
    Backend {
        name: "local",
        imports: true,
        needs_one_of: &["src", "dest"],
        secret: &[],
    },
    Backend {
        name: "inline",
        imports: false,
        needs_one_of: &[],
        secret: &[],
    },
    Backend {
        name: "gha",
        imports: true,
        needs_one_of: &[],
        secret: &["token"],
    },
    Backend {
        name: "s3",
        imports: true,
        needs_one_of: &[],
        secret: &["secret_access_key", "session_token"],
    },
    Backend {
        name: "azblob",
        imports: true,
        needs_one_of: &[],
        secret: &["secret_access_key"],
    },
];

/// The backend named `ty`.
pub fn backend(ty: &str) -> Option<&'static Backend> {
    BACKENDS.iter().find(|b| b.name == ty)
}

/// Whether a buildx cache string carries a credential (`type=gha,token=…`): such a string
/// is a secret as a whole (the secret walk of the inputs asks this).
pub fn string_holds_secret(s: &str) -> bool {
    CacheEntry::parse(s).is_ok_and(|e| !e.secret_attrs.is_empty())
}

/// One cache import or export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheEntry {
    /// `registry`, `local`, `inline`, `gha`, `s3`, `azblob`.
    pub ty: String,
    /// Plain attributes (`ref`, `mode`, `image-manifest`, …).
    pub attrs: BTreeMap<String, String>,
    /// Credential attributes; sent to BuildKit, never printed.
    pub secret_attrs: BTreeMap<String, SecretString>,
}

/// Why a buildx cache string is unusable. The messages never repeat the entry (a raw `s3`
/// entry may hold a key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheEntryError {
    /// Nothing but blanks.
    Empty,
    /// A comma-separated field without `=`.
    NotKeyValue,
    /// A `type=` no backend in [`BACKENDS`] has (the type given).
    UnknownType(String),
    /// The type needs one of these attributes.
    Needs {
        /// The backend's name.
        ty: String,
        /// The attributes of which one must be set.
        one_of: &'static [&'static str],
    },
}

impl fmt::Display for CacheEntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheEntryError::Empty => f.write_str("empty cache entry"),
            CacheEntryError::NotKeyValue => {
                f.write_str("a field is not key=value (e.g. type=registry,ref=<repo>:cache)")
            }
            CacheEntryError::UnknownType(t) => {
                let names: Vec<&str> = BACKENDS.iter().map(|b| b.name).collect();
                let (last, rest) = names.split_last().unwrap_or((&"", &[]));
                write!(f, "unknown type {t:?} ({} or {last})", rest.join(", "))
            }
            CacheEntryError::Needs { ty, one_of } => {
                write!(f, "type={ty} needs {}", one_of.join(" or "))
            }
        }
    }
}

impl std::error::Error for CacheEntryError {}

impl CacheEntry {
    /// An entry of backend `ty` without attributes (the caller sets them).
    pub fn new(ty: &str) -> CacheEntry {
        CacheEntry {
            ty: ty.to_owned(),
            ..Default::default()
        }
    }

    /// Sets an attribute; credentials go to the secret attributes.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        if backend(&self.ty).is_some_and(|b| b.secret.contains(&key)) {
            self.secret_attrs
                .insert(key.to_owned(), SecretString::new(value));
        } else {
            self.attrs.insert(key.to_owned(), value);
        }
    }

    /// Sets a credential attribute.
    pub fn set_secret(&mut self, key: &str, value: SecretString) {
        self.secret_attrs.insert(key.to_owned(), value);
    }

    /// A plain attribute's value; credentials are not readable here, so they cannot leak
    /// through a caller that prints what it reads.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.attrs.get(key).map(String::as_str)
    }

    /// Parses a buildx entry (`type=registry,ref=…,mode=max`); a value without `=` is a
    /// registry reference.
    pub fn parse(s: &str) -> Result<CacheEntry, CacheEntryError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(CacheEntryError::Empty);
        }
        if !s.contains('=') {
            let mut e = CacheEntry::new("registry");
            e.set("ref", s);
            return Ok(e);
        }
        let mut ty = None;
        let mut fields = Vec::new();
        for field in s.split(',') {
            let field = field.trim();
            if field.is_empty() {
                continue;
            }
            let (k, v) = field.split_once('=').ok_or(CacheEntryError::NotKeyValue)?;
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
            if k == "type" {
                ty = Some(v);
            } else {
                fields.push((k, v));
            }
        }
        let mut e = CacheEntry::new(ty.as_deref().unwrap_or("registry"));
        for (k, v) in fields {
            e.set(&k, v);
        }
        let Some(b) = backend(&e.ty) else {
            return Err(CacheEntryError::UnknownType(e.ty));
        };
        let required = b.needs_one_of;
        if !required.is_empty() && !required.iter().any(|k| e.attrs.contains_key(*k)) {
            return Err(CacheEntryError::Needs {
                ty: e.ty,
                one_of: required,
            });
        }
        Ok(e)
    }

    /// This entry for one node's share of a multi-node build, `suffix` naming its platforms
    /// (`linux-arm64`): a registry cache `ref=<repo>:<tag>` becomes `<repo>:<tag>-<suffix>`,
    /// a ref without a tag `<repo>:cache-<suffix>`, a local cache's tag in its index.json
    /// `<tag>-<suffix>` (`latest-linux-arm64`); refs by digest and other cache types stay
    /// as they are. So every node exports and imports its own cache, and none overwrites
    /// another's.
    pub fn split(&self, suffix: &str) -> CacheEntry {
        let mut out = self.clone();
        if self.ty == "local" {
            // One local directory, a tag in its index.json each.
            let tag = self.get("tag").unwrap_or("latest");
            out.attrs.insert("tag".into(), format!("{tag}-{suffix}"));
            return out;
        }
        if self.ty != "registry" {
            return out;
        }
        let Some(r) = self.get("ref") else {
            return out;
        };
        if r.contains('@') {
            return out;
        }
        let name_end = r.rfind('/').map(|i| i + 1).unwrap_or(0);
        let split = match r[name_end..].rfind(':') {
            Some(_) => format!("{r}-{suffix}"),
            None => format!("{r}:cache-{suffix}"),
        };
        out.attrs.insert("ref".into(), split);
        out
    }

    /// A registry export to an ECR host gets `image-manifest=true,oci-mediatypes=true` (ECR
    /// refuses BuildKit's default cache manifest) unless the entry sets them itself.
    pub fn with_ecr_defaults(mut self) -> CacheEntry {
        let ecr = self.ty == "registry"
            && self
                .get("ref")
                .and_then(|r| r.split('/').next())
                .is_some_and(|host| crate::ecr::parse_host(host).is_some());
        if ecr {
            for k in ["image-manifest", "oci-mediatypes"] {
                self.attrs
                    .entry(k.to_string())
                    .or_insert_with(|| "true".into());
            }
        }
        self
    }

    /// The entry as BuildKit takes it (the one place credentials are written out).
    pub fn to_proto(&self) -> CacheOptionsEntry {
        let mut attrs: HashMap<String, String> = self
            .attrs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in &self.secret_attrs {
            attrs.insert(k.clone(), v.expose().to_owned());
        }
        CacheOptionsEntry {
            r#type: self.ty.clone(),
            attrs,
        }
    }
}

/// Cache exports as BuildKit takes them (ECR defaults applied).
pub(crate) fn exports(entries: &[CacheEntry]) -> Vec<CacheOptionsEntry> {
    entries
        .iter()
        .map(|e| e.clone().with_ecr_defaults().to_proto())
        .collect()
}

/// Cache imports as BuildKit takes them.
pub(crate) fn imports(entries: &[CacheEntry]) -> Vec<CacheOptionsEntry> {
    entries.iter().map(CacheEntry::to_proto).collect()
}

/// Checks a buildx cache string (Check time); the reason, if it is unusable.
pub fn check_cache_entry(s: &str) -> Result<(), String> {
    CacheEntry::parse(s).map(|_| ()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(e: &CacheEntry) -> Vec<(String, String)> {
        e.attrs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    #[test]
    fn buildx_strings() {
        let e = CacheEntry::parse("type=registry,ref=x/y:z,image-manifest=true").unwrap();
        assert_eq!(e.ty, "registry");
        assert_eq!(e.get("ref"), Some("x/y:z"));
        assert_eq!(e.get("image-manifest"), Some("true"));
        let bare = CacheEntry::parse("127.0.0.1:5000/c:x").unwrap();
        assert_eq!(
            (bare.ty.as_str(), bare.get("ref")),
            ("registry", Some("127.0.0.1:5000/c:x"))
        );
        assert_eq!(
            CacheEntry::parse("type=registry,bogus"),
            Err(CacheEntryError::NotKeyValue)
        );
        assert!(matches!(
            CacheEntry::parse("type=nosuch,ref=x"),
            Err(CacheEntryError::UnknownType(_))
        ));
        assert!(CacheEntry::parse("type=registry,mode=max")
            .unwrap_err()
            .to_string()
            .contains("needs ref"));
        assert!(CacheEntry::parse("type=local")
            .unwrap_err()
            .to_string()
            .contains("needs src or dest"));
        assert_eq!(CacheEntry::parse(" "), Err(CacheEntryError::Empty));
        assert!(CacheEntry::parse("type=local,src=/tmp/c").is_ok());
        assert!(CacheEntry::parse("type=inline").is_ok());
    }

    #[test]
    fn credentials_are_secret_attrs_and_never_in_debug_or_errors() {
        let e = CacheEntry::parse(
            "type=s3,bucket=b,region=r,access_key_id=AKIA,secret_access_key=sekrit,session_token=tok",
        )
        .unwrap();
        assert_eq!(e.get("access_key_id"), Some("AKIA"));
        assert!(e.get("secret_access_key").is_none());
        let debug = format!("{e:?}");
        assert!(
            !debug.contains("sekrit") && !debug.contains("tok\""),
            "{debug}"
        );
        let p = e.to_proto();
        assert_eq!(p.attrs["secret_access_key"], "sekrit");
        assert_eq!(p.attrs["session_token"], "tok");
        let err = CacheEntry::parse("type=gha,token=sekrit,oops").unwrap_err();
        assert!(!err.to_string().contains("sekrit"));
    }

    #[test]
    fn split_per_node() {
        let split = |s: &str| CacheEntry::parse(s).unwrap().split("linux-arm64");
        assert_eq!(
            attrs(&split(
                "type=registry,ref=127.0.0.1:5000/app:cache,mode=max"
            )),
            [
                ("mode".into(), "max".into()),
                ("ref".into(), "127.0.0.1:5000/app:cache-linux-arm64".into())
            ]
        );
        assert_eq!(
            split("127.0.0.1:5000/app").get("ref"),
            Some("127.0.0.1:5000/app:cache-linux-arm64")
        );
        assert_eq!(split("r/app@sha256:ab").get("ref"), Some("r/app@sha256:ab"));
        assert_eq!(split("type=inline"), CacheEntry::new("inline"));
        assert_eq!(
            split("type=local,src=/c").get("tag"),
            Some("latest-linux-arm64")
        );
        assert_eq!(
            split("type=local,dest=/c,tag=v1").get("tag"),
            Some("v1-linux-arm64")
        );
    }

    #[test]
    fn ecr_exports_get_oci_manifests_unless_set() {
        let out = exports(&[
            CacheEntry::parse(
                "type=registry,ref=123456789012.dkr.ecr.us-east-1.amazonaws.com/app:cache",
            )
            .unwrap(),
            CacheEntry::parse(
                "type=registry,ref=123456789012.dkr.ecr.us-east-1.amazonaws.com/app:c2,image-manifest=false",
            )
            .unwrap(),
            CacheEntry::parse("type=registry,ref=127.0.0.1:5000/app:cache").unwrap(),
        ]);
        assert_eq!(out[0].attrs["image-manifest"], "true");
        assert_eq!(out[0].attrs["oci-mediatypes"], "true");
        assert_eq!(
            out[1].attrs["image-manifest"], "false",
            "set by the user: kept"
        );
        assert_eq!(out[1].attrs["oci-mediatypes"], "true");
        assert!(!out[2].attrs.contains_key("image-manifest"));
    }
}

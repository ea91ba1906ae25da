//! What the Dockerfile frontend reads besides the solve's options: the main context (a
//! directory the session serves, or a remote Git/HTTP(S) context BuildKit fetches itself),
//! the Dockerfile, and the named contexts.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::filesync::{DirSource, VirtualFile};
use super::{BuildError, BuildSpec, DockerfileSource};

/// Local directory names the Dockerfile frontend asks for.
pub(crate) const DIR_CONTEXT: &str = "context";
pub(crate) const DIR_DOCKERFILE: &str = "dockerfile";

pub(super) fn invalid(msg: impl Into<String>) -> BuildError {
    BuildError::Invalid(msg.into())
}

pub(super) fn check_key(kind: &str, k: &str) -> Result<(), BuildError> {
    if k.is_empty() || k.contains(['=', '\n', '\0']) {
        return Err(invalid(format!("invalid {kind} name {k:?}")));
    }
    Ok(())
}

pub(super) fn dir_exists(p: &Path, what: &str) -> Result<PathBuf, BuildError> {
    let abs =
        std::fs::canonicalize(p).map_err(|e| invalid(format!("{what} {}: {e}", p.display())))?;
    if !abs.is_dir() {
        return Err(invalid(format!(
            "{what} {} is not a directory",
            p.display()
        )));
    }
    Ok(abs)
}

/// The Dockerfile's file name and the directory BuildKit reads it from.
fn dockerfile_source(spec: &BuildSpec) -> Result<(String, DirSource), BuildError> {
    match &spec.dockerfile {
        DockerfileSource::Path(p) => {
            let abs = std::fs::canonicalize(p)
                .map_err(|e| invalid(format!("Dockerfile {}: {e}", p.display())))?;
            if !abs.is_file() {
                return Err(invalid(format!("Dockerfile {} is not a file", p.display())));
            }
            let name = abs
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| invalid(format!("Dockerfile {} has no file name", p.display())))?;
            let mut src = DirSource {
                root: Some(abs.parent().map(Path::to_path_buf).unwrap_or_default()),
                ..Default::default()
            };
            if spec.ignore_file.is_some() {
                // the caller's ignore file wins over <Dockerfile>.dockerignore
                src.hidden.insert(format!("{name}.dockerignore"));
            }
            Ok((name, src))
        }
        DockerfileSource::Inline(text) => {
            let mut src = DirSource::default();
            src.extra.insert(
                "Dockerfile".into(),
                VirtualFile::Bytes(Arc::new(text.as_bytes().to_vec())),
            );
            Ok(("Dockerfile".to_string(), src))
        }
    }
}

/// The main context and the Dockerfile: local directories the session serves, or a remote
/// context the frontend fetches itself (with the Dockerfile from it, or from the session
/// under `dockerfilekey` as buildx does for `-f <local file>` or stdin).
pub(super) fn main_context(
    spec: &BuildSpec,
    attrs: &mut HashMap<String, String>,
    dirs: &mut BTreeMap<String, DirSource>,
) -> Result<(), BuildError> {
    let from_remote =
        matches!(&spec.dockerfile, DockerfileSource::Path(p) if p.as_os_str().is_empty());
    match &spec.remote_context {
        Some(url) => {
            attrs.insert(DIR_CONTEXT.into(), url.clone());
            if from_remote {
                attrs.insert("filename".into(), "Dockerfile".into());
                return Ok(());
            }
            attrs.insert("dockerfilekey".into(), DIR_DOCKERFILE.into());
        }
        None => {
            dirs.insert(DIR_CONTEXT.to_string(), context_source(spec)?);
        }
    }
    let (filename, dockerfile_dir) = dockerfile_source(spec)?;
    attrs.insert("filename".into(), filename);
    dirs.insert(DIR_DOCKERFILE.to_string(), dockerfile_dir);
    Ok(())
}

/// The main context, with the caller's ignore file served as its `.dockerignore`.
fn context_source(spec: &BuildSpec) -> Result<DirSource, BuildError> {
    let mut src = DirSource {
        root: Some(dir_exists(&spec.context_dir, "build context")?),
        ..Default::default()
    };
    if let Some(ignore) = &spec.ignore_file {
        let meta = std::fs::metadata(ignore)
            .map_err(|e| invalid(format!("ignore file {}: {e}", ignore.display())))?;
        if !meta.is_file() {
            return Err(invalid(format!(
                "ignore file {} is not a file",
                ignore.display()
            )));
        }
        src.extra
            .insert(".dockerignore".into(), VirtualFile::Disk(ignore.clone()));
    }
    Ok(src)
}

/// Named contexts: local directories become session directories, the rest (URLs,
/// `docker-image://`, `target:`) pass through to the frontend.
pub(super) fn named_contexts(
    spec: &BuildSpec,
    attrs: &mut HashMap<String, String>,
    dirs: &mut BTreeMap<String, DirSource>,
) -> Result<(), BuildError> {
    for (name, value) in &spec.named_contexts {
        check_key("named context", name)?;
        let v = value.trim();
        if v.contains("://") || v.starts_with("target:") || v.starts_with("input:") {
            attrs.insert(format!("context:{name}"), v.to_string());
            continue;
        }
        if name == DIR_CONTEXT || name == DIR_DOCKERFILE {
            return Err(invalid(format!(
                "named context {name:?} clashes with the main context"
            )));
        }
        let abs = dir_exists(Path::new(v), &format!("named context {name:?}"))?;
        dirs.insert(
            name.clone(),
            DirSource {
                root: Some(abs),
                ..Default::default()
            },
        );
        attrs.insert(format!("context:{name}"), format!("local:{name}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buildkit::solve::prepare;
    use crate::buildkit::Output;
    use std::path::PathBuf;

    #[test]
    fn a_remote_context_is_the_frontend_context_attribute() {
        let url = "https://example.com/app.git#main:sub";
        let remote = BuildSpec {
            remote_context: Some(url.into()),
            dockerfile: DockerfileSource::Path(PathBuf::new()),
            ..Default::default()
        };
        let p = prepare(&remote, &Output::BuildOnly, "s", "r").unwrap();
        let attrs = &p.request.frontend_attrs;
        assert_eq!(attrs.get("context").map(String::as_str), Some(url));
        assert_eq!(
            attrs.get("filename").map(String::as_str),
            Some("Dockerfile")
        );
        assert!(!attrs.contains_key("dockerfilekey"));
        assert!(p.dirs.is_empty(), "nothing local is served");
        // An inline Dockerfile with a remote context: served under `dockerfilekey`.
        let inline = BuildSpec {
            dockerfile: DockerfileSource::Inline("FROM scratch\n".into()),
            ..remote
        };
        let p = prepare(&inline, &Output::BuildOnly, "s", "r").unwrap();
        let attrs = &p.request.frontend_attrs;
        assert_eq!(
            attrs.get("dockerfilekey").map(String::as_str),
            Some("dockerfile")
        );
        assert!(p.dirs.contains_key(DIR_DOCKERFILE) && !p.dirs.contains_key(DIR_CONTEXT));
    }
}

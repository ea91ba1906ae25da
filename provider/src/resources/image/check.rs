//! Inputs to a typed [`BuildPlan`], or every failure: the one parse Check, preview and up
//! share, so what Check accepts is exactly what the build gets (nothing is dropped on the
//! way) and both read the same environment (`SSH_AUTH_SOCK`, the gha cache variables).
//! The context directory and the Dockerfile's path are derived once, in [`ContextPlan`],
//! for both the context hash and the build.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::inputs::{Dockerfile, Export, ImageInputs, SshAgent};
use crate::buildkit::CacheEntry;
use crate::context;
use crate::platform;
use crate::reference::{parse_local_tag, parse_qualified, parse_tag};
use crate::remote_context;
use crate::resources::cache;
use crate::resources::{Error, Failure, PropertyPath};

/// What the build needs beyond the inputs themselves, parsed from them once.
#[derive(Debug, Clone)]
pub(super) struct BuildPlan {
    pub context: ContextPlan,
    pub add_hosts: Vec<(String, IpAddr)>,
    pub ssh: BTreeMap<String, PathBuf>,
    pub cache_from: Vec<CacheEntry>,
    pub cache_to: Vec<CacheEntry>,
}

/// Where the context comes from.
#[derive(Debug, Clone)]
enum ContextSource {
    Local(PathBuf),
    Remote(String),
    /// None given: a private, empty temporary directory.
    Empty,
}

/// Where the Dockerfile comes from.
#[derive(Debug, Clone)]
enum DockerfilePlan {
    Inline(String),
    Path(PathBuf),
    /// `Dockerfile` in the context directory.
    InContext,
}

/// The build context and the Dockerfile, derived once from the inputs for both the context
/// hash and the build.
#[derive(Debug, Clone)]
pub(super) struct ContextPlan {
    source: ContextSource,
    dockerfile: DockerfilePlan,
    /// Named contexts: name to directory, URL or `docker-image://` reference.
    pub named: BTreeMap<String, String>,
}

/// A [`ContextPlan`] on disk: the context directory, the Dockerfile's path (`None` when
/// inline) and the ignore file that applies.
#[derive(Debug, Clone)]
pub(super) struct Located {
    pub dir: PathBuf,
    /// A remote context (Git or HTTP(S) URL) BuildKit fetches itself; `dir` is then empty.
    pub remote: Option<String>,
    pub dockerfile: Option<PathBuf>,
    pub ignore_file: Option<PathBuf>,
}

impl ContextPlan {
    /// The context and Dockerfile the inputs name (what is wrong with them is Check's).
    pub fn of(inputs: &ImageInputs) -> ContextPlan {
        let source = match &inputs.context {
            Some(c) if !is_url(&c.location) => ContextSource::Local(PathBuf::from(&c.location)),
            Some(c) => ContextSource::Remote(c.location.clone()),
            None => ContextSource::Empty,
        };
        let dockerfile = match &inputs.dockerfile {
            Some(Dockerfile {
                inline: Some(text), ..
            }) => DockerfilePlan::Inline(text.clone()),
            Some(Dockerfile {
                location: Some(l), ..
            }) => DockerfilePlan::Path(PathBuf::from(l)),
            _ => DockerfilePlan::InContext,
        };
        let named = inputs
            .context
            .as_ref()
            .map(|c| c.named.clone())
            .unwrap_or_default();
        ContextPlan {
            source,
            dockerfile,
            named,
        }
    }

    /// The remote `context.location` (Git or HTTP(S)), if it is one.
    pub fn remote(&self) -> Option<&str> {
        match &self.source {
            ContextSource::Remote(l) => Some(l),
            _ => None,
        }
    }

    /// The inline Dockerfile's text.
    pub fn inline(&self) -> Option<&str> {
        match &self.dockerfile {
            DockerfilePlan::Inline(t) => Some(t),
            _ => None,
        }
    }

    /// The context on disk, with the guard of its empty directory when it has none (removed
    /// when dropped; nobody else can put files into it).
    pub fn locate(&self) -> Result<(Located, Option<tempfile::TempDir>), Error> {
        let (dir, empty) = match &self.source {
            ContextSource::Local(d) => (d.clone(), None),
            // Remote: nothing local is sent (BuildKit fetches it).
            ContextSource::Remote(_) | ContextSource::Empty => {
                let dir = tempfile::Builder::new()
                    .prefix("multiarch-empty-context-")
                    .tempdir()
                    .map_err(|e| Error::Other(format!("creating an empty build context: {e}")))?;
                (dir.path().to_path_buf(), Some(dir))
            }
        };
        let dockerfile = match &self.dockerfile {
            DockerfilePlan::Inline(_) => None,
            DockerfilePlan::Path(p) => Some(p.clone()),
            // Read by BuildKit from the remote context.
            DockerfilePlan::InContext if self.remote().is_some() => None,
            DockerfilePlan::InContext => Some(dir.join("Dockerfile")),
        };
        let ignore_file = context::ignore_file_for(&dir, dockerfile.as_deref());
        let located = Located {
            remote: self.remote().map(str::to_owned),
            dir,
            dockerfile,
            ignore_file,
        };
        Ok((located, empty))
    }

    /// The contextHash: the Dockerfile, then what the context sends (with its ignore rules),
    /// then each local named context with its own. Reads files: call it off the runtime.
    pub fn hash(&self, at: &Located) -> Result<(String, context::Reads), Error> {
        let mut contents = match (&at.dockerfile, self.inline()) {
            (_, Some(text)) => text.as_bytes().to_vec(),
            (Some(path), None) => std::fs::read(path).map_err(|e| {
                Error::invalid(
                    "dockerfile.location",
                    format!("reading {}: {e}", path.display()),
                )
            })?,
            (None, None) => Vec::new(),
        };
        if let Some(loc) = self.remote() {
            let pinned = remote_context::hash_input(loc)
                .map_err(|e| Error::invalid("context.location", e.to_string()))?;
            contents.splice(0..0, pinned.into_bytes());
        }
        let fail = |e: context::ContextError| Error::invalid("context", e.to_string());
        let files = context::walk(&at.dir, at.ignore_file.as_deref()).map_err(fail)?;
        let mut named = Vec::new();
        for (name, loc) in &self.named {
            let p = Path::new(loc);
            if !is_url(loc) && p.is_dir() {
                let ig = context::ignore_file_for(p, None);
                named.push((name.clone(), context::walk(p, ig.as_deref()).map_err(fail)?));
            }
        }
        context::context_hash_counted(&contents, &files, &named).map_err(fail)
    }
}

/// Check: every failure of the inputs (`unknown` holds the paths still unknown in preview,
/// which are not reported missing).
pub(super) fn check(inputs: &ImageInputs, unknown: &BTreeSet<PropertyPath>) -> Vec<Failure> {
    plan(inputs, unknown).err().unwrap_or_default()
}

/// The inputs as a [`BuildPlan`], or every failure, in the order of the properties.
pub(super) fn plan(
    inputs: &ImageInputs,
    unknown: &BTreeSet<PropertyPath>,
) -> Result<BuildPlan, Vec<Failure>> {
    let unknown_root = |r: &str| unknown.iter().any(|p| p.root() == Some(r));
    let mut failures = context_failures(inputs, &unknown_root);
    failures.extend(name_failures(inputs));
    let mut caches = |root: &str, converted: Result<Vec<CacheEntry>, Vec<Failure>>| {
        if unknown_root(root) {
            return Vec::new();
        }
        converted.unwrap_or_else(|f| {
            failures.extend(f);
            Vec::new()
        })
    };
    let env = &cache::process_env;
    let cache_from = caches("cacheFrom", cache::convert(&inputs.cache_from, env));
    let cache_to = caches("cacheTo", cache::convert(&inputs.cache_to, env));
    failures.extend(text_failures(inputs));
    let ssh = ssh_agents(inputs, &mut failures);
    let mut add_hosts = Vec::new();
    for (i, entry) in inputs.add_hosts.iter().enumerate() {
        match parse_add_host(entry) {
            Ok(h) => add_hosts.push(h),
            Err(reason) => failures.push(Failure::new(format!("addHosts[{i}]"), reason)),
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
    if !failures.is_empty() {
        return Err(failures);
    }
    Ok(BuildPlan {
        context: ContextPlan::of(inputs),
        add_hosts,
        ssh,
        cache_from,
        cache_to,
    })
}

/// `context` and `dockerfile`: a directory, a file, exactly one of location and inline.
fn context_failures(inputs: &ImageInputs, unknown_root: &dyn Fn(&str) -> bool) -> Vec<Failure> {
    let mut failures = Vec::new();
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
    let given = inputs
        .dockerfile
        .as_ref()
        .is_some_and(|d| d.inline.is_some() || d.location.is_some());
    if !given && !unknown_root("dockerfile") {
        match context {
            Some(loc)
                if !is_url(loc)
                    && Path::new(loc).is_dir()
                    && !Path::new(loc).join("Dockerfile").is_file() =>
            {
                failures.push(Failure::new(
                    "dockerfile",
                    format!(
                        "no Dockerfile in {loc:?}; set dockerfile.location or dockerfile.inline"
                    ),
                ));
            }
            None if !unknown_root("context") => failures.push(Failure::new(
                "dockerfile",
                "without a context, dockerfile.inline is required",
            )),
            _ => {}
        }
    }
    failures
}

/// `platforms` (each once), `tags` and `sbomGenerator`: names that must parse.
fn name_failures(inputs: &ImageInputs) -> Vec<Failure> {
    let mut failures = Vec::new();
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
    // Names only loaded into the Engine (nothing pushed) may be local, as `docker build
    // --load -t myapp:dev` takes them; a tag that is pushed names its registry.
    let local_names = inputs.load && !inputs.push;
    for (i, t) in inputs.tags.iter().enumerate() {
        let parsed = if local_names {
            parse_local_tag(t)
        } else {
            parse_tag(t).map_err(|e| match parse_local_tag(t) {
                Ok(_) if !inputs.push => e,
                Ok(_) => {
                    format!("{e} (a local name like {t:?} serves load: true with push: false only)")
                }
                Err(_) => e,
            })
        };
        if let Err(e) = parsed {
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
    failures
}

/// Text BuildKit takes as is: an inline Dockerfile, build argument and label names.
fn text_failures(inputs: &ImageInputs) -> Vec<Failure> {
    let mut failures = Vec::new();
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
    failures
}

/// The `ssh` entries' agent sockets by id; what is wrong with them goes to `failures`.
fn ssh_agents(inputs: &ImageInputs, failures: &mut Vec<Failure>) -> BTreeMap<String, PathBuf> {
    let mut ids = BTreeMap::new();
    let mut sockets = BTreeMap::new();
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
        match agent_socket(agent) {
            Ok(p) => {
                sockets.insert(agent.id.clone(), p);
            }
            Err((field, reason)) => failures.push(Failure::new(format!("ssh[{i}]{field}"), reason)),
        }
    }
    sockets
}

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
        match dest_key(e, dest) {
            Err(reason) => failures.push(Failure::new(field, reason)),
            Ok(key) => {
                if let Some(j) = dests.insert(key, i) {
                    failures.push(Failure::new(
                        field,
                        format!("{dest:?} is also written by exports[{j}]"),
                    ));
                }
            }
        }
    }
    failures
}

fn is_url(s: &str) -> bool {
    remote_context::is_remote(s)
}

/// Where export `e` writes `dest`, as one key however it is spelt (`./a.tar`, `a.tar`,
/// `dir//a.tar`), or why it cannot write there.
fn dest_key(e: &Export, dest: &str) -> Result<PathBuf, String> {
    if dest.trim().is_empty() {
        return Err("must not be empty".into());
    }
    let path = Path::new(dest);
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if path.file_name().is_none() {
        return Err(format!("{dest:?} does not name a file or directory"));
    }
    if !parent.is_dir() {
        return Err(format!(
            "{:?} is not an existing directory",
            parent.display()
        ));
    }
    if e.is_dir() {
        if path.exists() && !path.is_dir() {
            return Err(format!("{dest:?} exists and is not a directory"));
        }
    } else if path.is_dir() {
        return Err(format!(
            "{dest:?} is a directory; this export writes a file"
        ));
    }
    Ok(std::fs::canonicalize(parent)
        .unwrap_or_else(|_| parent.to_path_buf())
        .join(path.file_name().unwrap_or_default()))
}

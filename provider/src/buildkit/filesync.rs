//! `moby.filesync.v1.FileSync/DiffCopy`: the sending side of fsutil's packet
//! protocol. BuildKit (the receiver) names a directory (`dir-name`) and the
//! filters (`include-patterns`, `exclude-patterns`, `followpaths`) in the call's
//! metadata; we answer with one STAT packet per kept entry in walk order (the
//! packet's index is the file's id), an empty STAT to end the listing, then the
//! contents of every file it asks for (REQ id -> DATA chunks, empty DATA), and
//! FIN after its FIN.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;

use bollard_buildkit_proto::fsutil::types::{packet::PacketType, Packet, Stat};
use bollard_buildkit_proto::moby::filesync::v1::file_sync_server::FileSync;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::dockerignore::{clean, has_wildcards, MatchInfo, Pattern, Patterns};

const CHUNK: usize = 32 * 1024;

// Go's os.FileMode bits, which fsutil puts on the wire.
const GO_MODE_DIR: u32 = 1 << 31;
const GO_MODE_SYMLINK: u32 = 1 << 27;
const GO_MODE_SETUID: u32 = 1 << 23;
const GO_MODE_SETGID: u32 = 1 << 22;
const GO_MODE_STICKY: u32 = 1 << 20;

/// Content of a file that is not (or not where it seems to be) in the
/// directory tree.
#[derive(Debug, Clone)]
pub(crate) enum VirtualFile {
    /// Served from another place on disk (e.g. a custom ignore file served as
    /// `.dockerignore`).
    Disk(PathBuf),
    /// Served from memory (an inline Dockerfile).
    Bytes(Arc<Vec<u8>>),
}

/// One directory BuildKit may ask for by name.
#[derive(Debug, Clone, Default)]
pub(crate) struct DirSource {
    /// The real directory, if any.
    pub root: Option<PathBuf>,
    /// Top-level names replaced or added.
    pub extra: BTreeMap<String, VirtualFile>,
    /// Top-level names hidden.
    pub hidden: BTreeSet<String>,
}

#[derive(Debug, Clone)]
enum Data {
    Disk(PathBuf),
    Bytes(Arc<Vec<u8>>),
}

#[derive(Debug, Clone)]
struct Item {
    stat: Stat,
    data: Option<Data>,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Filters {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub follow: Vec<String>,
}

/// Reads the filters from DiffCopy's metadata, undoing buildkit's
/// `-encoded` query escaping of non-ASCII values.
fn metadata_values(md: &tonic::metadata::MetadataMap, key: &str) -> Vec<String> {
    let encoded = md
        .get(format!("{key}-encoded"))
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches!(v, "1" | "t" | "T" | "true" | "TRUE" | "True"));
    md.get_all(key)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| {
            if encoded {
                query_unescape(v)
            } else {
                v.to_string()
            }
        })
        .collect()
}

fn query_unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) struct FileSyncService {
    pub dirs: Arc<BTreeMap<String, DirSource>>,
}

#[tonic::async_trait]
impl FileSync for FileSyncService {
    type DiffCopyStream = ReceiverStream<Result<Packet, Status>>;
    type TarStreamStream = ReceiverStream<Result<Packet, Status>>;

    async fn diff_copy(
        &self,
        request: Request<Streaming<Packet>>,
    ) -> Result<Response<Self::DiffCopyStream>, Status> {
        let md = request.metadata();
        let name = metadata_values(md, "dir-name")
            .into_iter()
            .next()
            .unwrap_or_default();
        let filters = Filters {
            include: metadata_values(md, "include-patterns"),
            exclude: metadata_values(md, "exclude-patterns"),
            follow: metadata_values(md, "followpaths"),
        };
        let Some(source) = self.dirs.get(&name).cloned() else {
            return Err(Status::not_found(format!(
                "no access allowed to dir {name:?}"
            )));
        };
        tracing::debug!(dir = %name, ?filters, "buildkit asks for a local directory");
        let items = tokio::task::spawn_blocking(move || plan(&source, &filters))
            .await
            .map_err(|e| Status::internal(format!("listing dir {name:?}: {e}")))?
            .map_err(|e| Status::internal(format!("listing dir {name:?}: {e}")))?;
        let incoming = request.into_inner();
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(send(items, incoming, tx));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn tar_stream(
        &self,
        _request: Request<Streaming<Packet>>,
    ) -> Result<Response<Self::TarStreamStream>, Status> {
        Err(Status::unimplemented("tarstream is not supported"))
    }
}

fn packet(kind: PacketType) -> Packet {
    Packet {
        r#type: kind as i32,
        ..Default::default()
    }
}

/// Runs the sending side once the listing is known.
async fn send(
    items: Vec<Item>,
    mut incoming: Streaming<Packet>,
    tx: mpsc::Sender<Result<Packet, Status>>,
) {
    // Read the receiver's requests on their own task so that neither side
    // can block the other.
    let (req_tx, mut req_rx) = mpsc::unbounded_channel::<Result<Packet, Status>>();
    let reader = tokio::spawn(async move {
        loop {
            match incoming.message().await {
                Ok(Some(p)) => {
                    let end = p.r#type == PacketType::PacketFin as i32
                        || p.r#type == PacketType::PacketErr as i32;
                    if req_tx.send(Ok(p)).is_err() || end {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = req_tx.send(Err(e));
                    break;
                }
            }
        }
    });
    let _reader = super::AbortOnDrop(reader);

    for item in &items {
        let p = Packet {
            r#type: PacketType::PacketStat as i32,
            stat: Some(item.stat.clone()),
            ..Default::default()
        };
        if tx.send(Ok(p)).await.is_err() {
            return;
        }
    }
    if tx.send(Ok(packet(PacketType::PacketStat))).await.is_err() {
        return;
    }

    while let Some(msg) = req_rx.recv().await {
        let p = match msg {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!("filesync receiver went away: {e}");
                return;
            }
        };
        match PacketType::try_from(p.r#type) {
            Ok(PacketType::PacketReq) => {
                let id = p.id;
                let data = items.get(id as usize).and_then(|i| i.data.clone());
                let Some(data) = data else {
                    let _ = tx
                        .send(Err(Status::invalid_argument(format!(
                            "invalid file id {id}"
                        ))))
                        .await;
                    return;
                };
                if let Err(e) = send_file(id, &data, &tx).await {
                    let mut err = packet(PacketType::PacketErr);
                    err.data = e.into_bytes();
                    let _ = tx.send(Ok(err)).await;
                    return;
                }
            }
            Ok(PacketType::PacketFin) => {
                let _ = tx.send(Ok(packet(PacketType::PacketFin))).await;
                return;
            }
            Ok(PacketType::PacketErr) => {
                tracing::debug!(
                    "filesync receiver reported: {}",
                    String::from_utf8_lossy(&p.data)
                );
                return;
            }
            _ => {}
        }
    }
}

async fn send_file(
    id: u32,
    data: &Data,
    tx: &mpsc::Sender<Result<Packet, Status>>,
) -> Result<(), String> {
    let chunk = |bytes: Vec<u8>| Packet {
        r#type: PacketType::PacketData as i32,
        id,
        data: bytes,
        ..Default::default()
    };
    match data {
        Data::Bytes(b) => {
            for part in b.chunks(CHUNK) {
                tx.send(Ok(chunk(part.to_vec())))
                    .await
                    .map_err(|_| "receiver closed".to_string())?;
            }
        }
        Data::Disk(path) => {
            let mut f = tokio::fs::File::open(path)
                .await
                .map_err(|e| format!("open {}: {e}", path.display()))?;
            loop {
                let mut buf = vec![0u8; CHUNK];
                let n = f
                    .read(&mut buf)
                    .await
                    .map_err(|e| format!("read {}: {e}", path.display()))?;
                if n == 0 {
                    break;
                }
                buf.truncate(n);
                tx.send(Ok(chunk(buf)))
                    .await
                    .map_err(|_| "receiver closed".to_string())?;
            }
        }
    }
    tx.send(Ok(chunk(Vec::new())))
        .await
        .map_err(|_| "receiver closed".to_string())
}

fn go_mode(md: &std::fs::Metadata) -> u32 {
    let m = md.mode();
    let mut out = m & 0o777;
    if m & 0o4000 != 0 {
        out |= GO_MODE_SETUID;
    }
    if m & 0o2000 != 0 {
        out |= GO_MODE_SETGID;
    }
    if m & 0o1000 != 0 {
        out |= GO_MODE_STICKY;
    }
    let ft = md.file_type();
    if ft.is_dir() {
        out |= GO_MODE_DIR;
    } else if ft.is_symlink() {
        out |= GO_MODE_SYMLINK;
    }
    out
}

fn mtime_ns(md: &std::fs::Metadata) -> i64 {
    md.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(md.mtime_nsec())
}

/// What one directory entry is, before filtering.
struct Node {
    rel: String,
    abs: Option<PathBuf>,
    stat: Stat,
    data: Option<Data>,
    is_dir: bool,
}

fn node_from_disk(abs: PathBuf, rel: String) -> std::io::Result<Option<Node>> {
    let md = std::fs::symlink_metadata(&abs)?;
    let ft = md.file_type();
    if !(ft.is_file() || ft.is_dir() || ft.is_symlink()) {
        // sockets, fifos, devices: not part of a build context
        return Ok(None);
    }
    let mut stat = Stat {
        path: rel.clone(),
        mode: go_mode(&md),
        uid: md.uid(),
        gid: md.gid(),
        mod_time: mtime_ns(&md),
        ..Default::default()
    };
    let mut data = None;
    if ft.is_symlink() {
        stat.linkname = std::fs::read_link(&abs)?.to_string_lossy().into_owned();
        stat.size = md.len() as i64;
    } else if ft.is_file() {
        stat.size = md.len() as i64;
        data = Some(Data::Disk(abs.clone()));
    }
    Ok(Some(Node {
        rel,
        abs: Some(abs),
        stat,
        data,
        is_dir: ft.is_dir(),
    }))
}

fn node_from_virtual(vf: &VirtualFile, rel: String) -> std::io::Result<Node> {
    let (size, mtime, data) = match vf {
        VirtualFile::Disk(p) => {
            let md = std::fs::metadata(p)?;
            (md.len() as i64, mtime_ns(&md), Data::Disk(p.clone()))
        }
        VirtualFile::Bytes(b) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as i64)
                .unwrap_or(0);
            (b.len() as i64, now, Data::Bytes(b.clone()))
        }
    };
    Ok(Node {
        stat: Stat {
            path: rel.clone(),
            mode: 0o644,
            size,
            mod_time: mtime,
            ..Default::default()
        },
        rel,
        abs: None,
        data: Some(data),
        is_dir: false,
    })
}

/// The children of a directory, sorted by name (fsutil walks in that order).
fn children(source: &DirSource, dir: Option<&Node>) -> std::io::Result<Vec<Node>> {
    let mut out: BTreeMap<String, Node> = BTreeMap::new();
    let (abs, prefix) = match dir {
        None => (source.root.clone(), String::new()),
        Some(d) => (d.abs.clone(), format!("{}/", d.rel)),
    };
    if let Some(abs) = abs {
        for entry in std::fs::read_dir(&abs)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if dir.is_none() && (source.hidden.contains(&name) || source.extra.contains_key(&name))
            {
                continue;
            }
            match node_from_disk(entry.path(), format!("{prefix}{name}")) {
                Ok(Some(n)) => {
                    out.insert(name, n);
                }
                Ok(None) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    if dir.is_none() {
        for (name, vf) in &source.extra {
            if !source.hidden.contains(name) {
                out.insert(name.clone(), node_from_virtual(vf, name.clone())?);
            }
        }
    }
    Ok(out.into_values().collect())
}

/// fsutil's FollowLinks: each follow path becomes an include pattern, and
/// symlinks along it are resolved (within the directory) to further paths.
fn follow_links(source: &DirSource, paths: &[String]) -> Vec<String> {
    let mut resolved = BTreeSet::new();
    for p in paths {
        resolve_follow(source, &clean(p), 0, &mut resolved);
    }
    resolved.into_iter().collect()
}

fn lookup_abs(source: &DirSource, rel: &str) -> Option<PathBuf> {
    let first = rel.split('/').next().unwrap_or(rel);
    if source.hidden.contains(first) || source.extra.contains_key(first) {
        return None;
    }
    source.root.as_ref().map(|r| r.join(rel))
}

fn resolve_follow(source: &DirSource, p: &str, depth: usize, out: &mut BTreeSet<String>) {
    let p = p.trim_start_matches('/');
    if depth > 40 || p.is_empty() || p == "." || p.starts_with("../") || p == ".." {
        return;
    }
    let parts: Vec<&str> = p.split('/').collect();
    let mut current = String::new();
    for (i, part) in parts.iter().enumerate() {
        if !current.is_empty() {
            current.push('/');
        }
        current.push_str(part);
        let rest = parts[i + 1..].join("/");
        if has_wildcards(part) {
            // expand the wildcard against the directory's entries
            let parent = current.rsplit_once('/').map(|(d, _)| d.to_string());
            let dir_abs = match &parent {
                None => source.root.clone(),
                Some(d) => lookup_abs(source, d),
            };
            if let (Some(dir_abs), Ok(pm)) = (dir_abs, Patterns::new(&[part])) {
                if let Ok(rd) = std::fs::read_dir(dir_abs) {
                    for e in rd.flatten() {
                        let name = e.file_name().to_string_lossy().into_owned();
                        if pm.matches_or_parent_matches(&name) {
                            let full = match &parent {
                                None => name,
                                Some(d) => format!("{d}/{name}"),
                            };
                            let full = if rest.is_empty() {
                                full
                            } else {
                                format!("{full}/{rest}")
                            };
                            resolve_follow(source, &full, depth + 1, out);
                        }
                    }
                }
            }
            out.insert(p.to_string());
            return;
        }
        let target = lookup_abs(source, &current)
            .and_then(|abs| std::fs::symlink_metadata(&abs).ok().map(|m| (abs, m)))
            .filter(|(_, m)| m.file_type().is_symlink())
            .and_then(|(abs, _)| std::fs::read_link(abs).ok());
        if let Some(target) = target {
            out.insert(current.clone());
            let target = target.to_string_lossy().into_owned();
            let base = if target.starts_with('/') {
                target
            } else {
                match current.rsplit_once('/') {
                    Some((d, _)) => format!("{d}/{target}"),
                    None => target,
                }
            };
            let next = if rest.is_empty() {
                base
            } else {
                format!("{base}/{rest}")
            };
            resolve_follow(source, &clean(&next), depth + 1, out);
            return;
        }
    }
    out.insert(p.to_string());
}

struct Walk {
    include: Option<Patterns>,
    exclude: Option<Patterns>,
    only_prefix_includes: bool,
    only_prefix_exclude_exceptions: bool,
    out: Vec<Item>,
    /// Ancestor directories: their item if not yet sent.
    pending: Vec<Option<Item>>,
}

const PATTERN_CHARS: &[char] = &['*', '[', ']', '?', '^', '\\'];

/// The pattern without a trailing `/**` or `/*` (fsutil's
/// `patternWithoutTrailingGlob`).
fn without_trailing_glob(p: &Pattern) -> &str {
    let p = p.text();
    let p = p.strip_suffix("/**").unwrap_or(p);
    p.strip_suffix("/*").unwrap_or(p)
}

#[cfg(test)]
fn plan_public(source: &DirSource, filters: &Filters) -> Result<Vec<(String, u32)>, String> {
    Ok(plan(source, filters)?
        .into_iter()
        .map(|i| (i.stat.path, i.stat.mode))
        .collect())
}

/// Lists what to send, in order, applying the filters the way fsutil's
/// filter FS does (a kept entry brings its parent directories along).
///
/// This walk is the sender's own on purpose: whatever ignore file the
/// caller chose is already folded into the patterns BuildKit sends back
/// (the frontend reads `.dockerignore` through this same service), so a
/// `crate::context` walk could only pre-filter, never replace this.
fn plan(source: &DirSource, filters: &Filters) -> Result<Vec<Item>, String> {
    let mut include = filters.include.clone();
    if !filters.follow.is_empty() {
        include.extend(follow_links(source, &filters.follow));
        include.sort();
        include.dedup();
    }
    let include = if include.is_empty() {
        None
    } else {
        Some(Patterns::new(&include).map_err(|e| format!("invalid include patterns: {e}"))?)
    };
    let exclude = if filters.exclude.is_empty() {
        None
    } else {
        Some(
            Patterns::new(&filters.exclude)
                .map_err(|e| format!("invalid exclude patterns: {e}"))?,
        )
    };
    let only_prefix_includes = include.as_ref().is_none_or(|m| {
        m.patterns()
            .iter()
            .all(|p| p.is_exception() || !without_trailing_glob(p).contains(PATTERN_CHARS))
    });
    let only_prefix_exclude_exceptions = exclude.as_ref().is_none_or(|m| {
        m.patterns()
            .iter()
            .all(|p| !p.is_exception() || !without_trailing_glob(p).contains(PATTERN_CHARS))
    });
    let mut w = Walk {
        include,
        exclude,
        only_prefix_includes,
        only_prefix_exclude_exceptions,
        out: Vec::new(),
        pending: Vec::new(),
    };
    w.dir(source, None, &MatchInfo::default(), &MatchInfo::default())
        .map_err(|e| e.to_string())?;
    Ok(w.out)
}

impl Walk {
    fn prefix_could_match(m: &Patterns, dir: &str, exclusions: bool) -> bool {
        let dir_slash = format!("{dir}/");
        m.patterns().iter().any(|p| {
            p.is_exception() == exclusions
                && format!("{}/", without_trailing_glob(p)).starts_with(&dir_slash)
        })
    }

    fn dir(
        &mut self,
        source: &DirSource,
        dir: Option<&Node>,
        inc_parent: &MatchInfo,
        exc_parent: &MatchInfo,
    ) -> std::io::Result<()> {
        for node in children(source, dir)? {
            let mut skip = false;
            let mut inc_info = MatchInfo::default();
            let mut exc_info = MatchInfo::default();
            if let Some(inc) = &self.include {
                if !inc.matches(&node.rel, inc_parent, &mut inc_info) {
                    if node.is_dir
                        && self.only_prefix_includes
                        && !Self::prefix_could_match(inc, &node.rel, false)
                    {
                        continue;
                    }
                    skip = true;
                }
            }
            if let Some(exc) = &self.exclude {
                if exc.matches(&node.rel, exc_parent, &mut exc_info) {
                    if node.is_dir && self.only_prefix_exclude_exceptions {
                        if !exc.has_exceptions() {
                            continue;
                        }
                        if !Self::prefix_could_match(exc, &node.rel, true) {
                            continue;
                        }
                    }
                    skip = true;
                }
            }
            let item = Item {
                stat: node.stat.clone(),
                data: node.data.clone(),
            };
            if !skip {
                for p in self.pending.iter_mut() {
                    if let Some(parent) = p.take() {
                        self.out.push(parent);
                    }
                }
                self.out.push(item.clone());
            }
            if node.is_dir {
                self.pending.push(if skip { Some(item) } else { None });
                let r = self.dir(source, Some(&node), &inc_info, &exc_info);
                self.pending.pop();
                r?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

//! Build context: walk with .dockerignore rules, contextHash.
//!
//! [`walk`] lists what BuildKit's file sync (fsutil) sends for a context
//! directory once the ignore file's patterns are applied as Docker applies
//! them (moby/patternmatcher, `ignorefile.ReadAll` + `MatchesUsingParentResults`,
//! see [`crate::dockerignore`] for the pattern rules, and fsutil's filtered
//! walk): an excluded directory is descended into only if some exception
//! could match a path inside it, and is then listed only if something inside
//! it is kept.
//!
//! Where this differs from Docker: a pattern whose regex Go would reject
//! (e.g. `a\q`) fails when the ignore file is read, not when first matched;
//! sockets, FIFOs and devices are left out of the walk.
//!
//! [`context_hash`] digests the Dockerfile and the walked files so that the
//! same sources give the same digest on every checkout and machine.
//!
//! Both block (on a shared pool of I/O threads): from async code, call them
//! through `spawn_blocking`.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::dockerignore::{MatchInfo, Patterns};

/// What a context entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    /// A symbolic link (not followed) and its target as written.
    Symlink(String),
}

/// One file, directory or symlink the context sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEntry {
    /// `/`-separated, relative to the context root, no leading `/`.
    pub rel_path: String,
    pub kind: EntryKind,
    /// Permission bits of `st_mode` (`st_mode & 0o7777`: rwx, setuid,
    /// setgid, sticky), for the file sync.
    pub mode: u32,
    pub size: u64,
    pub mtime_ns: i64,
    pub uid: u32,
    pub gid: u32,
    /// Status change time, inode and device: with size, mtime and mode, what the content
    /// hash cache compares (as git's index does).
    pub ctime_ns: i64,
    pub ino: u64,
    pub dev: u64,
}

/// The walk of a context directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextFiles {
    /// The context directory, symlinks resolved.
    pub root: PathBuf,
    /// In fsutil's walk order: depth first, each directory's children sorted
    /// by name bytewise, a directory before its children. That is `rel_path`
    /// order with `/` comparing lower than any other byte (fsutil's
    /// `ComparePath`), so `a/b` comes before `a-b` and `a.txt`.
    pub entries: Vec<ContextEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("{}, line {line}: invalid pattern {pattern:?}: {reason}", file.display())]
    Pattern {
        file: PathBuf,
        line: usize,
        pattern: String,
        reason: String,
    },
    #[error("{}: name is not valid UTF-8", .0.display())]
    NotUtf8(PathBuf),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ContextError + 'a {
    move |source| ContextError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The ignore file BuildKit's Dockerfile frontend uses: `<dockerfile>.dockerignore`
/// (e.g. `build/app.Dockerfile.dockerignore`) if it exists, else
/// `<context>/.dockerignore` if it exists. Without a Dockerfile path the
/// Dockerfile is `<context>/Dockerfile`.
pub fn ignore_file_for(context: &Path, dockerfile: Option<&Path>) -> Option<PathBuf> {
    let dockerfile = dockerfile
        .map(Path::to_path_buf)
        .unwrap_or_else(|| context.join("Dockerfile"));
    let mut specific = dockerfile.into_os_string();
    specific.push(".dockerignore");
    let specific = PathBuf::from(specific);
    if specific.is_file() {
        return Some(specific);
    }
    let general = context.join(".dockerignore");
    general.is_file().then_some(general)
}

/// Walks `context` (not following symlinks; sockets, FIFOs and devices are
/// left out) with the patterns of `ignore_file`, if any.
pub fn walk(context: &Path, ignore_file: Option<&Path>) -> Result<ContextFiles, ContextError> {
    let ignore = match ignore_file {
        Some(file) => {
            let bytes = fs::read(file).map_err(io_err("read", file))?;
            let text = String::from_utf8_lossy(&bytes);
            Some(
                Patterns::from_ignore_file(&text).map_err(|e| ContextError::Pattern {
                    file: file.to_path_buf(),
                    line: e.line,
                    pattern: e.pattern,
                    reason: e.reason,
                })?,
            )
        }
        None => None,
    };
    walk_with(context, ignore.as_ref()).map(|(files, _)| files)
}

/// SHA-256 (`sha256:<hex>`) over the Dockerfile, the context's entries and
/// each named context (sorted by name). Per entry: its path, its kind, and
/// for a file its contents' SHA-256 and whether it is executable (no other
/// mode bits, no times, no owners); for a symlink its target. Every
/// variable-length field is length-prefixed. File contents are hashed in
/// parallel and combined in entry order.
#[cfg(test)]
pub fn context_hash(
    dockerfile_contents: &[u8],
    files: &ContextFiles,
    named: &[(String, ContextFiles)],
) -> Result<String, ContextError> {
    context_hash_counted(dockerfile_contents, files, named).map(|(h, _)| h)
}

/// How much of a context was read to hash it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reads {
    pub files: usize,
    /// Files read (the rest came from the stat cache).
    pub read: usize,
    pub bytes: u64,
}

/// [`context_hash`], and how much was read.
pub fn context_hash_counted(
    dockerfile_contents: &[u8],
    files: &ContextFiles,
    named: &[(String, ContextFiles)],
) -> Result<(String, Reads), ContextError> {
    let mut named: Vec<&(String, ContextFiles)> = named.iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));

    let mut reads = Reads::default();
    let mut h = Sha256::new();
    h.update(b"multiarch context hash v1\0");
    put_bytes(&mut h, dockerfile_contents);
    put_tree(&mut h, files, &mut reads)?;
    put_len(&mut h, named.len());
    for (name, tree) in named {
        put_bytes(&mut h, name.as_bytes());
        put_tree(&mut h, tree, &mut reads)?;
    }
    Ok((format!("sha256:{}", hex::encode(h.finalize())), reads))
}

/// [`walk`] with the context's own ignore file ([`ignore_file_for`] without a
/// Dockerfile path), then [`context_hash`] with an empty Dockerfile.
#[cfg(test)]
pub fn hash_dir(context: &Path) -> Result<String, ContextError> {
    let ignore = ignore_file_for(context, None);
    let files = walk(context, ignore.as_deref())?;
    context_hash(b"", &files, &[])
}

// ---------------------------------------------------------------------------
// Hashing

fn put_len(h: &mut Sha256, n: usize) {
    h.update((n as u64).to_le_bytes());
}

fn put_bytes(h: &mut Sha256, b: &[u8]) {
    put_len(h, b.len());
    h.update(b);
}

fn put_tree(h: &mut Sha256, files: &ContextFiles, reads: &mut Reads) -> Result<(), ContextError> {
    let digests = hash_files(files, reads)?;
    let mut digests = digests.iter();

    put_len(h, files.entries.len());
    for e in &files.entries {
        match &e.kind {
            EntryKind::File => {
                h.update(b"f");
                put_bytes(h, e.rel_path.as_bytes());
                h.update([u8::from(e.mode & 0o111 != 0)]);
                h.update(digests.next().expect("one digest per file"));
            }
            EntryKind::Dir => {
                h.update(b"d");
                put_bytes(h, e.rel_path.as_bytes());
            }
            EntryKind::Symlink(target) => {
                h.update(b"l");
                put_bytes(h, e.rel_path.as_bytes());
                put_bytes(h, target.as_bytes());
            }
        }
    }
    Ok(())
}

const READ_BUF: usize = 256 << 10;

/// Threads for reading the context: more than the cores, because on a cold
/// page cache they mostly wait on the disk, and more requests in flight is
/// what makes that fast (2.3x faster with 16 threads than with 2 on a 2-core
/// machine, measured); with a warm cache the extra threads cost nothing
/// measurable.
fn io_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores * 8).clamp(8, 64)
}

/// Runs `f` in the context I/O thread pool (or right here if it can't be
/// had).
fn in_io_pool<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    let pool = POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(io_threads())
            .thread_name(|i| format!("context-io-{i}"))
            // Room for the walk's recursion however deep the tree.
            .stack_size(16 << 20)
            .build()
            .ok()
    });
    match pool {
        Some(pool) => pool.install(f),
        None => f(),
    }
}

/// A file's content digest, valid while its stat fields are unchanged. The file sync reads
/// the context once more anyway; this cache saves the second and third hashing pass of a
/// changed `up` (Diff, then Create/Update) and makes a no-change Diff a walk of stats.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
    dev: u64,
    mode: u32,
}

struct Cached {
    stamp: Stamp,
    digest: [u8; 32],
    /// When reading began (ns since the epoch).
    hashed_at_ns: i64,
}

/// Racy timestamps (git's "racy clean" problem): a file changed within this window before
/// it was hashed may change again without a different stamp (coarse file-system clocks, a
/// write in the same tick), so its cached digest is not trusted.
const RACY_NS: i64 = 2_000_000_000;

/// Entries kept at most; past that the cache starts over.
const CACHE_ENTRIES: usize = 1 << 20;

fn cache() -> &'static Mutex<HashMap<PathBuf, Cached>> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Cached>>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

fn stamp(e: &ContextEntry) -> Stamp {
    Stamp {
        size: e.size,
        mtime_ns: e.mtime_ns,
        ctime_ns: e.ctime_ns,
        ino: e.ino,
        dev: e.dev,
        mode: e.mode,
    }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The cached digest of `path`, if its stamp is unchanged and was not racy when hashed.
fn cached_digest(path: &Path, e: &ContextEntry) -> Option<[u8; 32]> {
    let cache = cache().lock().ok()?;
    let c = cache.get(path)?;
    let settled = e.mtime_ns < c.hashed_at_ns - RACY_NS && e.ctime_ns < c.hashed_at_ns - RACY_NS;
    (c.stamp == stamp(e) && settled).then_some(c.digest)
}

fn remember(done: &[(usize, [u8; 32], i64)], files: &ContextFiles) {
    let Ok(mut cache) = cache().lock() else {
        return;
    };
    if cache.len() + done.len() > CACHE_ENTRIES {
        cache.clear();
    }
    for &(i, digest, hashed_at_ns) in done {
        let e = &files.entries[i];
        cache.insert(
            files.root.join(&e.rel_path),
            Cached {
                stamp: stamp(e),
                digest,
                hashed_at_ns,
            },
        );
    }
}

/// The SHA-256 of every file of `files.entries`, in entry order: from the stat cache where
/// the file is unchanged, else read. Each thread of the I/O pool takes the next file of a
/// shared list, biggest first (so that no big file is left for the end), until none is left.
fn hash_files(files: &ContextFiles, reads: &mut Reads) -> Result<Vec<[u8; 32]>, ContextError> {
    let path = |i: usize| files.root.join(&files.entries[i].rel_path);
    let mut by_entry = vec![None; files.entries.len()];
    let mut work = Vec::new();
    for (i, e) in files.entries.iter().enumerate() {
        if e.kind != EntryKind::File {
            continue;
        }
        reads.files += 1;
        match cached_digest(&path(i), e) {
            Some(d) => by_entry[i] = Some(d),
            None => work.push(i),
        }
    }
    reads.read += work.len();
    reads.bytes += work.iter().map(|&i| files.entries[i].size).sum::<u64>();
    let hash_one = |i: usize, buf: &mut [u8]| -> Result<(usize, [u8; 32], i64), ContextError> {
        let at = now_ns();
        hash_file(&path(i), buf).map(|d| (i, d, at))
    };
    let done: Vec<(usize, [u8; 32], i64)> = if work.len() < 32 {
        let mut buf = vec![0; READ_BUF];
        work.iter()
            .map(|&i| hash_one(i, &mut buf))
            .collect::<Result<_, _>>()?
    } else {
        work.sort_by_key(|&i| std::cmp::Reverse(files.entries[i].size));
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let worker = || {
            let mut buf = vec![0; READ_BUF];
            let mut done = Vec::new();
            while !failed.load(Ordering::Relaxed) {
                let Some(&i) = work.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    break;
                };
                match hash_one(i, &mut buf) {
                    Ok(d) => done.push(d),
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                }
            }
            Ok(done)
        };
        let results = in_io_pool(|| rayon::broadcast(|_| worker()));
        let mut all = Vec::new();
        for r in results {
            all.extend(r?);
        }
        all
    };
    for &(i, d, _) in &done {
        by_entry[i] = Some(d);
    }
    remember(&done, files);
    Ok(by_entry.into_iter().flatten().collect())
}

fn hash_file(path: &Path, buf: &mut [u8]) -> Result<[u8; 32], ContextError> {
    let mut f = File::open(path).map_err(io_err("open", path))?;
    let mut h = Sha256::new();
    loop {
        match f.read(buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err("read", path)(e)),
        }
    }
    Ok(h.finalize().into())
}

// ---------------------------------------------------------------------------
// Walking

/// Walks and also returns how many directories were read (for tests).
fn walk_with(
    context: &Path,
    ignore: Option<&Patterns>,
) -> Result<(ContextFiles, usize), ContextError> {
    let root = fs::canonicalize(context).map_err(io_err("resolve", context))?;
    let meta = fs::metadata(&root).map_err(io_err("stat", &root))?;
    if !meta.is_dir() {
        return Err(ContextError::NotADirectory(root));
    }
    let w = Walker {
        ignore,
        dirs_read: AtomicUsize::new(0),
    };
    let entries = in_io_pool(|| w.dir(&root, "", &MatchInfo::default(), false, true))?;
    Ok((ContextFiles { root, entries }, w.dirs_read.into_inner()))
}

struct Walker<'a> {
    ignore: Option<&'a Patterns>,
    dirs_read: AtomicUsize,
}

/// A directory's child, before walking the subdirectories.
enum Child {
    Kept(ContextEntry),
    Dir {
        entry: ContextEntry,
        abs: PathBuf,
        /// Its per-pattern results, for its children.
        info: MatchInfo,
        /// Excluded, walked only for exceptions inside: listed only if
        /// something below it is kept.
        excluded: bool,
        /// Its `rel_path` is its real name (valid UTF-8 all the way).
        exact: bool,
    },
}

impl Walker<'_> {
    /// The kept entries below `abs` (`rel` relative to the root), in walk
    /// order. Subdirectories are walked in parallel.
    fn dir(
        &self,
        abs: &Path,
        rel: &str,
        parent_info: &MatchInfo,
        excluded: bool,
        rel_exact: bool,
    ) -> Result<Vec<ContextEntry>, ContextError> {
        let Some(listing) = self.listing(abs, excluded)? else {
            return Ok(Vec::new());
        };
        let mut children = Vec::with_capacity(listing.len());
        let mut scratch = MatchInfo::default();
        for de in listing {
            let name = de.file_name();
            let name_str = name.to_string_lossy();
            let child_rel = if rel.is_empty() {
                name_str.into_owned()
            } else {
                format!("{rel}/{name_str}")
            };
            let is_dir = match de.file_type() {
                Ok(ft) => ft.is_dir(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("stat", &de.path())(e)),
            };
            let child_excluded = match self.ignore {
                Some(ign) => ign.matches(&child_rel, parent_info, &mut scratch),
                None => false,
            };
            if child_excluded {
                let descend = is_dir
                    && self
                        .ignore
                        .is_some_and(|ign| ign.could_reinclude_under(&child_rel));
                if descend {
                    if let Some(entry) = entry_for(&de, child_rel, true)? {
                        children.push(Child::Dir {
                            entry,
                            abs: de.path(),
                            info: std::mem::take(&mut scratch),
                            excluded: true,
                            exact: rel_exact && name.to_str().is_some(),
                        });
                    }
                }
                continue;
            }
            if !rel_exact || name.to_str().is_none() {
                return Err(ContextError::NotUtf8(de.path()));
            }
            match entry_for(&de, child_rel, false)? {
                Some(entry) if entry.kind == EntryKind::Dir => children.push(Child::Dir {
                    entry,
                    abs: de.path(),
                    info: std::mem::take(&mut scratch),
                    excluded: false,
                    exact: true,
                }),
                Some(entry) => children.push(Child::Kept(entry)),
                None => {}
            }
        }

        self.below(children)
    }

    /// A directory's entries sorted by name; `None` when it vanished since it was listed
    /// (fsutil skips it) or is excluded and unreadable (fsutil ignores permission errors on
    /// excluded paths).
    fn listing(
        &self,
        abs: &Path,
        excluded: bool,
    ) -> Result<Option<Vec<fs::DirEntry>>, ContextError> {
        let rd = match fs::read_dir(abs) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if excluded && e.kind() == io::ErrorKind::PermissionDenied => return Ok(None),
            Err(e) => return Err(io_err("read directory", abs)(e)),
        };
        self.dirs_read.fetch_add(1, Ordering::Relaxed);
        let mut listing = Vec::new();
        for de in rd {
            listing.push(de.map_err(io_err("read directory", abs))?);
        }
        listing.sort_unstable_by(|a, b| a.file_name().as_bytes().cmp(b.file_name().as_bytes()));
        Ok(Some(listing))
    }

    /// The children's entries, each directory followed by what it holds (walked in parallel
    /// when there are several); an excluded directory only when something below is kept.
    fn below(&self, children: Vec<Child>) -> Result<Vec<ContextEntry>, ContextError> {
        let walk_child = |c: &Child| match c {
            Child::Kept(_) => Ok(Vec::new()),
            Child::Dir {
                entry,
                abs,
                info,
                excluded,
                exact,
            } => self.dir(abs, &entry.rel_path, info, *excluded, *exact),
        };
        let dirs = children
            .iter()
            .filter(|c| matches!(c, Child::Dir { .. }))
            .count();
        let below: Vec<Result<Vec<ContextEntry>, ContextError>> = if dirs > 1 {
            children.par_iter().map(walk_child).collect()
        } else {
            children.iter().map(walk_child).collect()
        };

        let mut out = Vec::with_capacity(children.len());
        for (child, below) in children.into_iter().zip(below) {
            let below = below?;
            match child {
                Child::Kept(entry) => out.push(entry),
                Child::Dir {
                    entry, excluded, ..
                } => {
                    if !excluded || !below.is_empty() {
                        out.push(entry);
                        out.extend(below);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The entry for `abs`, `None` for what the context does not carry (sockets,
/// FIFOs, devices) or what vanished meanwhile.
fn entry_for(
    de: &fs::DirEntry,
    rel_path: String,
    lenient: bool,
) -> Result<Option<ContextEntry>, ContextError> {
    // Not following symlinks; relative to the open directory.
    let meta = match de.metadata() {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if lenient && e.kind() == io::ErrorKind::PermissionDenied => return Ok(None),
        Err(e) => return Err(io_err("stat", &de.path())(e)),
    };
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_file() {
        EntryKind::File
    } else if ft.is_symlink() {
        let abs = de.path();
        let target = fs::read_link(&abs).map_err(io_err("read link", &abs))?;
        match target.to_str() {
            Some(t) => EntryKind::Symlink(t.to_owned()),
            None => return Err(ContextError::NotUtf8(abs)),
        }
    } else {
        return Ok(None);
    };
    Ok(Some(ContextEntry {
        rel_path,
        kind,
        mode: meta.mode() & 0o7777,
        size: meta.size(),
        mtime_ns: meta
            .mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.mtime_nsec()),
        uid: meta.uid(),
        gid: meta.gid(),
        ctime_ns: meta
            .ctime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.ctime_nsec()),
        ino: meta.ino(),
        dev: meta.dev(),
    }))
}

#[cfg(test)]
mod tests;

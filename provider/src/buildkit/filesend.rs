//! `moby.filesync.v1.FileSend/DiffCopy`: the receiving side of BuildKit's file exports.
//!
//! BuildKit calls this service once per exporter that writes to the client, naming the
//! exporter by its index in the solve request's `exporters` list in the call's metadata
//! (`buildkit-attachable-exporter-id`; absent: 0). Two protocols share the method:
//!
//! - a file (`oci`, `docker`, `tar` exporters): `BytesMessage` chunks, then the end of the
//!   stream;
//! - a directory (`local`, `oci` with `tar=false`): fsutil's packet protocol with BuildKit
//!   as the sender, the mirror of [`super::filesync`]: one STAT packet per entry (its index
//!   is the file's id), an empty STAT to end the listing; we REQuest each regular file and
//!   get DATA chunks ending with an empty DATA; once every file is complete we send FIN and
//!   BuildKit answers FIN.
//!
//! Both write into a temporary file or directory next to the destination; nothing appears
//! at the destination until [`Receipts::commit`] runs after the whole solve succeeded, so a
//! failed build leaves no partial file (the temporaries are removed when dropped).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use bollard_buildkit_proto::fsutil::types::{packet::PacketType, Packet, Stat};
use bollard_buildkit_proto::moby::filesync::v1::BytesMessage;
use bytes::{Buf, BufMut, Bytes};
use prost::Message;
use sha2::Digest;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Status, Streaming};

/// The metadata key naming the exporter (session/filesync: keyExporterID).
const EXPORTER_ID_KEY: &str = "buildkit-attachable-exporter-id";

// Go's os.FileMode bits on the wire.
const GO_MODE_DIR: u32 = 1 << 31;
const GO_MODE_SYMLINK: u32 = 1 << 27;
const GO_MODE_TYPE: u32 = 0x8F28_0000; // dir|symlink|named pipe|socket|device|char device|irregular
const GO_MODE_SETUID: u32 = 1 << 23;
const GO_MODE_SETGID: u32 = 1 << 22;
const GO_MODE_STICKY: u32 = 1 << 20;

/// What an exporter writes on the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TargetKind {
    /// One file (a tarball).
    File,
    /// A directory tree.
    Dir,
}

/// Where one exporter's output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub kind: TargetKind,
    pub dest: PathBuf,
}

/// What arrived for one exporter, not yet at its destination.
enum Received {
    File {
        tmp: tempfile::TempPath,
        sha256: String,
    },
    Dir {
        tmp: tempfile::TempDir,
    },
}

/// One written export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Where the export now is (moved there once the solve succeeded).
    pub dest: PathBuf,
    /// `sha256:<hex>` of a written file; `None` for a directory.
    pub sha256: Option<String>,
}

/// The targets of one solve by exporter index, and what BuildKit has sent for them.
#[derive(Clone, Default)]
pub(crate) struct Receipts {
    targets: Arc<BTreeMap<u32, Target>>,
    received: Arc<Mutex<BTreeMap<u32, Received>>>,
}

impl Receipts {
    pub(crate) fn new(targets: BTreeMap<u32, Target>) -> Self {
        Receipts {
            targets: Arc::new(targets),
            received: Arc::default(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Moves everything received to its destination, in exporter order. A target BuildKit
    /// sent nothing for is an error, and then nothing is moved.
    /// The exporter indexes of the targets, in order (what [`Receipts::commit`] returns is
    /// in this order).
    pub(crate) fn ids(&self) -> Vec<u32> {
        self.targets.keys().copied().collect()
    }

    pub(crate) fn commit(&self) -> Result<Vec<Written>, String> {
        let mut received = self.received.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, t)) = self
            .targets
            .iter()
            .find(|(id, _)| !received.contains_key(id))
        {
            return Err(format!(
                "BuildKit sent nothing for the export to {}",
                t.dest.display()
            ));
        }
        let mut out = Vec::new();
        for (id, target) in self.targets.iter() {
            let Some(r) = received.remove(id) else {
                continue;
            };
            match r {
                Received::File { tmp, sha256 } => {
                    tmp.persist(&target.dest)
                        .map_err(|e| format!("writing {}: {}", target.dest.display(), e.error))?;
                    out.push(Written {
                        dest: target.dest.clone(),
                        sha256: Some(sha256),
                    });
                }
                Received::Dir { tmp } => {
                    move_tree(tmp, &target.dest)
                        .map_err(|e| format!("writing {}: {e}", target.dest.display()))?;
                    out.push(Written {
                        dest: target.dest.clone(),
                        sha256: None,
                    });
                }
            }
        }
        Ok(out)
    }

    fn target(&self, md: &tonic::metadata::MetadataMap) -> Result<(u32, Target), Status> {
        let id = match md.get(EXPORTER_ID_KEY).and_then(|v| v.to_str().ok()) {
            Some(v) => v
                .trim()
                .parse::<u32>()
                .map_err(|_| Status::invalid_argument(format!("bad exporter id {v:?}")))?,
            None => 0,
        };
        let target = match self.targets.get(&id) {
            Some(t) => t.clone(),
            // BuildKit before multiple exporters names none: the only target.
            None if md.get(EXPORTER_ID_KEY).is_none() && self.targets.len() == 1 => {
                let (&only, t) = self.targets.iter().next().expect("one target");
                return Ok((only, t.clone()));
            }
            None => {
                return Err(Status::not_found(format!(
                    "no file export for exporter {id}"
                )))
            }
        };
        Ok((id, target))
    }

    /// The temporary directory of exporter `id`, made by its first stream: the `local`
    /// exporter sends each platform of a multi-platform result in a stream of its own
    /// (`linux_amd64/…`, `linux_arm64/…`), all into one tree.
    fn dir_for(&self, id: u32, dest: &Path) -> Result<PathBuf, String> {
        let mut received = self.received.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(Received::Dir { tmp }) = received.get(&id) {
            return Ok(tmp.path().to_path_buf());
        }
        let tmp = temp_dir(dest)?;
        // The tree's root gets the usual permissions of a new directory, not 0700.
        let _ = std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755));
        let path = tmp.path().to_path_buf();
        received.insert(id, Received::Dir { tmp });
        Ok(path)
    }

    fn store(&self, id: u32, r: Received) {
        self.received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, r);
    }
}

/// The directory of `dest` and the name prefix of its temporaries (hidden by the dot).
fn temp_place(dest: &Path) -> (PathBuf, String) {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".into());
    (parent, format!(".{name}."))
}

/// A temporary file next to `dest`, removed unless persisted.
fn temp_file(dest: &Path) -> Result<tempfile::NamedTempFile, String> {
    let (parent, prefix) = temp_place(dest);
    tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".partial")
        .tempfile_in(&parent)
        .map_err(|e| format!("creating a file in {}: {e}", parent.display()))
}

/// A temporary directory next to `dest`, removed unless kept.
fn temp_dir(dest: &Path) -> Result<tempfile::TempDir, String> {
    let (parent, prefix) = temp_place(dest);
    tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".partial")
        .tempdir_in(&parent)
        .map_err(|e| format!("creating a directory in {}: {e}", parent.display()))
}

/// Puts the received tree at `dest`: renamed there when `dest` does not exist; otherwise
/// each top-level entry replaces the one of the same name in `dest` (other entries of
/// `dest` stay).
fn move_tree(tmp: tempfile::TempDir, dest: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(dest) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let path = tmp.keep();
            std::fs::rename(&path, dest).inspect_err(|_| {
                let _ = std::fs::remove_dir_all(&path);
            })
        }
        Err(e) => Err(e),
        Ok(m) if !m.is_dir() => Err(std::io::Error::other("exists and is not a directory")),
        Ok(_) => {
            for entry in std::fs::read_dir(tmp.path())? {
                let entry = entry?;
                let to = dest.join(entry.file_name());
                match std::fs::symlink_metadata(&to) {
                    Ok(m) if m.is_dir() => std::fs::remove_dir_all(&to)?,
                    Ok(_) => std::fs::remove_file(&to)?,
                    Err(_) => {}
                }
                std::fs::rename(entry.path(), &to)?;
            }
            Ok(())
        }
    }
}

/// Raw message bytes both ways: the method carries `BytesMessage` or fsutil `Packet`s
/// depending on the exporter, which only the call's metadata tells.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

type Outgoing = mpsc::UnboundedSender<Result<Bytes, Status>>;

/// The service: one call per exporter.
#[derive(Clone)]
pub(crate) struct FileSendServer {
    receipts: Receipts,
    max_message: usize,
}

impl FileSendServer {
    pub(crate) fn new(receipts: Receipts, max_message: usize) -> Self {
        FileSendServer {
            receipts,
            max_message,
        }
    }

    fn diff_copy(
        &self,
        request: tonic::Request<Streaming<Bytes>>,
    ) -> Result<tonic::Response<UnboundedReceiverStream<Result<Bytes, Status>>>, Status> {
        let (id, target) = self.receipts.target(request.metadata())?;
        let incoming = request.into_inner();
        let (tx, rx) = mpsc::unbounded_channel();
        let receipts = self.receipts.clone();
        tokio::spawn(async move {
            let result = match target.kind {
                TargetKind::File => receive_file(incoming, &target.dest)
                    .await
                    .map(|r| receipts.store(id, r)),
                TargetKind::Dir => match receipts.dir_for(id, &target.dest) {
                    Ok(root) => receive_dir(incoming, root, &tx).await,
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok(()) => {}
                Err(e) => {
                    tracing::debug!(dest = %target.dest.display(), "export failed: {e}");
                    if target.kind == TargetKind::Dir {
                        let mut p = packet(PacketType::PacketErr);
                        p.data = e.clone().into_bytes();
                        let _ = tx.send(Ok(p.encode_to_vec().into()));
                    }
                    let _ = tx.send(Err(Status::internal(format!(
                        "writing {}: {e}",
                        target.dest.display()
                    ))));
                }
            }
        });
        Ok(tonic::Response::new(UnboundedReceiverStream::new(rx)))
    }
}

impl tonic::server::NamedService for FileSendServer {
    const NAME: &'static str = "moby.filesync.v1.FileSend";
}

impl<B> tower::Service<http::Request<B>> for FileSendServer
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        struct Method(FileSendServer);
        impl tonic::server::StreamingService<Bytes> for Method {
            type Response = Bytes;
            type ResponseStream = UnboundedReceiverStream<Result<Bytes, Status>>;
            type Future = std::future::Ready<Result<tonic::Response<Self::ResponseStream>, Status>>;
            fn call(&mut self, request: tonic::Request<Streaming<Bytes>>) -> Self::Future {
                std::future::ready(self.0.diff_copy(request))
            }
        }
        let this = self.clone();
        Box::pin(async move {
            if req.uri().path() != "/moby.filesync.v1.FileSend/DiffCopy" {
                let mut response = http::Response::new(tonic::body::Body::default());
                let headers = response.headers_mut();
                headers.insert(
                    Status::GRPC_STATUS,
                    (tonic::Code::Unimplemented as i32).into(),
                );
                headers.insert(
                    http::header::CONTENT_TYPE,
                    tonic::metadata::GRPC_CONTENT_TYPE,
                );
                return Ok(response);
            }
            let max = this.max_message;
            let mut grpc = tonic::server::Grpc::new(RawCodec)
                .apply_max_message_size_config(Some(max), Some(max));
            Ok(grpc.streaming(Method(this), req).await)
        })
    }
}

fn packet(kind: PacketType) -> Packet {
    Packet {
        r#type: kind as i32,
        ..Default::default()
    }
}

/// A tarball: every chunk appended to a temporary file, hashed on the way.
async fn receive_file(mut incoming: Streaming<Bytes>, dest: &Path) -> Result<Received, String> {
    let tmp = temp_file(dest)?;
    let (file, path) = tmp.into_parts();
    let mut f = tokio::fs::File::from_std(file);
    let mut hash = sha2::Sha256::new();
    while let Some(msg) = incoming.message().await.map_err(|e| e.to_string())? {
        let m = BytesMessage::decode(msg).map_err(|e| format!("bad message: {e}"))?;
        hash.update(&m.data);
        f.write_all(&m.data).await.map_err(|e| e.to_string())?;
    }
    f.flush().await.map_err(|e| e.to_string())?;
    f.sync_all().await.map_err(|e| e.to_string())?;
    // The destination gets the usual permissions of a new file, not the temporary's 0600.
    let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644));
    Ok(Received::File {
        tmp: path,
        sha256: format!("sha256:{}", hex::encode(hash.finalize())),
    })
}

/// A relative path of the export as it is under `root`; `None` for one that would leave
/// it (absolute, `..`, or below a symlink the export made).
fn inside(root: &Path, rel: &str, symlinks: &BTreeSet<String>) -> Option<PathBuf> {
    let p = Path::new(rel);
    if rel.is_empty()
        || !p
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return None;
    }
    let mut prefix = String::new();
    for part in rel.split('/') {
        if !prefix.is_empty() && symlinks.contains(&prefix) {
            return None;
        }
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
    }
    Some(root.join(p))
}

fn unix_mode(go: u32) -> u32 {
    let mut m = go & 0o777;
    if go & GO_MODE_SETUID != 0 {
        m |= 0o4000;
    }
    if go & GO_MODE_SETGID != 0 {
        m |= 0o2000;
    }
    if go & GO_MODE_STICKY != 0 {
        m |= 0o1000;
    }
    m
}

/// The state of a directory receive.
struct Tree {
    root: PathBuf,
    /// Files asked for by id: where they go, their mode and mtime, the open file.
    pending: HashMap<u32, (PathBuf, u32, i64, Option<tokio::fs::File>)>,
    symlinks: BTreeSet<String>,
    /// Directories and their modes, applied at the end (a read-only directory would
    /// refuse its own entries).
    dirs: Vec<(PathBuf, u32)>,
    listed: bool,
}

impl Tree {
    /// One STAT: directories, symlinks and hard links made now, regular files created
    /// empty and asked for. Devices, pipes and sockets are skipped.
    fn stat(&mut self, id: u32, st: Stat, tx: &Outgoing) -> Result<(), String> {
        let path = inside(&self.root, &st.path, &self.symlinks)
            .ok_or_else(|| format!("BuildKit sent the path {:?}", st.path))?;
        let mode = st.mode;
        if mode & GO_MODE_DIR != 0 {
            std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", st.path))?;
            self.dirs.push((path, unix_mode(mode)));
        } else if mode & GO_MODE_SYMLINK != 0 {
            std::os::unix::fs::symlink(&st.linkname, &path)
                .map_err(|e| format!("{}: {e}", st.path))?;
            self.symlinks.insert(st.path.clone());
        } else if mode & GO_MODE_TYPE != 0 {
            // a device, pipe or socket: not something a file export can hold
        } else if !st.linkname.is_empty() {
            let to = inside(&self.root, &st.linkname, &self.symlinks)
                .ok_or_else(|| format!("BuildKit sent the link target {:?}", st.linkname))?;
            std::fs::hard_link(&to, &path).map_err(|e| format!("{}: {e}", st.path))?;
        } else {
            let f = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", st.path))?;
            drop(f);
            self.pending
                .insert(id, (path, unix_mode(mode), st.mod_time, None));
            let mut req = packet(PacketType::PacketReq);
            req.id = id;
            tx.send(Ok(req.encode_to_vec().into()))
                .map_err(|_| "BuildKit went away".to_string())?;
        }
        Ok(())
    }

    async fn data(&mut self, id: u32, data: Vec<u8>) -> Result<(), String> {
        let Some(entry) = self.pending.get_mut(&id) else {
            return Err(format!("BuildKit sent data for unknown file {id}"));
        };
        if data.is_empty() {
            let (path, mode, mtime, f) = self.pending.remove(&id).expect("present");
            if let Some(mut f) = f {
                f.flush().await.map_err(|e| e.to_string())?;
            }
            finish_file(&path, mode, mtime).map_err(|e| format!("{}: {e}", path.display()))?;
            return Ok(());
        }
        if entry.3.is_none() {
            let f = tokio::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&entry.0)
                .await
                .map_err(|e| format!("{}: {e}", entry.0.display()))?;
            entry.3 = Some(f);
        }
        let f = entry.3.as_mut().expect("opened");
        f.write_all(&data).await.map_err(|e| e.to_string())
    }

    fn done(&self) -> bool {
        self.listed && self.pending.is_empty()
    }
}

fn finish_file(path: &Path, mode: u32, mtime_ns: i64) -> std::io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    if mtime_ns > 0 {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(mtime_ns as u64);
        if let Ok(f) = std::fs::OpenOptions::new().write(true).open(path) {
            let _ = f.set_modified(t);
        }
    }
    Ok(())
}

/// A directory through fsutil's packet protocol, BuildKit sending, into `root`.
async fn receive_dir(
    mut incoming: Streaming<Bytes>,
    root: PathBuf,
    tx: &Outgoing,
) -> Result<(), String> {
    let mut tree = Tree {
        root,
        pending: HashMap::new(),
        symlinks: BTreeSet::new(),
        dirs: Vec::new(),
        listed: false,
    };
    let mut next_id: u32 = 0;
    let mut fin_sent = false;
    loop {
        if tree.done() && !fin_sent {
            tx.send(Ok(packet(PacketType::PacketFin).encode_to_vec().into()))
                .map_err(|_| "BuildKit went away".to_string())?;
            fin_sent = true;
        }
        let Some(msg) = incoming.message().await.map_err(|e| e.to_string())? else {
            break;
        };
        let p = Packet::decode(msg).map_err(|e| format!("bad packet: {e}"))?;
        match PacketType::try_from(p.r#type) {
            Ok(PacketType::PacketStat) => match p.stat {
                Some(st) => {
                    let id = next_id;
                    next_id += 1;
                    tree.stat(id, st, tx)?;
                }
                None => tree.listed = true,
            },
            Ok(PacketType::PacketData) => tree.data(p.id, p.data).await?,
            Ok(PacketType::PacketFin) => break,
            Ok(PacketType::PacketErr) => {
                return Err(format!(
                    "BuildKit reported: {}",
                    String::from_utf8_lossy(&p.data)
                ))
            }
            _ => {}
        }
    }
    if !tree.done() {
        return Err("BuildKit ended the transfer before every file arrived".into());
    }
    for (path, mode) in tree.dirs.iter().rev() {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside() {
        let root = Path::new("/r");
        let none = BTreeSet::new();
        assert_eq!(inside(root, "a/b", &none), Some(PathBuf::from("/r/a/b")));
        assert_eq!(inside(root, "../x", &none), None);
        assert_eq!(inside(root, "/etc/passwd", &none), None);
        assert_eq!(inside(root, "a/../../x", &none), None);
        assert_eq!(inside(root, "", &none), None);
        let links = BTreeSet::from(["l".to_string()]);
        assert_eq!(inside(root, "l", &links), Some(PathBuf::from("/r/l")));
        assert_eq!(inside(root, "l/passwd", &links), None);
    }

    #[test]
    fn go_modes_to_unix() {
        assert_eq!(unix_mode(0o755), 0o755);
        assert_eq!(unix_mode(GO_MODE_DIR | GO_MODE_STICKY | 0o777), 0o1777);
        assert_eq!(unix_mode(GO_MODE_SETUID | 0o755), 0o4755);
    }

    #[test]
    fn commit_moves_files_and_merges_trees() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out.tar");
        let tree = dir.path().join("tree");
        std::fs::create_dir(&tree).unwrap();
        std::fs::write(tree.join("keep"), "mine").unwrap();
        std::fs::write(tree.join("old"), "stale").unwrap();
        let r = Receipts::new(BTreeMap::from([
            (
                1,
                Target {
                    kind: TargetKind::File,
                    dest: file.clone(),
                },
            ),
            (
                2,
                Target {
                    kind: TargetKind::Dir,
                    dest: tree.clone(),
                },
            ),
        ]));
        let t = temp_file(&file).unwrap();
        std::fs::write(t.path(), "tar").unwrap();
        r.store(
            1,
            Received::File {
                tmp: t.into_temp_path(),
                sha256: "sha256:x".into(),
            },
        );
        assert!(r.commit().is_err(), "the tree has not arrived");
        assert!(!file.exists(), "nothing moved before everything arrived");
        let d = temp_dir(&tree).unwrap();
        std::fs::write(d.path().join("old"), "new").unwrap();
        r.store(2, Received::Dir { tmp: d });
        let w = r.commit().unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "tar");
        assert_eq!(std::fs::read_to_string(tree.join("old")).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(tree.join("keep")).unwrap(), "mine");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".partial")), "{names:?}");
    }
}

//! A client-side content store served to BuildKit over the session: containerd's
//! `Content` service over OCI image layout directories on the provider's host.
//!
//! BuildKit reads and writes `type=local` caches and the `oci` exporter's layout
//! directory (`tar=false`) through the client: it names the store in the gRPC metadata
//! `buildkit-attachable-store-id` (`local:<dest>` or `local:<src>` for a cache, the attr
//! value as sent; `export` for the `oci` exporter), and writes blobs through `Write`
//! streams or reads them with `Info` and `Read`. Blobs live at `<dir>/blobs/sha256/<hex>`,
//! written to a temporary file in `<dir>` and renamed into place once their digest has
//! been verified. The client then names what was written in `<dir>/index.json`
//! ([`put_index`]), and reads it back to import a cache ([`find_in_index`]).

use std::collections::{BTreeMap, HashMap};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use sha2::Digest as _;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status};

#[allow(clippy::all, clippy::too_many_lines, missing_docs)]
pub(crate) mod pb {
    tonic::include_proto!("containerd.services.content.v1");
}

use pb::content_server::{Content, ContentServer};
use pb::{
    AbortRequest, DeleteContentRequest, Info, InfoRequest, InfoResponse, ListContentRequest,
    ListContentResponse, ListStatusesRequest, ListStatusesResponse, ReadContentRequest,
    ReadContentResponse, StatusRequest, StatusResponse, UpdateRequest, UpdateResponse, WriteAction,
    WriteContentRequest, WriteContentResponse,
};

/// The gRPC metadata key BuildKit names the store with (session/content `GRPCHeaderID`).
pub(crate) const STORE_ID_KEY: &str = "buildkit-attachable-store-id";
/// The store the `oci` exporter writes a layout directory into.
pub(crate) const EXPORT_STORE: &str = "export";
/// How long a write or read stream may stay idle before it is given up.
const IDLE: Duration = Duration::from_secs(600);
/// Largest chunk a `Read` answers with.
const CHUNK: usize = 1 << 20;

/// The store id of a local cache whose `dest` or `src` attribute is `dir`.
pub(crate) fn local_store_id(dir: &str) -> String {
    format!("local:{dir}")
}

/// One OCI layout directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    pub root: PathBuf,
}

impl Layout {
    fn blob(&self, hex: &str) -> PathBuf {
        self.root.join("blobs").join("sha256").join(hex)
    }
}

/// The hex of a `sha256:<hex>` digest, or why it is not one.
fn sha256_hex(digest: &str) -> Result<&str, Status> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| Status::invalid_argument(format!("unsupported digest {digest:?}")))?;
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(Status::invalid_argument(format!(
            "invalid digest {digest:?}"
        )));
    }
    Ok(hex)
}

fn io_status(what: &str, e: &std::io::Error) -> Status {
    match e.kind() {
        std::io::ErrorKind::NotFound => Status::not_found(format!("{what}: not found")),
        _ => Status::internal(format!("{what}: {e}")),
    }
}

fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

fn info_of(layout: &Layout, digest: &str) -> Result<Info, Status> {
    let hex = sha256_hex(digest)?;
    let path = layout.blob(hex);
    let meta = std::fs::metadata(&path).map_err(|e| io_status(&format!("blob {digest}"), &e))?;
    if !meta.is_file() {
        return Err(Status::not_found(format!("blob {digest}: not found")));
    }
    let modified = meta.modified().map(timestamp).ok();
    Ok(Info {
        digest: digest.to_owned(),
        size: i64::try_from(meta.len()).unwrap_or(i64::MAX),
        created_at: modified,
        updated_at: modified,
        labels: HashMap::new(),
    })
}

/// An ingest under way, as `Status` and `ListStatuses` report it.
#[derive(Clone, Debug)]
struct Ingest {
    status: pb::Status,
}

/// The content service of one session: its stores by id.
#[derive(Clone, Default)]
pub(crate) struct ContentService {
    stores: Arc<BTreeMap<String, Layout>>,
    ingests: Arc<Mutex<HashMap<(String, String), Ingest>>>,
}

impl ContentService {
    pub(crate) fn new(stores: BTreeMap<String, Layout>) -> Self {
        ContentService {
            stores: Arc::new(stores),
            ingests: Arc::default(),
        }
    }

    pub(crate) fn server(self, max: usize) -> ContentServer<ContentService> {
        ContentServer::new(self)
            .max_decoding_message_size(max)
            .max_encoding_message_size(max)
    }

    fn choose(&self, md: &tonic::metadata::MetadataMap) -> Result<(String, Layout), Status> {
        let id = md
            .get(STORE_ID_KEY)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Status::invalid_argument(format!("request lacks metadata {STORE_ID_KEY:?}"))
            })?;
        let layout = self.stores.get(id).ok_or_else(|| {
            Status::not_found(format!("this build serves no content store {id:?}"))
        })?;
        Ok((id.to_owned(), layout.clone()))
    }

    fn ingests(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Ingest>> {
        self.ingests.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One `Write` stream's state.
struct Writer {
    layout: Layout,
    file: tempfile::NamedTempFile,
    hasher: sha2::Sha256,
    offset: i64,
    total: i64,
    expected: Option<String>,
    started: prost_types::Timestamp,
    updated: prost_types::Timestamp,
}

impl Writer {
    fn new(layout: Layout) -> Result<Self, Status> {
        let what = format!("content store {}", layout.root.display());
        std::fs::create_dir_all(&layout.root).map_err(|e| io_status(&what, &e))?;
        let file = tempfile::Builder::new()
            .prefix(".multiarch-ingest-")
            .tempfile_in(&layout.root)
            .map_err(|e| io_status(&what, &e))?;
        let now = timestamp(SystemTime::now());
        Ok(Writer {
            layout,
            file,
            hasher: sha2::Sha256::new(),
            offset: 0,
            total: 0,
            expected: None,
            started: now,
            updated: now,
        })
    }

    fn response(&self, action: WriteAction, digest: String) -> WriteContentResponse {
        WriteContentResponse {
            action: action as i32,
            started_at: Some(self.started),
            updated_at: Some(self.updated),
            offset: self.offset,
            total: self.total,
            digest,
        }
    }

    fn status(&self, r#ref: &str) -> pb::Status {
        pb::Status {
            started_at: Some(self.started),
            updated_at: Some(self.updated),
            r#ref: r#ref.to_owned(),
            offset: self.offset,
            total: self.total,
            expected: self.expected.clone().unwrap_or_default(),
        }
    }

    fn write(&mut self, offset: i64, data: &[u8]) -> Result<(), Status> {
        if data.is_empty() {
            return Ok(());
        }
        if offset != self.offset {
            if offset != 0 {
                return Err(Status::out_of_range(format!(
                    "write at {offset}, the ingest is at {}",
                    self.offset
                )));
            }
            // Restart from the beginning.
            let f = self.file.as_file_mut();
            f.set_len(0)
                .and_then(|_| f.seek(SeekFrom::Start(0)).map(|_| ()))
                .map_err(|e| Status::internal(format!("restarting a write: {e}")))?;
            self.hasher = sha2::Sha256::new();
            self.offset = 0;
        }
        self.file
            .as_file_mut()
            .write_all(data)
            .map_err(|e| io_status(&format!("writing {}", self.file.path().display()), &e))?;
        self.hasher.update(data);
        self.offset += i64::try_from(data.len()).unwrap_or(i64::MAX);
        self.updated = timestamp(SystemTime::now());
        if self.total > 0 && self.offset > self.total {
            return Err(Status::out_of_range(format!(
                "{} bytes written, {} expected",
                self.offset, self.total
            )));
        }
        Ok(())
    }

    /// Verifies size and digest and moves the blob into place.
    fn commit(self) -> Result<WriteContentResponse, Status> {
        if self.total > 0 && self.offset != self.total {
            return Err(Status::failed_precondition(format!(
                "unexpected commit size {}, expected {}",
                self.offset, self.total
            )));
        }
        let hex = hex::encode(self.hasher.clone().finalize());
        let digest = format!("sha256:{hex}");
        if let Some(expected) = &self.expected {
            if *expected != digest {
                return Err(Status::failed_precondition(format!(
                    "unexpected commit digest {digest}, expected {expected}"
                )));
            }
        }
        let target = self.layout.blob(&hex);
        let what = format!("writing {}", target.display());
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_status(&what, &e))?;
        }
        self.file
            .as_file()
            .sync_all()
            .map_err(|e| io_status(&what, &e))?;
        let response = self.response(WriteAction::Commit, digest);
        self.file
            .persist(&target)
            .map_err(|e| io_status(&what, &e.error))?;
        Ok(WriteContentResponse {
            total: response.offset,
            ..response
        })
    }
}

/// Handles one message of a `Write` stream; `Some` response to send, and whether the
/// stream is done.
fn step(
    w: &mut Option<Writer>,
    m: WriteContentRequest,
) -> Result<(WriteContentResponse, bool), Status> {
    let writer = w
        .as_mut()
        .ok_or_else(|| Status::failed_precondition("the write has been committed"))?;
    if m.total > 0 {
        writer.total = m.total;
    }
    if !m.expected.is_empty() {
        sha256_hex(&m.expected)?;
        writer.expected = Some(m.expected.clone());
    }
    match WriteAction::try_from(m.action).unwrap_or(WriteAction::Write) {
        WriteAction::Stat => Ok((writer.response(WriteAction::Stat, String::new()), false)),
        WriteAction::Write => {
            writer.write(m.offset, &m.data)?;
            Ok((writer.response(WriteAction::Write, String::new()), false))
        }
        WriteAction::Commit => {
            writer.write(m.offset, &m.data)?;
            let Some(writer) = w.take() else {
                return Err(Status::internal("no write"));
            };
            Ok((writer.commit()?, true))
        }
    }
}

/// Feeds one `Write` stream's requests to its writer (on a blocking thread) and their
/// answers back, until the stream ends, fails, idles out or the content is committed. The
/// guard leaves the ingest table when it returns.
async fn pump(
    mut input: tonic::Streaming<WriteContentRequest>,
    first: WriteContentRequest,
    writer: Writer,
    guard: IngestGuard,
    tx: tokio::sync::mpsc::Sender<Result<WriteContentResponse, Status>>,
) {
    let table = guard.table.clone();
    let (key, r#ref) = (guard.key.clone(), first.r#ref.clone());
    let mut writer = Some(writer);
    let mut next = Some(first);
    loop {
        let m = match next.take() {
            Some(m) => m,
            None => match tokio::time::timeout(IDLE, input.next()).await {
                Ok(Some(Ok(m))) => m,
                // The stream ended or broke: the temporary file goes away.
                Ok(None) | Ok(Some(Err(_))) => break,
                Err(_) => {
                    let _ = tx
                        .send(Err(Status::deadline_exceeded(format!(
                            "write {ref:?} idle for {}s",
                            IDLE.as_secs()
                        ))))
                        .await;
                    break;
                }
            },
        };
        let mut w = writer.take();
        let (w, r) = match tokio::task::spawn_blocking(move || {
            let r = step(&mut w, m);
            (w, r)
        })
        .await
        {
            Ok(x) => x,
            Err(e) => (None, Err(Status::internal(e.to_string()))),
        };
        writer = w;
        if let Some(w) = &writer {
            if let Some(i) = table
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(&key)
            {
                i.status = w.status(&r#ref);
            }
        }
        let (resp, done) = match r {
            Ok((resp, done)) => (Ok(resp), done),
            Err(e) => (Err(e), true),
        };
        if !matches!(tokio::time::timeout(IDLE, tx.send(resp)).await, Ok(Ok(()))) || done {
            break;
        }
    }
}

/// Removes the ingest from the table when the stream ends, however it ends.
struct IngestGuard {
    table: Arc<Mutex<HashMap<(String, String), Ingest>>>,
    key: (String, String),
}

impl Drop for IngestGuard {
    fn drop(&mut self) {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

#[tonic::async_trait]
impl Content for ContentService {
    async fn info(&self, request: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        let (_, layout) = self.choose(request.metadata())?;
        let digest = request.into_inner().digest;
        let info = tokio::task::spawn_blocking(move || info_of(&layout, &digest))
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
        Ok(Response::new(InfoResponse { info: Some(info) }))
    }

    async fn update(
        &self,
        request: Request<UpdateRequest>,
    ) -> Result<Response<UpdateResponse>, Status> {
        // Labels are not kept: an OCI layout has no place for them.
        let (_, layout) = self.choose(request.metadata())?;
        let digest = request.into_inner().info.unwrap_or_default().digest;
        let info = info_of(&layout, &digest)?;
        Ok(Response::new(UpdateResponse { info: Some(info) }))
    }

    type ListStream = ReceiverStream<Result<ListContentResponse, Status>>;

    async fn list(
        &self,
        request: Request<ListContentRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        let (_, layout) = self.choose(request.metadata())?;
        let infos = tokio::task::spawn_blocking(move || {
            let dir = layout.root.join("blobs").join("sha256");
            let mut out = Vec::new();
            let Ok(entries) = std::fs::read_dir(&dir) else {
                return out;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Ok(info) = info_of(&layout, &format!("sha256:{name}")) {
                    out.push(info);
                }
            }
            out
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            for chunk in infos.chunks(100) {
                let m = ListContentResponse {
                    info: chunk.to_vec(),
                };
                if !matches!(tokio::time::timeout(IDLE, tx.send(Ok(m))).await, Ok(Ok(()))) {
                    break;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn delete(&self, request: Request<DeleteContentRequest>) -> Result<Response<()>, Status> {
        let (_, layout) = self.choose(request.metadata())?;
        let digest = request.into_inner().digest;
        let hex = sha256_hex(&digest)?;
        std::fs::remove_file(layout.blob(hex))
            .map_err(|e| io_status(&format!("blob {digest}"), &e))?;
        Ok(Response::new(()))
    }

    type ReadStream = ReceiverStream<Result<ReadContentResponse, Status>>;

    async fn read(
        &self,
        request: Request<ReadContentRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        let (_, layout) = self.choose(request.metadata())?;
        let r = request.into_inner();
        let hex = sha256_hex(&r.digest)?.to_owned();
        let path = layout.blob(&hex);
        let what = format!("blob {}", r.digest);
        let mut file = std::fs::File::open(&path).map_err(|e| io_status(&what, &e))?;
        let len = file.metadata().map_err(|e| io_status(&what, &e))?.len();
        let start = u64::try_from(r.offset.max(0)).unwrap_or(0);
        if start > len {
            return Err(Status::out_of_range(format!(
                "{what}: offset {start} past its {len} bytes"
            )));
        }
        let mut left = len - start;
        if r.size > 0 {
            left = left.min(u64::try_from(r.size).unwrap_or(u64::MAX));
        }
        file.seek(SeekFrom::Start(start))
            .map_err(|e| io_status(&what, &e))?;
        let mut file = Some(file);
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut offset = start;
            while left > 0 {
                let n = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
                let mut f = file.take();
                let read = tokio::task::spawn_blocking(move || {
                    let mut buf = vec![0u8; n];
                    let r = match f.as_mut() {
                        Some(f) => f.read_exact(&mut buf),
                        None => Err(std::io::Error::other("closed")),
                    };
                    (f, buf, r)
                })
                .await;
                let m = match read {
                    Ok((f, buf, Ok(()))) => {
                        file = f;
                        Ok(ReadContentResponse {
                            offset: i64::try_from(offset).unwrap_or(i64::MAX),
                            data: buf,
                        })
                    }
                    Ok((_, _, Err(e))) => Err(io_status(&what, &e)),
                    Err(e) => Err(Status::internal(e.to_string())),
                };
                let failed = m.is_err();
                if !matches!(tokio::time::timeout(IDLE, tx.send(m)).await, Ok(Ok(()))) || failed {
                    break;
                }
                offset += n as u64;
                left -= n as u64;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn status(
        &self,
        request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let (id, _) = self.choose(request.metadata())?;
        let r#ref = request.into_inner().r#ref;
        let status = self
            .ingests()
            .get(&(id, r#ref.clone()))
            .map(|i| i.status.clone())
            .ok_or_else(|| Status::not_found(format!("no write {ref:?} under way")))?;
        Ok(Response::new(StatusResponse {
            status: Some(status),
        }))
    }

    async fn list_statuses(
        &self,
        request: Request<ListStatusesRequest>,
    ) -> Result<Response<ListStatusesResponse>, Status> {
        let (id, _) = self.choose(request.metadata())?;
        let statuses = self
            .ingests()
            .iter()
            .filter(|((store, _), _)| *store == id)
            .map(|(_, i)| i.status.clone())
            .collect();
        Ok(Response::new(ListStatusesResponse { statuses }))
    }

    type WriteStream = ReceiverStream<Result<WriteContentResponse, Status>>;

    async fn write(
        &self,
        request: Request<tonic::Streaming<WriteContentRequest>>,
    ) -> Result<Response<Self::WriteStream>, Status> {
        let (id, layout) = self.choose(request.metadata())?;
        let mut input = request.into_inner();
        let first = match tokio::time::timeout(IDLE, input.message()).await {
            Err(_) => return Err(Status::deadline_exceeded("no write request arrived")),
            Ok(m) => m?.ok_or_else(|| Status::invalid_argument("an empty write stream"))?,
        };
        let r#ref = first.r#ref.clone();
        if r#ref.is_empty() {
            return Err(Status::invalid_argument("a write needs a ref"));
        }
        if !first.expected.is_empty() {
            let hex = sha256_hex(&first.expected)?;
            if layout.blob(hex).is_file() {
                return Err(Status::already_exists(format!(
                    "content {} exists",
                    first.expected
                )));
            }
        }
        let key = (id, r#ref.clone());
        let guard = {
            let mut table = self.ingests();
            if table.contains_key(&key) {
                return Err(Status::unavailable(format!("ref {ref:?} is locked")));
            }
            let writer = Writer::new(layout.clone())?;
            table.insert(
                key.clone(),
                Ingest {
                    status: writer.status(&r#ref),
                },
            );
            drop(table);
            (
                IngestGuard {
                    table: self.ingests.clone(),
                    key: key.clone(),
                },
                writer,
            )
        };
        let (guard, writer) = guard;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(pump(input, first, writer, guard, tx));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn abort(&self, request: Request<AbortRequest>) -> Result<Response<()>, Status> {
        let (id, _) = self.choose(request.metadata())?;
        let r#ref = request.into_inner().r#ref;
        if self.ingests().contains_key(&(id, r#ref.clone())) {
            // Its stream holds it; the temporary file goes when the stream ends.
            return Err(Status::unavailable(format!("ref {ref:?} is locked")));
        }
        Err(Status::not_found(format!("no write {ref:?} under way")))
    }
}

/// One name an [`put_index`] entry gets: a tag (`latest`), or an image name whose tag
/// becomes the OCI reference name and which is kept whole in `io.containerd.image.name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IndexName {
    Tag(String),
    Image(String),
}

const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Serialises index.json updates of this process.
static INDEX_LOCK: Mutex<()> = Mutex::new(());

fn ref_name_of(image: &str) -> String {
    let tail = &image[image.rfind('/').map(|i| i + 1).unwrap_or(0)..];
    let tail = tail.split('@').next().unwrap_or(tail);
    match tail.split_once(':') {
        Some((_, tag)) if !tag.is_empty() => tag.to_owned(),
        _ => image.to_owned(),
    }
}

/// Adds `desc` (a JSON descriptor) to `<dir>/index.json` under each name (replacing what
/// had that name), and writes `<dir>/oci-layout`; index.json is replaced atomically.
pub(crate) fn put_index(
    dir: &Path,
    desc: &serde_json::Value,
    names: &[IndexName],
) -> Result<(), String> {
    let _lock = INDEX_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let index_path = dir.join("index.json");
    let write_atomic = |path: &Path, data: &[u8]| -> Result<(), String> {
        let mut tmp = tempfile::Builder::new()
            .prefix(".multiarch-")
            .tempfile_in(dir)
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        tmp.write_all(data)
            .and_then(|_| tmp.as_file().sync_all())
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        tmp.persist(path)
            .map_err(|e| format!("writing {}: {}", path.display(), e.error))?;
        Ok(())
    };
    write_atomic(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let mut index = match std::fs::read(&index_path) {
        Ok(b) if !b.is_empty() => serde_json::from_slice::<serde_json::Value>(&b)
            .map_err(|e| format!("{} is not JSON: {e}", index_path.display()))?,
        Ok(_) => serde_json::json!({}),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(e) => return Err(format!("reading {}: {e}", index_path.display())),
    };
    let obj = index
        .as_object_mut()
        .ok_or_else(|| format!("{} is not a JSON object", index_path.display()))?;
    obj.entry("schemaVersion").or_insert(serde_json::json!(2));
    obj.entry("mediaType")
        .or_insert(serde_json::json!("application/vnd.oci.image.index.v1+json"));
    let mut manifests: Vec<serde_json::Value> = obj
        .get("manifests")
        .and_then(|m| m.as_array())
        .cloned()
        .unwrap_or_default();
    let names: Vec<Option<&IndexName>> = if names.is_empty() {
        vec![None]
    } else {
        names.iter().map(Some).collect()
    };
    for name in names {
        let mut d = desc.clone();
        if let Some(name) = name {
            let (image, ref_name) = match name {
                IndexName::Tag(t) => (String::new(), t.clone()),
                IndexName::Image(n) => (n.clone(), ref_name_of(n)),
            };
            let Some(dobj) = d.as_object_mut() else {
                return Err("the descriptor is not a JSON object".into());
            };
            let ann = dobj
                .entry("annotations")
                .or_insert_with(|| serde_json::json!({}));
            if let Some(a) = ann.as_object_mut() {
                if !image.is_empty() {
                    a.insert(ANNOTATION_IMAGE_NAME.into(), image.clone().into());
                }
                a.insert(ANNOTATION_REF_NAME.into(), ref_name.clone().into());
            }
            manifests.retain(|m| {
                let get = |k: &str| {
                    m.get("annotations")
                        .and_then(|a| a.get(k))
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_owned()
                };
                get(ANNOTATION_REF_NAME) != ref_name || get(ANNOTATION_IMAGE_NAME) != image
            });
        }
        manifests.push(d);
    }
    obj.insert("manifests".into(), serde_json::Value::Array(manifests));
    let data = serde_json::to_vec(&index).map_err(|e| e.to_string())?;
    write_atomic(&index_path, &data)
}

/// The digest `<dir>/index.json` names `tag` with (`io.containerd.image.name`, then the OCI
/// reference name), as BuildKit's client picks a local cache to import; `None` without an
/// index.json or such an entry.
pub(crate) fn find_in_index(dir: &Path, tag: &str) -> Result<Option<String>, String> {
    let path = dir.join("index.json");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    let index: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    let manifests = index
        .get("manifests")
        .and_then(|m| m.as_array())
        .cloned()
        .unwrap_or_default();
    for key in [ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME] {
        for m in &manifests {
            let named = m
                .get("annotations")
                .and_then(|a| a.get(key))
                .and_then(|v| v.as_str());
            if named == Some(tag) {
                return Ok(m.get("digest").and_then(|d| d.as_str()).map(str::to_owned));
            }
        }
    }
    Ok(None)
}

/// Whether `<dir>` holds the blob `digest`.
pub(crate) fn has_blob(dir: &Path, digest: &str) -> bool {
    sha256_hex(digest).is_ok_and(|hex| {
        Layout {
            root: dir.to_path_buf(),
        }
        .blob(hex)
        .is_file()
    })
}

#[cfg(test)]
mod tests;

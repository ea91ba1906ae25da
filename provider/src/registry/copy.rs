//! Copying image manifests into another repository at the request floor: per target
//! repository each unique blob is mounted (or uploaded) once, whatever the number of
//! children sharing it, also across operations running at the same time in this process;
//! manifests already read are not read again; a mount is tried directly (201 = done,
//! 202 = the registry will not mount: upload into the session it opened).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::Reference;

use super::body;
use super::manifest::{self, RawManifest};
use super::retry::{retry, HttpFailure, Retried, Timeout};
use super::{retryable_status, same_host, Registries, RegistryError};

/// A layer may be large: its GET and PUT get this long (the client's default is 2 minutes
/// per request, body included).
const BLOB_TIME: Duration = Duration::from_secs(30 * 60);
/// Blobs from this size on are uploaded on a connection of their own.
const BULK: i64 = 8 << 20;

/// How many blobs, manifests or look-ups of one operation are in flight at once.
pub(crate) const CONCURRENCY: usize = 16;

/// An image manifest to make available in a target repository.
#[derive(Debug, Clone)]
pub struct CopyChild {
    /// Where it lives (any reference in the source repository).
    pub from: Reference,
    pub digest: String,
    /// Its bytes when they were already read (while resolving sources); read otherwise.
    pub manifest: Option<RawManifest>,
}

/// One unique blob to make available in the target repository, and where it comes from
/// (a repository of the target's registry when any child offers one, so it can be mounted).
#[derive(Debug, Clone)]
pub(crate) struct BlobJob {
    pub desc: OciDescriptor,
    pub from: Reference,
}

/// The blobs the children need in `dst`, each once, in order of first use.
pub(crate) fn plan_blobs(
    dst: &Reference,
    children: &[(Reference, serde_json::Value)],
) -> Result<Vec<BlobJob>, String> {
    let mut jobs: Vec<BlobJob> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for (from, json) in children {
        for blob in manifest::blobs_of(json) {
            let desc: OciDescriptor =
                serde_json::from_value(blob).map_err(|e| format!("bad descriptor: {e}"))?;
            match at.get(&desc.digest) {
                Some(&i) => {
                    let mountable = |r: &Reference| same_host(r.registry(), dst.registry());
                    if !mountable(&jobs[i].from) && mountable(from) {
                        jobs[i].from = from.clone();
                    }
                }
                None => {
                    at.insert(desc.digest.clone(), jobs.len());
                    jobs.push(BlobJob {
                        desc,
                        from: from.clone(),
                    });
                }
            }
        }
    }
    Ok(jobs)
}

/// Blobs being made available right now, by (target repository, digest): a second
/// operation wanting the same blob in the same repository waits for the first one.
#[derive(Default)]
pub(crate) struct InFlight {
    map: Mutex<HashMap<BlobKey, Slot>>,
}

/// (target repository, blob digest).
type BlobKey = (String, String);
/// Held while the blob is moved; true once it is there.
type Slot = Arc<tokio::sync::Mutex<bool>>;

impl InFlight {
    fn slot(&self, key: &BlobKey) -> Slot {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key.clone()).or_default().clone()
    }

    /// Forgets a finished slot (later operations check the registry again).
    fn release(&self, key: &BlobKey, slot: &Slot) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(key).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            map.remove(key);
        }
    }
}

/// What a direct step of a blob move came to.
enum Moved {
    Done,
    /// An answer that needs oci-client (a token challenge): move the blob with it.
    NotDirect,
}

/// The answer to a mount request.
enum Mount {
    Mounted,
    /// The registry opened an upload session instead (at this location).
    Session(String),
    NotDirect,
}

/// Runs the futures, at most `CONCURRENCY` at a time; the first error wins.
async fn bounded<F>(futs: Vec<F>) -> Result<(), RegistryError>
where
    F: std::future::Future<Output = Result<(), RegistryError>>,
{
    futures::stream::iter(futs)
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .map(drop)
}

fn repo_key(r: &Reference) -> String {
    format!("{}/{}", r.registry(), r.repository())
}

fn with_digest(r: &Reference, digest: &str) -> Reference {
    Reference::with_digest(r.registry().into(), r.repository().into(), digest.into())
}

/// An upload location as an absolute URL.
fn absolute(scheme: &str, host: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_owned()
    } else {
        format!("{scheme}://{host}{location}")
    }
}

/// An upload location as an absolute URL, with the blob's digest appended.
fn upload_url(scheme: &str, host: &str, location: &str, digest: &str) -> String {
    let base = absolute(scheme, host, location);
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}digest={digest}")
}

fn location(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl Registries {
    /// Makes every child available in the repository of `dst`: each unique blob is mounted
    /// or uploaded once, then each child manifest is put by digest.
    pub async fn copy_into(
        &self,
        dst: &Reference,
        children: &[CopyChild],
    ) -> Result<(), RegistryError> {
        let first = match children.first() {
            Some(c) => with_digest(dst, &c.digest),
            None => return Ok(()),
        };
        self.guard_write("copy a manifest to", &first)?;
        let manifests = self.child_manifests(children).await?;
        let pairs: Vec<(Reference, serde_json::Value)> = children
            .iter()
            .zip(&manifests)
            .map(|(c, m)| (c.from.clone(), m.json()))
            .collect();
        let jobs = plan_blobs(dst, &pairs).map_err(|e| RegistryError::failed("copy", dst, e))?;
        // (Futures collected first: a lazy `map` inside the stream trips the `Send` check of
        // the async-trait callers.)
        let blobs: Vec<_> = jobs.iter().map(|job| self.ensure_blob(dst, job)).collect();
        bounded(blobs).await?;
        let puts: Vec<_> = children
            .iter()
            .zip(&manifests)
            .map(|(c, m)| async move { self.put_manifest(&with_digest(dst, &c.digest), m).await })
            .collect();
        bounded(puts).await?;
        Ok(())
    }

    /// The children's manifests: the ones given, the others read (by digest) from their
    /// source repositories. Indexes cannot be children.
    async fn child_manifests(
        &self,
        children: &[CopyChild],
    ) -> Result<Vec<RawManifest>, RegistryError> {
        let reads: Vec<_> = children
            .iter()
            .map(|c| async move {
                let src = with_digest(&c.from, &c.digest);
                let raw = match &c.manifest {
                    Some(m) if m.digest == c.digest => m.clone(),
                    _ => self.manifest(&src).await?.ok_or_else(|| {
                        RegistryError::failed("copy", &src, "the manifest does not exist")
                    })?,
                };
                if raw.is_index() {
                    return Err(RegistryError::failed(
                        "copy",
                        &src,
                        "nested indexes are not supported",
                    ));
                }
                Ok(raw)
            })
            .collect();
        futures::stream::iter(reads)
            .buffered(CONCURRENCY)
            .try_collect()
            .await
    }

    /// One unique blob into `dst`'s repository, at most once at a time per repository in
    /// this process.
    async fn ensure_blob(&self, dst: &Reference, job: &BlobJob) -> Result<(), RegistryError> {
        let key = (repo_key(dst), job.desc.digest.clone());
        let slot = self.inner.in_flight.slot(&key);
        let mut done = slot.lock().await;
        if *done {
            return Ok(());
        }
        let result = self.move_blob(dst, job).await;
        *done = result.is_ok();
        drop(done);
        self.inner.in_flight.release(&key, &slot);
        result
    }

    async fn move_blob(&self, dst: &Reference, job: &BlobJob) -> Result<(), RegistryError> {
        let digest = &job.desc.digest;
        let failed = |e: &dyn std::fmt::Display| {
            RegistryError::failed("copy blob to", dst, format!("{digest}: {e}"))
        };
        let dst_auth = self.credentials(dst.registry()).await?;
        let moved = if same_host(job.from.registry(), dst.registry()) {
            match self
                .mount(dst, job, &dst_auth)
                .await
                .map_err(|e| failed(&e))?
            {
                Mount::Mounted => Moved::Done,
                Mount::NotDirect => Moved::NotDirect,
                // No mount (disabled, or the source repository is not readable): upload,
                // unless the target already holds it.
                Mount::Session(loc) => match self.blob_exists(dst, digest, &dst_auth).await {
                    Ok(Some(true)) => {
                        self.cancel_upload(dst, &loc, &dst_auth).await;
                        Moved::Done
                    }
                    _ => self
                        .upload(dst, job, &dst_auth, Some(loc))
                        .await
                        .map_err(|e| failed(&e))?,
                },
            }
        } else {
            match self
                .blob_exists(dst, digest, &dst_auth)
                .await
                .map_err(|e| failed(&e))?
            {
                Some(true) => Moved::Done,
                Some(false) => self
                    .upload(dst, job, &dst_auth, None)
                    .await
                    .map_err(|e| failed(&e))?,
                None => Moved::NotDirect,
            }
        };
        match moved {
            Moved::Done => Ok(()),
            Moved::NotDirect => self.move_blob_oci(dst, job).await,
        }
    }

    /// `POST …/blobs/uploads/?mount=<digest>&from=<repository>`, no HEAD first.
    async fn mount(
        &self,
        dst: &Reference,
        job: &BlobJob,
        auth: &RegistryAuth,
    ) -> Result<Mount, Retried<HttpFailure>> {
        let path = format!(
            "blobs/uploads/?mount={}&from={}",
            job.desc.digest,
            job.from.repository()
        );
        let resp = retry(Timeout::Manifest, || async {
            let _permit = self.permit(dst.registry()).await;
            let resp = self
                .direct_request(reqwest::Method::POST, dst, &path, auth)
                .header(reqwest::header::CONTENT_LENGTH, "0")
                .timeout(Duration::from_secs(30))
                .send()
                .await?;
            retryable_status(resp)
        })
        .await?;
        Ok(match resp.status().as_u16() {
            201 => Mount::Mounted,
            202 => match location(&resp) {
                Some(loc) => Mount::Session(loc),
                None => Mount::NotDirect,
            },
            _ => Mount::NotDirect,
        })
    }

    /// Some(true/false) when the registry said; None: ask oci-client.
    async fn blob_exists(
        &self,
        dst: &Reference,
        digest: &str,
        auth: &RegistryAuth,
    ) -> Result<Option<bool>, Retried<HttpFailure>> {
        let resp = self
            .direct_send(reqwest::Method::HEAD, dst, &format!("blobs/{digest}"), auth)
            .await?;
        Ok(match resp.status().as_u16() {
            200 => Some(true),
            404 => Some(false),
            _ => None,
        })
    }

    /// Cancels an upload session we do not need (best effort: sessions expire anyway).
    async fn cancel_upload(&self, dst: &Reference, loc: &str, auth: &RegistryAuth) {
        let _permit = self.permit(dst.registry()).await;
        let url = absolute(self.scheme(dst), dst.resolve_registry(), loc);
        let req = self
            .request_to(reqwest::Method::DELETE, &url, auth)
            .timeout(Duration::from_secs(10));
        let _ = req.send().await;
    }

    /// Streams the blob from its source into `dst` in one PUT: into `session` (the one a
    /// refused mount opened) first, into a new session on each retry.
    async fn upload(
        &self,
        dst: &Reference,
        job: &BlobJob,
        dst_auth: &RegistryAuth,
        session: Option<String>,
    ) -> Result<Moved, Retried<HttpFailure>> {
        let src_auth = match self.credentials(job.from.registry()).await {
            Ok(a) => a,
            Err(_) => return Ok(Moved::NotDirect),
        };
        let session = Mutex::new(session);
        let digest = &job.desc.digest;
        retry(Timeout::Blob, || async {
            let _permit = self.permit(dst.registry()).await;
            let given = session.lock().unwrap_or_else(|e| e.into_inner()).take();
            let loc = match given {
                Some(loc) => loc,
                None => {
                    let resp = self
                        .direct_request(reqwest::Method::POST, dst, "blobs/uploads/", dst_auth)
                        .header(reqwest::header::CONTENT_LENGTH, "0")
                        .timeout(Duration::from_secs(30))
                        .send()
                        .await?;
                    let resp = retryable_status(resp)?;
                    match (resp.status().as_u16(), location(&resp)) {
                        (202, Some(loc)) => loc,
                        _ => return Ok(Moved::NotDirect),
                    }
                }
            };
            let src = self
                .direct_request(
                    reqwest::Method::GET,
                    &job.from,
                    &format!("blobs/{digest}"),
                    &src_auth,
                )
                .timeout(BLOB_TIME)
                .send()
                .await?;
            let src = retryable_status(src)?;
            if src.status().as_u16() != 200 {
                return Ok(Moved::NotDirect);
            }
            let url = upload_url(self.scheme(dst), dst.resolve_registry(), &loc, digest);
            let (stream, stall) = body::watched(src.bytes_stream(), body::idle_window());
            let put = if job.desc.size >= BULK {
                self.upload_to(&url, dst_auth)
            } else {
                self.request_to(reqwest::Method::PUT, &url, dst_auth)
            };
            let sent = put
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .header(reqwest::header::CONTENT_LENGTH, job.desc.size.to_string())
                .timeout(BLOB_TIME)
                .body(reqwest::Body::wrap_stream(stream))
                .send()
                .await;
            let resp = match (sent, body::stall_of(&stall)) {
                (Err(_), Some(stalled)) => return Err(HttpFailure::Body(stalled)),
                (sent, _) => retryable_status(sent?)?,
            };
            Ok(match resp.status().as_u16() {
                201 => Moved::Done,
                _ => Moved::NotDirect,
            })
        })
        .await
    }

    /// The blob through oci-client (token-authenticated registries): check, mount, stream.
    async fn move_blob_oci(&self, dst: &Reference, job: &BlobJob) -> Result<(), RegistryError> {
        let src = &job.from;
        let desc = &job.desc;
        self.login(src).await?;
        let client = self.login(dst).await?;
        let exists = retry(Timeout::Manifest, || client.blob_exists(dst, &desc.digest))
            .await
            .map_err(|e| RegistryError::failed("check blob", dst, e))?;
        if exists {
            return Ok(());
        }
        if same_host(src.registry(), dst.registry())
            && retry(Timeout::Manifest, || {
                client.mount_blob(dst, src, &desc.digest)
            })
            .await
            .is_ok()
        {
            return Ok(());
        }
        // No mount (other registry, mounting disabled: 202): stream it across.
        retry(Timeout::Blob, || async {
            let stream = client.pull_blob_stream(src, desc).await?;
            let (stream, stall) = body::watched(stream.stream, body::idle_window());
            let body = stream.map_err(|e| OciDistributionError::IoError(std::io::Error::other(e)));
            let pushed = client
                .push_blob_stream(dst, body, &desc.digest, Some(desc.size as u64))
                .await;
            match (pushed, body::stall_of(&stall)) {
                // (Final for the retry: see `retry::Retryable`.)
                (Err(_), Some(stalled)) => Err(OciDistributionError::IoError(
                    std::io::Error::other(stalled),
                )),
                (pushed, _) => pushed,
            }
        })
        .await
        .map_err(|e| RegistryError::failed("copy blob to", dst, format!("{}: {e}", desc.digest)))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn image(config: &str, layers: &[&str]) -> serde_json::Value {
        json!({
            "schemaVersion": 2,
            "config": {"mediaType": "c", "digest": config, "size": 1},
            "layers": layers.iter().map(|l| json!({"mediaType": "l", "digest": l, "size": 2}))
                .collect::<Vec<_>>(),
        })
    }

    fn r(s: &str) -> Reference {
        s.parse().unwrap()
    }

    #[test]
    fn shared_blobs_are_planned_once() {
        let dst = r("reg.example/target:1");
        let src = r("reg.example/src:1");
        let children = vec![
            (
                src.clone(),
                image("sha256:c1", &["sha256:base", "sha256:a"]),
            ),
            (
                src.clone(),
                image("sha256:c2", &["sha256:base", "sha256:b"]),
            ),
            (
                src.clone(),
                image("sha256:c3", &["sha256:base", "sha256:a"]),
            ),
        ];
        let plan = plan_blobs(&dst, &children).unwrap();
        let digests: Vec<&str> = plan.iter().map(|j| j.desc.digest.as_str()).collect();
        assert_eq!(
            digests,
            [
                "sha256:c1",
                "sha256:base",
                "sha256:a",
                "sha256:c2",
                "sha256:b",
                "sha256:c3"
            ]
        );
    }

    #[test]
    fn a_mountable_source_is_preferred_for_a_shared_blob() {
        let dst = r("reg.example/target:1");
        let elsewhere = r("other.example/src:1");
        let here = r("reg.example/src:1");
        let children = vec![
            (elsewhere.clone(), image("sha256:c1", &["sha256:base"])),
            (here.clone(), image("sha256:c2", &["sha256:base"])),
        ];
        let plan = plan_blobs(&dst, &children).unwrap();
        assert_eq!(plan.len(), 3);
        assert_eq!(plan[0].from.registry(), "other.example");
        assert_eq!(plan[1].desc.digest, "sha256:base");
        assert_eq!(plan[1].from.registry(), "reg.example");
    }

    #[test]
    fn a_bad_descriptor_is_an_error() {
        let dst = r("reg.example/target:1");
        let bad = json!({"config": {"digest": 5}});
        assert!(plan_blobs(&dst, &[(dst.clone(), bad)]).is_err());
    }

    #[test]
    fn upload_locations_absolute_or_relative() {
        assert_eq!(
            upload_url("https", "h", "/v2/a/blobs/uploads/u?_state=x", "sha256:1"),
            "https://h/v2/a/blobs/uploads/u?_state=x&digest=sha256:1"
        );
        assert_eq!(
            upload_url("http", "h", "http://other/v2/a/blobs/uploads/u", "sha256:1"),
            "http://other/v2/a/blobs/uploads/u?digest=sha256:1"
        );
    }

    #[tokio::test]
    async fn concurrent_users_of_one_blob_take_turns_and_the_slot_is_released() {
        let f = InFlight::default();
        let key = ("reg/app".to_owned(), "sha256:1".to_owned());
        let a = f.slot(&key);
        let b = f.slot(&key);
        assert!(Arc::ptr_eq(&a, &b));
        {
            let mut done = a.lock().await;
            *done = true;
        }
        assert!(*b.lock().await);
        f.release(&key, &a);
        assert!(!Arc::ptr_eq(&f.slot(&key), &a));
    }
}

//! Pushing an image from an OCI layout directory on the provider's host (what a
//! classic-store Engine hands back): each blob once per repository (skipped when the
//! registry has it), the platform manifests by digest, then the root under each tag.

use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use oci_client::errors::OciDistributionError;
use oci_client::Reference;
use serde_json::Value as Json;

use super::manifest::{self, RawManifest};
use super::retry::{retry, Timeout};
use super::{Registries, RegistryError};

fn blob_file(dir: &Path, digest: &str) -> Result<PathBuf, String> {
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| format!("unexpected digest {digest:?}"))?;
    Ok(dir.join("blobs").join("sha256").join(hex))
}

fn raw(dir: &Path, digest: &str) -> Result<RawManifest, String> {
    let path = blob_file(dir, digest)?;
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let m = RawManifest::from_bytes(bytes.into())?;
    if m.digest != digest {
        return Err(format!("{} does not hash to {digest}", path.display()));
    }
    Ok(m)
}

impl Registries {
    /// Pushes the image `root` (a descriptor of the layout at `dir`) to each of `targets`:
    /// under its tag when tagged, else by digest only.
    pub async fn push_layout(
        &self,
        dir: &Path,
        root: &Json,
        targets: &[(Reference, bool)],
    ) -> Result<(), RegistryError> {
        let Some((first, _)) = targets.first() else {
            return Ok(());
        };
        let failed = |r: &Reference, e: String| RegistryError::failed("push", r, e);
        let root_digest = root["digest"].as_str().unwrap_or_default();
        let root_m = raw(dir, root_digest).map_err(|e| failed(first, e))?;
        let children: Vec<RawManifest> = if root_m.is_index() {
            manifest::index_entries(&root_m.json())
                .iter()
                .map(|d| raw(dir, d["digest"].as_str().unwrap_or_default()))
                .collect::<Result<_, _>>()
                .map_err(|e| failed(first, e))?
        } else {
            Vec::new()
        };
        let mut done_repos: Vec<String> = Vec::new();
        for (t, tagged) in targets {
            let repo = format!("{}/{}", t.resolve_registry(), t.repository());
            if !done_repos.contains(&repo) {
                self.guard_write("push", t)?;
                let images: Vec<&RawManifest> = if root_m.is_index() {
                    children.iter().collect()
                } else {
                    vec![&root_m]
                };
                for m in &images {
                    for blob in manifest::blobs_of(&m.json()) {
                        let digest = blob["digest"].as_str().unwrap_or_default().to_owned();
                        let size = blob["size"].as_u64().unwrap_or_default();
                        self.push_blob_file(t, dir, &digest, size).await?;
                    }
                }
                for c in &children {
                    let by_digest = Reference::with_digest(
                        t.registry().to_owned(),
                        t.repository().to_owned(),
                        c.digest.clone(),
                    );
                    self.put_manifest(&by_digest, c).await?;
                }
                done_repos.push(repo);
            }
            let at = match tagged {
                true => t.clone(),
                false => Reference::with_digest(
                    t.registry().to_owned(),
                    t.repository().to_owned(),
                    root_m.digest.clone(),
                ),
            };
            self.put_manifest(&at, &root_m).await?;
        }
        Ok(())
    }

    /// `data` as a blob of `dst`'s repository, unless the repository has it (small blobs:
    /// signature payloads and their configs).
    pub async fn push_blob(
        &self,
        dst: &Reference,
        data: bytes::Bytes,
    ) -> Result<(), RegistryError> {
        self.guard_write("push blob to", dst)?;
        let digest = manifest::sha256_digest(&data);
        let failed = |e: &dyn std::fmt::Display| {
            RegistryError::failed("push blob to", dst, format!("{digest}: {e}"))
        };
        let client = self.login(dst).await?;
        let exists = retry(Timeout::Manifest, || client.blob_exists(dst, &digest))
            .await
            .map_err(|e| failed(&e))?;
        if exists {
            return Ok(());
        }
        retry(Timeout::Manifest, || {
            client.push_blob(dst, data.clone(), &digest)
        })
        .await
        .map_err(|e| failed(&e))?;
        Ok(())
    }

    /// One blob from the layout, unless the repository has it.
    async fn push_blob_file(
        &self,
        dst: &Reference,
        dir: &Path,
        digest: &str,
        size: u64,
    ) -> Result<(), RegistryError> {
        let failed = |e: &dyn std::fmt::Display| {
            RegistryError::failed("push blob to", dst, format!("{digest}: {e}"))
        };
        let client = self.login(dst).await?;
        let exists = retry(Timeout::Manifest, || client.blob_exists(dst, digest))
            .await
            .map_err(|e| failed(&e))?;
        if exists {
            return Ok(());
        }
        let path = blob_file(dir, digest).map_err(|e| failed(&e))?;
        retry(Timeout::Blob, || async {
            let file = tokio::fs::File::open(&path)
                .await
                .map_err(OciDistributionError::IoError)?;
            let body =
                tokio_util::io::ReaderStream::new(file).map_err(OciDistributionError::IoError);
            client.push_blob_stream(dst, body, digest, Some(size)).await
        })
        .await
        .map_err(|e| failed(&e))?;
        Ok(())
    }
}

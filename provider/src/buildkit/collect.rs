//! After a successful solve: what the exports wrote, collected in their order, and the
//! local indexes (cache directories, OCI layouts) naming what was exported into them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{content, filesend, solve, BuildError, BuildOutcome, Written};
use crate::log::Logger;

/// What a solve's exports leave to collect once it has succeeded.
pub(super) struct Collected {
    pub exports: filesend::Receipts,
    pub cache_indexes: Vec<solve::CacheIndex>,
    pub layouts: BTreeMap<u32, PathBuf>,
    pub file_order: Vec<u32>,
}

/// After a successful solve: the pushed digest, the committed file exports and the names
/// written into local indexes, in the exports' order.
pub(super) async fn finish(
    ep: String,
    resp: std::collections::HashMap<String, String>,
    push: bool,
    collected: Collected,
    log: &dyn Logger,
) -> Result<BuildOutcome, BuildError> {
    let Collected {
        exports,
        cache_indexes,
        layouts,
        file_order,
    } = collected;
    let digest = resp.get("containerimage.digest").cloned();
    if push && digest.is_none() {
        return Err(BuildError::Protocol {
            endpoint: ep,
            detail: "the image exporter returned no containerimage.digest".into(),
        });
    }
    let ids = exports.ids();
    let files = if exports.is_empty() {
        Vec::new()
    } else {
        off_thread(&ep, move || exports.commit()).await?
    };
    let written = off_thread(&ep, move || {
        name_in_indexes(&resp, &cache_indexes, &layouts, &file_order)
            .map(|(written, warnings)| (written, warnings, file_order))
    })
    .await?;
    let (written, warnings, file_order) = written;
    for w in warnings {
        log.warn(&w);
    }
    // In the exports' order: the files and directories, and the OCI layout.
    let mut by_id: BTreeMap<u32, Written> = ids.into_iter().zip(files).collect();
    by_id.extend(written);
    let exported = file_order
        .iter()
        .filter_map(|id| by_id.remove(id))
        .collect();
    Ok(BuildOutcome { digest, exported })
}

/// Runs blocking file work off the async threads; its failure is a protocol error of `ep`.
async fn off_thread<T: Send + 'static>(
    ep: &str,
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, BuildError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r)
        .map_err(|detail| BuildError::Protocol {
            endpoint: ep.to_owned(),
            detail,
        })
}

/// After a solve: names the exported cache (`cache.manifest`) under its tag in each local
/// cache's index.json, and the exported image (`containerimage.descriptor`) under its names
/// (`image.name`, else `latest`) in the OCI layout's, as BuildKit's client does. What was
/// written by exporter index, and warnings: a cache export that failed with `ignoreError`
/// leaves no manifest, and a directory is never made to name a blob it lacks.
#[allow(clippy::type_complexity)]
pub(super) fn name_in_indexes(
    resp: &std::collections::HashMap<String, String>,
    cache_indexes: &[solve::CacheIndex],
    layouts: &BTreeMap<u32, PathBuf>,
    file_order: &[u32],
) -> Result<(BTreeMap<u32, Written>, Vec<String>), String> {
    use base64::Engine as _;
    let mut warnings = Vec::new();
    if !cache_indexes.is_empty() {
        match resp.get("cache.manifest") {
            None => warnings.push(format!(
                "{}: BuildKit named no exported cache manifest; the local cache index was not \
                 updated",
                cache_indexes
                    .iter()
                    .map(|c| c.property.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Some(desc) => {
                let desc: serde_json::Value = serde_json::from_str(desc)
                    .map_err(|e| format!("the cache manifest descriptor: {e}"))?;
                let digest = desc
                    .get("digest")
                    .and_then(|d| d.as_str())
                    .unwrap_or_default()
                    .to_owned();
                for c in cache_indexes {
                    if !content::has_blob(&c.dir, &digest) {
                        warnings.push(format!(
                            "{}: {} lacks the cache manifest {digest} BuildKit named (several \
                             local cache exports in one build share one answer); its index.json \
                             was not updated",
                            c.property,
                            c.dir.display()
                        ));
                        continue;
                    }
                    content::put_index(&c.dir, &desc, &[content::IndexName::Tag(c.tag.clone())])
                        .map_err(|e| {
                            format!("{}: local cache {}: {e}", c.property, c.dir.display())
                        })?;
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    for (id, dir) in layouts {
        let at = file_order.iter().position(|x| x == id).unwrap_or_default();
        let property = format!("exports[{at}].oci.dest");
        let desc = resp
            .get("containerimage.descriptor")
            .ok_or_else(|| format!("{property}: BuildKit named no image descriptor"))?;
        let desc = base64::engine::general_purpose::STANDARD
            .decode(desc)
            .map_err(|e| format!("{property}: the image descriptor: {e}"))?;
        let desc: serde_json::Value = serde_json::from_slice(&desc)
            .map_err(|e| format!("{property}: the image descriptor: {e}"))?;
        let digest = desc
            .get("digest")
            .and_then(|d| d.as_str())
            .unwrap_or_default();
        if !content::has_blob(dir, digest) {
            return Err(format!(
                "{property}: BuildKit named the image {digest}, which it did not write to {}",
                dir.display()
            ));
        }
        let names: Vec<content::IndexName> = match resp.get("image.name") {
            Some(n) if !n.is_empty() => n
                .split(',')
                .map(|n| content::IndexName::Image(n.trim().to_owned()))
                .collect(),
            _ => vec![content::IndexName::Tag("latest".into())],
        };
        content::put_index(dir, &desc, &names)
            .map_err(|e| format!("{property} {}: {e}", dir.display()))?;
        out.insert(
            *id,
            Written {
                dest: dir.clone(),
                sha256: None,
            },
        );
    }
    Ok((out, warnings))
}

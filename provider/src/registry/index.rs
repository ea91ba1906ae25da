//! Index assembly shared by both resources: a ManifestList's index and the index an Image's
//! multi-node build pushes are made here, so neither resource depends on the other.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use super::manifest::{
    build_index, IndexEntry, RawManifest, ATTESTATION_REF, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX,
};
use crate::platform::Platform;

/// The media type asked for an index (else chosen from its children).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// A Docker manifest list.
    Docker,
    /// An OCI image index.
    Oci,
}

/// The platform object of an index entry for `p`; `os.version` and `os.features` of the
/// `original` platform object (when there is one) are kept.
pub fn platform_object(p: &Platform, original: Option<&Json>) -> Map<String, Json> {
    let mut m = Map::new();
    m.insert("architecture".into(), Json::String(p.architecture.clone()));
    m.insert("os".into(), Json::String(p.os.clone()));
    if let Some(v) = &p.variant {
        m.insert("variant".into(), Json::String(v.clone()));
    }
    for key in ["os.version", "os.features"] {
        if let Some(v) = original.and_then(|o| o.get(key)) {
            m.insert(key.into(), v.clone());
        }
    }
    m
}

/// The index of `children` (each an entry and its platform, `None` for an attestation):
/// platform entries sorted by platform, each followed by the attestations that describe it.
/// Unless `requested` says otherwise, a Docker list when every child is a Docker manifest,
/// else an OCI index; Docker lists carry no attestations. Also the order of the children
/// it took.
pub fn assemble_index(
    children: &[(&IndexEntry, Option<&str>)],
    requested: Option<IndexKind>,
    annotations: &BTreeMap<String, String>,
) -> (RawManifest, Vec<usize>) {
    let all_docker = children.iter().all(|c| c.0.media_type == DOCKER_MANIFEST);
    let media_type = match requested {
        Some(IndexKind::Docker) => DOCKER_LIST,
        Some(IndexKind::Oci) => OCI_INDEX,
        None if all_docker => DOCKER_LIST,
        None => OCI_INDEX,
    };
    let mut platforms: Vec<usize> = (0..children.len())
        .filter(|&i| children[i].1.is_some())
        .collect();
    platforms.sort_by(|&a, &b| children[a].1.cmp(&children[b].1));
    let mut order = Vec::new();
    for i in platforms {
        order.push(i);
        if media_type == DOCKER_LIST {
            continue;
        }
        let digest = &children[i].0.digest;
        order.extend((0..children.len()).filter(|&j| {
            let (entry, platform) = children[j];
            platform.is_none()
                && entry
                    .annotations
                    .get(ATTESTATION_REF)
                    .and_then(Json::as_str)
                    == Some(digest)
        }));
    }
    let entries: Vec<IndexEntry> = order.iter().map(|&i| children[i].0.clone()).collect();
    (build_index(media_type, &entries, annotations), order)
}

//! Manifest media types and the few fields of manifests and indexes we read or write.

use serde_json::{json, Map, Value as Json};
use sha2::{Digest, Sha256};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Every manifest type we accept when pulling.
pub const ACCEPTED: &[&str] = &[OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

/// The annotation BuildKit puts on attestation manifests, naming the image they describe.
pub const ATTESTATION_REF: &str = "vnd.docker.reference.digest";

/// A manifest as the registry stores it: the exact bytes matter (they are the digest).
#[derive(Debug, Clone)]
pub struct RawManifest {
    pub media_type: String,
    pub digest: String,
    pub bytes: bytes::Bytes,
}

impl RawManifest {
    pub fn from_bytes(bytes: bytes::Bytes) -> Result<Self, String> {
        let json: Json = serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))?;
        let media_type = match json.get("mediaType").and_then(Json::as_str) {
            Some(m) => m.to_owned(),
            // OCI allows leaving mediaType out; the shape tells.
            None if json.get("manifests").is_some() => OCI_INDEX.to_owned(),
            None => OCI_MANIFEST.to_owned(),
        };
        Ok(RawManifest {
            media_type,
            digest: sha256_digest(&bytes),
            bytes,
        })
    }

    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX || self.media_type == DOCKER_LIST
    }

    pub fn json(&self) -> Json {
        serde_json::from_slice(&self.bytes).unwrap_or(Json::Null)
    }

    pub fn size(&self) -> i64 {
        self.bytes.len() as i64
    }
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The blobs an image manifest refers to (config first, then layers).
pub fn blobs_of(manifest: &Json) -> Vec<Json> {
    let mut out = Vec::new();
    if let Some(c) = manifest.get("config") {
        out.push(c.clone());
    }
    if let Some(layers) = manifest.get("layers").and_then(Json::as_array) {
        out.extend(layers.iter().cloned());
    }
    out
}

/// The `platform` of an index entry, as written (not normalized).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryPlatform<'a> {
    pub os: &'a str,
    pub architecture: &'a str,
    pub variant: Option<&'a str>,
}

impl EntryPlatform<'_> {
    /// BuildKit's attestation manifests carry the platform `unknown/unknown`.
    pub fn is_attestation(&self) -> bool {
        self.os == "unknown" && self.architecture == "unknown"
    }
}

pub fn entry_platform(entry: &Json) -> EntryPlatform<'_> {
    let field = |k: &str| {
        entry
            .get("platform")
            .and_then(|p| p.get(k))
            .and_then(Json::as_str)
    };
    EntryPlatform {
        os: field("os").unwrap_or(""),
        architecture: field("architecture").unwrap_or(""),
        variant: field("variant"),
    }
}

/// The entries of an index (empty for anything else).
pub fn index_entries(index: &Json) -> &[Json] {
    index
        .get("manifests")
        .and_then(Json::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// One entry of an index we are about to write.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    /// `os`, `architecture`, optional `variant` (already normalized).
    pub platform: Map<String, Json>,
    pub annotations: Map<String, Json>,
}

impl IndexEntry {
    /// The entry naming the single-platform manifest `m`, with no annotations.
    pub fn of_manifest(m: &RawManifest, platform: Map<String, Json>) -> IndexEntry {
        IndexEntry {
            media_type: m.media_type.clone(),
            digest: m.digest.clone(),
            size: m.size(),
            platform,
            annotations: Map::new(),
        }
    }

    /// The entry of an index's descriptor `e` (media type, digest, size, annotations), with
    /// `platform` as the caller normalized it.
    pub fn from_descriptor(e: &Json, platform: Map<String, Json>) -> IndexEntry {
        let field = |k: &str| {
            e.get(k)
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        IndexEntry {
            media_type: field("mediaType"),
            digest: field("digest"),
            size: e.get("size").and_then(Json::as_i64).unwrap_or(0),
            platform,
            annotations: e
                .get("annotations")
                .and_then(Json::as_object)
                .cloned()
                .unwrap_or_default(),
        }
    }
}

/// Serializes an index; the same entries always give the same bytes (and digest).
pub fn build_index(
    media_type: &str,
    entries: &[IndexEntry],
    annotations: &std::collections::BTreeMap<String, String>,
) -> RawManifest {
    let manifests: Vec<Json> = entries
        .iter()
        .map(|e| {
            let mut m = json!({
                "mediaType": e.media_type,
                "digest": e.digest,
                "size": e.size,
                "platform": e.platform,
            });
            if !e.annotations.is_empty() {
                m["annotations"] = Json::Object(e.annotations.clone());
            }
            m
        })
        .collect();
    let mut index = json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": manifests,
    });
    if media_type == OCI_INDEX && !annotations.is_empty() {
        index["annotations"] = json!(annotations);
    }
    let bytes = bytes::Bytes::from(serde_json::to_vec(&index).expect("an index serializes"));
    RawManifest {
        media_type: media_type.to_owned(),
        digest: sha256_digest(&bytes),
        bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_bytes_are_deterministic_and_typed() {
        let e = IndexEntry {
            media_type: DOCKER_MANIFEST.into(),
            digest: "sha256:aa".into(),
            size: 10,
            platform: json!({"os": "linux", "architecture": "arm64"})
                .as_object()
                .unwrap()
                .clone(),
            annotations: Map::new(),
        };
        let mut ann = std::collections::BTreeMap::new();
        ann.insert(
            "org.opencontainers.image.source".to_string(),
            "x".to_string(),
        );
        let a = build_index(OCI_INDEX, std::slice::from_ref(&e), &ann);
        let b = build_index(OCI_INDEX, std::slice::from_ref(&e), &ann);
        assert_eq!(a.digest, b.digest);
        assert_eq!(
            a.json()["annotations"]["org.opencontainers.image.source"],
            "x"
        );
        let d = build_index(DOCKER_LIST, &[e], &ann);
        assert!(d.json().get("annotations").is_none());
        assert_ne!(a.digest, d.digest);
        let parsed = RawManifest::from_bytes(a.bytes.clone()).unwrap();
        assert!(parsed.is_index());
        assert_eq!(parsed.digest, a.digest);
    }

    #[test]
    fn media_type_from_shape() {
        let m = RawManifest::from_bytes(bytes::Bytes::from_static(
            br#"{"schemaVersion":2,"manifests":[]}"#,
        ))
        .unwrap();
        assert_eq!(m.media_type, OCI_INDEX);
        let m = RawManifest::from_bytes(bytes::Bytes::from_static(
            br#"{"schemaVersion":2,"config":{},"layers":[]}"#,
        ))
        .unwrap();
        assert_eq!(m.media_type, OCI_MANIFEST);
        assert!(RawManifest::from_bytes(bytes::Bytes::from_static(b"nope")).is_err());
    }
}

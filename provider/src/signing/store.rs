//! Where signatures live: cosign's tag scheme. The signatures of manifest `sha256:<hex>` are
//! the layers of an OCI image manifest tagged `sha256-<hex>.sig` in the same repository;
//! each layer's blob is a payload ([`super::payload`]) and its annotation
//! `dev.cosignproject.cosign/signature` the base64 DER signature. Several keys' signatures
//! share the tag: a new one is appended, the others are kept as they are.

use base64::Engine;
use serde_json::{json, Map, Value as Json};

use super::{PublicKey, SigningError};
use crate::registry::manifest::{sha256_digest, RawManifest, OCI_MANIFEST};

pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// The tag holding the signatures of `digest`: `sha256-<hex>.sig`.
pub fn sig_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

/// One signature: the payload and the signature over it.
#[derive(Debug, Clone)]
pub struct Signed {
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

impl Signed {
    fn layer(&self) -> Json {
        json!({
            "mediaType": SIMPLE_SIGNING,
            "size": self.payload.len(),
            "digest": sha256_digest(&self.payload),
            "annotations": {
                SIGNATURE_ANNOTATION:
                    base64::engine::general_purpose::STANDARD.encode(&self.signature),
            },
        })
    }
}

/// The layers of a signature manifest as read from the registry.
pub fn layers_of(tag: &str, manifest: &Json) -> Result<Vec<Json>, SigningError> {
    let bad = |reason: &str| SigningError::BadManifest {
        tag: tag.to_owned(),
        reason: reason.to_owned(),
    };
    if manifest.get("manifests").is_some() {
        return Err(bad("it is an index"));
    }
    match manifest.get("layers") {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(l)) => Ok(l.clone()),
        Some(_) => Err(bad("`layers` is not a list")),
    }
}

/// The base64-decoded signature of a layer.
pub fn signature_of(layer: &Json) -> Option<Vec<u8>> {
    let b64 = layer["annotations"][SIGNATURE_ANNOTATION].as_str()?;
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// True when `layers` already hold a signature of `payload` by `key` (a re-run signs
/// nothing again: ECDSA signatures differ on every run).
pub fn already_signed(layers: &[Json], payload: &[u8], key: &PublicKey) -> bool {
    let digest = sha256_digest(payload);
    layers.iter().any(|l| {
        l["digest"] == digest.as_str()
            && l["mediaType"] == SIMPLE_SIGNING
            && signature_of(l).is_some_and(|s| key.verifies(payload, &s))
    })
}

/// A new signature manifest: `existing` layers (other keys' signatures, kept as they are)
/// plus `new`; and its config blob (cosign's: the layers as the root file system).
pub fn manifest_with(existing: Vec<Json>, new: &Signed) -> (RawManifest, Vec<u8>) {
    let mut layers = existing;
    layers.push(new.layer());
    manifest_of(layers)
}

/// The layers of `from` that `to` lacks (the same payload and signature), in their order.
pub fn missing_layers(to: &[Json], from: &[Json]) -> Vec<Json> {
    let key = |l: &Json| {
        (
            l["digest"].clone(),
            l["annotations"][SIGNATURE_ANNOTATION].clone(),
        )
    };
    from.iter()
        .filter(|l| !to.iter().any(|t| key(t) == key(l)))
        .cloned()
        .collect()
}

/// A signature manifest holding `layers`, and its config blob.
pub fn manifest_of(layers: Vec<Json>) -> (RawManifest, Vec<u8>) {
    let diff_ids: Vec<Json> = layers.iter().map(|l| l["digest"].clone()).collect();
    let config = json!({
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = serde_json::to_vec(&config).expect("a JSON value always serialises");
    let mut m = Map::new();
    m.insert("schemaVersion".into(), json!(2));
    m.insert("mediaType".into(), json!(OCI_MANIFEST));
    m.insert(
        "config".into(),
        json!({"mediaType": OCI_CONFIG, "size": config.len(), "digest": sha256_digest(&config)}),
    );
    m.insert("layers".into(), Json::Array(layers));
    let bytes = serde_json::to_vec(&Json::Object(m)).expect("a JSON value always serialises");
    let raw = RawManifest::from_bytes(bytes.into()).expect("our own manifest is JSON");
    (raw, config)
}

/// The `artifactType` of a signature pushed as an OCI 1.1 referrer (cosign's).
pub const SIG_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The empty config of an artifact manifest: `{}`.
pub const EMPTY_CONFIG: &[u8] = b"{}";

/// A signature as an OCI 1.1 artifact whose `subject` is the signed manifest
/// (`media_type`, `digest`, `size`), for registries with the referrers API.
pub fn referrer(signed: &Signed, media_type: &str, digest: &str, size: i64) -> RawManifest {
    let m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SIG_ARTIFACT,
        "config": {"mediaType": OCI_EMPTY, "size": EMPTY_CONFIG.len(),
                   "digest": sha256_digest(EMPTY_CONFIG)},
        "layers": [signed.layer()],
        "subject": {"mediaType": media_type, "digest": digest, "size": size},
    });
    let bytes = serde_json::to_vec(&m).expect("a JSON value always serialises");
    RawManifest::from_bytes(bytes.into()).expect("our own manifest is JSON")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{payload::payload, SigningKey};

    const KEY: &str = include_str!("testdata/key.pem");

    #[test]
    fn a_referrer_names_its_subject_and_carries_the_signature_layer() {
        let s = Signed {
            payload: payload("r/app", "sha256:aa"),
            signature: vec![1, 2],
        };
        let m = referrer(&s, OCI_MANIFEST, "sha256:aa", 42).json();
        assert_eq!(m["artifactType"], SIG_ARTIFACT);
        assert_eq!(m["subject"]["digest"], "sha256:aa");
        assert_eq!(m["subject"]["size"], 42);
        assert_eq!(m["layers"][0]["annotations"][SIGNATURE_ANNOTATION], "AQI=");
        assert_eq!(m["config"]["digest"], sha256_digest(EMPTY_CONFIG).as_str());
    }

    #[test]
    fn tag_scheme() {
        assert_eq!(sig_tag("sha256:abc"), "sha256-abc.sig");
    }

    #[test]
    fn another_keys_signature_is_kept_and_ours_found() {
        let ours = SigningKey::from_pem(KEY).unwrap();
        let p = payload("r/app", "sha256:aa");
        let other = json!({"mediaType": SIMPLE_SIGNING, "digest": sha256_digest(&p),
            "size": p.len(), "annotations": {SIGNATURE_ANNOTATION: "b3RoZXI="}});
        assert!(!already_signed(
            std::slice::from_ref(&other),
            &p,
            ours.public_key()
        ));
        let s = Signed {
            signature: ours.sign(&p).unwrap(),
            payload: p.clone(),
        };
        let (m, config) = manifest_with(vec![other.clone()], &s);
        let layers = layers_of("t", &m.json()).unwrap();
        assert_eq!(layers.len(), 2);
        assert_eq!(layers[0], other);
        assert!(already_signed(&layers, &p, ours.public_key()));
        assert!(!already_signed(
            &layers,
            &payload("r/app", "sha256:bb"),
            ours.public_key()
        ));
        let c: Json = serde_json::from_slice(&config).unwrap();
        assert_eq!(c["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
        assert_eq!(
            m.json()["config"]["digest"],
            sha256_digest(&config).as_str()
        );
        assert!(layers_of("t", &json!({"manifests": []})).is_err());
    }
}

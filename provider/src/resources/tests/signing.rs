//! Signing decisions with an in-memory registry (manifests, blobs, tags): what is signed,
//! that a re-run signs nothing again, that other keys' signatures are kept, that delete
//! removes only ours and only where nothing tagged uses the digest, that `requireSignedBy`
//! names the source and digest, and that preview writes nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use oci_client::Reference;
use serde_json::{json, Value as Json};
use tokio_util::sync::CancellationToken;

use super::{FakeBuilder, Lines};
use crate::config::SecretString;
use crate::registry::manifest::{sha256_digest, RawManifest, OCI_INDEX, OCI_MANIFEST};
use crate::registry::{CopyChild, Deleted, RegistryError};
use crate::resources::signing::{require_signed, sign_pushed, Required, Signatures};
use crate::resources::{unsign, Error, OpContext, Registry};
use crate::signing::store::{self, Signed};
use crate::signing::{payload, Signer, SigningKey};

const KEY: &str = include_str!("../../signing/testdata/key.pem");
const REPO: &str = "127.0.0.1:5000/app";

#[derive(Default)]
struct Store {
    manifests: Mutex<BTreeMap<String, RawManifest>>,
    blobs: Mutex<BTreeMap<String, bytes::Bytes>>,
    writes: Mutex<Vec<String>>,
}

impl Store {
    fn writes(&self) -> Vec<String> {
        self.writes.lock().unwrap().clone()
    }
    fn put(&self, r: &str, m: &RawManifest) {
        self.manifests
            .lock()
            .unwrap()
            .insert(r.to_owned(), m.clone());
        let repo = r.split(['@', ':']).take(2).collect::<Vec<_>>().join(":");
        let _ = repo;
    }
    fn layers(&self, digest: &str) -> Vec<Json> {
        let tag = format!("{REPO}:{}", store::sig_tag(digest));
        match self.manifests.lock().unwrap().get(&tag) {
            Some(m) => m.json()["layers"].as_array().cloned().unwrap_or_default(),
            None => Vec::new(),
        }
    }
}

#[async_trait]
impl Registry for Store {
    async fn digest_of(&self, r: &Reference) -> Result<Option<String>, RegistryError> {
        Ok(self.manifest(r).await?.map(|m| m.digest))
    }
    async fn manifest(&self, r: &Reference) -> Result<Option<RawManifest>, RegistryError> {
        Ok(self.manifests.lock().unwrap().get(&r.whole()).cloned())
    }
    async fn json_blob(&self, r: &Reference, digest: &str) -> Result<Json, RegistryError> {
        let b = self.small_blob(r, digest).await?;
        Ok(serde_json::from_slice(&b).unwrap())
    }
    async fn small_blob(&self, r: &Reference, digest: &str) -> Result<bytes::Bytes, RegistryError> {
        self.blobs
            .lock()
            .unwrap()
            .get(digest)
            .cloned()
            .ok_or_else(|| RegistryError::Setup {
                message: format!("no blob {digest} in {}", r.whole()),
            })
    }
    async fn push_blob(&self, _r: &Reference, data: bytes::Bytes) -> Result<(), RegistryError> {
        self.blobs
            .lock()
            .unwrap()
            .insert(sha256_digest(&data), data);
        Ok(())
    }
    async fn tags(&self, r: &Reference) -> Result<Vec<String>, RegistryError> {
        let prefix = format!("{}/{}:", r.registry(), r.repository());
        Ok(self
            .manifests
            .lock()
            .unwrap()
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix).map(str::to_owned))
            .collect())
    }
    async fn copy_into(&self, _: &Reference, _: &[CopyChild]) -> Result<(), RegistryError> {
        Ok(())
    }
    fn is_ecr(&self, _host: &str) -> bool {
        false
    }
    async fn put_manifest(&self, r: &Reference, m: &RawManifest) -> Result<(), RegistryError> {
        self.writes
            .lock()
            .unwrap()
            .push(format!("put {}", r.whole()));
        self.put(&r.whole(), m);
        Ok(())
    }
    async fn delete_tag(&self, t: &Reference, _: &[Reference]) -> Result<Deleted, RegistryError> {
        self.writes
            .lock()
            .unwrap()
            .push(format!("delete {}", t.whole()));
        Ok(match self.manifests.lock().unwrap().remove(&t.whole()) {
            Some(_) => Deleted::Removed,
            None => Deleted::AlreadyGone,
        })
    }
    async fn basic_auth(&self, _host: &str) -> Option<(String, String)> {
        None
    }
}

fn raw(v: Json) -> RawManifest {
    RawManifest::from_bytes(serde_json::to_vec(&v).unwrap().into()).unwrap()
}

/// An index at `app:1` with two platform manifests and an attestation manifest.
fn world() -> (Arc<Store>, RawManifest, Vec<String>) {
    let s = Arc::new(Store::default());
    let child = |arch: &str| raw(json!({"mediaType": OCI_MANIFEST, "arch": arch}));
    let (amd, arm, att) = (child("amd64"), child("arm64"), child("att"));
    let entry = |m: &RawManifest, os: &str, arch: &str| {
        json!({"mediaType": OCI_MANIFEST, "digest": m.digest, "size": m.size(),
               "platform": {"os": os, "architecture": arch}})
    };
    let index = raw(
        json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        entry(&amd, "linux", "amd64"), entry(&arm, "linux", "arm64"),
        entry(&att, "unknown", "unknown")]}),
    );
    for m in [&amd, &arm, &att, &index] {
        s.put(&format!("{REPO}@{}", m.digest), m);
    }
    s.put(&format!("{REPO}:1"), &index);
    (s, index, vec![amd.digest, arm.digest])
}

fn ctx(s: &Arc<Store>, preview: bool) -> OpContext {
    OpContext {
        registry: s.clone(),
        builder: Arc::new(FakeBuilder::default()),
        log: Arc::new(Lines::default()),
        cancel: CancellationToken::new(),
        preview,
        signing: Some(Signer::Pem(SecretString::new(KEY))),
        urn: None,
    }
}

fn tags() -> Vec<String> {
    vec![format!("{REPO}:1")]
}

#[tokio::test]
async fn signs_index_and_platforms_once_keeping_other_signatures() {
    let (s, index, children) = world();
    // Another key's signature of the amd64 manifest, already there.
    let other = Signed {
        payload: payload::payload(REPO, &children[0]),
        signature: vec![0x30, 0x00],
    };
    let (m, _) = store::manifest_with(Vec::new(), &other);
    s.put(&format!("{REPO}:{}", store::sig_tag(&children[0])), &m);

    assert!(sign_pushed(&ctx(&s, true), true, &tags(), &index.digest)
        .await
        .unwrap()
        .is_none());
    assert!(sign_pushed(&ctx(&s, false), false, &tags(), &index.digest)
        .await
        .unwrap()
        .is_none());
    assert!(
        s.writes().is_empty(),
        "preview and sign: false write nothing"
    );

    let signed = sign_pushed(&ctx(&s, false), true, &tags(), &index.digest)
        .await
        .unwrap()
        .unwrap();
    let mut want = vec![
        index.digest.clone(),
        children[0].clone(),
        children[1].clone(),
    ];
    want.sort();
    assert_eq!(
        signed.digests, want,
        "the attestation manifest is not signed"
    );
    let key = SigningKey::from_pem(KEY).unwrap();
    assert_eq!(signed.key, key.public_key().fingerprint());
    assert_eq!(
        s.layers(&children[0]).len(),
        2,
        "the other key's layer is kept"
    );
    assert_eq!(s.layers(&index.digest).len(), 1);

    let before = s.writes().len();
    sign_pushed(&ctx(&s, false), true, &tags(), &index.digest)
        .await
        .unwrap();
    assert_eq!(s.writes().len(), before, "a re-run signs nothing again");
}

#[tokio::test]
async fn delete_removes_only_our_signatures_of_untagged_digests() {
    let (s, index, children) = world();
    let signed = sign_pushed(&ctx(&s, false), true, &tags(), &index.digest)
        .await
        .unwrap()
        .unwrap();
    let other = Signed {
        payload: payload::payload(REPO, &children[1]),
        signature: vec![0x30, 0x00],
    };
    let tag = format!("{REPO}:{}", store::sig_tag(&children[1]));
    let layers = s.layers(&children[1]);
    let (m, _) = store::manifest_with(layers, &other);
    s.put(&tag, &m);

    // Still tagged: nothing is removed.
    unsign::unsign(&ctx(&s, false), &tags(), &signed)
        .await
        .unwrap();
    assert_eq!(s.layers(&index.digest).len(), 1);

    s.manifests.lock().unwrap().remove(&format!("{REPO}:1"));
    unsign::unsign(&ctx(&s, false), &tags(), &signed)
        .await
        .unwrap();
    assert!(s.layers(&index.digest).is_empty());
    assert!(s.layers(&children[0]).is_empty());
    assert_eq!(
        s.layers(&children[1]).len(),
        1,
        "another key's signature stays"
    );

    // A state signed by another key: nothing is touched.
    let foreign = Signatures {
        key: "sha256:00".into(),
        digests: vec![children[1].clone()],
    };
    unsign::unsign(&ctx(&s, false), &tags(), &foreign)
        .await
        .unwrap();
    assert_eq!(s.layers(&children[1]).len(), 1);
}

#[tokio::test]
async fn require_signed_names_the_source_and_digest() {
    let (s, index, children) = world();
    let public = include_str!("../../signing/testdata/pub.pem").to_owned();
    let required = |d: &str| Required {
        source: format!("{REPO}:1"),
        from: format!("{REPO}:1").parse().unwrap(),
        digest: d.to_owned(),
        what: "index".into(),
    };
    let all = [required(&index.digest), required(&children[0])];
    let e = require_signed(&ctx(&s, true), std::slice::from_ref(&public), &all)
        .await
        .unwrap_err();
    let Error::Invalid(f) = e else { panic!("{e}") };
    assert_eq!(f.len(), 2);
    assert!(f[0].reason.contains(&index.digest) && f[0].reason.contains("no signature"));
    sign_pushed(&ctx(&s, false), true, &tags(), &index.digest)
        .await
        .unwrap();
    require_signed(&ctx(&s, true), &[public], &all)
        .await
        .unwrap();
    let _ = children;
}

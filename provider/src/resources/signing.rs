//! Signing what a resource pushed (see [`crate::signing`]): the index and each platform
//! manifest, in every repository a tag names, through the operation's registry client (its
//! credentials and deadlines). Attestation manifests are not signed: they are not images
//! (`cosign verify` is never pointed at one) and BuildKit names them by the image they
//! describe, whose signature covers the index that lists them.

use std::collections::BTreeSet;

use oci_client::Reference;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Error, OpContext};
use crate::reference::parse_tag;
use crate::registry::manifest::{entry_platform, index_entries};
use crate::signing::store::{self, Signed};
use crate::signing::{payload, OpenSigner, PublicKey};

/// The annotation BuildKit puts on attestation manifests.
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// What a push signed (never the signatures themselves: they differ on every run).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Signatures {
    /// The signing key's fingerprint: `sha256:<hex>` of its public key (DER
    /// SubjectPublicKeyInfo), as `openssl pkey -pubin -outform DER | sha256sum` prints it.
    pub key: String,
    /// The digests signed: the index and each platform manifest, sorted.
    pub digests: Vec<String>,
}

/// Signs `index_digest` and its platform manifests in each repository of `tags`, when the
/// provider has a `signing` block and the resource did not opt out. Existing signatures
/// (other keys', or this key's from an earlier run) are kept; a digest this key already
/// signed in a repository is not signed again.
pub async fn sign_pushed(
    ctx: &OpContext,
    sign: bool,
    tags: &[String],
    index_digest: &str,
) -> Result<Option<Signatures>, Error> {
    let Some(signer) = ctx.signing.as_ref().filter(|_| sign) else {
        return Ok(None);
    };
    if ctx.preview {
        return Ok(None);
    }
    let key = signer
        .open()
        .await
        .map_err(|e| Error::invalid(signer.property(), e.to_string()))?;
    let mut repos: Vec<Reference> = Vec::new();
    for t in tags {
        let r = parse_tag(t).map_err(|e| Error::invalid("tags", e))?;
        if !repos
            .iter()
            .any(|o| o.registry() == r.registry() && o.repository() == r.repository())
        {
            repos.push(r);
        }
    }
    let Some(first) = repos.first() else {
        return Ok(None);
    };
    let digests = signable(ctx, first, index_digest).await?;
    for repo in &repos {
        for d in &digests {
            sign_one(ctx, &key, repo, d).await?;
        }
    }
    ctx.log.info(&format!(
        "signed {} manifest(s) with key {} in {} repositor{}",
        digests.len(),
        key.public_key().fingerprint(),
        repos.len(),
        if repos.len() == 1 { "y" } else { "ies" }
    ));
    let mut digests: Vec<String> = digests.into_iter().collect();
    digests.sort();
    Ok(Some(Signatures {
        key: key.public_key().fingerprint(),
        digests,
    }))
}

/// The index and its image manifests (not attestations).
async fn signable(
    ctx: &OpContext,
    at: &Reference,
    index_digest: &str,
) -> Result<BTreeSet<String>, Error> {
    let r = at.clone_with_digest(index_digest.to_owned());
    let m = ctx.registry.manifest(&r).await?.ok_or_else(|| {
        Error::Other(format!(
            "{}: the pushed manifest is gone; nothing signed",
            r.whole()
        ))
    })?;
    let mut out = BTreeSet::from([index_digest.to_owned()]);
    let json = m.json();
    for e in index_entries(&json) {
        let attestation = entry_platform(e).is_attestation()
            || e["annotations"][REFERENCE_TYPE] == "attestation-manifest";
        if let (false, Some(d)) = (attestation, e["digest"].as_str()) {
            out.insert(d.to_owned());
        }
    }
    Ok(out)
}

/// Adds this key's signature of `digest` to its `.sig` tag in `repo`'s repository.
async fn sign_one(
    ctx: &OpContext,
    key: &OpenSigner,
    repo: &Reference,
    digest: &str,
) -> Result<(), Error> {
    let tag = sig_ref(repo, digest);
    let body = payload::payload(
        &format!("{}/{}", repo.registry(), repo.repository()),
        digest,
    );
    let existing = match ctx.registry.manifest(&tag).await? {
        Some(m) => {
            store::layers_of(&tag.whole(), &m.json()).map_err(|e| Error::Other(e.to_string()))?
        }
        None => Vec::new(),
    };
    if store::already_signed(&existing, &body, key.public_key()) {
        return Ok(());
    }
    let signature = key
        .sign(&body)
        .await
        .map_err(|e| Error::Other(format!("{}: {e}", tag.whole())))?;
    let signed = Signed {
        payload: body,
        signature,
    };
    let (manifest, config) = store::manifest_with(existing, &signed);
    ctx.registry
        .push_blob(&tag, signed.payload.clone().into())
        .await?;
    ctx.registry.push_blob(&tag, config.into()).await?;
    ctx.registry.put_manifest(&tag, &manifest).await?;
    as_referrer(ctx, repo, digest, &signed).await
}

/// Where the registry serves the OCI 1.1 referrers API, the signature is also pushed as an
/// artifact whose `subject` is the signed manifest (found through the API by clients that
/// look there). A registry without the API (a 404) gets the tag scheme only.
async fn as_referrer(
    ctx: &OpContext,
    repo: &Reference,
    digest: &str,
    signed: &Signed,
) -> Result<(), Error> {
    let at = repo.clone_with_digest(digest.to_owned());
    match ctx.registry.referrers(&at, digest).await {
        Ok(Some(_)) => {}
        Ok(None) => return Ok(()),
        Err(e) => {
            ctx.log
                .info(&format!("no referrers API at {}: {e}", at.whole()));
            return Ok(());
        }
    }
    let subject = ctx
        .registry
        .manifest(&at)
        .await?
        .ok_or_else(|| Error::Other(format!("{}: the signed manifest is gone", at.whole())))?;
    let m = store::referrer(signed, &subject.media_type, digest, subject.size());
    ctx.registry
        .push_blob(&at, store::EMPTY_CONFIG.to_vec().into())
        .await?;
    let r = repo.clone_with_digest(m.digest.clone());
    ctx.registry.put_manifest(&r, &m).await?;
    Ok(())
}

/// The `.sig` tag of `digest` in `repo`'s repository.
pub(super) fn sig_ref(repo: &Reference, digest: &str) -> Reference {
    Reference::with_tag(
        repo.registry().to_owned(),
        repo.repository().to_owned(),
        store::sig_tag(digest),
    )
}

/// What the signatures stored for a digest say about a set of keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Signed,
    Unsigned,
    /// Signed, by none of the keys (or with a payload naming another digest).
    OtherKeys,
}

async fn verdict(
    ctx: &OpContext,
    repo: &Reference,
    digest: &str,
    keys: &[PublicKey],
) -> Result<Verdict, Error> {
    let tag = sig_ref(repo, digest);
    let Some(m) = ctx.registry.manifest(&tag).await? else {
        return Ok(Verdict::Unsigned);
    };
    let layers =
        store::layers_of(&tag.whole(), &m.json()).map_err(|e| Error::Other(e.to_string()))?;
    if layers.is_empty() {
        return Ok(Verdict::Unsigned);
    }
    for l in &layers {
        let (Some(sig), Some(d)) = (store::signature_of(l), l["digest"].as_str()) else {
            continue;
        };
        if l["mediaType"] != store::SIMPLE_SIGNING {
            continue;
        }
        let body = ctx.registry.small_blob(&tag, d).await?;
        if payload::claimed_digest(&body).as_deref() == Some(digest)
            && keys.iter().any(|k| k.verifies(&body, &sig))
        {
            return Ok(Verdict::Signed);
        }
    }
    Ok(Verdict::OtherKeys)
}

/// One manifest a `requireSignedBy` check covers: the source as written, where it lives,
/// its digest and what it is (`index`, a platform).
pub struct Required {
    pub source: String,
    pub from: Reference,
    pub digest: String,
    pub what: String,
}

/// Every manifest of `required` must carry a valid signature by one of `pems` (read-only:
/// runs in preview). The failure names each source and digest that does not.
pub async fn require_signed(
    ctx: &OpContext,
    pems: &[String],
    required: &[Required],
) -> Result<(), Error> {
    if pems.is_empty() {
        return Ok(());
    }
    let keys = public_keys(pems).map_err(Error::Invalid)?;
    let verdicts = futures::future::try_join_all(
        required
            .iter()
            .map(|r| verdict(ctx, &r.from, &r.digest, &keys)),
    )
    .await?;
    let failures: Vec<super::Failure> = required
        .iter()
        .zip(verdicts)
        .filter(|(_, v)| *v != Verdict::Signed)
        .map(|(r, v)| {
            let why = match v {
                Verdict::Unsigned => "carries no signature",
                _ => "carries no valid signature by a key of requireSignedBy",
            };
            super::Failure::new(
                "requireSignedBy",
                format!("source {} ({}, {}) {why}", r.source, r.what, r.digest),
            )
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(failures))
    }
}

/// The keys of a `requireSignedBy` list, or a failure per unreadable one.
pub fn public_keys(pems: &[String]) -> Result<Vec<PublicKey>, Vec<super::Failure>> {
    let mut keys = Vec::new();
    let mut failures = Vec::new();
    for (i, pem) in pems.iter().enumerate() {
        match PublicKey::from_pem(pem) {
            Ok(k) => keys.push(k),
            Err(e) => failures.push(super::Failure::new(
                format!("requireSignedBy[{i}]"),
                e.to_string(),
            )),
        }
    }
    if failures.is_empty() {
        Ok(keys)
    } else {
        Err(failures)
    }
}

/// Copies the signatures of `digest` from `from`'s repository into `to`'s (a promotion
/// keeps digests, so the source's signatures hold for the target): the layers the target's
/// `.sig` tag lacks are added, the ones it has are kept.
pub async fn carry_signatures(
    ctx: &OpContext,
    from: &Reference,
    to: &Reference,
    digest: &str,
) -> Result<bool, Error> {
    let (src_tag, dst_tag) = (sig_ref(from, digest), sig_ref(to, digest));
    let Some(src) = ctx.registry.manifest(&src_tag).await? else {
        return Ok(false);
    };
    let src_layers =
        store::layers_of(&src_tag.whole(), &src.json()).map_err(|e| Error::Other(e.to_string()))?;
    let dst_layers = match ctx.registry.manifest(&dst_tag).await? {
        Some(m) => store::layers_of(&dst_tag.whole(), &m.json())
            .map_err(|e| Error::Other(e.to_string()))?,
        None => Vec::new(),
    };
    let missing = store::missing_layers(&dst_layers, &src_layers);
    if missing.is_empty() {
        return Ok(false);
    }
    for l in &missing {
        let d = l["digest"].as_str().unwrap_or_default();
        let bytes = ctx.registry.small_blob(&src_tag, d).await?;
        ctx.registry.push_blob(&dst_tag, bytes).await?;
    }
    let (m, config) = store::manifest_of(dst_layers.into_iter().chain(missing).collect());
    ctx.registry.push_blob(&dst_tag, config.into()).await?;
    ctx.registry.put_manifest(&dst_tag, &m).await?;
    Ok(true)
}

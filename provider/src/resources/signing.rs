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
use crate::signing::{payload, SigningKey, KEY_PROPERTY};

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
    let Some(config) = ctx.signing.as_ref().filter(|_| sign) else {
        return Ok(None);
    };
    if ctx.preview {
        return Ok(None);
    }
    let key =
        crate::signing::signer(config).map_err(|e| Error::invalid(KEY_PROPERTY, e.to_string()))?;
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
    key: &SigningKey,
    repo: &Reference,
    digest: &str,
) -> Result<(), Error> {
    let tag = Reference::with_tag(
        repo.registry().to_owned(),
        repo.repository().to_owned(),
        store::sig_tag(digest),
    );
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
        .map_err(|e| Error::Other(format!("{}: {e}", tag.whole())))?;
    let signed = Signed {
        payload: body,
        signature,
    };
    let (manifest, config) = store::manifest_with(existing, &signed);
    ctx.registry.push_blob(&tag, signed.payload.into()).await?;
    ctx.registry.push_blob(&tag, config.into()).await?;
    ctx.registry.put_manifest(&tag, &manifest).await?;
    Ok(())
}

//! Delete's side of signing: after a resource's tags are removed, the signatures it wrote
//! (this key's layers under the `.sig` tags of the digests its `signatures` output lists)
//! are removed where no remaining tag of the repository points to the digest, directly or
//! as a platform of a tagged index. Other keys' signatures stay; a `.sig` tag left with none
//! is deleted.

use std::collections::BTreeSet;

use futures::StreamExt;
use oci_client::Reference;

use super::signing::{sig_ref, Signatures};
use super::{Error, OpContext};
use crate::reference::parse_tag;
use crate::registry::manifest::index_entries;
use crate::signing::store;
use crate::signing::{payload, PublicKey};

/// Removes this key's signatures of `signed.digests` from the repositories of `tags` (just
/// removed) where nothing tagged uses the digest any more.
pub async fn unsign(ctx: &OpContext, tags: &[String], signed: &Signatures) -> Result<(), Error> {
    let Some(key) = configured_key(ctx)
        .await
        .filter(|k| k.fingerprint() == signed.key)
    else {
        ctx.log.warn(&format!(
            "the signatures by key {} are left in place: the provider's signing key is another one",
            signed.key
        ));
        return Ok(());
    };
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
    for repo in &repos {
        let used = in_use(ctx, repo).await?;
        for d in signed.digests.iter().filter(|d| !used.contains(*d)) {
            remove_ours(ctx, repo, d, &key).await?;
        }
    }
    Ok(())
}

async fn configured_key(ctx: &OpContext) -> Option<PublicKey> {
    let signer = ctx.signing.as_ref()?;
    signer.open().await.ok().map(|k| k.public_key().clone())
}

/// The digests the repository's tags (other than signature tags) point to, with the
/// platform manifests of tagged indexes.
async fn in_use(ctx: &OpContext, repo: &Reference) -> Result<BTreeSet<String>, Error> {
    const LOOKUPS: usize = 8;
    let tags: Vec<String> = ctx
        .registry
        .tags(repo)
        .await?
        .into_iter()
        .filter(|t| !t.starts_with("sha256-"))
        .collect();
    let manifests: Vec<_> = futures::stream::iter(tags.into_iter().map(|t| {
        let r = Reference::with_tag(repo.registry().into(), repo.repository().into(), t);
        async move { ctx.registry.manifest(&r).await }
    }))
    .buffer_unordered(LOOKUPS)
    .collect()
    .await;
    let mut used = BTreeSet::new();
    for m in manifests {
        let Some(m) = m? else { continue };
        used.insert(m.digest.clone());
        for e in index_entries(&m.json()) {
            if let Some(d) = e["digest"].as_str() {
                used.insert(d.to_owned());
            }
        }
    }
    Ok(used)
}

/// Drops `key`'s signatures of `digest` from its `.sig` tag; deletes the tag when no other
/// signature remains.
async fn remove_ours(
    ctx: &OpContext,
    repo: &Reference,
    digest: &str,
    key: &PublicKey,
) -> Result<(), Error> {
    let tag = sig_ref(repo, digest);
    let Some(m) = ctx.registry.manifest(&tag).await? else {
        return Ok(());
    };
    let layers =
        store::layers_of(&tag.whole(), &m.json()).map_err(|e| Error::Other(e.to_string()))?;
    let mut keep = Vec::new();
    for l in &layers {
        let ours = match (store::signature_of(l), l["digest"].as_str()) {
            (Some(sig), Some(d)) if l["mediaType"] == store::SIMPLE_SIGNING => {
                let body = ctx.registry.small_blob(&tag, d).await?;
                payload::claimed_digest(&body).as_deref() == Some(digest)
                    && key.verifies(&body, &sig)
            }
            _ => false,
        };
        if !ours {
            keep.push(l.clone());
        }
    }
    if keep.len() == layers.len() {
        return Ok(());
    }
    ctx.log.status(&format!(
        "removing our signature of {digest} from {}",
        tag.whole()
    ));
    if keep.is_empty() {
        ctx.registry.delete_tag(&tag, &[]).await?;
    } else {
        let (m, config) = store::manifest_of(keep);
        ctx.registry.push_blob(&tag, config.into()).await?;
        ctx.registry.put_manifest(&tag, &m).await?;
    }
    Ok(())
}

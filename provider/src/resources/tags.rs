//! What both resources do with the tags they own: refresh them, remove them.

use std::collections::BTreeSet;

use super::{Error, OpContext};
use crate::reference::parse_tag;
use crate::registry::Deleted;

/// The tags that still point at `digest`. A tag that is gone or points elsewhere is
/// dropped; Err(()) means a look-up failed for another reason (auth, network) and the
/// caller keeps its recorded state (a warning says so).
async fn still_ours(
    ctx: &OpContext,
    tags: &[String],
    digest: Option<&str>,
) -> Result<Vec<String>, ()> {
    let mut kept = Vec::new();
    for tag in tags {
        let Ok(t) = parse_tag(tag) else {
            kept.push(tag.clone());
            continue;
        };
        match ctx.registry.digest_of(&t).await {
            Ok(Some(d)) if digest.is_none() || Some(d.as_str()) == digest => kept.push(tag.clone()),
            Ok(Some(d)) => ctx.log.warn(&format!(
                "{tag} now points to {d}, not to this resource's digest"
            )),
            Ok(None) => ctx.log.info(&format!("{tag} no longer exists")),
            Err(e) => {
                ctx.log.warn(&format!(
                    "could not refresh {tag}; keeping the recorded state: {e}"
                ));
                return Err(());
            }
        }
    }
    Ok(kept)
}

/// Refresh of a resource owning `tags` pushed at `digest`: the state with the tags that are
/// still ours, None when none is left, the state unchanged when a look-up failed.
pub async fn refresh<S>(
    ctx: &OpContext,
    id: &str,
    mut state: S,
    digest: Option<String>,
    tags: impl Fn(&mut S) -> &mut Vec<String>,
) -> Option<(String, S)> {
    match still_ours(ctx, tags(&mut state), digest.as_deref()).await {
        Err(()) => Some((id.to_owned(), state)),
        Ok(kept) if kept.is_empty() => None,
        Ok(kept) => {
            *tags(&mut state) = kept;
            Some((id.to_owned(), state))
        }
    }
}

/// Removes the given tags (a 404 is success; a digest another tag uses survives).
pub async fn remove(ctx: &OpContext, tags: &[String]) -> Result<(), Error> {
    let mut going = Vec::new();
    for tag in tags {
        going.push(parse_tag(tag).map_err(|e| Error::invalid("tags", e))?);
    }
    for t in &going {
        ctx.log.status(&format!("removing {}", t.whole()));
        if let Deleted::KeptShared { other } = ctx.registry.delete_tag(t, &going).await? {
            ctx.log.warn(&format!(
                "{} was left in place: {other} points to the same manifest and this registry \
                 can only delete by digest",
                t.whole()
            ));
        }
    }
    Ok(())
}

/// BuildKit pushes with the Engine's or buildkitd's own registry rules (the Engine speaks
/// plain HTTP to 127.0.0.0/8 without being told), the provider with its configuration. A
/// registry the provider cannot read would get a pushed tag that the provider then fails to
/// read back and record, so each tag's registry is read first and nothing is built or pushed
/// when one of them fails.
pub(super) async fn reachable_before_push(ctx: &OpContext, tags: &[String]) -> Result<(), Error> {
    let mut seen = BTreeSet::new();
    for (i, t) in tags.iter().enumerate() {
        let r = parse_tag(t).map_err(|e| Error::invalid(format!("tags[{i}]"), e))?;
        if !seen.insert((r.registry().to_owned(), r.repository().to_owned())) {
            continue;
        }
        if let Err(e) = ctx.registry.digest_of(&r).await {
            return Err(Error::Other(format!(
                "tags[{i}]: the provider cannot read {t} ({e}); nothing was built or pushed. \
                 A registry that speaks plain HTTP needs \
                 registries: [{{address: \"{}\", insecure: true}}]",
                r.registry()
            )));
        }
    }
    Ok(())
}

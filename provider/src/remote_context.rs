//! Remote build contexts: a Git repository or an HTTP(S) tarball that BuildKit fetches
//! itself (the Dockerfile frontend's `context` attribute), as `docker buildx build <url>`
//! takes them.
//!
//! What counts as Git follows BuildKit's `ParseGitRef`: `git://`, `ssh://` and scp-like
//! `user@host:path` URLs, and `http(s)://` URLs whose path ends in `.git`; any other
//! `http(s)://` URL is a tarball (or a plain Dockerfile) the frontend downloads.
//! A Git URL may end in `#<ref>`, `#<ref>:<subdir>` or `#:<subdir>`.
//!
//! The contextHash of a Git context is its resolved commit and subdirectory
//! ([`resolve`]: `git ls-remote`, read-only, with a deadline), so a branch that moves is a
//! change. The one of a tarball is the SHA-256 of its bytes ([`fetch_digest`]: one
//! bounded, streamed GET).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// How long `git ls-remote` may take.
const LS_REMOTE_TIME: Duration = Duration::from_secs(30);
/// The largest tarball hashed.
const TARBALL_MAX: u64 = 2 * 1024 * 1024 * 1024;
/// How long a tarball download for its hash may take in all.
const TARBALL_TIME: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{0:?} holds credentials: they would be stored in the state; use a credential helper or an SSH agent instead")]
    Credentials(String),
    #[error("{0:?}: query options (`?ref=…`) are not supported; write the ref and subdirectory as `#<ref>:<subdir>`")]
    Query(String),
    #[error("{url:?}: {reason}")]
    Malformed { url: String, reason: String },
    #[error("resolving {what} of {remote} (git ls-remote): {reason}")]
    Resolve {
        remote: String,
        what: String,
        reason: String,
    },
    #[error("downloading {url} to hash it: {reason}")]
    Download { url: String, reason: String },
}

/// A remote context, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    Git(GitContext),
    Tarball { url: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitContext {
    /// The repository URL, without the fragment.
    pub remote: String,
    /// The branch, tag, full ref or commit; None = the remote's HEAD.
    pub reference: Option<String>,
    /// A directory inside the repository; None = its root.
    pub subdir: Option<String>,
    /// `ssh://` or scp-like (BuildKit fetches these with the session's `default` SSH agent).
    pub ssh: bool,
}

/// True when `location` names a remote context rather than a local directory.
pub fn is_remote(location: &str) -> bool {
    let l = location.trim();
    ["http://", "https://", "git://", "ssh://"]
        .iter()
        .any(|p| l.starts_with(p))
        || scp_like(l)
}

/// `user@host:path` (git's scp-like syntax): an `@` before the first `:`, no `/` before it.
fn scp_like(l: &str) -> bool {
    match (l.find('@'), l.find(':'), l.find('/')) {
        (Some(at), Some(colon), slash) => at < colon && slash.is_none_or(|s| s > colon),
        _ => false,
    }
}

fn malformed(url: &str, reason: impl Into<String>) -> RemoteError {
    RemoteError::Malformed {
        url: url.to_owned(),
        reason: reason.into(),
    }
}

/// Parses a remote `context.location`; None for a local directory.
pub fn parse(location: &str) -> Result<Option<Remote>, RemoteError> {
    let l = location.trim();
    if !is_remote(l) {
        return Ok(None);
    }
    if l.starts_with('-') {
        return Err(malformed(l, "a URL does not start with `-`"));
    }
    if l.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(malformed(l, "a URL has no spaces or control characters"));
    }
    let (base, fragment) = match l.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (l, None),
    };
    let scp = scp_like(l) && !l.contains("://");
    if !scp {
        let (_, rest) = l.split_once("://").unwrap_or(("", l));
        let authority = rest.split(['/', '#', '?']).next().unwrap_or("");
        if authority.is_empty() {
            return Err(malformed(l, "no host"));
        }
        // ssh://git@host is a user name, not a secret; anything with a password is.
        if authority.contains('@')
            && (authority.split('@').next().unwrap_or("").contains(':') || l.starts_with("http"))
        {
            return Err(RemoteError::Credentials(l.to_owned()));
        }
    }
    let http = l.starts_with("http://") || l.starts_with("https://");
    if base.contains('?') {
        if http && !base.split('?').next().unwrap_or("").ends_with(".git") {
            return Ok(Some(tarball(l, fragment)?));
        }
        return Err(RemoteError::Query(l.to_owned()));
    }
    if http && !base.ends_with(".git") {
        return Ok(Some(tarball(l, fragment)?));
    }
    let (reference, subdir) = match fragment {
        None => (None, None),
        Some(f) => {
            let (r, s) = f.split_once(':').unwrap_or((f, ""));
            let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
            (non_empty(r), non_empty(s.trim_matches('/')))
        }
    };
    if let Some(s) = &subdir {
        if s.split('/').any(|c| c == "..") {
            return Err(malformed(
                l,
                "the subdirectory may not leave the repository (`..`)",
            ));
        }
    }
    if let Some(r) = &reference {
        if r.starts_with('-') || r.contains("..") {
            return Err(malformed(l, format!("{r:?} is not a valid Git ref")));
        }
    }
    Ok(Some(Remote::Git(GitContext {
        remote: base.to_owned(),
        reference,
        subdir,
        ssh: scp || l.starts_with("ssh://"),
    })))
}

fn tarball(l: &str, fragment: Option<&str>) -> Result<Remote, RemoteError> {
    if fragment.is_some() {
        return Err(malformed(
            l,
            "an HTTP(S) URL whose path does not end in `.git` is a tarball, which takes no \
             `#ref:subdir` (a Git repository over HTTP(S) ends in `.git`)",
        ));
    }
    Ok(Remote::Tarball { url: l.to_owned() })
}

/// True for a full hexadecimal commit id (SHA-1 or SHA-256).
fn is_commit(r: &str) -> bool {
    (r.len() == 40 || r.len() == 64) && r.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The commit `g` names now: a commit id as written, else `git ls-remote` (read-only; no
/// prompt; SSH in batch mode) within [`LS_REMOTE_TIME`].
pub fn resolve(g: &GitContext) -> Result<String, RemoteError> {
    let what = g.reference.clone().unwrap_or_else(|| "HEAD".into());
    if is_commit(&what) {
        return Ok(what.to_ascii_lowercase());
    }
    let fail = |reason: String| RemoteError::Resolve {
        remote: g.remote.clone(),
        what: what.clone(),
        reason,
    };
    let out = ls_remote(&g.remote, &what).map_err(fail)?;
    pick(&out, &what).ok_or_else(|| {
        fail(format!(
            "no branch, tag or ref named {what:?} (set `#<ref>` to an existing one)"
        ))
    })
}

/// The commit of `what` in `git ls-remote` output: `HEAD`, a branch, a tag (peeled when
/// annotated) or a full ref, in that order as git itself picks.
fn pick(out: &str, what: &str) -> Option<String> {
    let refs: Vec<(&str, &str)> = out
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(sha, name)| (sha.trim(), name.trim()))
        .collect();
    let find = |name: &str| {
        refs.iter()
            .find(|(_, n)| *n == name)
            .map(|(s, _)| (*s).to_owned())
    };
    if what == "HEAD" {
        return find("HEAD");
    }
    find(&format!("refs/heads/{what}"))
        .or_else(|| find(&format!("refs/tags/{what}^{{}}")))
        .or_else(|| find(&format!("refs/tags/{what}")))
        .or_else(|| find(&format!("{what}^{{}}")))
        .or_else(|| find(what))
}

/// Runs `git ls-remote <remote> <what>` with a deadline; its stdout, or why it failed.
fn ls_remote(remote: &str, what: &str) -> Result<String, String> {
    let mut cmd = Command::new("git");
    cmd.args(["ls-remote", "--", remote, what])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if std::env::var_os("GIT_SSH_COMMAND").is_none() {
        cmd.env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes");
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run git (is it installed?): {e}"))?;
    let (mut stdout, mut stderr) = (child.stdout.take(), child.stderr.take());
    // Read both pipes on threads so a chatty git cannot block on a full pipe.
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = stdout.as_mut() {
            let _ = o.take(16 * 1024 * 1024).read_to_string(&mut s);
        }
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.take(64 * 1024).read_to_string(&mut s);
        }
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if start.elapsed() > LS_REMOTE_TIME {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("no answer within {} s", LS_REMOTE_TIME.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    if !status.success() {
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(format!("git failed ({status}): {}", last.trim()));
    }
    Ok(out)
}

/// The SHA-256 of a tarball's bytes: one streamed GET, at most [`TARBALL_MAX`] bytes, with
/// the registry reads' idle deadline and a total deadline.
pub async fn fetch_digest(url: &str) -> Result<String, RemoteError> {
    use futures::StreamExt;
    let fail = |reason: String| RemoteError::Download {
        url: url.to_owned(),
        reason,
    };
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .timeout(TARBALL_TIME)
        .user_agent(concat!("multiarch/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(fail(format!("HTTP {}", resp.status().as_u16())));
    }
    if resp.content_length().is_some_and(|n| n > TARBALL_MAX) {
        return Err(fail(format!("larger than the {TARBALL_MAX}-byte limit")));
    }
    let window = crate::registry::idle_window();
    let mut body = Box::pin(crate::registry::guarded_body(resp.bytes_stream(), window));
    let mut h = Sha256::new();
    let mut n = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| fail(e.to_string()))?;
        n += chunk.len() as u64;
        if n > TARBALL_MAX {
            return Err(fail(format!("larger than the {TARBALL_MAX}-byte limit")));
        }
        h.update(&chunk);
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

/// Check's verdict on a remote `context.location`: None when it can be built, else why not.
/// `ssh_ids` are the ids of the SSH agents the build forwards.
pub fn check<'a>(location: &str, mut ssh_ids: impl Iterator<Item = &'a str>) -> Option<String> {
    match parse(location) {
        Err(e) => Some(e.to_string()),
        Ok(Some(Remote::Git(g))) if g.ssh && !ssh_ids.any(|id| id == "default") => Some(format!(
            "{location:?}: BuildKit fetches an SSH Git URL with the build's `default` SSH agent; \
             add `ssh: [{{id: \"default\"}}]` (it forwards SSH_AUTH_SOCK) or use an https URL"
        )),
        Ok(_) => None,
    }
}

/// The contextHash's part for a remote `context.location` (blocking: `git ls-remote`, or
/// a tarball download on the current Tokio runtime; call it from a blocking thread).
pub fn hash_input(location: &str) -> Result<String, RemoteError> {
    let remote = parse(location)?.ok_or_else(|| malformed(location, "not a remote context"))?;
    let digest = match &remote {
        Remote::Tarball { url } => {
            Some(tokio::runtime::Handle::current().block_on(fetch_digest(url))?)
        }
        Remote::Git(_) => None,
    };
    identity(&remote, digest.as_deref())
}

/// What a remote context contributes to the contextHash: the resolved commit and the
/// subdirectory of a Git context, the digest of a tarball's bytes.
pub fn identity(r: &Remote, tarball_digest: Option<&str>) -> Result<String, RemoteError> {
    match r {
        Remote::Git(g) => Ok(format!(
            "git {} {}\n",
            resolve(g)?,
            g.subdir.as_deref().unwrap_or("")
        )),
        Remote::Tarball { url } => match tarball_digest {
            Some(d) => Ok(format!("tarball {d}\n")),
            None => Err(RemoteError::Download {
                url: url.clone(),
                reason: "not downloaded".into(),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(s: &str) -> GitContext {
        match parse(s).unwrap().unwrap() {
            Remote::Git(g) => g,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn local_directories_are_not_remote() {
        for l in ["ctx", "./app", "/abs/dir", "c:/x", "dir@2x"] {
            assert_eq!(parse(l).unwrap(), None, "{l}");
        }
    }

    #[test]
    fn git_urls_with_ref_and_subdir() {
        let g = git("https://example.com/org/app.git#main:docker/app");
        assert_eq!(g.remote, "https://example.com/org/app.git");
        assert_eq!(g.reference.as_deref(), Some("main"));
        assert_eq!(g.subdir.as_deref(), Some("docker/app"));
        assert!(!g.ssh);
        let g = git("git@github.com:org/app.git#:sub");
        assert_eq!(g.remote, "git@github.com:org/app.git");
        assert_eq!(g.reference, None);
        assert_eq!(g.subdir.as_deref(), Some("sub"));
        assert!(g.ssh);
        let g = git("ssh://git@host:2222/org/app#v1.2");
        assert_eq!(g.reference.as_deref(), Some("v1.2"));
        assert_eq!(g.subdir, None);
        assert!(g.ssh);
        assert_eq!(git("git://host/app").reference, None);
    }

    #[test]
    fn http_without_dot_git_is_a_tarball() {
        assert_eq!(
            parse("https://example.com/ctx.tar.gz").unwrap(),
            Some(Remote::Tarball {
                url: "https://example.com/ctx.tar.gz".into()
            })
        );
        assert!(parse("https://example.com/ctx.tar.gz#main").is_err());
    }

    #[test]
    fn bad_urls_are_refused_with_a_reason() {
        for (l, want) in [
            ("https://user:tok@example.com/app.git", "credentials"),
            ("ssh://git:pw@example.com/app.git", "credentials"),
            ("https://example.com/app.git?ref=main", "query options"),
            (
                "https://example.com/app.git#main:../../etc",
                "may not leave",
            ),
            (
                "https://example.com/app.git#--upload-pack=x",
                "not a valid Git ref",
            ),
            ("https:///app.git", "no host"),
            ("https://example.com/a b.git", "no spaces"),
        ] {
            let e = parse(l).unwrap_err().to_string();
            assert!(e.contains(want), "{l}: {e}");
        }
    }

    #[test]
    fn ls_remote_output_picks_like_git() {
        let out = "aaa\tHEAD\nbbb\trefs/heads/main\nccc\trefs/tags/v1\nddd\trefs/tags/v1^{}\n";
        assert_eq!(pick(out, "HEAD").as_deref(), Some("aaa"));
        assert_eq!(pick(out, "main").as_deref(), Some("bbb"));
        assert_eq!(pick(out, "v1").as_deref(), Some("ddd"));
        assert_eq!(pick(out, "refs/heads/main").as_deref(), Some("bbb"));
        assert_eq!(pick(out, "nope"), None);
    }

    #[test]
    fn a_commit_id_resolves_without_the_network() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let g = git(&format!("https://nowhere.invalid/app.git#{sha}:sub"));
        assert_eq!(resolve(&g).unwrap(), sha);
    }

    #[test]
    fn an_unreachable_remote_is_an_error_naming_it() {
        let g = git("https://127.0.0.1:1/none.git#main");
        let e = resolve(&g).unwrap_err().to_string();
        assert!(
            e.contains("127.0.0.1:1/none.git") && e.contains("main"),
            "{e}"
        );
    }
}

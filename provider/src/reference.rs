//! Image references as users write them, checked for what this provider needs.
//!
//! The parser is written by hand after the distribution reference grammar
//! (github.com/distribution/reference, `reference.go`):
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [domain '/'] remote-name
//! domain           := host [':' port-number]
//! host             := domain-name                      (IPv6 literals: not accepted)
//! domain-name      := domain-component ['.' domain-component]*
//! domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//! port-number      := /[0-9]+/
//! remote-name      := path-component ['/' path-component]*
//! path-component   := alpha-numeric [separator alpha-numeric]*
//! alpha-numeric    := /[a-z0-9]+/
//! separator        := /[_.]|__|[-]+/
//! tag              := /[\w][\w.-]{0,127}/              (\w is ASCII)
//! digest           := algorithm ":" hex                (sha256/64, sha384/96, sha512/128,
//!                                                       lowercase hex, as go-digest checks)
//! ```
//!
//! plus Docker's rule for where the domain ends (the first component is a domain when it has
//! a `.` or a `:` or is `localhost`) and the 255-character limit on the name. oci-client's
//! own parser compiles a large regular expression on first use (about 30 ms in a release
//! build, more on a loaded machine), which every first Check paid; this one costs
//! microseconds and gives a reason with each rejection. The unit tests below check it against
//! that regular expression on a table of valid and invalid references.

use oci_client::Reference;

/// The longest name (domain and path) the grammar allows.
const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// The longest tag.
const TAG_MAX: usize = 128;

/// Parses a reference that must name its registry host explicitly: without one, Docker
/// tools silently mean Docker Hub, which is never what an ECR user wants.
pub fn parse_qualified(s: &str) -> Result<Reference, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty image reference".into());
    }
    let first = s.split('/').next().unwrap_or_default();
    let has_host = s.contains('/') && is_domain_like(first);
    if !has_host {
        return Err(format!(
            "{s:?} does not name a registry host; write it in full, e.g. \
             123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1.0"
        ));
    }
    parse(s).map_err(|e| format!("{s:?} is not a valid image reference: {e}"))
}

/// A tag to push to: a qualified reference without a digest.
pub fn parse_tag(s: &str) -> Result<Reference, String> {
    let r = parse_qualified(s)?;
    if r.digest().is_some() {
        return Err(format!("{s:?} has a digest; a tag to push must not"));
    }
    Ok(r)
}

/// A name for the Engine's image store only (`load: true`, `push: false`): a local name as
/// `docker build --load -t` takes it (`myapp:dev`), or a qualified one; never a digest.
pub fn parse_local_tag(s: &str) -> Result<Reference, String> {
    let t = s.trim();
    let r = parse(t).map_err(|e| format!("{s:?} is not a valid image name: {e}"))?;
    if r.digest().is_some() {
        return Err(format!(
            "{s:?} has a digest; an image name to load must not"
        ));
    }
    Ok(r)
}

/// The name the Engine's image store keeps for `s`, normalized as `docker build -t` does
/// (`myapp:dev` is `docker.io/library/myapp:dev`; the Engine looks a short name up so).
pub fn engine_name(s: &str) -> String {
    parse_local_tag(s).map_or_else(|_| s.to_owned(), |r| r.whole())
}

/// The repository part: `registry/repository`.
pub fn repository_of(r: &Reference) -> String {
    format!("{}/{}", r.registry(), r.repository())
}

/// Docker's rule: the first component of a name is a domain when it has a `.` or a `:` or is
/// `localhost` (or starts with `[`, an IPv6 literal, which is then refused by name).
fn is_domain_like(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost" || first.starts_with('[')
}

/// Parses any reference with the grammar above, normalized as Docker does: no domain means
/// `docker.io` (`index.docker.io` too), a one-component Docker Hub path gets `library/`,
/// no tag and no digest means `:latest`. The error says what is wrong, without the input.
pub fn parse(s: &str) -> Result<Reference, String> {
    if s.is_empty() {
        return Err("empty image reference".into());
    }
    let (rest, digest) = match s.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (s, None),
    };
    // A tag is after the last ':' when no '/' follows it (a ':' before a '/' is a port).
    let (name, tag) = match rest.rfind(':') {
        Some(c) if rest[c..].find('/').is_none() => (&rest[..c], Some(&rest[c + 1..])),
        _ => (rest, None),
    };
    if name.is_empty() {
        return Err("no repository name".into());
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, path)) if is_domain_like(first) => (Some(first), path),
        _ => (None, name),
    };
    if let Some(d) = domain {
        check_domain(d)?;
    }
    check_path(path)?;
    if name.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(format!(
            "the name is {} characters long; at most {NAME_TOTAL_LENGTH_MAX} are allowed",
            name.len()
        ));
    }
    if let Some(t) = tag {
        check_tag(t)?;
    }
    if let Some(d) = digest {
        check_digest(d)?;
    }
    let registry = match domain {
        None | Some("index.docker.io") => "docker.io",
        Some(d) => d,
    };
    let repository = if registry == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_owned()
    };
    let (registry, tag, digest) = (
        registry.to_owned(),
        tag.map(str::to_owned),
        digest.map(str::to_owned),
    );
    Ok(match (tag, digest) {
        (Some(t), Some(d)) => Reference::with_tag_and_digest(registry, repository, t, d),
        (None, Some(d)) => Reference::with_digest(registry, repository, d),
        (t, None) => Reference::with_tag(registry, repository, t.unwrap_or("latest".into())),
    })
}

fn check_domain(d: &str) -> Result<(), String> {
    if d.starts_with('[') {
        return Err(format!(
            "the registry host {d:?} is an IPv6 address, which image references cannot name; \
             use a host name"
        ));
    }
    let bad = || format!("the registry host {d:?} is not a host name with an optional :port");
    let (host, port) = match d.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
    }
    for c in host.split('.') {
        let b = c.as_bytes();
        let ok = !b.is_empty()
            && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-';
        if !ok {
            return Err(bad());
        }
    }
    Ok(())
}

fn check_path(path: &str) -> Result<(), String> {
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("the repository {path:?} must be lowercase"));
    }
    for c in path.split('/') {
        if !path_component(c.as_bytes()) {
            return Err(format!(
                "{c:?} in the repository {path:?} is not a path component (lowercase letters \
                 and digits, separated by one '.', one or two '_', or '-'s)"
            ));
        }
    }
    Ok(())
}

/// `[a-z0-9]+ ( ([._]|__|-+) [a-z0-9]+ )*`
fn path_component(b: &[u8]) -> bool {
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    loop {
        // One or more alphanumerics.
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        // A separator, then the next run.
        match b[i] {
            b'.' => i += 1,
            b'_' => i += if b.get(i + 1) == Some(&b'_') { 2 } else { 1 },
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

fn check_tag(t: &str) -> Result<(), String> {
    let b = t.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    let ok = !b.is_empty()
        && b.len() <= TAG_MAX
        && word(b[0])
        && b[1..].iter().all(|&x| word(x) || x == b'.' || x == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the tag {t:?} must be 1 to {TAG_MAX} letters, digits, '_', '.' or '-', \
             not starting with '.' or '-'"
        ))
    }
}

fn check_digest(d: &str) -> Result<(), String> {
    let Some((algorithm, hex)) = d.split_once(':') else {
        return Err(format!("the digest {d:?} is not algorithm:hex"));
    };
    let len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => {
            return Err(format!(
                "the digest {d:?} uses an unsupported algorithm (sha256, sha384 or sha512)"
            ))
        }
    };
    if hex.len() != len
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "the digest {d:?} must have {len} lowercase hex digits after {algorithm}:"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const H64: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn qualified_references() {
        let r = parse_qualified("123456789012.dkr.ecr.us-east-1.amazonaws.com/app:10").unwrap();
        assert_eq!(r.registry(), "123456789012.dkr.ecr.us-east-1.amazonaws.com");
        assert_eq!(r.repository(), "app");
        assert_eq!(r.tag(), Some("10"));
        let r = parse_qualified("127.0.0.1:5000/team/app@sha256:0000000000000000000000000000000000000000000000000000000000000000").unwrap();
        assert_eq!(repository_of(&r), "127.0.0.1:5000/team/app");
        assert!(r.digest().is_some());
        assert!(parse_qualified("localhost/app:1").is_ok());
    }

    #[test]
    fn unqualified_or_broken_references_fail() {
        assert!(parse_qualified("app:10")
            .unwrap_err()
            .contains("registry host"));
        assert!(parse_qualified("library/app")
            .unwrap_err()
            .contains("registry host"));
        assert!(parse_qualified("").is_err());
        assert!(parse_qualified("127.0.0.1:5000/App:1").is_err());
        assert!(parse_qualified("127.0.0.1:5000/app:bad tag").is_err());
        assert!(parse_tag("127.0.0.1:5000/app@sha256:0000000000000000000000000000000000000000000000000000000000000000").is_err());
    }

    /// A valid reference: (input, registry, repository, tag, digest).
    type Valid = (String, &'static str, String, Option<String>, Option<String>);

    // A table of cases, one per line.
    #[allow(clippy::too_many_lines)]
    fn valid() -> Vec<Valid> {
        let t128 = format!("a{}", "b".repeat(127));
        let d = |s: &str| Some(s.to_owned());
        let mut v = vec![
            (
                "busybox".into(),
                "docker.io",
                "library/busybox".into(),
                d("latest"),
                None,
            ),
            (
                "docker.io/busybox:1".into(),
                "docker.io",
                "library/busybox".into(),
                d("1"),
                None,
            ),
            (
                "index.docker.io/x/y".into(),
                "docker.io",
                "x/y".into(),
                d("latest"),
                None,
            ),
            (
                "test.com:tag".into(),
                "docker.io",
                "library/test.com".into(),
                d("tag"),
                None,
            ),
            (
                "test.com:5000".into(),
                "docker.io",
                "library/test.com".into(),
                d("5000"),
                None,
            ),
            (
                "test.com/repo:tag".into(),
                "test.com",
                "repo".into(),
                d("tag"),
                None,
            ),
            (
                "test:5000/repo".into(),
                "test:5000",
                "repo".into(),
                d("latest"),
                None,
            ),
            (
                "localhost/app".into(),
                "localhost",
                "app".into(),
                d("latest"),
                None,
            ),
            (
                "localhost:5000/a/b/c:v1.2".into(),
                "localhost:5000",
                "a/b/c".into(),
                d("v1.2"),
                None,
            ),
            (
                "127.0.0.1:5000/team/app:1".into(),
                "127.0.0.1:5000",
                "team/app".into(),
                d("1"),
                None,
            ),
            (
                "Registry.Example.COM/app".into(),
                "Registry.Example.COM",
                "app".into(),
                d("latest"),
                None,
            ),
            (
                "a-b.example/x".into(),
                "a-b.example",
                "x".into(),
                d("latest"),
                None,
            ),
            (
                "xn--n3h.com/myimage:xn--n3h.com".into(),
                "xn--n3h.com",
                "myimage".into(),
                d("xn--n3h.com"),
                None,
            ),
            (
                "r.io/a.b_c__d---e/f:T_a.g-".into(),
                "r.io",
                "a.b_c__d---e/f".into(),
                d("T_a.g-"),
                None,
            ),
            ("r.io/app:_x".into(), "r.io", "app".into(), d("_x"), None),
            (
                format!("r.io/app:{t128}"),
                "r.io",
                "app".into(),
                Some(t128.clone()),
                None,
            ),
            (
                format!("r.io:443/app@sha256:{H64}"),
                "r.io:443",
                "app".into(),
                None,
                Some(format!("sha256:{H64}")),
            ),
            (
                format!("r.io/app:1@sha256:{H64}"),
                "r.io",
                "app".into(),
                d("1"),
                Some(format!("sha256:{H64}")),
            ),
            (
                format!("r.io/app@sha512:{H64}{H64}"),
                "r.io",
                "app".into(),
                None,
                Some(format!("sha512:{H64}{H64}")),
            ),
            (
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app:10.20".into(),
                "123456789012.dkr.ecr.us-east-1.amazonaws.com",
                "team/app".into(),
                d("10.20"),
                None,
            ),
        ];
        // The longest name: 255 characters, domain included.
        let long = format!("r.io/{}", "a".repeat(NAME_TOTAL_LENGTH_MAX - 5));
        v.push((
            long.clone(),
            "r.io",
            long[5..].to_owned(),
            d("latest"),
            None,
        ));
        v
    }

    /// Invalid references, each as the grammar (and the regular expression) rejects them.
    fn invalid() -> Vec<String> {
        let mut v: Vec<String> = [
            "",
            ":justtag",
            "@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "repo@sha256:ffffffffffffffffffffffffffffffffff",
            "validname@invaliddigest:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "Uppercase:tag",
            "test:5000/Uppercase/lowercase:tag",
            "127.0.0.1:5000/App:1",
            "aa/asdf$$^/aa",
            "r.io/app:bad tag",
            "r.io/app:.dot",
            "r.io/app:-dash",
            "r.io/app:",
            "r.io/app@",
            "r.io/",
            "r.io//app",
            "r.io/app/",
            "r.io/.app",
            "r.io/app.",
            "r.io/a..b",
            "r.io/a___b",
            "r.io/a._b",
            "r.io/a-",
            "r.io:/app",
            "r.io:50a0/app",
            "-r.io/app",
            "r-.io/app",
            "r..io/app",
            "r.io/app@sha256:abc",
            "r.io/app@md5:0123456789abcdef0123456789abcdef",
            "r.io/app:1:2",
            "a:b:c/d",
            "r.io/app@sha256:g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "r.io/ap p",
            "[::1]:5000/app",
            "[::1]/app:1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.push(format!("r.io/app:a{}", "b".repeat(TAG_MAX)));
        v.push(format!("r.io/{}", "a".repeat(NAME_TOTAL_LENGTH_MAX)));
        v
    }

    #[test]
    fn grammar_table_valid() {
        for (input, registry, repository, tag, digest) in valid() {
            let r = parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.registry(), registry, "{input}");
            assert_eq!(r.repository(), repository, "{input}");
            assert_eq!(r.tag().map(str::to_owned), tag, "{input}");
            assert_eq!(r.digest().map(str::to_owned), digest, "{input}");
        }
    }

    #[test]
    fn grammar_table_invalid() {
        for input in invalid() {
            assert!(parse(&input).is_err(), "{input} should be rejected");
        }
    }

    /// The same tables through oci-client's regular-expression parser (the grammar as a
    /// regex): it agrees on every entry, except where that parser is laxer than the grammar
    /// (the total name length counts the domain; digests must be lowercase hex).
    #[test]
    fn agrees_with_the_regular_expression() {
        for (input, ..) in valid() {
            let ours = parse(&input).unwrap();
            let theirs = Reference::try_from(input.as_str()).unwrap();
            assert_eq!(ours, theirs, "{input}");
        }
        let laxer = [format!("r.io/{}", "a".repeat(NAME_TOTAL_LENGTH_MAX))];
        for input in invalid() {
            if laxer.contains(&input) {
                continue;
            }
            assert!(
                Reference::try_from(input.as_str()).is_err(),
                "the regex accepts {input}"
            );
        }
        // Where the regex is laxer, the grammar (and the registry) says no.
        for input in [
            format!("r.io/app@sha256:{}", H64.to_uppercase()),
            "foo_bar.com/app".into(),
            "r.io/app:caf\u{e9}".into(),
        ] {
            assert!(parse(&input).is_err(), "{input}");
        }
    }

    #[test]
    fn rejections_say_why() {
        for (input, why) in [
            ("127.0.0.1:5000/App:1", "must be lowercase"),
            ("r.io/app:bad tag", "the tag \"bad tag\""),
            ("r.io/app@sha256:abc", "64 lowercase hex"),
            ("r.io/app@md5:00", "unsupported algorithm"),
            ("[::1]:5000/app", "IPv6"),
            ("r_x.io/app", "not a host name"),
            ("r.io/a..b", "not a path component"),
        ] {
            let e = parse_qualified(input).unwrap_err();
            assert!(e.contains("not a valid image reference"), "{input}: {e}");
            assert!(e.contains(why), "{input}: {e}");
        }
    }

    #[test]
    fn parsing_is_cheap() {
        // The regex-based parser took ~30 ms on its first call; this one must not be noticed.
        let t = std::time::Instant::now();
        for i in 0..1000 {
            parse_qualified(&format!("127.0.0.1:5000/team/app:v{i}")).unwrap();
        }
        assert!(
            t.elapsed() < std::time::Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
    }
}

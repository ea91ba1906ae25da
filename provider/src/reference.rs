//! Image references as users write them, checked for what this provider needs.

use oci_client::Reference;

/// Parses a reference that must name its registry host explicitly: without one, Docker
/// tools silently mean Docker Hub, which is never what an ECR user wants.
pub fn parse_qualified(s: &str) -> Result<Reference, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty image reference".into());
    }
    let first = s.split('/').next().unwrap_or_default();
    let has_host =
        s.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if !has_host {
        return Err(format!(
            "{s:?} does not name a registry host; write it in full, e.g. \
             123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1.0"
        ));
    }
    parse(s).map_err(|e| format!("{s:?} is not a valid image reference: {e}"))
}

/// The grammar of distribution's reference regular expression (which oci-client compiles
/// on first use: ~30 ms in a release build, most of a cold Check), checked by hand:
/// `host[:port]/component(/component)*[:tag][@algorithm:hex]`, the host given explicitly.
fn parse(s: &str) -> Result<Reference, &'static str> {
    let (rest, digest) = match s.split_once('@') {
        Some((rest, d)) => (rest, Some(d)),
        None => (s, None),
    };
    let (name, tag) = match rest.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
        _ => (rest, None),
    };
    let (host, path) = name.split_once('/').ok_or("no repository")?;
    if !is_host(host) {
        return Err("invalid registry host");
    }
    if path.len() > 255 {
        return Err("repository name must not be more than 255 characters");
    }
    if !path.split('/').all(is_component) {
        return Err("invalid repository name (lowercase letters, digits and separators)");
    }
    if let Some(t) = tag {
        if !is_tag(t) {
            return Err("invalid tag");
        }
    }
    let host = match host {
        "index.docker.io" => "docker.io",
        h => h,
    };
    let path = if host == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_owned()
    };
    Ok(match (tag, digest) {
        (tag, Some(d)) => {
            check_digest(d)?;
            match tag {
                Some(t) => Reference::with_tag_and_digest(host.into(), path, t.into(), d.into()),
                None => Reference::with_digest(host.into(), path, d.into()),
            }
        }
        (tag, None) => Reference::with_tag(host.into(), path, tag.unwrap_or("latest").into()),
    })
}

/// `label(.label)*[:port]`, labels of letters, digits and inner hyphens.
fn is_host(h: &str) -> bool {
    let (name, port) = match h.split_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (h, None),
    };
    let label = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    name.split('.').all(label)
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or any number of `-`.
fn is_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[\w][\w.-]{0,127}`.
fn is_tag(t: &str) -> bool {
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// `algorithm:hex`, with the length the algorithm implies.
fn check_digest(d: &str) -> Result<(), &'static str> {
    let (alg, hex) = d.split_once(':').ok_or("invalid digest")?;
    let alg_ok = !alg.is_empty()
        && alg.split(['-', '_', '+', '.']).all(|part| {
            part.as_bytes()
                .first()
                .is_some_and(|b| b.is_ascii_alphabetic())
                && part.bytes().all(|b| b.is_ascii_alphanumeric())
        });
    if !alg_ok || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("invalid digest");
    }
    let want = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err("unsupported digest algorithm"),
    };
    if hex.len() != want {
        return Err("invalid digest length");
    }
    Ok(())
}

/// A tag to push to: a qualified reference without a digest.
pub fn parse_tag(s: &str) -> Result<Reference, String> {
    let r = parse_qualified(s)?;
    if r.digest().is_some() {
        return Err(format!("{s:?} has a digest; a tag to push must not"));
    }
    Ok(r)
}

/// The repository part: `registry/repository`.
pub fn repository_of(r: &Reference) -> String {
    format!("{}/{}", r.registry(), r.repository())
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// The hand-written grammar accepts exactly what oci-client's regular expression does
    /// (for references with an explicit host), and parses them the same way.
    #[test]
    fn same_answers_as_oci_client() {
        let hex = "0123456789abcdef".repeat(4);
        let mut cases: Vec<String> = vec![
            "127.0.0.1:5000/app:1".into(),
            "localhost/app".into(),
            "localhost:5000/a/b/c:v1.2-rc_3".into(),
            "docker.io/app:1".into(),
            "index.docker.io/app".into(),
            "docker.io/team/app".into(),
            "ghcr.io/o/a__b.c-d---e:x".into(),
            format!("r.example/app@sha256:{hex}"),
            format!("r.example/app:t@sha256:{hex}"),
            format!("r.example/app@sha256:{}", &hex[1..]),
            format!("r.example/app@md5:{hex}"),
            format!("r.example/app@sha512:{hex}{hex}"),
            "r.example/app@sha256".into(),
            "R.Example/app:1".into(),
            "r.example/App:1".into(),
            "r.example/app:bad tag".into(),
            "r.example/app:.x".into(),
            "r.example/app:-x".into(),
            "r.example/app:_x".into(),
            format!("r.example/app:{}", "x".repeat(128)),
            format!("r.example/app:{}", "x".repeat(129)),
            "r.example/a_-b".into(),
            "r.example/a._b".into(),
            "r.example/a___b".into(),
            "r.example/-a".into(),
            "r.example/a-".into(),
            "r.example//a".into(),
            "r.example/a/".into(),
            "-r.example/a".into(),
            "r-.example/a".into(),
            "r..example/a".into(),
            "r.example:/a".into(),
            "r.example:5x/a".into(),
            "r.example/a:1:2".into(),
            "r.example/a@".into(),
            "r.example/".into(),
            format!("r.example/{}", "a".repeat(256)),
            format!("r.example/{}", "a".repeat(255)),
        ];
        for c in cases.clone() {
            cases.push(c.replace("r.example", "r.example:443"));
        }
        for c in &cases {
            let ours = parse(c);
            let theirs = Reference::try_from(c.as_str());
            match (&ours, &theirs) {
                (Ok(a), Ok(b)) => assert_eq!(
                    (a.registry(), a.repository(), a.tag(), a.digest()),
                    (b.registry(), b.repository(), b.tag(), b.digest()),
                    "{c}"
                ),
                (Err(_), Err(_)) => {}
                _ => panic!("{c}: ours {ours:?}, oci-client {theirs:?}"),
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_oci_client_on_generated_references(
            s in "[a-zA-Z0-9.-]{1,12}(:[0-9a-z]{0,5})?/[a-z0-9._/-]{0,20}(:[A-Za-z0-9_.-]{0,6})?"
        ) {
            let ours = parse(&s);
            let theirs = Reference::try_from(s.as_str());
            // Only references naming a host explicitly matter (parse_qualified demands one).
            let first = s.split('/').next().unwrap_or_default();
            if first.contains('.') || first.contains(':') || first == "localhost" {
                match (&ours, &theirs) {
                    (Ok(a), Ok(b)) => proptest::prop_assert_eq!(
                        (a.registry(), a.repository(), a.tag(), a.digest()),
                        (b.registry(), b.repository(), b.tag(), b.digest())
                    ),
                    (Err(_), Err(_)) => {}
                    _ => proptest::prop_assert!(false, "{}: ours {:?}, oci-client {:?}", s, ours, theirs),
                }
            }
        }
    }

    #[test]
    fn first_parse_is_cheap() {
        let t = std::time::Instant::now();
        parse_qualified("127.0.0.1:5000/app:1").unwrap();
        // The regular expression took ~30 ms (release) to ~800 ms (debug) to compile.
        assert!(
            t.elapsed() < std::time::Duration::from_millis(5),
            "{:?}",
            t.elapsed()
        );
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
}

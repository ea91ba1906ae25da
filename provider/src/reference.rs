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
    Reference::try_from(s).map_err(|e| format!("{s:?} is not a valid image reference: {e}"))
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

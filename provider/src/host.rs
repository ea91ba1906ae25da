//! Registry host names as users and configs write them (`https://GHCR.io/`, `index.docker.io`),
//! normalised so that two spellings of one host compare equal.

/// The host (and port) of a registry address, lower-cased, Docker Hub's aliases folded.
pub fn normalize_host(address: &str) -> String {
    let a = address
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let a = a.split('/').next().unwrap_or(a);
    match a {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        other => other.to_ascii_lowercase(),
    }
}

/// True when two registry addresses name the same host.
pub fn same_host(a: &str, b: &str) -> bool {
    normalize_host(a) == normalize_host(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_host_compare_equal() {
        assert!(same_host("https://GHCR.io/", "ghcr.io"));
        assert!(same_host("https://index.docker.io/v1/", "docker.io"));
        assert!(!same_host("127.0.0.1:5000", "127.0.0.1:5001"));
    }
}

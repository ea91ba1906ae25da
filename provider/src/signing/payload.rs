//! cosign's "simple signing" payload: the claim that a manifest digest is the image named by
//! a repository. `cosign verify` checks the digest against the manifest it verifies.

use serde_json::json;

/// The payload's `critical.type`.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";

/// The payload for `digest` (`sha256:<hex>`) in `repository` (`host/path`, no tag), in the
/// bytes cosign writes (keys sorted, `optional` null): the bytes are what is signed.
pub fn payload(repository: &str, digest: &str) -> Vec<u8> {
    let v = json!({
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": null,
    });
    serde_json::to_vec(&v).expect("a JSON value always serialises")
}

/// The digest a payload claims, when it is a simple-signing payload.
pub fn claimed_digest(payload: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    if v["critical"]["type"] != SIGNATURE_TYPE {
        return None;
    }
    v["critical"]["image"]["docker-manifest-digest"]
        .as_str()
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_names_the_digest_as_cosign_writes_it() {
        let p = payload("127.0.0.1:5000/app", "sha256:ab");
        assert_eq!(
            std::str::from_utf8(&p).unwrap(),
            r#"{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/app"},"image":{"docker-manifest-digest":"sha256:ab"},"type":"cosign container image signature"},"optional":null}"#
        );
        assert_eq!(claimed_digest(&p).as_deref(), Some("sha256:ab"));
        assert_eq!(claimed_digest(b"{}"), None);
    }
}

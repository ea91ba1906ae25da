//! Docker contexts, as the docker CLI stores them: the current one from `DOCKER_CONTEXT`
//! or `currentContext` in `config.json`; its Engine endpoint from
//! `contexts/meta/<sha256(name)>/meta.json`, its TLS material (if any) from
//! `contexts/tls/<sha256(name)>/docker/{ca,cert,key}.pem`.

use std::path::{Path, PathBuf};

use sha2::Digest as _;

use super::host::DockerHost;
use super::{read_tls_dir, Engine, Env, HostError};

/// The name of the context the docker CLI would use, and the setting that names it;
/// `None` for the default context (the Engine at `DOCKER_HOST` or the default socket).
pub(crate) fn current(env: &Env, config_dir: &Path) -> Result<Option<(String, String)>, HostError> {
    if let Some(name) = env.get("DOCKER_CONTEXT") {
        return Ok(Some((name, "DOCKER_CONTEXT".to_owned())).filter(|(n, _)| n != "default"));
    }
    let path = config_dir.join("config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(HostError::new(path.display().to_string(), e.to_string())),
    };
    #[derive(serde::Deserialize)]
    struct Config {
        #[serde(default, rename = "currentContext")]
        current_context: String,
    }
    let config: Config = serde_json::from_str(&text).map_err(|e| {
        HostError::new(
            path.display().to_string(),
            format!("not a Docker config: {e}"),
        )
    })?;
    let name = config.current_context.trim().to_owned();
    if name.is_empty() || name == "default" {
        return Ok(None);
    }
    Ok(Some((
        name,
        format!("currentContext in {}", path.display()),
    )))
}

/// The contexts store's directory name for a context.
fn id(name: &str) -> String {
    hex::encode(sha2::Sha256::digest(name.as_bytes()))
}

/// The Engine endpoint of context `name` (named by `via`).
pub(crate) fn load(config_dir: &Path, name: &str, via: &str) -> Result<Engine, HostError> {
    let setting = format!("Docker context {name:?} ({via})");
    let bad = |reason: String| HostError::new(setting.clone(), reason);
    let id = id(name);
    let meta_path = config_dir
        .join("contexts")
        .join("meta")
        .join(&id)
        .join("meta.json");
    let text = match std::fs::read_to_string(&meta_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(bad(format!(
                "no such context ({} is absent; `docker context ls` lists them)",
                meta_path.display()
            )))
        }
        Err(e) => return Err(bad(format!("{}: {e}", meta_path.display()))),
    };
    #[derive(serde::Deserialize)]
    struct Meta {
        #[serde(rename = "Endpoints", default)]
        endpoints: std::collections::HashMap<String, Endpoint>,
    }
    #[derive(serde::Deserialize)]
    struct Endpoint {
        #[serde(rename = "Host", default)]
        host: String,
        #[serde(rename = "SkipTLSVerify", default)]
        skip_tls_verify: bool,
    }
    let meta: Meta = serde_json::from_str(&text)
        .map_err(|e| bad(format!("{}: not a context: {e}", meta_path.display())))?;
    let ep = meta
        .endpoints
        .get("docker")
        .ok_or_else(|| bad(format!("{} has no docker endpoint", meta_path.display())))?;
    let tls_dir = tls_dir(config_dir, &id);
    let has_tls = ["ca.pem", "cert.pem", "key.pem"]
        .iter()
        .any(|f| tls_dir.join(f).exists());
    let mut host =
        DockerHost::parse(&ep.host, has_tls).map_err(|e| bad(format!("{:?}: {e}", ep.host)))?;
    if let DockerHost::Tcp { tls, .. } = &mut host {
        if ep.skip_tls_verify {
            return Err(bad(
                "SkipTLSVerify is set: TLS that does not verify the Engine's certificate is not \
                 supported; store the Engine's CA in the context (docker context update \
                 --docker \"host=…,ca=…,cert=…,key=…\")"
                    .into(),
            ));
        }
        if has_tls {
            *tls = Some(read_tls_dir(&tls_dir, &setting)?);
        }
    }
    Ok(Engine {
        host,
        source: setting,
    })
}

fn tls_dir(config_dir: &Path, id: &str) -> PathBuf {
    config_dir
        .join("contexts")
        .join("tls")
        .join(id)
        .join("docker")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes a context as `docker context create` does.
    pub(crate) fn write_context(
        dir: &Path,
        name: &str,
        host: &str,
        tls: Option<(&str, &str, &str)>,
    ) {
        let id = id(name);
        let meta = dir.join("contexts/meta").join(&id);
        std::fs::create_dir_all(&meta).unwrap();
        let body = serde_json::json!({
            "Name": name,
            "Metadata": {},
            "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": false}},
        });
        std::fs::write(meta.join("meta.json"), body.to_string()).unwrap();
        if let Some((ca, cert, key)) = tls {
            let t = tls_dir(dir, &id);
            std::fs::create_dir_all(&t).unwrap();
            std::fs::write(t.join("ca.pem"), ca).unwrap();
            std::fs::write(t.join("cert.pem"), cert).unwrap();
            std::fs::write(t.join("key.pem"), key).unwrap();
        }
    }

    #[test]
    fn the_store_is_keyed_by_the_names_sha256() {
        // The directory `docker context create remote` makes under contexts/meta.
        assert_eq!(
            id("remote"),
            "b71199ebd070b36beab7317920c2c2f1d777df8d05e5527d8458fda57cb17a7a"
        );
    }

    #[test]
    fn a_context_gives_its_endpoint_and_tls() {
        let dir = tempfile::tempdir().unwrap();
        write_context(dir.path(), "plain", "tcp://10.0.0.2:2375", None);
        let e = load(dir.path(), "plain", "DOCKER_CONTEXT").unwrap();
        assert_eq!(e.host.to_string(), "tcp://10.0.0.2:2375");
        assert_eq!(e.source, "Docker context \"plain\" (DOCKER_CONTEXT)");
        write_context(
            dir.path(),
            "tls",
            "tcp://10.0.0.3",
            Some(("CA", "CERT", "KEY")),
        );
        let e = load(dir.path(), "tls", "DOCKER_CONTEXT").unwrap();
        match e.host {
            DockerHost::Tcp {
                address,
                tls: Some(t),
            } => {
                assert_eq!(address, "10.0.0.3:2376", "the TLS port by default");
                assert_eq!(t.ca_cert.as_deref(), Some("CA"));
                assert_eq!(t.cert.as_deref(), Some("CERT"));
                assert_eq!(t.key.unwrap().expose(), "KEY");
            }
            other => panic!("{other:?}"),
        }
        write_context(dir.path(), "ssh", "ssh://me@box", None);
        assert!(matches!(
            load(dir.path(), "ssh", "x").unwrap().host,
            DockerHost::Ssh { .. }
        ));
        let e = load(dir.path(), "nope", "DOCKER_CONTEXT")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("Docker context \"nope\" (DOCKER_CONTEXT): no such context"),
            "{e}"
        );
        write_context(dir.path(), "bad", "http://x", None);
        let e = load(dir.path(), "bad", "y").unwrap_err().to_string();
        assert!(e.contains("unknown scheme"), "{e}");
    }

    #[test]
    fn the_current_context_comes_from_the_env_then_config_json() {
        let dir = tempfile::tempdir().unwrap();
        let none = Env::from_pairs(&[]);
        assert_eq!(current(&none, dir.path()).unwrap(), None, "no config.json");
        std::fs::write(dir.path().join("config.json"), r#"{"currentContext":"ci"}"#).unwrap();
        let (name, via) = current(&none, dir.path()).unwrap().unwrap();
        assert_eq!(name, "ci");
        assert!(via.starts_with("currentContext in "), "{via}");
        let env = Env::from_pairs(&[("DOCKER_CONTEXT", "other")]);
        assert_eq!(
            current(&env, dir.path()).unwrap(),
            Some(("other".into(), "DOCKER_CONTEXT".into()))
        );
        let env = Env::from_pairs(&[("DOCKER_CONTEXT", "default")]);
        assert_eq!(current(&env, dir.path()).unwrap(), None);
        std::fs::write(dir.path().join("config.json"), "{not json").unwrap();
        let e = current(&none, dir.path()).unwrap_err().to_string();
        assert!(e.contains("config.json: not a Docker config"), "{e}");
    }
}

//! Finding the Docker Engine the way the docker CLI does: `DOCKER_HOST` (with
//! `DOCKER_TLS_VERIFY` / `DOCKER_CERT_PATH`), else the current Docker context
//! (`DOCKER_CONTEXT`, else `currentContext` in `$DOCKER_CONFIG/config.json`), else
//! `unix:///var/run/docker.sock`. Every answer carries the setting it came from, so an
//! error can name it.

mod context;
mod host;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub(crate) use host::DockerHost;

use crate::config::SecretString;
use crate::tls::TlsSettings;

/// The Engine's default socket.
pub(crate) const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// A Docker Engine and the setting that chose it.
#[derive(Debug, Clone, PartialEq)]
pub struct Engine {
    pub(crate) host: DockerHost,
    /// e.g. `DOCKER_HOST`, `Docker context "ci" (DOCKER_CONTEXT)`, `builder`; empty for the
    /// default socket.
    pub(crate) source: String,
}

impl Engine {
    /// The Engine on a unix socket, chosen by `source`.
    pub fn unix(socket: impl Into<PathBuf>, source: &str) -> Self {
        Engine {
            host: DockerHost::Unix(socket.into()),
            source: source.to_owned(),
        }
    }

    /// Its socket when it is a local one.
    pub fn socket(&self) -> Option<&Path> {
        match &self.host {
            DockerHost::Unix(p) => Some(p),
            _ => None,
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.host)?;
        if !self.source.is_empty() {
            write!(f, " from {}", self.source)?;
        }
        Ok(())
    }
}

/// A setting that names no usable Engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {reason}")]
pub(crate) struct HostError {
    /// The environment variable, file or context the address came from.
    pub(crate) setting: String,
    pub(crate) reason: String,
}

impl HostError {
    pub(crate) fn new(setting: impl Into<String>, reason: impl Into<String>) -> Self {
        HostError {
            setting: setting.into(),
            reason: reason.into(),
        }
    }
}

/// The environment variables resolution reads (the process's, or given in tests).
pub(crate) struct Env(HashMap<String, String>);

impl Env {
    const NAMES: [&'static str; 7] = [
        "DOCKER_HOST",
        "DOCKER_TLS_VERIFY",
        "DOCKER_TLS",
        "DOCKER_CERT_PATH",
        "DOCKER_CONTEXT",
        "DOCKER_CONFIG",
        "HOME",
    ];

    fn process() -> Self {
        Env(Self::NAMES
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect())
    }

    #[cfg(test)]
    pub(crate) fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Env(pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    /// The variable's value; unset and empty are the same (as for the docker CLI).
    pub(crate) fn get(&self, k: &str) -> Option<String> {
        self.0
            .get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }
}

/// Docker's configuration directory: `DOCKER_CONFIG`, else `~/.docker`.
fn config_dir(env: &Env) -> PathBuf {
    match env.get("DOCKER_CONFIG") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env.get("HOME").unwrap_or_else(|| "/root".into())).join(".docker"),
    }
}

/// The Engine the docker CLI would talk to in this process's environment.
pub(crate) fn from_env() -> Result<Engine, HostError> {
    resolve(&Env::process())
}

pub(crate) fn resolve(env: &Env) -> Result<Engine, HostError> {
    if let Some(value) = env.get("DOCKER_HOST") {
        let tls = env_tls(env)?;
        let bad = |e: String| HostError::new("DOCKER_HOST", format!("{value:?}: {e}"));
        let mut host = DockerHost::parse(&value, tls.is_some()).map_err(bad)?;
        if let DockerHost::Tcp { tls: t, .. } = &mut host {
            *t = tls;
        }
        return Ok(Engine {
            host,
            source: "DOCKER_HOST".into(),
        });
    }
    let dir = config_dir(env);
    if let Some((name, via)) = context::current(env, &dir)? {
        return context::load(&dir, &name, &via);
    }
    Ok(Engine::unix(DEFAULT_SOCKET, ""))
}

/// TLS for a `DOCKER_HOST=tcp://…`, as the docker CLI reads it: on with `DOCKER_TLS_VERIFY`
/// (any value), the files from `DOCKER_CERT_PATH` (default `~/.docker`).
fn env_tls(env: &Env) -> Result<Option<TlsSettings>, HostError> {
    let verify = env.get("DOCKER_TLS_VERIFY").is_some();
    if !verify {
        if env.get("DOCKER_TLS").is_some() {
            return Err(HostError::new(
                "DOCKER_TLS",
                "TLS that does not verify the Engine's certificate is not supported; set \
                 DOCKER_TLS_VERIFY=1 and put the CA that signed the Engine's certificate in \
                 $DOCKER_CERT_PATH/ca.pem",
            ));
        }
        return Ok(None);
    }
    let (dir, setting) = match env.get("DOCKER_CERT_PATH") {
        Some(d) => (PathBuf::from(&d), format!("DOCKER_CERT_PATH={d}")),
        None => {
            let d = config_dir(env);
            let s = format!("DOCKER_TLS_VERIFY (certificates in {})", d.display());
            (d, s)
        }
    };
    read_tls_dir(&dir, &setting).map(Some)
}

/// `ca.pem`, `cert.pem`, `key.pem` of a directory, as the docker CLI takes them: a missing
/// `ca.pem` means the system's roots, a missing `cert.pem`/`key.pem` pair no client
/// certificate; one of the pair without the other is an error.
pub(crate) fn read_tls_dir(dir: &Path, setting: &str) -> Result<TlsSettings, HostError> {
    let read = |name: &str| -> Result<Option<String>, HostError> {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(HostError::new(setting, format!("{}: {e}", path.display()))),
        }
    };
    let ca_cert = read("ca.pem")?;
    let cert = read("cert.pem")?;
    let key = read("key.pem")?.map(SecretString::new);
    match (&cert, &key) {
        (Some(_), None) => Err(HostError::new(
            setting,
            format!("{} has cert.pem but no key.pem", dir.display()),
        )),
        (None, Some(_)) => Err(HostError::new(
            setting,
            format!("{} has key.pem but no cert.pem", dir.display()),
        )),
        _ => Ok(TlsSettings {
            ca_cert,
            cert,
            key,
            server_name: None,
        }),
    }
}

/// The file a TLS settings field stands for when the TLS came from a directory.
pub(crate) fn tls_file_of(field: Option<&str>) -> &'static str {
    match field {
        Some("caCert") => "ca.pem",
        Some("cert") => "cert.pem",
        Some("key") => "key.pem",
        _ => "TLS settings",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_host_wins_over_contexts() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        context::tests::write_context(dir.path(), "ci", "tcp://10.9.9.9:2375", None);
        let env = Env::from_pairs(&[
            ("DOCKER_HOST", "tcp://10.0.0.1:2375"),
            ("DOCKER_CONTEXT", "ci"),
            ("DOCKER_CONFIG", d),
        ]);
        let e = resolve(&env).unwrap();
        assert_eq!(e.to_string(), "tcp://10.0.0.1:2375 from DOCKER_HOST");
        let env = Env::from_pairs(&[("DOCKER_CONTEXT", "ci"), ("DOCKER_CONFIG", d)]);
        assert_eq!(
            resolve(&env).unwrap().to_string(),
            "tcp://10.9.9.9:2375 from Docker context \"ci\" (DOCKER_CONTEXT)"
        );
        let env = Env::from_pairs(&[("DOCKER_CONFIG", d), ("DOCKER_HOST", " ")]);
        assert_eq!(
            resolve(&env).unwrap(),
            Engine::unix(DEFAULT_SOCKET, ""),
            "empty is unset; no current context: the default socket"
        );
    }

    #[test]
    fn tls_from_the_cert_path_as_the_docker_cli_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "CA").unwrap();
        let env = Env::from_pairs(&[
            ("DOCKER_HOST", "tcp://h"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", d),
        ]);
        match resolve(&env).unwrap().host {
            DockerHost::Tcp {
                address,
                tls: Some(t),
            } => {
                assert_eq!(address, "h:2376");
                assert_eq!(t.ca_cert.as_deref(), Some("CA"));
                assert!(t.cert.is_none() && t.key.is_none(), "no client certificate");
            }
            other => panic!("{other:?}"),
        }
        std::fs::write(dir.path().join("cert.pem"), "C").unwrap();
        let e = resolve(&env).unwrap_err();
        assert_eq!(e.setting, format!("DOCKER_CERT_PATH={d}"));
        assert!(e.reason.contains("no key.pem"), "{e}");
        std::fs::write(dir.path().join("key.pem"), "K").unwrap();
        assert!(resolve(&env).is_ok());
        // Without DOCKER_TLS_VERIFY the cert path is not read: plain TCP, as the CLI does.
        let env = Env::from_pairs(&[("DOCKER_HOST", "tcp://h"), ("DOCKER_CERT_PATH", d)]);
        assert!(matches!(
            resolve(&env).unwrap().host,
            DockerHost::Tcp { tls: None, .. }
        ));
        let env = Env::from_pairs(&[("DOCKER_HOST", "tcp://h"), ("DOCKER_TLS", "1")]);
        let e = resolve(&env).unwrap_err();
        assert!(e.to_string().starts_with("DOCKER_TLS: "), "{e}");
        assert!(e.reason.contains("DOCKER_TLS_VERIFY=1"), "{e}");
        // The default cert directory is Docker's config directory.
        let env = Env::from_pairs(&[
            ("DOCKER_HOST", "tcp://h:1"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("HOME", "/nowhere"),
        ]);
        let e = resolve(&env).unwrap();
        assert!(matches!(e.host, DockerHost::Tcp { tls: Some(_), .. }));
    }

    #[test]
    fn a_bad_docker_host_names_the_variable_and_value() {
        let env = Env::from_pairs(&[("DOCKER_HOST", "ftp://x")]);
        let e = resolve(&env).unwrap_err().to_string();
        assert!(
            e.starts_with("DOCKER_HOST: \"ftp://x\": unknown scheme"),
            "{e}"
        );
    }

    #[test]
    fn tls_properties_map_to_their_files() {
        assert_eq!(tls_file_of(Some("caCert")), "ca.pem");
        assert_eq!(tls_file_of(Some("key")), "key.pem");
    }
}

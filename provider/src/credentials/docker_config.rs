//! Docker's client configuration (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`), read at each look-up as the docker CLI reads it: `credHelpers`
//! per host, `credsStore` for every host, `auths` written by `docker login`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;

use super::helper::Helpers;
use super::{Credential, CredentialError, Source};
use crate::host::same_host;
use crate::secret::SecretString;

/// The parts of `config.json` that hold credentials.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigJson {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<SecretString>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<SecretString>,
    #[serde(default)]
    identitytoken: Option<SecretString>,
}

/// Docker's config file and the helpers it names.
pub struct DockerConfigFile {
    path: PathBuf,
    helpers: Helpers,
}

/// The address the docker CLI gives a helper (and keys `auths` with) for Docker Hub.
const DOCKER_HUB: &str = "https://index.docker.io/v1/";

impl DockerConfigFile {
    /// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
    pub fn from_env() -> Self {
        let dir = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
            .unwrap_or_else(|| PathBuf::from(".docker"));
        Self::at(dir.join("config.json"))
    }

    pub fn at(path: PathBuf) -> Self {
        Self::with_helpers(path, Helpers::default())
    }

    pub(super) fn with_helpers(path: PathBuf, helpers: Helpers) -> Self {
        DockerConfigFile { path, helpers }
    }

    fn shown(&self) -> String {
        self.path.display().to_string()
    }

    /// The file's credential settings; empty when there is no file.
    fn read(&self) -> Result<ConfigJson, CredentialError> {
        let bad = |reason: String| CredentialError::DockerConfig {
            path: self.shown(),
            reason,
        };
        let text = match std::fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigJson::default()),
            Err(e) => return Err(bad(format!("cannot be read: {e}"))),
        };
        // serde's message names the line and column, never the value.
        serde_json::from_slice(&text).map_err(|e| bad(format!("is not valid JSON: {e}")))
    }

    async fn helper_lookup(
        &self,
        helper: &str,
        origin: &'static str,
        host: &str,
    ) -> Result<Option<Credential>, CredentialError> {
        let server = if same_host(host, "docker.io") {
            DOCKER_HUB
        } else {
            host
        };
        self.helpers
            .get(helper, server)
            .await
            .map_err(|reason| CredentialError::Helper {
                helper: helper.to_owned(),
                origin,
                config: self.shown(),
                host: host.to_owned(),
                reason,
            })
    }

    fn auths_lookup(
        &self,
        config: &ConfigJson,
        host: &str,
    ) -> Result<Option<Credential>, CredentialError> {
        let Some((key, entry)) = config.auths.iter().find(|(k, _)| same_host(k, host)) else {
            return Ok(None);
        };
        let bad = |reason: String| CredentialError::DockerConfig {
            path: self.shown(),
            reason: format!("auths[\"{key}\"]: {reason}"),
        };
        if let Some(auth) = entry.auth.as_ref().filter(|a| !a.expose().is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.expose().trim())
                .map_err(|_| bad("`auth` is not base64".into()))?;
            let text = String::from_utf8(decoded).map_err(|_| bad("`auth` is not UTF-8".into()))?;
            let (user, password) = text
                .split_once(':')
                .ok_or_else(|| bad("`auth` is not base64 of user:password".into()))?;
            return Ok(Some(Credential {
                username: user.to_owned(),
                secret: SecretString::new(password),
            }));
        }
        if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
            return Ok(Some(Credential {
                username: u.clone(),
                secret: p.clone(),
            }));
        }
        if entry.identitytoken.is_some() {
            return Err(bad(
                "holds an identity token (OAuth refresh token), which multiarch does not use; \
                 log in with a user name and password or token, or add a `registries` entry"
                    .into(),
            ));
        }
        Ok(None)
    }
}

/// The helper `credHelpers` names for the host, if any.
pub struct HostHelper(Arc<DockerConfigFile>);

impl HostHelper {
    pub fn new(file: Arc<DockerConfigFile>) -> Self {
        HostHelper(file)
    }
}

#[async_trait]
impl Source for HostHelper {
    async fn lookup(&self, host: &str) -> Result<Option<Credential>, CredentialError> {
        let config = self.0.read()?;
        let helper = config
            .cred_helpers
            .iter()
            .find(|(k, _)| same_host(k, host))
            .map(|(_, v)| v.clone());
        match helper {
            Some(h) => self.0.helper_lookup(&h, "credHelpers", host).await,
            None => Ok(None),
        }
    }
}

/// `credsStore` (every host), then the credentials `docker login` wrote into `auths`.
pub struct StoreAndAuths(Arc<DockerConfigFile>);

impl StoreAndAuths {
    pub fn new(file: Arc<DockerConfigFile>) -> Self {
        StoreAndAuths(file)
    }
}

#[async_trait]
impl Source for StoreAndAuths {
    async fn lookup(&self, host: &str) -> Result<Option<Credential>, CredentialError> {
        let config = self.0.read()?;
        if let Some(store) = config.creds_store.as_deref().filter(|s| !s.is_empty()) {
            if let Some(c) = self.0.helper_lookup(store, "credsStore", host).await? {
                return Ok(Some(c));
            }
        }
        self.0.auths_lookup(&config, host)
    }
}

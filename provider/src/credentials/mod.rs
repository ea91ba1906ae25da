//! Registry credentials, looked up per registry host at operation time, in the order Docker
//! users expect:
//!
//! 1. the provider's own `registries` entry (static user name and password);
//! 2. a credential helper Docker's config names for that host (`credHelpers`): the user's
//!    explicit choice for the host;
//! 3. an ECR IAM token for ECR hosts (the AWS credential chain);
//! 4. Docker's config for every host: `credsStore`, then `auths` (`docker login`);
//! 5. anonymous.
//!
//! Each kind is a [`Source`] in its own file; the [`Credentials`] chain asks them in turn.
//! A source that fails does not stop the chain: a later one may still answer (an ECR host
//! whose IAM token cannot be fetched still works with `docker login`'s credentials), and
//! only when none answers is the first failure reported. Nothing is stored beyond a short
//! in-memory cache, and a secret never reaches a message.

mod docker_config;
mod ecr_iam;
mod helper;
mod static_entry;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::ProviderConfig;
use crate::ecr::{EcrError, EcrTokens};
use crate::secret::SecretString;

pub use docker_config::DockerConfigFile;
pub use ecr_iam::ecr_settings;

/// A user name and its password or token.
#[derive(Clone)]
pub struct Credential {
    pub username: String,
    pub secret: SecretString,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({}, ***)", self.username)
    }
}

/// Why a source could not say what the credentials for a host are.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error(transparent)]
    Ecr(#[from] Box<EcrError>),
    #[error("credential helper docker-credential-{helper} (from {origin} in {config}) for {host}: {reason}")]
    Helper {
        helper: String,
        origin: &'static str,
        config: String,
        host: String,
        reason: String,
    },
    #[error("Docker config {path}: {reason}")]
    DockerConfig { path: String, reason: String },
}

/// One place credentials may come from.
#[async_trait]
pub trait Source: Send + Sync {
    /// The credentials this source holds for `host`; None when it has none for it.
    async fn lookup(&self, host: &str) -> Result<Option<Credential>, CredentialError>;
}

/// The sources in the order they are asked. Cheap to clone.
#[derive(Clone)]
pub struct Credentials {
    sources: Arc<Vec<Box<dyn Source>>>,
}

impl Credentials {
    /// The chain for a provider configuration, reading Docker's config from the process
    /// environment (`DOCKER_CONFIG`, else `~/.docker`).
    pub fn new(config: &ProviderConfig, ecr: EcrTokens) -> Self {
        let docker = Arc::new(DockerConfigFile::from_env());
        Self::from_sources(vec![
            Box::new(static_entry::StaticEntries::new(config)),
            Box::new(docker_config::HostHelper::new(docker.clone())),
            Box::new(ecr_iam::EcrIam::new(config, ecr)),
            Box::new(docker_config::StoreAndAuths::new(docker)),
        ])
    }

    /// A chain of the given sources (tests wire fakes).
    pub fn from_sources(sources: Vec<Box<dyn Source>>) -> Self {
        Credentials {
            sources: Arc::new(sources),
        }
    }

    /// The first credentials a source holds for `host`; None for anonymous access. A failed
    /// source is reported only when no later source answers.
    pub async fn lookup(&self, host: &str) -> Result<Option<Credential>, CredentialError> {
        let mut first_failure = None;
        for source in self.sources.iter() {
            match source.lookup(host).await {
                Ok(Some(c)) => {
                    if let Some(e) = &first_failure {
                        tracing::debug!(%host, error = %e, "an earlier credential source failed; a later one answered");
                    }
                    return Ok(Some(c));
                }
                Ok(None) => {}
                Err(e) => {
                    first_failure.get_or_insert(e);
                }
            }
        }
        match first_failure {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests;

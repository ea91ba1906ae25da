//! ECR IAM tokens (`GetAuthorizationToken` through the AWS credential chain) for ECR hosts
//! and for entries that ask for them with an `ecr` block.

use async_trait::async_trait;

use super::{Credential, CredentialError, Source};
use crate::config::{EcrConfig, ProviderConfig, RegistryConfig};
use crate::ecr::{self, EcrTokens};
use crate::registry::same_host;

/// How `host` authenticates through the ECR API: `Some(settings)` when it does (the
/// entry's `ecr` block, or none for a host named like ECR's), None when it does not (an
/// entry with a user name keeps a look-alike host on static credentials).
pub fn ecr_settings(config: &ProviderConfig, host: &str) -> Option<Option<EcrConfig>> {
    let entry = config
        .registries
        .iter()
        .find(|r| same_host(&r.address, host));
    match entry {
        Some(RegistryConfig { ecr: Some(e), .. }) => Some(Some(e.clone())),
        Some(RegistryConfig {
            username: Some(_), ..
        }) => None,
        _ if ecr::parse_host(host).is_some() => Some(None),
        _ => None,
    }
}

pub struct EcrIam {
    config: ProviderConfig,
    tokens: EcrTokens,
}

impl EcrIam {
    pub fn new(config: &ProviderConfig, tokens: EcrTokens) -> Self {
        EcrIam {
            config: config.clone(),
            tokens,
        }
    }
}

#[async_trait]
impl Source for EcrIam {
    async fn lookup(&self, host: &str) -> Result<Option<Credential>, CredentialError> {
        let Some(settings) = ecr_settings(&self.config, host) else {
            return Ok(None);
        };
        let (username, secret) = self
            .tokens
            .credentials(host, settings.as_ref())
            .await
            .map_err(Box::new)?;
        Ok(Some(Credential { username, secret }))
    }
}

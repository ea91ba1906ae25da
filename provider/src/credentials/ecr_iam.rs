//! AWS tokens for ECR, ECR Public and entries that ask for them with an `ecr` or `aws`
//! block: `GetAuthorizationToken` with the identity the AWS settings name (see `crate::ecr`).

use async_trait::async_trait;

use super::{Credential, CredentialError, Source};
use crate::config::{ProviderConfig, RegistryConfig};
use crate::ecr::{self, EcrTokens};
use crate::host::same_host;

/// `Some(entry)` when `host` authenticates through AWS: an entry with `ecr` or `aws`, or an
/// ECR (or ECR Public) host name without static credentials. None when it does not (an
/// entry with a user name keeps a look-alike host on static credentials).
pub fn ecr_settings<'c>(
    config: &'c ProviderConfig,
    host: &str,
) -> Option<Option<&'c RegistryConfig>> {
    let entry = config
        .registries
        .iter()
        .find(|r| same_host(&r.address, host));
    match entry {
        Some(e @ RegistryConfig { ecr: Some(_), .. })
        | Some(e @ RegistryConfig { aws: Some(_), .. }) => Some(Some(e)),
        Some(RegistryConfig {
            username: Some(_), ..
        }) => None,
        e if ecr::is_aws_registry(host) => Some(e),
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
    /// None for a host outside AWS, and for ECR Public with no AWS credentials anywhere
    /// (pulls are anonymous there).
    async fn lookup(&self, host: &str) -> Result<Option<Credential>, CredentialError> {
        let Some(entry) = ecr_settings(&self.config, host) else {
            return Ok(None);
        };
        let found = self
            .tokens
            .credentials(host, entry)
            .await
            .map_err(Box::new)?;
        Ok(found.map(|(username, secret)| Credential { username, secret }))
    }
}

//! The provider's own `registries` entries with a user name and password.

use async_trait::async_trait;

use super::{Credential, CredentialError, Source};
use crate::config::ProviderConfig;
use crate::host::same_host;
use crate::secret::SecretString;

pub struct StaticEntries {
    entries: Vec<(String, String, SecretString)>,
}

impl StaticEntries {
    pub fn new(config: &ProviderConfig) -> Self {
        let entries = config
            .registries
            .iter()
            .filter_map(|r| match (&r.username, &r.password) {
                (Some(u), Some(p)) => Some((r.address.clone(), u.clone(), p.clone())),
                _ => None,
            })
            .collect();
        StaticEntries { entries }
    }
}

#[async_trait]
impl Source for StaticEntries {
    async fn lookup(&self, host: &str) -> Result<Option<Credential>, CredentialError> {
        Ok(self
            .entries
            .iter()
            .find(|(address, _, _)| same_host(address, host))
            .map(|(_, username, secret)| Credential {
                username: username.clone(),
                secret: secret.clone(),
            }))
    }
}

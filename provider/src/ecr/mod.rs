//! AWS registries: ECR IAM tokens from `GetAuthorizationToken` and ECR Public tokens from
//! `ecr-public:GetAuthorizationToken`, with the identity of the host's `aws` block (or the
//! provider's): the SDK's default chain, a profile, a role assumed through STS. Tokens and
//! credentials are fetched at operation time and kept only in memory. Tags are deleted
//! through `BatchDeleteImage`.
//!
//! - [`host`]: what a host name says (account, region, ECR Public).
//! - [`chain`]: identities (default chain, assumed roles), cached and single-flight.
//! - [`token`], [`public`]: the registry password of a private ECR host or of ECR Public.
//! - [`delete`]: tag removal.
//! - [`check`]: the `aws` blocks of the provider configuration, checked at Configure.
//! - [`docs`]: the user documentation of all this (generated registry docs).

mod chain;
pub mod check;
mod delete;
pub mod docs;
mod host;
mod kms;
mod public;
mod token;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::{Duration, SystemTime};

use tokio::sync::Mutex;

pub use chain::CredentialsError;
pub use host::{is_aws_registry, is_public, parse_host};

use crate::config::{AwsConfig, RegistryConfig, SecretString};

#[derive(Debug, thiserror::Error)]
pub enum EcrError {
    #[error("{api} GetAuthorizationToken for {host} (region {region}): {message}")]
    Token {
        api: &'static str,
        host: String,
        region: String,
        message: String,
    },
    #[error("ECR BatchDeleteImage {repository}:{tag} (region {region}): {message}")]
    Delete {
        repository: String,
        tag: String,
        region: String,
        message: String,
    },
    #[error("AWS credentials for {host}: {source}")]
    Credentials {
        host: String,
        source: CredentialsError,
    },
}

/// Deadlines for every AWS call (ECR, ECR Public, STS): one attempt, the connection, and
/// the whole call (retries by the SDK included). A stalled endpoint fails within
/// `CALL_DEADLINE`, with the operation and the host (or role) in the error.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const CALL_DEADLINE: Duration = Duration::from_secs(30);

/// How long a host of ECR Public is pulled from anonymously, for want of credentials,
/// before the chain is asked again.
const ANONYMOUS_USE: Duration = Duration::from_secs(15 * 60);

/// What a host authenticates with, until when.
#[derive(Clone)]
enum Auth {
    Basic(token::Token),
    /// ECR Public with no AWS credentials anywhere: anonymous pulls.
    Anonymous(SystemTime),
}

impl Auth {
    fn good(&self, now: SystemTime) -> bool {
        match self {
            Auth::Basic(t) => now < t.good_until,
            Auth::Anonymous(until) => now < *until,
        }
    }
}

/// The token of one registry host. Its async lock is held across the fetch, so concurrent
/// callers for the same host share one `GetAuthorizationToken` (single flight) while other
/// hosts are not held up.
type TokenCell = Arc<Mutex<Option<Auth>>>;

/// One token per registry per process, reused until shortly before it expires; one
/// identity per profile, region and role, likewise.
#[derive(Clone, Default)]
pub struct EcrTokens {
    aws: Option<AwsConfig>,
    /// Held only to find a host's cell, never across an await.
    cells: Arc<SyncMutex<HashMap<String, TokenCell>>>,
    identities: Arc<chain::Identities>,
}

/// Runs one AWS API call within `CALL_DEADLINE`.
async fn with_deadline<T>(call: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    match tokio::time::timeout(CALL_DEADLINE, call).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "the API did not answer within {} s",
            CALL_DEADLINE.as_secs()
        )),
    }
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

impl EcrTokens {
    /// `aws`: the provider's block, for hosts whose entry has none.
    pub fn new(aws: Option<AwsConfig>) -> Self {
        EcrTokens {
            aws,
            ..Default::default()
        }
    }

    fn cell(&self, host: &str) -> TokenCell {
        let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        cells.entry(host.to_owned()).or_default().clone()
    }

    /// The identity settings of a host: its entry's `aws` block as a whole, else the
    /// provider's.
    fn aws_for<'a>(&'a self, entry: Option<&'a RegistryConfig>) -> Option<&'a AwsConfig> {
        entry.and_then(|e| e.aws.as_ref()).or(self.aws.as_ref())
    }

    /// The region of a host's registry API: `ecr.region`, then the host name (ECR Public:
    /// us-east-1), then the `aws` block, then the environment.
    pub fn region_for(&self, host: &str, entry: Option<&RegistryConfig>) -> String {
        if is_public(host) {
            return host::PUBLIC_REGION.to_owned();
        }
        entry
            .and_then(|e| e.ecr.as_ref())
            .and_then(|e| e.region.clone())
            .or_else(|| parse_host(host).map(|h| h.region))
            .or_else(|| self.aws_for(entry).and_then(|a| a.region.clone()))
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_owned())
    }

    /// The region STS (and the base settings) of a host's identity use: the `aws` block,
    /// then the environment, then the registry's region.
    fn sts_region(&self, host: &str, entry: Option<&RegistryConfig>) -> String {
        self.aws_for(entry)
            .and_then(|a| a.region.clone())
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| self.region_for(host, entry))
    }

    /// The ECR API endpoint override of a host's entry (`ecr.endpoint`).
    fn endpoint(entry: Option<&RegistryConfig>) -> Option<&str> {
        entry
            .and_then(|e| e.ecr.as_ref())
            .and_then(|e| e.endpoint.as_deref())
    }

    /// Basic credentials (`AWS`, token) for `host`, whose registry entry is `entry`; None
    /// for ECR Public when no AWS credentials exist anywhere (pulls are anonymous).
    pub async fn credentials(
        &self,
        host: &str,
        entry: Option<&RegistryConfig>,
    ) -> Result<Option<(String, SecretString)>, EcrError> {
        let cell = self.cell(host);
        let mut cached = cell.lock().await;
        if let Some(a) = cached.as_ref().filter(|a| a.good(SystemTime::now())) {
            return Ok(match a {
                Auth::Basic(t) => Some((t.username.clone(), t.password.clone())),
                Auth::Anonymous(_) => None,
            });
        }
        let identity = self
            .identities
            .resolve(self.aws_for(entry), &self.sts_region(host, entry))
            .await;
        let (base, creds) = match identity {
            Ok(found) => found,
            Err(CredentialsError::NotFound { .. }) if is_public(host) => {
                *cached = Some(Auth::Anonymous(SystemTime::now() + ANONYMOUS_USE));
                return Ok(None);
            }
            Err(source) => {
                return Err(EcrError::Credentials {
                    host: host.to_owned(),
                    source,
                })
            }
        };
        let region = self.region_for(host, entry);
        let endpoint = Self::endpoint(entry);
        let (api, fetched) = if is_public(host) {
            let t = with_deadline(public::token(&base.sdk, creds, endpoint)).await;
            ("ECR Public", t)
        } else {
            let t = with_deadline(token::token(&base.sdk, creds, &region, endpoint)).await;
            ("ECR", t)
        };
        let token = fetched.map_err(|message| EcrError::Token {
            api,
            host: host.to_owned(),
            region,
            message,
        })?;
        let out = (token.username.clone(), token.password.clone());
        *cached = Some(Auth::Basic(token));
        Ok(Some(out))
    }

    /// Removes one tag with `BatchDeleteImage`. Ok(false) when ECR does not know the
    /// image or repository (already gone, as far as ECR's API can tell), and for ECR
    /// Public, whose tags go through the registry API.
    pub async fn delete_tag(
        &self,
        host: &str,
        entry: Option<&RegistryConfig>,
        repository: &str,
        tag: &str,
    ) -> Result<bool, EcrError> {
        if is_public(host) {
            return Ok(false);
        }
        let (base, creds) = self
            .identities
            .resolve(self.aws_for(entry), &self.sts_region(host, entry))
            .await
            .map_err(|source| EcrError::Credentials {
                host: host.to_owned(),
                source,
            })?;
        let region = self.region_for(host, entry);
        let account = parse_host(host).map(|h| h.account);
        let target = delete::Target {
            region: &region,
            endpoint: Self::endpoint(entry),
            account: account.as_deref(),
            repository,
            tag,
        };
        delete::delete_tag(&base.sdk, creds, &target)
            .await
            .map_err(|message| EcrError::Delete {
                repository: repository.to_owned(),
                tag: tag.to_owned(),
                region: region.clone(),
                message,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AssumeRoleConfig, EcrConfig};

    fn role(arn: &str) -> AwsConfig {
        AwsConfig {
            assume_role: Some(AssumeRoleConfig {
                role_arn: arn.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_entry_block_wins_as_a_whole() {
        let provider = AwsConfig {
            region: Some("eu-west-1".into()),
            ..role("arn:aws:iam::123456789012:role/a")
        };
        let t = EcrTokens::new(Some(provider.clone()));
        let b = RegistryConfig {
            address: "210987654321.dkr.ecr.us-west-2.amazonaws.com".into(),
            aws: Some(role("arn:aws:iam::210987654321:role/b")),
            ..Default::default()
        };
        assert_eq!(t.aws_for(Some(&b)), b.aws.as_ref());
        assert_eq!(t.aws_for(None), Some(&provider));
        let plain = RegistryConfig {
            address: "x".into(),
            ..Default::default()
        };
        assert_eq!(t.aws_for(Some(&plain)), Some(&provider));
        // The registry's region comes from its name; STS's from the block in force.
        assert_eq!(t.region_for(&b.address, Some(&b)), "us-west-2");
        assert_eq!(t.sts_region(&b.address, None), "eu-west-1");
    }

    #[test]
    fn regions() {
        let t = EcrTokens::new(None);
        assert_eq!(t.region_for("public.ecr.aws", None), "us-east-1");
        let e = RegistryConfig {
            address: "registry.example.com".into(),
            ecr: Some(EcrConfig {
                region: Some("ap-south-1".into()),
                endpoint: None,
            }),
            ..Default::default()
        };
        assert_eq!(t.region_for(&e.address, Some(&e)), "ap-south-1");
    }
}

//! AWS ECR: IAM tokens from `GetAuthorizationToken` through the standard AWS credential
//! chain, fetched at operation time and kept only in memory, and tag deletion through
//! `BatchDeleteImage`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::{Duration, SystemTime};

use aws_config::timeout::TimeoutConfig;
use aws_sdk_ecr::types::ImageIdentifier;
use base64::Engine as _;
use tokio::sync::Mutex;

use crate::config::{AwsConfig, EcrConfig, SecretString};

#[derive(Debug, thiserror::Error)]
pub enum EcrError {
    #[error("ECR GetAuthorizationToken for {host} (region {region}): {message}")]
    Token {
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
}

/// What an ECR host name says: `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrHost {
    pub account: String,
    pub region: String,
}

pub fn parse_host(host: &str) -> Option<EcrHost> {
    let host = host.split(':').next()?.to_ascii_lowercase();
    let rest = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let mut parts = rest.split('.');
    let account = parts.next()?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if parts.next()? != "dkr" {
        return None;
    }
    let ecr = parts.next()?;
    if ecr != "ecr" && ecr != "ecr-fips" {
        return None;
    }
    let region = parts.next()?;
    if parts.next().is_some() || region.is_empty() {
        return None;
    }
    Some(EcrHost {
        account: account.to_owned(),
        region: region.to_owned(),
    })
}

/// A registry password from ECR, with the time it stops being good.
#[derive(Clone)]
struct Token {
    username: String,
    password: SecretString,
    good_until: SystemTime,
}

/// Tokens are refreshed this long before they expire.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// How long a token whose expiry already looked past is used (some ECR look-alikes report
/// a fixed expiry in the past): refreshing it would only loop.
const STALE_EXPIRY_USE: Duration = Duration::from_secs(60 * 60);

/// Deadlines for the ECR API: one attempt, and the whole call (credential look-up, retries
/// by the SDK included). A stalled endpoint fails within `CALL_DEADLINE`, with the operation
/// and the host in the error.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const CALL_DEADLINE: Duration = Duration::from_secs(30);

/// The token of one registry host. Its async lock is held across the fetch, so concurrent
/// callers for the same host share one `GetAuthorizationToken` (single flight) while other
/// hosts are not held up.
type TokenCell = Arc<Mutex<Option<Token>>>;

/// One token per registry per process, reused until shortly before it expires.
#[derive(Clone, Default)]
pub struct EcrTokens {
    aws: Option<AwsConfig>,
    /// Held only to find a host's cell, never across an await.
    cells: Arc<SyncMutex<HashMap<String, TokenCell>>>,
}

/// Runs one ECR API call within `CALL_DEADLINE`.
async fn with_deadline<T>(call: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    match tokio::time::timeout(CALL_DEADLINE, call).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "the ECR API did not answer within {} s",
            CALL_DEADLINE.as_secs()
        )),
    }
}

impl EcrTokens {
    pub fn new(aws: Option<AwsConfig>) -> Self {
        EcrTokens {
            aws,
            cells: Arc::default(),
        }
    }

    fn cell(&self, host: &str) -> TokenCell {
        let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        cells.entry(host.to_owned()).or_default().clone()
    }

    async fn client(&self, region: &str, ecr: Option<&EcrConfig>) -> aws_sdk_ecr::Client {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_owned()));
        if let Some(profile) = self.aws.as_ref().and_then(|a| a.profile.as_deref()) {
            loader = loader.profile_name(profile);
        }
        let shared = loader.load().await;
        let mut conf = aws_sdk_ecr::config::Builder::from(&shared).timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(CALL_DEADLINE)
                .build(),
        );
        if let Some(endpoint) = ecr.and_then(|e| e.endpoint.as_deref()) {
            conf = conf.endpoint_url(endpoint);
        }
        aws_sdk_ecr::Client::from_conf(conf.build())
    }

    /// The region for a host: the `ecr` block, then the host name, then provider config.
    pub fn region_for(&self, host: &str, ecr: Option<&EcrConfig>) -> String {
        ecr.and_then(|e| e.region.clone())
            .or_else(|| parse_host(host).map(|h| h.region))
            .or_else(|| self.aws.as_ref().and_then(|a| a.region.clone()))
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .unwrap_or_else(|| "us-east-1".to_owned())
    }

    /// Basic credentials (`AWS`, token) for `host`.
    pub async fn credentials(
        &self,
        host: &str,
        ecr: Option<&EcrConfig>,
    ) -> Result<(String, SecretString), EcrError> {
        let cell = self.cell(host);
        let mut cached = cell.lock().await;
        if let Some(t) = cached.as_ref() {
            if SystemTime::now() < t.good_until {
                return Ok((t.username.clone(), t.password.clone()));
            }
        }
        let region = self.region_for(host, ecr);
        let err = |message: String| EcrError::Token {
            host: host.to_owned(),
            region: region.clone(),
            message,
        };
        // One token serves every registry the principal may use; registry IDs are deprecated.
        let resp = with_deadline(async {
            let client = self.client(&region, ecr).await;
            client
                .get_authorization_token()
                .send()
                .await
                .map_err(|e| aws_sdk_ecr::error::DisplayErrorContext(e).to_string())
        })
        .await
        .map_err(err)?;
        let data = resp
            .authorization_data()
            .first()
            .ok_or_else(|| err("the answer holds no authorization data".into()))?;
        let encoded = data
            .authorization_token()
            .ok_or_else(|| err("the answer holds no token".into()))?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| err("the token is not base64".into()))?;
        let text = String::from_utf8(decoded).map_err(|_| err("the token is not text".into()))?;
        let (user, password) = text
            .split_once(':')
            .ok_or_else(|| err("the token is not user:password".into()))?;
        let now = SystemTime::now();
        let expires = data
            .expires_at()
            .and_then(|t| SystemTime::try_from(*t).ok())
            .unwrap_or(now + Duration::from_secs(12 * 3600));
        let good_until = if expires > now + REFRESH_MARGIN {
            expires - REFRESH_MARGIN
        } else {
            now + STALE_EXPIRY_USE
        };
        let token = Token {
            username: user.to_owned(),
            password: SecretString::new(password.to_owned()),
            good_until,
        };
        *cached = Some(token.clone());
        Ok((token.username, token.password))
    }

    /// Removes one tag with `BatchDeleteImage`. Ok(false) when ECR does not know the
    /// image or repository (already gone, as far as ECR's API can tell).
    pub async fn delete_tag(
        &self,
        host: &str,
        ecr: Option<&EcrConfig>,
        repository: &str,
        tag: &str,
    ) -> Result<bool, EcrError> {
        let region = self.region_for(host, ecr);
        let err = |message: String| EcrError::Delete {
            repository: repository.to_owned(),
            tag: tag.to_owned(),
            region: region.clone(),
            message,
        };
        let sent = with_deadline(async {
            let client = self.client(&region, ecr).await;
            let mut req = client
                .batch_delete_image()
                .repository_name(repository)
                .image_ids(ImageIdentifier::builder().image_tag(tag).build());
            if let Some(h) = parse_host(host) {
                req = req.registry_id(h.account);
            }
            Ok(req.send().await)
        })
        .await
        .map_err(err)?;
        match sent {
            Ok(resp) => {
                if !resp.image_ids().is_empty() {
                    return Ok(true);
                }
                match resp.failures().first() {
                    None => Ok(false),
                    Some(f) => {
                        use aws_sdk_ecr::types::ImageFailureCode;
                        let code = f
                            .failure_code()
                            .map(|c| c.as_str().to_owned())
                            .unwrap_or_default();
                        if matches!(
                            f.failure_code(),
                            Some(
                                ImageFailureCode::ImageNotFound
                                    | ImageFailureCode::ImageTagDoesNotMatchDigest
                            )
                        ) {
                            Ok(false)
                        } else {
                            Err(err(format!(
                                "{code}: {}",
                                f.failure_reason().unwrap_or("no reason given")
                            )))
                        }
                    }
                }
            }
            Err(e) => {
                if e.as_service_error()
                    .is_some_and(|se| se.is_repository_not_found_exception())
                {
                    Ok(false)
                } else {
                    Err(err(aws_sdk_ecr::error::DisplayErrorContext(&e).to_string()))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_hosts() {
        assert_eq!(
            parse_host("123456789012.dkr.ecr.us-east-1.amazonaws.com"),
            Some(EcrHost {
                account: "123456789012".into(),
                region: "us-east-1".into()
            })
        );
        assert_eq!(
            parse_host("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn").map(|h| h.region),
            Some("cn-north-1".into())
        );
        assert!(parse_host("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com").is_some());
        assert!(parse_host("public.ecr.aws").is_none());
        assert!(parse_host("12345.dkr.ecr.us-east-1.amazonaws.com").is_none());
        assert!(parse_host("127.0.0.1:5000").is_none());
        assert!(parse_host("123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.io").is_none());
    }
}

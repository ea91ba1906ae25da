//! AWS identities: the SDK's default credential chain (environment, web identity, profiles
//! with SSO or `credential_process`, container and instance roles) per profile and region,
//! and roles assumed from it with aws-config's own `AssumeRoleProvider`.
//!
//! Every identity is cached in memory until shortly before its credentials expire, and
//! fetched by one caller at a time (single flight): concurrent token look-ups for several
//! hosts behind one role make one STS call. Credentials never leave this process's memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::{Duration, SystemTime};

use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::SdkConfig;
use aws_credential_types::provider::error::CredentialsError as SdkCredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use tokio::sync::{Mutex, OnceCell};

use super::{ATTEMPT_TIMEOUT, CALL_DEADLINE, CONNECT_TIMEOUT};
use crate::config::AwsConfig;

/// Why no credentials could be had. Messages name the STS call and the role; they never
/// hold a credential (the SDK's errors carry none, and nothing here adds one).
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(
        "no AWS credentials were found{profile} (environment variables, web identity, \
         profiles with SSO or credential_process, container or instance role)"
    )]
    NotFound { profile: String },
    #[error("STS {call} for role {role}: {message}")]
    Sts {
        call: &'static str,
        role: String,
        message: String,
    },
    #[error("the AWS credential chain{profile}: {message}")]
    Chain { profile: String, message: String },
}

/// Credentials are fetched again this long before they expire.
pub(super) const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// How long credentials that carry no expiry (static keys, some `credential_process`
/// programs) are used before the chain is asked again.
const NO_EXPIRY_USE: Duration = Duration::from_secs(15 * 60);

/// Until when credentials that expire at `expiry` are used: `REFRESH_MARGIN` before the
/// end, or until the end itself when they are shorter-lived than the margin (refreshing
/// them at once would only loop).
pub(super) fn good_until(expiry: Option<SystemTime>, now: SystemTime) -> SystemTime {
    match expiry {
        None => now + NO_EXPIRY_USE,
        Some(e) if e > now + REFRESH_MARGIN => e - REFRESH_MARGIN,
        Some(e) => e,
    }
}

/// What an identity is, for messages.
#[derive(Debug, Clone)]
enum Source {
    /// The default chain, with the profile it was loaded with.
    Chain { profile: Option<String> },
    /// A role assumed from a chain.
    Role { arn: String },
}

impl Source {
    fn profile_words(profile: &Option<String>) -> String {
        match profile {
            Some(p) => format!(" (profile {p})"),
            None => String::new(),
        }
    }

    fn error(&self, e: &SdkCredentialsError) -> CredentialsError {
        let message = aws_sdk_ecr::error::DisplayErrorContext(e).to_string();
        match self {
            Source::Role { arn } => CredentialsError::Sts {
                call: "AssumeRole",
                role: arn.clone(),
                message,
            },
            Source::Chain { profile } => {
                if let SdkCredentialsError::CredentialsNotLoaded(_) = e {
                    return CredentialsError::NotFound {
                        profile: Self::profile_words(profile),
                    };
                }
                match web_identity_role(profile.as_deref()) {
                    Some(role) => CredentialsError::Sts {
                        call: "AssumeRoleWithWebIdentity",
                        role,
                        message,
                    },
                    None => CredentialsError::Chain {
                        profile: Self::profile_words(profile),
                        message,
                    },
                }
            }
        }
    }
}

/// The role the default chain assumes with a web identity token, when that is the source
/// it uses: `AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE`, with no keys in the environment
/// (which come first in the chain) and no profile named.
fn web_identity_role(profile: Option<&str>) -> Option<String> {
    let set = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if profile.is_some() || set("AWS_ACCESS_KEY_ID").is_some() {
        return None;
    }
    set("AWS_WEB_IDENTITY_TOKEN_FILE")?;
    set("AWS_ROLE_ARN")
}

/// One identity's credentials, cached until shortly before they expire. The async lock is
/// held across the fetch: concurrent callers share one call (single flight).
#[derive(Debug)]
pub(super) struct Cached {
    source: Source,
    inner: SharedCredentialsProvider,
    cell: Mutex<Option<(Credentials, SystemTime)>>,
}

impl Cached {
    fn new(source: Source, inner: SharedCredentialsProvider) -> Self {
        Cached {
            source,
            inner,
            cell: Mutex::new(None),
        }
    }

    async fn fetch(&self) -> Result<Credentials, SdkCredentialsError> {
        let mut cached = self.cell.lock().await;
        let now = SystemTime::now();
        if let Some((c, until)) = cached.as_ref() {
            if now < *until {
                return Ok(c.clone());
            }
        }
        let creds =
            match tokio::time::timeout(CALL_DEADLINE, self.inner.provide_credentials()).await {
                Ok(r) => r?,
                Err(_) => return Err(SdkCredentialsError::provider_timed_out(CALL_DEADLINE)),
            };
        *cached = Some((creds.clone(), good_until(creds.expiry(), now)));
        Ok(creds)
    }

    /// The credentials (`NotFound` when the chain found none anywhere).
    pub(super) async fn get(&self) -> Result<Credentials, CredentialsError> {
        self.fetch().await.map_err(|e| self.source.error(&e))
    }
}

/// The cache, handed to aws-config (the role provider's base credentials) as a provider.
#[derive(Debug, Clone)]
struct CachedProvider(Arc<Cached>);

impl ProvideCredentials for CachedProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.0.fetch())
    }
}

/// The default chain of one profile in one region: the SDK settings its clients are built
/// from (region, endpoints such as `AWS_ENDPOINT_URL_STS`, deadlines, retries) and its
/// credentials.
#[derive(Debug)]
pub(super) struct Base {
    pub(super) sdk: SdkConfig,
    pub(super) creds: Arc<Cached>,
}

type BaseKey = (Option<String>, String);
/// A role: its base, ARN, session name, external ID, duration.
type RoleKey = (BaseKey, String, Option<String>, Option<String>, Option<u32>);

/// Every identity the process has used, each created once.
#[derive(Default)]
pub(super) struct Identities {
    bases: SyncMutex<HashMap<BaseKey, Arc<OnceCell<Arc<Base>>>>>,
    roles: SyncMutex<HashMap<RoleKey, Arc<OnceCell<Arc<Cached>>>>>,
}

/// The deadlines of every AWS call: one attempt, the connection, the whole call.
pub(super) fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(CALL_DEADLINE)
        .build()
}

fn slot<K: std::hash::Hash + Eq, V>(
    map: &SyncMutex<HashMap<K, Arc<OnceCell<V>>>>,
    key: K,
) -> Arc<OnceCell<V>> {
    let mut m = map.lock().unwrap_or_else(|e| e.into_inner());
    m.entry(key).or_default().clone()
}

impl Identities {
    /// The default chain for `profile` with STS (and clients) in `region`.
    pub(super) async fn base(&self, profile: Option<&str>, region: &str) -> Arc<Base> {
        let key = (profile.map(str::to_owned), region.to_owned());
        let cell = slot(&self.bases, key);
        cell.get_or_init(|| async {
            let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new(region.to_owned()))
                .timeout_config(timeouts());
            if let Some(p) = profile {
                loader = loader.profile_name(p);
            }
            let sdk = loader.load().await;
            let chain = sdk
                .credentials_provider()
                .unwrap_or_else(|| SharedCredentialsProvider::new(NoCredentials));
            let source = Source::Chain {
                profile: profile.map(str::to_owned),
            };
            Arc::new(Base {
                creds: Arc::new(Cached::new(source, chain)),
                sdk,
            })
        })
        .await
        .clone()
    }

    /// The identity `aws` describes: the chain of its profile, then its role if any.
    /// `region` is the region of STS and of the base settings.
    pub(super) async fn resolve(
        &self,
        aws: Option<&AwsConfig>,
        region: &str,
    ) -> Result<(Arc<Base>, Credentials), CredentialsError> {
        let profile = aws.and_then(|a| a.profile.as_deref());
        let base = self.base(profile, region).await;
        let Some(role) = aws.and_then(|a| a.assume_role.as_ref()) else {
            let creds = base.creds.get().await?;
            return Ok((base, creds));
        };
        let key = (
            (profile.map(str::to_owned), region.to_owned()),
            role.role_arn.clone(),
            role.session_name.clone(),
            role.external_id.as_ref().map(|e| e.expose().to_owned()),
            role.duration_seconds,
        );
        let cell = slot(&self.roles, key);
        let cached = cell
            .get_or_init(|| async {
                let mut b = AssumeRoleProvider::builder(role.role_arn.clone())
                    .configure(&base.sdk)
                    .session_name(role.session_name.clone().unwrap_or_else(default_session));
                if let Some(id) = &role.external_id {
                    b = b.external_id(id.expose());
                }
                if let Some(s) = role.duration_seconds {
                    b = b.session_length(Duration::from_secs(s.into()));
                }
                let provider = b
                    .build_from_provider(CachedProvider(base.creds.clone()))
                    .await;
                let source = Source::Role {
                    arn: role.role_arn.clone(),
                };
                Arc::new(Cached::new(
                    source,
                    SharedCredentialsProvider::new(provider),
                ))
            })
            .await
            .clone();
        let creds = cached.get().await?;
        Ok((base, creds))
    }
}

/// `multiarch-<unix seconds>`: names the tool in CloudTrail.
fn default_session() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    format!("multiarch-{secs}")
}

/// A chain that never finds anything (an SDK configuration without a provider).
#[derive(Debug)]
struct NoCredentials;

impl ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(Err(SdkCredentialsError::not_loaded_no_source()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts calls; each answers after a pause with credentials expiring `life` from now.
    #[derive(Debug)]
    struct Counting {
        calls: Arc<AtomicUsize>,
        life: Option<Duration>,
        fail: bool,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            future::ProvideCredentials::new(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                if self.fail {
                    return Err(SdkCredentialsError::provider_error(
                        "AccessDenied: not allowed",
                    ));
                }
                Ok(Credentials::new(
                    "AKIDEXAMPLE",
                    "secret-key-value",
                    Some("session-token-value".into()),
                    self.life.map(|l| SystemTime::now() + l),
                    "test",
                ))
            })
        }
    }

    fn cached(
        life: Option<Duration>,
        fail: bool,
        source: Source,
    ) -> (Arc<Cached>, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let p = Counting {
            calls: calls.clone(),
            life,
            fail,
        };
        (
            Arc::new(Cached::new(source, SharedCredentialsProvider::new(p))),
            calls,
        )
    }

    fn role() -> Source {
        Source::Role {
            arn: "arn:aws:iam::210987654321:role/push".into(),
        }
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch_and_reuse_it() {
        let (c, calls) = cached(Some(Duration::from_secs(3600)), false, role());
        let all = futures::future::join_all((0..8).map(|_| {
            let c = c.clone();
            async move { c.get().await }
        }))
        .await;
        assert!(all.iter().all(Result::is_ok));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        c.get().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn credentials_near_expiry_are_fetched_again() {
        // Expiring within the margin: used until they expire, which is now-ish.
        let (c, calls) = cached(Some(Duration::from_millis(1)), false, role());
        c.get().await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        c.get().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn good_until_keeps_a_margin_and_never_loops() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hour = now + Duration::from_secs(3600);
        assert_eq!(good_until(Some(hour), now), hour - REFRESH_MARGIN);
        let soon = now + Duration::from_secs(60);
        assert_eq!(good_until(Some(soon), now), soon);
        assert_eq!(good_until(None, now), now + NO_EXPIRY_USE);
    }

    #[tokio::test]
    async fn a_role_error_names_the_role_and_the_call_and_no_secret() {
        let (c, _) = cached(None, true, role());
        let e = c.get().await.unwrap_err().to_string();
        assert!(
            e.contains("STS AssumeRole for role arn:aws:iam::210987654321:role/push"),
            "{e}"
        );
        assert!(e.contains("AccessDenied"), "{e}");
        assert!(!e.contains("secret-key-value") && !e.contains("session-token-value"));
    }

    #[tokio::test]
    async fn an_empty_chain_is_no_credentials() {
        let c = Cached::new(
            Source::Chain { profile: None },
            SharedCredentialsProvider::new(NoCredentials),
        );
        assert!(matches!(
            c.get().await,
            Err(CredentialsError::NotFound { .. })
        ));
        let e = Source::Chain {
            profile: Some("ci".into()),
        }
        .error(&SdkCredentialsError::not_loaded_no_source());
        assert!(e.to_string().contains("(profile ci)"), "{e}");
    }
}

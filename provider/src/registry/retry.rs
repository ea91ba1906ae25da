//! Bounded retries with backoff for registry calls: 429, 5xx, resets and timeouts are
//! retried; everything else (404, 401, bad requests) fails at once.

use std::future::Future;
use std::time::Duration;

use oci_client::errors::OciDistributionError;

const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

#[derive(Clone, Copy)]
pub enum Timeout {
    /// Manifests, tags, small blobs.
    Manifest,
    /// Layer copies, which may be large.
    Blob,
}

impl Timeout {
    fn duration(self) -> Duration {
        match self {
            Timeout::Manifest => Duration::from_secs(60),
            Timeout::Blob => Duration::from_secs(30 * 60),
        }
    }
}

fn retryable(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::RequestError(e) => e.is_connect() || e.is_timeout() || e.is_request(),
        OciDistributionError::ServerError { code, .. } => *code == 429 || *code >= 500,
        OciDistributionError::IoError(_) => true,
        _ => false,
    }
}

pub async fn retry<T, F, Fut>(timeout: Timeout, mut f: F) -> Result<T, OciDistributionError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, OciDistributionError>>,
{
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        let result = match tokio::time::timeout(timeout.duration(), f()).await {
            Ok(r) => r,
            Err(_) => Err(OciDistributionError::GenericError(Some(format!(
                "no answer within {:?}",
                timeout.duration()
            )))),
        };
        match result {
            Ok(v) => return Ok(v),
            Err(e) if attempt < ATTEMPTS && (retryable(&e) || is_timeout(&e)) => {
                tracing::debug!("registry call failed (attempt {attempt}), retrying: {e}");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

fn is_timeout(e: &OciDistributionError) -> bool {
    matches!(e, OciDistributionError::GenericError(Some(m)) if m.starts_with("no answer within"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn retries_server_errors_then_gives_up() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = retry(Timeout::Manifest, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(OciDistributionError::ServerError {
                code: 503,
                url: "u".into(),
                message: "m".into(),
            })
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), ATTEMPTS);
    }

    #[tokio::test]
    async fn does_not_retry_not_found() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = retry(Timeout::Manifest, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(OciDistributionError::ServerError {
                code: 404,
                url: "u".into(),
                message: "m".into(),
            })
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}

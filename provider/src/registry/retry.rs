//! Bounded retries with backoff for registry calls: 429, 5xx, connection errors, resets
//! (also in the middle of a body) and timeouts are retried, `Retry-After` honoured;
//! everything else (404, 401, bad requests) fails at once. The decision is made from typed
//! status codes and error kinds, never from message text.

use std::fmt;
use std::future::Future;
use std::time::{Duration, SystemTime};

use oci_client::errors::{OciDistributionError, OciErrorCode};

use super::body::BodyError;

const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait a `Retry-After` may ask for; a registry asking for more gets an error.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

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

/// What a failed attempt says about another one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Final,
    Retry { after: Option<Duration> },
}

pub trait Retryable {
    fn verdict(&self) -> Verdict;
}

fn status_verdict(code: u16, after: Option<Duration>) -> Verdict {
    if code == 429 || code >= 500 {
        Verdict::Retry { after }
    } else {
        Verdict::Final
    }
}

fn reqwest_verdict(e: &reqwest::Error) -> Verdict {
    // A guarded body stream (a blob copy) that stalled: as final as a stalled read.
    if super::body::find_in(e).is_some_and(BodyError::is_final) {
        return Verdict::Final;
    }
    if let Some(status) = e.status() {
        return status_verdict(status.as_u16(), None);
    }
    // A reset while the body is read surfaces as a body or decode error.
    if e.is_connect() || e.is_timeout() || e.is_request() || e.is_body() || e.is_decode() {
        Verdict::Retry { after: None }
    } else {
        Verdict::Final
    }
}

impl Retryable for OciDistributionError {
    fn verdict(&self) -> Verdict {
        match self {
            OciDistributionError::RequestError(e) => reqwest_verdict(e),
            OciDistributionError::ServerError { code, .. } => status_verdict(*code, None),
            OciDistributionError::IoError(e)
                if super::body::find_in(e as &(dyn std::error::Error + 'static))
                    .is_some_and(BodyError::is_final) =>
            {
                Verdict::Final
            }
            OciDistributionError::IoError(_) => Verdict::Retry { after: None },
            OciDistributionError::RegistryError { envelope, .. }
                if envelope
                    .errors
                    .iter()
                    .any(|e| e.code == OciErrorCode::Toomanyrequests) =>
            {
                Verdict::Retry { after: None }
            }
            _ => Verdict::Final,
        }
    }
}

/// A failure of our own plain HTTP requests, with what the answer said about waiting.
#[derive(Debug)]
pub enum HttpFailure {
    Transport(reqwest::Error),
    Status {
        code: u16,
        retry_after: Option<Duration>,
    },
    /// The body of an answer could not be read within its bounds.
    Body(BodyError),
}

impl std::error::Error for HttpFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HttpFailure::Transport(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for HttpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // A guarded body's own failure says more than "error sending request".
            HttpFailure::Transport(e) => match super::body::find_in(e) {
                Some(b) => write!(f, "{e}: {b}"),
                None => write!(f, "{e}"),
            },
            HttpFailure::Status { code, .. } => write!(f, "HTTP {code}"),
            HttpFailure::Body(e) => write!(f, "{e}"),
        }
    }
}

impl Retryable for HttpFailure {
    fn verdict(&self) -> Verdict {
        match self {
            HttpFailure::Transport(e) => reqwest_verdict(e),
            HttpFailure::Status { code, retry_after } => status_verdict(*code, *retry_after),
            HttpFailure::Body(e) if e.is_final() => Verdict::Final,
            HttpFailure::Body(_) => Verdict::Retry { after: None },
        }
    }
}

impl From<reqwest::Error> for HttpFailure {
    fn from(e: reqwest::Error) -> Self {
        HttpFailure::Transport(e)
    }
}

/// A `Retry-After` header: delay seconds or an HTTP date.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The failure of a call after its attempts.
#[derive(Debug)]
pub enum Retried<E> {
    Failed(E),
    /// The last attempt got no answer in time.
    TimedOut(Duration),
}

/// Transparent: the failure's own sources are the chain.
impl<E: std::error::Error + 'static> std::error::Error for Retried<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Retried::Failed(e) => e.source(),
            Retried::TimedOut(_) => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for Retried<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Retried::Failed(e) => write!(f, "{e}"),
            Retried::TimedOut(d) => write!(f, "no answer within {} s", d.as_secs()),
        }
    }
}

/// The wait before attempt `attempt + 1`: the registry's `Retry-After` when it gave one
/// (refused beyond `MAX_RETRY_AFTER`), else exponential backoff.
fn wait_before_next(verdict: Verdict, backoff: Duration) -> Option<Duration> {
    match verdict {
        Verdict::Final => None,
        Verdict::Retry { after: Some(a) } if a > MAX_RETRY_AFTER => None,
        Verdict::Retry { after: Some(a) } => Some(a.max(Duration::from_millis(50))),
        Verdict::Retry { after: None } => Some(backoff),
    }
}

pub async fn retry<T, E, F, Fut>(timeout: Timeout, mut f: F) -> Result<T, Retried<E>>
where
    E: Retryable + fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        let (err, verdict) = match tokio::time::timeout(timeout.duration(), f()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => {
                let v = e.verdict();
                (Retried::Failed(e), v)
            }
            Err(_) => (
                Retried::TimedOut(timeout.duration()),
                Verdict::Retry { after: None },
            ),
        };
        if attempt >= ATTEMPTS {
            return Err(err);
        }
        let Some(wait) = wait_before_next(verdict, backoff) else {
            return Err(err);
        };
        tracing::debug!("registry call failed (attempt {attempt}), retrying in {wait:?}: {err}");
        tokio::time::sleep(wait).await;
        backoff *= 2;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn server_error(code: u16) -> OciDistributionError {
        OciDistributionError::ServerError {
            code,
            url: "u".into(),
            message: "m".into(),
        }
    }

    #[tokio::test]
    async fn retries_server_errors_then_gives_up() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = retry(Timeout::Manifest, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(server_error(503))
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
            Err(server_error(404))
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn honours_retry_after() {
        let calls = AtomicU32::new(0);
        let t0 = std::time::Instant::now();
        let r: Result<u32, Retried<HttpFailure>> = retry(Timeout::Manifest, || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err(HttpFailure::Status {
                    code: 429,
                    retry_after: Some(Duration::from_secs(1)),
                }),
                n => Ok(n),
            }
        })
        .await;
        assert_eq!(r.unwrap(), 1);
        // The first backoff alone would be 250 ms.
        assert!(t0.elapsed() >= Duration::from_secs(1), "{:?}", t0.elapsed());
    }

    #[test]
    fn retry_after_in_both_forms() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        let later = SystemTime::now() + Duration::from_secs(120);
        h.insert(
            reqwest::header::RETRY_AFTER,
            httpdate::fmt_http_date(later).parse().unwrap(),
        );
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(110) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        h.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn a_retry_after_beyond_the_limit_is_not_waited_for() {
        let v = Verdict::Retry {
            after: Some(Duration::from_secs(3600)),
        };
        assert_eq!(wait_before_next(v, FIRST_BACKOFF), None);
        assert_eq!(wait_before_next(Verdict::Final, FIRST_BACKOFF), None);
    }
}

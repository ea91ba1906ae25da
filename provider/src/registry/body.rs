//! Bounded body reads: every body the provider reads from a registry is capped in size
//! (when it is read into memory) and has an idle deadline, so a registry that sends a huge
//! manifest or trickles its answer cannot take the provider's memory or hold an operation.
//!
//! The idle deadline counts progress, not bytes: a read fails when fewer than
//! [`MIN_PROGRESS`] bytes arrive within one idle window (and the body is not complete), as
//! curl's `--speed-limit`/`--speed-time` do. A registry sending one byte a second makes no
//! progress in that sense; any real registry sends a kilobyte in far less than a second.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use tokio::time::Instant;

/// The largest manifest read: the limit the OCI distribution specification advises
/// registries to enforce on manifests they accept (4 MiB).
pub const MANIFEST_MAX: u64 = 4 * 1024 * 1024;

/// The largest JSON blob (an image config) read into memory.
pub const JSON_BLOB_MAX: u64 = 16 * 1024 * 1024;

/// The largest tag list read into memory.
pub const TAG_LIST_MAX: u64 = 16 * 1024 * 1024;

/// Less than this within one idle window is no progress.
pub const MIN_PROGRESS: usize = 1024;

/// The default idle window.
const DEFAULT_IDLE: Duration = Duration::from_secs(15);

/// The environment variable that sets the idle window in seconds (tests set it low).
pub const IDLE_ENV: &str = "MULTIARCH_REGISTRY_IDLE_TIMEOUT";

/// The idle window: `MULTIARCH_REGISTRY_IDLE_TIMEOUT` seconds (1 to 3600), else 15 s.
pub fn idle_window() -> Duration {
    std::env::var(IDLE_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| (1..=3600).contains(s))
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_IDLE)
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the answer is larger than the {limit}-byte limit (it declares {declared} bytes)")]
    DeclaredTooLarge { limit: u64, declared: u64 },
    #[error("the answer is larger than the {limit}-byte limit")]
    TooLarge { limit: u64 },
    #[error(
        "the registry stalled: fewer than {MIN_PROGRESS} bytes arrived in {} s \
         ({received} bytes so far)",
        window.as_secs()
    )]
    Stalled { window: Duration, received: u64 },
    #[error("reading the answer: {0}")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl BodyError {
    /// Retrying does not help an oversized answer or a registry that stalls (it would only
    /// multiply the wait); a connection that broke mid-body is worth another attempt.
    pub fn is_final(&self) -> bool {
        !matches!(self, BodyError::Transport(_))
    }
}

/// Tracks progress within the current idle window.
struct Progress {
    window: Duration,
    ends: Instant,
    in_window: usize,
    received: u64,
}

impl Progress {
    fn new(window: Duration) -> Self {
        Progress {
            window,
            ends: Instant::now() + window,
            in_window: 0,
            received: 0,
        }
    }

    /// The next chunk of `s`, or `Stalled` when the window ends without progress.
    async fn next<S, E>(&mut self, s: &mut S) -> Option<Result<Bytes, BodyError>>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        loop {
            match tokio::time::timeout_at(self.ends, s.next()).await {
                Ok(None) => return None,
                Ok(Some(Err(e))) => return Some(Err(BodyError::Transport(e.into()))),
                Ok(Some(Ok(chunk))) => {
                    self.in_window += chunk.len();
                    self.received += chunk.len() as u64;
                    if self.in_window >= MIN_PROGRESS {
                        self.in_window = 0;
                        self.ends = Instant::now() + self.window;
                    }
                    return Some(Ok(chunk));
                }
                Err(_) if self.in_window >= MIN_PROGRESS => {
                    self.in_window = 0;
                    self.ends = Instant::now() + self.window;
                }
                Err(_) => {
                    return Some(Err(BodyError::Stalled {
                        window: self.window,
                        received: self.received,
                    }))
                }
            }
        }
    }
}

/// Reads a whole answer into memory: refused at once when its `Content-Length` is over
/// `limit`, stopped as soon as more than `limit` bytes arrived otherwise.
pub async fn read_capped(resp: reqwest::Response, limit: u64) -> Result<Bytes, BodyError> {
    if let Some(declared) = resp.content_length().filter(|n| *n > limit) {
        return Err(BodyError::DeclaredTooLarge { limit, declared });
    }
    collect_capped(resp.bytes_stream(), limit, idle_window()).await
}

/// [`read_capped`] on any stream of chunks.
pub async fn collect_capped<S, E>(s: S, limit: u64, window: Duration) -> Result<Bytes, BodyError>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut s = Box::pin(s);
    let mut progress = Progress::new(window);
    let mut buf = BytesMut::new();
    while let Some(chunk) = progress.next(&mut s).await {
        let chunk = chunk?;
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(BodyError::TooLarge { limit });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// A stream passed through with the idle deadline (blob copies: streamed, not capped).
pub fn guarded<S, E>(s: S, window: Duration) -> impl Stream<Item = Result<Bytes, BodyError>> + Send
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    futures::stream::unfold(
        (Box::pin(s), Progress::new(window), false),
        |(mut s, mut progress, failed)| async move {
            if failed {
                return None;
            }
            let item = progress.next(&mut s).await?;
            let failed = item.is_err();
            Some((item, (s, progress, failed)))
        },
    )
}

/// Where a [`watched`] stream notes that it stalled.
pub type StallNote = Arc<OnceLock<(Duration, u64)>>;

/// [`guarded`], noting a stall where the caller can see it: sent as a request body over
/// HTTP/2, the stream's own error is lost (hyper resets the stream and keeps no cause).
pub fn watched<S, E>(
    s: S,
    window: Duration,
) -> (
    impl Stream<Item = Result<Bytes, BodyError>> + Send,
    StallNote,
)
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let note = StallNote::default();
    let noted = note.clone();
    let s = guarded(s, window).inspect(move |item| {
        if let Err(BodyError::Stalled { window, received }) = item {
            let _ = noted.set((*window, *received));
        }
    });
    (s, note)
}

/// The stall a [`watched`] stream noted, as its error.
pub fn stall_of(note: &StallNote) -> Option<BodyError> {
    note.get().map(|(window, received)| BodyError::Stalled {
        window: *window,
        received: *received,
    })
}

/// The [`BodyError`] inside an error chain (a guarded stream's failure as the HTTP client
/// reports it), if any.
pub fn find_in<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a BodyError> {
    let mut cur: Option<&'a (dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(b) = err.downcast_ref::<BodyError>() {
            return Some(b);
        }
        // An io::Error's `source` skips the error it wraps: look inside it.
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|i| i.downcast_ref::<BodyError>())
        {
            return Some(inner);
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(sizes: &[usize]) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
        let v: Vec<_> = sizes
            .iter()
            .map(|n| Ok(Bytes::from(vec![b'x'; *n])))
            .collect();
        futures::stream::iter(v)
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole() {
        let b = collect_capped(chunks(&[10, 20]), 30, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(b.len(), 30);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_stops_at_the_limit() {
        let e = collect_capped(chunks(&[10, 20, 1]), 30, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(e, BodyError::TooLarge { limit: 30 }), "{e}");
        assert!(e.is_final());
    }

    /// A byte every 20 ms is no progress: the read fails after one window, not at the end.
    #[tokio::test]
    async fn a_trickle_is_a_stall() {
        let trickle = futures::stream::unfold(0u32, |n| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Some((Ok::<_, std::io::Error>(Bytes::from_static(b"{")), n + 1))
        });
        let e = collect_capped(trickle, MANIFEST_MAX, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(matches!(e, BodyError::Stalled { .. }), "{e}");
        assert!(e.is_final());
        assert!(e.to_string().contains("stalled"), "{e}");
    }

    /// A slow but steady body (a kilobyte per window) is progress and completes.
    #[tokio::test]
    async fn steady_progress_is_not_a_stall() {
        let steady = futures::stream::unfold(0u32, |n| async move {
            if n == 10 {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            Some((Ok::<_, std::io::Error>(Bytes::from(vec![0; 1024])), n + 1))
        });
        let b = collect_capped(steady, MANIFEST_MAX, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(b.len(), 10 * 1024);
    }

    #[tokio::test]
    async fn a_guarded_stream_ends_with_the_stall() {
        let silent = futures::stream::pending::<Result<Bytes, std::io::Error>>();
        let mut g = Box::pin(guarded(silent, Duration::from_millis(100)));
        let first = g.next().await.unwrap().unwrap_err();
        assert!(matches!(first, BodyError::Stalled { .. }));
        assert!(g.next().await.is_none());
        let wrapped: Box<dyn std::error::Error + Send + Sync> = Box::new(first);
        assert!(find_in(wrapped.as_ref()).is_some());
    }

    #[tokio::test]
    async fn a_watched_stream_notes_its_stall() {
        let silent = futures::stream::pending::<Result<Bytes, std::io::Error>>();
        let (s, note) = watched(silent, Duration::from_millis(100));
        assert!(stall_of(&note).is_none());
        let mut s = Box::pin(s);
        assert!(s.next().await.unwrap().is_err());
        assert!(matches!(stall_of(&note), Some(BodyError::Stalled { .. })));
    }
}

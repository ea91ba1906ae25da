//! Why a build did not succeed, and the solve failures the provider acts on.

/// Why a build did not succeed, by stage: each variant names the endpoint (as
/// [`Endpoint`](super::Endpoint) displays it) so a multi-node build's error says which builder failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The spec cannot be sent (a context or Dockerfile that cannot be read, a bad entry).
    #[error("invalid build input: {0}")]
    Invalid(String),
    /// BuildKit could not be reached; `detail` carries the cause and any hint.
    #[error("cannot connect to BuildKit ({endpoint}): {detail}")]
    Connect {
        /// The builder, described.
        endpoint: String,
        /// The cause, with a hint when the failure is a known one.
        detail: String,
    },
    /// BuildKit was reached but the session it calls back into could not be opened.
    #[error("cannot open a BuildKit session with {endpoint}: {detail}")]
    Session {
        /// The builder, described.
        endpoint: String,
        /// The cause.
        detail: String,
    },
    /// The solve ran and failed (a step, a pull, a push).
    #[error("build failed on {endpoint}: {message}{}", failure_suffix(.step, .log_tail))]
    Solve {
        /// The builder, described.
        endpoint: String,
        /// What the provider makes of it, classified once where BuildKit answers.
        kind: SolveFailure,
        /// BuildKit's message.
        message: String,
        /// The step that failed, as BuildKit names it.
        step: Option<String>,
        /// Its last lines of output.
        log_tail: Vec<String>,
    },
    /// The connection to BuildKit broke during the solve (the node went away): nothing
    /// was tagged by this build, and running it again elsewhere is safe.
    #[error("lost the connection to BuildKit ({endpoint}) during the build: {detail}")]
    Lost {
        /// The builder, described.
        endpoint: String,
        /// How the connection failed.
        detail: String,
    },
    /// The caller's cancellation token fired (the engine's Cancel); the solve was stopped.
    #[error("build on {endpoint} was cancelled")]
    Cancelled {
        /// The builder, described.
        endpoint: String,
    },
    /// BuildKit answered something this client does not understand.
    #[error("unexpected answer from BuildKit ({endpoint}): {detail}")]
    Protocol {
        /// The builder, described.
        endpoint: String,
        /// What was wrong with the answer.
        detail: String,
    },
}

impl BuildError {
    /// The build never reached a working node (no connection, no session) or lost it
    /// mid-solve: another node of a pool may take it.
    pub fn node_unusable(&self) -> bool {
        matches!(
            self,
            BuildError::Connect { .. } | BuildError::Session { .. } | BuildError::Lost { .. }
        )
    }
}

/// A solve that failed because the connection went away, not because the build did:
/// BuildKit says `Unavailable`, or the status carries a transport error (the h2 connection
/// broke) rather than BuildKit's own answer.
pub(super) fn lost(status: &tonic::Status) -> bool {
    if status.code() == tonic::Code::Unavailable {
        return true;
    }
    let mut src = std::error::Error::source(status);
    while let Some(e) = src {
        if e.is::<tonic::transport::Error>() || e.is::<hyper::Error>() || e.is::<std::io::Error>() {
            return true;
        }
        src = e.source();
    }
    false
}

/// The solve failures the provider acts on, told apart where BuildKit's answer arrives so
/// callers match a kind, not words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SolveFailure {
    /// A base image has no manifest for one of the requested platforms.
    PlatformMissing,
    /// Anything else: a failed step, a registry refusal, a bad Dockerfile.
    Other,
}

impl SolveFailure {
    /// BuildKit reports a missing platform only in its message (containerd's platform
    /// matcher has no error code), so this is the one place that reads the words.
    pub(super) fn of(message: &str) -> SolveFailure {
        if message.contains("no match for platform in manifest") {
            SolveFailure::PlatformMissing
        } else {
            SolveFailure::Other
        }
    }
}

fn failure_suffix(step: &Option<String>, tail: &[String]) -> String {
    let mut s = String::new();
    if let Some(step) = step {
        s.push_str(&format!("\nfailed step: {step}"));
    }
    if !tail.is_empty() {
        s.push_str(&format!("\nlast {} lines of its output:", tail.len()));
        for l in tail {
            s.push_str("\n  ");
            s.push_str(l);
        }
    }
    s
}

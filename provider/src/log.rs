//! Where operations report to: the engine (through a front) or stderr.

use tracing_subscriber::EnvFilter;

/// A message's severity, as both engines rank them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Detail shown only with verbose logging.
    Debug,
    /// Progress the user sees by default.
    Info,
    /// Something the user should act on; the operation goes on.
    Warning,
    /// A failure, reported before the operation's error.
    Error,
}

/// Where an operation reports progress, so the build and registry code need not know
/// which front (or none) is attached.
pub trait Logger: Send + Sync {
    /// A message that stays in the log.
    fn log(&self, level: Level, message: &str);
    /// A transient progress line (Pulumi shows it in place, then drops it).
    fn status(&self, message: &str);

    /// [`Level::Info`] shorthand.
    fn info(&self, message: &str) {
        self.log(Level::Info, message)
    }
    /// [`Level::Warning`] shorthand.
    fn warn(&self, message: &str) {
        self.log(Level::Warning, message)
    }
}

/// Logs through `tracing` to stderr; used where no engine is attached.
pub struct StderrLogger;

impl Logger for StderrLogger {
    fn log(&self, level: Level, message: &str) {
        match level {
            Level::Debug => tracing::debug!("{message}"),
            Level::Info => tracing::info!("{message}"),
            Level::Warning => tracing::warn!("{message}"),
            Level::Error => tracing::error!("{message}"),
        }
    }
    fn status(&self, message: &str) {
        tracing::debug!("{message}")
    }
}

/// The tracing filter for a verbosity (`-v=N`) and an optional `MULTIARCH_LOG` directive.
///
/// Only this crate goes below `info`: the HTTP, TLS, gRPC and AWS SDK libraries print request
/// and response headers and bodies at `debug`/`trace` (the GetAuthorizationToken answer
/// holds the registry password in base64), so they are capped at `info` whatever the
/// verbosity or the directive asks for.
pub fn filter(verbosity: u8, terraform: bool, directive: Option<&str>) -> EnvFilter {
    let level = match verbosity {
        0 if terraform => "info",
        0 => "warn",
        1..=3 => "info",
        4..=8 => "debug",
        _ => "trace",
    };
    let third_party = if level == "warn" { "warn" } else { "info" };
    let mut f = directive
        .and_then(|d| EnvFilter::try_new(d).ok())
        .unwrap_or_else(|| EnvFilter::new(format!("{third_party},multiarch={level}")));
    for target in LEAKY_TARGETS {
        if let Ok(d) = format!("{target}={third_party}").parse() {
            f = f.add_directive(d);
        }
    }
    f
}

/// Libraries that log wire contents below `info`.
const LEAKY_TARGETS: &[&str] = &[
    "aws_config",
    "aws_credential_types",
    "aws_runtime",
    "aws_sdk_ecr",
    "aws_sigv4",
    "aws_smithy_http",
    "aws_smithy_http_client",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_types",
    "h2",
    "hyper",
    "hyper_util",
    "oci_client",
    "reqwest",
    "rustls",
    "tokio_rustls",
    "tonic",
    "tower",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_never_go_below_info() {
        for directive in [None, Some("trace"), Some("aws_smithy_runtime=trace,trace")] {
            let f = filter(9, false, directive).to_string();
            assert!(f.contains("aws_smithy_runtime=info"), "{f}");
            assert!(f.contains("hyper=info"), "{f}");
        }
        let f = filter(9, false, None).to_string();
        assert!(f.contains("multiarch=trace"), "{f}");
        assert!(filter(0, false, None)
            .to_string()
            .contains("multiarch=warn"));
    }
}

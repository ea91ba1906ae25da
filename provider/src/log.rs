//! Where operations report to: the engine (through a front) or stderr.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warning,
    Error,
}

pub trait Logger: Send + Sync {
    fn log(&self, level: Level, message: &str);
    /// A transient progress line (Pulumi shows it in place, then drops it).
    fn status(&self, message: &str);

    fn info(&self, message: &str) {
        self.log(Level::Info, message)
    }
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

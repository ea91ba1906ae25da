//! The engine's Log service: diagnostics and ephemeral status lines, attached to a URN.

use std::sync::{Arc, OnceLock};

use pulumi_gestalt_proto::pulumi::pulumirpc::{
    engine_client::EngineClient, LogRequest, LogSeverity,
};
use tokio::sync::mpsc;

use crate::log::{Level, Logger};

/// A connection to the engine's Log service. Messages go through a queue so that logging
/// never blocks an operation; if the engine is unreachable they go to stderr.
#[derive(Clone, Default)]
pub struct Engine {
    tx: Arc<OnceLock<mpsc::UnboundedSender<LogRequest>>>,
}

impl Engine {
    /// Connects (once) to the engine at `address` (`host:port`).
    pub fn connect(&self, address: &str) {
        if address.is_empty() || self.tx.get().is_some() {
            return;
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<LogRequest>();
        if self.tx.set(tx).is_err() {
            return;
        }
        let endpoint = format!("http://{address}");
        tokio::spawn(async move {
            let mut client = match EngineClient::connect(endpoint.clone()).await {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!("cannot reach the engine at {endpoint}: {e}");
                    None
                }
            };
            while let Some(req) = rx.recv().await {
                let sent = match client.as_mut() {
                    Some(c) => c.log(req.clone()).await.is_ok(),
                    None => false,
                };
                if !sent {
                    tracing::info!("{}", req.message);
                }
            }
        });
    }

    /// A logger for one resource.
    pub fn logger(&self, urn: &str) -> Arc<dyn Logger> {
        Arc::new(UrnLogger {
            engine: self.clone(),
            urn: urn.to_owned(),
        })
    }

    fn send(&self, severity: LogSeverity, message: &str, urn: &str, ephemeral: bool) {
        let req = LogRequest {
            severity: severity as i32,
            message: message.to_owned(),
            urn: urn.to_owned(),
            stream_id: 0,
            ephemeral,
        };
        match self.tx.get() {
            Some(tx) if tx.send(req).is_ok() => {}
            _ => tracing::info!("{message}"),
        }
    }
}

struct UrnLogger {
    engine: Engine,
    urn: String,
}

impl Logger for UrnLogger {
    fn log(&self, level: Level, message: &str) {
        let severity = match level {
            Level::Debug => LogSeverity::Debug,
            Level::Info => LogSeverity::Info,
            Level::Warning => LogSeverity::Warning,
            Level::Error => LogSeverity::Error,
        };
        self.engine.send(severity, message, &self.urn, false);
    }

    fn status(&self, message: &str) {
        self.engine
            .send(LogSeverity::Info, message, &self.urn, true);
    }
}

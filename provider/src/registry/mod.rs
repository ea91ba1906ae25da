//! Registry operations on oci-client, with per-registry credentials (static or ECR IAM).

use std::sync::Arc;

use crate::config::ProviderConfig;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "refusing to {operation} {reference}: nothing is written to a registry during preview"
    )]
    WriteInPreview {
        operation: &'static str,
        reference: String,
    },
    #[error("{operation} {reference}: {message}")]
    Failed {
        operation: &'static str,
        reference: String,
        message: String,
    },
}

/// Access to every registry the provider talks to. Cheap to clone.
#[derive(Clone)]
pub struct Registries {
    config: Arc<ProviderConfig>,
    read_only: bool,
}

impl Registries {
    pub fn new(config: ProviderConfig) -> Self {
        Registries {
            config: Arc::new(config),
            read_only: false,
        }
    }

    /// The same access with every write refused (preview).
    pub fn read_only(&self) -> Self {
        Registries {
            config: self.config.clone(),
            read_only: true,
        }
    }

    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }
}

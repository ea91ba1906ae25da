//! The BuildKit endpoint of the default node or of `builders[i]`, from the provider
//! configuration: the schema types become BuildKit's own, and failures are named by the
//! configuration's properties here (BuildKit names only the field).

use super::Failure;
use crate::buildkit::{Endpoint, TlsSettings};
use crate::config::{BuilderTlsConfig, ProviderConfig};

/// A build node: `None` is the default node (`builder`), `Some(i)` is `builders[i]`.
pub type Node = Option<usize>;

fn settings(tls: &BuilderTlsConfig) -> TlsSettings {
    TlsSettings {
        ca_cert: tls.ca_cert.clone(),
        cert: tls.cert.clone(),
        key: tls.key.clone(),
        server_name: tls.server_name.clone(),
    }
}

/// The endpoint of `node` (`None`: the default one, `builder`/`builderTls`), or what is wrong
/// with its settings, naming the property (`builders[1].tls.caCert`).
pub(crate) fn endpoint(config: &ProviderConfig, node: Node) -> Result<Endpoint, Failure> {
    let (builder, tls, names) = match node {
        None => (
            config.builder.as_deref(),
            config.builder_tls.as_ref(),
            ("builder".to_owned(), "builderTls".to_owned()),
        ),
        Some(i) => {
            let Some(n) = config.builders.get(i) else {
                return Err(Failure::new(format!("builders[{i}]"), "no such build node"));
            };
            (
                Some(n.endpoint.as_str()),
                n.tls.as_ref(),
                (
                    format!("builders[{i}].endpoint"),
                    format!("builders[{i}].tls"),
                ),
            )
        }
    };
    Endpoint::from_setting(builder, tls.map(settings).as_ref()).map_err(|e| {
        let (property, reason) = e.describe(&names.0, &names.1);
        Failure::new(property, reason)
    })
}

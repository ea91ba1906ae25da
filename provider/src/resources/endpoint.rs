//! The BuildKit endpoint of the default node or of one endpoint of `builders[i]`, from the
//! provider configuration: the schema types become BuildKit's own, and failures are named
//! by the configuration's properties here (BuildKit names only the field).

use super::Failure;
use crate::buildkit::{Endpoint, TlsSettings};
use crate::config::{BuilderNodeConfig, BuilderTlsConfig, ProviderConfig};

/// A build node: `None` is the default node (`builder`), `Some(i)` is the i-th pool of
/// `builders` endpoints (see [`super::pool::Pools`]; without shared platforms or several
/// `endpoints`, pool `i` is `builders[i]`).
pub type Node = Option<usize>;

fn settings(tls: &BuilderTlsConfig) -> TlsSettings {
    TlsSettings {
        ca_cert: tls.ca_cert.clone(),
        cert: tls.cert.clone(),
        key: tls.key.clone(),
        server_name: tls.server_name.clone(),
    }
}

/// The endpoint settings of one `builders` entry with the property each comes from:
/// `endpoint` alone, or each of `endpoints`.
pub(crate) fn entry_endpoints(i: usize, n: &BuilderNodeConfig) -> Vec<(String, &str)> {
    match &n.endpoint {
        Some(e) if n.endpoints.is_empty() => vec![(format!("builders[{i}].endpoint"), e.as_str())],
        _ => n
            .endpoints
            .iter()
            .enumerate()
            .map(|(j, e)| (format!("builders[{i}].endpoints[{j}]"), e.as_str()))
            .collect(),
    }
}

/// The default node's endpoint (`builder`/`builderTls`), or what is wrong with its
/// settings, naming the property.
pub(crate) fn default_endpoint(config: &ProviderConfig) -> Result<Endpoint, Failure> {
    parse(
        config.builder.as_deref(),
        config.builder_tls.as_ref(),
        "builder",
        "builderTls",
    )
}

/// Endpoint `j` of `builders[i]` (`j` indexes [`entry_endpoints`]), or what is wrong with
/// its settings, naming the property (`builders[1].endpoints[0]`, `builders[1].tls.caCert`).
pub(crate) fn member_endpoint(
    config: &ProviderConfig,
    i: usize,
    j: usize,
) -> Result<Endpoint, Failure> {
    let Some(n) = config.builders.get(i) else {
        return Err(Failure::new(format!("builders[{i}]"), "no such build node"));
    };
    let all = entry_endpoints(i, n);
    let Some((property, setting)) = all.get(j) else {
        return Err(Failure::new(
            format!("builders[{i}].endpoints"),
            "lists no endpoint; give endpoint or endpoints",
        ));
    };
    parse(
        Some(setting),
        n.tls.as_ref(),
        property,
        &format!("builders[{i}].tls"),
    )
}

fn parse(
    setting: Option<&str>,
    tls: Option<&BuilderTlsConfig>,
    name: &str,
    tls_name: &str,
) -> Result<Endpoint, Failure> {
    Endpoint::from_setting(setting, tls.map(settings).as_ref()).map_err(|e| {
        let (property, reason) = e.describe(name, tls_name);
        Failure::new(property, reason)
    })
}

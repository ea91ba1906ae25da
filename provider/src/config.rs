//! Provider configuration: registry credentials, the BuildKit endpoint, AWS settings.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::secret::SecretString;

/// Provider-wide settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderConfig {
    /// Registries to authenticate with. ECR hosts (`<account>.dkr.ecr.<region>.amazonaws.com`)
    /// need no entry: the provider fetches an IAM token through the AWS credential chain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registries: Vec<RegistryConfig>,
    /// BuildKit endpoint: `docker` (the Docker Engine the docker CLI would use: `DOCKER_HOST`
    /// (unix, tcp with `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH`, ssh), else the current Docker
    /// context, else the default socket; the default), `docker+unix:///path`,
    /// `docker+tcp://host:port`, `ssh://user@host`, or a standalone buildkitd at
    /// `unix:///path/buildkitd.sock` or `tcp://host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder: Option<String>,
    /// TLS for a `tcp://` builder (buildkitd started with `--tlscacert`, `--tlscert`,
    /// `--tlskey`). Without it a `tcp://` builder is spoken to in plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder_tls: Option<BuilderTlsConfig>,
    /// Build nodes, each building the platforms it lists (in parallel across nodes; the
    /// provider assembles the index). `builder`/`builderTls` stays the node for every
    /// platform no entry lists. A platform belongs to one node at most.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub builders: Vec<BuilderNodeConfig>,
    /// AWS settings for ECR token look-ups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsConfig>,
}

/// Credentials and transport settings for one registry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistryConfig {
    /// Registry host (and port), e.g. `ghcr.io` or `127.0.0.1:5000`.
    pub address: String,
    /// User name for static credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password or token for static credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-diff" = "ignore"))]
    pub password: Option<SecretString>,
    /// PEM-encoded CA certificate(s) to trust for this registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<String>,
    /// Talk plain HTTP to this registry (opt-in only; never the default).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// Authenticate with an ECR IAM token even though the host name is not an ECR one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecr: Option<EcrConfig>,
}

/// One build node: a BuildKit endpoint and the platforms it builds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BuilderNodeConfig {
    /// BuildKit endpoint, as `builder`: `docker`, `docker+unix:///path`, `unix:///path` or
    /// `tcp://host:port`.
    pub endpoint: String,
    /// Platforms this node builds, e.g. `linux/arm64`. Compared as a set.
    #[schemars(extend("x-set" = true))]
    pub platforms: Vec<String>,
    /// TLS for a `tcp://` endpoint, as `builderTls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<BuilderTlsConfig>,
}

/// TLS settings for a standalone buildkitd, as `buildctl --tlscacert --tlscert --tlskey
/// --tlsservername` takes them, but PEM contents rather than paths.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BuilderTlsConfig {
    /// PEM-encoded CA certificate(s) that sign buildkitd's certificate (default: the system's
    /// trusted roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<String>,
    /// PEM-encoded client certificate (chain), for a buildkitd that requires one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    /// PEM-encoded private key of `cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-diff" = "ignore"))]
    pub key: Option<SecretString>,
    /// Name to verify buildkitd's certificate against (default: the host of the address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

/// Settings for ECR IAM token look-ups for one registry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EcrConfig {
    /// AWS region of the registry (default: read from the host name, then the AWS chain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// ECR API endpoint override (default: `AWS_ENDPOINT_URL_ECR` or the public endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// AWS credential chain settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsConfig {
    /// Default region for ECR API calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Named profile from the shared AWS config files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

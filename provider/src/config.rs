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
    /// Hosts without credentials here use Docker's config (`credHelpers`, `credsStore`,
    /// `auths` from `docker login`), else anonymous access.
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
    /// platform no entry lists. An entry with several `endpoints`, or several entries listing
    /// the same platform, make a pool: each Image's platform goes to one healthy node of it,
    /// the same one for the same resource while the pool does not change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub builders: Vec<BuilderNodeConfig>,
    /// AWS settings for ECR token look-ups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsConfig>,
    /// Sign what Image and ManifestList push (the index and each platform manifest) in
    /// cosign's format, so `cosign verify --key <public key>` accepts them. Resources opt
    /// out with `sign: false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing: Option<SigningConfig>,
}

/// The key that signs pushed manifests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SigningConfig {
    /// PEM PKCS#8 ECDSA P-256 private key (`-----BEGIN PRIVATE KEY-----`, unencrypted), e.g.
    /// from `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`. Its public key
    /// (`openssl pkey -pubout`) is what `cosign verify --key` takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<SecretString>,
    /// AWS KMS key (id, ARN, `alias/…` or alias ARN) of spec `ECC_NIST_P256` and usage
    /// `SIGN_VERIFY`, instead of `key`: the provider calls `kms:GetPublicKey` and `kms:Sign`
    /// (`ECDSA_SHA_256`) with the AWS identity ECR tokens use; the key never leaves KMS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
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
    /// Authenticate with an ECR IAM token even though the host name is not an ECR one, or
    /// call the ECR API of another region or endpoint for this host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecr: Option<EcrConfig>,
    /// AWS identity for this host (an ECR host, `public.ecr.aws`, or a host with `ecr`): it
    /// replaces the provider's `aws` block as a whole for this host, e.g. a role in another
    /// account. Fields left out come from the environment, not from the provider's block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsConfig>,
}

/// One build node, or a pool of equivalent ones: BuildKit endpoints and the platforms they
/// build.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BuilderNodeConfig {
    /// BuildKit endpoint, as `builder`: `docker`, `docker+unix:///path`, `unix:///path` or
    /// `tcp://host:port`. Give `endpoint` or `endpoints`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// A pool of equivalent BuildKit endpoints for these platforms (each as `endpoint`, e.g.
    /// the per-pod DNS names of a buildkitd StatefulSet). Each Image goes to one of them,
    /// chosen by rendezvous hashing of the resource's URN (the context hash where there is
    /// none), so a rebuild reaches the same warm cache and removing a node moves only its
    /// share; a node that fails a short health probe, or whose connection fails before the
    /// solve starts, is passed over for the next one. Compared as a set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-set" = true))]
    pub endpoints: Vec<String>,
    /// Most solves at once on each endpoint of this entry, across every resource the
    /// provider builds; further builds wait for a slot (shown in progress). Default: no
    /// limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel_solves: Option<u32>,
    /// Platforms this node builds, e.g. `linux/arm64`. Compared as a set.
    #[schemars(extend("x-set" = true))]
    pub platforms: Vec<String>,
    /// TLS for `tcp://` endpoints, as `builderTls` (the same for every endpoint of the
    /// entry).
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

/// AWS identity for ECR token look-ups: the SDK's default credential chain (environment,
/// web identity, SSO, `credential_process`, container and instance roles), optionally with a
/// named profile, and optionally a role assumed from those credentials.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsConfig {
    /// Region for STS, and for ECR API calls to hosts whose name carries no region
    /// (default: `AWS_REGION`, then the registry host's region, then `us-east-1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Named profile from the shared AWS config files (default: `AWS_PROFILE`, then
    /// `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// A role to assume (STS `AssumeRole`) with the credentials of the chain, e.g. a
    /// deployer role, or a role in the account that owns the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assume_role: Option<AssumeRoleConfig>,
}

/// An IAM role assumed through STS `AssumeRole`; its credentials are kept in memory until
/// shortly before they expire.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssumeRoleConfig {
    /// ARN of the role, e.g. `arn:aws:iam::210987654321:role/ecr-push`.
    pub role_arn: String,
    /// Session name, shown in CloudTrail (default: `multiarch-<time>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
    /// External ID the role's trust policy requires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<SecretString>,
    /// Lifetime of the role's credentials in seconds, 900 to 43200 (default: 3600; the
    /// role's maximum session duration must allow it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u32>,
}

//! The protocol-neutral core: each resource is a pair of typed values (Inputs, State) and
//! six operations. The fronts (Pulumi gRPC, later Terraform) translate their wire formats to
//! and from these types through [`Dispatch`], written once.

pub mod cache;
mod endpoint;
pub mod image;
pub mod lookup;
pub mod manifest_list;
mod pool;
mod ports;
pub mod signing;
mod tags;
#[cfg(test)]
mod tests;
pub(crate) mod unsign;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{de::DeserializeOwned, Serialize};
use serde_json::{Map, Value as Json};
use tokio_util::sync::CancellationToken;

use crate::log::Logger;
use crate::model::{self, ObjectType, ResourceModel};
pub use crate::path::PropertyPath;
pub use ports::{Builder, Registry};

/// A reason an input is unacceptable, naming the property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub property: String,
    pub reason: String,
}

impl Failure {
    pub fn new(property: impl Into<String>, reason: impl Into<String>) -> Self {
        Failure {
            property: property.into(),
            reason: reason.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", .0.iter().map(|f| format!("{}: {}", f.property, f.reason)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Failure>),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    /// Something a setup cannot do (answered as UNIMPLEMENTED); nothing raises it today.
    #[allow(dead_code)]
    #[error("{0}")]
    Unsupported(String),
    #[error("operation cancelled")]
    Cancelled,
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn invalid(property: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid(vec![Failure::new(property, reason)])
    }
}

/// One property that differs between the recorded state and the new inputs: always an
/// update in place (nothing here is ever replaced; a new tag set is pushed, old tags removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
}

impl Change {
    pub fn update(path: impl Into<String>) -> Self {
        Change { path: path.into() }
    }
}

/// What an operation may touch and report to.
#[derive(Clone)]
pub struct OpContext {
    pub registry: Arc<dyn Registry>,
    pub builder: Arc<dyn Builder>,
    pub log: Arc<dyn Logger>,
    pub cancel: CancellationToken,
    /// Preview/plan: nothing may be written anywhere.
    pub preview: bool,
    /// The provider's `signing` block: what pushes are signed with.
    pub signing: Option<crate::signing::Signer>,
    /// The resource's URN where the front has one (Pulumi): the key that places its builds
    /// on the nodes of a pool (Terraform: the context hash).
    pub urn: Option<String>,
}

/// Created or updated state, and which of its outputs are not known yet (preview).
pub struct Applied<S> {
    pub id: String,
    pub state: S,
    pub unknown_outputs: UnknownOutputs,
}

/// A resource's documentation beyond what its schema says; the docs pages iterate
/// [`all`] and take each resource's own.
#[derive(Debug, Clone)]
pub struct ResourceDocs {
    /// Its examples: directories of docs/examples/ (one program per language), the first
    /// being the page's main example.
    pub examples: &'static [&'static str],
    /// How an import works (Markdown).
    pub import: String,
}

/// The part of a resource's Import section on `import` blocks, by id or by identity (the
/// tag, which is the resource's `id`); `extra` is what holds for that resource.
pub(crate) fn tf_import_blocks(address: &str, tag: &str, extra: &str) -> String {
    format!(
        "With Terraform 1.5 or OpenTofu 1.6 and later an `import` block does the same during \
plan and apply (`id = \"{tag}\"`), and with Terraform 1.12 or OpenTofu 1.12 and later by the \
resource's identity, the tag:\n\n```terraform\nimport {{\n  to = {address}\n  identity = {{\n    \
tag = \"{tag}\"\n  }}\n}}\n```\n\nThe identity (`tag`) is the resource's `id`.{extra}\n"
    )
}

/// Outputs a preview cannot know.
pub enum UnknownOutputs {
    None,
    /// Every output the resource's model declares.
    All,
    /// The outputs the resource's model declares unknown in preview (`x-preview`).
    Declared,
}

#[async_trait]
pub trait Resource: Send + Sync + 'static {
    /// Pulumi type token, e.g. `multiarch:index:ManifestList`.
    const TOKEN: &'static str;
    /// Terraform resource type name, e.g. `multiarch_manifest_list`.
    const TF_NAME: &'static str;

    type Inputs: Serialize + DeserializeOwned + JsonSchema + Clone + Send + Sync;
    type State: Serialize + DeserializeOwned + JsonSchema + Clone + Send + Sync;

    fn description() -> &'static str;

    /// The resource's documentation beyond its schema (examples, import).
    fn docs() -> ResourceDocs;

    /// Validation of known inputs. `unknown` holds the paths still unknown (preview), which
    /// must not be reported as missing.
    fn check(inputs: &Self::Inputs, unknown: &BTreeSet<PropertyPath>) -> Vec<Failure>;

    /// Inputs normalised for storage (sorted sets, canonical platform strings).
    fn normalize(inputs: Self::Inputs) -> Self::Inputs {
        inputs
    }

    /// The inputs a state was made from.
    fn inputs_of(state: &Self::State) -> &Self::Inputs;

    /// The complete list of changes, from `input_changes` (what the field model finds
    /// between the recorded and the new inputs): plus what the inputs do not show (the files
    /// of a build context, a source tag that moved), minus what is no real change (a source
    /// written differently that resolves to the same image).
    async fn review_changes(
        &self,
        ctx: &OpContext,
        id: &str,
        olds: &Self::State,
        news: &Self::Inputs,
        input_changes: Vec<Change>,
    ) -> Result<Vec<Change>, Error>;

    async fn create(
        &self,
        ctx: &OpContext,
        inputs: Self::Inputs,
    ) -> Result<Applied<Self::State>, Error>;

    /// `state` is None for an import by ID. Ok(None) means the resource is gone.
    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        state: Option<Self::State>,
    ) -> Result<Option<(String, Self::State)>, Error>;

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        olds: Self::State,
        news: Self::Inputs,
    ) -> Result<Applied<Self::State>, Error>;

    async fn delete(&self, ctx: &OpContext, id: &str, state: Self::State) -> Result<(), Error>;
}

/// Values crossing the protocol boundary: known JSON plus where the unknowns are.
#[derive(Debug, Clone, Default)]
pub struct Props {
    pub value: Map<String, Json>,
    pub unknowns: BTreeSet<PropertyPath>,
}

/// Outputs for the front to encode.
#[derive(Debug, Clone, Default)]
pub struct OutProps {
    pub id: String,
    pub value: Map<String, Json>,
    pub unknowns: BTreeSet<PropertyPath>,
}

pub enum DiffOutcome {
    NoChange,
    Changes(Vec<Change>),
}

/// Object-safe, JSON-level view of a resource, used by the fronts.
#[async_trait]
pub trait Dispatch: Send + Sync {
    fn model(&self) -> &ResourceModel;
    /// The resource's documentation beyond its schema.
    fn docs(&self) -> ResourceDocs;
    fn token(&self) -> &'static str {
        self.model().token
    }
    fn tf_name(&self) -> &'static str {
        self.model().tf_name
    }
    fn check(&self, news: &Props) -> Result<Map<String, Json>, Vec<Failure>>;
    async fn diff(
        &self,
        ctx: &OpContext,
        id: &str,
        olds: &Props,
        news: &Props,
    ) -> Result<DiffOutcome, Error>;
    async fn create(&self, ctx: &OpContext, news: &Props) -> Result<OutProps, Error>;
    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        state: Option<&Props>,
    ) -> Result<Option<OutProps>, Error>;
    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        olds: &Props,
        news: &Props,
    ) -> Result<OutProps, Error>;
    async fn delete(&self, ctx: &OpContext, id: &str, state: &Props) -> Result<(), Error>;
}

/// Decodes a typed value, naming the property path of the first mismatch.
pub fn decode<T: DeserializeOwned>(value: &Map<String, Json>) -> Result<T, Failure> {
    let json = Json::Object(value.clone());
    serde_path_to_error::deserialize::<_, T>(json).map_err(|e| {
        let path = e.path().to_string();
        let mut property = if path == "." { String::new() } else { path };
        let reason = e.into_inner().to_string();
        // serde names a missing field in the message; the property is that field.
        if let Some(field) = reason
            .strip_prefix("missing field `")
            .and_then(|r| r.split('`').next())
        {
            property = if property.is_empty() {
                field.to_owned()
            } else {
                format!("{property}.{field}")
            };
        }
        Failure::new(property, reason)
    })
}

/// The provider configuration in `value`, checked beyond its shape where the builder is
/// set: an unusable `builder` or `builderTls` fails at configuration time, not at the
/// first build. (An unset builder is the local Engine, whatever `DOCKER_HOST` says then.)
/// Entries that still hold an unknown (`unknowns`, during preview) are not checked for
/// consistency: a password that comes from another resource is simply not there yet.
pub fn decode_config(
    value: &Map<String, Json>,
    unknowns: &BTreeSet<PropertyPath>,
) -> Result<crate::config::ProviderConfig, Failure> {
    let config: crate::config::ProviderConfig = decode(value)?;
    let registries = PropertyPath::root_key("registries");
    for (i, r) in config.registries.iter().enumerate() {
        let entry = registries.index(i);
        if unknowns.iter().any(|u| u.starts_with(&entry)) {
            continue;
        }
        check_registry(r)
            .map_err(|(field, reason)| Failure::new(format!("registries[{i}]{field}"), reason))?;
        crate::ecr::check::registry(r)
            .map_err(|(field, reason)| Failure::new(format!("registries[{i}]{field}"), reason))?;
        if let Some(j) = config.registries[..i]
            .iter()
            .position(|o| crate::registry::same_host(&o.address, &r.address))
        {
            return Err(Failure::new(
                format!("registries[{i}].address"),
                format!("{:?} is already configured in registries[{j}]", r.address),
            ));
        }
    }
    if let Some(aws) = config.aws.as_ref().filter(|_| {
        !unknowns
            .iter()
            .any(|u| u.starts_with(&PropertyPath::root_key("aws")))
    }) {
        crate::ecr::check::aws(aws)
            .map_err(|(field, reason)| Failure::new(format!("aws{field}"), reason))?;
    }
    if config.builder.is_some() || config.builder_tls.is_some() {
        endpoint::default_endpoint(&config)?;
    }
    check_builders(&config, unknowns)?;
    if let Some(signing) = config.signing.as_ref().filter(|_| {
        !unknowns
            .iter()
            .any(|u| u.starts_with(&PropertyPath::root_key("signing")))
    }) {
        crate::signing::check(signing)
            .map_err(|(field, reason)| Failure::new(format!("signing{field}"), reason))?;
    }
    Ok(config)
}

/// Each `builders` entry: one or more usable endpoints (and TLS), no endpoint twice, a
/// limit of at least one solve, at least one platform, each platform valid and listed once
/// by the entry. Entries may share platforms (a pool).
fn check_builders(
    config: &crate::config::ProviderConfig,
    unknowns: &BTreeSet<PropertyPath>,
) -> Result<(), Failure> {
    let builders = PropertyPath::root_key("builders");
    for (i, node) in config.builders.iter().enumerate() {
        let entry = builders.index(i);
        if unknowns.iter().any(|u| u.starts_with(&entry)) {
            continue;
        }
        check_endpoints(config, i, node)?;
        if node.max_parallel_solves == Some(0) {
            return Err(Failure::new(
                format!("builders[{i}].maxParallelSolves"),
                "is 0; give at least 1 (or leave it out for no limit)",
            ));
        }
        if node.platforms.is_empty() {
            return Err(Failure::new(
                format!("builders[{i}].platforms"),
                "lists no platform; a node builds the platforms it lists (the default node is builder)",
            ));
        }
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for (j, p) in node.platforms.iter().enumerate() {
            let at = format!("builders[{i}].platforms[{j}]");
            let n = crate::platform::normalize(p).map_err(|e| Failure::new(&at, e.to_string()))?;
            if let Some(oj) = seen.insert(n.clone(), j) {
                return Err(Failure::new(
                    at,
                    format!("{n} is already listed as builders[{i}].platforms[{oj}]"),
                ));
            }
        }
    }
    Ok(())
}

/// `endpoint` or a non-empty `endpoints` (not both), each usable and none twice.
fn check_endpoints(
    config: &crate::config::ProviderConfig,
    i: usize,
    node: &crate::config::BuilderNodeConfig,
) -> Result<(), Failure> {
    match (&node.endpoint, node.endpoints.is_empty()) {
        (Some(_), false) => {
            return Err(Failure::new(
                format!("builders[{i}].endpoints"),
                "is set beside endpoint; give endpoint (one node) or endpoints (a pool), not both",
            ))
        }
        (None, true) => {
            return Err(Failure::new(
                format!("builders[{i}].endpoints"),
                "lists no endpoint; give endpoint (one node) or endpoints (a pool)",
            ))
        }
        _ => {}
    }
    let all = endpoint::entry_endpoints(i, node);
    for (j, (property, setting)) in all.iter().enumerate() {
        endpoint::member_endpoint(config, i, j)?;
        if let Some((first, _)) = all[..j].iter().find(|(_, s)| s.trim() == setting.trim()) {
            return Err(Failure::new(
                property,
                format!("{setting:?} is already listed as {first}; each endpoint once"),
            ));
        }
    }
    Ok(())
}

/// One registry entry's own consistency: the failing field (`.address`, …) and why.
fn check_registry(r: &crate::config::RegistryConfig) -> Result<(), (&'static str, String)> {
    let host = r.address.trim();
    if host.is_empty() {
        return Err((
            ".address",
            "is empty; give the registry host, e.g. ghcr.io".into(),
        ));
    }
    if host.contains(|c: char| c.is_whitespace() || c == '@') {
        return Err((
            ".address",
            format!("{:?} is not a registry host[:port]", r.address),
        ));
    }
    match (&r.username, &r.password) {
        (None, Some(_)) => {
            return Err((".username", "is required when password is set".into()));
        }
        (Some(_), None) if r.ecr.is_none() => {
            return Err((".password", "is required when username is set".into()));
        }
        _ => {}
    }
    if let Some(pem) = &r.ca_cert {
        use rustls_pki_types::pem::PemObject;
        let certs: Result<Vec<_>, _> =
            rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
        let certs = match certs {
            Ok(c) if !c.is_empty() => c,
            Ok(_) => return Err((".caCert", "holds no PEM certificate".into())),
            Err(e) => return Err((".caCert", format!("is not valid PEM: {e}"))),
        };
        // Parsed as the TLS client will take it (a trust anchor), so a PEM block holding
        // garbage is refused here, naming the property, not at Configure.
        for (i, c) in certs.iter().enumerate() {
            if let Err(e) = webpki::anchor_from_trusted_cert(c) {
                return Err((
                    ".caCert",
                    format!(
                        "certificate {} is not a valid X.509 certificate: {e}",
                        i + 1
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The wire form of a typed value. Secrets are written in plain text here only: the fronts
/// mark them secret (or sensitive) from the model before anything leaves the process.
fn to_map<T: Serialize>(v: &T) -> Result<Map<String, Json>, Error> {
    match crate::secret::reveal(|| serde_json::to_value(v)) {
        Ok(Json::Object(m)) => Ok(m),
        Ok(_) => Err(Error::Other("state did not serialize to an object".into())),
        Err(e) => Err(Error::Other(format!("serializing state: {e}"))),
    }
}

/// Inputs that still hold unknowns cannot be typed: changed properties are those whose
/// value is unknown or differs as JSON.
fn untyped_changes(olds: &Props, news: &Props) -> Vec<Change> {
    let mut roots: BTreeSet<String> = news
        .unknowns
        .iter()
        .filter_map(|p| p.root().map(str::to_owned))
        .collect();
    for (k, v) in &news.value {
        if olds.value.get(k) != Some(v) {
            roots.insert(k.clone());
        }
    }
    roots.into_iter().map(Change::update).collect()
}

/// A resource with its model: the one place a resource type is registered ([`all`]).
pub struct Handler<R: Resource> {
    resource: R,
    model: ResourceModel,
}

impl<R: Resource> Handler<R> {
    pub fn new(resource: R) -> Self {
        Handler {
            resource,
            model: ResourceModel::new::<R::Inputs, R::State>(
                R::TOKEN,
                R::TF_NAME,
                R::description(),
            ),
        }
    }

    fn out(
        &self,
        applied: Applied<R::State>,
        input_unknowns: &BTreeSet<PropertyPath>,
    ) -> Result<OutProps, Error> {
        let mut unknowns = input_unknowns.clone();
        match applied.unknown_outputs {
            UnknownOutputs::None => {}
            UnknownOutputs::All => {
                unknowns.extend(self.model.output_keys().map(PropertyPath::root_key))
            }
            UnknownOutputs::Declared => unknowns.extend(
                self.model
                    .outputs
                    .iter()
                    .filter(|f| f.preview_unknown)
                    .map(|f| PropertyPath::root_key(&f.key)),
            ),
        }
        Ok(OutProps {
            id: applied.id,
            value: to_map(&applied.state)?,
            unknowns,
        })
    }

    /// Preview with unknown inputs: what is known echoed back, every output unknown.
    fn echo(&self, id: &str, news: &Props) -> OutProps {
        let mut unknowns = news.unknowns.clone();
        unknowns.extend(self.model.output_keys().map(PropertyPath::root_key));
        OutProps {
            id: id.to_owned(),
            value: news.value.clone(),
            unknowns,
        }
    }

    /// Known inputs, decoded, checked and normalized.
    fn checked(news: &Props) -> Result<R::Inputs, Error> {
        let inputs: R::Inputs = decode(&news.value).map_err(|f| Error::Invalid(vec![f]))?;
        let failures = R::check(&inputs, &BTreeSet::new());
        if !failures.is_empty() {
            return Err(Error::Invalid(failures));
        }
        Ok(R::normalize(inputs))
    }
}

fn decode_state<S: DeserializeOwned>(p: &Props) -> Result<S, Error> {
    decode(&p.value).map_err(|f| Error::Invalid(vec![f]))
}

#[async_trait]
impl<R: Resource> Dispatch for Handler<R> {
    fn docs(&self) -> ResourceDocs {
        R::docs()
    }

    fn model(&self) -> &ResourceModel {
        &self.model
    }

    fn check(&self, news: &Props) -> Result<Map<String, Json>, Vec<Failure>> {
        match decode::<R::Inputs>(&news.value) {
            Ok(inputs) => {
                let failures = R::check(&inputs, &news.unknowns);
                if !failures.is_empty() {
                    return Err(failures);
                }
                if news.unknowns.is_empty() {
                    to_map(&R::normalize(inputs)).map_err(|e| vec![Failure::new("", e.to_string())])
                } else {
                    Ok(news.value.clone())
                }
            }
            // A required value may simply not be known yet.
            Err(_) if !news.unknowns.is_empty() => Ok(news.value.clone()),
            Err(f) => Err(vec![f]),
        }
    }

    async fn diff(
        &self,
        ctx: &OpContext,
        id: &str,
        olds: &Props,
        news: &Props,
    ) -> Result<DiffOutcome, Error> {
        let changes = if news.unknowns.is_empty() {
            let olds_t: R::State = decode_state(olds)?;
            let news_t: R::Inputs = R::normalize(decode_state(news)?);
            let recorded = to_map(&R::normalize(R::inputs_of(&olds_t).clone()))?;
            let input_changes: Vec<Change> =
                model::changes(&self.model.inputs, &recorded, &to_map(&news_t)?)
                    .into_iter()
                    .map(Change::update)
                    .collect();
            self.resource
                .review_changes(ctx, id, &olds_t, &news_t, input_changes)
                .await?
        } else {
            untyped_changes(olds, news)
        };
        Ok(if changes.is_empty() {
            DiffOutcome::NoChange
        } else {
            DiffOutcome::Changes(changes)
        })
    }

    async fn create(&self, ctx: &OpContext, news: &Props) -> Result<OutProps, Error> {
        if !news.unknowns.is_empty() {
            return Ok(self.echo("", news));
        }
        let applied = self.resource.create(ctx, Self::checked(news)?).await?;
        self.out(applied, &news.unknowns)
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        state: Option<&Props>,
    ) -> Result<Option<OutProps>, Error> {
        let state = match state {
            Some(p) if !p.value.is_empty() => Some(decode_state::<R::State>(p)?),
            _ => None,
        };
        match self.resource.read(ctx, id, state).await? {
            None => Ok(None),
            Some((id, s)) => Ok(Some(OutProps {
                id,
                value: to_map(&s)?,
                unknowns: BTreeSet::new(),
            })),
        }
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        olds: &Props,
        news: &Props,
    ) -> Result<OutProps, Error> {
        let olds_t: R::State = decode_state(olds)?;
        if !news.unknowns.is_empty() {
            return Ok(self.echo(id, news));
        }
        let applied = self
            .resource
            .update(ctx, id, olds_t, Self::checked(news)?)
            .await?;
        self.out(applied, &BTreeSet::new())
    }

    async fn delete(&self, ctx: &OpContext, id: &str, state: &Props) -> Result<(), Error> {
        self.resource.delete(ctx, id, decode_state(state)?).await
    }
}

/// Every resource this provider serves, registered here once: both fronts, the Pulumi
/// schema and the Terraform schema iterate this list.
pub fn all() -> &'static [Arc<dyn Dispatch>] {
    static ALL: LazyLock<Vec<Arc<dyn Dispatch>>> = LazyLock::new(|| {
        vec![
            Arc::new(Handler::new(image::Image)),
            Arc::new(Handler::new(manifest_list::ManifestList)),
        ]
    });
    &ALL
}

/// Every function this provider serves (Pulumi invokes, Terraform data sources), registered
/// here once, as [`all`] registers the resources.
pub fn functions() -> &'static [Arc<dyn lookup::Function>] {
    static FUNCTIONS: LazyLock<Vec<Arc<dyn lookup::Function>>> =
        LazyLock::new(|| vec![Arc::new(lookup::GetImage::new())]);
    &FUNCTIONS
}

/// The input keys of resource `R` whose values differ between `olds` and `news`, as the
/// model compares them (sets as sets, ignored fields never).
pub(crate) fn changed_inputs<R: Resource>(olds: &R::Inputs, news: &R::Inputs) -> Vec<String> {
    let model = all()
        .iter()
        .find(|d| d.token() == R::TOKEN)
        .expect("every resource is registered in all()")
        .model();
    match (to_map(olds), to_map(news)) {
        (Ok(a), Ok(b)) => model::changes(&model.inputs, &a, &b),
        // Unserializable inputs cannot happen for these types; count everything as changed.
        _ => model.inputs.iter().map(|f| f.key.clone()).collect(),
    }
}

/// The provider configuration's model.
pub fn config_model() -> &'static ObjectType {
    static CONFIG: LazyLock<ObjectType> =
        LazyLock::new(model::object_model::<crate::config::ProviderConfig>);
    &CONFIG
}

/// The configuration keys whose values differ between the old and the new configuration in
/// what counts: decoded (so defaults compare equal), with the fields declared
/// `x-diff = "ignore"` (passwords: ECR tokens change on every run) left out; a key still
/// unknown counts as changed. Empty: no change.
pub fn config_changes(olds: &Props, news: &Props) -> Vec<String> {
    let canonical = |p: &Props| -> Map<String, Json> {
        let m = p.value.clone();
        match decode_config(&m, &p.unknowns)
            .map_err(|_| ())
            .and_then(|c| to_map(&c).map_err(|_| ()))
        {
            Ok(c) => c,
            Err(()) => m,
        }
    };
    let mut keys: BTreeSet<String> = news
        .unknowns
        .iter()
        .filter_map(|p| p.root().map(str::to_owned))
        .collect();
    keys.extend(model::changes(
        &config_model().fields,
        &canonical(olds),
        &canonical(news),
    ));
    keys.into_iter().collect()
}

/// Whether the configuration changed at all (see [`config_changes`]).
#[cfg(test)]
pub fn config_changed(olds: &Props, news: &Props) -> bool {
    !config_changes(olds, news).is_empty()
}

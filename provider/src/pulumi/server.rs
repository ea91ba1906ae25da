//! The `ResourceProvider` gRPC service: wire values in, typed resources, wire values out.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, RwLock};

use prost_types::Struct;
use pulumi_gestalt_proto::pulumi::pulumirpc as rpc;
use rpc::resource_provider_server::ResourceProvider;
use serde_json::{Map, Value as Json};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::engine::Engine;
use super::value::{self, Decoded};
use crate::config::ProviderConfig;
use crate::model::Field;
use crate::registry::Registries;
use crate::resources::{
    self, DiffOutcome, Dispatch, Error, OpContext, OutProps, PropertyPath, Props,
};

/// One resource type and the fields of its state (inputs and outputs), whose secrets are
/// wrapped when encoding its values.
struct TypeInfo {
    resource: Arc<dyn Dispatch>,
    state_fields: Vec<Field>,
    input_names: BTreeSet<String>,
}

pub struct Provider {
    types: BTreeMap<&'static str, TypeInfo>,
    schema: String,
    engine: Engine,
    registries: RwLock<Registries>,
    cancel: CancellationToken,
}

impl Provider {
    pub fn new(engine: Engine) -> Self {
        let types = resources::all()
            .iter()
            .map(|r| {
                let info = TypeInfo {
                    state_fields: r.model().state_fields().cloned().collect(),
                    input_names: r.model().inputs.iter().map(|f| f.key.clone()).collect(),
                    resource: r.clone(),
                };
                (info.resource.token(), info)
            })
            .collect();
        Provider {
            types,
            schema: crate::schema::package_schema_text(),
            engine,
            registries: RwLock::new(Registries::unconfigured()),
            cancel: CancellationToken::new(),
        }
    }

    fn info(&self, urn_or_type: &str, ty: &str) -> Result<&TypeInfo, Status> {
        let token = if ty.is_empty() {
            type_of_urn(urn_or_type)
        } else {
            ty
        };
        self.types
            .get(token)
            .ok_or_else(|| Status::invalid_argument(format!("unknown resource type {token:?}")))
    }

    fn context(&self, urn: &str, preview: bool) -> OpContext {
        let registries = self.registries.read().expect("registries lock").clone();
        OpContext::live(
            registries,
            self.engine.logger(urn),
            self.cancel.child_token(),
            preview,
            Some(urn.to_owned()).filter(|u| !u.is_empty()),
        )
    }

    /// Runs an operation unless Cancel arrives first.
    async fn run<T>(&self, f: impl Future<Output = Result<T, Error>>) -> Result<T, Status> {
        // Cancellation wins over a result that is ready at the same time.
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(Status::cancelled("operation cancelled by the engine")),
            r = f => r.map_err(status_of),
        }
    }

    fn encode_out(
        &self,
        info: &TypeInfo,
        out: &OutProps,
        input_secrets: &BTreeSet<PropertyPath>,
    ) -> Struct {
        value::encode(
            &out.value,
            &out.unknowns,
            input_secrets,
            Some(&info.state_fields),
        )
    }
}

/// `urn:pulumi:stack::project::multiarch:index:Image::name` -> `multiarch:index:Image`.
fn type_of_urn(urn: &str) -> &str {
    let parts: Vec<&str> = urn.split("::").collect();
    match parts.len() {
        n if n >= 4 => parts[n - 2].rsplit('$').next().unwrap_or(""),
        _ => "",
    }
}

fn status_of(e: Error) -> Status {
    match &e {
        Error::Invalid(_) => Status::invalid_argument(e.to_string()),
        Error::Unsupported(_) => Status::unimplemented(e.to_string()),
        Error::Cancelled => Status::cancelled(e.to_string()),
        _ => Status::unknown(e.to_string()),
    }
}

/// Engine-private keys (`__defaults`, `__internal`, …) are passed back untouched and never
/// shown to a resource.
/// Secrets the engine sent are kept secret by their top-level property (normalization may
/// reorder what is inside); the schema's own secrets are found at any depth when encoding.
fn split_private(mut d: Decoded) -> (Props, Map<String, Json>, BTreeSet<PropertyPath>) {
    let private: Vec<String> = d
        .value
        .keys()
        .filter(|k| k.starts_with("__"))
        .cloned()
        .collect();
    let mut kept = Map::new();
    for k in private {
        if let Some(v) = d.value.remove(&k) {
            kept.insert(k, v);
        }
    }
    let secrets = d
        .secret_roots()
        .iter()
        .filter(|r| !r.starts_with("__"))
        .map(|r| PropertyPath::root_key(r))
        .collect();
    (
        Props {
            value: d.value,
            unknowns: d.unknowns,
        },
        kept,
        secrets,
    )
}

/// Keys the Pulumi engine adds to a provider's inputs that are no configuration: removed
/// here, the one place, before anything reads the configuration.
const PROTOCOL_KEYS: &[&str] = &["version", "pluginDownloadURL"];

fn strip_protocol_keys(map: &mut Map<String, Json>) {
    for k in PROTOCOL_KEYS {
        map.remove(*k);
    }
}

fn decode(s: Option<&Struct>) -> (Props, Map<String, Json>, BTreeSet<PropertyPath>) {
    split_private(value::decode(s))
}

fn config_from(req: &rpc::ConfigureRequest) -> Result<ProviderConfig, Status> {
    let (mut map, unknowns) = match &req.args {
        Some(args) => {
            let props = split_private(value::decode(Some(args))).0;
            (props.value, props.unknowns)
        }
        None => (Map::new(), BTreeSet::new()),
    };
    if req.args.is_none() {
        // Older engines send `multiarch:config:key` strings; structured values as JSON text.
        for (k, v) in &req.variables {
            let key = k.rsplit(':').next().unwrap_or(k);
            let parsed =
                serde_json::from_str::<Json>(v).unwrap_or_else(|_| Json::String(v.clone()));
            map.insert(key.to_owned(), parsed);
        }
    }
    strip_protocol_keys(&mut map);
    resources::decode_config(&map, &unknowns).map_err(|f| {
        Status::invalid_argument(format!(
            "provider configuration {}: {}",
            f.property, f.reason
        ))
    })
}

fn diff_response(outcome: DiffOutcome) -> rpc::DiffResponse {
    use rpc::diff_response::DiffChanges;
    use rpc::property_diff::Kind;
    match outcome {
        DiffOutcome::NoChange => rpc::DiffResponse {
            changes: DiffChanges::DiffNone as i32,
            has_detailed_diff: true,
            ..Default::default()
        },
        DiffOutcome::Changes(changes) => {
            let mut detailed = HashMap::new();
            let mut diffs = BTreeSet::new();
            for c in changes {
                let root = c
                    .path
                    .split(['.', '['])
                    .next()
                    .unwrap_or(&c.path)
                    .to_owned();
                diffs.insert(root);
                detailed.insert(
                    c.path,
                    rpc::PropertyDiff {
                        kind: Kind::Update as i32,
                        input_diff: true,
                    },
                );
            }
            rpc::DiffResponse {
                changes: DiffChanges::DiffSome as i32,
                diffs: diffs.into_iter().collect(),
                detailed_diff: detailed,
                has_detailed_diff: true,
                ..Default::default()
            }
        }
    }
}

fn with_private(mut s: Struct, private: &Map<String, Json>) -> Struct {
    for (k, v) in private {
        s.fields.insert(k.clone(), value::encode_value(v));
    }
    s
}

#[tonic::async_trait]
impl ResourceProvider for Provider {
    async fn handshake(
        &self,
        request: Request<rpc::ProviderHandshakeRequest>,
    ) -> Result<Response<rpc::ProviderHandshakeResponse>, Status> {
        self.engine.connect(&request.get_ref().engine_address);
        Ok(Response::new(rpc::ProviderHandshakeResponse {
            accept_secrets: true,
            accept_resources: true,
            accept_outputs: false,
            supports_autonaming_configuration: false,
        }))
    }

    async fn parameterize(
        &self,
        _: Request<rpc::ParameterizeRequest>,
    ) -> Result<Response<rpc::ParameterizeResponse>, Status> {
        Err(Status::unimplemented(
            "multiarch is not a parameterized provider",
        ))
    }

    async fn get_schema(
        &self,
        request: Request<rpc::GetSchemaRequest>,
    ) -> Result<Response<rpc::GetSchemaResponse>, Status> {
        if !request.get_ref().subpackage_name.is_empty() {
            return Err(Status::invalid_argument("multiarch has no sub-packages"));
        }
        Ok(Response::new(rpc::GetSchemaResponse {
            schema: self.schema.clone(),
        }))
    }

    async fn check_config(
        &self,
        request: Request<rpc::CheckRequest>,
    ) -> Result<Response<rpc::CheckResponse>, Status> {
        let req = request.into_inner();
        let (props, private, secrets) = decode(req.news.as_ref());
        let mut failures = Vec::new();
        if props.unknowns.is_empty() {
            let mut typed = props.value.clone();
            strip_protocol_keys(&mut typed);
            if let Err(f) = resources::decode_config(&typed, &BTreeSet::new()) {
                failures.push(rpc::CheckFailure {
                    property: f.property,
                    reason: f.reason,
                });
            }
        }
        let inputs = with_private(
            value::encode(
                &props.value,
                &props.unknowns,
                &secrets,
                Some(&resources::config_model().fields),
            ),
            &private,
        );
        Ok(Response::new(rpc::CheckResponse {
            inputs: Some(inputs),
            failures,
        }))
    }

    async fn diff_config(
        &self,
        request: Request<rpc::DiffRequest>,
    ) -> Result<Response<rpc::DiffResponse>, Status> {
        // Never a replacement: a provider replacement would replace every image (#404 of
        // the peers). Passwords are ignored: ECR tokens change on every run.
        let req = request.into_inner();
        let (mut olds, _, _) = decode(req.olds.as_ref());
        let (mut news, _, _) = decode(req.news.as_ref());
        strip_protocol_keys(&mut olds.value);
        strip_protocol_keys(&mut news.value);
        let changed = resources::config_changes(&olds, &news);
        let outcome = if changed.is_empty() {
            DiffOutcome::NoChange
        } else {
            DiffOutcome::Changes(changed.into_iter().map(resources::Change::update).collect())
        };
        let mut resp = diff_response(outcome);
        resp.detailed_diff.clear();
        resp.diffs.clear();
        resp.has_detailed_diff = false;
        Ok(Response::new(resp))
    }

    async fn configure(
        &self,
        request: Request<rpc::ConfigureRequest>,
    ) -> Result<Response<rpc::ConfigureResponse>, Status> {
        let config = config_from(request.get_ref())?;
        let registries = Registries::new(config)
            .map_err(|e| Status::invalid_argument(format!("provider configuration: {e}")))?;
        registries.warm_up();
        *self.registries.write().expect("registries lock") = registries;
        Ok(Response::new(rpc::ConfigureResponse {
            accept_secrets: true,
            supports_preview: true,
            accept_resources: true,
            accept_outputs: false,
            supports_autonaming_configuration: false,
        }))
    }

    async fn invoke(
        &self,
        request: Request<rpc::InvokeRequest>,
    ) -> Result<Response<rpc::InvokeResponse>, Status> {
        let req = request.into_inner();
        let f = resources::functions()
            .iter()
            .find(|f| f.model().token == req.tok)
            .ok_or_else(|| {
                Status::unimplemented(format!("multiarch has no function {:?}", req.tok))
            })?;
        let (args, _, _) = decode(req.args.as_ref());
        // Functions only read: the same read-only context in preview and in up.
        let ctx = self.context("", true);
        let failures = |fs: Vec<resources::Failure>| {
            Response::new(rpc::InvokeResponse {
                r#return: None,
                failures: fs
                    .into_iter()
                    .map(|f| rpc::CheckFailure {
                        property: f.property,
                        reason: f.reason,
                    })
                    .collect(),
            })
        };
        if !args.unknowns.is_empty() {
            return Err(Status::invalid_argument(format!(
                "{}: its arguments must be known (they are resolved before the call)",
                req.tok
            )));
        }
        let out = tokio::select! {
            biased;
            _ = self.cancel.cancelled() => return Err(Status::cancelled("operation cancelled by the engine")),
            r = f.invoke(&ctx, &args.value) => r,
        };
        match out {
            Ok(out) => Ok(Response::new(rpc::InvokeResponse {
                r#return: Some(value::encode(
                    &out,
                    &BTreeSet::new(),
                    &BTreeSet::new(),
                    Some(&f.model().outputs),
                )),
                failures: vec![],
            })),
            Err(Error::Invalid(fs)) => Ok(failures(fs)),
            Err(e) => Err(status_of(e)),
        }
    }

    async fn call(
        &self,
        r: Request<rpc::CallRequest>,
    ) -> Result<Response<rpc::CallResponse>, Status> {
        Err(Status::unimplemented(format!(
            "multiarch has no method {:?}",
            r.get_ref().tok
        )))
    }

    async fn check(
        &self,
        request: Request<rpc::CheckRequest>,
    ) -> Result<Response<rpc::CheckResponse>, Status> {
        let req = request.into_inner();
        let info = self.info(&req.urn, &req.r#type)?;
        let (props, private, secrets) = decode(req.news.as_ref());
        match info.resource.check(&props) {
            Ok(value) => {
                let inputs = with_private(
                    value::encode(&value, &props.unknowns, &secrets, Some(&info.state_fields)),
                    &private,
                );
                Ok(Response::new(rpc::CheckResponse {
                    inputs: Some(inputs),
                    failures: vec![],
                }))
            }
            Err(failures) => Ok(Response::new(rpc::CheckResponse {
                inputs: req.news,
                failures: failures
                    .into_iter()
                    .map(|f| rpc::CheckFailure {
                        property: f.property,
                        reason: f.reason,
                    })
                    .collect(),
            })),
        }
    }

    async fn diff(
        &self,
        request: Request<rpc::DiffRequest>,
    ) -> Result<Response<rpc::DiffResponse>, Status> {
        let req = request.into_inner();
        let info = self.info(&req.urn, &req.r#type)?;
        let (olds, _, _) = decode(req.olds.as_ref());
        let (news, _, _) = decode(req.news.as_ref());
        // Diff may look up source digests; it never writes.
        let ctx = self.context(&req.urn, true);
        let outcome = self
            .run(info.resource.diff(&ctx, &req.id, &olds, &news))
            .await?;
        Ok(Response::new(diff_response(outcome)))
    }

    async fn create(
        &self,
        request: Request<rpc::CreateRequest>,
    ) -> Result<Response<rpc::CreateResponse>, Status> {
        let req = request.into_inner();
        let info = self.info(&req.urn, &req.r#type)?;
        let (props, _, secrets) = decode(req.properties.as_ref());
        let ctx = self.context(&req.urn, req.preview);
        let out = self.run(info.resource.create(&ctx, &props)).await?;
        Ok(Response::new(rpc::CreateResponse {
            id: out.id.clone(),
            properties: Some(self.encode_out(info, &out, &secrets)),
            refresh_before_update: false,
        }))
    }

    async fn read(
        &self,
        request: Request<rpc::ReadRequest>,
    ) -> Result<Response<rpc::ReadResponse>, Status> {
        let req = request.into_inner();
        let info = self.info(&req.urn, &req.r#type)?;
        let (props, _, mut secrets) = decode(req.properties.as_ref());
        let (_, _, input_secrets) = decode(req.inputs.as_ref());
        secrets.extend(input_secrets);
        let ctx = self.context(&req.urn, false);
        let state = (!props.value.is_empty()).then_some(&props);
        match self.run(info.resource.read(&ctx, &req.id, state)).await? {
            None => Ok(Response::new(rpc::ReadResponse::default())),
            Some(out) => {
                let inputs = OutProps {
                    id: out.id.clone(),
                    value: out
                        .value
                        .iter()
                        .filter(|(k, _)| info.input_names.contains(*k))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    unknowns: BTreeSet::new(),
                };
                Ok(Response::new(rpc::ReadResponse {
                    id: out.id.clone(),
                    properties: Some(self.encode_out(info, &out, &secrets)),
                    inputs: Some(self.encode_out(info, &inputs, &secrets)),
                    refresh_before_update: false,
                }))
            }
        }
    }

    async fn update(
        &self,
        request: Request<rpc::UpdateRequest>,
    ) -> Result<Response<rpc::UpdateResponse>, Status> {
        let req = request.into_inner();
        let info = self.info(&req.urn, &req.r#type)?;
        let (olds, _, _) = decode(req.olds.as_ref());
        let (news, _, secrets) = decode(req.news.as_ref());
        let ctx = self.context(&req.urn, req.preview);
        let out = self
            .run(info.resource.update(&ctx, &req.id, &olds, &news))
            .await?;
        Ok(Response::new(rpc::UpdateResponse {
            properties: Some(self.encode_out(info, &out, &secrets)),
            refresh_before_update: false,
        }))
    }

    async fn delete(&self, request: Request<rpc::DeleteRequest>) -> Result<Response<()>, Status> {
        let req = request.into_inner();
        let info = self.info(&req.urn, &req.r#type)?;
        let (props, _, _) = decode(req.properties.as_ref());
        let ctx = self.context(&req.urn, false);
        self.run(info.resource.delete(&ctx, &req.id, &props))
            .await?;
        Ok(Response::new(()))
    }

    async fn construct(
        &self,
        _: Request<rpc::ConstructRequest>,
    ) -> Result<Response<rpc::ConstructResponse>, Status> {
        Err(Status::unimplemented(
            "multiarch has no component resources",
        ))
    }

    async fn cancel(&self, _: Request<()>) -> Result<Response<()>, Status> {
        self.cancel.cancel();
        Ok(Response::new(()))
    }

    async fn get_plugin_info(&self, _: Request<()>) -> Result<Response<rpc::PluginInfo>, Status> {
        Ok(Response::new(rpc::PluginInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }))
    }

    async fn attach(&self, r: Request<rpc::PluginAttach>) -> Result<Response<()>, Status> {
        self.engine.connect(&r.get_ref().address);
        Ok(Response::new(()))
    }

    async fn get_mapping(
        &self,
        _: Request<rpc::GetMappingRequest>,
    ) -> Result<Response<rpc::GetMappingResponse>, Status> {
        // No mappings: an empty answer, as the engine expects from non-bridged providers.
        Ok(Response::new(rpc::GetMappingResponse::default()))
    }

    async fn get_mappings(
        &self,
        _: Request<rpc::GetMappingsRequest>,
    ) -> Result<Response<rpc::GetMappingsResponse>, Status> {
        Ok(Response::new(rpc::GetMappingsResponse::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urn_type() {
        assert_eq!(
            type_of_urn("urn:pulumi:dev::proj::multiarch:index:Image::web"),
            "multiarch:index:Image"
        );
        assert_eq!(
            type_of_urn("urn:pulumi:dev::proj::parent:Comp$multiarch:index:ManifestList::x"),
            "multiarch:index:ManifestList"
        );
        assert_eq!(type_of_urn("garbage"), "");
    }
}

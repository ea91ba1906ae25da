//! The `tfplugin6.Provider` service: Terraform's values in, the protocol-neutral core
//! (`resources::Dispatch`), Terraform's values out.
//!
//! State rules Terraform enforces: configurable attributes are stored exactly as configured
//! (the core compares them normalized, sets as sets), computed ones as the core reports
//! them; a plan without changes returns the prior state, so Terraform shows "No changes."
//! exactly when the core's Diff finds none (the same Diff the Pulumi front uses).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, RwLock};

use rmpv::Value as Mp;
use serde_json::{Map, Value as Json};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::data_source::DataSource;
use super::diagnostics::{attribute_diag, diag, error_diags, Collect};
use super::identity;
use super::proto::{self, diagnostic::Severity, DynamicValue};
use super::schema::{self as tfschema, Block};
use super::value::{self, decode_object, encode_attr, get, object};
use crate::registry::Registries;
use crate::resources::{self, DiffOutcome, Dispatch, Error, OpContext, OutProps, Props};

/// `planned_private` of a plan in which the core found nothing to change.
const NO_CHANGE: &[u8] = b"{\"noChange\":true}";

struct TypeInfo {
    resource: Arc<dyn Dispatch>,
    block: Block,
}

pub struct Provider {
    types: BTreeMap<&'static str, TypeInfo>,
    data_sources: BTreeMap<&'static str, DataSource>,
    provider_block: Block,
    registries: RwLock<Registries>,
    cancel: CancellationToken,
}

fn decode_dv(dv: Option<&DynamicValue>, block: &Block) -> Result<Mp, Status> {
    match dv {
        Some(d) if !d.msgpack.is_empty() => {
            value::from_msgpack_bytes(&d.msgpack).map_err(Status::invalid_argument)
        }
        Some(d) if !d.json.is_empty() => {
            let j: Json = serde_json::from_slice(&d.json)
                .map_err(|e| Status::invalid_argument(format!("decoding JSON value: {e}")))?;
            Ok(value::from_state_json(&j, &block.ty()))
        }
        _ => Ok(Mp::Nil),
    }
}

fn dv(v: &Mp) -> Option<DynamicValue> {
    Some(DynamicValue {
        msgpack: value::to_msgpack_bytes(v),
        json: vec![],
    })
}

fn raw(obj: &Mp, name: &str) -> Mp {
    get(obj, name).cloned().unwrap_or(Mp::Nil)
}

impl Default for Provider {
    fn default() -> Self {
        Self::new()
    }
}

impl Provider {
    pub fn new() -> Self {
        // Every registered resource, each with the block derived from its own model.
        let types = resources::all()
            .iter()
            .map(|r| {
                let block = tfschema::resource_block(r.model());
                (
                    r.tf_name(),
                    TypeInfo {
                        resource: r.clone(),
                        block,
                    },
                )
            })
            .collect();
        Provider {
            types,
            data_sources: super::data_source::all(),
            provider_block: tfschema::provider_block(),
            registries: RwLock::new(Registries::unconfigured()),
            cancel: CancellationToken::new(),
        }
    }

    fn info(&self, type_name: &str) -> Result<&TypeInfo, Status> {
        self.types
            .get(type_name)
            .ok_or_else(|| Status::invalid_argument(format!("unknown resource type {type_name:?}")))
    }

    fn data_source(&self, type_name: &str) -> Result<&DataSource, Status> {
        self.data_sources.get(type_name).ok_or_else(|| {
            Status::invalid_argument(format!("multiarch has no data source {type_name:?}"))
        })
    }

    fn context(&self, preview: bool) -> (OpContext, Arc<Collect>) {
        let registries = self.registries.read().expect("registries lock").clone();
        let log = Arc::new(Collect::default());
        (
            OpContext::live(
                registries,
                log.clone(),
                self.cancel.child_token(),
                preview,
                None,
            ),
            log,
        )
    }

    async fn run<T>(&self, f: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(Error::Cancelled),
            r = f => r,
        }
    }
}

/// The core's view of a Terraform object: JSON (camelCase, nulls left out), its unknowns,
/// and the `id` attribute apart.
fn props_of(v: &Mp, block: &Block) -> (Props, String) {
    let (mut value, unknowns) = decode_object(v, &block.attrs);
    let id = match value.remove("id") {
        Some(Json::String(s)) => s,
        _ => String::new(),
    };
    (Props { value, unknowns }, id)
}

/// Configurable attributes only.
fn inputs_of(block: &Block, m: &Map<String, Json>) -> Map<String, Json> {
    block
        .attrs
        .iter()
        .filter(|a| !a.is_output())
        .filter_map(|a| m.get(&a.key).map(|v| (a.key.clone(), v.clone())))
        .collect()
}

/// Inputs as the core stores them (sorted sets, canonical platforms); as given if invalid.
fn normalized_inputs(info: &TypeInfo, m: &Map<String, Json>) -> Map<String, Json> {
    let inputs = inputs_of(&info.block, m);
    info.resource
        .check(&Props {
            value: inputs.clone(),
            unknowns: BTreeSet::new(),
        })
        .unwrap_or(inputs)
}

/// A stored state for the core: its inputs normalized as the core would have stored them.
fn state_props(info: &TypeInfo, v: &Mp) -> (Props, String) {
    let (mut props, id) = props_of(v, &info.block);
    let normalized = normalized_inputs(info, &props.value);
    for a in info.block.attrs.iter().filter(|a| !a.is_output()) {
        props.value.remove(&a.key);
        if let Some(x) = normalized.get(&a.key) {
            props.value.insert(a.key.clone(), x.clone());
        }
    }
    (props, id)
}

/// A new state or plan: configurable attributes from `config`, computed ones from `out`.
fn state_from(info: &TypeInfo, config: &Mp, out: &OutProps, id: Mp) -> Mp {
    object(&info.block.attrs, |a| {
        if a.name == "id" {
            id.clone()
        } else if a.is_output() {
            encode_attr(a, &out.value, &out.unknowns)
        } else {
            raw(config, &a.name)
        }
    })
}

#[tonic::async_trait]
impl proto::provider_server::Provider for Provider {
    async fn get_provider_schema(
        &self,
        _: Request<proto::get_provider_schema::Request>,
    ) -> Result<Response<proto::get_provider_schema::Response>, Status> {
        Ok(Response::new(proto::get_provider_schema::Response {
            provider: Some(tfschema::to_proto(&self.provider_block, false)),
            resource_schemas: self
                .types
                .iter()
                .map(|(name, info)| (name.to_string(), tfschema::to_proto(&info.block, true)))
                .collect(),
            data_source_schemas: self
                .data_sources
                .iter()
                .map(|(name, ds)| (name.to_string(), tfschema::to_proto(&ds.block, false)))
                .collect(),
            diagnostics: vec![],
            provider_meta: None,
            server_capabilities: Some(proto::ServerCapabilities::default()),
        }))
    }

    async fn get_metadata(
        &self,
        _: Request<proto::get_metadata::Request>,
    ) -> Result<Response<proto::get_metadata::Response>, Status> {
        Ok(Response::new(proto::get_metadata::Response {
            server_capabilities: Some(proto::ServerCapabilities::default()),
            diagnostics: vec![],
            data_sources: self
                .data_sources
                .keys()
                .map(|name| proto::get_metadata::DataSourceMetadata {
                    type_name: name.to_string(),
                })
                .collect(),
            resources: self
                .types
                .keys()
                .map(|name| proto::get_metadata::ResourceMetadata {
                    type_name: name.to_string(),
                })
                .collect(),
        }))
    }

    async fn get_resource_identity_schemas(
        &self,
        _: Request<proto::get_resource_identity_schemas::Request>,
    ) -> Result<Response<proto::get_resource_identity_schemas::Response>, Status> {
        Ok(Response::new(
            proto::get_resource_identity_schemas::Response {
                identity_schemas: self
                    .types
                    .keys()
                    .map(|name| (name.to_string(), identity::schema()))
                    .collect(),
                diagnostics: vec![],
            },
        ))
    }

    async fn upgrade_resource_identity(
        &self,
        request: Request<proto::upgrade_resource_identity::Request>,
    ) -> Result<Response<proto::upgrade_resource_identity::Response>, Status> {
        let req = request.into_inner();
        self.info(&req.type_name)?;
        let raw = req.raw_identity.unwrap_or_default();
        let (upgraded_identity, diagnostics) = match identity::upgrade(&raw.json) {
            Ok(d) => (d, vec![]),
            Err(e) => (
                None,
                vec![diag(
                    Severity::Error,
                    &format!("{}: cannot read the stored identity", req.type_name),
                    &e.to_string(),
                )],
            ),
        };
        Ok(Response::new(proto::upgrade_resource_identity::Response {
            upgraded_identity,
            diagnostics,
        }))
    }

    async fn validate_provider_config(
        &self,
        request: Request<proto::validate_provider_config::Request>,
    ) -> Result<Response<proto::validate_provider_config::Response>, Status> {
        let config = decode_dv(request.get_ref().config.as_ref(), &self.provider_block)?;
        let (props, _) = props_of(&config, &self.provider_block);
        let mut diagnostics = vec![];
        if props.unknowns.is_empty() {
            if let Err(f) = resources::decode_config(&props.value, &props.unknowns) {
                diagnostics.push(attribute_diag(
                    "invalid provider configuration: ",
                    &f,
                    &self.provider_block.attrs,
                ));
            }
        }
        Ok(Response::new(proto::validate_provider_config::Response {
            diagnostics,
        }))
    }

    async fn validate_resource_config(
        &self,
        request: Request<proto::validate_resource_config::Request>,
    ) -> Result<Response<proto::validate_resource_config::Response>, Status> {
        let req = request.into_inner();
        let info = self.info(&req.type_name)?;
        let config = decode_dv(req.config.as_ref(), &info.block)?;
        let (props, _) = props_of(&config, &info.block);
        let diagnostics = match info.resource.check(&props) {
            Ok(_) => vec![],
            Err(failures) => {
                error_diags(&req.type_name, &info.block.attrs, &Error::Invalid(failures))
            }
        };
        Ok(Response::new(proto::validate_resource_config::Response {
            diagnostics,
        }))
    }

    async fn validate_data_resource_config(
        &self,
        request: Request<proto::validate_data_resource_config::Request>,
    ) -> Result<Response<proto::validate_data_resource_config::Response>, Status> {
        let req = request.into_inner();
        let ds = self.data_source(&req.type_name)?;
        let config = decode_dv(req.config.as_ref(), &ds.block)?;
        Ok(Response::new(
            proto::validate_data_resource_config::Response {
                diagnostics: ds.validate(&config),
            },
        ))
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<proto::upgrade_resource_state::Request>,
    ) -> Result<Response<proto::upgrade_resource_state::Response>, Status> {
        let req = request.into_inner();
        let info = self.info(&req.type_name)?;
        // Schema version 0 is the only one so far: the stored JSON is read with the current
        // schema (unknown attributes dropped, missing ones null).
        let raw_state = req.raw_state.unwrap_or_default();
        if raw_state.json.is_empty() {
            return Ok(Response::new(proto::upgrade_resource_state::Response {
                upgraded_state: None,
                diagnostics: vec![diag(
                    Severity::Error,
                    "multiarch cannot read flatmap (Terraform 0.11) states",
                    "",
                )],
            }));
        }
        let j: Json = serde_json::from_slice(&raw_state.json)
            .map_err(|e| Status::invalid_argument(format!("stored state is not JSON: {e}")))?;
        let v = value::from_state_json(&j, &info.block.ty());
        Ok(Response::new(proto::upgrade_resource_state::Response {
            upgraded_state: dv(&v),
            diagnostics: vec![],
        }))
    }

    async fn configure_provider(
        &self,
        request: Request<proto::configure_provider::Request>,
    ) -> Result<Response<proto::configure_provider::Response>, Status> {
        let config = decode_dv(request.get_ref().config.as_ref(), &self.provider_block)?;
        let (props, _) = props_of(&config, &self.provider_block);
        let mut diagnostics = vec![];
        if !props.unknowns.is_empty() {
            diagnostics.push(diag(
                Severity::Warning,
                "provider configuration is not fully known yet",
                "unknown values are ignored until they are known",
            ));
        }
        match resources::decode_config(&props.value, &props.unknowns) {
            Ok(config) => match Registries::new(config) {
                Ok(r) => {
                    r.warm_up();
                    *self.registries.write().expect("registries lock") = r;
                }
                Err(e) => diagnostics.push(diag(
                    Severity::Error,
                    "invalid provider configuration",
                    &e.to_string(),
                )),
            },
            Err(f) => diagnostics.push(attribute_diag(
                "invalid provider configuration: ",
                &f,
                &self.provider_block.attrs,
            )),
        }
        Ok(Response::new(proto::configure_provider::Response {
            diagnostics,
        }))
    }

    async fn read_resource(
        &self,
        request: Request<proto::read_resource::Request>,
    ) -> Result<Response<proto::read_resource::Response>, Status> {
        let req = request.into_inner();
        let info = self.info(&req.type_name)?;
        let current = decode_dv(req.current_state.as_ref(), &info.block)?;
        let mut resp = proto::read_resource::Response {
            new_state: dv(&current),
            diagnostics: vec![],
            private: req.private.clone(),
            new_identity: identity::data(&raw(&current, "id")),
        };
        if matches!(current, Mp::Nil) {
            return Ok(Response::new(resp));
        }
        let (props, id) = state_props(info, &current);
        let (ctx, log) = self.context(false);
        let result = self.run(info.resource.read(&ctx, &id, Some(&props))).await;
        resp.diagnostics = log.diagnostics();
        match result {
            Err(e) => resp
                .diagnostics
                .extend(error_diags(&req.type_name, &info.block.attrs, &e)),
            Ok(None) => {
                resp.new_state = dv(&Mp::Nil);
                resp.new_identity = None;
            }
            Ok(Some(out)) => {
                // Configured values stay as written unless the registry says otherwise.
                let prior_norm = normalized_inputs(info, &props.value);
                let read_norm = normalized_inputs(info, &out.value);
                let state = object(&info.block.attrs, |a| {
                    if a.name == "id" {
                        if out.id.is_empty() {
                            Mp::from(id.as_str())
                        } else {
                            Mp::from(out.id.as_str())
                        }
                    } else if !a.is_output() && prior_norm.get(&a.key) == read_norm.get(&a.key) {
                        raw(&current, &a.name)
                    } else {
                        encode_attr(a, &out.value, &BTreeSet::new())
                    }
                });
                resp.new_identity = identity::data(&raw(&state, "id"));
                resp.new_state = dv(&state);
            }
        }
        Ok(Response::new(resp))
    }

    async fn plan_resource_change(
        &self,
        request: Request<proto::plan_resource_change::Request>,
    ) -> Result<Response<proto::plan_resource_change::Response>, Status> {
        let req = request.into_inner();
        let info = self.info(&req.type_name)?;
        let prior = decode_dv(req.prior_state.as_ref(), &info.block)?;
        let proposed = decode_dv(req.proposed_new_state.as_ref(), &info.block)?;
        let config = decode_dv(req.config.as_ref(), &info.block)?;
        let mut resp = proto::plan_resource_change::Response {
            planned_state: dv(&proposed),
            requires_replace: vec![],
            planned_private: vec![],
            diagnostics: vec![],
            planned_identity: None,
        };
        if matches!(proposed, Mp::Nil) {
            // Destroy: nothing to work out.
            return Ok(Response::new(resp));
        }
        let (news, _) = props_of(&config, &info.block);
        // A plan is a preview: the registry handle refuses every write.
        let (ctx, log) = self.context(true);
        let result = if matches!(prior, Mp::Nil) {
            self.run(info.resource.create(&ctx, &news))
                .await
                .map(|out| state_from(info, &config, &out, value::unknown()))
        } else {
            let (olds, id) = state_props(info, &prior);
            match self.run(info.resource.diff(&ctx, &id, &olds, &news)).await {
                Ok(DiffOutcome::NoChange) => {
                    resp.planned_private = NO_CHANGE.to_vec();
                    Ok(object(&info.block.attrs, |a| {
                        if a.is_output() {
                            raw(&prior, &a.name)
                        } else {
                            raw(&config, &a.name)
                        }
                    }))
                }
                Ok(DiffOutcome::Changes(_)) => self
                    .run(info.resource.update(&ctx, &id, &olds, &news))
                    .await
                    .map(|out| state_from(info, &config, &out, raw(&prior, "id"))),
                Err(e) => Err(e),
            }
        };
        resp.diagnostics = log.diagnostics();
        match result {
            Ok(planned) => {
                // Known once the resource exists (its id); a create plans none.
                resp.planned_identity = identity::data(&raw(&planned, "id"));
                resp.planned_state = dv(&planned);
            }
            Err(e) => resp
                .diagnostics
                .extend(error_diags(&req.type_name, &info.block.attrs, &e)),
        }
        Ok(Response::new(resp))
    }

    async fn apply_resource_change(
        &self,
        request: Request<proto::apply_resource_change::Request>,
    ) -> Result<Response<proto::apply_resource_change::Response>, Status> {
        let req = request.into_inner();
        let info = self.info(&req.type_name)?;
        let prior = decode_dv(req.prior_state.as_ref(), &info.block)?;
        let planned = decode_dv(req.planned_state.as_ref(), &info.block)?;
        let config = decode_dv(req.config.as_ref(), &info.block)?;
        let mut resp = proto::apply_resource_change::Response {
            new_state: dv(&prior),
            private: vec![],
            diagnostics: vec![],
            new_identity: None,
        };
        let (ctx, log) = self.context(false);
        let result: Result<Mp, Error> = if matches!(planned, Mp::Nil) {
            let (olds, id) = state_props(info, &prior);
            self.run(info.resource.delete(&ctx, &id, &olds))
                .await
                .map(|_| Mp::Nil)
        } else if matches!(prior, Mp::Nil) {
            let (news, _) = props_of(&config, &info.block);
            self.run(info.resource.create(&ctx, &news))
                .await
                .map(|out| {
                    let id = Mp::from(out.id.as_str());
                    state_from(info, &config, &out, id)
                })
        } else if req.planned_private == NO_CHANGE {
            Ok(planned.clone())
        } else {
            let (olds, id) = state_props(info, &prior);
            let (news, _) = props_of(&config, &info.block);
            self.run(info.resource.update(&ctx, &id, &olds, &news))
                .await
                .map(|out| state_from(info, &config, &out, raw(&prior, "id")))
        };
        resp.diagnostics = log.diagnostics();
        match result {
            Ok(state) => {
                resp.new_identity = identity::data(&raw(&state, "id"));
                resp.new_state = dv(&state);
            }
            Err(e) => resp
                .diagnostics
                .extend(error_diags(&req.type_name, &info.block.attrs, &e)),
        }
        Ok(Response::new(resp))
    }

    async fn import_resource_state(
        &self,
        request: Request<proto::import_resource_state::Request>,
    ) -> Result<Response<proto::import_resource_state::Response>, Status> {
        let req = request.into_inner();
        let info = self.info(&req.type_name)?;
        // `terraform import ADDR ID` and `import { id = … }` send the id; `import { identity =
        // { tag = … } }` sends the identity instead.
        let by_id = match (req.id.is_empty(), &req.identity) {
            (false, _) | (true, None) => Ok(req.id.clone()),
            (true, Some(d)) => identity::tag_of(d),
        };
        let id = match by_id {
            Ok(id) => id,
            Err(e) => {
                return Ok(Response::new(proto::import_resource_state::Response {
                    imported_resources: vec![],
                    diagnostics: vec![diag(
                        Severity::Error,
                        &format!("{}: invalid import identity", req.type_name),
                        &e.to_string(),
                    )],
                }))
            }
        };
        let (ctx, log) = self.context(false);
        let result = self.run(info.resource.read(&ctx, &id, None)).await;
        let mut resp = proto::import_resource_state::Response {
            imported_resources: vec![],
            diagnostics: log.diagnostics(),
        };
        match result {
            Err(e) => resp
                .diagnostics
                .extend(error_diags(&req.type_name, &info.block.attrs, &e)),
            Ok(None) => resp.diagnostics.push(diag(
                Severity::Error,
                &format!("{}: nothing to import at {id:?}", req.type_name),
                "",
            )),
            Ok(Some(out)) => {
                let id = if out.id.is_empty() {
                    id
                } else {
                    out.id.clone()
                };
                let state = object(&info.block.attrs, |a| {
                    if a.name == "id" {
                        Mp::from(id.as_str())
                    } else {
                        encode_attr(a, &out.value, &BTreeSet::new())
                    }
                });
                resp.imported_resources
                    .push(proto::import_resource_state::ImportedResource {
                        type_name: req.type_name.clone(),
                        state: dv(&state),
                        private: vec![],
                        identity: identity::data(&Mp::from(id.as_str())),
                    });
            }
        }
        Ok(Response::new(resp))
    }

    async fn read_data_source(
        &self,
        request: Request<proto::read_data_source::Request>,
    ) -> Result<Response<proto::read_data_source::Response>, Status> {
        let req = request.into_inner();
        let ds = self.data_source(&req.type_name)?;
        let config = decode_dv(req.config.as_ref(), &ds.block)?;
        // Read-only: the same context during plan and apply.
        let (ctx, log) = self.context(true);
        let read = tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(vec![diag(Severity::Error, "operation cancelled", "")]),
            r = ds.read(&ctx, &config) => r,
        };
        let mut diagnostics = log.diagnostics();
        let state = match read {
            Ok(state) => dv(&state),
            Err(d) => {
                diagnostics.extend(d);
                None
            }
        };
        Ok(Response::new(proto::read_data_source::Response {
            state,
            diagnostics,
        }))
    }

    async fn stop_provider(
        &self,
        _: Request<proto::stop_provider::Request>,
    ) -> Result<Response<proto::stop_provider::Response>, Status> {
        self.cancel.cancel();
        Ok(Response::new(proto::stop_provider::Response {
            error: String::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::provider_server::Provider as _;

    fn raw_identity(json: &[u8]) -> Option<proto::RawState> {
        Some(proto::RawState {
            json: json.to_vec(),
            flatmap: Default::default(),
        })
    }

    /// The calls newer engines make before any resource call: metadata, identity schemas and
    /// identity upgrades, and the schema's capabilities.
    #[tokio::test]
    async fn metadata_and_identity_calls_answer_for_every_resource() {
        let p = Provider::new();
        let meta = p
            .get_metadata(Request::new(proto::get_metadata::Request {}))
            .await
            .unwrap()
            .into_inner();
        let names: Vec<&str> = meta
            .resources
            .iter()
            .map(|r| r.type_name.as_str())
            .collect();
        assert_eq!(names, ["multiarch_image", "multiarch_manifest_list"]);
        let ds: Vec<&str> = meta
            .data_sources
            .iter()
            .map(|d| d.type_name.as_str())
            .collect();
        assert_eq!(ds, ["multiarch_image"]);
        assert!(meta.diagnostics.is_empty());

        let ids = p
            .get_resource_identity_schemas(Request::new(
                proto::get_resource_identity_schemas::Request {},
            ))
            .await
            .unwrap()
            .into_inner();
        let mut typed: Vec<&String> = ids.identity_schemas.keys().collect();
        typed.sort();
        assert_eq!(typed, ["multiarch_image", "multiarch_manifest_list"]);

        let upgrade = |type_name: &str, json: &[u8]| {
            p.upgrade_resource_identity(Request::new(proto::upgrade_resource_identity::Request {
                type_name: type_name.into(),
                version: 0,
                raw_identity: raw_identity(json),
            }))
        };
        let up = upgrade("multiarch_image", br#"{"tag":"r.example/a:v1"}"#)
            .await
            .unwrap()
            .into_inner();
        let tag = identity::tag_of(&up.upgraded_identity.unwrap()).unwrap();
        assert_eq!(tag, "r.example/a:v1");
        let bad = upgrade("multiarch_image", b"[]")
            .await
            .unwrap()
            .into_inner();
        assert!(bad.upgraded_identity.is_none());
        assert_eq!(bad.diagnostics[0].severity, Severity::Error as i32);
        assert!(upgrade("multiarch_nothing", b"{}").await.is_err());
    }

    #[tokio::test]
    async fn import_by_an_identity_without_a_tag_is_refused_by_name() {
        let p = Provider::new();
        let empty = Mp::Map(vec![]);
        let r = p
            .import_resource_state(Request::new(proto::import_resource_state::Request {
                type_name: "multiarch_manifest_list".into(),
                id: String::new(),
                client_capabilities: None,
                identity: Some(proto::ResourceIdentityData {
                    identity_data: dv(&empty),
                }),
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(r.imported_resources.is_empty());
        assert_eq!(
            r.diagnostics[0].summary,
            "multiarch_manifest_list: invalid import identity"
        );
        assert!(r.diagnostics[0].detail.contains("`tag`"));
    }
}

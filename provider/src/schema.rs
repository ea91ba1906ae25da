//! The Pulumi package schema, derived from the resources' field model (`crate::model`):
//! nothing here is written by hand twice.

use serde_json::{json, Map, Value as Json};

use crate::model::{Field, FunctionModel, Kind, ResourceModel};
use crate::resources::{all, config_model, functions};

pub const PACKAGE: &str = "multiarch";

/// Where the project lives; the Go SDK's module path is derived from it.
pub const REPOSITORY: &str = "https://github.com/multiarch-dev/multiarch";

/// The release base URL, one build setting (`MULTIARCH_RELEASE_URL` at compile time).
/// Pulumi replaces `${VERSION}` and appends `pulumi-resource-multiarch-v<ver>-<os>-<arch>.tar.gz`.
pub const RELEASE_URL: &str = match option_env!("MULTIARCH_RELEASE_URL") {
    Some(url) => url,
    None => "https://github.com/multiarch-dev/multiarch/releases/download/v${VERSION}/",
};

/// The Go SDK's package path: the module `…/sdk/go` (sdk/go/go.mod), package `multiarch`.
pub const GO_IMPORT_BASE_PATH: &str = "github.com/multiarch-dev/multiarch/sdk/go/multiarch";

fn type_token(name: &str) -> String {
    format!("{PACKAGE}:index:{name}")
}

/// Pulumi schema pieces from the model, collecting the named object and enum types it
/// reaches into `types`.
struct Converter<'a> {
    types: &'a mut Map<String, Json>,
}

impl Converter<'_> {
    fn properties(&mut self, fields: &[Field]) -> Map<String, Json> {
        fields
            .iter()
            .map(|f| (f.key.clone(), self.property(f)))
            .collect()
    }

    fn property(&mut self, f: &Field) -> Json {
        let mut out = self.type_spec(&f.kind);
        if let Json::Object(m) = &mut out {
            if !f.description.is_empty() {
                m.insert("description".into(), json!(f.description));
            }
            if let Some(d) = &f.default {
                m.insert("default".into(), d.clone());
            }
            if f.secret {
                m.insert("secret".into(), json!(true));
            }
        }
        out
    }

    fn type_spec(&mut self, kind: &Kind) -> Json {
        match kind {
            Kind::String => json!({"type": "string"}),
            Kind::Bool => json!({"type": "boolean"}),
            Kind::Integer => json!({"type": "integer"}),
            Kind::Number => json!({"type": "number"}),
            Kind::List(item) => json!({"type": "array", "items": self.type_spec(item)}),
            Kind::Map(v) => json!({"type": "object", "additionalProperties": self.type_spec(v)}),
            // `string | CacheTo` in TypeScript, `Union[str, CacheToArgs]` in Python.
            Kind::Union(alts) => {
                json!({"oneOf": alts.iter().map(|k| self.type_spec(k)).collect::<Vec<_>>()})
            }
            Kind::Enum(e) => {
                let values: Vec<Json> = e
                    .values
                    .iter()
                    .map(|v| match &v.description {
                        Some(d) => json!({"value": v.value, "description": d}),
                        None => json!({"value": v.value}),
                    })
                    .collect();
                let mut t = json!({"type": "string", "enum": values});
                if !e.description.is_empty() {
                    t["description"] = json!(e.description);
                }
                self.named(&e.name, t)
            }
            Kind::Object(o) => {
                let Some(name) = &o.name else {
                    // Inline objects have no type of their own in a Pulumi schema.
                    return json!({"type": "object", "additionalProperties": {"type": "string"}});
                };
                let token = type_token(name);
                if !self.types.contains_key(&token) {
                    // Reserve the name first: a type may refer to itself.
                    self.types.insert(token.clone(), Json::Null);
                    let mut t = json!({"type": "object"});
                    // An empty `properties` is dropped by Pulumi's own schema round trip
                    // (`pulumi package get-schema`), so a type without fields has none.
                    if !o.fields.is_empty() {
                        t["properties"] = Json::Object(self.properties(&o.fields));
                    }
                    let required = required_keys(&o.fields);
                    if !required.is_empty() {
                        t["required"] = json!(required);
                    }
                    if !o.description.is_empty() {
                        t["description"] = json!(o.description);
                    }
                    self.types.insert(token, t);
                }
                json!({"$ref": format!("#/types/{}", type_token(name))})
            }
        }
    }

    fn named(&mut self, name: &str, spec: Json) -> Json {
        self.types.insert(type_token(name), spec);
        json!({"$ref": format!("#/types/{}", type_token(name))})
    }
}

fn required_keys(fields: &[Field]) -> Vec<String> {
    fields
        .iter()
        .filter(|f| f.required)
        .map(|f| f.key.clone())
        .collect()
}

fn resource(model: &ResourceModel, types: &mut Map<String, Json>) -> Json {
    let mut c = Converter { types };
    let input_props = c.properties(&model.inputs);
    let state: Vec<Field> = model.state_fields().cloned().collect();
    let props = c.properties(&state);
    let required_inputs = required_keys(&model.inputs);
    // What the provider always computes is there after every create, so SDKs type it
    // non-optional (`Output<string>`, not `Output<string | undefined>`).
    let mut required: Vec<String> = state
        .iter()
        .filter(|f| f.required || f.always_present)
        .map(|f| f.key.clone())
        .collect();
    required.sort();
    let mut spec = json!({
        "description": model.description,
        "inputProperties": input_props,
        "properties": props,
        "required": required,
    });
    // As Pulumi writes schemas (`pulumi package get-schema`): no empty `requiredInputs`.
    if !required_inputs.is_empty() {
        spec["requiredInputs"] = json!(required_inputs);
    }
    spec
}

/// A function: its arguments and its result, each an object type of its own.
fn function(model: &FunctionModel, types: &mut Map<String, Json>) -> Json {
    let mut c = Converter { types };
    let mut object = |fields: &[Field]| {
        let mut o = json!({"properties": c.properties(fields)});
        let required = required_keys(fields);
        if !required.is_empty() {
            o["required"] = json!(required);
        }
        o
    };
    json!({
        "description": model.description,
        "inputs": object(&model.inputs),
        "outputs": object(&model.outputs),
    })
}

/// The whole package schema.
pub fn package_schema() -> Json {
    let mut types = Map::new();
    let config_props = Converter { types: &mut types }.properties(&config_model().fields);
    let mut resources = Map::new();
    for r in all() {
        let spec = resource(r.model(), &mut types);
        resources.insert(r.token().to_owned(), spec);
    }
    let mut fns = Map::new();
    for f in functions() {
        let spec = function(f.model(), &mut types);
        fns.insert(f.model().token.to_owned(), spec);
    }
    json!({
        "name": PACKAGE,
        "displayName": "multiarch",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "Multi-architecture container images: BuildKit builds and manifest lists pushed to ECR and other registries.",
        "keywords": ["docker", "buildkit", "ecr", "multi-arch", "kind/native"],
        "license": "Apache-2.0",
        "publisher": "multiarch",
        "homepage": REPOSITORY,
        "repository": REPOSITORY,
        "pluginDownloadURL": RELEASE_URL,
        "config": {"variables": config_props},
        "provider": {
            "description": "The multiarch provider: registry credentials, the BuildKit endpoint and AWS settings.",
            "inputProperties": config_props,
        },
        "resources": resources,
        "functions": fns,
        "types": types,
        // SDKs that carry their own package metadata (package.json, pyproject.toml, go.mod) at
        // the schema's version, so they install straight from this repository.
        "meta": {"supportPack": true},
        "language": {
            "nodejs": {"packageName": "@multiarch/pulumi", "respectSchemaVersion": true},
            "python": {
                "packageName": "pulumi_multiarch",
                "respectSchemaVersion": true,
                "pyproject": {"enabled": true},
            },
            "go": {
                "importBasePath": GO_IMPORT_BASE_PATH,
                "generateResourceContainerTypes": true,
                "respectSchemaVersion": true,
            },
            "csharp": {"rootNamespace": "Multiarch", "packageName": "Multiarch.Pulumi"},
        },
    })
}

/// The schema as checked in at `schema/schema.json`.
pub fn package_schema_text() -> String {
    let mut s = serde_json::to_string_pretty(&package_schema()).expect("a schema serializes");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_have_typed_properties() {
        let s = package_schema();
        let ml = &s["resources"]["multiarch:index:ManifestList"];
        assert_eq!(ml["inputProperties"]["tags"]["type"], "array");
        assert_eq!(ml["inputProperties"]["tags"]["items"]["type"], "string");
        assert_eq!(ml["requiredInputs"], json!(["sources", "tags"]));
        assert_eq!(
            ml["inputProperties"]["mediaType"]["$ref"],
            "#/types/multiarch:index:IndexMediaType"
        );
        assert_eq!(
            ml["properties"]["manifests"]["items"]["$ref"],
            "#/types/multiarch:index:ManifestEntry"
        );
        assert_eq!(ml["properties"]["digest"]["type"], "string");
        assert_eq!(ml["properties"]["ref"]["type"], "string");
        let img = &s["resources"]["multiarch:index:Image"];
        assert_eq!(img["inputProperties"]["secrets"]["secret"], true);
        assert_eq!(img["inputProperties"]["push"]["default"], true);
        assert_eq!(img["inputProperties"]["buildOnPreview"]["default"], true);
        assert_eq!(
            img["inputProperties"]["buildArgs"]["additionalProperties"]["type"],
            "string"
        );
        assert_eq!(img["properties"]["contextHash"]["type"], "string");
        // A string-or-object entry is a Pulumi union (`string | CacheTo`).
        for (key, ty) in [("cacheFrom", "CacheFrom"), ("cacheTo", "CacheTo")] {
            assert_eq!(
                img["inputProperties"][key]["items"],
                json!({"oneOf": [{"type": "string"}, {"$ref": format!("#/types/multiarch:index:{ty}")}]})
            );
        }
        assert!(s["types"].get("multiarch:index:CacheToEntry").is_none());
        assert_eq!(
            s["types"]["multiarch:index:CacheToGha"]["properties"]["token"]["secret"],
            true
        );
        assert_eq!(
            s["types"]["multiarch:index:CacheFromS3"]["properties"]["secretAccessKey"]["secret"],
            true
        );
        assert!(s["types"]["multiarch:index:CacheFrom"]["properties"]
            .get("inline")
            .is_none());
        // The export options are on the cacheTo types only.
        for backend in ["Registry", "Gha", "S3"] {
            let from = &s["types"][format!("multiarch:index:CacheFrom{backend}")]["properties"];
            let to = &s["types"][format!("multiarch:index:CacheTo{backend}")]["properties"];
            assert!(from.get("mode").is_none() && from.get("ignoreError").is_none());
            assert!(to.get("mode").is_some() && to.get("ignoreError").is_some());
        }
        for (r, outputs) in [
            (img, &["contextHash", "digest", "manifests", "ref"][..]),
            (
                ml,
                &["digest", "manifests", "platforms", "ref", "sourceDigests"][..],
            ),
        ] {
            let required = r["required"].as_array().unwrap();
            for o in outputs {
                assert!(required.contains(&json!(o)), "{o} is not a required output");
            }
        }
        let t = &s["types"]["multiarch:index:IndexMediaType"];
        assert_eq!(t["type"], "string");
        assert_eq!(t["enum"].as_array().map(Vec::len), Some(2));
        let reg = &s["types"]["multiarch:index:RegistryConfig"];
        assert_eq!(reg["properties"]["password"]["secret"], true);
        assert_eq!(reg["required"], json!(["address"]));
        assert_eq!(
            s["config"]["variables"]["registries"]["items"]["$ref"],
            "#/types/multiarch:index:RegistryConfig"
        );
        assert!(s["types"].get("multiarch:index:ProviderConfig").is_none());
    }

    #[test]
    fn get_image_is_a_function_with_typed_outputs() {
        let s = package_schema();
        let f = &s["functions"]["multiarch:index:getImage"];
        assert_eq!(f["inputs"]["required"], json!(["ref"]));
        assert_eq!(f["inputs"]["properties"]["ref"]["type"], "string");
        assert_eq!(
            f["outputs"]["required"],
            json!(["digest", "manifests", "mediaType", "ref"])
        );
        assert_eq!(
            f["outputs"]["properties"]["manifests"]["items"]["$ref"],
            "#/types/multiarch:index:LookupPlatform"
        );
    }

    #[test]
    fn checked_in_schema_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/schema.json");
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == package_schema_text(),
            "schema/schema.json is stale: run `make schema` and commit it"
        );
    }
}

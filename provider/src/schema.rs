//! The Pulumi package schema, derived from the typed resources' JSON Schemas (schemars):
//! nothing here is written by hand twice.

use schemars::{schema_for, JsonSchema};
use serde_json::{json, Map, Value as Json};

use crate::config::ProviderConfig;
use crate::resources::{image::Image, manifest_list::ManifestList, Resource};

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

fn type_token(def_name: &str) -> String {
    format!("{PACKAGE}:index:{def_name}")
}

/// Converts one JSON Schema (schemars output) into Pulumi schema pieces, collecting named
/// object and enum types into `types`.
struct Converter<'a> {
    types: &'a mut Map<String, Json>,
}

impl Converter<'_> {
    fn root(&mut self, schema: &Json) -> (Map<String, Json>, Vec<String>) {
        if let Some(defs) = schema.get("$defs").and_then(Json::as_object) {
            for (name, def) in defs {
                let t = self.named_type(def);
                self.types.insert(type_token(name), t);
            }
        }
        self.object_members(schema)
    }

    fn object_members(&mut self, schema: &Json) -> (Map<String, Json>, Vec<String>) {
        let mut props = Map::new();
        if let Some(p) = schema.get("properties").and_then(Json::as_object) {
            for (k, v) in p {
                props.insert(k.clone(), self.property(v));
            }
        }
        let mut required: Vec<String> = schema
            .get("required")
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        required.sort();
        (props, required)
    }

    fn named_type(&mut self, def: &Json) -> Json {
        let variants = enum_values(def);
        let mut out = Map::new();
        if let Some(values) = variants {
            out.insert("type".into(), json!("string"));
            out.insert("enum".into(), Json::Array(values));
        } else {
            let (props, required) = self.object_members(def);
            out.insert("type".into(), json!("object"));
            out.insert("properties".into(), Json::Object(props));
            if !required.is_empty() {
                out.insert("required".into(), json!(required));
            }
        }
        if let Some(d) = def.get("description") {
            out.insert("description".into(), d.clone());
        }
        Json::Object(out)
    }

    fn property(&mut self, s: &Json) -> Json {
        let mut out = self.type_spec(s);
        if let Json::Object(m) = &mut out {
            if let Some(d) = s.get("description") {
                m.insert("description".into(), d.clone());
            }
            if let Some(d) = s.get("default") {
                if !d.is_null() && (d.is_boolean() || d.is_string() || d.is_number()) {
                    m.insert("default".into(), d.clone());
                }
            }
            if s.get("x-secret") == Some(&Json::Bool(true)) {
                m.insert("secret".into(), json!(true));
            }
        }
        out
    }

    fn type_spec(&mut self, s: &Json) -> Json {
        if let Some(r) = s.get("$ref").and_then(Json::as_str) {
            let name = r.rsplit('/').next().unwrap_or(r);
            return json!({"$ref": format!("#/types/{}", type_token(name))});
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(alts) = s.get(key).and_then(Json::as_array) {
                let non_null: Vec<&Json> = alts
                    .iter()
                    .filter(|a| a.get("type") != Some(&json!("null")))
                    .collect();
                if non_null.len() == 1 {
                    return self.type_spec(non_null[0]);
                }
                if enum_values(s).is_some() {
                    return json!({"type": "string"});
                }
            }
        }
        let ty = match s.get("type") {
            Some(Json::String(t)) => t.clone(),
            Some(Json::Array(ts)) => ts
                .iter()
                .filter_map(Json::as_str)
                .find(|t| *t != "null")
                .unwrap_or("string")
                .to_owned(),
            _ => "string".to_owned(),
        };
        match ty.as_str() {
            "array" => {
                let items = s
                    .get("items")
                    .map(|i| self.type_spec(i))
                    .unwrap_or(json!({"type": "string"}));
                json!({"type": "array", "items": items})
            }
            "object" => match s.get("additionalProperties") {
                Some(ap) if ap.is_object() => {
                    json!({"type": "object", "additionalProperties": self.type_spec(ap)})
                }
                _ => json!({"type": "object", "additionalProperties": {"type": "string"}}),
            },
            "integer" | "number" | "boolean" | "string" => json!({"type": ty}),
            _ => json!({"type": "string"}),
        }
    }
}

/// String enums as schemars writes them: `enum: [...]` or `oneOf` of `const`s.
fn enum_values(s: &Json) -> Option<Vec<Json>> {
    if let Some(e) = s.get("enum").and_then(Json::as_array) {
        return Some(e.iter().map(|v| json!({"value": v})).collect());
    }
    let alts = s.get("oneOf").and_then(Json::as_array)?;
    let mut values = Vec::new();
    for a in alts {
        if let Some(c) = a.get("const") {
            let mut v = json!({"value": c});
            if let Some(d) = a.get("description") {
                v["description"] = d.clone();
            }
            values.push(v);
        } else if let Some(e) = a.get("enum").and_then(Json::as_array) {
            values.extend(e.iter().map(|v| json!({"value": v})));
        } else {
            return None;
        }
    }
    Some(values)
}

fn json_schema_of<T: JsonSchema>() -> Json {
    serde_json::to_value(schema_for!(T)).expect("a schema serializes")
}

fn resource<R: Resource>(types: &mut Map<String, Json>) -> (String, Json) {
    let mut c = Converter { types };
    let (input_props, required_inputs) = c.root(&json_schema_of::<R::Inputs>());
    let (props, mut required) = c.root(&json_schema_of::<R::State>());
    // What the provider computes is there after every create, so SDKs type it non-optional
    // (`Output<string>`, not `Output<string | undefined>`).
    required.extend(R::COMPUTED.iter().map(|k| (*k).to_owned()));
    required.sort();
    required.dedup();
    let mut spec = json!({
        "description": R::description(),
        "inputProperties": input_props,
        "properties": props,
        "required": required,
    });
    // As Pulumi writes schemas (`pulumi package get-schema`): no empty `requiredInputs`.
    if !required_inputs.is_empty() {
        spec["requiredInputs"] = json!(required_inputs);
    }
    (R::TOKEN.to_owned(), spec)
}

/// The whole package schema.
pub fn package_schema() -> Json {
    let mut types = Map::new();
    let (config_props, _) =
        Converter { types: &mut types }.root(&json_schema_of::<ProviderConfig>());
    let mut resources = Map::new();
    for (token, spec) in [
        resource::<Image>(&mut types),
        resource::<ManifestList>(&mut types),
    ] {
        resources.insert(token, spec);
    }
    // The config's own root type is not a named type.
    types.remove(&type_token("ProviderConfig"));
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
    fn checked_in_schema_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/schema.json");
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == package_schema_text(),
            "schema/schema.json is stale: run `make schema` and commit it"
        );
    }
}

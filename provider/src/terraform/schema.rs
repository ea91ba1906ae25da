//! The Terraform schema, derived from the same schemars JSON Schemas as the Pulumi schema
//! (`crate::schema`): attribute names in snake_case, sets for set-valued lists, `x-secret`
//! as `sensitive`, nested attributes for input objects, cty types for computed values.

use schemars::{schema_for, JsonSchema};
use serde_json::{json, Map, Value as Json};

use super::proto;
use crate::config::ProviderConfig;
use crate::resources::{image::Image, manifest_list::ManifestList, Resource};

/// Lists whose order never matters: Terraform sets (the core compares them as sets).
const SET_KEYS: &[&str] = &["tags", "platforms", "sources"];

/// A value's type as Terraform sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    String,
    Bool,
    Number,
    List(Box<Ty>),
    Set(Box<Ty>),
    Map(Box<Ty>),
    Object(Vec<Attr>),
}

/// One attribute: its Terraform name, the JSON key the core uses, and its flags.
#[derive(Debug, Clone, PartialEq)]
pub struct Attr {
    pub name: String,
    pub key: String,
    pub ty: Ty,
    pub required: bool,
    pub optional: bool,
    pub computed: bool,
    pub sensitive: bool,
    pub description: String,
}

impl Attr {
    /// Output-only attribute (computed, never configured).
    pub fn is_output(&self) -> bool {
        self.computed && !self.optional && !self.required
    }
}

/// A resource (or the provider block): its top-level attributes.
#[derive(Debug, Clone)]
pub struct Block {
    pub attrs: Vec<Attr>,
    pub description: String,
}

impl Block {
    pub fn ty(&self) -> Ty {
        Ty::Object(self.attrs.clone())
    }

    pub fn attr(&self, name: &str) -> Option<&Attr> {
        self.attrs.iter().find(|a| a.name == name)
    }
}

/// `buildArgs` -> `build_args`, `caCert` -> `ca_cert`.
pub fn snake_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

struct Conv<'a> {
    defs: &'a Map<String, Json>,
}

impl Conv<'_> {
    fn resolve<'s>(&'s self, s: &'s Json) -> &'s Json {
        match s.get("$ref").and_then(Json::as_str) {
            Some(r) => {
                let name = r.rsplit('/').next().unwrap_or(r);
                self.defs.get(name).unwrap_or(s)
            }
            None => s,
        }
    }

    fn ty(&self, s: &Json, key: &str, computed: bool) -> Ty {
        let s = self.resolve(s);
        for k in ["anyOf", "oneOf"] {
            if let Some(alts) = s.get(k).and_then(Json::as_array) {
                let non_null: Vec<&Json> = alts
                    .iter()
                    .filter(|a| a.get("type") != Some(&json!("null")))
                    .collect();
                if non_null.len() == 1 {
                    return self.ty(non_null[0], key, computed);
                }
                return Ty::String;
            }
        }
        if s.get("enum").is_some() || s.get("const").is_some() {
            return Ty::String;
        }
        let ty = match s.get("type") {
            Some(Json::String(t)) => t.as_str(),
            Some(Json::Array(ts)) => ts
                .iter()
                .filter_map(Json::as_str)
                .find(|t| *t != "null")
                .unwrap_or("string"),
            _ => "string",
        };
        match ty {
            "array" => {
                let item = s
                    .get("items")
                    .map(|i| self.ty(i, "", computed))
                    .unwrap_or(Ty::String);
                if SET_KEYS.contains(&key) {
                    Ty::Set(Box::new(item))
                } else {
                    Ty::List(Box::new(item))
                }
            }
            "object" if s.get("properties").is_some() => Ty::Object(self.attrs(s, computed)),
            "object" => match s.get("additionalProperties") {
                Some(ap) if ap.is_object() => Ty::Map(Box::new(self.ty(ap, "", computed))),
                _ => Ty::Map(Box::new(Ty::String)),
            },
            "boolean" => Ty::Bool,
            "integer" | "number" => Ty::Number,
            _ => Ty::String,
        }
    }

    /// The members of an object schema; `computed` for output values.
    fn attrs(&self, s: &Json, computed: bool) -> Vec<Attr> {
        let required: Vec<&str> = s
            .get("required")
            .and_then(Json::as_array)
            .map(|a| a.iter().filter_map(Json::as_str).collect())
            .unwrap_or_default();
        let mut out: Vec<Attr> = s
            .get("properties")
            .and_then(Json::as_object)
            .map(|props| {
                props
                    .iter()
                    .map(|(k, v)| {
                        let req = !computed && required.contains(&k.as_str());
                        let resolved = self.resolve(v);
                        Attr {
                            name: snake_case(k),
                            key: k.clone(),
                            ty: self.ty(v, k, computed),
                            required: req,
                            optional: !computed && !req,
                            computed,
                            sensitive: v.get("x-secret") == Some(&Json::Bool(true))
                                || resolved.get("x-secret") == Some(&Json::Bool(true)),
                            description: v
                                .get("description")
                                .or_else(|| resolved.get("description"))
                                .and_then(Json::as_str)
                                .unwrap_or_default()
                                .to_owned(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

fn json_schema_of<T: JsonSchema>() -> Json {
    serde_json::to_value(schema_for!(T)).expect("a schema serializes")
}

fn block_of(schema: &Json, computed: bool) -> Vec<Attr> {
    let empty = Map::new();
    let defs = schema
        .get("$defs")
        .and_then(Json::as_object)
        .unwrap_or(&empty);
    Conv { defs }.attrs(schema, computed)
}

/// A resource's block: its inputs (configurable), its outputs (computed) and `id`.
pub fn resource_block<R: Resource>() -> Block {
    let mut attrs = block_of(&json_schema_of::<R::Inputs>(), false);
    let outputs = block_of(&json_schema_of::<R::State>(), true);
    for o in outputs {
        if !attrs.iter().any(|a| a.key == o.key) {
            attrs.push(o);
        }
    }
    attrs.push(Attr {
        name: "id".into(),
        key: "id".into(),
        ty: Ty::String,
        required: false,
        optional: false,
        computed: true,
        sensitive: false,
        description: "The resource's ID (the first tag's reference).".into(),
    });
    attrs.sort_by(|a, b| a.name.cmp(&b.name));
    Block {
        attrs,
        description: R::description().to_owned(),
    }
}

pub fn provider_block() -> Block {
    Block {
        attrs: block_of(&json_schema_of::<ProviderConfig>(), false),
        description:
            "The multiarch provider: registry credentials, the BuildKit endpoint and AWS settings."
                .into(),
    }
}

/// Every resource type: (Terraform type name, block).
pub fn resource_blocks() -> Vec<(&'static str, Block)> {
    vec![
        (Image::TF_NAME, resource_block::<Image>()),
        (ManifestList::TF_NAME, resource_block::<ManifestList>()),
    ]
}

/// The cty type JSON Terraform expects in `Attribute.type`.
pub fn cty_json(ty: &Ty) -> Json {
    match ty {
        Ty::String => json!("string"),
        Ty::Bool => json!("bool"),
        Ty::Number => json!("number"),
        Ty::List(t) => json!(["list", cty_json(t)]),
        Ty::Set(t) => json!(["set", cty_json(t)]),
        Ty::Map(t) => json!(["map", cty_json(t)]),
        Ty::Object(attrs) => {
            let m: Map<String, Json> = attrs
                .iter()
                .map(|a| (a.name.clone(), cty_json(&a.ty)))
                .collect();
            json!(["object", m])
        }
    }
}

fn attribute(a: &Attr) -> proto::schema::Attribute {
    use proto::schema::object::NestingMode;
    let nested = if a.is_output() {
        None
    } else {
        match &a.ty {
            Ty::Object(inner) => Some((NestingMode::Single, inner)),
            Ty::List(t) => match t.as_ref() {
                Ty::Object(inner) => Some((NestingMode::List, inner)),
                _ => None,
            },
            Ty::Set(t) => match t.as_ref() {
                Ty::Object(inner) => Some((NestingMode::Set, inner)),
                _ => None,
            },
            Ty::Map(t) => match t.as_ref() {
                Ty::Object(inner) => Some((NestingMode::Map, inner)),
                _ => None,
            },
            _ => None,
        }
    };
    let mut out = proto::schema::Attribute {
        name: a.name.clone(),
        description: a.description.clone(),
        required: a.required,
        optional: a.optional,
        computed: a.computed,
        sensitive: a.sensitive,
        ..Default::default()
    };
    match nested {
        Some((mode, inner)) => {
            out.nested_type = Some(proto::schema::Object {
                attributes: inner.iter().map(attribute).collect(),
                nesting: mode as i32,
                ..Default::default()
            });
        }
        None => out.r#type = cty_json(&a.ty).to_string().into_bytes(),
    }
    out
}

/// Whether a configurable attribute is written as a nested block (`context { … }`).
///
/// Resources write their single-object inputs as blocks: Terraform 1.0's planner crashes on
/// single nested attributes when a resource is created (its prior value is null). The
/// provider block, which is never planned, keeps nested attributes
/// (`registries = [{ address = … }]`).
pub fn is_block(a: &Attr, resource: bool) -> bool {
    resource && !a.is_output() && matches!(a.ty, Ty::Object(_))
}

/// The protocol schema of a block; `resource` for resource types (see [`is_block`]).
pub fn to_proto(b: &Block, resource: bool) -> proto::Schema {
    use proto::schema::nested_block::NestingMode;
    let block_types = b
        .attrs
        .iter()
        .filter(|a| is_block(a, resource))
        .map(|a| proto::schema::NestedBlock {
            type_name: a.name.clone(),
            block: Some(proto::schema::Block {
                attributes: match &a.ty {
                    Ty::Object(inner) => inner.iter().map(attribute).collect(),
                    _ => vec![],
                },
                description: a.description.clone(),
                ..Default::default()
            }),
            nesting: NestingMode::Single as i32,
            min_items: i64::from(a.required),
            max_items: 1,
        })
        .collect();
    proto::Schema {
        version: 0,
        block: Some(proto::schema::Block {
            version: 0,
            attributes: b
                .attrs
                .iter()
                .filter(|a| !is_block(a, resource))
                .map(attribute)
                .collect(),
            block_types,
            description: b.description.clone(),
            ..Default::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_flags() {
        assert_eq!(snake_case("buildArgs"), "build_args");
        assert_eq!(snake_case("keepRemotely"), "keep_remotely");
        assert_eq!(snake_case("ref"), "ref");
        let blocks = resource_blocks();
        let (_, img) = blocks
            .iter()
            .find(|(n, _)| *n == "multiarch_image")
            .unwrap();
        let p = img.attr("platforms").unwrap();
        assert_eq!(p.ty, Ty::Set(Box::new(Ty::String)));
        assert!(p.optional && !p.computed);
        assert!(img.attr("secrets").unwrap().sensitive);
        assert_eq!(img.attr("build_args").unwrap().key, "buildArgs");
        let d = img.attr("digest").unwrap();
        assert!(d.is_output());
        assert!(img.attr("id").unwrap().is_output());
        let ctx = img.attr("context").unwrap();
        assert!(matches!(ctx.ty, Ty::Object(_)));
        let (_, ml) = blocks
            .iter()
            .find(|(n, _)| *n == "multiarch_manifest_list")
            .unwrap();
        assert!(ml.attr("tags").unwrap().required);
        assert!(ml.attr("sources").unwrap().required);
        assert!(ml.attr("manifests").unwrap().is_output());
        let prov = provider_block();
        let regs = prov.attr("registries").unwrap();
        match &regs.ty {
            Ty::List(t) => match t.as_ref() {
                Ty::Object(inner) => {
                    let pw = inner.iter().find(|a| a.name == "password").unwrap();
                    assert!(pw.sensitive && pw.optional);
                    let addr = inner.iter().find(|a| a.name == "address").unwrap();
                    assert!(addr.required);
                    assert!(inner.iter().any(|a| a.name == "ca_cert"));
                }
                t => panic!("registries items: {t:?}"),
            },
            t => panic!("registries: {t:?}"),
        }
        assert!(prov.attr("builder").is_some() && prov.attr("aws").is_some());
        let schema = to_proto(img, true).block.unwrap();
        let plat = schema
            .attributes
            .iter()
            .find(|a| a.name == "platforms")
            .unwrap();
        assert_eq!(plat.r#type, br#"["set","string"]"#);
        assert!(schema.attributes.iter().all(|a| a.name != "context"));
        let ctx = schema
            .block_types
            .iter()
            .find(|b| b.type_name == "context")
            .unwrap();
        assert_eq!(ctx.max_items, 1);
        let prov = to_proto(&prov, false).block.unwrap();
        let regs = prov
            .attributes
            .iter()
            .find(|a| a.name == "registries")
            .unwrap();
        assert!(regs.nested_type.is_some() && regs.r#type.is_empty());
    }
}

//! The Terraform schema, derived from the same field model as the Pulumi schema
//! (`crate::model`): attribute names in snake_case, sets for set fields, secrets as
//! `sensitive`, nested attributes for input objects, cty types for computed values.

use serde_json::{json, Map, Value as Json};

use super::proto;
use crate::model::{Field, FunctionModel, Kind, ResourceModel};
use crate::resources::config_model;

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

    #[cfg(test)]
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

/// Attributes from model fields; `computed` for output values.
fn attrs(fields: &[Field], computed: bool) -> Vec<Attr> {
    let mut out: Vec<Attr> = fields
        .iter()
        .map(|f| {
            let required = !computed && f.required;
            Attr {
                name: f
                    .terraform_name
                    .clone()
                    .unwrap_or_else(|| snake_case(&f.key)),
                key: f.key.clone(),
                ty: ty(&f.kind, f.set, computed),
                required,
                optional: !computed && !required,
                computed,
                sensitive: f.secret,
                description: f.description_or_type().to_owned(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// A field's Terraform type; the members of its objects share its computedness.
fn ty(k: &Kind, set: bool, computed: bool) -> Ty {
    match k {
        Kind::String | Kind::Enum(_) => Ty::String,
        Kind::Bool => Ty::Bool,
        Kind::Integer | Kind::Number => Ty::Number,
        Kind::List(item) if set => Ty::Set(Box::new(ty(item, false, computed))),
        Kind::List(item) => Ty::List(Box::new(ty(item, false, computed))),
        Kind::Map(v) => Ty::Map(Box::new(ty(v, false, computed))),
        Kind::Object(o) => Ty::Object(attrs(&o.fields, computed)),
        // Terraform has no unions: the model's plain alternative (a cache entry's string).
        Kind::Union(_) => match k.plain() {
            Kind::Union(_) => Ty::String,
            plain => ty(plain, set, computed),
        },
    }
}

/// A resource's block: its inputs (configurable), its outputs (computed) and `id`.
pub fn resource_block(model: &ResourceModel) -> Block {
    let mut attrs = attrs(&model.inputs, false);
    attrs.extend(self::attrs(&model.outputs, true));
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
        description: model.description.to_owned(),
    }
}

/// A data source's blocks: the whole (its arguments configurable, its result computed,
/// and `id`), and its arguments alone (what a configuration is decoded against: an
/// argument and a result may share a key, `ref`, under different names).
pub fn data_source_blocks(model: &FunctionModel) -> (Block, Block) {
    let args = attrs(&model.inputs, false);
    let mut all = args.clone();
    all.extend(attrs(&model.outputs, true));
    all.push(Attr {
        name: "id".into(),
        key: "id".into(),
        ty: Ty::String,
        required: false,
        optional: false,
        computed: true,
        sensitive: false,
        description: "The pinned reference (as `pinned_ref`).".into(),
    });
    all.sort_by(|a, b| a.name.cmp(&b.name));
    let block = |attrs| Block {
        attrs,
        description: model.description.to_owned(),
    };
    (block(all), block(args))
}

pub fn provider_block() -> Block {
    Block {
        attrs: attrs(&config_model().fields, false),
        description:
            "The multiarch provider: registry credentials, the BuildKit endpoint and AWS settings."
                .into(),
    }
}

/// Every resource type: (Terraform type name, block).
#[cfg(test)]
pub fn resource_blocks() -> Vec<(&'static str, Block)> {
    crate::resources::all()
        .iter()
        .map(|r| (r.tf_name(), resource_block(r.model())))
        .collect()
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
/// single nested attributes when a resource is created (its prior value is null). For the
/// same reason a list of objects that hold objects (`exports`, each entry one of five
/// optional objects) is a list of blocks, its objects blocks inside
/// (`exports { oci { dest = … } }`): as nested attributes Terraform 1.0 crashes planning
/// an update. Other lists of objects stay nested attributes (`ssh = [{ id = … }]`), as does
/// everything in the provider block, which is never planned
/// (`registries = [{ address = … }]`).
pub fn is_block(a: &Attr, resource: bool) -> bool {
    resource && !a.is_output() && is_block_type(&a.ty)
}

fn is_block_type(ty: &Ty) -> bool {
    match ty {
        Ty::Object(_) => true,
        Ty::List(t) => {
            matches!(t.as_ref(), Ty::Object(inner) if inner.iter().any(|a| matches!(a.ty, Ty::Object(_))))
        }
        _ => false,
    }
}

/// Whether `a` is a list of blocks (see [`is_block`]); absent, its value is an empty list.
pub fn is_block_list(a: &Attr) -> bool {
    is_block(a, true) && matches!(a.ty, Ty::List(_))
}

/// Whether an attribute of a block's object is itself a (single) block.
pub fn is_inner_block(a: &Attr) -> bool {
    matches!(a.ty, Ty::Object(_))
}

/// The nested block of a block attribute: single (at most one) or a list; the objects
/// inside its objects are single blocks in turn.
fn nested_block(a: &Attr) -> proto::schema::NestedBlock {
    use proto::schema::nested_block::NestingMode;
    let (nesting, inner, min, max) = match &a.ty {
        Ty::List(t) => match t.as_ref() {
            Ty::Object(inner) => (NestingMode::List, inner.as_slice(), 0, 0),
            _ => (NestingMode::List, &[][..], 0, 0),
        },
        // Protocol 6 wants MinItems == MaxItems in single mode: 1 for a required block, 0 for
        // an optional one (Terraform 1.3 and later and OpenTofu refuse the whole schema
        // otherwise; 1.0 did not check).
        Ty::Object(inner) => {
            let n = i64::from(a.required);
            (NestingMode::Single, inner.as_slice(), n, n)
        }
        _ => (NestingMode::Single, &[][..], 0, 0),
    };
    proto::schema::NestedBlock {
        type_name: a.name.clone(),
        block: Some(proto::schema::Block {
            attributes: inner
                .iter()
                .filter(|x| !is_inner_block(x))
                .map(attribute)
                .collect(),
            block_types: inner
                .iter()
                .filter(|x| is_inner_block(x))
                .map(nested_block)
                .collect(),
            description: a.description.clone(),
            ..Default::default()
        }),
        nesting: nesting as i32,
        min_items: min,
        max_items: max,
    }
}

/// The protocol schema of a block; `resource` for resource types (see [`is_block`]).
pub fn to_proto(b: &Block, resource: bool) -> proto::Schema {
    let block_types = b
        .attrs
        .iter()
        .filter(|a| is_block(a, resource))
        .map(nested_block)
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
    #[allow(clippy::too_many_lines)] // one assertion per attribute
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
        // One annotation on the field (`x-set`) makes it a Terraform set.
        assert_eq!(
            img.attr("add_hosts").unwrap().ty,
            Ty::Set(Box::new(Ty::String))
        );
        assert_eq!(img.attr("build_args").unwrap().key, "buildArgs");
        // String-or-object cache entries (a model union) are their plain form here: the
        // buildx strings kreuzwerker/docker users write.
        for name in ["cache_from", "cache_to"] {
            let a = img.attr(name).unwrap();
            assert_eq!(a.ty, Ty::List(Box::new(Ty::String)), "{name}");
            assert!(a.optional && !a.sensitive, "{name}");
        }
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
        // Build nodes: a list of {endpoint, platforms (a set), tls {key sensitive}}.
        match &prov.attr("builders").unwrap().ty {
            Ty::List(t) => match t.as_ref() {
                Ty::Object(inner) => {
                    let attr = |n: &str| inner.iter().find(|a| a.name == n).unwrap();
                    assert!(!attr("endpoint").required);
                    assert_eq!(attr("endpoints").ty, Ty::Set(Box::new(Ty::String)));
                    assert_eq!(attr("max_parallel_solves").ty, Ty::Number);
                    assert!(attr("platforms").required);
                    assert_eq!(attr("platforms").ty, Ty::Set(Box::new(Ty::String)));
                    match &attr("tls").ty {
                        Ty::Object(tls) => {
                            assert!(tls.iter().any(|a| a.name == "key" && a.sensitive));
                        }
                        t => panic!("builders.tls: {t:?}"),
                    }
                }
                t => panic!("builders items: {t:?}"),
            },
            t => panic!("builders: {t:?}"),
        }
    }

    #[test]
    fn protocol_blocks_and_their_counts() {
        let blocks = resource_blocks();
        let (_, img) = blocks
            .iter()
            .find(|(n, _)| *n == "multiarch_image")
            .unwrap();
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
        // Single blocks: MinItems == MaxItems (0 optional, 1 required), as protocol 6 wants.
        let ctx_attr = img.attr("context").unwrap();
        let n = i64::from(ctx_attr.required);
        assert_eq!((ctx.min_items, ctx.max_items), (n, n));
        assert_single_blocks_have_equal_counts(&schema);
        // A list of objects holding objects: a list of blocks, its objects single blocks.
        use proto::schema::nested_block::NestingMode;
        let exports = schema
            .block_types
            .iter()
            .find(|b| b.type_name == "exports")
            .unwrap();
        assert_eq!(exports.nesting, NestingMode::List as i32);
        assert_eq!((exports.min_items, exports.max_items), (0, 0));
        let inner = exports.block.as_ref().unwrap();
        assert!(inner.attributes.is_empty());
        let kinds: Vec<(&str, i32, i64)> = inner
            .block_types
            .iter()
            .map(|b| (b.type_name.as_str(), b.nesting, b.max_items))
            .collect();
        let single = NestingMode::Single as i32;
        assert_eq!(
            kinds,
            [
                ("cacheonly", single, 0),
                ("docker", single, 0),
                ("local", single, 0),
                ("oci", single, 0),
                ("tar", single, 0)
            ]
        );
        assert!(is_block_list(img.attr("exports").unwrap()));
        // A list of flat objects stays a nested attribute.
        let ssh = schema.attributes.iter().find(|a| a.name == "ssh").unwrap();
        assert!(ssh.nested_type.is_some());
        let prov = to_proto(&provider_block(), false).block.unwrap();
        let regs = prov
            .attributes
            .iter()
            .find(|a| a.name == "registries")
            .unwrap();
        assert!(regs.nested_type.is_some() && regs.r#type.is_empty());
    }

    /// Every single-mode block in `b`, at any depth, has MinItems == MaxItems (0 or 1).
    fn assert_single_blocks_have_equal_counts(b: &proto::schema::Block) {
        use proto::schema::nested_block::NestingMode;
        for nb in &b.block_types {
            if nb.nesting == NestingMode::Single as i32 {
                assert_eq!(nb.min_items, nb.max_items, "{}", nb.type_name);
                assert!(nb.max_items <= 1, "{}", nb.type_name);
            }
            assert_single_blocks_have_equal_counts(nb.block.as_ref().unwrap());
        }
    }
}

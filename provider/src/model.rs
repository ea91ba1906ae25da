//! One typed model of each resource and of the provider configuration, derived once from the
//! Rust types' JSON Schemas (schemars) and the facts declared on their fields.
//!
//! A field's facts are declared on the field, and nowhere else:
//! - `#[schemars(extend("x-set" = true))]`: a list whose order never matters (Diff compares
//!   it as a set; Terraform types it as a set).
//! - a `SecretString` type (its schema carries `x-secret`), or `extend("x-secret" = true)`:
//!   a secret at any depth (Pulumi secret, Terraform `sensitive`).
//! - `extend("x-diff" = "ignore")`: never a change (short-lived registry passwords).
//! - `extend("x-output" = "always")`: an output that exists after every create (SDKs type
//!   it non-optional; unknown during preview).
//! - `extend("x-preview" = "unknown")`: an output a preview cannot know even when it knows
//!   the others (a resource's preview answers [`crate::resources::UnknownOutputs::Declared`]).
//! - `extend("x-terraform-name" = "pinned_ref")`: the attribute's Terraform name when
//!   the snake_case key cannot serve (a data source's output named like one of its inputs).
//! - `extend("x-secret-strings" = "buildx-cache")`: the strings in the value (a list of
//!   buildx cache strings) are secrets when they carry a credential (`type=gha,token=…`).
//! - `extend("x-required-when" = "<condition>")`: an optional field that Check requires under
//!   a condition on other fields, e.g. `tags` when `push` is true; the docs of both fronts say
//!   "Required when <condition>." (field names in backticks, spelled per front there).
//!
//! A value that is one of several kinds (a `#[serde(untagged)]` enum of a string and a named
//! object, JSON Schema `anyOf`) is a [`Kind::Union`]. Pulumi types it as the union
//! (`oneOf`: `string | CacheTo`); a front without unions (Terraform) takes its one scalar
//! alternative ([`Kind::plain`]), so a union must have exactly one.
//!
//! The generic Diff ([`changes`]), the secret paths of a value ([`secret_paths`]), the
//! Pulumi schema (`crate::schema`), the Terraform schema (`crate::terraform::schema`) and,
//! through the Pulumi schema, the docs all read this model.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use schemars::{schema_for, JsonSchema};
use serde_json::{Map, Value as Json};

use crate::path::PropertyPath;

/// Extension keys a field may carry; any other `x-` key is a typo and fails the model.
const KNOWN_EXTENSIONS: &[&str] = &[
    "x-set",
    "x-secret",
    "x-secret-strings",
    "x-diff",
    "x-output",
    "x-preview",
    "x-terraform-name",
    "x-required-when",
];

/// What a value is.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    String,
    Bool,
    Integer,
    Number,
    /// A named string enum.
    Enum(Arc<EnumType>),
    List(Box<Kind>),
    /// String keys to values of one kind.
    Map(Box<Kind>),
    Object(Arc<ObjectType>),
    /// One of these kinds (at most one scalar; the others named objects).
    Union(Vec<Kind>),
}

impl Kind {
    fn is_scalar(&self) -> bool {
        matches!(
            self,
            Kind::String | Kind::Bool | Kind::Integer | Kind::Number | Kind::Enum(_)
        )
    }

    /// The kind a front without union types uses: a union's scalar alternative (the
    /// string form of a string-or-object value); any other kind is itself.
    pub fn plain(&self) -> &Kind {
        match self {
            Kind::Union(alts) => alts.iter().find(|k| k.is_scalar()).unwrap_or(self),
            k => k,
        }
    }

    /// The object a value of this kind may be: itself, or a union's object alternative.
    fn object(&self) -> Option<&ObjectType> {
        match self {
            Kind::Object(o) => Some(o),
            Kind::Union(alts) => alts.iter().find_map(Kind::object),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnumValue {
    pub value: Json,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnumType {
    pub name: String,
    pub description: String,
    pub values: Vec<EnumValue>,
}

/// An object: a named type (`BuildContext`) or the root of a resource's inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectType {
    /// The Rust type's name, for named types.
    pub name: Option<String>,
    pub description: String,
    /// Sorted by key.
    pub fields: Vec<Field>,
}

/// One property and everything known about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The JSON key (camelCase).
    pub key: String,
    pub kind: Kind,
    /// The field's own description (its type's is on the type).
    pub description: String,
    pub required: bool,
    /// A scalar default shown in the schema.
    pub default: Option<Json>,
    pub set: bool,
    pub secret: bool,
    pub diff_ignored: bool,
    pub always_present: bool,
    /// Unknown in a preview that knows the other outputs (`x-preview = "unknown"`).
    pub preview_unknown: bool,
    /// Which strings in the value are secrets, judged by their content.
    pub secret_strings: Option<SecretStrings>,
    /// The Terraform name, when not the snake_case key (`x-terraform-name`).
    pub terraform_name: Option<String>,
    /// The condition under which an optional field is required (`x-required-when`).
    pub required_when: Option<String>,
}

/// Strings that are secrets by their content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretStrings {
    /// Buildx cache strings carrying a credential (`type=gha,token=…`).
    BuildxCache,
}

impl SecretStrings {
    fn holds(self, s: &str) -> bool {
        match self {
            SecretStrings::BuildxCache => crate::buildkit::string_holds_secret(s),
        }
    }
}

impl Field {
    /// The field's description, or its named type's when it has none of its own.
    pub fn description_or_type(&self) -> &str {
        match (&self.kind, self.description.is_empty()) {
            (Kind::Object(o), true) => &o.description,
            (Kind::Enum(e), true) => &e.description,
            _ => &self.description,
        }
    }

    /// The fields of the object this field holds (directly, in a list or in a map).
    fn nested(&self) -> Option<&[Field]> {
        fn of(k: &Kind) -> Option<&[Field]> {
            match k {
                Kind::List(k) | Kind::Map(k) => of(k),
                k => k.object().map(|o| o.fields.as_slice()),
            }
        }
        of(&self.kind)
    }
}

/// A resource: what the program sets and what the provider computes.
#[derive(Debug, Clone)]
pub struct ResourceModel {
    pub token: &'static str,
    pub tf_name: &'static str,
    pub description: &'static str,
    /// Sorted by key.
    pub inputs: Vec<Field>,
    /// State fields that are not inputs, sorted by key.
    pub outputs: Vec<Field>,
}

impl ResourceModel {
    pub fn new<I: JsonSchema, S: JsonSchema>(
        token: &'static str,
        tf_name: &'static str,
        description: &'static str,
    ) -> ResourceModel {
        let inputs = object_model::<I>().fields.clone();
        let outputs = object_model::<S>()
            .fields
            .iter()
            .filter(|f| !inputs.iter().any(|i| i.key == f.key))
            .cloned()
            .collect();
        ResourceModel {
            token,
            tf_name,
            description,
            inputs,
            outputs,
        }
    }

    /// Every state field: the inputs (recorded as given) and the outputs.
    pub fn state_fields(&self) -> impl Iterator<Item = &Field> {
        self.inputs.iter().chain(&self.outputs)
    }

    /// The output keys: all unknown until the provider has computed them.
    pub fn output_keys(&self) -> impl Iterator<Item = &str> {
        self.outputs.iter().map(|f| f.key.as_str())
    }
}

/// A function (a Pulumi invoke, a Terraform data source): its arguments and its result.
/// Unlike a resource's, the two are separate objects and may share a key (`ref`).
#[derive(Debug, Clone)]
pub struct FunctionModel {
    pub token: &'static str,
    pub tf_name: &'static str,
    pub description: &'static str,
    /// Sorted by key.
    pub inputs: Vec<Field>,
    /// Sorted by key.
    pub outputs: Vec<Field>,
}

impl FunctionModel {
    pub fn new<A: JsonSchema, R: JsonSchema>(
        token: &'static str,
        tf_name: &'static str,
        description: &'static str,
    ) -> FunctionModel {
        FunctionModel {
            token,
            tf_name,
            description,
            inputs: object_model::<A>().fields,
            outputs: object_model::<R>().fields,
        }
    }
}

/// The model of a type: its JSON Schema walked once.
pub fn object_model<T: JsonSchema>() -> ObjectType {
    let schema = serde_json::to_value(schema_for!(T)).expect("a JSON Schema serializes");
    let empty = Map::new();
    let defs = schema
        .get("$defs")
        .and_then(Json::as_object)
        .unwrap_or(&empty);
    let mut walker = Walker {
        defs,
        named: HashMap::new(),
    };
    let mut root = walker.object(&schema, None);
    root.name = None;
    root
}

struct Walker<'a> {
    defs: &'a Map<String, Json>,
    named: HashMap<String, Kind>,
}

impl Walker<'_> {
    fn object(&mut self, s: &Json, name: Option<&str>) -> ObjectType {
        let required: Vec<&str> = s
            .get("required")
            .and_then(Json::as_array)
            .map(|a| a.iter().filter_map(Json::as_str).collect())
            .unwrap_or_default();
        let mut fields: Vec<Field> = s
            .get("properties")
            .and_then(Json::as_object)
            .map(|props| {
                props
                    .iter()
                    .map(|(k, v)| self.field(k, v, required.contains(&k.as_str())))
                    .collect()
            })
            .unwrap_or_default();
        fields.sort_by(|a, b| a.key.cmp(&b.key));
        ObjectType {
            name: name.map(str::to_owned),
            description: text(s, "description"),
            fields,
        }
    }

    fn field(&mut self, key: &str, v: &Json, required: bool) -> Field {
        if let Some(m) = v.as_object() {
            for k in m.keys().filter(|k| k.starts_with("x-")) {
                assert!(
                    KNOWN_EXTENSIONS.contains(&k.as_str()),
                    "field {key:?} declares unknown fact {k:?} (known: {KNOWN_EXTENSIONS:?})"
                );
            }
        }
        let kind = self.kind(v);
        let description = text(v, "description");
        Field {
            key: key.to_owned(),
            set: v.get("x-set") == Some(&Json::Bool(true)),
            secret: holds_secret(v),
            diff_ignored: v.get("x-diff").and_then(Json::as_str) == Some("ignore"),
            always_present: v.get("x-output").and_then(Json::as_str) == Some("always"),
            preview_unknown: v.get("x-preview").and_then(Json::as_str) == Some("unknown"),
            secret_strings: match v.get("x-secret-strings").and_then(Json::as_str) {
                None => None,
                Some("buildx-cache") => Some(SecretStrings::BuildxCache),
                Some(other) => panic!("field {key:?}: unknown x-secret-strings {other:?}"),
            },
            terraform_name: v
                .get("x-terraform-name")
                .and_then(Json::as_str)
                .map(str::to_owned),
            required_when: v
                .get("x-required-when")
                .and_then(Json::as_str)
                .map(str::to_owned),
            default: v
                .get("default")
                .filter(|d| d.is_boolean() || d.is_string() || d.is_number())
                .cloned(),
            kind,
            description,
            required,
        }
    }

    fn named(&mut self, name: &str) -> Kind {
        if let Some(k) = self.named.get(name) {
            return k.clone();
        }
        let Some(def) = self.defs.get(name) else {
            return Kind::String;
        };
        let kind = match enum_values(def) {
            Some(values) => Kind::Enum(Arc::new(EnumType {
                name: name.to_owned(),
                description: text(def, "description"),
                values,
            })),
            // A named union (an untagged enum) is its alternatives; it has no name of its own.
            None if def.get("properties").is_none()
                && (def.get("anyOf").is_some() || def.get("oneOf").is_some()) =>
            {
                self.kind(def)
            }
            None => Kind::Object(Arc::new(self.object(def, Some(name)))),
        };
        self.named.insert(name.to_owned(), kind.clone());
        kind
    }

    fn kind(&mut self, s: &Json) -> Kind {
        if let Some(r) = s.get("$ref").and_then(Json::as_str) {
            return self.named(r.rsplit('/').next().unwrap_or(r));
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(alts) = s.get(key).and_then(Json::as_array) {
                let non_null: Vec<&Json> = alts
                    .iter()
                    .filter(|a| a.get("type") != Some(&Json::from("null")))
                    .collect();
                if non_null.len() == 1 {
                    return self.kind(non_null[0]);
                }
                let alts: Vec<Kind> = non_null.iter().map(|a| self.kind(a)).collect();
                if alts.iter().all(|k| *k == Kind::String) {
                    return Kind::String;
                }
                return union(alts);
            }
        }
        if s.get("enum").is_some() || s.get("const").is_some() {
            return Kind::String;
        }
        match type_name(s) {
            "array" => Kind::List(Box::new(
                s.get("items").map_or(Kind::String, |i| self.kind(i)),
            )),
            "object" if s.get("properties").is_some() => {
                Kind::Object(Arc::new(self.object(s, None)))
            }
            "object" => Kind::Map(Box::new(match s.get("additionalProperties") {
                Some(ap) if ap.is_object() => self.kind(ap),
                _ => Kind::String,
            })),
            "boolean" => Kind::Bool,
            "integer" => Kind::Integer,
            "number" => Kind::Number,
            _ => Kind::String,
        }
    }
}

/// A union the fronts can carry: exactly one scalar alternative (what Terraform takes), the
/// others named objects (Pulumi names each in its `oneOf`). Anything else is a mistake in
/// the types, found by the first test that builds the model.
fn union(alts: Vec<Kind>) -> Kind {
    let scalars = alts.iter().filter(|k| k.is_scalar()).count();
    let named_objects = alts
        .iter()
        .all(|k| k.is_scalar() || matches!(k, Kind::Object(o) if o.name.is_some()));
    assert!(
        scalars == 1 && named_objects,
        "a union needs exactly one scalar alternative and named object types otherwise: {alts:?}"
    );
    Kind::Union(alts)
}

fn text(s: &Json, key: &str) -> String {
    s.get(key)
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// `"string"`, or the first non-null entry of `["string", "null"]`.
fn type_name(s: &Json) -> &str {
    match s.get("type") {
        Some(Json::String(t)) => t,
        Some(Json::Array(ts)) => ts
            .iter()
            .filter_map(Json::as_str)
            .find(|t| *t != "null")
            .unwrap_or("string"),
        _ => "string",
    }
}

/// A field is secret when it is, or directly holds, a secret value (`Option<SecretString>`,
/// a map or list of `SecretString`): the whole property is then secret.
fn holds_secret(v: &Json) -> bool {
    if v.get("x-secret") == Some(&Json::Bool(true)) {
        return true;
    }
    let inner = ["items", "additionalProperties"]
        .iter()
        .filter_map(|k| v.get(*k))
        .chain(
            ["anyOf", "oneOf"]
                .iter()
                .filter_map(|k| v.get(*k).and_then(Json::as_array))
                .flatten(),
        );
    inner
        .into_iter()
        .any(|i| i.get("x-secret") == Some(&Json::Bool(true)))
}

/// String enums as schemars writes them: `enum: [...]` or `oneOf` of `const`s.
fn enum_values(s: &Json) -> Option<Vec<EnumValue>> {
    let plain = |v: &Json| EnumValue {
        value: v.clone(),
        description: None,
    };
    if let Some(e) = s.get("enum").and_then(Json::as_array) {
        return Some(e.iter().map(plain).collect());
    }
    let alts = s.get("oneOf").and_then(Json::as_array)?;
    let mut values = Vec::new();
    for a in alts {
        if let Some(c) = a.get("const") {
            values.push(EnumValue {
                value: c.clone(),
                description: a
                    .get("description")
                    .and_then(Json::as_str)
                    .map(str::to_owned),
            });
        } else if let Some(e) = a.get("enum").and_then(Json::as_array) {
            values.extend(e.iter().map(plain));
        } else {
            return None;
        }
    }
    Some(values)
}

/// The top-level keys whose values differ between two values of the same type, as the
/// fields' facts say: sets compared as sets, `x-diff = "ignore"` fields never, objects
/// field by field (their own facts apply), everything else as JSON.
pub fn changes(
    fields: &[Field],
    olds: &Map<String, Json>,
    news: &Map<String, Json>,
) -> Vec<String> {
    fields
        .iter()
        .filter(|f| !same_field(f, olds.get(&f.key), news.get(&f.key)))
        .map(|f| f.key.clone())
        .collect()
}

fn same_field(f: &Field, a: Option<&Json>, b: Option<&Json>) -> bool {
    if f.diff_ignored {
        return true;
    }
    match (a, b) {
        (Some(Json::Array(x)), Some(Json::Array(y))) if f.set => {
            let canon =
                |v: &Vec<Json>| -> BTreeSet<String> { v.iter().map(Json::to_string).collect() };
            canon(x) == canon(y)
        }
        (Some(x), Some(y)) => same_value(f.nested(), x, y),
        (None, None) => true,
        (Some(x), None) | (None, Some(x)) => x.is_null(),
    }
}

/// Values of a field; `nested` are the fields of the objects it holds.
fn same_value(nested: Option<&[Field]>, a: &Json, b: &Json) -> bool {
    match (nested, a, b) {
        (Some(fields), Json::Object(x), Json::Object(y)) if has_facts(fields) => {
            changes(fields, x, y).is_empty()
        }
        (Some(fields), Json::Array(x), Json::Array(y)) if has_facts(fields) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(Some(fields), p, q))
        }
        _ => a == b,
    }
}

/// Whether comparing field by field can differ from comparing as JSON.
fn has_facts(fields: &[Field]) -> bool {
    fields
        .iter()
        .any(|f| f.set || f.diff_ignored || f.nested().is_some_and(has_facts))
}

/// The paths of the secret values present in `value`, at any depth.
pub fn secret_paths(fields: &[Field], value: &Map<String, Json>) -> BTreeSet<PropertyPath> {
    let mut out = BTreeSet::new();
    for f in fields {
        if let Some(v) = value.get(&f.key) {
            walk_secrets(f, v, PropertyPath::root_key(&f.key), &mut out);
        }
    }
    out
}

fn walk_secrets(f: &Field, v: &Json, path: PropertyPath, out: &mut BTreeSet<PropertyPath>) {
    if v.is_null() {
        return;
    }
    if f.secret {
        out.insert(path);
        return;
    }
    if let Some(holds) = f.secret_strings {
        walk_strings(v, &path, holds, out);
    }
    walk_kind(&f.kind, v, path, out);
}

/// The strings at or below `v` that `holds` says carry a secret.
fn walk_strings(
    v: &Json,
    path: &PropertyPath,
    holds: SecretStrings,
    out: &mut BTreeSet<PropertyPath>,
) {
    match v {
        Json::String(s) if holds.holds(s) => {
            out.insert(path.clone());
        }
        Json::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk_strings(item, &path.index(i), holds, out);
            }
        }
        _ => {}
    }
}

fn walk_kind(kind: &Kind, v: &Json, path: PropertyPath, out: &mut BTreeSet<PropertyPath>) {
    match (kind, v) {
        (Kind::Object(o), Json::Object(m)) => {
            for f in &o.fields {
                if let Some(x) = m.get(&f.key) {
                    walk_secrets(f, x, path.key(&f.key), out);
                }
            }
        }
        (Kind::List(k), Json::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                walk_kind(k, item, path.index(i), out);
            }
        }
        (Kind::Map(k), Json::Object(m)) => {
            for (key, x) in m {
                walk_kind(k, x, path.key(key), out);
            }
        }
        (Kind::Union(alts), v) => {
            // Only the alternative of the value's own shape matches below.
            for k in alts {
                walk_kind(k, v, path.clone(), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;

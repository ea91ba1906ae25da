//! `google.protobuf.Struct` <-> plain JSON, written once for every resource.
//!
//! Pulumi encodes unknowns, secrets, output values and resource references inside ordinary
//! Struct values using "signature" keys and sentinel strings. The resources never see those:
//! decoding strips them into a plain JSON object plus the property paths where unknowns and
//! secrets were; encoding puts them back.

use std::collections::{BTreeMap, BTreeSet};

use prost_types::{value::Kind, ListValue, Struct, Value};
use serde_json::{Map, Number, Value as Json};

use crate::model::{self, Field};
use crate::path::PropertyPath;

/// The generic unknown a Pulumi engine sends (and the one we send back).
pub const UNKNOWN: &str = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
/// Typed unknown sentinels; older engines and SDKs send these.
const TYPED_UNKNOWNS: [&str; 6] = [
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7", // bool
    "3eeb2bf0-c639-47a8-9e75-3b44932eb421", // number
    "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2", // array
    "030794c1-ac77-496b-92df-f27374a8bd58", // asset
    "e48ece36-62e2-4504-bad9-02848725956a", // archive
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff", // object
];
pub const SIG_KEY: &str = "4dabf18193072939515e22adb298388d";
pub const SECRET_SIG: &str = "1b47061264138c4ac30d75fd1eb44270";
pub const OUTPUT_SIG: &str = "d0e6a833031e9bbcd3f4e8bde6ca49a4";
pub const RESOURCE_SIG: &str = "5cf8f73096256a8f31e491e813e4eb8e";

fn is_unknown_sentinel(s: &str) -> bool {
    s == UNKNOWN || TYPED_UNKNOWNS.contains(&s)
}

/// A property map as the resources see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decoded {
    /// Known values only. Unknown object members are absent; unknown array elements are
    /// left out (their original index is in `unknowns`).
    pub value: Map<String, Json>,
    pub unknowns: BTreeSet<PropertyPath>,
    pub secrets: BTreeSet<PropertyPath>,
}

impl Decoded {
    /// Top-level property names holding a secret anywhere inside them.
    pub fn secret_roots(&self) -> BTreeSet<String> {
        self.secrets
            .iter()
            .filter_map(|p| p.root().map(str::to_owned))
            .collect()
    }

    /// Top-level property names holding an unknown anywhere inside them.
    #[cfg(test)]
    pub fn unknown_roots(&self) -> BTreeSet<String> {
        self.unknowns
            .iter()
            .filter_map(|p| p.root().map(str::to_owned))
            .collect()
    }
}

/// Decodes a Struct from the engine.
pub fn decode(s: Option<&Struct>) -> Decoded {
    let mut out = Decoded::default();
    if let Some(s) = s {
        for (k, v) in &s.fields {
            let path = PropertyPath::root_key(k);
            if let Some(j) = decode_value(v, &path, &mut out) {
                out.value.insert(k.clone(), j);
            }
        }
    }
    out
}

/// Returns None where the value is unknown (and records the path).
fn decode_value(v: &Value, path: &PropertyPath, out: &mut Decoded) -> Option<Json> {
    match v.kind.as_ref() {
        None | Some(Kind::NullValue(_)) => Some(Json::Null),
        Some(Kind::BoolValue(b)) => Some(Json::Bool(*b)),
        Some(Kind::NumberValue(n)) => Some(number(*n)),
        Some(Kind::StringValue(s)) => {
            if is_unknown_sentinel(s) {
                out.unknowns.insert(path.clone());
                None
            } else {
                Some(Json::String(s.clone()))
            }
        }
        Some(Kind::ListValue(l)) => {
            let mut items = Vec::with_capacity(l.values.len());
            for (i, item) in l.values.iter().enumerate() {
                if let Some(j) = decode_value(item, &path.index(i), out) {
                    items.push(j);
                }
            }
            Some(Json::Array(items))
        }
        Some(Kind::StructValue(s)) => decode_object(s, path, out),
    }
}

fn decode_object(s: &Struct, path: &PropertyPath, out: &mut Decoded) -> Option<Json> {
    let sig = s.fields.get(SIG_KEY).and_then(|v| match &v.kind {
        Some(Kind::StringValue(s)) => Some(s.as_str()),
        _ => None,
    });
    match sig {
        Some(SECRET_SIG) => {
            out.secrets.insert(path.clone());
            match s.fields.get("value") {
                Some(inner) => decode_value(inner, path, out),
                None => Some(Json::Null),
            }
        }
        Some(OUTPUT_SIG) => {
            let secret = matches!(
                s.fields.get("secret").and_then(|v| v.kind.as_ref()),
                Some(Kind::BoolValue(true))
            );
            if secret {
                out.secrets.insert(path.clone());
            }
            match s.fields.get("value") {
                Some(inner) => decode_value(inner, path, out),
                None => {
                    out.unknowns.insert(path.clone());
                    None
                }
            }
        }
        // A resource reference stands for its ID (what a plain value would have held).
        Some(RESOURCE_SIG) => match s.fields.get("id") {
            Some(id) => decode_value(id, path, out),
            None => s.fields.get("urn").and_then(|u| decode_value(u, path, out)),
        },
        _ => {
            let mut m = Map::new();
            for (k, v) in &s.fields {
                if let Some(j) = decode_value(v, &path.key(k), out) {
                    m.insert(k.clone(), j);
                }
            }
            Some(Json::Object(m))
        }
    }
}

fn number(n: f64) -> Json {
    if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        Json::Number(Number::from(n as i64))
    } else {
        Number::from_f64(n).map(Json::Number).unwrap_or(Json::Null)
    }
}

/// Encodes outputs for the engine. `unknowns` are placed at their paths (the value there,
/// if any, is replaced; left-out list elements get their slots back); the values at
/// `secret_paths` (any depth), and at the paths `schema_secrets` finds in the value, are
/// wrapped as secrets.
pub fn encode(
    value: &Map<String, Json>,
    unknowns: &BTreeSet<PropertyPath>,
    secret_paths: &BTreeSet<PropertyPath>,
    schema_secrets: Option<&[Field]>,
) -> Struct {
    let mut value = Json::Object(value.clone());
    PropertyPath::restore_all(unknowns, &mut value, &Json::String(UNKNOWN.to_owned()));
    let Json::Object(map) = value else {
        unreachable!("an object stays an object")
    };
    let mut secrets = secret_paths.clone();
    if let Some(fields) = schema_secrets {
        secrets.extend(model::secret_paths(fields, &map));
    }
    let fields: BTreeMap<String, Value> = map
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                encode_at(v, &PropertyPath::root_key(k), &secrets),
            )
        })
        .collect();
    Struct {
        fields: fields.into_iter().collect(),
    }
}

/// A secret's whole value is wrapped once; nothing inside it is wrapped again.
fn encode_at(v: &Json, path: &PropertyPath, secrets: &BTreeSet<PropertyPath>) -> Value {
    if secrets.contains(path) {
        return secret(encode_value(v));
    }
    if !secrets.iter().any(|s| s.starts_with(path)) {
        return encode_value(v);
    }
    let kind = match v {
        Json::Array(a) => Kind::ListValue(ListValue {
            values: a
                .iter()
                .enumerate()
                .map(|(i, x)| encode_at(x, &path.index(i), secrets))
                .collect(),
        }),
        Json::Object(m) => Kind::StructValue(Struct {
            fields: m
                .iter()
                .map(|(k, x)| (k.clone(), encode_at(x, &path.key(k), secrets)))
                .collect(),
        }),
        other => return encode_value(other),
    };
    Value { kind: Some(kind) }
}

fn secret(v: Value) -> Value {
    let mut fields = BTreeMap::new();
    fields.insert(SIG_KEY.to_owned(), string(SECRET_SIG));
    fields.insert("value".to_owned(), v);
    Value {
        kind: Some(Kind::StructValue(Struct {
            fields: fields.into_iter().collect(),
        })),
    }
}

fn string(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.to_owned())),
    }
}

/// Plain JSON to a protobuf Value (no signatures added).
pub fn encode_value(v: &Json) -> Value {
    let kind = match v {
        Json::Null => Kind::NullValue(0),
        Json::Bool(b) => Kind::BoolValue(*b),
        Json::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        Json::String(s) => Kind::StringValue(s.clone()),
        Json::Array(a) => Kind::ListValue(ListValue {
            values: a.iter().map(encode_value).collect(),
        }),
        Json::Object(m) => Kind::StructValue(Struct {
            fields: m
                .iter()
                .map(|(k, v)| (k.clone(), encode_value(v)))
                .collect(),
        }),
    };
    Value { kind: Some(kind) }
}

/// Plain protobuf Struct to JSON, keeping signature objects as they are (for `__internal`
/// and other engine keys we pass back untouched).
#[cfg(test)]
pub fn struct_to_json(s: &Struct) -> Map<String, Json> {
    s.fields
        .iter()
        .map(|(k, v)| (k.clone(), value_to_json(v)))
        .collect()
}

#[cfg(test)]
fn value_to_json(v: &Value) -> Json {
    match v.kind.as_ref() {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::BoolValue(b)) => Json::Bool(*b),
        Some(Kind::NumberValue(n)) => number(*n),
        Some(Kind::StringValue(s)) => Json::String(s.clone()),
        Some(Kind::ListValue(l)) => Json::Array(l.values.iter().map(value_to_json).collect()),
        Some(Kind::StructValue(s)) => Json::Object(struct_to_json(s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn to_struct(j: Json) -> Struct {
        match encode_value(&j).kind {
            Some(Kind::StructValue(s)) => s,
            _ => panic!("not an object"),
        }
    }

    fn paths(ps: &[&str]) -> BTreeSet<PropertyPath> {
        ps.iter().map(|p| PropertyPath::parse(p).unwrap()).collect()
    }

    #[test]
    fn plain_values_round_trip() {
        let j = json!({"a": "x", "n": 3, "f": 1.5, "b": true, "z": null, "l": [1, "two"], "o": {"k": "v"}});
        let d = decode(Some(&to_struct(j.clone())));
        assert_eq!(Json::Object(d.value.clone()), j);
        assert!(d.unknowns.is_empty() && d.secrets.is_empty());
        let back = encode(&d.value, &BTreeSet::new(), &BTreeSet::new(), None);
        assert_eq!(back, to_struct(j));
    }

    #[test]
    fn every_unknown_sentinel_is_unknown() {
        for s in std::iter::once(UNKNOWN).chain(TYPED_UNKNOWNS) {
            let d = decode(Some(&to_struct(json!({"tags": s, "keep": "k"}))));
            assert_eq!(d.unknowns, paths(&["tags"]), "sentinel {s}");
            assert_eq!(Json::Object(d.value), json!({"keep": "k"}));
        }
    }

    #[test]
    fn nested_unknowns_record_their_paths() {
        let d = decode(Some(&to_struct(json!({
            "tags": ["a", UNKNOWN, "c"],
            "context": {"location": TYPED_UNKNOWNS[5]},
            "annotations": {"org.opencontainers.image.source": UNKNOWN},
        }))));
        assert_eq!(
            d.unknowns,
            paths(&[
                "tags[1]",
                "context.location",
                "annotations[\"org.opencontainers.image.source\"]"
            ])
        );
        assert_eq!(d.value["tags"], json!(["a", "c"]));
        assert_eq!(d.value["context"], json!({}));
        assert_eq!(
            d.unknown_roots(),
            ["annotations", "context", "tags"].map(String::from).into()
        );
    }

    #[test]
    fn output_value_without_value_is_unknown_and_with_secret_is_secret() {
        let d = decode(Some(&to_struct(json!({
            "a": {SIG_KEY: OUTPUT_SIG, "dependencies": ["urn:x"]},
            "b": {SIG_KEY: OUTPUT_SIG, "value": "v", "secret": true},
            "c": {SIG_KEY: OUTPUT_SIG, "value": ["x"]},
        }))));
        assert_eq!(d.unknowns, paths(&["a"]));
        assert_eq!(d.secrets, paths(&["b"]));
        assert_eq!(Json::Object(d.value), json!({"b": "v", "c": ["x"]}));
    }

    #[test]
    fn secrets_unwrap_anywhere_and_wrap_by_root() {
        let d = decode(Some(&to_struct(json!({
            "secrets": {"token": {SIG_KEY: SECRET_SIG, "value": "s3cr3t"}},
            "password": {SIG_KEY: SECRET_SIG, "value": "pw"},
            "plain": "p",
        }))));
        assert_eq!(d.secrets, paths(&["secrets.token", "password"]));
        assert_eq!(d.value["secrets"], json!({"token": "s3cr3t"}));
        let roots: BTreeSet<PropertyPath> = d
            .secret_roots()
            .iter()
            .map(|r| PropertyPath::root_key(r))
            .collect();
        let s = encode(&d.value, &BTreeSet::new(), &roots, None);
        let back = struct_to_json(&s);
        assert_eq!(
            back["password"],
            json!({SIG_KEY: SECRET_SIG, "value": "pw"})
        );
        assert_eq!(
            back["secrets"],
            json!({SIG_KEY: SECRET_SIG, "value": {"token": "s3cr3t"}})
        );
        assert_eq!(back["plain"], json!("p"));
    }

    #[test]
    fn secrets_wrap_at_any_depth_and_around_unknowns() {
        let value = json!({"registries": [{"address": "a", "password": "pw"}, {"address": "b"}]});
        let Json::Object(m) = value else {
            unreachable!()
        };
        let s = encode(
            &m,
            &paths(&["registries[1].password"]),
            &paths(&["registries[0].password", "registries[1].password"]),
            None,
        );
        let back = struct_to_json(&s);
        assert_eq!(
            back["registries"],
            json!([
                {"address": "a", "password": {SIG_KEY: SECRET_SIG, "value": "pw"}},
                {"address": "b", "password": {SIG_KEY: SECRET_SIG, "value": UNKNOWN}}
            ])
        );
    }

    #[test]
    fn secret_wrapping_an_unknown_is_both() {
        let d = decode(Some(&to_struct(json!({
            "password": {SIG_KEY: SECRET_SIG, "value": UNKNOWN},
        }))));
        assert_eq!(d.secrets, paths(&["password"]));
        assert_eq!(d.unknowns, paths(&["password"]));
        assert!(d.value.is_empty());
    }

    #[test]
    fn resource_reference_decodes_to_its_id() {
        let d = decode(Some(&to_struct(json!({
            "r": {SIG_KEY: RESOURCE_SIG, "urn": "urn:pulumi:x", "id": "abc"},
        }))));
        assert_eq!(d.value["r"], json!("abc"));
    }

    #[test]
    fn encode_places_unknowns_at_paths() {
        let value = json!({"tags": ["a"], "digest": null, "context": {"location": "."}});
        let Json::Object(m) = value else {
            unreachable!()
        };
        let s = encode(
            &m,
            &paths(&["digest", "ref", "tags[1]", "context.location"]),
            &BTreeSet::new(),
            None,
        );
        let back = struct_to_json(&s);
        assert_eq!(back["digest"], json!(UNKNOWN));
        assert_eq!(back["ref"], json!(UNKNOWN));
        assert_eq!(back["tags"], json!(["a", UNKNOWN]));
        assert_eq!(back["context"], json!({"location": UNKNOWN}));
    }

    #[test]
    fn integers_stay_integers_and_fractions_stay_fractions() {
        let d = decode(Some(&to_struct(json!({"i": 42, "f": 0.25, "big": 1e300}))));
        assert_eq!(d.value["i"], json!(42));
        assert_eq!(d.value["f"], json!(0.25));
        assert_eq!(d.value["big"].as_f64(), Some(1e300));
    }
}

//! Terraform's DynamicValue (msgpack, or JSON for stored states) <-> the core's JSON values.
//! Attribute names are mapped (snake_case <-> camelCase) from the schema; any msgpack
//! extension value is an unknown; nulls are absent keys in JSON and present in msgpack.

use std::collections::BTreeSet;

use rmpv::Value as Mp;
use serde_json::{Map, Number, Value as Json};

use super::schema::{Attr, Ty};
use crate::resources::PropertyPath;

/// How we write an unknown value (Terraform reads any extension as unknown).
pub fn unknown() -> Mp {
    Mp::Ext(0, vec![0])
}

pub fn from_msgpack_bytes(b: &[u8]) -> Result<Mp, String> {
    if b.is_empty() {
        return Ok(Mp::Nil);
    }
    rmpv::decode::read_value(&mut &b[..]).map_err(|e| format!("decoding msgpack: {e}"))
}

pub fn to_msgpack_bytes(v: &Mp) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, v).expect("writing to a Vec cannot fail");
    out
}

/// The value of `name` in a msgpack map.
pub fn get<'a>(obj: &'a Mp, name: &str) -> Option<&'a Mp> {
    match obj {
        Mp::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(name))
            .map(|(_, v)| v),
        _ => None,
    }
}

/// A msgpack object with every attribute of `attrs`, in schema order.
pub fn object(attrs: &[Attr], mut value_of: impl FnMut(&Attr) -> Mp) -> Mp {
    Mp::Map(
        attrs
            .iter()
            .map(|a| (Mp::from(a.name.as_str()), value_of(a)))
            .collect(),
    )
}

/// Decodes an object value into the core's JSON map (camelCase keys, nulls left out) and
/// the paths of its unknowns.
pub fn decode_object(v: &Mp, attrs: &[Attr]) -> (Map<String, Json>, BTreeSet<PropertyPath>) {
    let mut unknowns = BTreeSet::new();
    let mut out = Map::new();
    if let Mp::Map(_) = v {
        for a in attrs {
            if let Some(x) = get(v, &a.name) {
                let path = PropertyPath::root_key(&a.key);
                if let Some(j) = decode(x, &a.ty, &path, &mut unknowns) {
                    out.insert(a.key.clone(), j);
                }
            }
        }
    }
    (out, unknowns)
}

fn decode(
    v: &Mp,
    ty: &Ty,
    path: &PropertyPath,
    unknowns: &mut BTreeSet<PropertyPath>,
) -> Option<Json> {
    match v {
        Mp::Nil => return None,
        Mp::Ext(_, _) => {
            unknowns.insert(path.clone());
            return None;
        }
        _ => {}
    }
    Some(match ty {
        Ty::String => match v {
            Mp::String(s) => Json::String(s.as_str().unwrap_or_default().to_owned()),
            Mp::Boolean(b) => Json::String(b.to_string()),
            Mp::Integer(i) => Json::String(i.to_string()),
            Mp::F64(f) => Json::String(f.to_string()),
            _ => return None,
        },
        Ty::Bool => match v {
            Mp::Boolean(b) => Json::Bool(*b),
            Mp::String(s) => Json::Bool(s.as_str() == Some("true")),
            _ => return None,
        },
        Ty::Number => match v {
            Mp::Integer(i) => i
                .as_i64()
                .map(Json::from)
                .or_else(|| i.as_u64().map(Json::from))
                .unwrap_or(Json::Null),
            Mp::F64(f) => Number::from_f64(*f).map(Json::Number).unwrap_or(Json::Null),
            Mp::F32(f) => Number::from_f64(f64::from(*f))
                .map(Json::Number)
                .unwrap_or(Json::Null),
            Mp::String(s) => s
                .as_str()
                .and_then(|s| serde_json::from_str::<Number>(s).ok())
                .map(Json::Number)
                .unwrap_or(Json::Null),
            _ => return None,
        },
        Ty::List(t) | Ty::Set(t) => match v {
            Mp::Array(items) => Json::Array(
                items
                    .iter()
                    .enumerate()
                    // An unknown element is left out; its path records where it was.
                    .filter_map(|(i, x)| decode(x, t, &path.index(i), unknowns))
                    .collect(),
            ),
            _ => return None,
        },
        Ty::Map(t) => match v {
            Mp::Map(entries) => Json::Object(
                entries
                    .iter()
                    .filter_map(|(k, x)| {
                        let k = k.as_str()?;
                        decode(x, t, &path.key(k), unknowns).map(|j| (k.to_owned(), j))
                    })
                    .collect(),
            ),
            _ => return None,
        },
        Ty::Object(attrs) => {
            let mut out = Map::new();
            for a in attrs {
                if let Some(x) = get(v, &a.name) {
                    if let Some(j) = decode(x, &a.ty, &path.key(&a.key), unknowns) {
                        out.insert(a.key.clone(), j);
                    }
                }
            }
            Json::Object(out)
        }
    })
}

/// Encodes one core JSON value (camelCase keys) as msgpack of type `ty`; paths in
/// `unknowns` become unknown values.
pub fn encode(
    v: Option<&Json>,
    ty: &Ty,
    path: &PropertyPath,
    unknowns: &BTreeSet<PropertyPath>,
) -> Mp {
    if unknowns.contains(path) {
        return unknown();
    }
    let v = match v {
        None | Some(Json::Null) => return Mp::Nil,
        Some(v) => v,
    };
    match ty {
        Ty::String => match v {
            Json::String(s) => Mp::from(s.as_str()),
            other => Mp::from(other.to_string()),
        },
        Ty::Bool => match v {
            Json::Bool(b) => Mp::Boolean(*b),
            _ => Mp::Nil,
        },
        Ty::Number => match v {
            Json::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Mp::from(i)
                } else if let Some(u) = n.as_u64() {
                    Mp::from(u)
                } else {
                    Mp::F64(n.as_f64().unwrap_or_default())
                }
            }
            _ => Mp::Nil,
        },
        Ty::List(t) | Ty::Set(t) => match v {
            Json::Array(items) => Mp::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, x)| encode(Some(x), t, &path.index(i), unknowns))
                    .collect(),
            ),
            _ => Mp::Nil,
        },
        Ty::Map(t) => match v {
            Json::Object(m) => Mp::Map(
                m.iter()
                    .map(|(k, x)| {
                        (
                            Mp::from(k.as_str()),
                            encode(Some(x), t, &path.key(k), unknowns),
                        )
                    })
                    .collect(),
            ),
            _ => Mp::Nil,
        },
        Ty::Object(attrs) => match v {
            Json::Object(m) => object(attrs, |a| {
                encode(m.get(&a.key), &a.ty, &path.key(&a.key), unknowns)
            }),
            _ => Mp::Nil,
        },
    }
}

/// Encodes one top-level attribute from a core map.
/// Unknown elements left out of lists when decoding get their slots back first.
pub fn encode_attr(a: &Attr, value: &Map<String, Json>, unknowns: &BTreeSet<PropertyPath>) -> Mp {
    match encode_attr_value(a, value, unknowns) {
        // No blocks of a list of blocks is an empty list, never null.
        Mp::Nil if super::schema::is_block_list(a) => Mp::Array(Vec::new()),
        v => v,
    }
}

fn encode_attr_value(a: &Attr, value: &Map<String, Json>, unknowns: &BTreeSet<PropertyPath>) -> Mp {
    let root = PropertyPath::root_key(&a.key);
    let inside: BTreeSet<PropertyPath> = unknowns
        .iter()
        .filter(|p| p.starts_with(&root) && **p != root)
        .cloned()
        .collect();
    if inside.is_empty() {
        return encode(value.get(&a.key), &a.ty, &root, unknowns);
    }
    let mut whole = Json::Object(Map::new());
    if let Some(v) = value.get(&a.key) {
        whole[&a.key] = v.clone();
    }
    PropertyPath::restore_all(&inside, &mut whole, &Json::Null);
    encode(whole.get(&a.key), &a.ty, &root, unknowns)
}

/// A stored state (JSON with Terraform's attribute names) as msgpack of type `ty`.
pub fn from_state_json(v: &Json, ty: &Ty) -> Mp {
    match (ty, v) {
        (_, Json::Null) => Mp::Nil,
        (Ty::String, Json::String(s)) => Mp::from(s.as_str()),
        (Ty::String, other) => Mp::from(other.to_string()),
        (Ty::Bool, Json::Bool(b)) => Mp::Boolean(*b),
        (Ty::Number, Json::Number(_)) => {
            encode(Some(v), ty, &PropertyPath::default(), &BTreeSet::new())
        }
        (Ty::List(t) | Ty::Set(t), Json::Array(items)) => {
            Mp::Array(items.iter().map(|x| from_state_json(x, t)).collect())
        }
        (Ty::Map(t), Json::Object(m)) => Mp::Map(
            m.iter()
                .map(|(k, x)| (Mp::from(k.as_str()), from_state_json(x, t)))
                .collect(),
        ),
        (Ty::Object(attrs), Json::Object(m)) => object(attrs, |a| {
            m.get(&a.name)
                .map(|x| from_state_json(x, &a.ty))
                .unwrap_or(Mp::Nil)
        }),
        _ => Mp::Nil,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terraform::schema::resource_blocks;
    use serde_json::json;

    #[test]
    fn round_trip_with_names_nulls_and_unknowns() {
        let blocks = resource_blocks();
        let (_, img) = blocks
            .iter()
            .find(|(n, _)| *n == "multiarch_image")
            .unwrap();
        let v = object(&img.attrs, |a| match a.name.as_str() {
            "platforms" => Mp::Array(vec![Mp::from("linux/amd64"), Mp::Ext(12, vec![])]),
            "build_args" => Mp::Map(vec![(Mp::from("A_B"), Mp::from("1"))]),
            "context" => object(
                match &a.ty {
                    Ty::Object(inner) => inner,
                    _ => unreachable!(),
                },
                |i| {
                    if i.name == "location" {
                        Mp::from(".")
                    } else {
                        Mp::Nil
                    }
                },
            ),
            "digest" => Mp::Ext(0, vec![0]),
            _ => Mp::Nil,
        });
        let bytes = to_msgpack_bytes(&v);
        let (m, unknowns) = decode_object(&from_msgpack_bytes(&bytes).unwrap(), &img.attrs);
        assert_eq!(m["platforms"], json!(["linux/amd64"]));
        assert_eq!(m["buildArgs"], json!({"A_B": "1"}));
        assert_eq!(m["context"], json!({"location": "."}));
        assert!(!m.contains_key("digest") && !m.contains_key("tags"));
        assert!(unknowns.contains(&PropertyPath::parse("platforms[1]").unwrap()));
        assert!(unknowns.contains(&PropertyPath::root_key("digest")));

        let enc = object(&img.attrs, |a| encode_attr(a, &m, &unknowns));
        assert_eq!(get(&enc, "digest"), Some(&unknown()));
        assert_eq!(
            get(&enc, "platforms"),
            Some(&Mp::Array(vec![Mp::from("linux/amd64"), unknown()]))
        );
        assert_eq!(get(&enc, "tags"), Some(&Mp::Nil));
        let ctx = get(&enc, "context").unwrap();
        assert_eq!(get(ctx, "named"), Some(&Mp::Nil));
        assert_eq!(get(ctx, "location"), Some(&Mp::from(".")));

        let st = from_state_json(
            &json!({"build_args": {"X": "y"}, "push": true, "bogus": 1}),
            &img.ty(),
        );
        assert_eq!(get(&st, "push"), Some(&Mp::Boolean(true)));
        assert_eq!(get(&st, "digest"), Some(&Mp::Nil));
        assert!(get(&st, "bogus").is_none());
    }
}

//! Property paths (`tags[1]`, `context.location`, `annotations["org.x"]`), the way both
//! Pulumi and our error messages name a value inside a resource's inputs.

use std::fmt;

use serde_json::Value as Json;

/// One step of a [`PropertyPath`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Segment {
    /// An object's key (`.name` or `["org.x"]`).
    Key(String),
    /// A list position (`[1]`).
    Index(usize),
}

/// A path from a resource's inputs to one value; the empty path is the inputs themselves.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PropertyPath(Vec<Segment>);

impl PropertyPath {
    /// The path of one top-level property.
    pub fn root_key(k: &str) -> Self {
        PropertyPath(vec![Segment::Key(k.to_owned())])
    }

    /// This path extended by an object key.
    pub fn key(&self, k: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Segment::Key(k.to_owned()));
        p
    }

    /// This path extended by a list position.
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Segment::Index(i));
        p
    }

    /// Its steps, outermost first.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// The top-level property name, if the path starts with one.
    pub fn root(&self) -> Option<&str> {
        match self.0.first() {
            Some(Segment::Key(k)) => Some(k),
            _ => None,
        }
    }

    /// Whether `other` is this path or one of its ancestors.
    pub fn starts_with(&self, other: &PropertyPath) -> bool {
        self.0.starts_with(&other.0)
    }

    /// Parses the syntax `Display` writes.
    pub fn parse(s: &str) -> Option<Self> {
        let mut segs = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'.' if !segs.is_empty() => i += 1,
                b'[' => {
                    if b.get(i + 1) == Some(&b'"') {
                        let rest = &s[i + 2..];
                        let end = rest.find("\"]")?;
                        segs.push(Segment::Key(rest[..end].to_owned()));
                        i += 2 + end + 2;
                    } else {
                        let rest = &s[i + 1..];
                        let end = rest.find(']')?;
                        segs.push(Segment::Index(rest[..end].parse().ok()?));
                        i += 1 + end + 1;
                    }
                    continue;
                }
                _ => {}
            }
            let start = i;
            while i < b.len() && b[i] != b'.' && b[i] != b'[' {
                i += 1;
            }
            if start == i {
                return None;
            }
            segs.push(Segment::Key(s[start..i].to_owned()));
        }
        Some(PropertyPath(segs))
    }

    /// Puts `v` back at this path inside `root`, where decoding left an unknown out:
    /// objects are created as needed; an array slot is re-inserted only for the last segment
    /// (the element that was left out), never for the arrays the path passes through.
    /// Paths must be applied in ascending order (a `BTreeSet`'s order) so that earlier slots
    /// of the same array are back before later indices are counted.
    pub fn set(&self, root: &mut Json, v: Json) {
        let mut cur = root;
        let last = self.0.len().saturating_sub(1);
        for (n, seg) in self.0.iter().enumerate() {
            cur = match seg {
                Segment::Key(k) => {
                    if !cur.is_object() {
                        *cur = Json::Object(Default::default());
                    }
                    cur.as_object_mut()
                        .expect("just made an object")
                        .entry(k.clone())
                        .or_insert(Json::Null)
                }
                Segment::Index(i) => {
                    if !cur.is_array() {
                        *cur = Json::Array(Vec::new());
                    }
                    let arr = cur.as_array_mut().expect("just made an array");
                    if n == last && *i <= arr.len() {
                        arr.insert(*i, Json::Null);
                    } else if *i >= arr.len() {
                        arr.resize(*i + 1, Json::Null);
                    }
                    &mut arr[*i]
                }
            };
        }
        *cur = v;
    }

    /// Every path of `unknowns` set to `placeholder` inside `root`, in ascending order.
    pub fn restore_all(
        unknowns: &std::collections::BTreeSet<PropertyPath>,
        root: &mut Json,
        placeholder: &Json,
    ) {
        for p in unknowns {
            p.set(root, placeholder.clone());
        }
    }
}

fn is_plain_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !k.starts_with(|c: char| c.is_ascii_digit())
}

impl fmt::Display for PropertyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if is_plain_key(k) => {
                    if n > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Segment::Key(k) => write!(f, "[\"{k}\"]")?,
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn display_and_parse_agree() {
        for s in [
            "tags",
            "tags[1]",
            "context.location",
            "annotations[\"org.opencontainers.image.source\"]",
            "registries[0].ecr.region",
        ] {
            let p = PropertyPath::parse(s).unwrap();
            assert_eq!(p.to_string(), s);
        }
        assert_eq!(
            PropertyPath::root_key("context")
                .key("location")
                .to_string(),
            "context.location"
        );
        assert_eq!(
            PropertyPath::root_key("a").index(2).key("b").to_string(),
            "a[2].b"
        );
    }

    #[test]
    fn set_reinserts_array_slots() {
        let mut v = json!({"tags": ["a", "c"]});
        PropertyPath::parse("tags[1]")
            .unwrap()
            .set(&mut v, json!("b"));
        assert_eq!(v, json!({"tags": ["a", "b", "c"]}));
        PropertyPath::parse("x.y").unwrap().set(&mut v, json!(1));
        assert_eq!(v["x"], json!({"y": 1}));
    }

    #[test]
    fn set_reinserts_only_the_left_out_element() {
        // registries: [{address, username, password: <unknown>}, {address}]
        let mut v = json!({"registries": [
            {"address": "r.example:5000", "username": "u"},
            {"address": "s.example:5000"}
        ]});
        PropertyPath::parse("registries[0].password")
            .unwrap()
            .set(&mut v, json!("U"));
        assert_eq!(
            v,
            json!({"registries": [
                {"address": "r.example:5000", "username": "u", "password": "U"},
                {"address": "s.example:5000"}
            ]})
        );
    }

    #[test]
    fn restore_all_puts_every_unknown_back_where_it_was() {
        // a: [U, "k1", U, {"x": U, "y": 1}], m: {"k": [U]}, decoded without the unknowns.
        let original = json!({"a": ["U", "k1", "U", {"x": "U", "y": 1}], "m": {"k": ["U"]}});
        let mut decoded = json!({"a": ["k1", {"y": 1}], "m": {"k": []}});
        let unknowns: std::collections::BTreeSet<PropertyPath> =
            ["a[0]", "a[2]", "a[3].x", "m.k[0]"]
                .iter()
                .map(|s| PropertyPath::parse(s).unwrap())
                .collect();
        PropertyPath::restore_all(&unknowns, &mut decoded, &json!("U"));
        assert_eq!(decoded, original);
    }

    #[test]
    fn garbage_does_not_parse() {
        assert!(PropertyPath::parse("a[").is_none());
        assert!(PropertyPath::parse("a[x]").is_none());
    }
}

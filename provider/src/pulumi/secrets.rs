//! Where the schema says a value is secret, at any depth: `registries[0].password`,
//! `builderTls.key`, `secrets`. Walks a value along its schema properties (named types
//! through `$ref`, list items, map values), so a secret inside a list element or a nested
//! object comes back marked even when the program sent it as a plain string.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value as Json;

use crate::resources::path::PropertyPath;

/// The properties of one object (a resource's inputs or outputs, or the provider
/// configuration) and the package's named types they refer to.
#[derive(Clone)]
pub struct SecretSchema {
    properties: Json,
    types: Arc<Json>,
}

impl SecretSchema {
    pub fn new(properties: &Json, types: Arc<Json>) -> Self {
        SecretSchema {
            properties: properties.clone(),
            types,
        }
    }

    /// Paths of the secret values present in `value` (an object).
    pub fn paths(&self, value: &Json) -> BTreeSet<PropertyPath> {
        let mut out = BTreeSet::new();
        if let Some(m) = value.as_object() {
            for (k, v) in m {
                if let Some(spec) = self.properties.get(k) {
                    self.walk(v, spec, PropertyPath::root_key(k), &mut out, 0);
                }
            }
        }
        out
    }

    fn walk(
        &self,
        v: &Json,
        spec: &Json,
        path: PropertyPath,
        out: &mut BTreeSet<PropertyPath>,
        depth: usize,
    ) {
        // Named types may refer to each other; the schema's own nesting is shallow.
        if depth > 32 || v.is_null() {
            return;
        }
        if spec.get("secret") == Some(&Json::Bool(true)) {
            out.insert(path);
            return;
        }
        if let Some(r) = spec.get("$ref").and_then(Json::as_str) {
            let token = r.strip_prefix("#/types/").unwrap_or(r);
            if let Some(t) = self.types.get(token) {
                self.walk(v, t, path, out, depth + 1);
            }
            return;
        }
        match v {
            Json::Array(items) => {
                if let Some(item_spec) = spec.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.walk(item, item_spec, path.index(i), out, depth + 1);
                    }
                }
            }
            Json::Object(m) => {
                let props = spec.get("properties");
                let extra = spec.get("additionalProperties");
                for (k, x) in m {
                    let s = props.and_then(|p| p.get(k)).or(extra);
                    if let Some(s) = s {
                        self.walk(x, s, path.key(k), out, depth + 1);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_secrets_in_lists_and_objects() {
        let schema = crate::schema::package_schema();
        let s = SecretSchema::new(
            &schema["config"]["variables"],
            Arc::new(schema["types"].clone()),
        );
        let value = json!({
            "registries": [
                {"address": "a.example", "username": "u", "password": "pw"},
                {"address": "b.example"}
            ],
            "builderTls": {"cert": "c", "key": "k"},
        });
        let got: Vec<String> = s.paths(&value).iter().map(|p| p.to_string()).collect();
        assert_eq!(got, ["builderTls.key", "registries[0].password"]);

        let img = &schema["resources"]["multiarch:index:Image"];
        let s = SecretSchema::new(&img["inputProperties"], Arc::new(schema["types"].clone()));
        let got: Vec<String> = s
            .paths(&json!({"secrets": {"a": "b"}, "tags": ["x"]}))
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(got, ["secrets"]);
    }
}

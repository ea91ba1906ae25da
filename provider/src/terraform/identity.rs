//! Resource identity (protocol 6.9, Terraform 1.12 and later): what `import { identity = … }`
//! names and what `terraform plan -generate-config-out` and the state record beside the
//! attributes. Both resources are identified by the tag they import by, the same reference
//! their `id` holds (`<registry>/<repository>:<tag>`, the first tag), so the identity is
//! one string attribute, `tag`, and always equals `id`.

use rmpv::Value as Mp;
use serde_json::Value as Json;

use super::proto::{self, DynamicValue, ResourceIdentityData, ResourceIdentitySchema};
use super::value;

/// The identity's one attribute.
pub const ATTR: &str = "tag";

/// Identity schema version; bump (and upgrade in [`upgrade`]) when the attributes change.
const VERSION: i64 = 0;

/// The identity schema every resource type shares.
pub fn schema() -> ResourceIdentitySchema {
    ResourceIdentitySchema {
        version: VERSION,
        identity_attributes: vec![proto::resource_identity_schema::IdentityAttribute {
            name: ATTR.into(),
            r#type: br#""string""#.to_vec(),
            required_for_import: true,
            optional_for_import: false,
            description: "The reference the resource is imported by and identified with: \
                          `<registry>/<repository>:<tag>`, one of its tags (its `id`)."
                .into(),
        }],
    }
}

/// The identity of a resource whose `id` is `id`; none while the id is not known (a plan
/// that creates) or empty.
pub fn data(id: &Mp) -> Option<ResourceIdentityData> {
    let id = id.as_str().filter(|s| !s.is_empty())?;
    let obj = Mp::Map(vec![(Mp::from(ATTR), Mp::from(id))]);
    Some(ResourceIdentityData {
        identity_data: Some(DynamicValue {
            msgpack: value::to_msgpack_bytes(&obj),
            json: vec![],
        }),
    })
}

/// Why an identity the engine sent cannot be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum IdentityError {
    #[error("the identity is not a msgpack or JSON object: {0}")]
    Decode(String),
    #[error("the identity's `tag` is missing or not a string")]
    MissingTag,
}

/// The tag an identity names (`import { identity = { tag = "…" } }`).
pub fn tag_of(data: &ResourceIdentityData) -> Result<String, IdentityError> {
    let tag = match data.identity_data.as_ref() {
        Some(d) if !d.msgpack.is_empty() => {
            let obj = value::from_msgpack_bytes(&d.msgpack).map_err(IdentityError::Decode)?;
            value::get(&obj, ATTR)
                .and_then(Mp::as_str)
                .map(str::to_owned)
        }
        Some(d) if !d.json.is_empty() => {
            let j: Json = serde_json::from_slice(&d.json)
                .map_err(|e| IdentityError::Decode(e.to_string()))?;
            json_tag(&j).map(str::to_owned)
        }
        _ => None,
    };
    tag.filter(|s| !s.is_empty())
        .ok_or(IdentityError::MissingTag)
}

fn json_tag(j: &Json) -> Option<&str> {
    j.get(ATTR).and_then(Json::as_str)
}

/// A stored identity (JSON) read with the current schema. Version 0 is the only one so far.
pub fn upgrade(raw_json: &[u8]) -> Result<Option<ResourceIdentityData>, IdentityError> {
    if raw_json.is_empty() {
        return Ok(None);
    }
    let j: Json =
        serde_json::from_slice(raw_json).map_err(|e| IdentityError::Decode(e.to_string()))?;
    let tag = json_tag(&j).ok_or(IdentityError::MissingTag)?;
    Ok(data(&Mp::from(tag)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips_and_refuses_what_names_no_tag() {
        let d = data(&Mp::from("r.example/app:v1")).unwrap();
        assert_eq!(tag_of(&d).unwrap(), "r.example/app:v1");
        // Unknown (a create being planned) or empty ids have no identity yet.
        assert!(data(&value::unknown()).is_none());
        assert!(data(&Mp::from("")).is_none());
        // Terraform stores identities as JSON and hands them back for upgrading.
        let up = upgrade(br#"{"tag":"r.example/app:v2"}"#).unwrap().unwrap();
        assert_eq!(tag_of(&up).unwrap(), "r.example/app:v2");
        assert_eq!(upgrade(b"").unwrap(), None);
        assert_eq!(upgrade(br#"{"ref":"x"}"#), Err(IdentityError::MissingTag));
        assert!(matches!(upgrade(b"{"), Err(IdentityError::Decode(_))));
        let json = ResourceIdentityData {
            identity_data: Some(DynamicValue {
                msgpack: vec![],
                json: br#"{"tag":"r.example/app:v3"}"#.to_vec(),
            }),
        };
        assert_eq!(tag_of(&json).unwrap(), "r.example/app:v3");
        let null = ResourceIdentityData {
            identity_data: Some(DynamicValue {
                msgpack: value::to_msgpack_bytes(&Mp::Map(vec![(Mp::from(ATTR), Mp::Nil)])),
                json: vec![],
            }),
        };
        assert_eq!(tag_of(&null), Err(IdentityError::MissingTag));
        let s = schema();
        assert_eq!(s.identity_attributes.len(), 1);
        assert!(s.identity_attributes[0].required_for_import);
        assert_eq!(s.identity_attributes[0].r#type, br#""string""#);
    }
}

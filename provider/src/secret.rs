//! Secret values: a type that cannot be printed or serialized in plain text by accident.
//!
//! `Debug` shows `***`; there is no `Display`. Serializing fails unless the caller is one of
//! the provider's wire encoders, inside [`reveal`]: they hand state to the engine, which is
//! told from the field model (`crate::model`) that these values are secret. Anything else
//! that tries (a log line built with `serde_json::to_string`, an error message) gets an
//! error instead of the secret.

use std::cell::Cell;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};

thread_local! {
    static REVEALED: Cell<u32> = const { Cell::new(0) };
}

/// Runs `f` (synchronous serialization) with secrets written in plain text.
pub fn reveal<T>(f: impl FnOnce() -> T) -> T {
    struct Guard;
    impl Drop for Guard {
        fn drop(&mut self) {
            REVEALED.with(|r| r.set(r.get() - 1));
        }
    }
    REVEALED.with(|r| r.set(r.get() + 1));
    let _guard = Guard;
    f()
}

fn revealed() -> bool {
    REVEALED.with(|r| r.get() > 0)
}

/// A string that must never be printed or written out unless the wire protocol asks for it.
#[derive(Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a value that must stay out of logs, errors and state.
    pub fn new(s: impl Into<String>) -> Self {
        SecretString(s.into())
    }

    /// The value, for the one place that needs it (an auth header, a BuildKit secret).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Serialize for SecretString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if revealed() {
            s.serialize_str(&self.0)
        } else {
            Err(serde::ser::Error::custom(
                "a secret value cannot be serialized outside the provider's wire encoding",
            ))
        }
    }
}

impl JsonSchema for SecretString {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SecretString".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "x-secret": true})
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed_or_serialized_by_accident() {
        let s = SecretString::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        let err = serde_json::to_string(&s).unwrap_err().to_string();
        assert!(!err.contains("hunter2") && err.contains("cannot be serialized"));
        assert_eq!(reveal(|| serde_json::to_string(&s)).unwrap(), "\"hunter2\"");
        // The scope ends with the call, even nested.
        reveal(|| reveal(|| ()));
        assert!(serde_json::to_string(&s).is_err());
    }
}

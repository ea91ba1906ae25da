//! Data sources: the core's functions (`resources::functions`) as Terraform reads them.
//! A data source only reads, so its read runs during plan as during apply.

use std::collections::BTreeMap;
use std::sync::Arc;

use rmpv::Value as Mp;
use serde_json::{Map, Value as Json};

use super::diagnostics::error_diags;
use super::proto;
use super::schema::{self as tfschema, Block};
use super::value::{decode_object, encode_attr, get, object};
use crate::resources::lookup::Function;
use crate::resources::{self, Error, OpContext};

/// One data source: the function and its blocks.
pub struct DataSource {
    function: Arc<dyn Function>,
    /// Arguments, results and `id`.
    pub block: Block,
    /// The arguments alone (a configuration is decoded against them).
    args: Block,
}

/// Every function, by its Terraform name.
pub fn all() -> BTreeMap<&'static str, DataSource> {
    resources::functions()
        .iter()
        .map(|f| {
            let (block, args) = tfschema::data_source_blocks(f.model());
            (
                f.model().tf_name,
                DataSource {
                    function: f.clone(),
                    block,
                    args,
                },
            )
        })
        .collect()
}

impl DataSource {
    fn tf_name(&self) -> &'static str {
        self.function.model().tf_name
    }

    /// The configured arguments (camelCase keys, nulls left out) and whether any is unknown.
    fn args(&self, config: &Mp) -> (Map<String, Json>, bool) {
        let (value, unknowns) = decode_object(config, &self.args.attrs);
        (value, !unknowns.is_empty())
    }

    /// Diagnostics for a configuration; an argument not known yet is not judged.
    pub fn validate(&self, config: &Mp) -> Vec<proto::Diagnostic> {
        let (args, unknown) = self.args(config);
        if unknown {
            return vec![];
        }
        match self.function.check(&args) {
            f if f.is_empty() => vec![],
            f => error_diags(self.tf_name(), &self.args.attrs, &Error::Invalid(f)),
        }
    }

    /// Reads the data source: the configuration as given, the results computed, `id` the
    /// result's `ref`.
    pub async fn read(&self, ctx: &OpContext, config: &Mp) -> Result<Mp, Vec<proto::Diagnostic>> {
        let (args, _) = self.args(config);
        let out = self
            .function
            .invoke(ctx, &args)
            .await
            .map_err(|e| error_diags(self.tf_name(), &self.args.attrs, &e))?;
        let none = Default::default();
        let id = out.get("ref").and_then(Json::as_str).unwrap_or_default();
        let is_arg = |name: &str| self.args.attrs.iter().any(|a| a.name == name);
        Ok(object(&self.block.attrs, |a| {
            if a.name == "id" {
                Mp::from(id)
            } else if is_arg(&a.name) {
                get(config, &a.name).cloned().unwrap_or(Mp::Nil)
            } else {
                encode_attr(a, &out, &none)
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_data_source_names_its_pinned_ref_apart_from_its_argument() {
        let all = all();
        let ds = all
            .get("multiarch_image")
            .expect("multiarch_image is served");
        let names: Vec<(&str, bool)> = ds
            .block
            .attrs
            .iter()
            .map(|a| (a.name.as_str(), a.is_output()))
            .collect();
        assert_eq!(
            names,
            [
                ("digest", true),
                ("id", true),
                ("manifests", true),
                ("media_type", true),
                ("pinned_ref", true),
                ("ref", false),
            ]
        );
        let config = object(&ds.args.attrs, |_| Mp::from("app:v1"));
        let d = ds.validate(&config);
        assert_eq!(d.len(), 1);
        assert!(d[0].detail.contains("registry host"), "{}", d[0].detail);
        assert!(ds
            .validate(&object(&ds.args.attrs, |_| super::super::value::unknown()))
            .is_empty());
    }
}

//! Diagnostics for the engine: the core's warnings and errors as protocol diagnostics, with
//! property paths in Terraform's terms and the attribute path the engine underlines.

use std::sync::Mutex;

use super::proto::{self, diagnostic::Severity};
use super::schema as tfschema;
use crate::log::{Level, Logger};
use crate::resources::{self, Error};

/// Logs to stderr (Terraform's provider log) and keeps warnings for the diagnostics.
#[derive(Default)]
pub struct Collect {
    warnings: Mutex<Vec<String>>,
}

impl Logger for Collect {
    fn log(&self, level: Level, message: &str) {
        match level {
            Level::Debug => tracing::debug!("{message}"),
            Level::Info => tracing::info!("{message}"),
            Level::Warning | Level::Error => {
                tracing::warn!("{message}");
                self.warnings
                    .lock()
                    .expect("warnings lock")
                    .push(message.to_owned());
            }
        }
    }
    fn status(&self, message: &str) {
        tracing::info!("{message}")
    }
}

impl Collect {
    pub fn diagnostics(&self) -> Vec<proto::Diagnostic> {
        self.warnings
            .lock()
            .expect("warnings lock")
            .iter()
            .map(|w| diag(Severity::Warning, w, ""))
            .collect()
    }
}

pub fn diag(severity: Severity, summary: &str, detail: &str) -> proto::Diagnostic {
    proto::Diagnostic {
        severity: severity as i32,
        summary: summary.to_owned(),
        detail: detail.to_owned(),
        attribute: None,
    }
}

/// A core property path (`buildArgs["X"]`, `registries[0].caCert`) in Terraform's terms
/// (`build_args["X"]`, `registries[0].ca_cert`), and the attribute path Terraform underlines.
/// The walk follows the attribute types, so map keys stay as they are; set elements cannot
/// be addressed, so the attribute path ends at the set.
fn tf_path(p: &str, attrs: &[tfschema::Attr]) -> (String, Option<proto::AttributePath>) {
    use crate::path::Segment;
    use proto::attribute_path::{step::Selector, Step};
    use tfschema::Ty;
    let Some(path) = resources::PropertyPath::parse(p) else {
        return (p.to_owned(), None);
    };
    let mut text = String::new();
    let mut steps = Vec::new();
    let mut addressable = true;
    let mut ty: Option<Ty> = Some(Ty::Object(attrs.to_vec()));
    for seg in path.segments() {
        let mut step = None;
        ty = match (seg, ty.take()) {
            (Segment::Key(k), Some(Ty::Object(inner))) => {
                let found = inner.iter().find(|a| a.key == *k || a.name == *k);
                let name = found.map_or_else(|| tfschema::snake_case(k), |a| a.name.clone());
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(&name);
                step = Some(Selector::AttributeName(name));
                found.map(|a| a.ty.clone())
            }
            (Segment::Key(k), Some(Ty::Map(inner))) => {
                text.push_str(&format!("[{k:?}]"));
                step = Some(Selector::ElementKeyString(k.clone()));
                Some(*inner)
            }
            (Segment::Index(i), Some(Ty::List(inner))) => {
                text.push_str(&format!("[{i}]"));
                step = Some(Selector::ElementKeyInt(*i as i64));
                Some(*inner)
            }
            (Segment::Index(i), Some(Ty::Set(inner))) => {
                text.push_str(&format!("[{i}]"));
                addressable = false;
                Some(*inner)
            }
            (Segment::Key(k), _) => {
                text.push_str(&format!("[{k:?}]"));
                addressable = false;
                None
            }
            (Segment::Index(i), _) => {
                text.push_str(&format!("[{i}]"));
                addressable = false;
                None
            }
        };
        if let (true, Some(selector)) = (addressable, step) {
            steps.push(Step {
                selector: Some(selector),
            });
        }
    }
    let attribute = (!steps.is_empty()).then_some(proto::AttributePath { steps });
    (text, attribute)
}

pub fn attribute_diag(
    summary_prefix: &str,
    f: &resources::Failure,
    attrs: &[tfschema::Attr],
) -> proto::Diagnostic {
    let (prop, attribute) = tf_path(&f.property, attrs);
    let mut d = diag(
        Severity::Error,
        &format!("{summary_prefix}{prop}"),
        &format!("{prop}: {}", f.reason),
    );
    d.attribute = attribute;
    d
}

pub fn error_diags(tf_name: &str, attrs: &[tfschema::Attr], e: &Error) -> Vec<proto::Diagnostic> {
    match e {
        Error::Invalid(failures) => failures
            .iter()
            .map(|f| attribute_diag(&format!("{tf_name}: invalid "), f, attrs))
            .collect(),
        other => vec![diag(Severity::Error, &format!("{tf_name}: {other}"), "")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_names_in_terraform_terms() {
        use proto::attribute_path::step::Selector;
        let blocks = tfschema::resource_blocks();
        let (_, img) = blocks
            .iter()
            .find(|(n, _)| *n == "multiarch_image")
            .unwrap();
        let text = |p: &str| tf_path(p, &img.attrs).0;
        assert_eq!(text("buildArgs[\"someArg\"]"), "build_args[\"someArg\"]");
        assert_eq!(text("tags[1]"), "tags[1]");
        assert_eq!(text("context.location"), "context.location");
        assert_eq!(text("sbomGenerator"), "sbom_generator");
        let (_, attr) = tf_path("buildArgs[\"someArg\"]", &img.attrs);
        let steps: Vec<_> = attr
            .unwrap()
            .steps
            .into_iter()
            .map(|s| s.selector)
            .collect();
        assert_eq!(
            steps,
            vec![
                Some(Selector::AttributeName("build_args".into())),
                Some(Selector::ElementKeyString("someArg".into()))
            ]
        );
        // A set element cannot be addressed: the path ends at the set.
        let (_, attr) = tf_path("tags[1]", &img.attrs);
        assert_eq!(attr.unwrap().steps.len(), 1);

        let provider = tfschema::provider_block();
        let (t, attr) = tf_path("registries[0].caCert", &provider.attrs);
        assert_eq!(t, "registries[0].ca_cert");
        assert_eq!(attr.unwrap().steps.len(), 3);
    }
}

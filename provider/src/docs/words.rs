//! The Terraform pages in Terraform's words: the schema's descriptions are written once, in
//! the Pulumi SDKs' spelling, and this turns them into what a Terraform user reads
//! (`keepRemotely` -> `keep_remotely`, preview -> plan, `up` -> apply, JSON maps -> HCL).

use std::collections::BTreeSet;

use serde_json::Value as Json;

use crate::terraform::schema::snake_case;

/// Every camelCase property name of the schema (inputs, outputs, types, configuration).
pub fn camel_keys(schema: &Json) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut add = |props: &Json| {
        for k in props.as_object().into_iter().flatten().map(|(k, _)| k) {
            if k.chars().any(|c| c.is_ascii_uppercase()) {
                keys.insert(k.clone());
            }
        }
    };
    add(&schema["config"]["variables"]);
    for r in schema["resources"].as_object().into_iter().flatten() {
        add(&r.1["inputProperties"]);
        add(&r.1["properties"]);
    }
    for t in schema["types"].as_object().into_iter().flatten() {
        add(&t.1["properties"]);
    }
    keys
}

/// Pulumi's words for what Terraform calls otherwise, in the order they are replaced.
const PHRASES: &[(&str, &str)] = &[
    ("before `up`", "during plan"),
    ("`pulumi up`", "`terraform apply`"),
    ("during preview", "during plan"),
    ("in preview", "in plan"),
    ("a preview", "a plan"),
    ("the preview", "the plan"),
    ("Preview", "Plan"),
    ("`push: false`", "`push = false`"),
    (", or (Pulumi) typed entries, e.g. `{registry: {ref: \"<repo>:cache\"}}`; Terraform takes the strings", ""),
    (", or (Pulumi) typed entries, e.g. `{registry: {ref: \"<repo>:cache\", mode: \"max\"}}`; Terraform takes the strings", ""),
];

/// A description in Terraform's words: schema keys in backticks (alone or in a dotted path)
/// in snake_case, Pulumi's phrases replaced, `{"k": "v"}` map examples in HCL.
pub fn terraform(text: &str, keys: &BTreeSet<String>) -> String {
    let mut out = String::with_capacity(text.len());
    // Backticked spans are the odd-numbered pieces.
    for (i, piece) in text.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        if i % 2 == 1 {
            out.push_str(&code_span(piece, keys));
        } else {
            out.push_str(piece);
        }
    }
    for (pulumi, tf) in PHRASES {
        out = out.replace(pulumi, tf);
    }
    out
}

/// One code span: a dotted path of schema keys in snake_case, or a JSON map in HCL.
fn code_span(span: &str, keys: &BTreeSet<String>) -> String {
    if span.starts_with("{\"") && span.ends_with('}') && span.contains("\": ") {
        // `{"…/app:10.20": "linux/arm64/v8"}` -> `{ "…/app:10.20" = "linux/arm64/v8" }`
        let inner = &span[1..span.len() - 1];
        return format!("{{ {} }}", inner.replacen("\": ", "\" = ", 1));
    }
    let parts: Vec<&str> = span.split('.').collect();
    if parts.iter().any(|p| keys.contains(*p)) && parts.iter().all(|p| is_ident(p)) {
        return parts
            .iter()
            .map(|p| {
                if keys.contains(*p) {
                    snake_case(p)
                } else {
                    (*p).to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(".");
    }
    span.to_owned()
}

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// A shared section without its Pulumi-only code blocks (fenced blocks whose first line is a
/// `# Pulumi…` comment), for the Terraform pages.
pub fn without_pulumi_blocks(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("```yaml\n# Pulumi") {
        let Some(len) = rest[start + 3..].find("```") else {
            break;
        };
        let mut end = start + 3 + len + 3;
        // The blank line after the block goes with it.
        if rest[end..].starts_with("\n\n") {
            end += 2;
        }
        out.push_str(&rest[..start]);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> BTreeSet<String> {
        ["keepRemotely", "builderTls", "caCert", "platformOverrides"]
            .into_iter()
            .map(String::from)
            .collect()
    }

    #[test]
    fn pulumi_names_become_terraform_names() {
        let t = terraform(
            "With `keepRemotely`, as `builderTls.caCert`; `credHelpers` stays; errors show before `up`.",
            &keys(),
        );
        assert_eq!(
            t,
            "With `keep_remotely`, as `builder_tls.ca_cert`; `credHelpers` stays; errors show during plan."
        );
    }

    #[test]
    fn json_maps_become_hcl() {
        let t = terraform(r#"e.g. `{"…/app:10.20": "linux/arm64/v8"}`: for"#, &keys());
        assert_eq!(t, r#"e.g. `{ "…/app:10.20" = "linux/arm64/v8" }`: for"#);
    }

    #[test]
    fn pulumi_only_blocks_leave_terraform_pages() {
        let t =
            "A:\n\n```yaml\n# Pulumi\nconfig: {}\n```\n\n```terraform\nprovider \"x\" {}\n```\n";
        assert_eq!(
            without_pulumi_blocks(t),
            "A:\n\n```terraform\nprovider \"x\" {}\n```\n"
        );
    }
}

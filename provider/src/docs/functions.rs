//! The functions' pages: the Terraform data sources (`data-sources/<name>.md`) and the
//! Pulumi functions section of `_index.md`, from the same schema as the resources' pages.

use std::fmt::Write as _;

use serde_json::{Map, Value as Json};

use super::{front_matter, one_line, pulumi_table, tf_schema};
use crate::resources::functions;
use crate::terraform::schema as tf;

/// The Terraform example of a data source, by its Terraform name.
fn tf_example(tf_name: &str) -> &'static str {
    match tf_name {
        "multiarch_image" => {
            r#"# An image built elsewhere (CI), pinned at plan time for a task definition.
data "multiarch_image" "app" {
  ref = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1.2.3"
}

output "image" {
  # 123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1.2.3@sha256:…
  value = data.multiarch_image.app.pinned_ref
}

output "arm64_digest" {
  value = one([for m in data.multiarch_image.app.manifests : m.digest if m.platform == "linux/arm64"])
}
"#
        }
        _ => "",
    }
}

/// The Pulumi YAML example of a function, by its token.
fn pulumi_example(token: &str) -> &'static str {
    match token {
        "multiarch:index:getImage" => {
            r#"variables:
  app:
    fn::invoke:
      function: multiarch:index:getImage
      arguments:
        ref: 123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1.2.3
outputs:
  image: ${app.ref} # …/app:1.2.3@sha256:…, resolved during preview
  digest: ${app.digest}
"#
        }
        _ => "",
    }
}

/// `data-sources/<name>.md` for every function.
pub(super) fn tf_pages(schema: &Json) -> Vec<(String, String)> {
    functions()
        .iter()
        .map(|f| {
            let model = f.model();
            let spec = &schema["functions"][model.token];
            let desc = one_line(spec["description"].as_str().unwrap_or_default());
            let mut s = front_matter(&format!("{} Data Source - multiarch", model.tf_name), &desc);
            let _ = write!(
                s,
                "# {} (Data Source)\n\n{desc}\n\nIt is read during `terraform plan` (its \
reference is known then) and writes nothing. A tag that does not exist fails the plan, naming \
the reference. The pinned reference is `pinned_ref` (`ref` is the argument).\n\n\
## Example Usage\n\n```terraform\n{}```\n\n",
                model.tf_name,
                tf_example(model.tf_name)
            );
            let (block, _) = tf::data_source_blocks(model);
            tf_schema(
                &mut s,
                schema,
                &block,
                spec["inputs"]["properties"].as_object(),
                spec["outputs"]["properties"].as_object(),
                None,
            );
            let name = model
                .tf_name
                .strip_prefix("multiarch_")
                .unwrap_or(model.tf_name);
            (format!("data-sources/{name}.md"), s)
        })
        .collect()
}

/// The `## Functions` section of the Pulumi index page.
pub(super) fn pulumi_section(schema: &Json) -> String {
    let mut s = String::from("\n## Functions\n");
    let empty_map = Map::new();
    let empty = vec![];
    for (token, f) in schema["functions"].as_object().into_iter().flatten() {
        let _ = write!(
            s,
            "\n### {token}\n\n{} It runs during preview as during up and writes nothing.\n\n\
```yaml\n{}```\n\nInputs:\n\n",
            one_line(f["description"].as_str().unwrap_or_default()),
            pulumi_example(token)
        );
        let inputs = f["inputs"]["properties"].as_object().unwrap_or(&empty_map);
        let required = f["inputs"]["required"].as_array().unwrap_or(&empty);
        pulumi_table(&mut s, schema, inputs, required, true, None);
        s.push_str("\nOutputs:\n\n");
        let outputs = f["outputs"]["properties"].as_object().unwrap_or(&empty_map);
        pulumi_table(&mut s, schema, outputs, &[], false, None);
    }
    s
}

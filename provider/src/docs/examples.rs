//! The examples of the pages. Each scenario is a directory of docs/examples/ holding the same
//! program in TypeScript (`index.ts`), Python (`__main__.py`), Go (`main.go`), Pulumi YAML
//! (`Pulumi.yaml`) and Terraform HCL (`main.tf`): the files are the one source of truth, included
//! here at compile time, type-checked and run by tests/test_docs_examples.py. A resource names
//! its scenarios in its `ResourceDocs`; the first is its Terraform page's first example (the one
//! tests/test_install.py runs from the page).

/// One scenario, in every language.
pub struct Example {
    /// The directory under docs/examples/.
    pub id: &'static str,
    /// The heading of the example on the pages.
    pub title: &'static str,
    pub typescript: &'static str,
    pub python: &'static str,
    pub go: &'static str,
    pub yaml: &'static str,
    pub hcl: &'static str,
}

macro_rules! example {
    ($id:literal, $title:literal) => {
        Example {
            id: $id,
            title: $title,
            typescript: include_str!(concat!("../../../docs/examples/", $id, "/index.ts")),
            python: include_str!(concat!("../../../docs/examples/", $id, "/__main__.py")),
            go: include_str!(concat!("../../../docs/examples/", $id, "/main.go")),
            yaml: include_str!(concat!("../../../docs/examples/", $id, "/Pulumi.yaml")),
            hcl: include_str!(concat!("../../../docs/examples/", $id, "/main.tf")),
        }
    };
}

/// Every scenario, in the order the pages show them.
pub const EXAMPLES: &[Example] = &[
    example!("image-ecr", "A multi-platform image pushed to ECR"),
    example!(
        "manifest-list",
        "A manifest list from per-architecture tags"
    ),
    example!(
        "promotion",
        "Promotion from dev to prod, keeping the digest"
    ),
    example!("caches", "A registry build cache in ECR"),
    example!("builders", "Native build nodes per platform"),
];

/// The scenario of a docs/examples/ directory (a resource's `ResourceDocs` names them; an
/// unknown name is a bug the docs tests catch).
pub fn example(id: &str) -> &'static Example {
    EXAMPLES
        .iter()
        .find(|e| e.id == id)
        .unwrap_or_else(|| panic!("no docs/examples/{id}"))
}

/// The Terraform provider block of `index.md`.
pub(super) const PROVIDER_TF_EXAMPLE: &str = r#"terraform {
  required_version = ">= 1.0.3"
  required_providers {
    multiarch = {
      source = "multiarch-dev/multiarch"
    }
  }
}

# ECR registries need no entry: the provider asks ECR for a token through the AWS
# credential chain. Other registries take static credentials.
provider "multiarch" {
  aws = { region = "us-east-1" }
  registries = [
    { address = "ghcr.io", username = "me", password = var.ghcr_token },
    { address = "127.0.0.1:5000", insecure = true },
  ]
}

variable "ghcr_token" {
  type      = string
  sensitive = true
  default   = ""
}
"#;

/// The Pulumi YAML program of `_index.md`.
pub(super) const PULUMI_YAML_EXAMPLE: &str = r#"name: multiarch-quickstart
runtime: yaml
resources:
  app:
    type: multiarch:index:Image
    properties:
      context:
        location: ./app
      platforms: [linux/amd64, linux/arm64]
      tags:
        - 123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1.2.3
    # Pulumi installs the plugin from the release by itself.
    options:
      version: VERSION
      pluginDownloadURL: RELEASE_URL
outputs:
  ref: ${app.ref}
"#;

/// The Terraform page's Example Usage: every scenario's HCL under its title.
pub fn terraform_section(ids: &[&str]) -> String {
    let mut s = String::from("## Example Usage\n");
    for id in ids {
        let e = example(id);
        s.push_str(&format!(
            "\n### {}\n\nFrom `docs/examples/{}/main.tf`.\n\n```terraform\n{}```\n",
            e.title, e.id, e.hcl
        ));
    }
    s
}

/// A resource's examples on the Pulumi page: every scenario in each Pulumi language, under
/// headed blocks (`level` is the scenario heading's `#`s).
pub fn pulumi_section(ids: &[&str], level: &str) -> String {
    let mut s = String::new();
    for id in ids {
        let e = example(id);
        s.push_str(&format!(
            "\n{level} Example: {}\n\nThe same program in each language (`docs/examples/{}/`).\n",
            e.title, e.id
        ));
        for (label, lang, text) in [
            ("TypeScript", "typescript", e.typescript),
            ("Python", "python", e.python),
            ("Go", "go", e.go),
            ("YAML", "yaml", e.yaml),
        ] {
            s.push_str(&format!("\n{level}# {label}\n\n```{lang}\n{text}```\n"));
        }
    }
    s
}

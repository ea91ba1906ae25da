//! The Terraform pages' hand-written parts (`docs.rs` puts them around the generated schema):
//! the supported engines, installation, the examples and the import sections. The examples
//! are run by tests/test_install.py on every supported engine (`fmt -check`, `validate`
//! with no warning, init/plan/apply/destroy against the test world).

/// The Terraform registry address of the provider.
pub const TF_SOURCE: &str = "multiarch-dev/multiarch";

/// The engines the provider supports, with why the range starts where it does.
pub const REQUIREMENTS: &str = "\
## Requirements

Terraform 1.0.3 or later, or OpenTofu; the test suite runs every release on Terraform 1.0.3,
Terraform 1.13.3 and OpenTofu 1.12.6. The provider speaks plugin protocol 6 (Terraform 1.0
and later). 1.0.3 is the oldest release the suite runs, and the schema is shaped for it:
single objects (`context`, `dockerfile`) and `exports` are nested blocks, since Terraform
1.0's planner crashes on nested attributes of those shapes, and every engine since accepts
the blocks. Newer engines add, on the same provider:

- `import` blocks with `id` and `terraform plan -generate-config-out` (Terraform 1.5,
  OpenTofu 1.6);
- import by resource identity, `import { identity = { tag = \"…\" } }` (Terraform 1.12,
  OpenTofu 1.12).

The examples set `required_version = \">= 1.0.3\"`.
";

/// Installation from the release's filesystem mirror, for both engines.
pub fn installation(version: &str, url: &str) -> String {
    format!(
        "\
## Installation

Until the provider is in the public registries, install it from its release files (version
{version}) with a filesystem mirror: the release's `terraform-mirror/` directory (or
`terraform-provider-multiarch_{version}_linux_amd64.zip` from {url}, unpacked into
`<mirror>/<host>/{TF_SOURCE}/{version}/linux_amd64/`) holds the provider under both
registry hosts, `registry.terraform.io` for Terraform and `registry.opentofu.org` for
OpenTofu: each engine reads `{TF_SOURCE}` as an address on its own host. The same CLI
configuration then serves both (`~/.terraformrc` for Terraform, `~/.tofurc` for OpenTofu, or
the file `TF_CLI_CONFIG_FILE` names, which both read):

```hcl
provider_installation {{
  filesystem_mirror {{
    path    = \"/path/to/terraform-mirror\"
    include = [\"{TF_SOURCE}\"]
  }}
  direct {{
    exclude = [\"{TF_SOURCE}\"]
  }}
}}
```

`terraform init` (or `tofu init`) then installs it, and everything else from the usual places.
"
    )
}

pub const PROVIDER_TF_EXAMPLE: &str = r#"terraform {
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

pub const IMAGE_TF_EXAMPLE: &str = r#"# ./app holds the Dockerfile and the files it copies.
resource "multiarch_image" "app" {
  context {
    location = "${path.module}/app"
  }
  # Graviton and Intel; omit it and BuildKit builds for its own platform only.
  platforms = ["linux/amd64", "linux/arm64"]
  tags      = ["123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1.2.3"]
  build_args = {
    VERSION = "1.2.3"
  }
}

# A pinned reference for task definitions: repository@sha256:…
output "app_ref" {
  value = multiarch_image.app.ref
}
"#;

pub const ML_TF_EXAMPLE: &str = r#"# Two single-architecture images already in the registry, one tag for both.
resource "multiarch_manifest_list" "app10" {
  tags = ["123456789012.dkr.ecr.us-east-1.amazonaws.com/app:10"]
  sources = [
    "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:10.10", # linux/amd64
    "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:10.20", # linux/arm64
  ]
}

output "app10_platforms" {
  value = multiarch_manifest_list.app10.platforms
}
"#;

/// How either resource is imported with an `import` block, by id or by identity.
fn import_blocks(address: &str, tag: &str, extra: &str) -> String {
    format!(
        "With Terraform 1.5 or OpenTofu 1.6 and later an `import` block does the same during \
plan and apply (`id = \"{tag}\"`), and with Terraform 1.12 or OpenTofu 1.12 and later by the \
resource's identity, the tag:\n\n```terraform\nimport {{\n  to = {address}\n  identity = {{\n    \
tag = \"{tag}\"\n  }}\n}}\n```\n\nThe identity (`tag`) is the resource's `id`.{extra}\n"
    )
}

const ECR_APP: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app";

pub fn image_import() -> String {
    format!(
        "An Image is imported by one of its tags: the state gets the tag, the platforms and \
the digests the registry holds.\n\n```shell\nterraform import multiarch_image.app \
{ECR_APP}:v1\n```\n\nA registry cannot tell what an image was built from, so the \
configuration's build inputs (`context`, `dockerfile`, `build_args`, …) show as one in-place \
update on the next plan. That update **builds nothing**: it records them and the context's \
hash (from then on a changed file is a change), points tags added since the import at the \
imported image and removes dropped ones; `digest` stays the imported one. Only another set of \
`platforms` (or `push = false`) builds.\n\n{}",
        import_blocks(
            "multiarch_image.app",
            &format!("{ECR_APP}:v1"),
            " `plan -generate-config-out` writes an Image without its build inputs, which a \
registry does not hold: that plan stops at the missing `context`; add the `context` block to \
the generated resource and plan again.",
        )
    )
}

pub fn ml_import() -> String {
    format!(
        "A manifest list is imported by one of its tags; its children become `sources` (by \
digest), and `media_type` is recorded only where leaving it unset would give another one:\n\n\
```shell\nterraform import multiarch_manifest_list.app10 {ECR_APP}:10\n```\n\nTerraform \
compares attributes literally: write the `sources` the import recorded (`terraform state \
show`) for a plan with no changes, or expect one in-place update that pushes the same index (a \
Pulumi program may name the sources by tag: tags that resolve to the imported images are no \
change).\n\n{}",
        import_blocks(
            "multiarch_manifest_list.app10",
            &format!("{ECR_APP}:10"),
            " With an `import` block and no resource, `terraform plan \
-generate-config-out=generated.tf` writes the resource with the recorded `tags` and \
`sources`: the plan after it imports with no change.",
        )
    )
}

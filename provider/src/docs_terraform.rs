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

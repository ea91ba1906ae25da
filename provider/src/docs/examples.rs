//! The provider-level examples: the Terraform provider block and the Pulumi YAML program
//! (each resource's own example is in its module's `docs.rs`).

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

# multiarch with Terraform (>= 1.0, plugin protocol 6): one multi-arch tag on ECR built with
# BuildKit for Graviton and Intel, plus a manifest list stitched from existing images.
#
# The provider binary is `terraform-provider-multiarch` (the same binary as the Pulumi
# plugin). Until it is published, point Terraform at a local build with a CLI config file:
#
#   provider_installation {
#     dev_overrides { "example.com/multiarch/multiarch" = "/path/to/target/release" }
#     direct {}
#   }
#
# and `export TF_CLI_CONFIG_FILE=that-file`; `terraform plan` then needs no `init`.

terraform {
  required_providers {
    multiarch = {
      source = "example.com/multiarch/multiarch"
    }
  }
}

variable "repository" {
  description = "ECR repository, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/app"
  type        = string
}

# ECR needs no entry (IAM tokens through the AWS credential chain); other registries do.
provider "multiarch" {
  registries = [{ address = "127.0.0.1:5000", insecure = true }]
  aws        = { region = "us-east-1" }
}

variable "base_image" {
  description = "Multi-arch base image for the Dockerfile's FROM"
  type        = string
  default     = "public.ecr.aws/docker/library/busybox:1.36"
}

variable "network" {
  description = "Network mode for RUN steps (`none` on hosts without a bridge network)"
  type        = string
  default     = "default"
}

resource "multiarch_image" "app" {
  context {
    location = "${path.module}/app"
  }
  platforms = ["linux/amd64", "linux/arm64"] # a set: order never matters
  tags      = ["${var.repository}:1.2.3", "${var.repository}:latest"]
  build_args = {
    VERSION = "1.2.3"
    BASE    = var.base_image
  }
  network = var.network
}

resource "multiarch_manifest_list" "stable" {
  tags    = ["${var.repository}:stable"]
  sources = [multiarch_image.app.ref]
}

output "ref" {
  value = multiarch_image.app.ref
}

output "manifests" {
  value = multiarch_image.app.manifests
}

output "stable_ref" {
  value = multiarch_manifest_list.stable.ref
}

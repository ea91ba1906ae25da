# multiarch with Terraform (1.0.3 and later, tested up to 1.13) or OpenTofu (tested 1.12):
# one multi-arch image on ECR, built with BuildKit for Graviton and Intel, and a release tag
# stitched from it. ecs.tf (same directory) creates the ECR repository and runs the image on
# ECS Fargate on both CPUs.
#
# Install the provider from its release files through a filesystem mirror in the CLI
# configuration (~/.terraformrc, OpenTofu's ~/.tofurc, or TF_CLI_CONFIG_FILE), then `init`:
#
#   provider_installation {
#     filesystem_mirror {
#       path    = "/path/to/terraform-mirror"   # dist/terraform-mirror of `make dist`
#       include = ["multiarch-dev/multiarch"]
#     }
#     direct {
#       exclude = ["multiarch-dev/multiarch"]
#     }
#   }

terraform {
  required_version = ">= 1.0.3"
  required_providers {
    multiarch = {
      source  = "multiarch-dev/multiarch"
      version = "~> 0.1"
    }
  }
}

variable "region" {
  description = "AWS region of the ECR repository and the ECS services"
  type        = string
  default     = "us-east-1"
}

variable "app_version" {
  description = "Version of the app: the image tag (versioned: the repository is IMMUTABLE)"
  type        = string
  default     = "1.2.3"
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

# ECR needs no registry entry: the provider fetches IAM tokens through the AWS credential
# chain when it needs them (nothing is stored in the state).
provider "multiarch" {
  aws = { region = var.region }
}

resource "multiarch_image" "app" {
  context {
    location = "${path.module}/app"
  }
  platforms = ["linux/amd64", "linux/arm64"] # a set: order never matters
  tags      = ["${local.repository}:${var.app_version}"]
  build_args = {
    VERSION = var.app_version
    BASE    = var.base_image
  }
  network = var.network
}

# A second tag for the same index, e.g. for a release channel.
resource "multiarch_manifest_list" "release" {
  tags    = ["${local.repository}:release-${var.app_version}"]
  sources = [multiarch_image.app.ref]
}

output "ref" {
  description = "repository@digest: what the task definitions run"
  value       = multiarch_image.app.ref
}

output "manifests" {
  value = multiarch_image.app.manifests
}

output "release_ref" {
  value = multiarch_manifest_list.release.ref
}

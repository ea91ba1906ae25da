# The configuration tests/test_terraform.py drives: a two-platform Image built with BuildKit
# and a ManifestList stitched from existing per-architecture images, both pushed to the
# ECR look-alike with moto's IAM token. Values come from terraform.tfvars.json per step.

terraform {
  required_version = ">= 1.0.3"
  required_providers {
    multiarch = {
      source = "example.com/multiarch/multiarch"
    }
  }
}

variable "repository" {
  type = string
}

variable "context" {
  type = string
}

variable "platforms" {
  type = list(string)
}

variable "tags" {
  type = list(string)
}

variable "index_tags" {
  type = list(string)
}

variable "index_sources" {
  type = list(string)
}

# A tag pushed out of band, imported with `terraform import` ("" = no such resource).
variable "imported_tag" {
  type    = string
  default = ""
}

variable "imported_sources" {
  type    = list(string)
  default = []
}

provider "multiarch" {
  registries = [{ address = "127.0.0.1:5000", insecure = true }]
}

resource "multiarch_image" "app" {
  context {
    location = var.context
  }
  platforms = var.platforms
  tags      = [for t in var.tags : "${var.repository}:${t}"]
  network   = "none"
  build_args = {
    GREETING = "hello"
  }
}

resource "multiarch_manifest_list" "index" {
  tags    = [for t in var.index_tags : "${var.repository}:${t}"]
  sources = var.index_sources
}

resource "multiarch_manifest_list" "imported" {
  count   = var.imported_tag == "" ? 0 : 1
  tags    = [var.imported_tag]
  sources = var.imported_sources
}

# An image pushed out of band, imported with `terraform import` and adopted: the build
# inputs below are recorded by the first apply, without a build.
variable "adopted_tag" {
  type    = string
  default = ""
}

resource "multiarch_image" "adopted" {
  count = var.adopted_tag == "" ? 0 : 1
  context {
    location = var.context
  }
  platforms = ["linux/amd64", "linux/arm64"]
  tags      = [var.adopted_tag]
  network   = "none"
}

output "image_ref" {
  value = multiarch_image.app.ref
}

output "index_digest" {
  value = multiarch_manifest_list.index.digest
}

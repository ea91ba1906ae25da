# The configuration tests/test_docker_hosts.py drives through Terraform: the main job (a
# two-platform Image with push, then a ManifestList of its platform manifests) on whatever
# Engine DOCKER_HOST names.

terraform {
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

provider "multiarch" {
  registries = [{ address = "127.0.0.1:5000", insecure = true }]
}

resource "multiarch_image" "app" {
  context {
    location = var.context
  }
  platforms = ["linux/amd64", "linux/arm64"]
  tags      = ["${var.repository}:v1"]
  network   = "none"
}

resource "multiarch_manifest_list" "index" {
  tags    = ["${var.repository}:list"]
  sources = [for m in multiarch_image.app.manifests : "${var.repository}@${m.digest}"]
}

output "image_digest" {
  value = multiarch_image.app.digest
}

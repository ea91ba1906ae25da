# Native build nodes: each platform builds on a machine of its own CPU (no QEMU), in parallel;
# the provider assembles one index. Here amd64 builds on the local Docker Engine and arm64 on
# a Graviton host running buildkitd with mutual TLS.
variable "arm64_builder" {
  description = "buildkitd on a Graviton host"
  type        = string
  default     = "tcp://graviton-builder.internal:1234"
}

variable "builder_key" {
  description = "PEM private key of the client certificate (certs/client.crt)"
  type        = string
  sensitive   = true
}

provider "multiarch" {
  builders = [
    { endpoint = "docker", platforms = ["linux/amd64"] },
    {
      endpoint  = var.arm64_builder
      platforms = ["linux/arm64"]
      tls = {
        ca_cert = file("${path.module}/certs/ca.crt")
        cert    = file("${path.module}/certs/client.crt")
        key     = var.builder_key
      }
    },
  ]
}

resource "multiarch_image" "app" {
  context {
    location = "${path.module}/app"
  }
  platforms = ["linux/amd64", "linux/arm64"]
  tags      = ["123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1.2.3"]
}

output "app_ref" {
  value = multiarch_image.app.ref
}

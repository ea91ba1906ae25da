# One image for Graviton and Intel, built by BuildKit and pushed to ECR under one tag.
# ./app holds the Dockerfile and the files it copies.
resource "multiarch_image" "app" {
  context {
    location = "${path.module}/app"
  }
  # Omit platforms and BuildKit builds for its own platform only.
  platforms = ["linux/amd64", "linux/arm64"]
  tags      = ["123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1.2.3"]
  build_args = {
    VERSION = "1.2.3"
  }
  # ECR credentials come from the AWS credential chain: nothing to configure.
}

# A pinned reference for task definitions: repository@sha256:…
output "app_ref" {
  value = multiarch_image.app.ref
}

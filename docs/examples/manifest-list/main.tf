# One tag for Graviton and Intel from two single-architecture images already in ECR (built
# elsewhere, e.g. on an arm64 and an amd64 CI runner), like `docker buildx imagetools create`.
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

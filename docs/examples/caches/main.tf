# A registry build cache in ECR: every build reads the layers the last one wrote, so CI
# runners without a local cache rebuild only what changed. ECR takes the cache as an OCI image
# manifest; the provider sets that (image-manifest, oci-mediatypes) for ECR hosts.
locals {
  cache = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:buildcache"
}

resource "multiarch_image" "app" {
  context {
    location = "${path.module}/app"
  }
  platforms  = ["linux/amd64", "linux/arm64"]
  tags       = ["123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1.2.3"]
  cache_from = ["type=registry,ref=${local.cache}"]
  # mode=max: the layers of every stage, not only the final one.
  cache_to = ["type=registry,ref=${local.cache},mode=max"]
}

output "app_ref" {
  value = multiarch_image.app.ref
}

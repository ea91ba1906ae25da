# Promotion dev → prod: the index tested in the dev repository is published, unchanged, in the
# prod repository. One source that is an index: the same children, the same index digest.
variable "app_version" {
  description = "The release to promote"
  type        = string
  default     = "1.2.3"
}

resource "multiarch_manifest_list" "release" {
  sources = ["123456789012.dkr.ecr.us-east-1.amazonaws.com/app-dev:${var.app_version}"]
  tags    = ["123456789012.dkr.ecr.us-east-1.amazonaws.com/app-prod:${var.app_version}"]
  # Prod tags stay when this configuration is destroyed.
  keep_remotely = true
}

output "release_digest" {
  value = multiarch_manifest_list.release.digest
}

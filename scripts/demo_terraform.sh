#!/usr/bin/env bash
# The main job with the real Terraform CLI, installed the way a user installs it: `make dist`
# output as a filesystem mirror, `terraform init`, then plan (nothing written), apply of
# examples/terraform/main.tf to the ECR look-alike, the pushed index, both architectures
# serve on 8080, and a second plan that finds nothing to do. examples/terraform/ecs.tf (the
# AWS half: ECR repository, ECS services) needs hashicorp/aws, which cannot be installed
# here: the demo puts the test world's repository in its place. Run through `make demo`
# (test world, Terraform and the provider are set up first).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state=${MULTIARCH_TESTENV_STATE:-/var/lib/multiarch-testenv}
# The newest supported Terraform (scripts/terraform.sh builds it; see the README for the range).
tf=$state/terraform/v1.13.3/terraform
work=$(mktemp -d /tmp/multiarch-demo.XXXXXX)
# The release files (the debug build packaged by the same script as `make dist`, unless
# MULTIARCH_DIST_DIR names a `make dist` output).
dist=${MULTIARCH_DIST_DIR:-}
if [[ -z $dist ]]; then
  dist=$work/dist
  DIST_DIR=$dist MULTIARCH_DIST_PROFILE=debug MULTIARCH_DIST_ARCHS=amd64 bash "$root/scripts/dist.sh" >/dev/null
fi
mkdir -p "$work/tf"
cp -r "$root/examples/terraform/main.tf" "$root/examples/terraform/app" "$work/tf/"
cat > "$work/tf/repository.tf" <<'TF'
# Stands in for ecs.tf's aws_ecr_repository in the demo.
variable "repository" {
  type = string
}
locals {
  repository = var.repository
}
TF
cat > "$work/cli.tfrc" <<RC
provider_installation {
  filesystem_mirror {
    path    = "$dist/terraform-mirror"
    include = ["multiarch-dev/multiarch"]
  }
  direct {
    exclude = ["multiarch-dev/multiarch"]
  }
}
RC
export TF_CLI_CONFIG_FILE=$work/cli.tfrc TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
repo=$ECR_REGISTRY/demo-tf-$(date +%s)
cat > "$work/tf/terraform.tfvars.json" <<VARS
{"repository": "$repo", "base_image": "$BASE_IMAGE_ECR", "network": "none", "app_version": "1.2.3"}
VARS
cd "$work/tf"
echo "== terraform init (from the filesystem mirror)"
"$tf" init -input=false -no-color | grep -E 'Installing|Installed|initialized'
echo "== terraform plan (preview: builds, writes nothing)"
"$tf" plan -input=false -no-color | grep -E '^  # |Plan:|will be created' || true
echo "== terraform apply"
"$tf" apply -input=false -auto-approve -no-color | grep -E 'Creation complete|Apply complete'
"$tf" output -no-color
echo "== the registry holds $repo:release-1.2.3"
skopeo inspect --raw "docker://$repo:release-1.2.3" | python3 -c '
import json, sys
m = json.load(sys.stdin)
print("  ", m["mediaType"])
for e in m["manifests"]:
    p = e["platform"]
    print("  ", p["os"] + "/" + p["architecture"], e["digest"])'
for arch in amd64 arm64; do
  echo "== docker run --platform linux/$arch $repo:1.2.3, GET :8080/"
  docker run --rm --pull always --network none --platform "linux/$arch" "$repo:1.2.3" \
    sh -c 'httpd -p 8080 -h /www && wget -qO- http://127.0.0.1:8080/' 2>/dev/null
done
echo "== terraform plan again"
"$tf" plan -input=false -no-color | grep -E 'No changes|Plan:'
echo "(working directory: $work/tf; \`TF_CLI_CONFIG_FILE=$work/cli.tfrc terraform destroy\` there removes the tags)"

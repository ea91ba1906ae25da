#!/usr/bin/env bash
# The main job with the real Terraform CLI: plan (nothing written), apply of
# examples/terraform/ to the ECR look-alike, the pushed index, both architectures run, and a
# second plan that finds nothing to do. Run through `make demo` (test world, Terraform and the
# provider are set up first).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state=${MULTIARCH_TESTENV_STATE:-/var/lib/multiarch-testenv}
tf=$state/terraform/terraform
work=$(mktemp -d /tmp/multiarch-demo.XXXXXX)
cp -r "$root/examples/terraform/." "$work/"
cat > "$work/cli.tfrc" <<RC
provider_installation {
  dev_overrides { "example.com/multiarch/multiarch" = "$root/target/debug" }
  direct {}
}
RC
export TF_CLI_CONFIG_FILE=$work/cli.tfrc TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
repo=$ECR_REGISTRY/demo-tf-$(date +%s)
cat > "$work/terraform.tfvars.json" <<VARS
{"repository": "$repo", "base_image": "$BASE_IMAGE_ECR", "network": "none"}
VARS
cd "$work"
echo "== terraform plan (preview: builds, writes nothing)"
"$tf" plan -input=false -no-color | grep -E '^  # |Plan:|will be created' || true
echo "== terraform apply"
"$tf" apply -input=false -auto-approve -no-color | grep -E 'Creation complete|Apply complete'
"$tf" output -no-color
echo "== the registry holds $repo:stable"
skopeo inspect --raw "docker://$repo:stable" | python3 -c '
import json, sys
m = json.load(sys.stdin)
print("  ", m["mediaType"])
for e in m["manifests"]:
    p = e["platform"]
    print("  ", p["os"] + "/" + p["architecture"], e["digest"])'
for arch in amd64 arm64; do
  echo "== docker run --platform linux/$arch $repo:stable"
  docker run --rm --pull always --network none --platform "linux/$arch" "$repo:stable" 2>/dev/null
done
echo "== terraform plan again"
"$tf" plan -input=false -no-color | grep -E 'No changes|Plan:'
echo "(working directory: $work; \`terraform destroy\` there removes the tags)"

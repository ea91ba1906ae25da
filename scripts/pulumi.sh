#!/usr/bin/env bash
# Builds the Pulumi CLI and the YAML language host from their Go modules (idempotent), for the
# tests under tests/test_pulumi_*.py and `make sdk`. Binaries land in
#   ${MULTIARCH_TESTENV_STATE:-/var/lib/multiarch-testenv}/pulumi/v$VERSION/bin
# and the build is skipped when they are already there.
#
# Pulumi's modules carry `replace` directives pointing inside Pulumi's repository
# (`github.com/pulumi/pulumi/sdk/v3 => ../sdk`), so `go install module@version` refuses them.
# What works with the plain module tooling: download the module at the version, copy it out of
# the module cache, turn each relative replace into a requirement of the same version, build.
#
# The Node.js, Python and Go language hosts (modules github.com/pulumi/pulumi/sdk/nodejs/cmd/
# pulumi-language-nodejs/v3, .../sdk/python/cmd/pulumi-language-python/v3,
# .../sdk/go/pulumi-language-go/v3) are not served by the module proxy this project reaches
# ("403 Forbidden: This module version is not available"), so they are not built here: the
# TypeScript, Python and Go programs run through the Automation API's inline programs, whose
# language runtime is served by the SDK itself (see tests/test_pulumi_programs.py).
set -euo pipefail

# The CLI version: the newest github.com/pulumi/pulumi/pkg/v3 the module proxy serves that
# also has an @pulumi/pulumi on npm (3.272.0, the PyPI pin, is not served for pkg/v3).
VERSION=${PULUMI_VERSION:-3.276.0}
YAML_VERSION=${PULUMI_YAML_VERSION:-1.25.0}
STATE=${MULTIARCH_TESTENV_STATE:-/var/lib/multiarch-testenv}
DEST=$STATE/pulumi/v$VERSION
BIN=$DEST/bin

export GOFLAGS=-mod=mod
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

have() {
  [[ -x $BIN/pulumi && -x $BIN/pulumi-language-yaml ]] &&
    "$BIN/pulumi" version 2>/dev/null | grep -qx "v$VERSION"
}
if have; then
  exit 0
fi

command -v go >/dev/null || { echo "pulumi.sh: Go is needed (go not on PATH)" >&2; exit 1; }
mkdir -p "$BIN"
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
t0=$(date +%s)

# moddir MODULE VERSION: the module's directory in the module cache (downloading it).
moddir() {
  go mod download -json "$1@$2" | python3 -c '
import json, sys
d = json.load(sys.stdin)
if d.get("Error"):
    sys.exit(d["Error"])
print(d["Dir"])'
}

# build MODULE VERSION PACKAGE OUTPUT [LDFLAGS]: build PACKAGE of MODULE@VERSION into OUTPUT
# with the module's relative replaces turned into requirements of VERSION.
build() {
  local module=$1 version=$2 pkg=$3 out=$4 ldflags=${5:-}
  local src dir
  src=$(moddir "$module" "v$version")
  dir=$work/$(basename "$out")
  cp -r "$src" "$dir"
  chmod -R u+w "$dir"
  (
    cd "$dir"
    # Relative replaces (=> ../x) point into Pulumi's repository, which a module does not carry.
    go mod edit -json | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    if r["New"]["Path"].startswith((".", "/")):
        print(r["Old"]["Path"])' | while read -r old; do
      go mod edit -dropreplace="$old" -require="$old@v$version"
    done
    go build -trimpath -ldflags "$ldflags" -o "$out.tmp" "$pkg"
    mv -f "$out.tmp" "$out"
  )
}

echo "[pulumi] building pulumi v$VERSION from github.com/pulumi/pulumi/pkg/v3" >&2
build github.com/pulumi/pulumi/pkg/v3 "$VERSION" ./cmd/pulumi "$BIN/pulumi" \
  "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$VERSION"
echo "[pulumi] building pulumi-language-yaml v$YAML_VERSION from github.com/pulumi/pulumi-yaml" >&2
build github.com/pulumi/pulumi-yaml "$YAML_VERSION" ./cmd/pulumi-language-yaml \
  "$BIN/pulumi-language-yaml" \
  "-X github.com/pulumi/pulumi-yaml/pkg/version.Version=v$YAML_VERSION"

"$BIN/pulumi" version
echo "[pulumi] built in $(($(date +%s) - t0))s into $BIN" >&2

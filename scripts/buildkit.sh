#!/usr/bin/env bash
# Builds a standalone BuildKit daemon (buildkitd) and its client (buildctl) from the Go module
# github.com/moby/buildkit (idempotent), for the test world's tcp:// + mutual TLS BuildKit node
# (scripts/testenv.sh starts it). Binaries land in
#   ${MULTIARCH_TESTENV_STATE:-/var/lib/multiarch-testenv}/buildkit/v$VERSION/bin
# and the build is skipped when they are already there.
#
# BuildKit's go.mod carries `exclude` directives, so `go install module/cmd/x@version` refuses
# it; as scripts/pulumi.sh does: download the module at the version, copy it out of the module
# cache, build there. buildkitd runs its build steps with the system's runc (OCI worker).
set -euo pipefail

VERSION=${BUILDKIT_VERSION:-0.34.2}
STATE=${MULTIARCH_TESTENV_STATE:-/var/lib/multiarch-testenv}
DEST=$STATE/buildkit/v$VERSION
BIN=$DEST/bin
MODULE=github.com/moby/buildkit

export GOFLAGS=-mod=mod
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

have() {
  [[ -x $BIN/buildkitd && -x $BIN/buildctl ]] &&
    "$BIN/buildkitd" --version 2>/dev/null | grep -q " v$VERSION " &&
    "$BIN/buildctl" --version 2>/dev/null | grep -q " v$VERSION "
}
if have; then
  exit 0
fi

command -v go >/dev/null || { echo "buildkit.sh: Go is needed (go not on PATH)" >&2; exit 1; }
mkdir -p "$BIN"
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
t0=$(date +%s)

src=$(go mod download -json "$MODULE@v$VERSION" | python3 -c '
import json, sys
d = json.load(sys.stdin)
if d.get("Error"):
    sys.exit(d["Error"])
print(d["Dir"])')
cp -r "$src" "$work/buildkit"
chmod -R u+w "$work/buildkit"
cd "$work/buildkit"

ldflags="-X $MODULE/version.Version=v$VERSION -X $MODULE/version.Revision=module-v$VERSION -X $MODULE/version.Package=$MODULE"
for cmd in buildctl buildkitd; do
  echo "[buildkit] building $cmd v$VERSION from $MODULE" >&2
  go build -trimpath -tags 'osusergo netgo' -ldflags "$ldflags" -o "$BIN/$cmd.tmp" "./cmd/$cmd"
  mv -f "$BIN/$cmd.tmp" "$BIN/$cmd"
done

"$BIN/buildkitd" --version
"$BIN/buildctl" --version
echo "[buildkit] built in $(($(date +%s) - t0))s into $BIN" >&2

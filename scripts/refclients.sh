#!/usr/bin/env bash
# Builds the registry clients `make bench` compares against, from their Go modules at pinned
# versions (idempotent): `crane` (go-containerregistry: `crane index append`, `crane copy`) and
# `regctl` (regclient: `regctl index create`, `regctl image copy`). Binaries land in
#   ${MULTIARCH_TESTENV_STATE:-/var/lib/multiarch-testenv}/refclients/bin
# and a build is skipped when the binary of that version is already there. Also GNU time
# (Debian package), with which the bench reads each tool's peak RSS.
set -euo pipefail

CRANE_VERSION=${CRANE_VERSION:-0.22.1}
REGCTL_VERSION=${REGCTL_VERSION:-0.11.7}
STATE=${MULTIARCH_TESTENV_STATE:-/var/lib/multiarch-testenv}
BIN=$STATE/refclients/bin

export GOFLAGS=-mod=mod
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
export CGO_ENABLED=0

# GNU time measures the reference tools' peak RSS in the bench.
if [[ ! -x /usr/bin/time ]]; then
  apt-get install -y -q time >/dev/null || { apt-get update -q && apt-get install -y -q time; }
fi

command -v go >/dev/null || { echo "refclients.sh: Go is needed (go not on PATH)" >&2; exit 1; }
mkdir -p "$BIN"

# install NAME MODULE VERSION PACKAGE VERSION_CHECK_ARGS...: go install PACKAGE@vVERSION as
# $BIN/NAME unless a binary stamped with that version is already there.
install() {
  local name=$1 module=$2 version=$3 pkg=$4
  local stamp=$BIN/.$name.version
  if [[ -x $BIN/$name && -f $stamp && $(cat "$stamp") == "$module@v$version" ]]; then
    return 0
  fi
  echo "[refclients] building $name from $pkg@v$version" >&2
  local work
  work=$(mktemp -d)
  GOBIN=$work go install -trimpath "$pkg@v$version"
  mv -f "$work/$(basename "$pkg")" "$BIN/$name"
  rm -rf "$work"
  echo "$module@v$version" >"$stamp"
}

install crane github.com/google/go-containerregistry "$CRANE_VERSION" \
  github.com/google/go-containerregistry/cmd/crane
install regctl github.com/regclient/regclient "$REGCTL_VERSION" \
  github.com/regclient/regclient/cmd/regctl

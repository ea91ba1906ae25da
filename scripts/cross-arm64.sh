#!/usr/bin/env bash
# The linux-arm64 release binaries, cross-built with Debian's own Rust toolchain (no rustup
# target, nothing but Debian's packages and the crate registry).
#
# Why a Debian root: the workspace's rust-version is 1.95; Debian 12's rustc is 1.63 and
# Debian 13's is 1.85, too old; Debian forky (testing) ships rustc 1.97 with
# `libstd-rust-dev:arm64` and `gcc-aarch64-linux-gnu`. Forky's rustc needs forky's libc, so it
# runs in a minimal forky root made once with debootstrap (kept under the test world's state
# directory, ~1.8 GB) rather than on this machine's own (older) system. Measured here: the
# root in ~3 minutes, the release build at -j1 in ~45 minutes (2 shared cores). The binary
# links against forky's glibc and needs 2.39 on the running host (__isoc23_strtol,
# pidfd_spawnp); an older arm64 libc6-dev in the root would lower that.
#
#   scripts/cross-arm64.sh root     make (or check) the Debian root; idempotent
#   scripts/cross-arm64.sh build    root, then `cargo build --release --target
#                                   aarch64-unknown-linux-gnu` in it; prints the directory
#                                   that holds the two binaries
#
# Settings (environment): MULTIARCH_TESTENV_STATE (state directory, default
# /var/lib/multiarch-testenv), MULTIARCH_CROSS_SUITE (default forky), MULTIARCH_CROSS_JOBS
# (cargo -j, default 1: the machine is shared), MULTIARCH_DIST_PROFILE (release or debug).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state=${MULTIARCH_TESTENV_STATE:-/var/lib/multiarch-testenv}
suite=${MULTIARCH_CROSS_SUITE:-forky}
chroot_dir=$state/debian-$suite-cross
mirror=http://deb.debian.org/debian
jobs=${MULTIARCH_CROSS_JOBS:-1}
profile=${MULTIARCH_DIST_PROFILE:-release}
target=aarch64-unknown-linux-gnu
# What the root holds once ready (the stamp names it, so a change re-runs the install).
pkgs=(rustc cargo libstd-rust-dev:arm64 gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev:arm64 cmake make ca-certificates)
stamp=$chroot_dir/.multiarch-ready

log() { echo "cross-arm64: $*" >&2; }

in_root() {
  # A private mount namespace: the bind mounts vanish with the command, whatever happens.
  unshare --mount --propagation private -- bash -c '
    set -e
    r=$1; shift
    mount -t proc proc "$r/proc"
    mount --bind /dev "$r/dev"
    cp /etc/resolv.conf "$r/etc/resolv.conf" 2>/dev/null || true
    exec chroot "$r" "$@"' _ "$chroot_dir" "$@"
}

make_root() {
  if [[ -f $stamp && $(cat "$stamp") == "${pkgs[*]}" ]]; then
    return
  fi
  command -v debootstrap >/dev/null || apt-get install -y -q debootstrap >&2
  if [[ ! -x $chroot_dir/usr/bin/apt-get ]]; then
    log "debootstrap $suite into $chroot_dir (once)"
    rm -rf "$chroot_dir"
    # Debian 12's debootstrap has no script named forky; testing uses sid's.
    debootstrap --variant=minbase --arch=amd64 "$suite" "$chroot_dir" "$mirror" \
      /usr/share/debootstrap/scripts/sid >&2
  fi
  printf 'deb %s %s main\n' "$mirror" "$suite" >"$chroot_dir/etc/apt/sources.list"
  # The archive's Release files carry a Valid-Until; a mirror copy older than that still
  # serves consistent, signed packages.
  echo 'Acquire::Check-Valid-Until "false";' >"$chroot_dir/etc/apt/apt.conf.d/99multiarch-valid-until"
  in_root dpkg --add-architecture arm64
  in_root env DEBIAN_FRONTEND=noninteractive apt-get -q update >&2
  in_root env DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends "${pkgs[@]}" >&2
  in_root apt-get clean
  echo "${pkgs[*]}" >"$stamp"
  log "root ready: $(in_root rustc --version)"
}

cross_build() {
  make_root
  # Crates come from this machine's cargo cache (fetched with the pinned toolchain), so the
  # build inside needs no network.
  (cd "$root" && cargo fetch --locked >&2)
  local cargo_home=${CARGO_HOME:-$HOME/.cargo}
  local flags=(--locked --offline --bins --target "$target" -j "$jobs")
  [[ $profile == release ]] && flags+=(--release)
  # Its own target directory: Debian's rustc shares no artifacts with the pinned one.
  unshare --mount --propagation private -- bash -c '
    set -e
    r=$1 src=$2 ch=$3; shift 3
    mount -t proc proc "$r/proc"
    mount --bind /dev "$r/dev"
    mkdir -p "$r/src" "$r/cargo-home" "$src/target/debian-cross"
    mount --bind "$src" "$r/src"
    mount --bind "$ch" "$r/cargo-home"
    exec chroot "$r" env -i PATH=/usr/bin:/bin HOME=/root CARGO_HOME=/cargo-home \
      CARGO_TARGET_DIR=/src/target/debian-cross \
      CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
      CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
      CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++ \
      AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar \
      sh -c "cd /src && nice -n 10 cargo build \"\$@\"" _ "$@"' \
    _ "$chroot_dir" "$root" "$cargo_home" "${flags[@]}" >&2
  echo "$root/target/debian-cross/$target/$profile"
}

case ${1:-build} in
  root) make_root ;;
  build) cross_build ;;
  *) echo "usage: $0 [root|build]" >&2; exit 2 ;;
esac

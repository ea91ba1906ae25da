#!/usr/bin/env bash
# The Rust toolchain pinned in rust-toolchain.toml, without a download: when no toolchain of
# that name is installed but the installed `stable` is that very release, the name is
# linked to it (as this machine kind's image does). A different release is a clear error
# rather than a silent build with another compiler.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
want=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' "$HERE/rust-toolchain.toml")
home=${RUSTUP_HOME:-$HOME/.rustup}
host=$(rustup show 2>/dev/null | sed -n 's/^Default host: *//p')
host=${host:-x86_64-unknown-linux-gnu}
name="$want-$host"
if [[ -e $home/toolchains/$name/bin/cargo ]]; then
  exit 0
fi
stable=$home/toolchains/stable-$host
have=$("$stable/bin/rustc" --version 2>/dev/null | awk '{print $2}') || true
if [[ $have == "$want" ]]; then
  ln -sfn "$stable" "$home/toolchains/$name"
  echo "toolchain: $name linked to the installed stable ($have)"
  exit 0
fi
echo "toolchain: rust-toolchain.toml pins $want; the installed stable is ${have:-missing}." >&2
echo "Install it with: rustup toolchain install $want --component rustfmt,clippy" >&2
exit 1

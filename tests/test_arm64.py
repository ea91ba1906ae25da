"""The linux-arm64 plugin (`make dist` cross-builds it with Debian's Rust toolchain,
scripts/cross-arm64.sh), run under QEMU user emulation (the test world's binfmt handler):
`--version`, then a ManifestList created through it on the ECR look-alike (IAM token from moto,
TLS, registry writes), driven as the engine drives a plugin. MULTIARCH_ARM64_BIN names an arm64
`pulumi-resource-multiarch` to test instead of building one here (the build reuses
target/debian-cross, so after `make dist` it is only a check)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from harness import ML, ROOT, FakeEngine, Provider, raw_manifest, run, skopeo_copy, unique
from pulumicli import plugin_version

STATE = Path(os.environ.get("MULTIARCH_TESTENV_STATE", "/var/lib/multiarch-testenv"))
# The arm64 C library the binary loads under QEMU: the one it was linked against, from the
# cross toolchain in the Debian root that built it. Only libraries there: QEMU looks every
# absolute path up under this prefix first, so a whole root would hide the host's /etc/hosts.
SYSROOT = STATE / "debian-forky-cross" / "usr" / "aarch64-linux-gnu"


@pytest.fixture(scope="module")
def arm64_bin() -> Path:
    given = os.environ.get("MULTIARCH_ARM64_BIN")
    if given:
        return Path(given)
    p = subprocess.run(["bash", str(ROOT / "scripts" / "cross-arm64.sh"), "build"], cwd=ROOT,
                       capture_output=True, text=True, timeout=5400)
    assert p.returncode == 0, p.stderr[-6000:]
    return Path(p.stdout.strip().splitlines()[-1]) / "pulumi-resource-multiarch"


@pytest.fixture(scope="module")
def qemu_env(world) -> dict[str, str]:
    handler = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
    assert handler.exists() and "enabled" in handler.read_text(), "no binfmt handler for aarch64"
    return {"QEMU_LD_PREFIX": str(SYSROOT)}


def test_arm64_binary_reports_its_version(arm64_bin, qemu_env):
    head = arm64_bin.read_bytes()[:20]
    # 64-bit little-endian ELF, machine EM_AARCH64 (183).
    assert head[:6] == b"\x7fELF\x02\x01" and head[18:20] == b"\xb7\x00", "not an aarch64 ELF file"
    p = run(str(arm64_bin), "--version", env={**os.environ, **qemu_env})
    assert p.stdout.split() == ["pulumi-resource-multiarch", plugin_version()], p.stdout


def test_manifest_list_through_the_arm64_plugin(arm64_bin, qemu_env, world, provider_env, monkeypatch):
    repo = f"{world['ECR_REGISTRY']}/{unique('arm64-plugin')}"
    skopeo_copy(world["BASE_IMAGE_ECR_AMD64"], f"{repo}:amd64")
    skopeo_copy(world["BASE_IMAGE_ECR_ARM64"], f"{repo}:arm64")
    monkeypatch.setenv("MULTIARCH_PROVIDER_BIN", str(arm64_bin))
    engine = FakeEngine()
    provider = Provider(engine, env={**provider_env, **qemu_env})
    try:
        provider.handshake()
        provider.configure({})
        inputs = {"tags": [f"{repo}:1"], "sources": [f"{repo}:amd64", f"{repo}:arm64"]}
        checked, failures = provider.check(ML, inputs)
        assert failures == []
        id, state = provider.create(ML, checked)
    finally:
        provider.close()
        engine.stop()
    assert id == f"{repo}:1"
    assert state["platforms"] == ["linux/amd64", "linux/arm64"]
    index = raw_manifest(f"{repo}:1")
    assert {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
            for m in index["manifests"]} == {m["platform"]: m["digest"] for m in state["manifests"]}
    assert state["ref"] == f"{repo}@{state['digest']}"

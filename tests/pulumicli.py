"""The real Pulumi CLI (built by scripts/pulumi.sh) in a temporary `file://` backend, with the
multiarch plugin installed the way users install it: `pulumi plugin install resource multiarch
<version> --file <tarball>`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "tests" / "pulumi_programs"
PASSPHRASE = "multiarch-tests"
SDK = ROOT / "sdk"
NODE = PROGRAMS / "nodejs"


def pulumi_version() -> str:
    """The pinned CLI version, read from scripts/pulumi.sh (one place)."""
    text = (ROOT / "scripts" / "pulumi.sh").read_text()
    m = re.search(r"^VERSION=\$\{PULUMI_VERSION:-([0-9.]+)\}", text, re.M)
    assert m, "scripts/pulumi.sh pins no VERSION"
    return m.group(1)


def pulumi_bin_dir() -> Path:
    state = os.environ.get("MULTIARCH_TESTENV_STATE", "/var/lib/multiarch-testenv")
    d = Path(state) / "pulumi" / f"v{pulumi_version()}" / "bin"
    if not (d / "pulumi").exists():
        raise RuntimeError(f"{d}/pulumi is missing: run `make pulumi` (scripts/pulumi.sh)")
    return d


def plugin_version() -> str:
    text = (ROOT / "Cargo.toml").read_text()
    m = re.search(r'^version = "([^"]+)"', text, re.M)
    assert m, "Cargo.toml has no workspace version"
    return m.group(1)


class PulumiCLI:
    """Runs `pulumi` with its own PULUMI_HOME and backend; every output is kept in `self.outputs`
    so tests can check a secret appears in none of them."""

    def __init__(self, base: Path, env: dict[str, str]):
        self.home = base / "pulumi-home"
        self.backend = base / "pulumi-state"
        self.home.mkdir(parents=True, exist_ok=True)
        self.backend.mkdir(parents=True, exist_ok=True)
        self.bin = pulumi_bin_dir()
        self.outputs: list[str] = []
        self.env = dict(os.environ)
        self.env.update(env)
        self.env.update({
            "PATH": f"{self.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "PULUMI_HOME": str(self.home),
            "PULUMI_BACKEND_URL": f"file://{self.backend}",
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_SKIP_CONFIRMATIONS": "true",
            # Nothing is downloaded: the plugin is installed from its tarball below.
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "NO_COLOR": "1",
        })

    def __call__(self, *args: str, cwd: Path | None = None, check: bool = True,
                 timeout: float = 900) -> subprocess.CompletedProcess:
        p = subprocess.run([str(self.bin / "pulumi"), *args, "--non-interactive"],
                           cwd=cwd, env=self.env, capture_output=True, text=True,
                           timeout=timeout)
        self.outputs += [p.stdout, p.stderr]
        if check and p.returncode != 0:
            raise AssertionError(
                f"pulumi {' '.join(args)} exited {p.returncode}\n"
                f"--- stdout\n{p.stdout[-6000:]}\n--- stderr\n{p.stderr[-6000:]}")
        return p

    def json(self, *args: str, cwd: Path | None = None):
        return json.loads(self(*args, "--json", cwd=cwd).stdout)

    def install_plugin(self, binary: Path, workdir: Path) -> Path:
        """`pulumi plugin install resource multiarch <ver> --file <tarball>`, as a user does
        with a release tarball (the binary at the tarball's root)."""
        version = plugin_version()
        tarball = workdir / f"pulumi-resource-multiarch-v{version}-linux-amd64.tar.gz"
        with tarfile.open(tarball, "w:gz", compresslevel=1) as t:
            t.add(binary, arcname="pulumi-resource-multiarch")
        self("plugin", "install", "resource", "multiarch", version, "--file", str(tarball))
        return tarball


def ops(preview: dict) -> dict[str, str]:
    """{resource type+name: op} of a `pulumi preview --json` document (stack itself left out)."""
    out = {}
    for step in preview.get("steps", []):
        urn = step["urn"]  # urn:pulumi:<stack>::<project>::<type>::<name>
        if "::pulumi:pulumi:Stack::" in urn:
            continue
        out[urn.split("::", 2)[-1]] = step["op"]
    return out


def tag_exists(ref: str) -> bool:
    p = subprocess.run(["skopeo", "inspect", "--raw", f"docker://{ref}"], capture_output=True)
    return p.returncode == 0


def writes_to(log, repo: str) -> list[str]:
    """Write requests to this test's repository (the registries are shared with other tests)."""
    path = repo.split("/", 1)[1]
    return [l for l in log.writes() if f" /v2/{path}/" in l]


def platform_digests(index: dict) -> dict[str, str]:
    return {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
            for m in index["manifests"] if m["platform"]["os"] != "unknown"}


def sh(*args, cwd=None, env=None, timeout=900) -> subprocess.CompletedProcess:
    p = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=timeout)
    assert p.returncode == 0, (
        f"{' '.join(map(str, args))} exited {p.returncode}\n{p.stdout[-8000:]}\n{p.stderr[-8000:]}")
    return p


def node_modules() -> Path:
    """The pinned npm packages of tests/pulumi_programs/nodejs (package-lock.json)."""
    nm = NODE / "node_modules"
    if not (nm / "@pulumi" / "pulumi" / "package.json").exists():
        sh("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error", cwd=NODE)
    return nm


def build_node_sdk(dest: Path) -> Path:
    """sdk/nodejs compiled with `tsc --strict` (`npm run build`) into dest/sdk/bin."""
    sdk = dest / "sdk"
    shutil.copytree(SDK / "nodejs", sdk)
    (sdk / "node_modules").symlink_to(node_modules())
    sh(node_modules() / ".bin" / "tsc", "-p", sdk, "--strict")
    # The package as published: bin/ with its package.json (utilities.ts reads the version).
    shutil.copy(sdk / "package.json", sdk / "bin" / "package.json")
    return sdk

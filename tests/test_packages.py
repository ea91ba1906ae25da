"""The SDK packages `make dist` writes (scripts/packages.sh), installed from `dist/` into fresh
projects outside the repository as a user installs them: `npm install ./<tgz>` and a TypeScript
program that `tsc --strict` compiles; `pip install ./<whl>` into a fresh venv, an import and a
mypy check of a program; a Go program whose `go get` resolves the module at its version tag
from the module proxy layout in dist/goproxy, then `go build`. MULTIARCH_DIST_DIR names a
`make dist` output to check instead of packaging here."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from pulumicli import NODE, ROOT, plugin_version

VERSION = plugin_version()
GO_MODULE = "github.com/multiarch-dev/multiarch/sdk/go"
NPM_TGZ = f"multiarch-pulumi-{VERSION}.tgz"
WHEEL = f"pulumi_multiarch-{VERSION}-py3-none-any.whl"
SDIST = f"pulumi_multiarch-{VERSION}.tar.gz"
# The versions the other SDK tests pin (tests/pulumi_programs, tests/requirements.txt), so a
# fresh project takes them from the local caches rather than the newest release.
NPM_PINS = json.loads((NODE / "package.json").read_text())["dependencies"]
PULUMI_PY = re.search(r"^pulumi==(\S+)", (ROOT / "tests" / "requirements.txt").read_text(), re.M)[1]
MYPY = re.search(r"^mypy==(\S+)", (ROOT / "tests" / "requirements.txt").read_text(), re.M)[1]
PULUMI_GO = re.search(r"github.com/pulumi/pulumi/sdk/v3 (v\S+)",
                      (ROOT / "tests" / "pulumi_programs" / "go" / "go.mod").read_text())[1]


def sh(*args, cwd=None, env=None, timeout=900) -> subprocess.CompletedProcess:
    p = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode == 0, f"{' '.join(map(str, args))} exited {p.returncode}\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}"
    return p


def fails(*args, cwd=None, env=None) -> str:
    p = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode != 0, f"{' '.join(map(str, args))} succeeded\n{p.stdout}"
    return p.stdout + p.stderr


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    given = os.environ.get("MULTIARCH_DIST_DIR")
    if given:
        return Path(given)
    d = tmp_path_factory.mktemp("pkgdist") / "dist"
    sh("bash", ROOT / "scripts" / "packages.sh", cwd=ROOT, env=dict(os.environ, DIST_DIR=str(d)),
       timeout=1800)
    return d


def test_checksums_cover_every_package(dist):
    listed = dict(reversed(line.split(None, 1)) for line in (dist / "SHA256SUMS").read_text().splitlines())
    go_zip = f"goproxy/{GO_MODULE}/@v/v{VERSION}.zip"
    for name in (NPM_TGZ, WHEEL, SDIST, go_zip):
        assert name in listed, f"{name} not in SHA256SUMS"
    for name, digest in listed.items():
        assert hashlib.sha256((dist / name).read_bytes()).hexdigest() == digest, name


def test_packages_carry_the_provider_version(dist):
    with tarfile.open(dist / NPM_TGZ) as t:
        names = set(t.getnames())
        pkg = json.load(t.extractfile("package/package.json"))
    assert pkg["name"] == "@multiarch/pulumi"
    assert pkg["version"] == pkg["pulumi"]["version"] == VERSION
    # Compiled: JavaScript and declarations, not the TypeScript sources.
    assert {"package/index.js", "package/index.d.ts", "package/LICENSE"} <= names
    assert not any(n.endswith(".ts") and not n.endswith(".d.ts") for n in names)
    with zipfile.ZipFile(dist / WHEEL) as z:
        meta = z.read(f"pulumi_multiarch-{VERSION}.dist-info/METADATA").decode()
        plugin = json.loads(z.read("pulumi_multiarch/pulumi-plugin.json"))
    assert f"\nVersion: {VERSION}\n" in meta
    assert plugin["version"] == VERSION
    with tarfile.open(dist / SDIST) as t:
        assert f"pulumi_multiarch-{VERSION}/pulumi_multiarch/image.py" in t.getnames()
    v = dist / "goproxy" / GO_MODULE / "@v"
    assert (v / "list").read_text().split() == [f"v{VERSION}"]
    assert json.loads((v / f"v{VERSION}.info").read_text())["Version"] == f"v{VERSION}"
    assert (v / f"v{VERSION}.mod").read_text() == (ROOT / "sdk" / "go" / "go.mod").read_text()
    with zipfile.ZipFile(v / f"v{VERSION}.zip") as z:
        names = set(z.namelist())
    prefix = f"{GO_MODULE}@v{VERSION}/"
    assert all(n.startswith(prefix) for n in names)
    assert {prefix + "go.mod", prefix + "LICENSE", prefix + "multiarch/manifestList.go"} <= names


def test_release_url_reaches_every_package(tmp_path):
    """MULTIARCH_RELEASE_URL (compiled into the plugin's schema by `make dist`) is also where
    each SDK package sends Pulumi for the plugin."""
    url = "https://files.example.com/multiarch/v${VERSION}/"
    d = tmp_path / "dist"
    sh("bash", ROOT / "scripts" / "packages.sh", cwd=ROOT,
       env=dict(os.environ, DIST_DIR=str(d), MULTIARCH_RELEASE_URL=url), timeout=1800)
    with tarfile.open(d / NPM_TGZ) as t:
        assert json.load(t.extractfile("package/package.json"))["pulumi"]["server"] == url
        assert url in t.extractfile("package/utilities.js").read().decode()
    with zipfile.ZipFile(d / WHEEL) as z:
        assert json.loads(z.read("pulumi_multiarch/pulumi-plugin.json"))["server"] == url
    with zipfile.ZipFile(d / "goproxy" / GO_MODULE / "@v" / f"v{VERSION}.zip") as z:
        plugin = json.loads(z.read(f"{GO_MODULE}@v{VERSION}/multiarch/pulumi-plugin.json"))
        assert plugin["server"] == url


TS_PROGRAM = """import * as pulumi from "@pulumi/pulumi";
import * as multiarch from "@multiarch/pulumi";

const stable = new multiarch.ManifestList("stable", {
    tags: ["registry.example.com/app:stable"],
    sources: ["registry.example.com/app:1.0"],
});
export const ref: pulumi.Output<string> = stable.ref;
export const platforms: pulumi.Output<string[]> = stable.platforms;
"""

TS_BAD = """import * as multiarch from "@multiarch/pulumi";
new multiarch.ManifestList("stable", { tags: "not-a-list", sources: [] });
"""


def test_npm_tarball_installs_and_compiles_strict(dist, tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "package.json").write_text(json.dumps({"name": "app", "private": True}))
    sh("npm", "install", "--no-audit", "--no-fund", "--loglevel=error", dist / NPM_TGZ,
       f"@pulumi/pulumi@{NPM_PINS['@pulumi/pulumi']}", f"typescript@{NPM_PINS['typescript']}",
       f"@types/node@{NPM_PINS['@types/node']}", cwd=app)
    installed = json.loads((app / "node_modules" / "@multiarch" / "pulumi" / "package.json").read_text())
    assert installed["version"] == VERSION
    (app / "index.ts").write_text(TS_PROGRAM)
    tsc = app / "node_modules" / ".bin" / "tsc"
    sh(tsc, "--strict", "--noEmit", "--module", "commonjs", "--target", "es2020", "index.ts", cwd=app)
    # The types are the package's own: a string where `tags` takes a list is refused.
    (app / "bad.ts").write_text(TS_BAD)
    out = fails(tsc, "--strict", "--noEmit", "--module", "commonjs", "--target", "es2020", "bad.ts", cwd=app)
    assert "bad.ts(2," in out and "Input<Input<string>[]>" in out
    # And the JavaScript loads in Node, reporting the version it was packaged with.
    p = sh("node", "-e", 'const m = require("@multiarch/pulumi"); '
           'console.log(typeof m.ManifestList, typeof m.Image, require("@multiarch/pulumi/package.json").version)',
           cwd=app)
    assert p.stdout.split() == ["function", "function", VERSION]


PY_PROGRAM = """from collections.abc import Sequence

import pulumi
import pulumi_multiarch as multiarch

stable = multiarch.ManifestList(
    "stable", tags=["registry.example.com/app:stable"], sources=["registry.example.com/app:1.0"])
ref: pulumi.Output[str] = stable.ref
platforms: pulumi.Output[Sequence[str]] = stable.platforms
pulumi.export("ref", ref)
"""

PY_BAD = """import pulumi_multiarch as multiarch

multiarch.ManifestList("stable", tags="x", sources=[], no_such_input=True)
"""


def test_wheel_installs_into_a_fresh_venv_and_type_checks(dist, tmp_path):
    venv = tmp_path / "venv"
    sh(sys.executable, "-m", "venv", venv)
    py = venv / "bin" / "python"
    sh(py, "-m", "pip", "install", "-q", "--disable-pip-version-check", dist / WHEEL,
       f"pulumi=={PULUMI_PY}", f"mypy=={MYPY}")
    p = sh(py, "-c", "import importlib.metadata as m, pulumi_multiarch as p; "
           "print(m.version('pulumi_multiarch'), p.ManifestList.__name__, p.Image.__name__)",
           cwd=tmp_path)
    assert p.stdout.split() == [VERSION, "ManifestList", "Image"]
    (tmp_path / "program.py").write_text(PY_PROGRAM)
    sh(py, "-m", "mypy", "--strict", "--no-incremental", "program.py", cwd=tmp_path)
    (tmp_path / "bad.py").write_text(PY_BAD)
    out = fails(py, "-m", "mypy", "--strict", "--no-incremental", "bad.py", cwd=tmp_path)
    assert "no_such_input" in out


def test_sdist_builds_the_same_modules_as_the_wheel(dist, tmp_path):
    sh(sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--no-deps",
       "-w", tmp_path, dist / SDIST)
    def modules(whl: Path) -> set[str]:
        with zipfile.ZipFile(whl) as z:
            return {n for n in z.namelist() if n.startswith("pulumi_multiarch/")}
    assert modules(tmp_path / WHEEL) == modules(dist / WHEEL)


GO_PROGRAM = """package main

import (
	"github.com/multiarch-dev/multiarch/sdk/go/multiarch"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

func main() {
	pulumi.Run(func(ctx *pulumi.Context) error {
		stable, err := multiarch.NewManifestList(ctx, "stable", &multiarch.ManifestListArgs{
			Tags:    pulumi.StringArray{pulumi.String("registry.example.com/app:stable")},
			Sources: pulumi.StringArray{pulumi.String("registry.example.com/app:1.0")},
		})
		if err != nil {
			return err
		}
		var ref pulumi.StringOutput = stable.Ref
		ctx.Export("ref", ref)
		return nil
	})
}
"""


def test_go_module_resolves_at_its_version_and_builds(dist, tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "main.go").write_text(GO_PROGRAM)
    proxy = os.environ.get("GOPROXY") or sh("go", "env", "GOPROXY").stdout.strip()
    shared_cache = Path(sh("go", "env", "GOMODCACHE").stdout.strip()) / "cache" / "download"
    env = dict(
        os.environ,
        # dist/ first; then the modules this machine already downloaded (same proxy layout),
        # then the usual proxy. A fresh module cache: no copy of the SDK from an earlier run.
        GOPROXY=f"file://{dist}/goproxy,file://{shared_cache},{proxy}",
        GOMODCACHE=str(tmp_path / "modcache"),
        GOFLAGS="-mod=mod -modcacherw -buildvcs=false",
        # Not on the public checksum database until it is published.
        GONOSUMDB=GO_MODULE,
    )
    sh("go", "mod", "init", "example.com/app", cwd=app, env=env)
    sh("go", "get", f"{GO_MODULE}@v{VERSION}", f"github.com/pulumi/pulumi/sdk/v3@{PULUMI_GO}",
       cwd=app, env=env)
    gomod = (app / "go.mod").read_text()
    assert re.search(rf"^\s*{re.escape(GO_MODULE)} v{re.escape(VERSION)}( // indirect)?$", gomod, re.M), gomod
    assert "replace" not in gomod
    # go.sum records the hash of exactly the zip in dist/.
    m = json.loads(sh("go", "mod", "download", "-json", f"{GO_MODULE}@v{VERSION}", cwd=app, env=env).stdout)
    assert Path(m["Zip"]).read_bytes() == (dist / "goproxy" / GO_MODULE / "@v" / f"v{VERSION}.zip").read_bytes()
    assert f"{GO_MODULE} v{VERSION} {m['Sum']}" in (app / "go.sum").read_text()
    sh("go", "build", "-o", tmp_path / "app.bin", ".", cwd=app, env=env, timeout=1800)
    assert (tmp_path / "app.bin").stat().st_size > 0

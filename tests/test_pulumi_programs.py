"""A TypeScript, a Python and a Go program using the generated SDKs, run by the real `pulumi`
CLI through each SDK's Automation API (inline programs: the SDK serves the language runtime to
the CLI itself, so no pulumi-language-<lang> host is needed; those hosts' Go modules are not
served by the module proxy). Each: preview (builds, writes nothing), up (pushes both CPUs),
preview with the platforms reordered (no changes), destroy (tags gone)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from harness import binary, raw_manifest, run, unique
from pulumicli import (
    PROGRAMS, ROOT, PulumiCLI, build_node_sdk, platform_digests, sh, tag_exists, writes_to,
)

DOCKERFILE = """\
FROM {base}
RUN --mount=type=secret,id=token,required=true test -s /run/secrets/token
RUN uname -m > /built-on
CMD ["cat", "/built-on"]
"""


@pytest.fixture(scope="module")
def cli(world, provider_env, tmp_path_factory):
    base = tmp_path_factory.mktemp("pulumi-programs")
    c = PulumiCLI(base, provider_env)
    c.install_plugin(binary(), base)
    return c


def typescript(tmp):
    sdk = build_node_sdk(tmp)
    prog = tmp / "prog"
    prog.mkdir()
    (prog / "program.ts").write_text((PROGRAMS / "nodejs" / "program.ts").read_text())
    (prog / "node_modules").symlink_to(sdk / "node_modules")
    (prog / "tsconfig.json").write_text(json.dumps({
        "compilerOptions": {"strict": True, "target": "es2020", "module": "commonjs",
                            "moduleResolution": "node", "outDir": "bin", "baseUrl": ".",
                            "paths": {"@multiarch/pulumi": [f"{sdk}/bin"]}},
        "files": ["program.ts"]}))
    sh(sdk / "node_modules" / ".bin" / "tsc", "-p", prog)
    # At run time @multiarch/pulumi resolves through NODE_PATH to the compiled SDK, whose own
    # @pulumi/pulumi is the program's (one node_modules).
    scope = tmp / "node_path" / "@multiarch"
    scope.mkdir(parents=True)
    (scope / "pulumi").symlink_to(sdk / "bin")
    return ["node", str(prog / "bin" / "program.js")], {"NODE_PATH": str(tmp / "node_path")}


def python(tmp):
    # Installed from this repository as a user does (`pip install ./sdk/python`), into a
    # directory of its own so the test venv stays as it is.
    # (From a copy: setuptools writes build/ and *.egg-info next to the sources.)
    site, src = tmp / "site", tmp / "sdk-python"
    shutil.copytree(ROOT / "sdk" / "python", src)
    sh(sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
       "--target", site, src)
    return [sys.executable, str(PROGRAMS / "python" / "program.py")], {"PYTHONPATH": str(site)}


def go(tmp):
    sh("go", "build", "-o", tmp / "program", ".", cwd=PROGRAMS / "go",
       env={**os.environ, "GOFLAGS": "-mod=readonly", "GOTOOLCHAIN": "local"})
    return [str(tmp / "program")], {}


@pytest.mark.parametrize("language", ["typescript", "python", "go"])
def test_program_preview_up_destroy(language, cli, world, tmp_path, ecr_log):
    command, extra = {"typescript": typescript, "python": python, "go": go}[language](tmp_path)
    repo = f"{world['ECR_REGISTRY']}/{unique(f'pulumi-{language}')}"
    token = f"tok-{unique('s3cret')}"
    ctx = tmp_path / "context"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=world["BASE_IMAGE_ECR"]))
    env = {**cli.env, **extra, "REPOSITORY": repo, "CONTEXT": str(ctx), "TOKEN": token,
           "PLATFORMS": json.dumps(["linux/amd64", "linux/arm64"])}
    outputs = []

    def program(cmd, **more):
        p = subprocess.run([*command, cmd], env={**env, **more}, capture_output=True,
                           text=True, timeout=900, cwd=tmp_path)
        outputs.extend([p.stdout, p.stderr])
        assert p.returncode == 0, f"{cmd}: {p.stdout[-4000:]}\n{p.stderr[-8000:]}"
        return json.loads(p.stdout.strip().splitlines()[-1])

    ecr_log.mark()
    preview = program("preview")
    assert preview["changes"] == {"create": 3}, preview
    assert writes_to(ecr_log, repo) == []
    assert not tag_exists(f"{repo}:1.0")

    up = program("up")
    assert up["changes"] == {"create": 3}, up
    out = up["outputs"]
    assert out["digests"] == platform_digests(raw_manifest(f"{repo}:stable"))
    assert out["digests"] == platform_digests(raw_manifest(f"{repo}:1.0"))
    assert sorted(out["digests"]) == out["platforms"] == ["linux/amd64", "linux/arm64"]
    assert out["ref"].startswith(f"{repo}@sha256:")
    got = run("docker", "run", "--rm", "--pull", "always", "--network", "none",
              "--platform", "linux/arm64", f"{repo}:stable").stdout.strip()
    assert got == "aarch64"

    ecr_log.mark()
    again = program("preview", PLATFORMS=json.dumps(["linux/arm64", "linux/amd64"]))
    assert again["changes"] == {"same": 3}, again
    assert writes_to(ecr_log, repo) == []

    down = program("destroy")
    assert down["changes"] == {"delete": 3}, down
    assert not tag_exists(f"{repo}:1.0") and not tag_exists(f"{repo}:stable")
    assert all(token not in o for o in outputs)

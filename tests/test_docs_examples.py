"""The docs' examples (docs/examples/<scenario>/: the same program in TypeScript, Python, Go,
Pulumi YAML and Terraform HCL, included into the pages by the docs generator) compile and run:
TypeScript with `tsc --strict` against the generated Node SDK, Python with `mypy --strict`
against the generated Python SDK, Go with `go build` against the generated Go SDK; the Pulumi
YAML programs through the real `pulumi` CLI (preview, up, preview with no changes, destroy)
and the HCL through real Terraform and OpenTofu (every supported engine: plan, apply, plan
with no changes, destroy), against the test world. The files stay as users read them: the
test only points them at its own repository (a config value in Pulumi, the repository name in
HCL) and the Dockerfile's base image at the test world's copy."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from harness import binary, raw_manifest, skopeo_copy, unique
from pulumicli import (PROGRAMS, ROOT, SDK, PulumiCLI, build_node_sdk, node_modules,
                       platform_digests, sh, tag_exists)
from test_terraform import (ENGINE_IDS, ENGINES, Terraform, exists, platforms_of,
                            raw_manifest_digest)

EXAMPLES = ROOT / "docs" / "examples"
SCENARIOS = ["image-ecr", "manifest-list", "promotion", "caches", "builders"]
FILES = {"typescript": "index.ts", "python": "__main__.py", "go": "main.go",
         "yaml": "Pulumi.yaml", "terraform": "main.tf"}
# The repository every example names; the test world's ECR look-alike answers for this host.
EXAMPLE_REPO = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app"


def test_every_scenario_is_in_every_language_and_on_the_pages():
    """One source of truth: each file, verbatim, is a code block of the generated pages (HCL on
    the Terraform resource pages, the Pulumi languages on the Pulumi page)."""
    assert sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()) == sorted(SCENARIOS)
    pulumi_page = (ROOT / "docs" / "_index.md").read_text()
    tf_pages = "".join((ROOT / "docs" / "resources" / p).read_text()
                       for p in ("image.md", "manifest_list.md"))
    for s in SCENARIOS:
        for lang, name in FILES.items():
            text = (EXAMPLES / s / name).read_text()
            page = tf_pages if lang == "terraform" else pulumi_page
            assert f"```{lang}\n{text}```" in page, f"docs/examples/{s}/{name} is not on its page"
            assert EXAMPLE_REPO in text, f"{s}/{name} names no example repository"


def test_typescript_examples_type_check_strict(tmp_path):
    sdk = build_node_sdk(tmp_path)
    prog = tmp_path / "prog"
    prog.mkdir()
    for s in SCENARIOS:
        shutil.copy(EXAMPLES / s / "index.ts", prog / f"{s}.ts")
    (prog / "node_modules").symlink_to(node_modules())
    (prog / "tsconfig.json").write_text(json.dumps({
        "compilerOptions": {"strict": True, "target": "es2020", "module": "commonjs",
                            "moduleResolution": "node", "noEmit": True, "baseUrl": ".",
                            "paths": {"@multiarch/pulumi": [f"{sdk}/bin"]}},
        "files": [f"{s}.ts" for s in SCENARIOS]}))
    sh(node_modules() / ".bin" / "tsc", "-p", prog)


def test_python_examples_type_check_strict(tmp_path):
    # Each program is a `__main__.py`: copied under its scenario's name so one mypy run takes all.
    files = []
    for s in SCENARIOS:
        f = tmp_path / f"{s.replace('-', '_')}.py"
        shutil.copy(EXAMPLES / s / "__main__.py", f)
        files.append(f)
    env = {**os.environ, "MYPYPATH": str(SDK / "python")}
    sh(sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
       "--cache-dir", tmp_path / "mypy", *files, env=env)


def test_go_examples_build(tmp_path):
    """Each main.go in a package of one module that pins the Go SDK as tests/pulumi_programs/go
    does (go.sum from there: what is fetched is checked against it), the multiarch SDK
    replaced by sdk/go."""
    mod = tmp_path / "examples"
    mod.mkdir()
    go = PROGRAMS / "go"
    gomod = (go / "go.mod").read_text().replace("../../../sdk/go", str(SDK / "go"))
    (mod / "go.mod").write_text(gomod)
    shutil.copy(go / "go.sum", mod / "go.sum")
    for s in SCENARIOS:
        (mod / s).mkdir()
        shutil.copy(EXAMPLES / s / "main.go", mod / s / "main.go")
    # The machine's module proxy: on a bare machine the Go SDK's modules are not in the
    # module cache yet (tests/test_pulumi_programs.py fetches them too, but runs later).
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    # Several main packages: compiled and type-checked, the binaries not linked (time).
    sh("nice", "go", "build", *[f"./{s}" for s in SCENARIOS], cwd=mod, env=env)
    # gofmt: the files are formatted as Go users expect.
    assert sh("gofmt", "-l", *[EXAMPLES / s / "main.go" for s in SCENARIOS]).stdout == ""


def copy_scenario(world, scenario: str, dest: Path) -> Path:
    """The scenario's directory, its Dockerfile's base image pointed at the test world's copy."""
    shutil.copytree(EXAMPLES / scenario, dest)
    dockerfile = dest / "app" / "Dockerfile"
    if dockerfile.exists():
        text = dockerfile.read_text()
        new = re.sub(r"^ARG BASE=\S+$", f"ARG BASE={world['BASE_IMAGE_ECR']}", text, flags=re.M)
        assert new != text
        dockerfile.write_text(new)
    return dest


# ---------------------------------------------------------------------------------------
# Pulumi YAML, through the real CLI.

@pytest.fixture(scope="module")
def cli(world, provider_env, tmp_path_factory):
    base = tmp_path_factory.mktemp("docs-examples-cli")
    c = PulumiCLI(base, provider_env)
    c.install_plugin(binary(), base)
    return c


def test_yaml_image_to_ecr(cli, world, tmp_path):
    repo = f"{world['ECR_REGISTRY']}/{unique('docs-image')}"
    proj = copy_scenario(world, "image-ecr", tmp_path / "image-ecr")
    cli("stack", "init", "dev", cwd=proj)
    cli("config", "set", "repository", repo, cwd=proj)
    cli("preview", cwd=proj)
    assert not tag_exists(f"{repo}:1.2.3")  # preview builds, pushes nothing
    cli("up", "--yes", "--skip-preview", cwd=proj)
    out = cli.json("stack", "output", cwd=proj)
    digests = platform_digests(raw_manifest(f"{repo}:1.2.3"))
    assert sorted(digests) == ["linux/amd64", "linux/arm64"]
    assert out["ref"].startswith(f"{repo}@sha256:")
    assert {m["platform"]: m["digest"] for m in out["manifests"]} == digests
    cli("preview", "--expect-no-changes", cwd=proj)
    cli("destroy", "--yes", "--skip-preview", cwd=proj)
    assert not tag_exists(f"{repo}:1.2.3")


def test_yaml_manifest_list_and_promotion(cli, world, tmp_path):
    """manifest-list stitches two per-architecture tags; promotion publishes that index in a
    prod repository under the same digest."""
    repo = f"{world['ECR_REGISTRY']}/{unique('docs-ml')}"
    skopeo_copy(world["BASE_IMAGE_ECR_AMD64"], f"{repo}:10.10")
    skopeo_copy(world["BASE_IMAGE_ECR_ARM64"], f"{repo}:10.20")
    ml = copy_scenario(world, "manifest-list", tmp_path / "manifest-list")
    cli("stack", "init", "dev", cwd=ml)
    cli("config", "set", "repository", repo, cwd=ml)
    cli("up", "--yes", cwd=ml)
    out = cli.json("stack", "output", cwd=ml)
    assert out["platforms"] == ["linux/amd64", "linux/arm64"]
    assert platforms_of(raw_manifest(f"{repo}:10")) == ["linux/amd64", "linux/arm64"]
    cli("preview", "--expect-no-changes", cwd=ml)

    # Promotion: the dev repository's 1.2.3 is the index just made.
    dev, prod = f"{repo}-dev", f"{repo}-prod"
    skopeo_copy(f"{repo}:10", f"{dev}:1.2.3", "--all")
    dev_digest = out["ref"].split("@", 1)[1]
    promo = copy_scenario(world, "promotion", tmp_path / "promotion")
    cli("stack", "init", "dev", cwd=promo)
    cli("config", "set", "devRepository", dev, cwd=promo)
    cli("config", "set", "prodRepository", prod, cwd=promo)
    cli("up", "--yes", cwd=promo)
    promoted = cli.json("stack", "output", cwd=promo)
    assert promoted["digest"] == dev_digest
    assert promoted["ref"] == f"{prod}@{dev_digest}"
    cli("preview", "--expect-no-changes", cwd=promo)
    cli("destroy", "--yes", "--skip-preview", cwd=promo)
    assert tag_exists(f"{prod}:1.2.3")  # keepRemotely: prod keeps its release

    cli("destroy", "--yes", "--skip-preview", cwd=ml)
    assert not tag_exists(f"{repo}:10") and tag_exists(f"{repo}:10.20")


def test_yaml_caches_and_builders(cli, world, tmp_path):
    """caches writes its registry cache to ECR (an OCI image manifest); builders builds amd64
    on the Docker Engine and arm64 on the test world's standalone buildkitd (mutual TLS)."""
    repo = f"{world['ECR_REGISTRY']}/{unique('docs-cache')}"
    proj = copy_scenario(world, "caches", tmp_path / "caches")
    cli("stack", "init", "dev", cwd=proj)
    cli("config", "set", "repository", repo, cwd=proj)
    cli("up", "--yes", "--skip-preview", cwd=proj)
    cache = raw_manifest(f"{repo}:buildcache")
    assert cache["mediaType"] == "application/vnd.oci.image.manifest.v1+json", cache
    assert platforms_of(raw_manifest(f"{repo}:1.2.3")) == ["linux/amd64", "linux/arm64"]
    cli("destroy", "--yes", "--skip-preview", cwd=proj)

    repo = f"{world['ECR_REGISTRY']}/{unique('docs-nodes')}"
    proj = copy_scenario(world, "builders", tmp_path / "builders")
    cli("stack", "init", "dev", cwd=proj)
    cli("config", "set", "repository", repo, cwd=proj)
    cli("config", "set", "arm64Builder", world["BUILDKITD_ADDR"], cwd=proj)
    pem = lambda k: Path(world[k]).read_text()  # noqa: E731
    # PEM values start with dashes: `set-all` takes them as key=value.
    cli("config", "set-all", "--plaintext", f"builderCaCert={pem('BUILDKITD_CA_CERT')}",
        "--plaintext", f"builderCert={pem('BUILDKITD_CLIENT_CERT')}",
        "--secret", f"builderKey={pem('BUILDKITD_CLIENT_KEY')}", cwd=proj)
    p = cli("up", "--yes", "--skip-preview", cwd=proj)
    assert "builders[1]" in p.stdout + p.stderr, p.stdout  # arm64 went to the second node
    out = cli.json("stack", "output", cwd=proj)
    assert out["ref"].startswith(f"{repo}@sha256:")
    assert platforms_of(raw_manifest(f"{repo}:1.2.3")) == ["linux/amd64", "linux/arm64"]
    cli("preview", "--expect-no-changes", cwd=proj)
    cli("destroy", "--yes", "--skip-preview", cwd=proj)
    assert not tag_exists(f"{repo}:1.2.3")


# ---------------------------------------------------------------------------------------
# Terraform HCL, on every supported engine.

HEADER = """terraform {
  required_providers {
    multiarch = {
      source = "example.com/multiarch/multiarch"
    }
  }
}
"""


@pytest.fixture(params=ENGINES, ids=ENGINE_IDS)
def engine_tf(request, tmp_path, world):
    d = tmp_path / "tf"
    d.mkdir()
    return Terraform(d, world, request.param)


def hcl(scenario: str, repo: str) -> str:
    return (EXAMPLES / scenario / "main.tf").read_text().replace(EXAMPLE_REPO, repo)


def test_hcl_examples_run(engine_tf, world):
    """image-ecr, manifest-list and promotion in one configuration: plan writes nothing,
    apply, a plan with no changes, destroy; then caches and builders, each on its own."""
    tf = engine_tf
    repo = f"{world['ECR_REGISTRY']}/{unique('docs-tf')}"
    skopeo_copy(world["BASE_IMAGE_ECR_AMD64"], f"{repo}:10.10")
    skopeo_copy(world["BASE_IMAGE_ECR_ARM64"], f"{repo}:10.20")
    skopeo_copy(world["BASE_IMAGE_ECR"], f"{repo}-dev:1.2.3", "--all")
    copy_scenario(world, "image-ecr", tf.dir / "src")
    shutil.move(str(tf.dir / "src" / "app"), tf.dir / "app")
    (tf.dir / "main.tf").write_text(HEADER + "\n".join(
        hcl(s, repo) for s in ("image-ecr", "manifest-list", "promotion")))
    p = tf("validate")
    assert "Success! The configuration is valid" in p.stdout, p.stdout

    code, out = tf.plan()
    assert code == 2 and "Plan: 3 to add, 0 to change, 0 to destroy." in out, out
    assert not exists(f"{repo}:1.2.3") and not exists(f"{repo}:10")
    p = tf("apply", "-input=false", "-auto-approve")
    assert "Apply complete! Resources: 3 added, 0 changed, 0 destroyed." in p.stdout, p.stdout
    assert platforms_of(raw_manifest(f"{repo}:1.2.3")) == ["linux/amd64", "linux/arm64"]
    assert platforms_of(raw_manifest(f"{repo}:10")) == ["linux/amd64", "linux/arm64"]
    state = tf.state()
    assert state["multiarch_image.app"]["ref"].startswith(f"{repo}@sha256:")
    dev_digest = raw_manifest_digest(f"{repo}-dev:1.2.3")
    assert state["multiarch_manifest_list.release"]["digest"] == dev_digest
    code, out = tf.plan()
    assert code == 0 and "No changes." in out, out
    p = tf("destroy", "-input=false", "-auto-approve")
    assert "Destroy complete! Resources: 3 destroyed." in p.stdout, p.stdout
    assert not exists(f"{repo}:1.2.3") and not exists(f"{repo}:10")
    assert exists(f"{repo}-prod:1.2.3")  # keep_remotely

    # caches (the registry cache in ECR) and builders (arm64 on the test world's buildkitd,
    # its PKI where the example reads certs/): apply, no changes, destroy.
    for s in ("caches", "builders"):
        d = copy_scenario(world, s, tf.dir / s)
        (d / "main.tf").write_text(HEADER + hcl(s, repo))
        run = Terraform(d, world, tf.engine)
        if s == "builders":
            (d / "certs").mkdir()
            shutil.copy(world["BUILDKITD_CA_CERT"], d / "certs" / "ca.crt")
            shutil.copy(world["BUILDKITD_CLIENT_CERT"], d / "certs" / "client.crt")
            run.vars(arm64_builder=world["BUILDKITD_ADDR"],
                     builder_key=Path(world["BUILDKITD_CLIENT_KEY"]).read_text())
        p = run("apply", "-input=false", "-auto-approve")
        assert "Apply complete! Resources: 1 added" in p.stdout, p.stdout
        if s == "caches":
            cache = raw_manifest(f"{repo}:buildcache")
            assert cache["mediaType"] == "application/vnd.oci.image.manifest.v1+json", cache
        code, out = run.plan()
        assert code == 0 and "No changes." in out, out
        run("destroy", "-input=false", "-auto-approve")
        assert not exists(f"{repo}:1.2.3")


def test_hcl_examples_are_formatted(world, tmp_path):
    tf = Terraform(tmp_path, world)
    p = sh(tf.bin, "fmt", "-check", "-diff", "-recursive", EXAMPLES, env=tf.env)
    assert p.stdout == ""

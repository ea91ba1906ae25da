"""The real `pulumi` CLI runs multiarch end to end: Pulumi YAML programs (the YAML language host
is built from its Go module), a `file://` backend, the plugin installed from its tarball,
against the ECR look-alike with moto's IAM token.

One program goes through the whole lifecycle a user goes through: preview (nothing written),
up, preview again, reordered sets, a changed context file, refresh, import, destroy, with a build
secret that must stay encrypted and out of every output and log."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from harness import binary, raw_manifest, run, unique
from pulumicli import ROOT, PulumiCLI, ops, platform_digests, tag_exists, writes_to

IMAGE = "multiarch:index:Image"
ML = "multiarch:index:ManifestList"

DOCKERFILE = """\
FROM {base}
RUN --mount=type=secret,id=token,required=true wc -c < /run/secrets/token > /token-length
COPY app.txt /app.txt
RUN uname -m > /built-on
CMD ["cat", "/built-on"]
"""

PROGRAM = """\
name: {project}
runtime: yaml
config:
  repository:
    type: string
  token:
    type: string
    secret: true
resources:
  app:
    type: multiarch:index:Image
    properties:
      context:
        location: ./app
      platforms: {platforms}
      tags: {tags}
      network: none
      secrets:
        token: ${{token}}
  stable:
    type: multiarch:index:ManifestList
    properties:
      tags:
        - ${{repository}}:stable
      sources:
        - ${{app.ref}}
outputs:
  ref: ${{stable.ref}}
  imageRef: ${{app.ref}}
  manifests: ${{app.manifests}}
  platforms: ${{stable.platforms}}
"""


@pytest.fixture(scope="module")
def cli(world, provider_env, tmp_path_factory):
    base = tmp_path_factory.mktemp("pulumi-cli")
    c = PulumiCLI(base, provider_env)
    c.install_plugin(binary(), base)
    return c


def write_program(d, project, platforms, tags):
    (d / "Pulumi.yaml").write_text(PROGRAM.format(
        project=project, platforms=json.dumps(platforms), tags=json.dumps(tags)))


def test_plugin_is_found_and_serves_the_checked_in_schema(cli, tmp_path):
    """`pulumi package get-schema multiarch` loads the installed plugin by name."""
    out = cli("package", "get-schema", "multiarch", cwd=tmp_path).stdout
    assert json.loads(out) == json.loads((ROOT / "schema" / "schema.json").read_text())
    listed = cli("plugin", "ls", "--json", cwd=tmp_path).stdout
    assert any(p["name"] == "multiarch" and p["kind"] == "resource" for p in json.loads(listed))


def test_yaml_program_full_lifecycle(cli, world, tmp_path, ecr_log):
    repo = f"{world['ECR_REGISTRY']}/{unique('pulumi-yaml')}"
    token = f"tok-{unique('s3cret')}"
    proj = tmp_path / "proj"
    (proj / "app").mkdir(parents=True)
    (proj / "app" / "Dockerfile").write_text(DOCKERFILE.format(base=world["BASE_IMAGE_ECR"]))
    (proj / "app" / "app.txt").write_text("version 1\n")
    platforms = ["linux/amd64", "linux/arm64"]
    tags = ["${repository}:1.0", "${repository}:latest"]
    write_program(proj, "multiarch-lifecycle", platforms, tags)
    cli("stack", "init", "dev", cwd=proj)
    cli("config", "set", "repository", repo, cwd=proj)
    cli("config", "set", "--secret", "token", token, cwd=proj)

    # Preview builds but writes nothing to any registry.
    ecr_log.mark()
    preview = cli.json("preview", cwd=proj)
    assert ops(preview) == {f"{IMAGE}::app": "create", f"{ML}::stable": "create"}
    assert writes_to(ecr_log, repo) == []
    assert not tag_exists(f"{repo}:1.0")

    # Up pushes; the tag serves both CPUs.
    cli("up", "--yes", "--skip-preview", "--logflow", "-v=5", "--logtostderr", cwd=proj)
    out = cli.json("stack", "output", "--show-secrets", cwd=proj)
    digests = platform_digests(raw_manifest(f"{repo}:1.0"))
    assert {m["platform"]: m["digest"] for m in out["manifests"]} == digests
    assert out["platforms"] == ["linux/amd64", "linux/arm64"]
    assert out["imageRef"].startswith(f"{repo}@sha256:")
    # The list promotes the image: the same per-platform manifests under :stable.
    assert out["ref"].startswith(f"{repo}@sha256:")
    assert platform_digests(raw_manifest(f"{repo}:stable")) == digests
    for arch, machine in [("arm64", "aarch64"), ("amd64", "x86_64")]:
        got = run("docker", "run", "--rm", "--pull", "always", "--network", "none",
                  "--platform", f"linux/{arch}", f"{repo}:stable").stdout.strip()
        assert got == machine
    length = run("docker", "run", "--rm", "--network", "none", "--platform", "linux/amd64",
                 f"{repo}:1.0", "cat", "/token-length").stdout.strip()
    assert length == str(len(token))  # the secret reached the build

    # Nothing changed: no changes, nothing pushed.
    ecr_log.mark()
    cli("preview", "--expect-no-changes", cwd=proj)
    # Reordered sets in the program: still no changes.
    write_program(proj, "multiarch-lifecycle", platforms[::-1], tags[::-1])
    cli("preview", "--expect-no-changes", cwd=proj)
    assert writes_to(ecr_log, repo) == []

    # A changed context file: one in-place update of the Image (the list follows its ref).
    (proj / "app" / "app.txt").write_text("version 2\n")
    preview = cli.json("preview", cwd=proj)
    assert ops(preview)[f"{IMAGE}::app"] == "update"
    assert not any(op in ("replace", "create-replacement", "delete-replaced")
                   for op in ops(preview).values())
    cli("up", "--yes", "--skip-preview", cwd=proj)
    out2 = cli.json("stack", "output", cwd=proj)
    assert out2["ref"] != out["ref"] and out2["imageRef"] != out["imageRef"]
    assert platform_digests(raw_manifest(f"{repo}:stable")) == platform_digests(
        raw_manifest(f"{repo}:latest")) != digests

    # Refresh: the registry matches the state, no drift.
    cli("refresh", "--yes", "--expect-no-changes", cwd=proj)

    # The secret: encrypted in the state, in no output, in no plugin log line.
    export = cli("stack", "export", cwd=proj).stdout
    assert token not in export
    state = json.loads(export)
    app = next(r for r in state["deployment"]["resources"] if r["type"] == IMAGE)
    assert "ciphertext" in app["inputs"]["secrets"]
    assert all(token not in o for o in cli.outputs)

    # Import a tag as a ManifestList into its own project, then the generated program
    # previews with no changes.
    imp = tmp_path / "import"
    imp.mkdir()
    (imp / "Pulumi.yaml").write_text("name: multiarch-import\nruntime: yaml\n")
    cli("stack", "init", "dev", cwd=imp)
    p = cli("import", ML, "promoted", f"{repo}:stable", "--yes", "--protect=false",
            "--out", str(imp / "imported.yaml"), cwd=imp)
    generated = yaml.safe_load((imp / "imported.yaml").read_text())
    program = yaml.safe_load((imp / "Pulumi.yaml").read_text())
    program["resources"] = generated["resources"]
    (imp / "Pulumi.yaml").write_text(yaml.safe_dump(program))
    # Pulumi YAML's code generator writes the short form of the token.
    assert generated["resources"]["promoted"]["type"] == "multiarch:ManifestList"
    assert generated["resources"]["promoted"]["properties"]["tags"] == [f"{repo}:stable"]
    exported = json.loads(cli("stack", "export", cwd=imp).stdout)
    imported = next(r for r in exported["deployment"]["resources"] if r["type"] == ML)
    assert imported["outputs"]["ref"] == out2["ref"], p.stdout
    cli("preview", "--expect-no-changes", cwd=imp)
    # Forget the imported copy without deleting the tag the main stack still owns.
    cli("stack", "rm", "--force", "--yes", cwd=imp)

    # Destroy: every tag gone.
    cli("destroy", "--yes", "--skip-preview", cwd=proj)
    for t in ["1.0", "latest", "stable"]:
        assert not tag_exists(f"{repo}:{t}"), t
    assert all(token not in o for o in cli.outputs)


def test_example_manifest_list(cli, world, tmp_path):
    """examples/manifest-list as shipped: app:10 from the amd64 and arm64 builds."""
    repo = f"{world['ECR_REGISTRY']}/{unique('pulumi-example')}"
    run("skopeo", "copy", "--quiet", f"docker://{world['BASE_IMAGE_ECR_AMD64']}",
        f"docker://{repo}:10.10")
    run("skopeo", "copy", "--quiet", f"docker://{world['BASE_IMAGE_ECR_ARM64']}",
        f"docker://{repo}:10.20")
    proj = tmp_path / "manifest-list"
    shutil.copytree(ROOT / "examples" / "manifest-list", proj)
    cli("stack", "init", "example", cwd=proj)
    cli("config", "set", "repository", repo, cwd=proj)
    cli("up", "--yes", cwd=proj)
    out = cli.json("stack", "output", cwd=proj)
    assert out["platforms"] == ["linux/amd64", "linux/arm64"]
    assert out["ref"].startswith(f"{repo}@sha256:")
    got = run("docker", "run", "--rm", "--pull", "always", "--network", "none",
              "--platform", "linux/arm64", f"{repo}:10", "uname", "-m").stdout.strip()
    assert got == "aarch64"
    cli("preview", "--expect-no-changes", cwd=proj)
    cli("destroy", "--yes", cwd=proj)
    assert not tag_exists(f"{repo}:10")
    assert tag_exists(f"{repo}:10.20")  # sources are never deleted


def test_import_an_image_and_a_manifest_list(cli, world, tmp_path):
    """`pulumi import` of an Image (pushed out of band) and of a ManifestList: the program
    that names the ManifestList's sources by tag previews with no changes; the Image's
    first `up` records the build inputs the import cannot know, building nothing."""
    repo = f"{world['ECR_REGISTRY']}/{unique('pulumi-import')}"
    for arch in ("amd64", "arm64"):
        run("skopeo", "copy", "--quiet", f"docker://{world[f'BASE_IMAGE_ECR_{arch.upper()}']}",
            f"docker://{repo}:{arch}")
    run("skopeo", "copy", "--quiet", "--all", f"docker://{world['BASE_IMAGE_ECR']}",
        f"docker://{repo}-app:v1")
    # The list pushed by another tool: the same children as the per-arch tags.
    ml = tmp_path / "ml"
    ml.mkdir()
    (ml / "Pulumi.yaml").write_text(yaml.safe_dump({
        "name": "multiarch-import-ml", "runtime": "yaml",
        "resources": {"list": {"type": ML, "properties": {
            "tags": [f"{repo}:10"], "sources": [f"{repo}:amd64", f"{repo}:arm64"]}}}}))
    cli("stack", "init", "dev", cwd=ml)
    cli("up", "--yes", "--skip-preview", cwd=ml)
    cli("state", "delete", "--yes", "--force", "--all", cwd=ml)

    proj = tmp_path / "import"
    (proj / "app").mkdir(parents=True)
    (proj / "app" / "Dockerfile").write_text(f"FROM {world['BASE_IMAGE_ECR']}\nCOPY app.txt /\n")
    (proj / "app" / "app.txt").write_text("v1\n")
    (proj / "Pulumi.yaml").write_text("name: multiarch-import\nruntime: yaml\n")
    cli("stack", "init", "dev", cwd=proj)
    cli("import", ML, "list", f"{repo}:10", "--yes", "--protect=false",
        "--out", str(proj / "ml.yaml"), cwd=proj)
    cli("import", IMAGE, "app", f"{repo}-app:v1", "--yes", "--protect=false",
        "--out", str(proj / "app.yaml"), cwd=proj)
    generated = yaml.safe_load((proj / "app.yaml").read_text())["resources"]["app"]
    assert generated["properties"]["tags"] == [f"{repo}-app:v1"]
    assert sorted(generated["properties"]["platforms"]) == ["linux/amd64", "linux/arm64"]
    imported = {r["type"]: r for r in
                json.loads(cli("stack", "export", cwd=proj).stdout)["deployment"]["resources"]}
    app_digest = imported[IMAGE]["outputs"]["digest"]

    # The program as a user writes it: sources by tag, the Image with its context.
    program = {"name": "multiarch-import", "runtime": "yaml", "resources": {
        "list": {"type": ML, "properties": {
            "tags": [f"{repo}:10"], "sources": [f"{repo}:arm64", f"{repo}:amd64"]}},
        "app": {"type": IMAGE, "properties": {
            "context": {"location": "./app"}, "platforms": ["linux/arm64", "linux/amd64"],
            "tags": [f"{repo}-app:v1"], "network": "none"}}},
        "outputs": {"appDigest": "${app.digest}", "appHash": "${app.contextHash}"}}
    (proj / "Pulumi.yaml").write_text(yaml.safe_dump(program))
    preview = cli.json("preview", cwd=proj)
    # (`same` steps are left out of the JSON: the list has none.)
    assert ops(preview) == {f"{IMAGE}::app": "update"}, ops(preview)
    cli("up", "--yes", "--skip-preview", cwd=proj)
    out = cli.json("stack", "output", cwd=proj)
    assert out["appDigest"] == app_digest and out["appHash"].startswith("sha256:")
    cli("preview", "--expect-no-changes", cwd=proj)
    # From here on a changed file is a change.
    (proj / "app" / "app.txt").write_text("v2\n")
    assert ops(cli.json("preview", cwd=proj))[f"{IMAGE}::app"] == "update"
    cli("stack", "rm", "--force", "--yes", cwd=proj)

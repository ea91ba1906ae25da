"""The Terraform front's lifecycle on every supported engine (tests/test_terraform.py's
ENGINES: the oldest supported Terraform, 1.0.3; Terraform 1.13.3; OpenTofu 1.12.6): provider
configuration, then for both resources a plan that writes nothing, apply, a plan with no
changes, import (by command on every engine; by `import {}` block, by resource identity and
with `plan -generate-config-out` where the engine has them), refresh and destroy, against the
test world's ECR look-alike. The ManifestList runs every step (it is cheap); the Image runs
one build per engine (BuildKit's cache makes the later engines' builds cheap too)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness import RegistryLog, raw_manifest, skopeo_copy, unique
from test_terraform import (ENGINE_IDS, ENGINES, FIXTURE, Terraform, exists, platforms_of,
                            raw_manifest_digest, report_timings)

HEADER = """terraform {
  required_version = ">= 1.0.3"
  required_providers {
    multiarch = {
      source = "example.com/multiarch/multiarch"
    }
  }
}

provider "multiarch" {
  registries = [{ address = "127.0.0.1:5000", insecure = true }]
}
"""


@pytest.fixture(params=ENGINES, ids=ENGINE_IDS)
def engine_tf(request, tmp_path, world):
    d = tmp_path / "tf"
    d.mkdir()
    yield Terraform(d, world, request.param)
    report_timings()


def write(tf: Terraform, *parts: str):
    (tf.dir / "main.tf").write_text(HEADER + "\n".join(parts))


def manifest_list(name: str, tags: list[str], sources: list[str]) -> str:
    q = lambda xs: ", ".join(f'"{x}"' for x in xs)  # noqa: E731
    return f'resource "multiarch_manifest_list" "{name}" {{\n  tags    = [{q(tags)}]\n  sources = [{q(sources)}]\n}}\n'


def out_of_band_index(world: dict, ref: str) -> list[str]:
    """Pushes the test world's two-platform base index to `ref`; its children by digest."""
    skopeo_copy(world["BASE_IMAGE_ECR"], ref, "--all")
    repo = ref.rsplit(":", 1)[0]
    return [f"{repo}@{m['digest']}" for m in raw_manifest(ref)["manifests"]
            if m["platform"]["os"] != "unknown"]


def other_warnings(out: str) -> list[str]:
    """Warnings but the one `dev_overrides` always prints."""
    return [w for w in re.findall(r"Warning: (.+)", out)
            if w.strip() != "Provider development overrides are in effect"]


def no_changes(tf: Terraform):
    code, out = tf.plan()
    assert code == 0 and "No changes." in out, out


def test_manifest_list_lifecycle(engine_tf, world):
    tf, engine = engine_tf, engine_tf.engine
    ecr = RegistryLog(world["ECR_REGISTRY_LOG"])
    repo = f"{world['ECR_REGISTRY']}/{unique('tfml')}"
    sources = [world["BASE_IMAGE_ECR_AMD64"], world["BASE_IMAGE_ECR_ARM64"]]
    index = manifest_list("index", [f"{repo}:a", f"{repo}:b"], sources)
    write(tf, index)

    # Validate: the schema loads (the engines check it) and the configuration is valid.
    # (tests/test_install.py validates with no warning at all, installed from the mirror.)
    p = tf("validate")
    assert "Success! The configuration is valid" in p.stdout, p.stdout
    assert other_warnings(p.stdout + p.stderr) == [], p.stdout

    # Plan writes nothing; apply pushes the index under both tags.
    ours = lambda: [w for w in ecr.writes() if f"/v2/{repo.split('/', 1)[1]}" in w]  # noqa: E731
    ecr.mark()
    code, out = tf.plan()
    assert code == 2 and "multiarch_manifest_list.index will be created" in out, out
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in out
    assert '"linux/arm64"' in out  # platforms known at plan time
    assert ours() == []
    p = tf("apply", "-input=false", "-auto-approve")
    assert "Apply complete! Resources: 1 added, 0 changed, 0 destroyed." in p.stdout
    for t in ("a", "b"):
        assert platforms_of(raw_manifest(f"{repo}:{t}")) == ["linux/amd64", "linux/arm64"]
    state = tf.state()["multiarch_manifest_list.index"]
    assert state["id"] == f"{repo}:a" and state["platforms"] == ["linux/amd64", "linux/arm64"]
    no_changes(tf)

    # Refresh: `b` moved out of band is no longer ours; the next plan puts it back.
    skopeo_copy(world["BASE_IMAGE_ECR_AMD64"], f"{repo}:b")
    tf("apply", "-refresh-only", "-input=false", "-auto-approve")
    assert tf.state()["multiarch_manifest_list.index"]["tags"] == [f"{repo}:a"]
    code, out = tf.plan()
    assert code == 2 and "multiarch_manifest_list.index will be updated in-place" in out, out
    tf("apply", "-input=false", "-auto-approve")
    assert platforms_of(raw_manifest(f"{repo}:b")) == ["linux/amd64", "linux/arm64"]
    no_changes(tf)

    # Import by command (every engine): an index pushed out of band, configured with the
    # sources the import records (its children by digest): no changes after it.
    cmd_ref = f"{repo}-cmd:v1"
    cmd_sources = out_of_band_index(world, cmd_ref)
    parts = [index, manifest_list("cmd", [cmd_ref], cmd_sources)]
    write(tf, *parts)
    p = tf("import", "-input=false", "multiarch_manifest_list.cmd", cmd_ref)
    assert "Import successful!" in p.stdout
    assert sorted(tf.state()["multiarch_manifest_list.cmd"]["sources"]) == sorted(cmd_sources)
    no_changes(tf)
    owned = [f"{repo}:a", f"{repo}:b", cmd_ref]
    imported = {}  # resource name -> the tag it was imported by

    if engine.import_blocks:
        # `import {}` by id, planned then applied: imported, nothing changed or pushed.
        blk_ref = f"{repo}-blk:v1"
        blk_sources = out_of_band_index(world, blk_ref)
        parts.append(manifest_list("blk", [blk_ref], blk_sources))
        parts.append(f'import {{\n  to = multiarch_manifest_list.blk\n  id = "{blk_ref}"\n}}\n')
        owned.append(blk_ref)
        imported["blk"] = blk_ref
    if engine.identity:
        # `import {}` by resource identity (the tag).
        id_ref = f"{repo}-ident:v1"
        id_sources = out_of_band_index(world, id_ref)
        parts.append(manifest_list("ident", [id_ref], id_sources))
        parts.append("import {\n  to = multiarch_manifest_list.ident\n"
                     f'  identity = {{\n    tag = "{id_ref}"\n  }}\n}}\n')
        owned.append(id_ref)
        imported["ident"] = id_ref
    if engine.import_blocks:
        # `plan -generate-config-out`: the engine writes the resource from the import.
        gen_ref = f"{repo}-gen:v1"
        gen_sources = out_of_band_index(world, gen_ref)
        parts.append(f'import {{\n  to = multiarch_manifest_list.gen\n  id = "{gen_ref}"\n}}\n')
        owned.append(gen_ref)
        imported["gen"] = gen_ref
        write(tf, *parts)
        p = tf("plan", "-input=false", "-generate-config-out=generated.tf", ok=(0,))
        generated = (tf.dir / "generated.tf").read_text()
        assert 'resource "multiarch_manifest_list" "gen"' in generated, generated
        assert f'"{gen_ref}"' in generated and all(s in generated for s in gen_sources), generated
        fmt = tf("fmt", "-check", "-diff", str(tf.dir / "generated.tf"), ok=(0,))
        assert fmt.stdout == ""
        imports = len(imported)
        ecr.mark()
        code, out = tf.plan()
        assert code == 2, out
        assert f"Plan: {imports} to import, 0 to add, 0 to change, 0 to destroy." in out, out
        p = tf("apply", "-input=false", "-auto-approve")
        assert f"Apply complete! Resources: {imports} imported, 0 added, 0 changed, 0 destroyed." \
            in p.stdout, p.stdout
        assert ours() == []  # an import pushes nothing
        state = tf.state()
        for name, ref in imported.items():
            assert state[f"multiarch_manifest_list.{name}"]["id"] == ref, name
            assert state[f"multiarch_manifest_list.{name}"]["tags"] == [ref], name
        no_changes(tf)

    # Destroy: every owned tag goes; the sources stay.
    p = tf("destroy", "-input=false", "-auto-approve")
    assert re.search(r"Destroy complete! Resources: \d+ destroyed\.", p.stdout), p.stdout
    assert [r for r in owned if exists(r)] == []
    for ref in [world["BASE_IMAGE_ECR"], *sources]:
        assert exists(ref)


def image(tags: list[str], context: Path) -> str:
    q = ", ".join(f'"{t}"' for t in tags)
    return (f'resource "multiarch_image" "app" {{\n  context {{\n    location = "{context}"\n  }}\n'
            f'  platforms = ["linux/amd64", "linux/arm64"]\n  tags      = [{q}]\n'
            '  network   = "none"\n}\n')


def test_image_lifecycle(engine_tf, world):
    tf, engine = engine_tf, engine_tf.engine
    ecr = RegistryLog(world["ECR_REGISTRY_LOG"])
    repo = f"{world['ECR_REGISTRY']}/{unique('tfimg')}"
    ctx = FIXTURE / "app"
    write(tf, image([f"{repo}:v1"], ctx))
    ours = lambda: [w for w in ecr.writes() if f"/v2/{repo.split('/', 1)[1]}/" in w]  # noqa: E731

    ecr.mark()
    code, out = tf.plan()
    assert code == 2 and "multiarch_image.app will be created" in out, out
    assert ours() == []
    p = tf("apply", "-input=false", "-auto-approve")
    assert "Apply complete! Resources: 1 added, 0 changed, 0 destroyed." in p.stdout
    state = tf.state()["multiarch_image.app"]
    assert platforms_of(raw_manifest(f"{repo}:v1")) == ["linux/amd64", "linux/arm64"]
    assert state["ref"] == f"{repo}@{state['digest']}"
    no_changes(tf)
    tf("apply", "-refresh-only", "-input=false", "-auto-approve")
    assert tf.state()["multiarch_image.app"]["digest"] == state["digest"]
    no_changes(tf)

    # Import: forget the resource, then take it back by its tag; the build inputs the import
    # cannot know show as one in-place update that builds and pushes nothing.
    tf("state", "rm", "multiarch_image.app")
    if engine.identity:
        (tf.dir / "import.tf").write_text(
            f'import {{\n  to = multiarch_image.app\n  identity = {{\n    tag = "{repo}:v1"\n  }}\n}}\n')
    elif engine.import_blocks:
        (tf.dir / "import.tf").write_text(f'import {{\n  to = multiarch_image.app\n  id = "{repo}:v1"\n}}\n')
    else:
        p = tf("import", "-input=false", "multiarch_image.app", f"{repo}:v1")
        assert "Import successful!" in p.stdout
    code, out = tf.plan()
    assert code == 2 and "multiarch_image.app will be updated in-place" in out, out
    ecr.mark()
    p = tf("apply", "-input=false", "-auto-approve")
    assert "0 added, 1 changed, 0 destroyed." in p.stdout, p.stdout
    assert ours() == []
    assert raw_manifest_digest(f"{repo}:v1") == state["digest"]
    (tf.dir / "import.tf").unlink(missing_ok=True)
    no_changes(tf)

    if engine.import_blocks:
        # `plan -generate-config-out` writes the Image without its build inputs (a registry
        # does not hold them): that plan stops at the missing context, as the docs say; with
        # the context block added the import plans as one in-place update.
        (tf.dir / "gen").mkdir()
        gen = Terraform(tf.dir / "gen", world, engine)
        (gen.dir / "main.tf").write_text(
            HEADER + f'import {{\n  to = multiarch_image.adopted\n  id = "{repo}:v1"\n}}\n')
        p = gen("plan", "-input=false", "-generate-config-out=generated.tf", ok=(1,))
        assert "without a context, dockerfile.inline is required" in p.stderr, p.stderr
        generated = (gen.dir / "generated.tf").read_text()
        assert 'resource "multiarch_image" "adopted" {' in generated, generated
        assert f'"{repo}:v1"' in generated and '"linux/arm64"' in generated, generated
        (gen.dir / "generated.tf").write_text(generated.replace(
            'resource "multiarch_image" "adopted" {',
            f'resource "multiarch_image" "adopted" {{\n  context {{\n    location = "{ctx}"\n  }}'))
        code, out = gen.plan()
        assert code == 2 and "Plan: 1 to import, 0 to add, 1 to change, 0 to destroy." in out, out

    p = tf("destroy", "-input=false", "-auto-approve")
    assert "Destroy complete! Resources: 1 destroyed." in p.stdout
    assert not exists(f"{repo}:v1")

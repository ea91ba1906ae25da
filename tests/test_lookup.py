"""The image lookup through the real CLIs: `multiarch:index:getImage` in a Pulumi YAML program
(`fn::invoke`, `pulumi preview`) and the `multiarch_image` data source in `terraform plan` on
every engine tests/test_terraform.py supports. Each looks up an index and a single-platform
image in the test world's ECR look-alike (credentials from moto's IAM token, as the resources
get theirs) during preview/plan: the digests are the ones skopeo reads, nothing is written,
and a missing tag fails naming the reference."""

from __future__ import annotations

import json
import re

import pytest

from harness import RegistryLog, binary, raw_manifest, skopeo_copy, unique
from pulumicli import PulumiCLI
from test_terraform import ENGINE_IDS, ENGINES, Terraform, raw_manifest_digest, report_timings


@pytest.fixture(scope="module")
def images(world):
    """An index (two platforms and BuildKit's attestations, if any) and a single-platform
    image, pushed out of band to a fresh ECR repository; what skopeo reads of them."""
    repo = f"{world['ECR_REGISTRY']}/{unique('lookup')}"
    skopeo_copy(world["BASE_IMAGE_ECR"], f"{repo}:v1", "--all")
    skopeo_copy(world["BASE_IMAGE_ECR_ARM64"], f"{repo}:arm64")
    index = raw_manifest(f"{repo}:v1")
    platforms = [
        {"platform": "/".join(filter(None, [m["platform"]["os"], m["platform"]["architecture"],
                                            m["platform"].get("variant")])),
         "digest": m["digest"]}
        for m in index["manifests"] if m["platform"]["os"] != "unknown"]
    assert len(platforms) == 2
    return {
        "repo": repo,
        "index": f"{repo}:v1",
        "index_digest": raw_manifest_digest(f"{repo}:v1"),
        "index_type": index["mediaType"],
        "platforms": platforms,
        "single": f"{repo}:arm64",
        "single_digest": raw_manifest_digest(f"{repo}:arm64"),
        "single_type": raw_manifest(f"{repo}:arm64")["mediaType"],
    }


def writes_to(log: RegistryLog, images: dict) -> list[str]:
    """Writes to the lookup's repository since the log's mark (others share the registry)."""
    path = images["repo"].split("/", 1)[1]
    return [w for w in log.writes() if f"/v2/{path}/" in w]


def expected(images: dict, which: str) -> dict:
    """The lookup's result as skopeo sees the image."""
    if which == "index":
        digest, media_type, manifests = (images["index_digest"], images["index_type"],
                                         images["platforms"])
    else:
        digest, media_type = images["single_digest"], images["single_type"]
        manifests = [{"platform": "linux/arm64", "digest": digest}]
    return {"digest": digest, "ref": f"{images[which]}@{digest}", "mediaType": media_type,
            "manifests": manifests}


# --- Pulumi: `fn::invoke` in a YAML program, read during `pulumi preview` -------------------

PROGRAM = """\
name: lookup
runtime: yaml
config:
  indexRef:
    type: string
  singleRef:
    type: string
variables:
  index:
    fn::invoke:
      function: multiarch:index:getImage
      arguments:
        ref: ${indexRef}
  single:
    fn::invoke:
      function: multiarch:index:getImage
      arguments:
        ref: ${singleRef}
outputs:
  indexDigest: ${index.digest}
  indexRef: ${index.ref}
  indexMediaType: ${index.mediaType}
  indexManifest0: ${index.manifests[0].platform}=${index.manifests[0].digest}
  indexManifest1: ${index.manifests[1].platform}=${index.manifests[1].digest}
  singleDigest: ${single.digest}
  singleRef: ${single.ref}
  singleMediaType: ${single.mediaType}
  singleManifest0: ${single.manifests[0].platform}=${single.manifests[0].digest}
"""


@pytest.fixture(scope="module")
def cli(world, provider_env, tmp_path_factory):
    base = tmp_path_factory.mktemp("pulumi-lookup")
    c = PulumiCLI(base, provider_env)
    c.install_plugin(binary(), base)
    return c


def stack(cli: PulumiCLI, d, index: str, single: str):
    d.mkdir()
    (d / "Pulumi.yaml").write_text(PROGRAM)
    cli("stack", "init", unique("lookup"), cwd=d)  # one backend for the module's stacks
    cli("config", "set", "indexRef", index, cwd=d)
    cli("config", "set", "singleRef", single, cwd=d)


def preview_outputs(text: str) -> dict:
    """The stack's string outputs as `pulumi preview` prints them (its --json form leaves
    a preview's outputs out; it shortens strings of more than about 150 characters, so
    each output is one value)."""
    section = text.split("\nOutputs:\n", 1)[1].split("\n\n", 1)[0]
    return {m[1]: json.loads(m[2]) for m in re.finditer(r'^ +(\w+) *: ("[^\n]*")$', section, re.M)}


def pulumi_form(e: dict) -> dict:
    return {"Digest": e["digest"], "Ref": e["ref"], "MediaType": e["mediaType"],
            **{f"Manifest{i}": f"{m['platform']}={m['digest']}"
               for i, m in enumerate(e["manifests"])}}


def test_get_image_in_pulumi_preview(cli, world, images, tmp_path):
    ecr = RegistryLog(world["ECR_REGISTRY_LOG"])
    d = tmp_path / "proj"
    stack(cli, d, images["index"], images["single"])
    ecr.mark()
    out = preview_outputs(cli("preview", cwd=d).stdout)
    for which in ("index", "single"):
        want = {which + k: v for k, v in pulumi_form(expected(images, which)).items()}
        assert {k: v for k, v in out.items() if k.startswith(which)} == want
    assert writes_to(ecr, images) == []


def test_get_image_of_a_missing_tag_fails_naming_it(cli, images, tmp_path):
    d = tmp_path / "proj"
    missing = f"{images['repo']}:no-such-tag"
    stack(cli, d, missing, images["single"])
    p = cli("preview", cwd=d, check=False)
    assert p.returncode != 0
    text = p.stdout + p.stderr
    assert f"{missing} does not exist in its registry" in text, text


# --- Terraform: the `multiarch_image` data source, read during `terraform plan` -----------

CONFIG = """terraform {
  required_version = ">= 1.0.3"
  required_providers {
    multiarch = {
      source = "example.com/multiarch/multiarch"
    }
  }
}

provider "multiarch" {}

data "multiarch_image" "index" {
  ref = "%(index)s"
}

data "multiarch_image" "single" {
  ref = "%(single)s"
}

output "index" {
  value = {
    digest     = data.multiarch_image.index.digest
    ref        = data.multiarch_image.index.pinned_ref
    media_type = data.multiarch_image.index.media_type
    manifests  = data.multiarch_image.index.manifests
  }
}

output "single" {
  value = {
    digest     = data.multiarch_image.single.digest
    ref        = data.multiarch_image.single.pinned_ref
    media_type = data.multiarch_image.single.media_type
    manifests  = data.multiarch_image.single.manifests
  }
}
"""


@pytest.fixture(params=ENGINES, ids=ENGINE_IDS)
def engine_tf(request, tmp_path, world):
    d = tmp_path / "tf"
    d.mkdir()
    yield Terraform(d, world, request.param)
    report_timings()


def tf_form(e: dict) -> dict:
    return {"digest": e["digest"], "ref": e["ref"], "media_type": e["mediaType"],
            "manifests": e["manifests"]}


def test_image_data_source_in_terraform_plan(engine_tf, world, images):
    tf = engine_tf
    ecr = RegistryLog(world["ECR_REGISTRY_LOG"])
    (tf.dir / "main.tf").write_text(CONFIG % images)
    ecr.mark()
    tf("plan", "-input=false", "-out=plan.bin")
    shown = json.loads(tf("show", "-json", "plan.bin").stdout)
    outputs = {k: v["value"] for k, v in shown["planned_values"]["outputs"].items()}
    assert outputs["index"] == tf_form(expected(images, "index"))
    assert outputs["single"] == tf_form(expected(images, "single"))
    assert writes_to(ecr, images) == []


def test_image_data_source_of_a_missing_tag_fails_naming_it(engine_tf, images):
    tf = engine_tf
    missing = f"{images['repo']}:no-such-tag"
    (tf.dir / "main.tf").write_text(CONFIG % {"index": missing, "single": images["single"]})
    p = tf("plan", "-input=false", ok=(1,))
    text = " ".join((p.stdout + p.stderr).split())
    assert f"{missing} does not exist in its registry" in text, text


def test_image_data_source_refuses_a_reference_without_its_registry(engine_tf, images):
    tf = engine_tf
    (tf.dir / "main.tf").write_text(CONFIG % {"index": "app:v1", "single": images["single"]})
    p = tf("validate", ok=(1,))
    text = " ".join((p.stdout + p.stderr).split())
    assert "does not name a registry host" in text, text

"""Import, driven as the engine drives the provider: an Image imported by tag is adopted
by its first update, which records the program's build inputs without building; a ManifestList
imported by tag plans no change for a program that names its sources by tag (or names the
promoted index itself). The real `pulumi import` and `terraform import` flows are in
test_pulumi_cli.py and test_terraform.py."""

import hashlib

import grpc
import pytest

from harness import DIFF_NONE, DIFF_SOME, IMAGE, ML, UNKNOWN, run, skopeo_copy, unique


def manifest_digest(ref: str) -> str:
    raw = run("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}").stdout
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


@pytest.fixture
def program_dir(tmp_path, world):
    d = tmp_path / "ctx"
    d.mkdir()
    (d / "Dockerfile").write_text(f"FROM {world['BASE_IMAGE_PLAIN']}\nCOPY app.txt /\n")
    (d / "app.txt").write_text("version 1\n")
    return d


def image_program(ctx, tag):
    return {
        "context": {"location": str(ctx)},
        "platforms": ["linux/arm64", "linux/amd64"],
        "tags": [tag],
        "buildArgs": {"VERSION": "1"},
    }


def test_an_imported_image_is_adopted_by_its_first_update_without_a_build(provider, world, program_dir):
    repo = f"{world['PLAIN_REGISTRY']}/{unique('imported-image')}"
    other = f"{world['PLAIN_REGISTRY']}/{unique('imported-image-other')}"
    tag = f"{repo}:v1"
    skopeo_copy(world["BASE_IMAGE_PLAIN"], tag, "--all")

    rid, props, inputs = provider.read(IMAGE, tag)
    assert rid == tag
    assert inputs["tags"] == [tag] and inputs["platforms"] == ["linux/amd64", "linux/arm64"]
    assert "context" not in inputs and "contextHash" not in props
    assert props["ref"] == f"{repo}@{props['digest']}"
    assert [m["platform"] for m in props["manifests"]] == ["linux/amd64", "linux/arm64"]

    # The program adds what the import cannot know: those inputs are the diff (no
    # contextHash: nothing was recorded to compare with).
    program, failures = provider.check(IMAGE, image_program(program_dir, tag))
    assert failures == []
    d = provider.diff(IMAGE, rid, props, program)
    assert d.changes == DIFF_SOME and set(d.diffs) == {"context", "buildArgs"}, list(d.diffs)

    # Its preview knows every output but the context hash, and builds nothing.
    with_tags = dict(program, tags=[tag, f"{repo}:latest", f"{other}:v1"])
    planned = provider.update(IMAGE, rid, props, with_tags, preview=True)
    assert planned["digest"] == props["digest"] and planned["contextHash"] == UNKNOWN

    # The update records the inputs and the hash; nothing is built or pushed anew: every
    # tag (one added in the same repository, one in another) points at the imported index.
    updated = provider.update(IMAGE, rid, props, with_tags)
    assert updated["digest"] == props["digest"]
    assert updated["contextHash"].startswith("sha256:")
    assert updated["buildArgs"] == {"VERSION": "1"}
    for t in with_tags["tags"]:
        assert manifest_digest(t) == props["digest"], t
    assert provider.diff(IMAGE, rid, updated, with_tags).changes == DIFF_NONE

    # From here on the content counts.
    (program_dir / "app.txt").write_text("version 2\n")
    d = provider.diff(IMAGE, rid, updated, with_tags)
    assert d.changes == DIFF_SOME and list(d.diffs) == ["contextHash"]


def test_an_imported_image_whose_platforms_change_is_built(provider, world, program_dir):
    repo = f"{world['PLAIN_REGISTRY']}/{unique('imported-rebuilt')}"
    tag = f"{repo}:v1"
    skopeo_copy(world["BASE_IMAGE_PLAIN_AMD64"], tag)
    rid, props, inputs = provider.read(IMAGE, tag)
    assert inputs["platforms"] == ["linux/amd64"]
    program, _ = provider.check(IMAGE, dict(image_program(program_dir, tag), network="none"))
    d = provider.diff(IMAGE, rid, props, program)
    assert "platforms" in d.diffs
    updated = provider.update(IMAGE, rid, props, program)
    assert updated["digest"] != props["digest"]
    assert sorted(m["platform"] for m in updated["manifests"]) == ["linux/amd64", "linux/arm64"]
    assert updated["contextHash"].startswith("sha256:")


def test_image_import_of_a_missing_or_malformed_tag(provider, world):
    missing = f"{world['PLAIN_REGISTRY']}/{unique('nothing')}:v1"
    rid, props, _ = provider.read(IMAGE, missing)
    assert rid == "" and props == {}
    with pytest.raises(grpc.RpcError) as e:
        provider.read(IMAGE, "not a reference")
    assert "id" in e.value.details() and "<registry>/<repository>:<tag>" in e.value.details()


def test_a_manifest_list_imported_by_tag_matches_a_program_naming_tags(provider, world):
    repo = f"{world['PLAIN_REGISTRY']}/{unique('imported-ml')}"
    skopeo_copy(world["BASE_IMAGE_PLAIN_AMD64"], f"{repo}:amd64")
    skopeo_copy(world["BASE_IMAGE_PLAIN_ARM64"], f"{repo}:arm64")
    program = {"tags": [f"{repo}:10"], "sources": [f"{repo}:arm64", f"{repo}:amd64"]}
    checked, _ = provider.check(ML, program)
    provider.create(ML, checked)

    rid, props, inputs = provider.read(ML, f"{repo}:10")
    assert all("@sha256:" in s for s in inputs["sources"])
    # The program names the per-platform tags; they resolve to the imported children.
    d = provider.diff(ML, rid, props, checked)
    assert d.changes == DIFF_NONE, list(d.diffs)
    # One of them moves: a change, on that source.
    skopeo_copy(world["BASE_IMAGE_PLAIN_AMD64"], f"{repo}:arm64")
    d = provider.diff(ML, rid, props, checked)
    assert d.changes == DIFF_SOME and list(d.diffs) == ["sources"]
    # Fewer sources than children: a change.
    d = provider.diff(ML, rid, props, dict(checked, sources=[f"{repo}:amd64"]))
    assert d.changes == DIFF_SOME


def test_a_promoted_index_imported_matches_a_program_naming_the_index(provider, world):
    src = f"{world['ECR_REGISTRY']}/{unique('promo-src')}"
    dst = f"{world['ECR_REGISTRY']}/{unique('promo-dst')}"
    skopeo_copy(world["BASE_IMAGE_ECR"], f"{src}:v1", "--all")
    program = {"tags": [f"{dst}:stable"], "sources": [f"{src}:v1"]}
    checked, _ = provider.check(ML, program)
    _, created = provider.create(ML, checked)

    rid, props, _ = provider.read(ML, f"{dst}:stable")
    assert props["digest"] == created["digest"]
    d = provider.diff(ML, rid, props, checked)
    assert d.changes == DIFF_NONE, list(d.diffs)

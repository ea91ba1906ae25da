"""ManifestList end to end: the provider binary, driven as the engine drives it, against the
real registries of the test world (the ECR look-alike authenticated with moto's IAM token)."""

import grpc
import pytest

from harness import (
    DIFF_NONE, DIFF_SOME, ML, UNKNOWN, pulled_digest, raw_manifest, run, skopeo_copy, unique,
)


def platforms_of(index: dict) -> dict:
    return {
        f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
        for m in index["manifests"]
        if m["platform"]["os"] != "unknown"
    }


@pytest.fixture
def ecr_app(world):
    """`app:10.10` (amd64 only) and `app:10.20` (arm64 only) in a fresh ECR repository."""
    repo = f"{world['ECR_REGISTRY']}/{unique('app')}"
    skopeo_copy(world["BASE_IMAGE_ECR_AMD64"], f"{repo}:10.10")
    skopeo_copy(world["BASE_IMAGE_ECR_ARM64"], f"{repo}:10.20")
    return repo


def lifecycle_create(provider, inputs, log):
    """Check, preview (asserting nothing was written), then the real create."""
    checked, failures = provider.check(ML, inputs)
    assert failures == []
    log.mark()
    _, preview = provider.create(ML, checked, preview=True)
    assert log.writes() == [], "preview wrote to the registry"
    assert preview["digest"] == UNKNOWN and preview["ref"] == UNKNOWN
    id, state = provider.create(ML, checked)
    return checked, preview, id, state


def test_everyday_case_on_ecr(provider, world, ecr_app, ecr_log):
    inputs = {"tags": [f"{ecr_app}:10"], "sources": [f"{ecr_app}:10.10", f"{ecr_app}:10.20"]}
    _, preview, id, state = lifecycle_create(provider, inputs, ecr_log)
    # Preview already knew the platforms (read-only look-ups with the IAM token).
    assert preview["platforms"] == ["linux/amd64", "linux/arm64"]
    assert id == f"{ecr_app}:10"
    assert state["platforms"] == ["linux/amd64", "linux/arm64"]
    assert state["ref"] == f"{ecr_app}@{state['digest']}"

    index = raw_manifest(f"{ecr_app}:10")
    assert index["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    reported = {m["platform"]: m["digest"] for m in state["manifests"]}
    assert platforms_of(index) == reported
    run_ = run("skopeo", "inspect", "--format", "{{.Digest}}", f"docker://{ecr_app}@{state['digest']}")
    assert run_.stdout.strip() == state["digest"]

    # What an engine pulling for each CPU gets is what the resource reports.
    for arch, machine in [("arm64", "aarch64"), ("amd64", "x86_64")]:
        assert pulled_digest(f"{ecr_app}:10", arch) == reported[f"linux/{arch}"]
        run("docker", "pull", "-q", "--platform", f"linux/{arch}", f"{ecr_app}:10")
        out = run("docker", "run", "--rm", "--network", "none", "--platform", f"linux/{arch}",
                  f"{ecr_app}:10", "uname", "-m").stdout.strip()
        assert out == machine

    # The token never shows up in outputs or logs.
    password = open(world["ECR_PASSWORD_FILE"]).read().strip()
    assert password not in str(state)
    assert password not in provider.stderr()
    assert all(password not in m for m in provider.engine.messages())

    # Re-running create (same digest already under the tag) writes no manifest again.
    ecr_log.mark()
    provider.create(ML, inputs)
    assert not [w for w in ecr_log.writes() if "/manifests/" in w]

    provider.delete(ML, id, state)
    run_ = run("skopeo", "inspect", "--raw", f"docker://{ecr_app}:10", check=False)
    assert run_.returncode != 0
    # The children are untouched.
    assert raw_manifest(f"{ecr_app}:10.20")["mediaType"].endswith("manifest.v2+json")


def test_sources_from_other_repository_and_other_registry(provider, world, ecr_log):
    target = f"{world['ECR_REGISTRY']}/{unique('combined')}"
    plain_arm = world["BASE_IMAGE_PLAIN_ARM64"]          # other registry: blobs uploaded
    ecr_amd = world["BASE_IMAGE_ECR_AMD64"]              # other repository: blobs mounted
    inputs = {"tags": [f"{target}:v1", f"{target}:latest"], "sources": [plain_arm, ecr_amd]}
    _, _, id, state = lifecycle_create(provider, inputs, ecr_log)
    index = raw_manifest(f"{target}:v1")
    assert sorted(platforms_of(index)) == ["linux/amd64", "linux/arm64"]
    assert raw_manifest(f"{target}:latest") == index
    writes = ecr_log.writes()
    assert any("/blobs/uploads/" in w and "mount=" in w for w in writes), "expected a mount"
    assert any(w.startswith("127.0.0.1") and "PUT" in w and "/blobs/uploads/" in w for w in writes)
    for m in state["manifests"]:
        assert raw_manifest(f"{target}@{m['digest']}")["schemaVersion"] == 2
    provider.delete(ML, id, state)


def test_index_source_and_oci_media_type(provider, world):
    target = f"{world['PLAIN_REGISTRY']}/{unique('fromindex')}"
    inputs = {
        "tags": [f"{target}:1"],
        "sources": [world["BASE_IMAGE_PLAIN"]],
        "mediaType": "oci",
        "annotations": {"org.opencontainers.image.source": "https://example.com/app"},
    }
    checked, _ = provider.check(ML, inputs)
    _, state = provider.create(ML, checked)
    index = raw_manifest(f"{target}:1", insecure=True)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert index["annotations"] == inputs["annotations"]
    assert sorted(platforms_of(index)) == ["linux/amd64", "linux/arm64"]
    assert state["platforms"] == ["linux/amd64", "linux/arm64"]


def test_promotion_keeps_the_index_digest(provider, world, ecr_app):
    """app:v1 -> prod/app:stable (another repository): the same index, byte for byte."""
    v1 = {"tags": [f"{ecr_app}:v1"], "sources": [f"{ecr_app}:10.10", f"{ecr_app}:10.20"]}
    _, made = provider.create(ML, provider.check(ML, v1)[0])
    prod = f"{world['ECR_REGISTRY']}/{unique('prod')}"
    promote = {"tags": [f"{prod}:stable"], "sources": [f"{ecr_app}:v1"]}
    _, state = provider.create(ML, provider.check(ML, promote)[0])
    assert state["digest"] == made["digest"]
    assert state["ref"] == f"{prod}@{made['digest']}"
    digest = run("skopeo", "inspect", "--raw", f"docker://{prod}:stable").stdout
    assert digest == run("skopeo", "inspect", "--raw", f"docker://{ecr_app}:v1").stdout
    # The children were copied first: a pull by digest works from the new repository.
    for arch in ["amd64", "arm64"]:
        assert pulled_digest(f"{prod}@{made['digest']}", arch) == {
            m["platform"]: m["digest"] for m in made["manifests"]}[f"linux/{arch}"]
    # Asking for a change (annotations) is a new index, not a promotion.
    changed = dict(promote, tags=[f"{prod}:annotated"], mediaType="oci",
                   annotations={"org.opencontainers.image.version": "v1"})
    _, other = provider.create(ML, provider.check(ML, changed)[0])
    assert other["digest"] != made["digest"]


def test_promotion_within_an_ecr_repository_keeps_the_index_digest(provider, ecr_app):
    """app:v1 -> app:stable in the same ECR repository: the same index under the new tag
    (ECR deletes one tag alone, so two tags may share it). Deleting either tag leaves the
    other."""
    v1 = {"tags": [f"{ecr_app}:v1"], "sources": [f"{ecr_app}:10.10", f"{ecr_app}:10.20"]}
    v1_id, made = provider.create(ML, provider.check(ML, v1)[0])
    promote = {"tags": [f"{ecr_app}:stable"], "sources": [f"{ecr_app}:v1"]}
    id, state = provider.create(ML, provider.check(ML, promote)[0])
    assert state["digest"] == made["digest"]
    assert state["ref"] == f"{ecr_app}@{made['digest']}"
    stable = run("skopeo", "inspect", "--raw", f"docker://{ecr_app}:stable").stdout
    assert stable == run("skopeo", "inspect", "--raw", f"docker://{ecr_app}:v1").stdout
    # Destroying the promotion removes :stable alone; :v1 keeps the index.
    provider.delete(ML, id, state)
    assert run("skopeo", "inspect", "--raw", f"docker://{ecr_app}:stable",
               check=False).returncode != 0
    assert run("skopeo", "inspect", "--raw", f"docker://{ecr_app}:v1").stdout == stable
    assert not provider.engine.saw("left in place", timeout=0.5)
    provider.delete(ML, v1_id, made)
    assert run("skopeo", "inspect", "--raw", f"docker://{ecr_app}:v1",
               check=False).returncode != 0


def test_diff_ignores_order_and_follows_moved_source(provider, world):
    repo = f"{world['PLAIN_REGISTRY']}/{unique('follow')}"
    skopeo_copy(world["BASE_IMAGE_PLAIN_AMD64"], f"{repo}:10.10")
    skopeo_copy(world["BASE_IMAGE_PLAIN_ARM64"], f"{repo}:10.20")
    inputs = {"tags": [f"{repo}:10", f"{repo}:stable"], "sources": [f"{repo}:10.10", f"{repo}:10.20"]}
    checked, _ = provider.check(ML, inputs)
    id, state = provider.create(ML, checked)

    reordered = {"tags": list(reversed(inputs["tags"])), "sources": list(reversed(inputs["sources"]))}
    assert provider.diff(ML, id, state, reordered).changes == DIFF_NONE

    # app:10.20 is rebuilt (same platform, new digest): the list must follow it.
    skopeo_copy(world["BASE_IMAGE_PLAIN_ARM64"], f"{repo}:10.20", "--format", "oci")
    d = provider.diff(ML, id, state, inputs)
    assert d.changes == DIFF_SOME
    assert "sources[1]" in d.detailedDiff
    new_state = provider.update(ML, id, state, inputs)
    assert new_state["digest"] != state["digest"]
    arm = [m for m in new_state["manifests"] if m["platform"] == "linux/arm64"][0]
    assert arm["digest"] == pulled_digest(f"{repo}:10.20", "arm64")
    assert provider.diff(ML, id, new_state, inputs).changes == DIFF_NONE


def test_update_removes_dropped_tags(provider, world):
    repo = f"{world['PLAIN_REGISTRY']}/{unique('retag')}"
    srcs = [world["BASE_IMAGE_PLAIN_AMD64"], world["BASE_IMAGE_PLAIN_ARM64"]]
    olds_in = {"tags": [f"{repo}:a", f"{repo}:b"], "sources": srcs}
    id, state = provider.create(ML, provider.check(ML, olds_in)[0])
    news = {"tags": [f"{repo}:a", f"{repo}:c"], "sources": srcs}
    d = provider.diff(ML, id, state, news)
    assert d.changes == DIFF_SOME and list(d.diffs) == ["tags"]
    new_state = provider.update(ML, id, state, provider.check(ML, news)[0])
    assert sorted(new_state["tags"]) == [f"{repo}:a", f"{repo}:c"]
    assert raw_manifest(f"{repo}:c", insecure=True)["manifests"]
    # :b shared its digest with :a and :c, and this registry deletes by digest only: the
    # manifest must survive (a warning says why :b is still there).
    assert raw_manifest(f"{repo}:a", insecure=True)["manifests"]
    assert provider.engine.saw("left in place")


def test_refresh_after_out_of_band_changes(provider, world):
    repo = f"{world['PLAIN_REGISTRY']}/{unique('refresh')}"
    srcs = [world["BASE_IMAGE_PLAIN_AMD64"], world["BASE_IMAGE_PLAIN_ARM64"]]
    id, state = provider.create(ML, provider.check(ML, {"tags": [f"{repo}:x", f"{repo}:y"], "sources": srcs})[0])
    rid, props, inputs = provider.read(ML, id, state, state)
    assert rid == id and sorted(props["tags"]) == [f"{repo}:x", f"{repo}:y"]
    assert "digest" not in inputs and sorted(inputs["tags"]) == sorted(props["tags"])

    # Someone points :y at another image: it is no longer ours.
    skopeo_copy(world["BASE_IMAGE_PLAIN_AMD64"], f"{repo}:y")
    rid, props, _ = provider.read(ML, id, state, state)
    assert props["tags"] == [f"{repo}:x"]

    # Someone deletes the index out of band: the resource is gone.
    run("curl", "-sf", "-X", "DELETE", f"http://{repo.split('/', 1)[0]}/v2/{repo.split('/', 1)[1]}/manifests/{state['digest']}")
    rid, props, _ = provider.read(ML, id, state, state)
    assert rid == ""


def test_refresh_keeps_state_when_registry_unreachable(provider, world):
    state = {
        "tags": ["127.0.0.1:1/gone:1"], "sources": ["127.0.0.1:1/gone:src"], "digest": "sha256:" + "1" * 64,
        "manifests": [], "platforms": [], "sourceDigests": {},
    }
    rid, props, _ = provider.read(ML, "127.0.0.1:1/gone:1", state, state)
    assert rid == "127.0.0.1:1/gone:1"
    assert props["tags"] == state["tags"]
    assert provider.engine.saw("keeping the recorded state")


def test_delete_keeps_manifest_another_tag_uses_and_keep_remotely(provider, world):
    repo = f"{world['PLAIN_REGISTRY']}/{unique('shared')}"
    srcs = [world["BASE_IMAGE_PLAIN_AMD64"], world["BASE_IMAGE_PLAIN_ARM64"]]
    id, state = provider.create(ML, provider.check(ML, {"tags": [f"{repo}:mine"], "sources": srcs})[0])
    skopeo_copy(f"{repo}:mine", f"{repo}:theirs", "--all")
    provider.delete(ML, id, state)
    assert raw_manifest(f"{repo}:theirs", insecure=True)["manifests"]

    kept_in = {"tags": [f"{repo}:kept"], "sources": srcs, "keepRemotely": True}
    id2, state2 = provider.create(ML, provider.check(ML, kept_in)[0])
    provider.delete(ML, id2, state2)
    assert raw_manifest(f"{repo}:kept", insecure=True)["manifests"]

    # Deleting what is already gone succeeds (ECR answers 404 too: #849 of the peers).
    lone = f"{world['PLAIN_REGISTRY']}/{unique('lone')}"
    id3, state3 = provider.create(ML, provider.check(ML, {"tags": [f"{lone}:1"], "sources": srcs})[0])
    provider.delete(ML, id3, state3)
    provider.delete(ML, id3, state3)


def test_import_by_tag(provider, world):
    repo = f"{world['PLAIN_REGISTRY']}/{unique('imported')}"
    skopeo_copy(world["BASE_IMAGE_PLAIN"], f"{repo}:1", "--all")
    rid, props, inputs = provider.read(ML, f"{repo}:1")
    assert rid == f"{repo}:1"
    assert props["platforms"] == ["linux/amd64", "linux/arm64"]
    assert inputs["tags"] == [f"{repo}:1"]
    assert all(s.startswith(f"{repo}@sha256:") for s in inputs["sources"])
    # The imported inputs describe the index as it is: no change.
    assert provider.diff(ML, rid, props, inputs).changes == DIFF_NONE


@pytest.mark.parametrize(
    "inputs, prop, words",
    [
        ({"tags": ["app:10"], "sources": ["127.0.0.1:5000/a:1"]}, "tags[0]", "registry host"),
        ({"tags": ["127.0.0.1:5000/a:1"], "sources": ["127.0.0.1:5000/A:1"]}, "sources[0]", "not a valid"),
        ({"tags": ["127.0.0.1:5000/a:1"], "sources": []}, "sources", "at least one"),
        ({"tags": [], "sources": ["127.0.0.1:5000/a:1"]}, "tags", "at least one"),
        ({"sources": ["127.0.0.1:5000/a:1"]}, "tags", "missing field"),
        ({"tags": ["127.0.0.1:5000/a:1"], "sources": ["127.0.0.1:5000/a:1", "127.0.0.1:5000/a:1"]},
         "sources[1]", "listed twice"),
        ({"tags": ["127.0.0.1:5000/a:1"], "sources": ["127.0.0.1:5000/a:1"],
          "platformOverrides": {"127.0.0.1:5000/a:1": "linux/sparc"}},
         'platformOverrides["127.0.0.1:5000/a:1"]', "unknown architecture"),
        ({"tags": ["127.0.0.1:5000/a:1"], "sources": ["127.0.0.1:5000/a:1"], "mediaType": "zip"},
         "mediaType", "unknown variant"),
        ({"tags": ["127.0.0.1:5000/a:1@sha256:" + "0" * 64], "sources": ["127.0.0.1:5000/a:1"]},
         "tags[0]", "digest"),
        ({"tags": ["127.0.0.1:5000/a:1"], "sources": ["127.0.0.1:5000/a:1"], "colour": "red"},
         "colour", "unknown field"),
    ],
)
def test_bad_input_is_a_check_failure(provider, inputs, prop, words):
    _, failures = provider.check(ML, inputs)
    assert failures, "expected a failure"
    assert any(p == prop and words in r for p, r in failures), failures


def test_duplicate_platforms_and_missing_sources_fail_clearly(provider, world):
    repo = f"{world['PLAIN_REGISTRY']}/{unique('dup')}"
    inputs = {"tags": [f"{repo}:1"], "sources": [world["BASE_IMAGE_PLAIN_ARM64"], world["BASE_IMAGE_PLAIN"]]}
    with pytest.raises(grpc.RpcError) as e:
        provider.create(ML, provider.check(ML, inputs)[0])
    assert "both provide linux/arm64" in e.value.details()
    assert world["BASE_IMAGE_PLAIN_ARM64"] in e.value.details()

    missing = {"tags": [f"{repo}:1"], "sources": [f"{repo}:nope"]}
    with pytest.raises(grpc.RpcError) as e:
        provider.create(ML, provider.check(ML, missing)[0])
    assert "sources[0]" in e.value.details() and "does not exist" in e.value.details()

    # An override resolves what the image config says.
    fixed = {"tags": [f"{repo}:2"], "sources": [world["BASE_IMAGE_PLAIN_ARM64"], world["BASE_IMAGE_PLAIN_AMD64"]],
             "platformOverrides": {world["BASE_IMAGE_PLAIN_ARM64"]: "linux/arm/v7"}}
    _, state = provider.create(ML, provider.check(ML, fixed)[0])
    assert state["platforms"] == ["linux/amd64", "linux/arm/v7"]

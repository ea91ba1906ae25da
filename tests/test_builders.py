"""Build nodes (provider configuration `builders`) end to end: linux/amd64 routed to the test
world's first Docker Engine, linux/arm64 to the second, independent one (DOCKER2_HOST; QEMU
still runs its steps, there is no arm64 host here). Each node pushes its manifest by digest to
the ECR look-alike, the provider writes the index; each Engine's BuildKit history shows only
its own platform. Driven as the engine drives the provider (Pulumi's own stubs)."""

import hashlib
import time

import grpc
import pytest

from harness import (
    DIFF_NONE, IMAGE, UNKNOWN, Provider, WorldBuildkitd, engine_build_history, raw_manifest,
    run, secret, unique,
)

DOCKERFILE = """\
FROM {base}
ARG MARKER
RUN echo "$MARKER" > /marker && uname -m > /built-on
CMD ["uname", "-m"]
"""


def nodes(world):
    return [
        {"endpoint": "docker+" + world["DOCKER_HOST"], "platforms": ["linux/amd64"]},
        {"endpoint": "docker+" + world["DOCKER2_HOST"], "platforms": ["linux/arm64"]},
    ]


@pytest.fixture
def two_nodes(engine, provider_env, world):
    """A provider with two build nodes: builders[0] the first Engine (amd64), builders[1]
    the second (arm64)."""
    p = Provider(engine, env=provider_env)
    p.handshake()
    p.configure({"registries": [{"address": world["PLAIN_REGISTRY"], "insecure": True}],
                 "builders": nodes(world)})
    yield p
    p.close()


def builds_with_marker(world, docker_host, marker):
    return [r for r in engine_build_history(world, docker_host)
            if (r.get("FrontendAttrs") or {}).get("build-arg:MARKER") == marker]


def raw_digest(ref):
    raw = run("skopeo", "inspect", "--raw", f"docker://{ref}").stdout
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def tag_exists(ref):
    return run("skopeo", "inspect", "--raw", f"docker://{ref}", check=False).returncode == 0


def test_two_nodes_each_build_their_platform_and_the_provider_writes_the_index(
        two_nodes, provider, world, tmp_path, ecr_log):
    (tmp_path / "Dockerfile").write_text(DOCKERFILE.format(base=world["BASE_IMAGE_ECR"]))
    repo = f"{world['ECR_REGISTRY']}/{unique('nodes')}"
    marker = unique("m")
    inputs = {"context": {"location": str(tmp_path)}, "platforms": ["linux/amd64", "linux/arm64"],
              "tags": [f"{repo}:v1", f"{repo}:latest"], "network": "none",
              "buildArgs": {"MARKER": marker}}
    checked, failures = two_nodes.check(IMAGE, inputs)
    assert failures == []

    # Preview: both nodes build, nothing is written.
    _, preview = two_nodes.create(IMAGE, checked, preview=True)
    assert preview["digest"] == UNKNOWN
    assert ecr_log.writes() == []
    assert not tag_exists(f"{repo}:v1")

    id, state = two_nodes.create(IMAGE, checked)
    # The index under both tags has both platforms with the digests the outputs report.
    index = raw_manifest(f"{repo}:v1")
    got = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
           for m in index["manifests"] if m["platform"]["os"] != "unknown"}
    assert sorted(got) == ["linux/amd64", "linux/arm64"]
    assert got == {m["platform"]: m["digest"] for m in state["manifests"]}
    assert raw_digest(f"{repo}:v1") == state["digest"] == raw_digest(f"{repo}:latest")
    assert state["ref"] == f"{repo}@{state['digest']}"
    for arch, machine in [("arm64", "aarch64"), ("amd64", "x86_64")]:
        out = run("docker", "run", "--rm", "--pull", "always", "--network", "none",
                  "--platform", f"linux/{arch}", f"{repo}:v1").stdout.strip()
        assert out == machine

    # Each Engine's BuildKit built only its own platform (preview and up), and the up's
    # result on each is the manifest the index lists for that platform.
    first = builds_with_marker(world, world["DOCKER_HOST"], marker)
    second = builds_with_marker(world, world["DOCKER2_HOST"], marker)
    assert {r["FrontendAttrs"].get("platform") for r in first} == {"linux/amd64"}, first
    assert {r["FrontendAttrs"].get("platform") for r in second} == {"linux/arm64"}, second
    assert len(first) == len(second) == 2
    assert got["linux/amd64"] in sum((WorldBuildkitd.result_digests(r) for r in first), [])
    assert got["linux/arm64"] in sum((WorldBuildkitd.result_digests(r) for r in second), [])

    # Progress lines carry node and platform.
    assert two_nodes.engine.saw("[builders[1] linux/arm64]")
    assert two_nodes.engine.saw("[builders[0] linux/amd64]")

    # The node layout is configuration, not content: a provider with one node sees no change.
    assert provider.diff(IMAGE, id, state, checked).changes == DIFF_NONE
    assert two_nodes.diff(IMAGE, id, state, checked).changes == DIFF_NONE

    two_nodes.delete(IMAGE, id, state)
    assert not tag_exists(f"{repo}:v1")


def test_a_platform_failing_on_its_node_fails_preview_and_up_and_leaves_no_tag(
        two_nodes, world, tmp_path, ecr_log):
    (tmp_path / "Dockerfile").write_text(
        f"FROM {world['BASE_IMAGE_ECR']}\nRUN [ \"$(uname -m)\" != aarch64 ]\n")
    repo = f"{world['ECR_REGISTRY']}/{unique('nodes-broken')}"
    inputs = {"context": {"location": str(tmp_path)}, "platforms": ["linux/amd64", "linux/arm64"],
              "tags": [f"{repo}:v1"], "network": "none"}
    checked, failures = two_nodes.check(IMAGE, inputs)
    assert failures == []
    for preview in (True, False):
        with pytest.raises(grpc.RpcError) as e:
            two_nodes.create(IMAGE, checked, preview=preview)
        text = e.value.details()
        assert "builders[1]" in text and "platform linux/arm64" in text, text
        assert "uname -m" in text, text  # the failing step
        assert "builders[0]" not in text, text
    assert not tag_exists(f"{repo}:v1")
    # Nothing under the repository's tags; the amd64 node may have pushed its manifest by
    # digest (untagged) before the arm64 one failed, never a tag.
    assert [w for w in ecr_log.writes() if "/manifests/" in w and "sha256:" not in w] == []


def test_entries_sharing_a_platform_are_a_pool_and_one_entry_lists_a_platform_once(
        engine, provider_env, world):
    """Two entries listing the same platform make a pool (tests/test_pools.py builds on one);
    the same platform twice in one entry is refused, naming both places."""
    p = Provider(engine, env=provider_env)
    try:
        p.handshake()
        p.configure({"builders": nodes(world) + [
            {"endpoint": "docker+" + world["DOCKER2_HOST"], "platforms": ["linux/x86_64"]}]})
        config = {"builders": [{"endpoint": "docker+" + world["DOCKER2_HOST"],
                                "platforms": ["linux/amd64", "linux/x86_64"]}]}
        with pytest.raises(grpc.RpcError) as e:
            p.configure(config)
        assert "builders[0].platforms[1]" in e.value.details()
        assert "builders[0].platforms[0]" in e.value.details()
    finally:
        p.close()


CPU_DOCKERFILE = """\
FROM {base}
ARG MARKER
RUN echo "$MARKER" && i=0; while [ $i -lt 60000 ]; do i=$((i+1)); done; echo $i > /n
"""


def test_two_node_and_one_node_wall_time(two_nodes, provider, world, tmp_path):
    """The same two-platform CPU-bound build on one node and on two, alternating (both share
    this machine's cores, so about 1x is expected: the figure is the overhead of splitting);
    and the QEMU factor: the same RUN for arm64 (emulated) and amd64 (native), one at a time."""
    (tmp_path / "Dockerfile").write_text(CPU_DOCKERFILE.format(base=world["BASE_IMAGE_ECR"]))

    def timed(p, platforms):
        repo = f"{world['ECR_REGISTRY']}/{unique('nodes-time')}"
        inputs = {"context": {"location": str(tmp_path)}, "platforms": platforms,
                  "tags": [f"{repo}:v1"], "network": "none", "noCache": True,
                  "buildArgs": {"MARKER": unique("t")}}
        checked, _ = p.check(IMAGE, inputs)
        t0 = time.monotonic()
        id, state = p.create(IMAGE, checked)
        took = time.monotonic() - t0
        if len(platforms) > 1:
            assert sorted(m["platform"] for m in state["manifests"]) == sorted(platforms)
        p.delete(IMAGE, id, state)
        return took

    both = ["linux/amd64", "linux/arm64"]
    times = {"one node": [], "two nodes": []}
    for name in ("one node", "two nodes", "two nodes", "one node"):
        times[name].append(timed(provider if name == "one node" else two_nodes, both))
    one, two = (sum(times[k]) / 2 for k in ("one node", "two nodes"))
    arm64, amd64 = timed(provider, ["linux/arm64"]), timed(provider, ["linux/amd64"])
    print(f"\nwall time, 2 platforms: one node {times['one node']} s (mean {one:.2f}), "
          f"two nodes {times['two nodes']} s (mean {two:.2f}), ratio {two / one:.2f}; "
          f"one platform: arm64 (QEMU) {arm64:.2f} s, amd64 {amd64:.2f} s, "
          f"QEMU factor {arm64 / amd64:.2f}")


def buildkitd_node(world, platforms):
    read = lambda k: open(world[k]).read()
    return {"endpoint": world["BUILDKITD_ADDR"], "platforms": platforms,
            "tls": {"caCert": read("BUILDKITD_CA_CERT"), "cert": read("BUILDKITD_CLIENT_CERT"),
                    "key": secret(read("BUILDKITD_CLIENT_KEY")),
                    "serverName": world["BUILDKITD_SERVER_NAME"]}}


def test_each_node_keeps_its_own_registry_cache(engine, provider_env, world, tmp_path):
    """Layout A (amd64 on the first Engine, arm64 on the second) exports a registry cache per
    platform (`:cache-linux-amd64`, `:cache-linux-arm64`, OCI image manifests on ECR); layout B
    (amd64 on the second Engine, arm64 on the standalone buildkitd: neither ever built that
    platform of this Dockerfile, so their local caches are empty for it) then gets the
    expensive RUN step from the registry cache on both platforms."""
    marker = unique("cache")
    (tmp_path / "Dockerfile").write_text(
        f"FROM {world['BASE_IMAGE_ECR']}\n"
        f"RUN echo {marker} > /m && i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done\n")
    repo = f"{world['ECR_REGISTRY']}/{unique('nodes-cache')}"
    layouts = {
        "A": [{"endpoint": "docker+" + world["DOCKER_HOST"], "platforms": ["linux/amd64"]},
              {"endpoint": "docker+" + world["DOCKER2_HOST"], "platforms": ["linux/arm64"]}],
        "B": [{"endpoint": "docker+" + world["DOCKER2_HOST"], "platforms": ["linux/amd64"]},
              buildkitd_node(world, ["linux/arm64"])],
    }
    for layout, tag in (("A", "v1"), ("B", "v2")):
        e = type(engine)()
        p = Provider(e, env=provider_env)
        try:
            p.handshake()
            p.configure({"builders": layouts[layout]})
            inputs = {"context": {"location": str(tmp_path)},
                      "platforms": ["linux/amd64", "linux/arm64"], "tags": [f"{repo}:{tag}"],
                      "network": "none", "cacheFrom": [f"{repo}:cache"],
                      "cacheTo": [f"type=registry,ref={repo}:cache,mode=max"]}
            checked, failures = p.check(IMAGE, inputs)
            assert failures == []
            p.create(IMAGE, checked)
            cached = {n: any(f"[builders[{n}] " in m and "CACHED" in m and marker in m
                             for m in e.messages()) for n in (0, 1)}
        finally:
            p.close()
            e.stop()
        if layout == "A":
            assert cached == {0: False, 1: False}, "a fresh Dockerfile: the step runs"
            assert not tag_exists(f"{repo}:cache")
            for platform in ("linux-amd64", "linux-arm64"):
                m = raw_manifest(f"{repo}:cache-{platform}")
                assert m["mediaType"] == "application/vnd.oci.image.manifest.v1+json", m
        else:
            assert cached == {0: True, 1: True}, cached


def test_cancel_stops_every_nodes_build(two_nodes, world, tmp_path):
    import threading

    from google.protobuf import empty_pb2

    marker = unique("cancel")
    (tmp_path / "Dockerfile").write_text(
        f"FROM {world['BASE_IMAGE_ECR']}\nARG MARKER\nRUN echo $MARKER && sleep 120\n")
    inputs = {"context": {"location": str(tmp_path)}, "platforms": ["linux/amd64", "linux/arm64"],
              "tags": [f"{world['ECR_REGISTRY']}/{unique('nodes-cancel')}:1"], "network": "none",
              "buildArgs": {"MARKER": marker}}
    checked = two_nodes.check(IMAGE, inputs)[0]
    result = {}

    def create():
        try:
            two_nodes.create(IMAGE, checked)
            result["outcome"] = "finished"
        except grpc.RpcError as e:
            result["outcome"] = e.code()
            result["at"] = time.monotonic()

    t = threading.Thread(target=create)
    t.start()
    # Wait until both nodes' RUN containers are inside the step: each echoed the marker
    # (its output line reached us), which it prints just before `sleep 120`.
    deadline = time.monotonic() + 60
    echoed = lambda node: any(node in m and marker in m for m in two_nodes.engine.messages())
    while not (echoed("[builders[0] linux/amd64]") and echoed("[builders[1] linux/arm64]")):
        assert time.monotonic() < deadline, two_nodes.engine.messages()
        time.sleep(0.1)
    cancelled_at, cancelled_wall = time.monotonic(), time.time()
    two_nodes.stub.Cancel(empty_pb2.Empty())
    t.join(timeout=30)
    assert result.get("outcome") == grpc.StatusCode.CANCELLED
    assert result["at"] - cancelled_at < 2
    # Both Engines' builds ended, cancelled (not still sleeping). An Engine may
    # take a while to write the final build record; its CompletedAt is when the build ended.
    for host in ("DOCKER_HOST", "DOCKER2_HOST"):
        deadline = time.monotonic() + 90
        while True:
            records = builds_with_marker(world, world[host], marker)
            assert len(records) == 1, (host, records)
            r = records[0]
            # The Engine may write CompletedAt before the error of a cancelled build.
            if (r.get("CompletedAt") and r.get("error")) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert "context canceled" in (r.get("error") or {}).get("message", ""), (host, r)
        done = r["CompletedAt"]["seconds"] + r["CompletedAt"].get("nanos", 0) / 1e9
        print(f"\n{host}: build ended {done - cancelled_wall:.2f} s after Cancel")
        # The provider answers Cancel within 2 s (above). Each Engine then kills the RUN's
        # container and closes its record: 2-3 s on this loaded 2-core machine. What matters
        # is that the solve stopped there, long before its 120 s step would have ended.
        assert done - cancelled_wall < 10, (host, done - cancelled_wall)


def test_one_shared_cache_ref_keeps_only_the_last_platform(engine, provider_env, world, tmp_path):
    """Why the split matters (buildx#1044): two one-platform builds on two nodes export to
    the SAME cache ref (one node each, so nothing is split); fresh nodes importing that ref
    then find the cache of the platform written last only."""
    marker = unique("shared")
    (tmp_path / "Dockerfile").write_text(
        f"FROM {world['BASE_IMAGE_ECR']}\n"
        f"RUN echo {marker} > /m && i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done\n")
    repo = f"{world['ECR_REGISTRY']}/{unique('nodes-shared')}"
    engine1 = {"endpoint": "docker+" + world["DOCKER_HOST"]}
    engine2 = {"endpoint": "docker+" + world["DOCKER2_HOST"]}
    buildkitd = buildkitd_node(world, [])
    # (node, platform): first amd64 on Engine 1 then arm64 on Engine 2, both exporting
    # :shared; then amd64 on Engine 2 and arm64 on buildkitd, both importing it.
    runs = [(engine1, "linux/amd64", True), (engine2, "linux/arm64", True),
            (engine2, "linux/amd64", False), (buildkitd, "linux/arm64", False)]
    cached = {}
    for n, (node, platform, export) in enumerate(runs):
        e = type(engine)()
        p = Provider(e, env=provider_env)
        try:
            p.handshake()
            p.configure({"builders": [dict(node, platforms=[platform])]})
            inputs = {"context": {"location": str(tmp_path)}, "platforms": [platform],
                      "tags": [f"{repo}:run{n}"], "network": "none",
                      "cacheFrom": [f"{repo}:shared"]}
            if export:
                inputs["cacheTo"] = [f"type=registry,ref={repo}:shared,mode=max"]
            checked, failures = p.check(IMAGE, inputs)
            assert failures == []
            p.create(IMAGE, checked)
            if not export:
                cached[platform] = any("CACHED" in m and marker in m for m in e.messages())
        finally:
            p.close()
            e.stop()
    print(f"\none shared cache ref, after two nodes exported to it: cached {cached}")
    assert cached == {"linux/amd64": False, "linux/arm64": True}, cached


def test_attestations_stay_next_to_the_manifest_they_describe(two_nodes, world, tmp_path):
    """provenance: each node pushes an index (its manifest + attestation); the provider's index
    is OCI, each attestation right after the manifest it describes."""
    (tmp_path / "Dockerfile").write_text(
        f"FROM {world['BASE_IMAGE_PLAIN']}\nRUN uname -m > /built-on\n")
    repo = f"{world['PLAIN_REGISTRY']}/{unique('nodes-att')}"
    inputs = {"context": {"location": str(tmp_path)}, "platforms": ["linux/arm64", "linux/amd64"],
              "tags": [f"{repo}:v1"], "network": "none", "provenance": True}
    checked, failures = two_nodes.check(IMAGE, inputs)
    assert failures == []
    _, state = two_nodes.create(IMAGE, checked)
    index = raw_manifest(f"{repo}:v1", insecure=True)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    entries = index["manifests"]
    kinds = [e["platform"]["architecture"] for e in entries]
    assert kinds == ["amd64", "unknown", "arm64", "unknown"], kinds
    for image, attestation in (entries[0:2], entries[2:4]):
        assert attestation["annotations"]["vnd.docker.reference.digest"] == image["digest"]
    assert [(m["platform"], m["digest"]) for m in state["manifests"]] == [
        ("linux/amd64", entries[0]["digest"]), ("linux/arm64", entries[2]["digest"])]

"""Cross-repository copies at the request floor, and a ManifestList Diff whose source
look-ups run concurrently, against the real registries of the test world.

The sources are small synthetic single-platform images pushed straight through the
registry API: every one has its own config (naming its platform) and all share one layer,
so a copy that mounts a blob once per child instead of once per target repository shows up
in the access log. Requests are counted in the registry's access log, filtered by this
test's own repository names (the world is shared with other test runs).

`python tests/test_copy_floor.py [2 8 32 ...]` prints request counts and times for
cross-repository creates of that many sources (set MULTIARCH_PROVIDER_BIN to compare
binaries)."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import ssl
import statistics
import sys
import threading
import time
from datetime import datetime

import grpc
import pytest

sys.path.insert(0, os.path.dirname(__file__))

from faultproxy import FaultProxy  # noqa: E402
from harness import DIFF_NONE, ML, FakeEngine, Provider, raw_manifest, run, unique  # noqa: E402
from harness import testenv as load_world  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
from bench_registry import Registry  # noqa: E402

OSES = ["linux", "freebsd", "netbsd", "openbsd", "solaris", "illumos", "aix", "dragonfly"]
ARCHS = ["amd64", "arm64", "386", "riscv64", "ppc64le", "s390x", "mips64le", "loong64"]
PLATFORMS = [(o, a) for o in OSES for a in ARCHS]
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def sha256(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


class RegistryApi:
    """Just enough of the distribution API to push synthetic images (one connection)."""

    def __init__(self, host: str, tls: bool, auth: tuple[str, str] | None = None):
        self.host, self.tls = host, tls
        self.headers = {}
        if auth:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        self.conn = None

    def _conn(self):
        if self.conn is None:
            if self.tls:
                self.conn = http.client.HTTPSConnection(self.host, timeout=60, context=ssl.create_default_context())
            else:
                self.conn = http.client.HTTPConnection(self.host, timeout=60)
        return self.conn

    def request(self, method, path, body=None, headers=None):
        h = dict(self.headers)
        h.update(headers or {})
        for attempt in range(5):
            try:
                c = self._conn()
                c.request(method, path, body=body, headers=h)
                r = c.getresponse()
                data = r.read()
                if r.status >= 500 and attempt < 4:
                    time.sleep(0.2 * (attempt + 1))
                    continue
                return r.status, r.getheaders(), data
            except (ConnectionError, http.client.HTTPException):
                self.conn = None
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def push_blob(self, repo: str, data: bytes) -> str:
        digest = sha256(data)
        status, headers, body = self.request("POST", f"/v2/{repo}/blobs/uploads/", b"", {"Content-Length": "0"})
        assert status == 202, (status, body)
        loc = dict((k.lower(), v) for k, v in headers)["location"]
        loc = re.sub(r"^https?://[^/]+", "", loc)
        sep = "&" if "?" in loc else "?"
        status, _, body = self.request("PUT", f"{loc}{sep}digest={digest}", data,
                                       {"Content-Type": "application/octet-stream",
                                        "Content-Length": str(len(data))})
        assert status == 201, (status, body)
        return digest

    def put_manifest(self, repo: str, ref: str, media_type: str, data: bytes):
        status, _, body = self.request("PUT", f"/v2/{repo}/manifests/{ref}", data, {"Content-Type": media_type})
        assert status == 201, (status, body)


def api_for(world: dict, registry: str) -> RegistryApi:
    if registry == world["ECR_REGISTRY"]:
        password = open(world["ECR_PASSWORD_FILE"]).read().strip()
        return RegistryApi(registry, True, (world["ECR_USERNAME"], password))
    return RegistryApi(registry, False)


def make_sources(world: dict, registry: str, repo: str, n: int) -> list[str]:
    """`n` single-platform images in `registry/repo`, one shared layer, one config each."""
    api = api_for(world, registry)
    layer = b"\x1f\x8b" + repo.encode() + b"shared layer" * 100
    layer_digest = api.push_blob(repo, layer)
    refs = []
    for i, (os_, arch) in enumerate(PLATFORMS[:n]):
        config = json.dumps({"architecture": arch, "os": os_, "rootfs": {"type": "layers",
                             "diff_ids": [layer_digest]}, "config": {"Labels": {"i": str(i)}}},
                            sort_keys=True).encode()
        config_digest = api.push_blob(repo, config)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": DOCKER_LAYER, "digest": layer_digest, "size": len(layer)}],
        }).encode()
        tag = f"src{i}"
        api.put_manifest(repo, tag, DOCKER_MANIFEST, manifest)
        refs.append(f"{registry}/{repo}:{tag}")
    return refs


def access_lines(path: str, offset: int, repos: list[str]) -> list[str]:
    """Access-log lines (one per request) since `offset` that touch one of `repos`."""
    with open(path, "rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    pats = [f"/v2/{r}/" for r in repos]
    return [l for l in text.splitlines()
            if '"' in l and " HTTP/" in l and not l.startswith("time=") and any(p in l for p in pats)]


def wait_for_lines(path: str, offset: int, needles: list[str], timeout: float = 30) -> None:
    """The registry writes a request's log line after answering it: poll until a line holding
    each needle (the run's last requests) is there."""
    deadline = time.monotonic() + timeout
    while True:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        if all(n in text for n in needles):
            return
        assert time.monotonic() < deadline, f"no access-log line for {needles} in {path}"
        time.sleep(0.05)


def floor(n: int, tags: int = 1) -> int:
    """Per child one manifest GET and one config GET (the platform is not in an index),
    one mount per unique blob (n configs + the shared layer), one child PUT; one index PUT
    per tag."""
    return n + n + (n + 1) + n + tags


def cross_repo_create(provider, world, n: int, registry: str | None = None):
    """Creates a ManifestList of `n` sources from another repository of the same registry;
    returns (state, target, requests touching the two repositories, seconds)."""
    registry = registry or world["ECR_REGISTRY"]
    log = world["ECR_REGISTRY_LOG"] if registry == world["ECR_REGISTRY"] else world["PLAIN_REGISTRY_LOG"]
    src, dst = unique("floor-src"), unique("floor-dst")
    sources = make_sources(world, registry, src, n)
    inputs = {"tags": [f"{registry}/{dst}:v1"], "sources": sources}
    checked, failures = provider.check(ML, inputs)
    assert failures == []
    offset = os.path.getsize(log)
    t0 = time.perf_counter()
    _, state = provider.create(ML, checked)
    seconds = time.perf_counter() - t0
    wait_for_lines(log, offset, [f"PUT /v2/{dst}/manifests/v1 "])
    return state, f"{registry}/{dst}", access_lines(log, offset, [src, dst]), seconds, src, dst


# ---- (a) a shared blob is mounted once per target repository ------------------------------

def test_shared_blob_is_mounted_once_and_requests_stay_at_the_floor(provider, world):
    n = 8
    state, target, lines, _, src, dst = cross_repo_create(provider, world, n)
    assert len(state["platforms"]) == n
    index = raw_manifest(f"{target}:v1")
    assert len(index["manifests"]) == n
    # Every child is readable in the target repository, with its blobs.
    child = raw_manifest(f"{target}@{index['manifests'][0]['digest']}")
    shared = child["layers"][0]["digest"]
    mounts = [l for l in lines if "POST " in l and "/blobs/uploads/" in l]
    shared_mounts = [l for l in mounts if f"mount={shared}" in l or f"mount={shared.replace(':', '%3A')}" in l]
    assert len(shared_mounts) == 1, "\n".join(mounts)
    assert len(mounts) == n + 1, "\n".join(mounts)
    # No HEAD before a mount, no second GET of a source manifest.
    assert not [l for l in lines if "HEAD " in l and "/blobs/" in l], "\n".join(lines)
    src_gets = [l for l in lines if "GET " in l and f"/v2/{src}/manifests/" in l]
    assert len(src_gets) == n, "\n".join(src_gets)
    assert len(lines) <= 1.1 * floor(n), f"{len(lines)} requests, floor {floor(n)}:\n" + "\n".join(lines)


def test_shared_blob_once_per_repository_with_two_target_repositories(provider, world):
    n = 4
    registry = world["ECR_REGISTRY"]
    src, a, b = unique("floor-src"), unique("floor-a"), unique("floor-b")
    sources = make_sources(world, registry, src, n)
    offset = os.path.getsize(world["ECR_REGISTRY_LOG"])
    inputs = {"tags": [f"{registry}/{a}:1", f"{registry}/{b}:1", f"{registry}/{a}:2"], "sources": sources}
    _, state = provider.create(ML, provider.check(ML, inputs)[0])
    wait_for_lines(world["ECR_REGISTRY_LOG"], offset,
                   [f"PUT /v2/{a}/manifests/1 ", f"PUT /v2/{b}/manifests/1 ", f"PUT /v2/{a}/manifests/2 "])
    lines = access_lines(world["ECR_REGISTRY_LOG"], offset, [src, a, b])
    for repo in (a, b):
        mounts = [l for l in lines if f"POST /v2/{repo}/blobs/uploads/" in l]
        assert len(mounts) == n + 1, "\n".join(mounts)
    assert raw_manifest(f"{registry}/{b}:1")["manifests"] == raw_manifest(f"{registry}/{a}:2")["manifests"]
    assert len(lines) <= 1.1 * (n + n + 2 * (n + 1 + n) + 3 + 3), "\n".join(lines)


def test_refused_mount_uploads_into_the_session_it_opened(engine, provider_env, world):
    """A registry that answers a mount with 202 (mounting off, as on ECR by default): each
    blob is checked once and uploaded into that session, no second upload session."""
    n = 4
    proxy = FaultProxy(world["PLAIN_REGISTRY"])
    p = Provider(engine, env=provider_env)
    try:
        p.handshake()
        p.configure({"registries": [{"address": proxy.address, "insecure": True}]})
        src, dst = unique("refused-src"), unique("refused-dst")
        make_sources(world, world["PLAIN_REGISTRY"], src, n)
        proxy.add("POST", r"/v2/" + dst + r"/blobs/uploads/\?mount=", *([("drop_query",)] * 50))
        inputs = {"tags": [f"{proxy.address}/{dst}:v1"],
                  "sources": [f"{proxy.address}/{src}:src{i}" for i in range(n)]}
        _, state = p.create(ML, p.check(ML, inputs)[0])
        assert len(state["platforms"]) == n
        seen = [(m, path) for m, path, _ in proxy.log if f"/v2/{dst}/blobs/" in path]
        posts = [x for x in seen if x[0] == "POST"]
        puts = [x for x in seen if x[0] == "PUT"]
        heads = [x for x in seen if x[0] == "HEAD"]
        assert len(posts) == n + 1 and all("mount=" in x[1] for x in posts), seen
        assert len(puts) == n + 1 and len(heads) == n + 1, seen
        index = raw_manifest(f"{world['PLAIN_REGISTRY']}/{dst}:v1", insecure=True)
        child = raw_manifest(f"{world['PLAIN_REGISTRY']}/{dst}@{index['manifests'][0]['digest']}", insecure=True)
        # The blobs really are in the target repository.
        for blob in [child["config"], *child["layers"]]:
            out = run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-I",
                      f"http://{world['PLAIN_REGISTRY']}/v2/{dst}/blobs/{blob['digest']}").stdout
            assert out == "200", blob
    finally:
        p.close()
        proxy.stop()


def test_cross_registry_copy_uploads_a_shared_blob_once(provider, world):
    n = 4
    src, dst = unique("xreg-src"), unique("xreg-dst")
    sources = make_sources(world, world["PLAIN_REGISTRY"], src, n)
    offset = os.path.getsize(world["ECR_REGISTRY_LOG"])
    inputs = {"tags": [f"{world['ECR_REGISTRY']}/{dst}:v1"], "sources": sources}
    _, state = provider.create(ML, provider.check(ML, inputs)[0])
    assert len(state["platforms"]) == n
    wait_for_lines(world["ECR_REGISTRY_LOG"], offset, [f"PUT /v2/{dst}/manifests/v1 "])
    lines = access_lines(world["ECR_REGISTRY_LOG"], offset, [dst])
    uploads = [l for l in lines if '"PUT ' in l and "/blobs/uploads/" in l]
    assert len(uploads) == n + 1, "\n".join(lines)


def test_a_persistent_failure_is_retried_by_one_policy_only(engine, provider_env, world):
    proxy = FaultProxy(world["PLAIN_REGISTRY"])
    p = Provider(engine, env=provider_env)
    try:
        p.handshake()
        p.configure({"registries": [{"address": proxy.address, "insecure": True}]})
        repo = unique("persistent")
        make_sources(world, world["PLAIN_REGISTRY"], repo, 1)
        proxy.add("GET", r"/manifests/src0$", *([("status", 503)] * 20))
        with pytest.raises(grpc.RpcError) as e:
            p.create(ML, {"tags": [f"{proxy.address}/{repo}:v1"], "sources": [f"{proxy.address}/{repo}:src0"]})
        assert f"{repo}:src0" in e.value.details() and "503" in e.value.details(), e.value.details()
        # Four attempts (250 + 500 + 1000 ms apart), not four more from a second client.
        assert len(proxy.injected()) == 4, proxy.injected()
    finally:
        p.close()
        proxy.stop()


# ---- (b) 32 cross-repository sources, concurrently mounted, without a failure ------------

def test_32_cross_repository_sources_create_without_failure(provider, world):
    for _ in range(3):
        state, target, lines, _, _, _ = cross_repo_create(provider, world, 32)
        assert len(state["platforms"]) == 32
        assert len(raw_manifest(f"{target}:v1")["manifests"]) == 32
        # Retried 5xx answers (the registry's own, under concurrent mounts) may add a few.
        assert len(lines) <= 1.1 * floor(32), f"{len(lines)} requests, floor {floor(32)}"


# ---- (c) the source look-ups of a Diff run concurrently ------------------------------------

def test_diff_looks_sources_up_concurrently(engine, provider_env, world):
    n = 64
    proxy = FaultProxy(world["PLAIN_REGISTRY"])
    p = Provider(engine, env=provider_env)
    try:
        p.handshake()
        p.configure({"registries": [
            {"address": proxy.address, "insecure": True},
            {"address": world["PLAIN_REGISTRY"], "insecure": True},
        ]})
        repo = unique("diffpar")
        make_sources(world, world["PLAIN_REGISTRY"], repo, n)
        sources = [f"{proxy.address}/{repo}:src{i}" for i in range(n)]
        inputs = {"tags": [f"{proxy.address}/{repo}:v1"], "sources": sources}
        id, state = p.create(ML, p.check(ML, inputs)[0])
        assert len(state["sourceDigests"]) == n
        # Each look-up now takes 200 ms at the registry.
        proxy.add("HEAD", r"/manifests/src\d+$", *([("stall", 0.2)] * (2 * n)))
        proxy.add("GET", r"/manifests/src\d+$", *([("stall", 0.2)] * (2 * n)))
        d = p.diff(ML, id, state, inputs)
        assert d.changes == DIFF_NONE
        looked = [e for e in proxy.injected() if e[2] == "stall"]
        assert len(looked) == n, looked
        # Concurrency seen at the registry, not a stopwatch (the time is `make bench`'s): the
        # look-ups were held there several at a time, and never more than the bound of an
        # HTTP/1.1 host (32 connections; this proxy speaks HTTP/1.1 only).
        assert 2 <= proxy.stalled_max <= 32, proxy.stalled_max
    finally:
        p.close()
        proxy.stop()


UNITS = {"ns": 1e9, "us": 1e6, "\u00b5s": 1e6, "\u03bcs": 1e6, "ms": 1e3, "s": 1.0}


def span_of(line: str) -> tuple[float, float]:
    """(start, end) of a request from the registry's "response completed" line."""
    stamp = re.search(r'time="([^"]+)"', line).group(1).rstrip("Z")
    whole, _, frac = stamp.partition(".")
    end = datetime.fromisoformat(whole + "+00:00").timestamp() + float("0." + (frac or "0"))
    # Go's Duration.String: "812.5µs", "3.2ms", "1.5s", "1m2.5s".
    text = re.search(r"http\.response\.duration=(\S+)", line).group(1)
    secs = 0.0
    for num, unit in re.findall(r"([0-9.]+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)", text):
        secs += float(num) * {"m": 60.0, "h": 3600.0}.get(unit, 1.0 / UNITS.get(unit, 1.0))
    return end - secs, end


def test_diff_source_lookups_overlap_in_the_access_log(provider, world):
    n = 16
    repo = unique("diffpar")
    sources = make_sources(world, world["PLAIN_REGISTRY"], repo, n)
    inputs = {"tags": [f"{world['PLAIN_REGISTRY']}/{repo}:v1"], "sources": sources}
    id, state = provider.create(ML, provider.check(ML, inputs)[0])
    offset = os.path.getsize(world["PLAIN_REGISTRY_LOG"])
    assert provider.diff(ML, id, state, inputs).changes == DIFF_NONE
    # The registry's own request log: start time = completion time - duration. It may write
    # a line after the answer left: read until all n look-ups are there.
    deadline = time.monotonic() + 30
    while True:
        with open(world["PLAIN_REGISTRY_LOG"], "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        lines = [l for l in text.splitlines() if l.startswith("time=")
                 and "response completed" in l and f"/v2/{repo}/manifests/src" in l]
        if len(lines) >= n or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    spans = [span_of(l) for l in lines]
    assert len(spans) == n, text
    # Concurrent: some look-up starts before another one has finished.
    spans.sort()
    overlaps = sum(1 for a, b in zip(spans, spans[1:]) if b[0] < a[1])
    assert overlaps >= 1, spans


# ---- figures --------------------------------------------------------------------------------

def main(sizes: list[int]):
    """Per run a fresh provider: a first create (cold: ECR token, connections) and a
    second one (warm), each into a new target repository."""
    world = load_world()
    os.environ.update({k: v for k, v in world.items() if k.startswith("AWS_") or k == "SSL_CERT_FILE"})
    runs = int(os.environ.get("RUNS", "3"))
    engine = FakeEngine()
    med = lambda xs: statistics.median(xs) if xs else float("nan")  # noqa: E731
    for n in sizes:
        cold, warm, counts, failures = [], [], [], 0
        for _ in range(runs):
            p = Provider(engine)
            p.handshake()
            p.configure({})
            try:
                for times in (cold, warm):
                    _, _, lines, secs, _, _ = cross_repo_create(p, world, n)
                    times.append(secs)
                    counts.append(len(lines))
            except Exception as e:  # noqa: BLE001 - a figure, not a test
                failures += 1
                print(f"  n={n}: failed: {str(e)[:300]}", file=sys.stderr)
            finally:
                p.close()
        print(f"{n:>3} cross-repo sources (ECR look-alike): requests median {med(counts):.0f} "
              f"(min {min(counts, default=0)}, max {max(counts, default=0)}), floor {floor(n)}; "
              f"create cold {med(cold) * 1000:.0f} ms, warm {med(warm) * 1000:.0f} ms (medians); "
              f"{failures}/{runs} runs failed", flush=True)
    engine.stop()


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [2, 8, 32])


def test_large_blobs_upload_on_connections_of_their_own(provider, world):
    """Across registries, a blob of 8 MiB or more is uploaded over HTTP/1.1 on a connection of
    its own (several uploads multiplexed on the one HTTP/2 connection share its windows); the
    small blobs and the manifests stay on HTTP/2. The copy is byte-exact."""
    src, dst = unique("bulk-src"), unique("bulk-dst")
    plain = Registry(world["PLAIN_REGISTRY"], tls=False)
    big = plain.push_blob(src, os.urandom(9 << 20))
    small = plain.push_blob(src, os.urandom(4096))
    plain.push_image(src, "v1", {"os": "linux", "architecture": "amd64"}, [big, small])
    offset = os.path.getsize(world["ECR_REGISTRY_LOG"])
    inputs = {"tags": [f"{world['ECR_REGISTRY']}/{dst}:v1"],
              "sources": [f"{world['PLAIN_REGISTRY']}/{src}:v1"]}
    _, state = provider.create(ML, provider.check(ML, inputs)[0])
    assert state["platforms"] == ["linux/amd64"]
    wait_for_lines(world["ECR_REGISTRY_LOG"], offset, [f"PUT /v2/{dst}/manifests/v1 "])
    lines = access_lines(world["ECR_REGISTRY_LOG"], offset, [dst])
    puts = {d: [l for l in lines if '"PUT ' in l and f"digest={d}" in l.replace("%3A", ":")]
            for d in (big["digest"], small["digest"])}
    assert len(puts[big["digest"]]) == 1 and "HTTP/1.1" in puts[big["digest"]][0], "\n".join(lines)
    assert len(puts[small["digest"]]) == 1 and "HTTP/2.0" in puts[small["digest"]][0], "\n".join(lines)
    assert all("HTTP/2.0" in l for l in lines if "/manifests/" in l), "\n".join(lines)
    ecr = api_for(world, world["ECR_REGISTRY"])
    status, _, body = ecr.request("GET", f"/v2/{dst}/blobs/{big['digest']}")
    assert status == 200 and "sha256:" + hashlib.sha256(body).hexdigest() == big["digest"]

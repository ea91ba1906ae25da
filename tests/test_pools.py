"""Pools of build nodes (`builders[].endpoints`, `maxParallelSolves`) end to end, on the test
world's two pool buildkitd (BUILDKITD_POOL1_ADDR, BUILDKITD_POOL2_ADDR: standalone daemons on
unix sockets with their own state, scripts/testenv/buildkitd-pool.sh). Driven as the engine
drives the provider (Pulumi's own stubs); where a build ran is read from each daemon's own
history (`buildctl debug histories`), and waiting from the progress the provider logs.

Builds that must still be running while the test acts wait at a gate: their RUN step polls an
HTTP server of the test (the pool nodes run steps on the host network) until the test opens it,
so nothing here depends on timing."""

import hashlib
import http.server
import json
import os
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness import IMAGE, Provider, raw_manifest, run, unique

CTL = Path(__file__).resolve().parent.parent / "scripts" / "testenv" / "buildkitd-pool-ctl.sh"

DOCKERFILE = """\
FROM {base}
ARG MARKER
ARG GATE
RUN echo "$MARKER" > /marker && if [ -n "$GATE" ]; then \
    until wget -q -O /dev/null "$GATE" 2>/dev/null; do sleep 0.1; done; fi
"""


@pytest.fixture(scope="module")
def pool_addrs(world):
    # The env file, else the environment it was sourced into.
    addrs = [world.get(k) or os.environ.get(k) for k in ("BUILDKITD_POOL1_ADDR", "BUILDKITD_POOL2_ADDR")]
    if not all(addrs):
        msg = "the test world has no buildkitd pool: run scripts/testenv.sh"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    for n in (1, 2):
        # A node a failed earlier run left stopped answers again.
        subprocess.run(["bash", str(CTL), "start", str(n)], check=True, timeout=120)
    return addrs


class Gate:
    """An HTTP server that answers 503 until opened, then 200."""

    def __init__(self):
        gate = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200 if gate.is_open.is_set() else 503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.is_open = threading.Event()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/go"

    def open(self):
        self.is_open.set()

    def close(self):
        self.is_open.set()
        self.server.shutdown()


@pytest.fixture
def gate():
    g = Gate()
    yield g
    g.close()


def pool_provider(engine, provider_env, world, addrs, **entry):
    p = Provider(engine, env=provider_env)
    p.handshake()
    p.configure({"registries": [{"address": world["PLAIN_REGISTRY"], "insecure": True}],
                 "builders": [{"endpoints": addrs, "platforms": ["linux/amd64"], **entry}]})
    return p


def first_choice(urn: str, addrs: list[str]) -> str:
    """The node rendezvous hashing gives `urn` first: the highest sha256(urn NUL endpoint)."""
    def weight(a):
        return int.from_bytes(hashlib.sha256(urn.encode() + b"\0" + a.encode()).digest()[:8], "big")
    return max(addrs, key=weight)


def markers_built_on(world, addr: str) -> list[str]:
    """The MARKER build argument of every build the node at `addr` recorded."""
    out = run(world["BUILDCTL"], "--addr", addr, "debug", "histories", "--format", "{{json .}}",
              timeout=60).stdout
    found = []
    for line in out.splitlines():
        if not line.strip():
            continue
        ev = json.loads(line)
        rec = ev.get("record") or ev.get("Record") or {}
        m = (rec.get("FrontendAttrs") or {}).get("build-arg:MARKER")
        if m:
            found.append(m)
    return found


def inputs(ctx: Path, marker: str, gate_url: str = "", tag: str | None = None) -> dict:
    i = {"context": {"location": str(ctx)}, "platforms": ["linux/amd64"],
         "buildArgs": {"MARKER": marker, "GATE": gate_url}}
    if tag:
        i["tags"] = [tag]
    else:
        i["push"] = False
    return i


@pytest.fixture
def ctx(tmp_path, world):
    (tmp_path / "Dockerfile").write_text(DOCKERFILE.format(base=world["BASE_IMAGE_PLAIN"]))
    return tmp_path


def names_covering(p: Provider, addrs: list[str], per_node: int) -> dict[str, str]:
    """Resource names, each with the node it is placed on first, `per_node` for each node."""
    names: dict[str, str] = {}
    count = {a: 0 for a in addrs}
    i = 0
    while min(count.values()) < per_node:
        name = f"img{i}"
        i += 1
        node = first_choice(p.urn(IMAGE, name), addrs)
        if count[node] < per_node:
            count[node] += 1
            names[name] = node
    return names


def test_an_image_stays_on_its_node_and_different_images_spread(
        engine, provider_env, world, pool_addrs, ctx):
    p = pool_provider(engine, provider_env, world, pool_addrs)
    try:
        names = names_covering(p, pool_addrs, per_node=2)
        markers = {}
        for name in names:
            for round in (1, 2):
                m = unique(f"sticky-{name}-{round}")
                markers.setdefault(name, []).append(m)
                checked, failures = p.check(IMAGE, inputs(ctx, m), name=name)
                assert failures == []
                p.create(IMAGE, checked, name=name)
        built = {a: set(markers_built_on(world, a)) for a in pool_addrs}
        for name, node in names.items():
            # Both builds of the same URN on the node rendezvous hashing gives it, none elsewhere.
            for m in markers[name]:
                assert m in built[node], (name, node)
                assert all(m not in built[a] for a in pool_addrs if a != node), (name, m)
        # Each node built some: the pool spreads resources.
        assert {names[n] for n in names} == set(pool_addrs)
        # Progress names the node.
        for node in pool_addrs:
            assert engine.saw(f"building on builders[0].endpoints[{pool_addrs.index(node)}] "
                              f"(buildkitd at {node})")
    finally:
        p.close()


def test_a_node_killed_mid_stack_passes_its_images_to_the_other_and_every_image_succeeds(
        engine, provider_env, world, pool_addrs, ctx, gate):
    p = pool_provider(engine, provider_env, world, pool_addrs)
    victim_n = 2
    victim = pool_addrs[victim_n - 1]
    survivor = pool_addrs[0]
    repo = f"{world['PLAIN_REGISTRY']}/{unique('pool-failover')}"
    try:
        names = names_covering(p, pool_addrs, per_node=3)
        markers = {name: unique(f"fo-{name}") for name in names}
        checked = {}
        for name in names:
            checked[name], failures = p.check(
                IMAGE, inputs(ctx, markers[name], gate.url, f"{repo}:{name}"), name=name)
            assert failures == []
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            futures = {name: pool.submit(p.create, IMAGE, checked[name], name=name)
                       for name in names}
            try:
                # The victim has started its share of the stack; then it goes away.
                victim_label = f"building on builders[0].endpoints[{victim_n - 1}]"
                assert engine.saw(victim_label, timeout=120), engine.messages()[-20:]
                subprocess.run(["bash", str(CTL), "stop", str(victim_n)], check=True, timeout=60)
            finally:
                gate.open()
            results = {name: f.result(timeout=600) for name, f in futures.items()}
        for name in names:
            _, state = results[name]
            assert state["digest"].startswith("sha256:"), name
            assert raw_manifest(f"{repo}:{name}", insecure=True)
        # Every image of the stack ended on the survivor; those placed on the victim were
        # passed over, with the node named.
        on_survivor = set(markers_built_on(world, survivor))
        assert all(markers[name] in on_survivor for name in names)
        assert any(victim in m and "trying the next node" in m for m in engine.messages()), \
            engine.messages()[-30:]
        # While it stays down, an image placed on it is passed over at its health probe.
        late = next(n for n, node in names.items() if node == victim)
        marker = unique("fo-late")
        checked, _ = p.check(IMAGE, inputs(ctx, marker, "", f"{repo}:late"), name=late)
        p.create(IMAGE, checked, name=late)
        assert marker in markers_built_on(world, survivor)
        assert any(f"builders[0].endpoints[{victim_n - 1}] (buildkitd at {victim}) failed its "
                   "health probe" in m for m in engine.messages()), engine.messages()[-10:]
    finally:
        subprocess.run(["bash", str(CTL), "start", str(victim_n)], check=True, timeout=120)
        p.close()


def test_a_node_at_its_limit_makes_the_next_build_wait_for_a_slot(
        engine, provider_env, world, pool_addrs, ctx, gate):
    one = pool_addrs[:1]
    p = pool_provider(engine, provider_env, world, one, maxParallelSolves=1)
    try:
        checked = {}
        for name in ("first", "second"):
            checked[name], failures = p.check(
                IMAGE, inputs(ctx, unique(f"limit-{name}"), gate.url), name=name)
            assert failures == []
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [pool.submit(p.create, IMAGE, checked[n], name=n) for n in checked]
            try:
                # One build holds the only slot (it waits at the gate); the other says so.
                waiting = (f"waiting for a slot on builders[0].endpoints[0] (buildkitd at {one[0]})"
                           " (maxParallelSolves 1)")
                assert engine.saw(waiting, timeout=120), engine.messages()[-20:]
                waiters = [l for l in engine.logs if waiting in l.message]
                assert len({l.urn for l in waiters}) == 1
            finally:
                gate.open()
            for f in futures:
                f.result(timeout=600)
    finally:
        p.close()


def test_bad_pool_settings_are_refused_at_configuration_naming_the_property(
        engine, provider_env, world, pool_addrs):
    p = Provider(engine, env=provider_env)
    try:
        p.handshake()
        bad = [
            ({"endpoints": [], "platforms": ["linux/amd64"]}, "builders[0].endpoints"),
            ({"endpoints": pool_addrs + pool_addrs[:1], "platforms": ["linux/amd64"]},
             "builders[0].endpoints[2]"),
            ({"endpoints": pool_addrs, "platforms": ["linux/amd64"], "maxParallelSolves": 0},
             "builders[0].maxParallelSolves"),
        ]
        for entry, prop in bad:
            with pytest.raises(Exception) as e:
                p.configure({"builders": [entry]})
            assert prop in str(e.value), (prop, str(e.value))
    finally:
        p.close()

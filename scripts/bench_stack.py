"""`make bench` section `stack`: a stack of BENCH_STACK_IMAGES Images (default 12), two
platforms each (linux/amd64 + linux/arm64, arm64 under QEMU), small RUN steps, created at once,
on one node and on a pool of two (the test world's pool buildkitd, BUILDKITD_POOL1_ADDR /
BUILDKITD_POOL2_ADDR), against `docker buildx bake` of the same targets on a remote-driver
builder of the first node.

Rows:
- multiarch via `pulumi up`, one node / pool of 2: the real CLI on a generated Pulumi YAML
  program (scripts/bench_stack_pulumi.py), `pulumi up --yes --skip-preview --parallel N`
  timed end to end; the stack of 12 is what a user waits for.
- `pulumi up` of an empty YAML program: the CLI's own floor (start, language host, state
  writes), the part of the rows above that is Pulumi's; and of the provider resource alone
  (no Images): that floor plus the plugin's start, schema and Configure.
- docker buildx bake, one node: the ratio column is the `pulumi up` one-node row over bake.
- plugin alone over gRPC, one node / pool of 2: one fresh plugin driven as the engine drives
  it (a Check + Create per Image from as many threads): the plugin and BuildKit without the
  engine's own cost.
- fail-over, via `pulumi up` and over gRPC: pool node 2 is killed (SIGKILL,
  scripts/testenv/buildkitd-pool-ctl.sh) once the stack has started on it (a new build
  record in the node's `buildctl debug histories`, resp. the plugin's progress naming the
  node), and started again after; every Image must still be pushed.

Every run writes new markers, so every RUN step runs (the base image stays cached). Every run
is checked: each Image has a digest and each tag is an index of both platforms in the
registry."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from bench_stack_pulumi import NodeWatch, PulumiUp, program
from harness import IMAGE

HERE = os.path.dirname(os.path.abspath(__file__))
CTL = os.path.join(HERE, "testenv", "buildkitd-pool-ctl.sh")
N = int(os.environ.get("BENCH_STACK_IMAGES", "12"))
PLATFORMS = ["linux/amd64", "linux/arm64"]
NAMES = [f"svc{i}" for i in range(N)]


def write_contexts(root: str, base: str, n: int = N) -> list[str]:
    """n build contexts svc0… under root, each with a fresh marker (so every RUN step runs)."""
    dirs = []
    for i in range(n):
        d = os.path.join(root, f"svc{i}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "Dockerfile"), "w") as f:
            f.write(f"FROM {base}\nCOPY marker /marker\n"
                    "RUN for i in $(seq 1 40); do uname -m >/dev/null; done && cat /marker > /built\n")
        with open(os.path.join(d, "marker"), "w") as f:
            f.write(uuid.uuid4().hex)
        dirs.append(d)
    return dirs


def image_inputs(dirs: list[str], repo: str, tag: str) -> dict[str, dict]:
    # The RUN steps get the node's own network, as bake's targets do: `network: none` on one
    # side only costs that side a network namespace per RUN step (about 1.5x here).
    return {name: {"context": {"location": dirs[i]}, "platforms": PLATFORMS,
                   "tags": [f"{repo}/{name}:{tag}"]}
            for i, name in enumerate(NAMES)}


def check_pushed(w, repo: str, tag: str, who: str) -> None:
    """Each tag of the run is in the registry, an index of both platforms."""
    path = repo.split("/", 1)[1]
    for name in NAMES:
        try:
            index = w.plain.get_manifest(f"{path}/{name}", tag)
        except AssertionError as e:
            raise RuntimeError(f"{who}: {repo}/{name}:{tag} is not in the registry: {e}") from None
        got = {f"{m['platform']['os']}/{m['platform']['architecture']}"
               for m in index.get("manifests", []) if m.get("platform", {}).get("os") != "unknown"}
        if got != set(PLATFORMS):
            raise RuntimeError(f"{who}: {repo}/{name}:{tag} holds {sorted(got)}, not {PLATFORMS}")


def never_started(n: int) -> RuntimeError:
    return RuntimeError(f"the stack never started on pool node {n} (with few Images, "
                        f"BENCH_STACK_IMAGES={N}, the pool may place none there)")


def node_ctl(cmd: str, n: int) -> None:
    subprocess.run(["bash", CTL, cmd, str(n)], check=True, stdout=subprocess.DEVNULL, timeout=120)


def stack_grpc(w, bench, addrs: list[str], dirs: list[str], repo: str, tag: str,
               kill_node: int | None = None, killed_at: list[float] | None = None) -> float:
    config = {**w.config(), "builders": [{"endpoints": addrs, "platforms": PLATFORMS}]}
    # Its own engine: the progress of earlier runs must not answer for this one.
    engine = bench.FakeEngine()
    inputs = image_inputs(dirs, repo, tag)
    t0 = time.perf_counter()
    p = bench.Provider(engine, log_path=os.path.join(w.tmp, f"stack-{uuid.uuid4().hex[:6]}.log"))
    try:
        p.handshake()
        p.configure(config)

        def one(name: str):
            return p.create(IMAGE, p.check(IMAGE, inputs[name], name=name)[0], name=name)

        with ThreadPoolExecutor(max_workers=N) as pool:
            futures = [pool.submit(one, name) for name in NAMES]
            if kill_node is not None:
                victim = f"building on builders[0].endpoints[{kill_node - 1}]"
                if not engine.saw(victim, timeout=120):
                    raise never_started(kill_node)
                node_ctl("stop", kill_node)
                killed_at.append(time.perf_counter() - t0)
            results = [f.result() for f in futures]
        elapsed = time.perf_counter() - t0
    finally:
        p.close()
        engine.stop()
        if kill_node is not None:
            node_ctl("start", kill_node)
    for _, state in results:
        if not state.get("digest", "").startswith("sha256:"):
            raise RuntimeError(f"an Image of the stack has no digest: {state}")
    check_pushed(w, repo, tag, "plugin over gRPC")
    return elapsed


def stack_pulumi(w, up: PulumiUp, addrs: list[str], dirs: list[str], repo: str, tag: str,
                 kill_node: int | None = None, killed_at: list[float] | None = None) -> float:
    text = program([{"endpoints": addrs, "platforms": PLATFORMS}], w.config()["registries"],
                   image_inputs(dirs, repo, tag))
    during = None
    if kill_node is not None:
        watch = NodeWatch(w.env["BUILDCTL"], addrs[kill_node - 1])

        def during(fut):
            if not watch.wait_started(fut):
                raise never_started(kill_node)
            node_ctl("stop", kill_node)
            killed_at.append(time.perf_counter() - up.t0)
    try:
        elapsed, outputs = up.up(text, during)
    finally:
        if kill_node is not None:
            node_ctl("start", kill_node)
    missing = [n for n in NAMES if not str(outputs.get(n, "")).startswith("sha256:")]
    if missing:
        raise RuntimeError(f"pulumi up: no digest for {missing} (outputs {outputs})")
    check_pushed(w, repo, tag, "pulumi up")
    return elapsed


def bake(w, builder: str, dirs: list[str], repo: str, tag: str) -> float:
    targets = {name: {"context": dirs[i], "platforms": PLATFORMS, "tags": [f"{repo}/{name}:{tag}"],
                      "output": ["type=registry"]}
               for i, name in enumerate(NAMES)}
    f = os.path.join(w.tmp, f"bake-{tag}.json")
    with open(f, "w") as out:
        json.dump({"group": {"default": {"targets": sorted(targets)}}, "target": targets}, out)
    t0 = time.perf_counter()
    subprocess.run(["docker", "buildx", "bake", "--builder", builder, "-f", f, "--progress", "quiet",
                    "--provenance=false", "--sbom=false"], check=True, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - t0
    check_pushed(w, repo, tag, "buildx bake")
    return elapsed


def bench_stack(w, bench) -> None:
    addrs = [w.env.get(k) or os.environ.get(k) for k in ("BUILDKITD_POOL1_ADDR", "BUILDKITD_POOL2_ADDR")]
    if not all(addrs):
        raise RuntimeError("the test world has no buildkitd pool: run scripts/testenv.sh")
    for n in (1, 2):
        node_ctl("start", n)
    builder = f"ma-bench-{bench.TAG}"
    bench.run("docker", "buildx", "create", "--name", builder, "--driver", "remote", addrs[0])
    repo = f"{w.plain.host}/bench-{bench.TAG}/stack"
    base = w.env["BASE_IMAGE_PLAIN"]
    root = os.path.join(w.tmp, "stack")
    world_env = {k: v for k, v in w.env.items() if k.startswith("AWS_") or k == "SSL_CERT_FILE"}
    up = PulumiUp(w.tmp, world_env, parallel=N)
    med = statistics.median

    def ctx():
        return write_contexts(root, base)

    try:
        bench.header(f"Stack: {N} Images x 2 platforms (arm64 under QEMU), small RUN steps, "
                     f"created at once (`pulumi up --parallel {N}`)")
        rows = {k: [] for k in ("up1", "up2", "empty", "provider", "bake", "grpc1", "grpc2")}
        builders = [{"endpoints": addrs[:1], "platforms": PLATFORMS}]
        for i in range(bench.RUNS):
            rows["up1"].append(stack_pulumi(w, up, addrs[:1], ctx(), repo, f"up1-{i}"))
            rows["up2"].append(stack_pulumi(w, up, addrs, ctx(), repo, f"up2-{i}"))
            rows["empty"].append(up.up(program(None, [], {}))[0])
            rows["provider"].append(up.up(program(builders, w.config()["registries"], {}))[0])
            rows["bake"].append(bake(w, builder, ctx(), repo, f"bake-{i}"))
            rows["grpc1"].append(stack_grpc(w, bench, addrs[:1], ctx(), repo, f"grpc1-{i}"))
            rows["grpc2"].append(stack_grpc(w, bench, addrs, ctx(), repo, f"grpc2-{i}"))
        one, two = rows["up1"], rows["up2"]
        bench.row("multiarch via pulumi up, one node", one)
        bench.row("multiarch via pulumi up, pool of 2", two,
                  extra=f"pool / one node {med(two) / med(one):.2f}x")
        bench.row("pulumi up, empty YAML program", rows["empty"],
                  extra=f"the CLI's floor: {med(rows['empty']) / med(one):.0%} of the one-node up")
        bench.row("pulumi up, the provider alone", rows["provider"],
                  extra=f"+ plugin start, schema, Configure: {med(rows['provider']) / med(one):.0%}")
        bench.row("docker buildx bake, one node", rows["bake"], one)
        g1, g2 = rows["grpc1"], rows["grpc2"]
        bench.row("plugin alone over gRPC, one node", g1, extra=f"/ pulumi up {med(g1) / med(one):.2f}x")
        bench.row("plugin alone over gRPC, pool of 2", g2, extra=f"pool / one node {med(g2) / med(g1):.2f}x")
        failover = [("pulumi up, pool of 2, node 2 killed", two,
                     lambda i, at: stack_pulumi(w, up, addrs, ctx(), repo, f"foup-{i}", 2, at)),
                    ("plugin over gRPC, node 2 killed", g2,
                     lambda i, at: stack_grpc(w, bench, addrs, ctx(), repo, f"fogrpc-{i}", 2, at))]
        for name, both, run in failover:
            at: list[float] = []
            times = [run(i, at) for i in range(bench.RUNS)]
            bench.row(name, times, extra=f"killed at {med(at):.1f} s (median), all {N} pushed; "
                                         f"/ both nodes {med(times) / med(both):.2f}x")
    finally:
        subprocess.run(["docker", "buildx", "rm", builder], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

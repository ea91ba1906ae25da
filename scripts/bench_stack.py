"""`make bench` section `stack`: a stack of BENCH_STACK_IMAGES Images (default 12), two
platforms each (arm64 under QEMU), small RUN steps, created at once by one fresh plugin (a
Create per Image from as many threads, as `pulumi up` runs them in parallel), on one node and
on a pool of two (the test world's pool buildkitd, BUILDKITD_POOL1_ADDR / BUILDKITD_POOL2_ADDR),
against `docker buildx bake` of the same targets on a remote-driver builder of the first node.
Every run writes new markers, so every RUN step runs (the base image stays cached).
The fail-over row kills pool node 2 once the stack has started on it (and starts it again):
every Image must still be pushed."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from harness import IMAGE

HERE = os.path.dirname(os.path.abspath(__file__))
CTL = os.path.join(HERE, "testenv", "buildkitd-pool-ctl.sh")
N = int(os.environ.get("BENCH_STACK_IMAGES", "12"))
PLATFORMS = ["linux/amd64", "linux/arm64"]


def write_contexts(root: str, base: str) -> list[str]:
    dirs = []
    for i in range(N):
        d = os.path.join(root, f"svc{i}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "Dockerfile"), "w") as f:
            f.write(f"FROM {base}\nCOPY marker /marker\n"
                    "RUN for i in $(seq 1 40); do uname -m >/dev/null; done && cat /marker > /built\n")
        with open(os.path.join(d, "marker"), "w") as f:
            f.write(uuid.uuid4().hex)
        dirs.append(d)
    return dirs


def stack(w, bench, addrs: list[str], dirs: list[str], repo: str, tag: str,
          kill_node: int | None = None) -> float:
    config = {**w.config(), "builders": [{"endpoints": addrs, "platforms": PLATFORMS}]}
    # Its own engine: the progress of earlier runs must not answer for this one.
    engine = bench.FakeEngine()
    t0 = time.perf_counter()
    p = bench.Provider(engine, log_path=os.path.join(w.tmp, f"stack-{uuid.uuid4().hex[:6]}.log"))
    try:
        p.handshake()
        p.configure(config)

        def one(i: int):
            inputs = {"context": {"location": dirs[i]}, "platforms": PLATFORMS,
                      "tags": [f"{repo}/svc{i}:{tag}"], "network": "none"}
            name = f"svc{i}"
            return p.create(IMAGE, p.check(IMAGE, inputs, name=name)[0], name=name)

        with ThreadPoolExecutor(max_workers=N) as pool:
            futures = [pool.submit(one, i) for i in range(N)]
            if kill_node is not None:
                victim = f"building on builders[0].endpoints[{kill_node - 1}]"
                if not engine.saw(victim, timeout=120):
                    raise RuntimeError("the stack never started on the node to kill")
                subprocess.run(["bash", CTL, "stop", str(kill_node)], check=True)
            results = [f.result() for f in futures]
        elapsed = time.perf_counter() - t0
    finally:
        p.close()
        engine.stop()
        if kill_node is not None:
            subprocess.run(["bash", CTL, "start", str(kill_node)], check=True)
    for _, state in results:
        if not state.get("digest", "").startswith("sha256:"):
            raise RuntimeError(f"an Image of the stack has no digest: {state}")
    return elapsed


def bake(builder: str, dirs: list[str], repo: str, tag: str, tmp: str) -> float:
    targets = {f"svc{i}": {"context": d, "platforms": PLATFORMS, "tags": [f"{repo}/svc{i}:{tag}"],
                           "output": ["type=registry"]}
               for i, d in enumerate(dirs)}
    f = os.path.join(tmp, f"bake-{tag}.json")
    with open(f, "w") as out:
        json.dump({"group": {"default": {"targets": sorted(targets)}}, "target": targets}, out)
    t0 = time.perf_counter()
    subprocess.run(["docker", "buildx", "bake", "--builder", builder, "-f", f, "--progress", "quiet",
                    "--provenance=false", "--sbom=false"], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def bench_stack(w, bench) -> None:
    addrs = [w.env.get(k) or os.environ.get(k) for k in ("BUILDKITD_POOL1_ADDR", "BUILDKITD_POOL2_ADDR")]
    if not all(addrs):
        raise RuntimeError("the test world has no buildkitd pool: run scripts/testenv.sh")
    for n in (1, 2):
        subprocess.run(["bash", CTL, "start", str(n)], check=True)
    builder = f"ma-bench-{bench.TAG}"
    bench.run("docker", "buildx", "create", "--name", builder, "--driver", "remote", addrs[0])
    repo = f"{w.plain.host}/bench-{bench.TAG}/stack"
    base = w.env["BASE_IMAGE_PLAIN"]
    root = os.path.join(w.tmp, "stack")
    try:
        bench.header(f"Stack: {N} Images x 2 platforms (arm64 under QEMU), small RUN steps, "
                     "created at once by a fresh plugin")
        one, two, theirs = [], [], []
        for i in range(bench.RUNS):
            one.append(stack(w, bench, addrs[:1], write_contexts(root, base), repo, f"one-{i}"))
            two.append(stack(w, bench, addrs, write_contexts(root, base), repo, f"pool-{i}"))
            theirs.append(bake(builder, write_contexts(root, base), repo, f"bake-{i}", w.tmp))
        med = statistics.median
        bench.row("multiarch, one node", one)
        bench.row("multiarch, pool of 2 nodes", two, extra=f"pool / one node {med(two) / med(one):.2f}x")
        bench.row("docker buildx bake, one node", theirs, one)
        fo = [stack(w, bench, addrs, write_contexts(root, base), repo, f"failover-{i}", kill_node=2)
              for i in range(bench.RUNS)]
        bench.row("multiarch, pool of 2, node 2 killed", fo,
                  extra=f"mid-stack, all {N} pushed; / both nodes {med(fo) / med(two):.2f}x")
    finally:
        subprocess.run(["docker", "buildx", "rm", builder], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

"""Where a stack's time goes: one stack of STACK_IMAGES (12) two-platform Images created at once
by one fresh plugin on ONE buildkitd node (BUILDKITD_POOL1_ADDR), then `docker buildx bake` of
the same targets on the same node, each with a per-Image timeline. Not a bench (one run each);
`make bench` (scripts/bench_stack.py) has the figures.

    set -a; source /var/lib/multiarch-testenv/env; set +a
    MULTIARCH_PROVIDER_BIN=target/release/pulumi-resource-multiarch \
        .venv/bin/python scripts/stack_timeline.py [--ours-only|--bake-only] [--raw]

Per Image, in seconds from the start of its side's run:
- ours: Create sent, the plugin's first log line for it, its solve's record on the node
  (`buildctl debug histories`: created / completed), the registry's first and last request
  for its repository (the plain registry's access log) and Create answered;
- bake: the same node and registry columns (bake has no per-target start).
The registry requests per repository are counted by method and path kind (manifest, blob,
upload), so a read before or after the push shows as its own column; requests for other
repositories in the window (the base image; other helpers' runs share the registry) are
summed apart. The plugin's CPU (from /proc) and bake's client CPU (buildx, as a child) are
printed with each side. --raw prints every plugin log line and registry request with its time.

RUN steps run with STACK_NETWORK (default `none`, as scripts/bench_stack.py sets for the
plugin); bake gets BAKE_NETWORK (default: the same; `default` leaves the node's own, host on
the test world's pool nodes, as bench_stack.py runs bake). `none` costs BuildKit a new
network namespace per RUN step: compare like with like."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, HERE)

from harness import IMAGE, FakeEngine, Provider, testenv  # noqa: E402
from bench_stack import write_contexts  # noqa: E402

N = int(os.environ.get("STACK_IMAGES", "12"))
PLATFORMS = ["linux/amd64", "linux/arm64"]
# RUN steps' network: `none` here by default; scripts/bench_stack.py gives both sides the node's own; bake gets the same
# unless BAKE_NETWORK says otherwise (`default`: the node's own, as bench_stack.py runs bake).
NETWORK = os.environ.get("STACK_NETWORK", "none")
BAKE_NETWORK = os.environ.get("BAKE_NETWORK", NETWORK)
ENV = testenv()
NODE = ENV["BUILDKITD_POOL1_ADDR"]
REG = ENV["PLAIN_REGISTRY"]
REG_LOG = ENV["PLAIN_REGISTRY_LOG"]
# The registry's own line (the access-log line has 1 s resolution).
LINE = re.compile(r'time="([^"]+)".*http\.request\.method=(\w+) http\.request\.remoteaddr="[^"]*" '
                  r'http\.request\.uri=(\S+).*http\.response\.duration=(\S+).*http\.response\.status=(\d+)')


class TimedEngine(FakeEngine):
    def __init__(self):
        super().__init__()
        self.timed = []

    def Log(self, request, context):
        self.timed.append((time.time(), request.urn, request.message))
        return super().Log(request, context)


def contexts(root: str, base: str) -> list[str]:
    return write_contexts(root, base, N)


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def histories(t0: float, t1: float) -> list[dict]:
    """The node's build records created in [t0, t1] (epoch seconds)."""
    out = subprocess.run([ENV["BUILDCTL"], "--addr", NODE, "debug", "histories", "--format", "{{json .}}"],
                         capture_output=True, text=True, check=True).stdout
    recs = []
    for line in out.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            v = json.loads(line)
        except json.JSONDecodeError:
            continue
        for r in v if isinstance(v, list) else [v]:
            r = r.get("record", r)
            c = epoch(r.get("CreatedAt"))
            if c is not None and t0 - 1 <= c <= t1 + 1:
                r["_created"], r["_completed"] = c, epoch(r.get("CompletedAt"))
                recs.append(r)
    return sorted(recs, key=lambda r: r["_created"])


def epoch(s) -> float | None:
    if not s:
        return None
    if isinstance(s, dict):  # protobuf Timestamp
        return s.get("seconds", 0) + s.get("nanos", 0) / 1e9
    s = re.sub(r"(\.\d{6})\d+", r"\1", s).replace("Z", "+00:00")
    try:
        return dt.datetime.fromisoformat(s).timestamp()
    except ValueError:
        return None


def registry_requests(offset: int, repo: str) -> dict[str, list[tuple]]:
    """Requests per image repository (`…/svcN`) after byte `offset` of the registry log; those
    for other repositories (the base image) and `/v2/` under `other`."""
    per = defaultdict(list)
    with open(REG_LOG, errors="replace") as f:
        f.seek(offset)
        for line in f:
            m = LINE.search(line)
            if not m:
                continue
            if f"/v2/{repo}/" not in m.group(3):
                per["other"].append((epoch(m.group(1)), m.group(2), "other", m.group(3), m.group(4),
                                     m.group(5)))
                continue
            t = epoch(m.group(1))
            svc = m.group(3).split(f"/v2/{repo}/", 1)[1].split("/", 1)[0]
            kind = m.group(3).split("/")[-2] if "/uploads/" not in m.group(3) else "uploads"
            per[svc].append((t, m.group(2), kind, m.group(3), m.group(4), m.group(5)))
    return per


def ours(dirs: list[str], repo: str, tag: str, raw: bool) -> None:
    engine = TimedEngine()
    log = tempfile.NamedTemporaryFile(prefix="stack-timeline-", suffix=".log", delete=False).name
    offset = os.path.getsize(REG_LOG)
    t0 = time.time()
    p = Provider(engine, log_path=log)
    spans = {}
    try:
        p.handshake()
        p.configure({"registries": [{"address": REG, "insecure": True}],
                     "builders": [{"endpoints": [NODE], "platforms": PLATFORMS}]})
        t_conf = time.time()

        def one(i: int):
            name = f"svc{i}"
            inputs = {"context": {"location": dirs[i]}, "platforms": PLATFORMS,
                      "tags": [f"{REG}/{repo}/{name}:{tag}"], "network": NETWORK}
            checked = p.check(IMAGE, inputs, name=name)[0]
            a = time.time()
            p.create(IMAGE, checked, name=name)
            spans[name] = (a, time.time())

        with ThreadPoolExecutor(max_workers=N) as pool:
            list(pool.map(one, range(N)))
        t1 = time.time()
        cpu = proc_cpu(p.proc.pid)
    finally:
        p.close()
        engine.stop()
    time.sleep(0.5)
    print(f"\n== multiarch (network {NETWORK}): {t1 - t0:.2f} s from plugin start ({t_conf - t0:.2f} s to Configure), "
          f"plugin CPU {cpu:.2f} s; "
          f"stderr log {log}; {os.getloadavg()[0]:.2f} load")
    recs = histories(t0, t1)
    reqs = registry_requests(offset, repo)
    by_urn = defaultdict(list)
    for t, urn, msg in engine.timed:
        by_urn[urn.rsplit("::", 1)[-1]].append((t, msg))
    table(t0, [f"svc{i}" for i in range(N)], spans, by_urn, recs, reqs)
    if raw:
        for name in sorted(by_urn):
            for t, msg in by_urn[name]:
                print(f"  {t - t0:7.3f} {name:6} {msg[:150]}")
        dump_requests(t0, reqs)


def bake(dirs: list[str], repo: str, tag: str, raw: bool) -> None:
    builder = f"ma-timeline-{uuid.uuid4().hex[:6]}"
    subprocess.run(["docker", "buildx", "create", "--name", builder, "--driver", "remote", NODE],
                   check=True, capture_output=True)
    targets = {f"svc{i}": {"context": d, "platforms": PLATFORMS, "tags": [f"{REG}/{repo}/svc{i}:{tag}"],
                           "output": ["type=registry"]} for i, d in enumerate(dirs)}
    if BAKE_NETWORK != "default":
        for t in targets.values():
            t["network"] = BAKE_NETWORK
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"group": {"default": {"targets": sorted(targets)}}, "target": targets}, f)
    try:
        # The builder's first use boots it: not part of the run.
        subprocess.run(["docker", "buildx", "inspect", "--bootstrap", builder], check=True, capture_output=True)
        offset = os.path.getsize(REG_LOG)
        t0 = time.time()
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(["docker", "buildx", "bake", "--builder", builder, "-f", f.name, "--progress", "quiet",
                        "--provenance=false", "--sbom=false"], check=True, stdout=subprocess.DEVNULL)
        t1 = time.time()
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime
    finally:
        subprocess.run(["docker", "buildx", "rm", builder], capture_output=True)
        os.unlink(f.name)
    time.sleep(0.5)
    print(f"\n== docker buildx bake (network {BAKE_NETWORK}): {t1 - t0:.2f} s, client CPU {cpu:.2f} s; "
          f"{os.getloadavg()[0]:.2f} load")
    recs = histories(t0, t1)
    reqs = registry_requests(offset, repo)
    table(t0, sorted(targets, key=lambda s: int(s[3:])), {}, {}, recs, reqs)
    if raw:
        dump_requests(t0, reqs)


def table(t0, names, spans, logs, recs, reqs) -> None:
    print(f"  {'image':6} {'create':>7} {'1stlog':>7} {'solve+':>7} {'solve-':>7} "
          f"{'reg1st':>7} {'reglast':>7} {'answer':>7}  registry requests")
    # A record names its Image by the exporter's tags.
    starts = [r["_created"] for r in recs]
    ends = [r["_completed"] for r in recs]
    print(f"  node: {len(recs)} solves, created {fmt(t0, min(starts, default=None))}.."
          f"{fmt(t0, max(starts, default=None))}, completed {fmt(t0, min(filter(None, ends), default=None))}.."
          f"{fmt(t0, max(filter(None, ends), default=None))}")
    for r in recs:
        pushed = " ".join((e.get("Attrs") or {}).get("name", "") for e in r.get("Exporters") or [])
        r["_name"] = next((n for n in names if f"/{n}:" in pushed), None)
    others = Counter(f"{m} {u}" for _, m, _, u, *_ in reqs.get("other", []))
    print("  other requests in the window (other stacks' too): "
          + ", ".join(f"{v} {k}" for k, v in others.most_common(6)))
    for name in names:
        a, b = spans.get(name, (None, None))
        first = logs.get(name, [(None, "")])[0][0] if logs.get(name) else None
        rec = next((r for r in recs if r.get("_name") == name), None)
        rs = reqs.get(name, [])
        kinds = Counter(f"{m} {k}" for _, m, k, *_ in rs)
        print(f"  {name:6} {fmt(t0, a)} {fmt(t0, first)} {fmt(t0, rec and rec['_created'])} "
              f"{fmt(t0, rec and rec['_completed'])} {fmt(t0, rs[0][0] if rs else None)} "
              f"{fmt(t0, rs[-1][0] if rs else None)} {fmt(t0, b)}  "
              + ", ".join(f"{v} {k}" for k, v in sorted(kinds.items())))


def dump_requests(t0, reqs) -> None:
    for name in sorted(reqs):
        for t, m, _, uri, d, s in reqs[name]:
            print(f"  {t - t0:7.3f} {name:6} {m:6} {s} {d:>12} {uri[:110]}")


def fmt(t0, t) -> str:
    return f"{t - t0:7.2f}" if t else "      -"


def main() -> None:
    raw = "--raw" in sys.argv
    tag = uuid.uuid4().hex[:8]
    repo = f"timeline-{tag}"
    root = tempfile.mkdtemp(prefix="stack-timeline-")
    if "--bake-only" not in sys.argv:
        ours(contexts(os.path.join(root, "ours"), ENV["BASE_IMAGE_PLAIN"]), repo + "-ours", "t", raw)
    if "--ours-only" not in sys.argv:
        bake(contexts(os.path.join(root, "bake"), ENV["BASE_IMAGE_PLAIN"]), repo + "-bake", "t", raw)
    subprocess.run(["rm", "-rf", root])


if __name__ == "__main__":
    main()

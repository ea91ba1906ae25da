"""`make bench`: multiarch side by side with the reference tools, in one run, on the test world.

Figures, not a test: nothing here asserts a speed. Every figure is min / median / max of
BENCH_RUNS repetitions (default 5); each ratio is multiarch's median over the reference's
median (< 1: multiarch is faster). Rows print as they complete, each with the load average.

Sections (BENCH=a,b,…; default all): startup, manifestlist, copy, image, stack, diff, context.

- manifestlist: ManifestList of 2 / 8 / 64 single-platform sources (BENCH_ML_SIZES), the
  index in the same repository as the sources and in a fresh repository per run (children
  copied). COLD = a fresh plugin process + Handshake + Configure + Check + Create (what one
  `pulumi up` pays); WARM = Check + Create on a running plugin. References: `docker buildx
  imagetools create`, `crane index append`, `regctl index create`. Requests are counted per
  repository in the registry's access log (only this run's unique repositories; `/v2/` pings
  and token requests name no repository and are not counted for anyone) against the floor:
  per child one manifest GET and one config GET (single-platform sources carry no platform in
  an index), one mount/upload per unique blob, one child PUT, one index PUT per tag.
- copy: an index of amd64 + arm64 (BENCH_COPY_MB, default 420 MiB of random layers, one layer
  shared by both) from the plain registry to the ECR look-alike, a fresh repository per run:
  time, bytes uploaded (completed uploads in the target's access log, sized from the
  registry's storage) and peak RSS, against imagetools, `crane copy`, `regctl image copy` and
  `skopeo copy --all --preserve-digests`.
- image: a cold QEMU-heavy 2-platform build + push (a new RUN step each time, arm64 emulated)
  and a warm one (everything cached, a new tag), against `docker buildx build --push
  --provenance=false --sbom=false` (multiarch: provenance and sbom off, its default); the
  no-change `up` (fresh plugin + Configure + Check + Diff).
- stack: BENCH_STACK_IMAGES (12) two-platform Images created in one `pulumi up --parallel 12`
  (the real CLI, a generated Pulumi YAML program, a `file://` backend) on one node and on a
  pool of two, against `docker buildx bake` of the same targets on the first node; `pulumi up`
  of an empty program (the CLI's own floor); the same stacks with the plugin alone over gRPC
  (no engine); then the pool with node 2 killed mid-stack, through `pulumi up` and over gRPC
  (scripts/bench_stack.py, scripts/bench_stack_pulumi.py). Needs `make pulumi`.
- diff: the no-change Diff of a ManifestList of 64 sources (fresh and warm plugin) against
  curl's 64 HEADs over HTTP/2, on the idle registry and behind a 20 ms round trip
  (scripts/bench_diff.py).
- context: contextHash of 500 MB in 20,000 files (BENCH_CONTEXT_MB, BENCH_CONTEXT_FILES)
  through a Diff RPC, warm page cache and, when /proc/sys/vm/drop_caches is writable (root,
  BENCH_DROP_CACHES not 0), cold, against `tar c . | sha256sum` (a single sha256 thread,
  which also hashes tar headers; multiarch reads and hashes files on a pool of threads).
- startup: scripts/startup.py (start-up, idle RSS, first Configure, first Check).

Generated files live in a temporary directory (BENCH_TMP, default the system's) removed at
the end; registry data stays in the test world's registries (random layers are seeded, so a
second run adds nothing there)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, HERE)

from bench_registry import DOCKER_LIST, AccessLog, Registry  # noqa: E402
from harness import DIFF_NONE, IMAGE, ML, FakeEngine, Provider, testenv  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
SECTIONS = ["startup", "manifestlist", "copy", "image", "stack", "diff", "context"]
STATE = os.environ.get("MULTIARCH_TESTENV_STATE", "/var/lib/multiarch-testenv")
REFBIN = os.path.join(STATE, "refclients", "bin")
CRANE = os.path.join(REFBIN, "crane")
REGCTL = os.path.join(REFBIN, "regctl")
TIME = "/usr/bin/time"  # GNU time (Debian package `time`, installed by scripts/refclients.sh)
TAG = uuid.uuid4().hex[:8]  # this run's repositories all carry it


def load() -> str:
    return "load %.2f" % os.getloadavg()[0]


def fmt(xs: list[float], unit: str = "s") -> str:
    if unit == "ms":
        xs, f = [x * 1000 for x in xs], "{:8.1f}"
    else:
        f = "{:8.3f}"
    return " ".join(f.format(x) for x in (min(xs), statistics.median(xs), max(xs))) + f" {unit:2}"


def header(title: str) -> None:
    print(f"\n== {title} ({load()}); min / median / max of {RUNS}", flush=True)


def row(name: str, times: list[float], ours: list[float] | None = None, extra: str = "",
        unit: str = "s") -> None:
    ratio = ""
    if ours is not None:
        ratio = f"  ours/this {statistics.median(ours) / statistics.median(times):5.2f}x"
    print(f"  {name:<40} {fmt(times, unit)}{ratio:<20}  {extra}", flush=True)


def run(*args, env=None, check=True) -> subprocess.CompletedProcess:
    p = subprocess.run(list(args), capture_output=True, text=True, env=env)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])}…: exit {p.returncode}\n{p.stderr[-2000:]}")
    return p


def run_rss(*args, env=None) -> tuple[float, int]:
    """Runs a command under GNU time: wall time and peak RSS in bytes (the process and the
    children it waited for; measured by `time`, whose own small process is what the command
    is exec'd from, so the bench's Python does not count)."""
    out = os.path.join(tempfile.gettempdir(), f"bench-rss-{uuid.uuid4().hex[:8]}")
    t0 = time.perf_counter()
    p = subprocess.run([TIME, "-f", "%M", "-o", out, *args], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, env=env)
    dt = time.perf_counter() - t0
    try:
        with open(out) as f:
            rss = int(f.read().strip().splitlines()[-1]) * 1024
    finally:
        if os.path.exists(out):
            os.unlink(out)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])}…: exit {p.returncode}\n{p.stderr.decode()[-2000:]}")
    return dt, rss


def vm_hwm(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) * 1024
    return 0


class World:
    def __init__(self):
        self.env = testenv()
        os.environ.update({k: v for k, v in self.env.items()
                           if k.startswith("AWS_") or k in ("SSL_CERT_FILE", "TEST_CA_CERT")})
        with open(self.env["ECR_PASSWORD_FILE"]) as f:
            password = f.read().strip()
        self.plain = Registry(self.env["PLAIN_REGISTRY"], tls=False,
                              data_dir=os.path.join(STATE, "registry-plain-data"),
                              log=self.env["PLAIN_REGISTRY_LOG"])
        self.ecr = Registry(self.env["ECR_REGISTRY"], tls=True, user=self.env["ECR_USERNAME"],
                            password=password, data_dir=os.path.join(STATE, "registry-ecr-data"),
                            log=self.env["ECR_REGISTRY_LOG"])
        self.engine = FakeEngine()
        self.tmp = tempfile.mkdtemp(prefix="multiarch-bench-", dir=os.environ.get("BENCH_TMP"))
        # regctl keeps its registry settings in a file: this run's, in the temporary directory.
        self.regctl_env = dict(os.environ, REGCTL_CONFIG=os.path.join(self.tmp, "regctl.json"))
        if os.access(REGCTL, os.X_OK):
            run(REGCTL, "registry", "set", "--tls", "disabled", self.plain.host, env=self.regctl_env)
        self.warm = None

    def config(self) -> dict:
        return {"registries": [{"address": self.plain.host, "insecure": True}]}

    def cold(self) -> Provider:
        p = Provider(self.engine, log_path=os.path.join(self.tmp, f"provider-{uuid.uuid4().hex[:6]}.log"))
        p.handshake()
        p.configure(self.config())
        return p

    def warm_provider(self) -> Provider:
        if self.warm is None:
            self.warm = self.cold()
        return self.warm

    def close(self):
        if self.warm:
            self.warm.close()
        self.engine.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---- ManifestList ------------------------------------------------------------------------

ARCHS = ["amd64", "arm64", "386", "ppc64le", "s390x", "riscv64", "mips64le", "loong64"]


def ml_platform(i: int) -> dict:
    # 64 distinct platforms: 8 architectures x 8 variants (variants are free-form).
    return {"os": "linux", "architecture": ARCHS[i % 8], "variant": f"b{i // 8}"}


def ml_sources(w: World, reg: Registry, repo: str, n: int) -> list[str]:
    """n single-platform images, each with a layer of its own and one layer shared by all."""
    rnd = random.Random(f"ml-{n}")
    shared = reg.push_blob(repo, rnd.randbytes(4096))
    refs = []
    for i in range(n):
        own = reg.push_blob(repo, rnd.randbytes(2048) + str(i).encode())
        reg.push_image(repo, f"src{i}", ml_platform(i), [shared, own])
        refs.append(f"{reg.host}/{repo}:src{i}")
    return refs


def check_index(reg: Registry, repo: str, tag: str, n: int, who: str) -> None:
    m = reg.get_manifest(repo, tag)
    got = m.get("manifests", [])
    plats = {(d.get("platform") or {}).get("variant", "") + (d.get("platform") or {}).get("architecture", "")
             for d in got}
    if len(got) != n or len(plats) != n:
        raise RuntimeError(f"{who}: the index at {repo}:{tag} has {len(got)} entries, "
                           f"{len(plats)} platforms; expected {n}")


def bench_manifestlist(w: World) -> None:
    sizes = [int(x) for x in os.environ.get("BENCH_ML_SIZES", "2,8,64").split(",")]
    regname = os.environ.get("BENCH_ML_REGISTRY", "ecr")
    reg = w.ecr if regname == "ecr" else w.plain
    log = AccessLog(reg.log)
    insecure = ["--insecure"] if reg is w.plain else []
    for n in sizes:
        src_repo = f"bench-{TAG}/ml{n}-src"
        srcs = ml_sources(w, reg, src_repo, n)
        for cross in (False, True):
            where = "cross-repository (children copied)" if cross else "same repository"
            floor = 2 * n + 1 + ((2 * n + 1) + n if cross else 0)
            header(f"ManifestList, {n} sources, {where}, {reg.host}")
            results = {}

            def target(tool: str, i: int) -> tuple[str, str]:
                repo = f"bench-{TAG}/ml{n}-{tool}-{i}" if cross else src_repo
                return repo, f"{tool}-{i}"

            def ours_cold(repo, tag):
                t0 = time.perf_counter()
                p = w.cold()
                try:
                    inputs = {"tags": [f"{reg.host}/{repo}:{tag}"], "sources": srcs}
                    p.create(ML, p.check(ML, inputs)[0])
                    return time.perf_counter() - t0
                finally:
                    p.close()

            def ours_warm(repo, tag):
                p = w.warm_provider()
                t0 = time.perf_counter()
                inputs = {"tags": [f"{reg.host}/{repo}:{tag}"], "sources": srcs}
                p.create(ML, p.check(ML, inputs)[0])
                return time.perf_counter() - t0

            def timed_cmd(*args, env=None):
                def f(repo, tag):
                    t0 = time.perf_counter()
                    run(*[a.format(dst=f"{reg.host}/{repo}:{tag}") for a in args], env=env)
                    return time.perf_counter() - t0
                return f

            imagetools = timed_cmd("docker", "buildx", "imagetools", "create", "-t", "{dst}", *srcs)
            crane = timed_cmd(CRANE, "index", "append", *insecure, "-t", "{dst}",
                              *[a for s in srcs for a in ("-m", s)])
            regctl = timed_cmd(REGCTL, "index", "create", "{dst}",
                               *[a for s in srcs for a in ("--ref", s)], env=w.regctl_env)
            tools = [("multiarch cold", ours_cold), ("multiarch warm", ours_warm),
                     ("buildx imagetools create", imagetools), ("crane index append", crane),
                     ("regctl index create", regctl)]
            for name, fn in tools:
                key = name.split()[0] + ("" if "multiarch" not in name else name.split()[1])
                times, reqs, failures = [], [], []
                for i in range(RUNS):
                    repo, tag = target(key, i)
                    log.mark()
                    try:
                        times.append(fn(repo, tag))
                        # Counted before the bench's own check reads the index back.
                        reqs.append(len(log.lines({src_repo, repo})))
                        if len(times) == 1:
                            check_index(reg, repo, tag, n, name)
                    except Exception as e:  # a failed run is counted, the others go on
                        failures.append(str(e).strip().splitlines()[-1][:160] if str(e).strip() else repr(e))
                if not times:
                    print(f"  {name:<40} failed {len(failures)}/{RUNS}: {failures[0]}", flush=True)
                    continue
                results[name] = times
                ours = results.get("multiarch cold") if "multiarch" not in name else None
                r = statistics.median(reqs)
                fails = f"  FAILED {len(failures)}/{RUNS}: {failures[0]}" if failures else ""
                row(name, times, ours, f"requests {r:.0f} ({r / floor:.2f}x floor {floor}){fails}")
            if "multiarch warm" in results:
                warm = statistics.median(results["multiarch warm"])
                print("  warm ratios: " + ", ".join(
                    f"ours/{k.split()[0]} {warm / statistics.median(v):.2f}x"
                    for k, v in results.items() if not k.startswith("multiarch")), flush=True)


# ---- cross-registry copy ---------------------------------------------------------------------

def write_random(path: str, size: int, seed: str) -> None:
    rnd = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, 1 << 20)
            f.write(rnd.randbytes(n))
            left -= n


def bench_copy(w: World) -> None:
    total = int(os.environ.get("BENCH_COPY_MB", "420")) << 20
    layer = total // 3
    src_repo = f"bench-{TAG}/copy-src"
    blobs = {}
    print(f"\npreparing {3 * layer >> 20} MiB of random layers (one shared by amd64 and arm64) "
          f"in {w.tmp} and {w.plain.host}/{src_repo} …", flush=True)
    for name in ("shared", "amd64", "arm64"):
        p = os.path.join(w.tmp, f"{name}.layer")
        write_random(p, layer, f"copy-{name}-{layer}")
        blobs[name] = w.plain.push_blob(src_repo, path=p)
        os.unlink(p)
    children = []
    for arch in ("amd64", "arm64"):
        d = w.plain.push_image(src_repo, arch, {"os": "linux", "architecture": arch},
                               [blobs["shared"], blobs[arch]])
        children.append({**d, "platform": {"os": "linux", "architecture": arch}})
    w.plain.push_manifest(src_repo, "multi", {"schemaVersion": 2, "mediaType": DOCKER_LIST,
                                              "manifests": children}, DOCKER_LIST)
    src = f"{w.plain.host}/{src_repo}:multi"
    unique_bytes = 3 * layer
    header(f"cross-registry copy, {unique_bytes / 1e6:.0f} MB unique ({w.plain.host} -> {w.ecr.host})")
    log = AccessLog(w.ecr.log)

    def ours(dst):
        t0 = time.perf_counter()
        p = w.cold()
        try:
            p.create(ML, p.check(ML, {"tags": [dst], "sources": [src]})[0])
            return time.perf_counter() - t0, vm_hwm(p.proc.pid)
        finally:
            p.close()

    def cmd(*args, env=None):
        return lambda dst: run_rss(*[a.format(dst=dst, src=src) for a in args], env=env)

    tools = [
        ("multiarch (cold)", ours),
        ("buildx imagetools create", cmd("docker", "buildx", "imagetools", "create", "-t", "{dst}", "{src}")),
        ("crane copy", cmd(CRANE, "copy", "--insecure", "{src}", "{dst}")),
        ("regctl image copy", cmd(REGCTL, "image", "copy", "{src}", "{dst}", env=w.regctl_env)),
        # skopeo remembers in its blob-info cache where it has seen each blob and mounts it
        # from there: from another tool's repository of this very bench. Each run gets an
        # empty cache (a private tmpfs over the cache directory), as every other tool has.
        ("skopeo copy --all --preserve-digests", cmd(
            "unshare", "--mount", "sh", "-c",
            "mkdir -p /var/lib/containers/cache && mount -t tmpfs none /var/lib/containers/cache"
            " && exec skopeo \"$@\"", "sh",
            "copy", "--quiet", "--all", "--preserve-digests",
            "--src-tls-verify=false", "docker://{src}", "docker://{dst}")),
    ]
    ours_times = None
    for name, fn in tools:
        times, rss, up = [], [], []
        try:
            for i in range(RUNS):
                repo = f"bench-{TAG}/copy-{name.split()[0]}-{i}"
                log.mark()
                dt, r = fn(f"{w.ecr.host}/{repo}:multi")
                times.append(dt)
                rss.append(r)
                uploaded = AccessLog.uploaded(log.lines({repo}))
                up.append(sum(w.ecr.blob_size(d) or 0 for d in uploaded))
                if i == 0:
                    check_index(w.ecr, repo, "multi", 2, name)
        except RuntimeError as e:
            print(f"  {name:<40} failed: {str(e).splitlines()[0][:150]}", flush=True)
            continue
        if ours_times is None:
            ours_times = times
        row(name, times, None if times is ours_times else ours_times,
            f"uploaded {statistics.median(up) / 1e6:6.0f} MB ({statistics.median(up) / unique_bytes:.2f}x unique)"
            f"  peak RSS {statistics.median(rss) / (1 << 20):6.1f} MiB")


# ---- Image -----------------------------------------------------------------------------------

def bench_image(w: World) -> None:
    repo = f"{w.plain.host}/bench-{TAG}/image"
    ctx = os.path.join(w.tmp, "image-context")
    os.makedirs(ctx)
    base = w.env["BASE_IMAGE_PLAIN"]

    def write_context(marker: str) -> None:
        # Work under QEMU for arm64: a few thousand process starts and some hashing.
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write(f"FROM {base}\n"
                    f"RUN echo {marker} > /marker && for i in $(seq 1 300); do uname -m >/dev/null; done"
                    f" && dd if=/dev/zero bs=1M count=32 2>/dev/null | sha256sum > /sum\n")

    def inputs(tag: str) -> dict:
        return {"context": {"location": ctx}, "platforms": ["linux/amd64", "linux/arm64"],
                "tags": [f"{repo}:{tag}"], "network": "none"}

    def buildx(tag: str) -> float:
        t0 = time.perf_counter()
        run("docker", "buildx", "build", "-q", "--platform", "linux/amd64,linux/arm64", "--network", "none",
            "--provenance=false", "--sbom=false", "-t", f"{repo}:{tag}", "--push", ctx)
        return time.perf_counter() - t0

    def ours_cold(tag: str) -> float:
        t0 = time.perf_counter()
        p = w.cold()
        try:
            p.create(IMAGE, p.check(IMAGE, inputs(tag))[0])
            return time.perf_counter() - t0
        finally:
            p.close()

    header("Image, 2 platforms (arm64 under QEMU), cold build + push: a new RUN step each time")
    ours, theirs = [], []
    for i in range(RUNS):
        write_context(uuid.uuid4().hex)
        ours.append(ours_cold(f"cold-ma-{i}"))
        write_context(uuid.uuid4().hex)
        theirs.append(buildx(f"cold-bx-{i}"))
    row("multiarch (fresh plugin)", ours)
    row("buildx build --push --provenance=false", theirs, ours)

    header("Image, 2 platforms, warm build + push: everything cached, a new tag")
    write_context("warm")
    buildx("warm-prime")
    p = w.warm_provider()
    p.create(IMAGE, p.check(IMAGE, inputs("warm-prime-ma"))[0])
    ours, theirs = [], []
    for i in range(RUNS):
        checked = p.check(IMAGE, inputs(f"warm-ma-{i}"))[0]
        t0 = time.perf_counter()
        p.create(IMAGE, checked)
        ours.append(time.perf_counter() - t0)
        theirs.append(buildx(f"warm-bx-{i}"))
    row("multiarch (warm plugin)", ours)
    row("buildx build --push --provenance=false", theirs, ours)

    header("Image, no-change up: fresh plugin + Configure + Check + Diff")
    checked = p.check(IMAGE, inputs("nochange"))[0]
    id, state = p.create(IMAGE, checked)
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        q = w.cold()
        news = q.check(IMAGE, inputs("nochange"), olds=checked)[0]
        d = q.diff(IMAGE, id, state, news)
        times.append(time.perf_counter() - t0)
        q.close()
        if d.changes != DIFF_NONE:
            raise RuntimeError(f"no-change up found changes: {d}")
    row("multiarch no-change up", times, unit="ms")


def bench_stack(w: World) -> None:
    import bench_stack

    bench_stack.bench_stack(w, sys.modules[__name__])


def bench_diff(w: World) -> None:
    import bench_diff

    bench_diff.bench_diff(w, sys.modules[__name__])


# ---- contextHash ---------------------------------------------------------------------------

def make_context(root: str, total: int, files: int) -> None:
    """`files` files, `total` bytes: all but 10 small (4 KiB), 10 large, 100 directories."""
    small, large = files - 10, 10
    small_size = 4096
    large_size = (total - small * small_size) // large
    rnd = random.Random("context")
    chunk = rnd.randbytes(1 << 20)
    for i in range(small):
        d = os.path.join(root, f"d{i % 100:02d}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i}.txt"), "wb") as f:
            f.write(hashlib.sha256(str(i).encode()).digest() + chunk[i % 1000: i % 1000 + small_size - 32])
    for i in range(large):
        write_random(os.path.join(root, f"big{i}.bin"), large_size, f"big{i}")
    with open(os.path.join(root, "Dockerfile"), "w") as f:
        f.write("FROM scratch\nCOPY . /\n")


def drop_caches() -> bool:
    if os.environ.get("BENCH_DROP_CACHES", "1") == "0" or os.geteuid() != 0:
        return False
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def bench_context(w: World) -> None:
    mb = int(os.environ.get("BENCH_CONTEXT_MB", "500"))
    files = int(os.environ.get("BENCH_CONTEXT_FILES", "20000"))
    root = os.path.join(w.tmp, "context")
    os.makedirs(root)
    print(f"\npreparing the {mb} MB, {files}-file context in {root} …", flush=True)
    make_context(root, mb << 20, files)
    p = w.warm_provider()
    inputs = {"context": {"location": root}, "platforms": ["linux/amd64"],
              "tags": [f"{w.plain.host}/bench-{TAG}/ctx:1"], "push": False}
    checked = p.check(IMAGE, inputs)[0]
    state = dict(checked, contextHash="sha256:0")

    def ours() -> float:
        t0 = time.perf_counter()
        d = p.diff(IMAGE, "ctx", state, checked)
        dt = time.perf_counter() - t0
        assert "contextHash" in d.diffs, d
        return dt

    def tar() -> float:
        t0 = time.perf_counter()
        subprocess.run("tar cf - . | sha256sum >/dev/null", shell=True, cwd=root, check=True)
        return time.perf_counter() - t0

    ours()
    tar()
    header(f"contextHash of {mb} MB in {files} files, warm page cache")
    o = [ours() for _ in range(RUNS)]
    t = [tar() for _ in range(RUNS)]
    row("multiarch (Diff RPC, warm plugin)", o)
    row("tar c . | sha256sum (1 thread)", t, o)
    if not drop_caches():
        print("  cold page cache: not measured (warm only: dropping the page cache needs root "
              "and a writable /proc/sys/vm/drop_caches)", flush=True)
        return
    header(f"contextHash of {mb} MB in {files} files, cold page cache (dropped before each run)")
    o, t = [], []
    for _ in range(RUNS):
        drop_caches()
        o.append(ours())
        drop_caches()
        t.append(tar())
    row("multiarch (Diff RPC, warm plugin)", o)
    row("tar c . | sha256sum (1 thread)", t, o)


def bench_startup(w: World) -> None:
    import startup

    startup.main_for(os.environ.get("MULTIARCH_PROVIDER_BIN") or "target/debug/pulumi-resource-multiarch",
                     w.engine, RUNS)


def main() -> None:
    wanted = [s.strip() for s in os.environ.get("BENCH", "").split(",") if s.strip()] or SECTIONS
    for s in wanted:
        if s not in SECTIONS:
            sys.exit(f"BENCH: unknown section {s!r}; choose from {', '.join(SECTIONS)}")
    # The reference registry clients serve the manifestlist and copy sections only.
    refs = (CRANE, REGCTL, TIME) if {"manifestlist", "copy"} & set(wanted) else ()
    for b in refs:
        if not os.access(b, os.X_OK):
            sys.exit(f"{b} is missing: run `make refclients`")
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    print(f"make bench {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {os.cpu_count()} cores ({cpu}), "
          f"{load()}, sections {','.join(wanted)}, {RUNS} runs each, repositories bench-{TAG}/…", flush=True)
    w = World()
    try:
        for s in wanted:
            globals()[f"bench_{s}"](w)
    finally:
        w.close()


if __name__ == "__main__":
    main()

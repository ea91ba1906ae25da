"""`make bench`: ManifestList creation from 2 and 8 sources on the ECR look-alike, side by
side with `docker buildx imagetools create` and `docker manifest create && push` on the same
sources and registry: wall time (median of N runs) and registry requests per run (from the
registry's access log). Figures, not a test: nothing here asserts."""

import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from harness import ML, FakeEngine, Provider, RegistryLog, run, testenv, unique  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
PLATFORMS = ["amd64", "arm64", "arm/v7", "arm/v6", "386", "ppc64le", "s390x", "riscv64"]


def make_sources(repo: str) -> list[str]:
    """One single-platform image per platform (FROM scratch + a file: no emulation needed)."""
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "Dockerfile"), "w") as f:
            f.write("FROM scratch\nARG TARGETPLATFORM\nCOPY hello /hello\nLABEL platform=$TARGETPLATFORM\n")
        with open(os.path.join(d, "hello"), "w") as f:
            f.write("hello\n")
        refs = []
        for p in PLATFORMS:
            ref = f"{repo}:src-{p.replace('/', '-')}"
            run("docker", "buildx", "build", "-q", "--platform", f"linux/{p}", "--provenance=false",
                "--sbom=false", "-t", ref, "--push", d)
            refs.append(ref)
        return refs


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(name, log, fn_for_run):
    times, requests = [], []
    for i in range(RUNS):
        log.mark()
        times.append(timed(lambda: fn_for_run(i)))
        requests.append(len(log.requests()))
    return name, statistics.median(times), statistics.median(requests)


def bench_registry(provider, registry: str, log: RegistryLog, insecure: bool) -> list:
    repo = f"{registry}/{unique('bench')}"
    print(f"building {len(PLATFORMS)} single-platform sources in {repo} ...", flush=True)
    sources = make_sources(repo)
    flag = ["--insecure"] if insecure else []
    rows = []
    for n in (2, 8):
        srcs = sources[:n]

        def tag(kind, i):
            return f"{repo}:{kind}{n}-{i}-{unique('t')}"

        def ours(i):
            inputs = {"tags": [tag("ma", i)], "sources": srcs}
            provider.create(ML, provider.check(ML, inputs)[0])

        def imagetools(i):
            run("docker", "buildx", "imagetools", "create", "-t", tag("it", i), *srcs)

        def manifest(i):
            t = tag("dm", i)
            run("docker", "manifest", "create", *flag, t, *srcs)
            run("docker", "manifest", "push", *flag, "--purge", t)

        tools = [("multiarch", ours), ("buildx imagetools create", imagetools)]
        if insecure:
            # On the TLS look-alike `docker manifest push` fails to ping the registry.
            tools.append(("docker manifest create+push", manifest))
        for name, fn in tools:
            rows.append((n,) + measure(name, log, fn))
    return rows


def make_big_context(root: str, files: int = 50_000, total: int = 1 << 30) -> None:
    """50,000 files, 1 GiB in all: 49,990 small files and 10 large ones."""
    if os.path.exists(os.path.join(root, ".complete")):
        return
    os.makedirs(root, exist_ok=True)
    small, large = files - 10, 10
    small_size = 4096
    large_size = (total - small * small_size) // large
    chunk = os.urandom(1 << 20)
    for i in range(small):
        d = os.path.join(root, f"d{i % 100:02d}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i}.txt"), "wb") as f:
            f.write(chunk[i % 1000: i % 1000 + small_size])
    for i in range(large):
        with open(os.path.join(root, f"big{i}.bin"), "wb") as f:
            left = large_size
            while left > 0:
                f.write(chunk[: min(left, len(chunk))])
                left -= len(chunk)
    with open(os.path.join(root, "Dockerfile"), "w") as f:
        f.write("FROM scratch\nCOPY . /\n")
    open(os.path.join(root, ".complete"), "w").close()


def bench_image(provider, world) -> None:
    from harness import IMAGE

    repo = f"{world['PLAIN_REGISTRY']}/{unique('benchimg')}"
    with tempfile.TemporaryDirectory() as d:
        def write_context(marker):
            with open(os.path.join(d, "Dockerfile"), "w") as f:
                f.write(f"FROM {world['BASE_IMAGE_PLAIN']}\nRUN echo {marker} > /marker && uname -m > /arch\n")

        ours, theirs = [], []
        for i in range(RUNS):
            # A fresh RUN step each time, so both tools really build (arm64 under QEMU).
            write_context(unique("m"))
            inputs = {"context": {"location": d}, "platforms": ["linux/amd64", "linux/arm64"],
                      "tags": [f"{repo}:ma{i}"], "network": "none"}
            checked = provider.check(IMAGE, inputs)[0]
            ours.append(timed(lambda: provider.create(IMAGE, checked)))
            write_context(unique("m"))
            theirs.append(timed(lambda: run(
                "docker", "buildx", "build", "-q", "--platform", "linux/amd64,linux/arm64",
                "--network", "none", "-t", f"{repo}:bx{i}", "--push", d)))
        id, state = provider.create(IMAGE, checked)
        diff = statistics.median(timed(lambda: provider.diff(IMAGE, id, state, checked)) for _ in range(RUNS))
    print(f"\nImage build + push, two platforms (amd64 + arm64 under QEMU), median of {RUNS}")
    print(f"  multiarch                          {statistics.median(ours):8.3f} s")
    print(f"  docker buildx build --push         {statistics.median(theirs):8.3f} s"
          f"   ratio {statistics.median(ours) / statistics.median(theirs):.2f}")
    print(f"  no-change Diff (small context)     {diff * 1000:8.1f} ms")

    big = os.environ.get("BENCH_BIG_CONTEXT", "/var/tmp/multiarch-bench-context")
    print(f"\npreparing the 1 GiB, 50,000-file context in {big} ...", flush=True)
    make_big_context(big)
    inputs = {"context": {"location": big}, "platforms": ["linux/amd64"], "tags": [f"{repo}:big"], "push": False}
    checked = provider.check(IMAGE, inputs)[0]
    state = dict(checked, contextHash="sha256:0")
    sha = "find . -type f -print0 | xargs -0 sha256sum > /dev/null"
    warm_sha = statistics.median(timed(lambda: subprocess.run(sha, shell=True, cwd=big, check=True)) for _ in range(3))
    warm_ours = statistics.median(timed(lambda: provider.diff(IMAGE, "big", state, checked)) for _ in range(3))
    print("contextHash of 1 GiB / 50,000 files (warm page cache, median of 3)")
    print(f"  multiarch (no-change Diff RPC)     {warm_ours:8.3f} s")
    print(f"  find | xargs sha256sum             {warm_sha:8.3f} s   ratio {warm_ours / warm_sha:.2f}")


def main():
    world = testenv()
    os.environ.update({k: v for k, v in world.items() if k.startswith("AWS_") or k == "SSL_CERT_FILE"})
    engine = FakeEngine()
    provider = Provider(engine)
    provider.handshake()
    provider.configure({"registries": [{"address": world["PLAIN_REGISTRY"], "insecure": True}]})
    results = []
    try:
        for title, registry, logfile, insecure in [
            ("ECR look-alike (TLS + IAM token auth)", world["ECR_REGISTRY"], world["ECR_REGISTRY_LOG"], False),
            ("plain registry (HTTP, no auth)", world["PLAIN_REGISTRY"], world["PLAIN_REGISTRY_LOG"], True),
        ]:
            results.append((title, bench_registry(provider, registry, RegistryLog(logfile), insecure)))
        if os.environ.get("BENCH_IMAGE", "1") == "1":
            bench_image(provider, world)
    finally:
        provider.close()
        engine.stop()

    for title, rows in results:
        print(f"\nManifestList create, median of {RUNS} runs, {title}")
        print(f"{'sources':>7}  {'tool':<30} {'wall s':>8} {'requests':>9}  {'vs imagetools':>13}")
        for n in (2, 8):
            it = next(r for r in rows if r[0] == n and r[1].startswith("buildx"))
            for r in (r for r in rows if r[0] == n):
                print(f"{n:>7}  {r[1]:<30} {r[2]:>8.3f} {r[3]:>9.0f}  {r[2] / it[2]:>12.2f}x")


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as e:
        print(e.stderr or e.stdout, file=sys.stderr)
        raise

"""Start-up cost of the plugin binary, as the Pulumi engine sees it (part of `make bench`):

- start-up: exec until the port line on stdout;
- idle RSS: resident memory 0.5 s after the port line;
- Configure: the first Configure RPC (plain-registry entry);
- first Check: the first Check RPC that parses image references (a ManifestList with one tag
  and two sources; Check reads nothing from a registry), and the second one for comparison.

Each figure is min / median / max over BENCH_RUNS fresh processes (default 5).
Usage: startup.py [BINARY]   (default: $MULTIARCH_PROVIDER_BIN or target/debug)"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

import grpc  # noqa: E402
from harness import ML, FakeEngine, to_struct  # noqa: E402
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "5"))


def load() -> str:
    return "load %.2f" % os.getloadavg()[0]


def spread(xs: list[float], unit: str = "ms", scale: float = 1000.0) -> str:
    return (f"{min(xs) * scale:7.1f} / {statistics.median(xs) * scale:7.1f} / "
            f"{max(xs) * scale:7.1f} {unit}")


def one(binary: str, engine: FakeEngine) -> dict:
    t0 = time.perf_counter()
    p = subprocess.Popen([binary, engine.address], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        port = p.stdout.readline().decode().strip()
        started = time.perf_counter() - t0
        time.sleep(0.5)
        rss = 0
        with open(f"/proc/{p.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS"):
                    rss = int(line.split()[1]) * 1024
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=10)
        stub = provider_pb2_grpc.ResourceProviderStub(channel)
        stub.Handshake(provider_pb2.ProviderHandshakeRequest(engine_address=engine.address))
        t = time.perf_counter()
        stub.Configure(provider_pb2.ConfigureRequest(
            args=to_struct({"registries": [{"address": "127.0.0.1:5000", "insecure": True}]}),
            acceptSecrets=True, acceptResources=True))
        configure = time.perf_counter() - t
        checks = []
        for i in range(2):
            news = {"tags": [f"127.0.0.1:5000/startup/app:v{i}"],
                    "sources": [f"127.0.0.1:5000/startup/app:amd64-{i}",
                                f"123456789012.dkr.ecr.us-east-1.amazonaws.com/startup/app@sha256:{'0' * 64}"]}
            t = time.perf_counter()
            resp = stub.Check(provider_pb2.CheckRequest(
                urn=f"urn:pulumi:bench::startup::{ML}::r{i}", type=ML, name=f"r{i}",
                olds=to_struct({}), news=to_struct(news)))
            checks.append(time.perf_counter() - t)
            assert not resp.failures, resp.failures
        channel.close()
        return {"start": started, "rss": rss, "configure": configure,
                "check1": checks[0], "check2": checks[1]}
    finally:
        p.terminate()
        p.wait()


def main_for(binary: str, engine: FakeEngine, n: int = RUNS) -> None:
    runs = [one(binary, engine) for _ in range(n)]
    col = lambda k: [r[k] for r in runs]  # noqa: E731
    rss = [r["rss"] / (1 << 20) for r in runs]
    print(f"\n== start-up of {binary} ({load()}); min / median / max of {n} processes")
    print(f"  start-up to port line          {spread(col('start'))}")
    print(f"  idle RSS                       {min(rss):7.1f} / {statistics.median(rss):7.1f} / {max(rss):7.1f} MiB")
    print(f"  first Configure                {spread(col('configure'))}")
    print(f"  first Check (parses refs)      {spread(col('check1'))}")
    print(f"  second Check                   {spread(col('check2'))}", flush=True)


def main() -> None:
    binary = (sys.argv[1] if len(sys.argv) > 1 else None) or os.environ.get(
        "MULTIARCH_PROVIDER_BIN", "target/debug/pulumi-resource-multiarch")
    engine = FakeEngine()
    try:
        main_for(binary, engine)
    finally:
        engine.stop()


if __name__ == "__main__":
    main()

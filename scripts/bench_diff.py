"""`make bench` section `diff`: the no-change Diff of a ManifestList of BENCH_DIFF_SOURCES (64)
source tags on the ECR look-alike: what `pulumi preview` pays for it with a fresh plugin
(process start + Handshake + Configure + Check + Diff: the AWS token and one HEAD per source)
and on a warm plugin (Diff only, its connection kept), against `curl --http2 --parallel
--parallel-max 16` sending the same HEADs with the same credentials (read from a config file
in the bench's temporary directory, never on a command line).

Every client goes through a TCP proxy in front of the registry (tests/tcpproxy.py, TLS end to
end; the certificate names the ECR host, /etc/hosts points it at loopback, the proxy gives
the port): once with no delay (the idle registry) and once adding 10 ms to each direction,
every chunk held 10 ms before it is passed on (a 20 ms round trip, throughput untouched).
Rows behind the delay also say the round trips (time / 20 ms), and the section ends with
the round trips the delay added (the difference of the medians: the registry checks a bcrypt
password on every request, which no client avoids and which dominates on a busy machine).
Each row says the connections the proxy accepted per run. The ECR token comes from moto,
not delayed."""

from __future__ import annotations

import os
import statistics
import subprocess
import time

from harness import DIFF_NONE, ML
from tcpproxy import TcpProxy

N = int(os.environ.get("BENCH_DIFF_SOURCES", "64"))
RTT = 0.020
ACCEPT = ("application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
          "application/vnd.docker.distribution.manifest.list.v2+json, "
          "application/vnd.docker.distribution.manifest.v2+json")


def curl_config(w, proxy: TcpProxy, host: str, repo: str) -> str:
    """A curl config file: the credentials, the test CA, 64 HEADs (mode 0600, in w.tmp)."""
    path = os.path.join(w.tmp, f"curl-diff-{proxy.port}.conf")
    lines = [f'user = "{w.ecr_user}:{w.ecr_password}"', f'cacert = "{w.env["TEST_CA_CERT"]}"',
             "head", "fail", "http2", "parallel", "parallel-max = 16",
             f'header = "Accept: {ACCEPT}"']
    for i in range(N):
        lines += [f'url = "https://{host}/v2/{repo}/manifests/src{i}"', 'output = "/dev/null"']
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def extra(times: list[float], conns: list[int], delayed: bool) -> str:
    c = sorted(set(conns))
    text = f"connections/run {c[0]}" + (f"-{c[-1]}" if len(c) > 1 else "")
    if delayed:
        rt = [t / RTT for t in times]
        text += f"; round trips {min(rt):.1f} / {statistics.median(rt):.1f} / {max(rt):.1f}"
    return text


def bench_diff(w, bench) -> None:
    with open(w.env["ECR_PASSWORD_FILE"]) as f:
        w.ecr_password = f.read().strip()
    w.ecr_user = w.env["ECR_USERNAME"]
    repo = f"bench-{bench.TAG}/diff{N}"
    bench.ml_sources(w, w.ecr, repo, N)
    medians = []
    for delay in (0.0, RTT / 2):
        proxy = TcpProxy("127.0.0.1:443", delay=delay)
        try:
            medians.append(one_setting(w, bench, proxy, repo, delay > 0))
        finally:
            proxy.stop()
    # The registry's own work (a bcrypt check per request) is in both settings: the
    # difference of the medians is what the round trips cost.
    print("  round trips the 20 ms delay added (median behind it - median idle, / 20 ms):", flush=True)
    for name, idle in medians[0].items():
        print(f"    {name:<40} {(medians[1][name] - idle) / RTT:5.1f}", flush=True)


def one_setting(w, bench, proxy: TcpProxy, repo: str, delayed: bool) -> dict:
    host = f"{w.env['ECR_REGISTRY']}:{proxy.port}"
    inputs = {"tags": [f"{host}/{repo}:index"],
              "sources": [f"{host}/{repo}:src{i}" for i in range(N)]}
    warm = w.cold()
    checked = warm.check(ML, inputs)[0]
    id, state = warm.create(ML, checked)
    where = "behind a 20 ms round trip (10 ms each way)" if delayed else "idle registry, no delay"
    bench.header(f"ManifestList no-change Diff, {N} sources, ECR look-alike, {where}")

    def measured(fn) -> tuple[list[float], list[int]]:
        times, conns = [], []
        for _ in range(bench.RUNS):
            before = proxy.connections
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
            conns.append(proxy.connections - before)
        return times, conns

    def fresh():
        p = w.cold()
        try:
            d = p.diff(ML, id, state, p.check(ML, inputs, olds=checked)[0])
        finally:
            p.close()
        if d.changes != DIFF_NONE:
            raise RuntimeError(f"the no-change Diff found changes: {d}")

    def warm_diff():
        if warm.diff(ML, id, state, checked).changes != DIFF_NONE:
            raise RuntimeError("the no-change Diff found changes")

    conf = curl_config(w, proxy, host, repo)

    def curl():
        p = subprocess.run(["curl", "-sS", "-K", conf], capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"curl: exit {p.returncode}: {p.stderr[-500:]}")

    try:
        warm_diff()  # its connection and token exist before the warm rows
        curl()
        rows = [("multiarch Diff, fresh plugin (preview)", fresh),
                ("multiarch Diff, warm plugin", warm_diff),
                ("curl --http2 --parallel-max 16, 64 HEADs", curl)]
        results = [(name, *measured(fn)) for name, fn in rows]
    finally:
        warm.close()
    curl_median = statistics.median(results[-1][1])
    for name, times, conns in results:
        ratio = "" if name.startswith("curl") else \
            f"ours/curl {statistics.median(times) / curl_median:4.2f}x; "
        bench.row(name, times, extra=ratio + extra(times, conns, delayed), unit="ms")
    return {name: statistics.median(times) for name, times, _ in results}

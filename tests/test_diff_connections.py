"""The no-change Diff of a ManifestList with 64 sources, on the wire: a fresh plugin (as
`pulumi preview` starts it) looks the 64 source tags up over one connection to the registry,
as HTTP/2 streams. The registry is the ECR look-alike (TLS, ALPN offers h2 and http/1.1),
reached through a counting TCP proxy (tests/tcpproxy.py; TLS stays end to end, the
certificate names the ECR host, which /etc/hosts points at loopback, so the registry address
is the ECR host with the proxy's port). The registry's access log says which HTTP version
each request came in."""

import os
import re
import sys

from harness import DIFF_NONE, ML, Provider, unique
from tcpproxy import TcpProxy

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
from bench import ml_sources  # noqa: E402
from bench_registry import Registry  # noqa: E402

N = 64
HEAD = re.compile(r'"HEAD /v2/(\S+)/manifests/(\S+) (HTTP/[\d.]+)"')


def ecr_registry(world) -> Registry:
    with open(world["ECR_PASSWORD_FILE"]) as f:
        password = f.read().strip()
    return Registry(world["ECR_REGISTRY"], tls=True, user=world["ECR_USERNAME"], password=password)


def test_no_change_diff_of_64_sources_is_one_http2_connection(engine, provider_env, world, ecr_log):
    os.environ.setdefault("TEST_CA_CERT", world["TEST_CA_CERT"])
    repo = unique("diffconn")
    ml_sources(None, ecr_registry(world), repo, N)
    proxy = TcpProxy("127.0.0.1:443")
    host = f"{world['ECR_REGISTRY']}:{proxy.port}"
    inputs = {"tags": [f"{host}/{repo}:index"],
              "sources": [f"{host}/{repo}:src{i}" for i in range(N)]}
    try:
        p = Provider(engine, env=provider_env)
        try:
            p.handshake()
            p.configure({})
            checked = p.check(ML, inputs)[0]
            id, state = p.create(ML, checked)
        finally:
            p.close()
        assert len(state["sourceDigests"]) == N

        before = proxy.connections
        ecr_log.mark()
        q = Provider(engine, env=provider_env)
        try:
            q.handshake()
            q.configure({})
            news = q.check(ML, inputs, olds=checked)[0]
            d = q.diff(ML, id, state, news)
        finally:
            q.close()
        assert d.changes == DIFF_NONE, d
        assert proxy.connections - before == 1, f"{proxy.connections - before} connections"
        heads = [m.groups() for m in map(HEAD.search, ecr_log.requests()) if m and m[1] == repo]
        assert sorted(tag for _, tag, _ in heads) == sorted(f"src{i}" for i in range(N))
        assert {version for _, _, version in heads} == {"HTTP/2.0"}
    finally:
        proxy.stop()

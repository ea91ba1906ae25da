"""A standalone buildkitd over tcp:// with mutual TLS (`builder` + `builderTls`), driven as the
engine drives the provider.

There is no buildkitd package on this machine kind, so the Engine's own BuildKit stands in for
one: `EngineAsBuildkitd` terminates TLS as `buildkitd --tlscacert --tlscert --tlskey` does
(client certificate required, ALPN h2) and splices each connection onto a `POST /grpc` h2c
upgrade of the Engine socket. Everything on the provider's side (its gRPC client, TLS, the
session tunnelled through Control.Session, file sync) meets real BuildKit."""

import asyncio
import os
import ssl
import subprocess
import threading

import pytest

from harness import IMAGE, UNKNOWN, raw_manifest, secret, to_struct, unique
from pulumi.runtime.proto import provider_pb2


class EngineAsBuildkitd:
    def __init__(self, docker_socket: str, certs: dict):
        self.docker_socket = docker_socket
        self.handshakes: list[dict] = []
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certs["server.pem"], certs["server.key"])
        ctx.load_verify_locations(certs["ca.pem"])
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.set_alpn_protocols(["h2"])
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def start():
            self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=ctx)
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()

        self.thread = threading.Thread(
            target=lambda: (self.loop.run_until_complete(start()), self.loop.run_forever()),
            daemon=True,
        )
        self.thread.start()
        assert ready.wait(10), "the TLS listener did not start"

    async def _serve(self, reader, writer):
        tls = writer.get_extra_info("ssl_object")
        self.handshakes.append(
            {"alpn": tls.selected_alpn_protocol(), "client": dict(x[0] for x in tls.getpeercert()["subject"])}
        )
        er, ew = await asyncio.open_unix_connection(self.docker_socket)
        ew.write(b"POST /grpc HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
                 b"Content-Length: 0\r\n\r\n")
        head = await er.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            writer.close()
            return

        async def pipe(r, w):
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
                pass
            finally:
                w.close()

        await asyncio.gather(pipe(reader, ew), pipe(er, writer))

    def close(self):
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA, a server certificate for buildkitd.test and a client certificate."""
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=multiarch test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    for name, cn, usage in [("server", "buildkitd.test", "serverAuth"), ("client", "ci-runner", "clientAuth")]:
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
        (d / f"{name}.ext").write_text(f"subjectAltName=DNS:{cn}\nextendedKeyUsage={usage}\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    return {f: str(d / f) for f in os.listdir(d)}


@pytest.fixture
def buildkitd(world, certs):
    socket = world.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://")
    b = EngineAsBuildkitd(socket, certs)
    yield b
    b.close()


def read(path):
    with open(path) as f:
        return f.read()


def tls_config(certs, **override):
    cfg = {
        "caCert": read(certs["ca.pem"]),
        "cert": read(certs["client.pem"]),
        "key": secret(read(certs["client.key"])),
        "serverName": "buildkitd.test",
    }
    cfg.update(override)
    return cfg


def test_image_built_on_a_tls_buildkitd(engine, provider_env, world, certs, buildkitd, tmp_path):
    from harness import Provider

    key = read(certs["client.key"])
    p = Provider(engine, env=provider_env)
    try:
        p.handshake()
        p.configure({
            "builder": f"tcp://127.0.0.1:{buildkitd.port}",
            "builderTls": tls_config(certs),
            "registries": [{"address": world["PLAIN_REGISTRY"], "insecure": True}],
        })
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        marker = unique("m")
        (ctx / "Dockerfile").write_text("FROM scratch\nARG TARGETARCH\nCOPY marker /marker\nLABEL arch=$TARGETARCH\n")
        (ctx / "marker").write_text(marker)
        repo = f"{world['PLAIN_REGISTRY']}/{unique('tlsbk')}"
        inputs = {"context": {"location": str(ctx)}, "platforms": ["linux/arm64", "linux/amd64"],
                  "tags": [f"{repo}:v1"]}
        checked, failures = p.check(IMAGE, inputs)
        assert failures == []

        _, preview = p.create(IMAGE, checked, preview=True)  # the preview build goes there too
        assert preview["digest"] == UNKNOWN
        id, state = p.create(IMAGE, checked)
        index = raw_manifest(f"{repo}:v1", insecure=True)
        platforms = sorted(f"{m['platform']['os']}/{m['platform']['architecture']}" for m in index["manifests"])
        assert platforms == ["linux/amd64", "linux/arm64"]
        assert state["ref"].endswith(state["digest"])

        assert buildkitd.handshakes, "the build did not go through the TLS buildkitd"
        for h in buildkitd.handshakes:
            assert h == {"alpn": "h2", "client": {"commonName": "ci-runner"}}
        key_body = key.splitlines()[1]
        for where, text in [("stderr", p.stderr()), ("engine log", "\n".join(engine.messages())),
                            ("state", repr(state))]:
            assert key_body not in text, f"the client key leaked into the {where}"
    finally:
        p.close()


@pytest.mark.parametrize("config,property,reason", [
    ({"builder": "ssh://somewhere"}, "builder", "expected"),
    ({"builder": "unix:///run/buildkit/buildkitd.sock", "builderTls": {}}, "builderTls", "tcp://"),
    ({"builder": "tcp://b:1234", "builderTls": {"caCert": "not a certificate"}},
     "builderTls.caCert", "no PEM certificate"),
    ({"builder": "tcp://b:1234", "builderTls": {"key": secret("-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n")}},
     "builderTls.cert", "required"),
    ({"builder": "tcp://b:1234", "builderTls": {"serverName": "not a name!"}},
     "builderTls.serverName", "not a host name"),
])
def test_bad_builder_settings_fail_check_config(bare_provider, config, property, reason):
    resp = bare_provider.stub.CheckConfig(provider_pb2.CheckRequest(news=to_struct(config)))
    failures = [(f.property, f.reason) for f in resp.failures]
    assert len(failures) == 1 and failures[0][0] == property and reason in failures[0][1], failures
    assert "c2VjcmV0" not in failures[0][1]


def test_tls_buildkitd_refusing_the_client_is_a_clear_error(engine, provider_env, world, certs, buildkitd, tmp_path):
    from harness import Provider

    p = Provider(engine, env=provider_env)
    try:
        p.handshake()
        no_client_cert = tls_config(certs)
        del no_client_cert["cert"], no_client_cert["key"]
        p.configure({"builder": f"tcp://127.0.0.1:{buildkitd.port}", "builderTls": no_client_cert})
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text("FROM scratch\n")
        checked, _ = p.check(IMAGE, {"context": {"location": str(ctx)}, "push": False, "platforms": ["linux/amd64"]})
        with pytest.raises(Exception) as err:
            p.create(IMAGE, checked)
        assert "buildkitd refused the TLS connection" in str(err.value)
        assert "no client certificate was offered: set builderTls.cert" in str(err.value)
    finally:
        p.close()

"""Drives the built provider binary exactly as the Pulumi engine does, with Pulumi's own
generated gRPC stubs: a fake Engine service records Log calls, the plugin is started with
the engine's flags and address, its port is read from stdout."""

from __future__ import annotations

import asyncio
import json
import os
import re
import ssl
import subprocess
import tempfile
import threading
import uuid
from concurrent import futures
from pathlib import Path

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import engine_pb2_grpc, provider_pb2, provider_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
SIG = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
OUTPUT_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
ML = "multiarch:index:ManifestList"
IMAGE = "multiarch:index:Image"

DIFF_NONE = provider_pb2.DiffResponse.DIFF_NONE
DIFF_SOME = provider_pb2.DiffResponse.DIFF_SOME


def secret(v):
    return {SIG: SECRET_SIG, "value": v}


def to_struct(d: dict | None) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    if d:
        json_format.ParseDict(d, s)
    return s


def from_struct(s: struct_pb2.Struct) -> dict:
    return json_format.MessageToDict(s)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def testenv() -> dict:
    """The test world's env file, written by scripts/testenv.sh."""
    state = os.environ.get("MULTIARCH_TESTENV_STATE", "/var/lib/multiarch-testenv")
    env = {}
    with open(os.path.join(state, "env")) as f:
        for line in f:
            line = line.strip()
            if line.startswith("export ") and "=" in line:
                k, v = line.removeprefix("export ").split("=", 1)
                env[k] = v
    return env


class FakeEngine(engine_pb2_grpc.EngineServicer):
    def __init__(self):
        self.logs = []
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        engine_pb2_grpc.add_EngineServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def Log(self, request, context):
        self.logs.append(request)
        return empty_pb2.Empty()

    def GetRootResource(self, request, context):
        from pulumi.runtime.proto import engine_pb2

        return engine_pb2.GetRootResourceResponse(urn="")

    def SetRootResource(self, request, context):
        from pulumi.runtime.proto import engine_pb2

        return engine_pb2.SetRootResourceResponse()

    def messages(self) -> list[str]:
        return [l.message for l in self.logs]

    def saw(self, text: str, timeout: float = 5.0) -> bool:
        """Log calls travel asynchronously: wait a little for one containing `text`."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in m for m in self.messages()):
                return True
            time.sleep(0.05)
        return False

    def stop(self):
        self.server.stop(0)


EMPTY_DOCKER_CONFIG = tempfile.mkdtemp(prefix="multiarch-no-docker-config-")


def binary() -> str:
    return os.environ.get(
        "MULTIARCH_PROVIDER_BIN", str(ROOT / "target" / "debug" / "pulumi-resource-multiarch")
    )


class Provider:
    """One plugin process, as the engine starts it."""

    def __init__(self, engine: FakeEngine, env: dict | None = None, log_path: Path | None = None):
        self.engine = engine
        full_env = dict(os.environ)
        # The machine's own Docker config holds `docker login` credentials for the ECR
        # look-alike (the test world logs in): a provider that fell back to them would hide
        # what a test sets up. Tests of Docker's config pass their own DOCKER_CONFIG.
        full_env["DOCKER_CONFIG"] = EMPTY_DOCKER_CONFIG
        full_env.update(env or {})
        self.stderr_path = log_path or Path(f"/tmp/{unique('provider')}.stderr")
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [binary(), "--logtostderr", "-v=9", engine.address],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=full_env,
        )
        line = self.proc.stdout.readline().decode().strip()
        assert line.isdigit(), f"first stdout line should be the port, got {line!r}"
        self.port = int(line)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        grpc.channel_ready_future(self.channel).result(timeout=10)
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)

    def urn(self, ty: str, name: str) -> str:
        return f"urn:pulumi:test::multiarch-tests::{ty}::{name}"

    # The engine's call sequence, one method per RPC.
    def handshake(self):
        return self.stub.Handshake(
            provider_pb2.ProviderHandshakeRequest(
                engine_address=self.engine.address, root_directory=str(ROOT), program_directory=str(ROOT)
            )
        )

    def configure(self, config: dict | None = None):
        return self.stub.Configure(
            provider_pb2.ConfigureRequest(
                args=to_struct(config or {}), acceptSecrets=True, acceptResources=True
            )
        )

    def check(self, ty: str, news: dict, olds: dict | None = None, name: str = "r"):
        resp = self.stub.Check(
            provider_pb2.CheckRequest(
                urn=self.urn(ty, name), type=ty, name=name, olds=to_struct(olds), news=to_struct(news)
            )
        )
        return from_struct(resp.inputs), [(f.property, f.reason) for f in resp.failures]

    def diff(self, ty: str, id: str, olds: dict, news: dict, name: str = "r"):
        return self.stub.Diff(
            provider_pb2.DiffRequest(
                id=id, urn=self.urn(ty, name), type=ty, name=name, olds=to_struct(olds), news=to_struct(news)
            )
        )

    def create(self, ty: str, props: dict, preview: bool = False, name: str = "r"):
        resp = self.stub.Create(
            provider_pb2.CreateRequest(
                urn=self.urn(ty, name), type=ty, name=name, properties=to_struct(props), preview=preview
            ),
            timeout=600,
        )
        return resp.id, from_struct(resp.properties)

    def read(self, ty: str, id: str, props: dict | None = None, inputs: dict | None = None, name: str = "r"):
        resp = self.stub.Read(
            provider_pb2.ReadRequest(
                id=id, urn=self.urn(ty, name), type=ty, name=name,
                properties=to_struct(props), inputs=to_struct(inputs),
            )
        )
        return resp.id, from_struct(resp.properties), from_struct(resp.inputs)

    def update(self, ty: str, id: str, olds: dict, news: dict, preview: bool = False, name: str = "r"):
        resp = self.stub.Update(
            provider_pb2.UpdateRequest(
                id=id, urn=self.urn(ty, name), type=ty, name=name,
                olds=to_struct(olds), news=to_struct(news), preview=preview,
            ),
            timeout=600,
        )
        return from_struct(resp.properties)

    def delete(self, ty: str, id: str, props: dict, name: str = "r"):
        self.stub.Delete(
            provider_pb2.DeleteRequest(id=id, urn=self.urn(ty, name), type=ty, name=name, properties=to_struct(props)),
            timeout=600,
        )

    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def close(self):
        self.channel.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._stderr.close()


class RegistryLog:
    """Counts write requests in a registry's access log from a mark on."""

    WRITE = re.compile(r'"(PUT|POST|PATCH|DELETE) /v2/')

    def __init__(self, path: str):
        self.path = path
        self.offset = 0

    def mark(self):
        self.offset = os.path.getsize(self.path)

    def writes(self) -> list[str]:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            text = f.read().decode(errors="replace")
        return [l for l in text.splitlines() if self.WRITE.search(l)]

    def requests(self) -> list[str]:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            text = f.read().decode(errors="replace")
        return [l for l in text.splitlines() if '"' in l and " /v2/" in l and "HTTP/" in l]


def run(*args, check=True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=check, capture_output=True, text=True, **kw)


def raw_manifest(ref: str, insecure: bool = False) -> dict:
    args = ["skopeo", "inspect", "--raw"]
    if insecure:
        args.append("--tls-verify=false")
    return json.loads(run(*args, f"docker://{ref}").stdout)


def skopeo_copy(src: str, dst: str, *extra: str):
    tls = []
    if src.startswith("127.0.0.1:"):
        tls.append("--src-tls-verify=false")
    if dst.startswith("127.0.0.1:"):
        tls.append("--dest-tls-verify=false")
    run("skopeo", "copy", "--quiet", *tls, *extra, f"docker://{src}", f"docker://{dst}")


def pulled_digest(ref: str, arch: str) -> str:
    """The digest of the manifest a client on `linux/<arch>` pulls for `ref`."""
    import hashlib
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        tls = ["--src-tls-verify=false"] if ref.startswith("127.0.0.1:") else []
        run("skopeo", "copy", "--quiet", *tls, "--override-os", "linux", "--override-arch", arch,
            f"docker://{ref}", f"dir:{d}")
        with open(os.path.join(d, "manifest.json"), "rb") as f:
            return "sha256:" + hashlib.sha256(f.read()).hexdigest()


# ---- the test world's standalone buildkitd ---------------------------------------------------
# scripts/testenv.sh builds buildkitd and buildctl from BuildKit's Go module (scripts/buildkit.sh)
# and runs it on tcp://127.0.0.1 with mutual TLS (server certificate for buildkitd.test, client
# certificate CN ci-runner, both signed by the test CA). `WorldBuildkitd` gives its address,
# the client's files, buildctl with those flags, and the daemon's build history: the record of
# every build it ran (frontend attributes, exporters, exporter response).

class WorldBuildkitd:
    def __init__(self, world: dict):
        self.addr = world["BUILDKITD_ADDR"]
        self.port = int(self.addr.rsplit(":", 1)[1])
        self.server_name = world["BUILDKITD_SERVER_NAME"]
        self.buildctl_bin = world["BUILDCTL"]
        self.log = world["BUILDKITD_LOG"]
        # The key names make_test_pki uses, so tests can take either.
        self.certs = {
            "ca.pem": world["BUILDKITD_CA_CERT"],
            "client.pem": world["BUILDKITD_CLIENT_CERT"],
            "client.key": world["BUILDKITD_CLIENT_KEY"],
        }

    def tls_args(self) -> list[str]:
        return ["--addr", self.addr, "--tlsservername", self.server_name,
                "--tlscacert", self.certs["ca.pem"], "--tlscert", self.certs["client.pem"],
                "--tlskey", self.certs["client.key"]]

    def buildctl(self, *args: str, check=True, **kw) -> subprocess.CompletedProcess:
        return run(self.buildctl_bin, *self.tls_args(), *args, check=check, **kw)

    def history(self) -> list[dict]:
        """Every build record the daemon keeps (newest last), fetched over mutual TLS."""
        out = self.buildctl("debug", "histories", "--format", "{{json .}}", timeout=60).stdout
        records = []
        for line in out.splitlines():
            if line.strip():
                ev = json.loads(line)
                rec = ev.get("record") or ev.get("Record")
                if rec:
                    records.append(rec)
        return records

    @staticmethod
    def result_digests(record: dict) -> list[str]:
        """The digests of what a recorded build produced (for an image export: the pushed index
        or manifest)."""
        res = record.get("Result") or {}
        descs = list((res.get("Results") or {}).values()) + [res.get("ResultDeprecated") or {}]
        return sorted({d["digest"] for d in descs if d.get("digest")})

    def builds_exporting(self, name_part: str) -> list[dict]:
        """The records of builds whose image exporter was given a name containing `name_part`."""
        found = []
        for rec in self.history():
            names = [e.get("Attrs", e.get("attrs", {})).get("name", "")
                     for e in rec.get("Exporters", rec.get("exporters", [])) or []]
            if any(name_part in n for n in names):
                found.append(rec)
        return found


# ---- a buildkitd stand-in, the Engine's BuildKit behind a TLS splice -------------------------
# `EngineAsBuildkitd` terminates TLS as `buildkitd --tlscacert --tlscert --tlskey` does (client
# certificate required, ALPN h2) and splices each connection onto a `POST /grpc` h2c upgrade of
# the Engine socket. Builds against a buildkitd use the real one above; this splice is how
# `engine_build_history` lets buildctl read an Engine's own build records.

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



def make_test_pki(d: Path) -> dict:
    """A CA, a server certificate for buildkitd.test and a client certificate (CN ci-runner)."""
    d.mkdir(parents=True, exist_ok=True)
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


_ENGINE_HISTORY_PKI: dict = {}


def engine_build_history(world: dict, docker_host: str) -> list[dict]:
    """The build records of a Docker Engine's own BuildKit (`docker_host` = unix://...): the
    test world's buildctl reads them through an `EngineAsBuildkitd` splice onto that Engine.
    Each record has `FrontendAttrs` (`platform`, `build-arg:*`, ...) and `Result` (what the
    build produced: for a push, the pushed manifest or index); `WorldBuildkitd.result_digests`
    reads the latter."""
    import tempfile

    if not _ENGINE_HISTORY_PKI:
        _ENGINE_HISTORY_PKI.update(make_test_pki(Path(tempfile.mkdtemp(prefix="engine-history-pki-"))))
    certs = _ENGINE_HISTORY_PKI
    splice = EngineAsBuildkitd(docker_host.removeprefix("unix://"), certs)
    try:
        out = run(world["BUILDCTL"], "--addr", f"tcp://127.0.0.1:{splice.port}",
                  "--tlsservername", "buildkitd.test", "--tlscacert", certs["ca.pem"],
                  "--tlscert", certs["client.pem"], "--tlskey", certs["client.key"],
                  "debug", "histories", "--format", "{{json .}}", timeout=60).stdout
    finally:
        splice.close()
    return [json.loads(l)["record"] for l in out.splitlines() if l.strip() and '"record"' in l]


def docker_socket(world: dict) -> str:
    return world.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://")

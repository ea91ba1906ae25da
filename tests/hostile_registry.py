"""A hostile registry for the test world: loopback only, stopped by its fixture (and by
itself after `lifetime` seconds). It speaks just enough of the distribution API for a client
to try reading a manifest; the first path segment of the repository picks the behaviour:

  huge-length/…   a manifest of `huge` bytes with an honest Content-Length (HEAD: no
                  Docker-Content-Digest, so a client has to GET it)
  huge-chunked/…  the same without a length (chunked transfer encoding)
  trickle/…       a manifest sent one byte a second
  lying/…         the same small manifest whatever digest is asked for
  redirect/…      307 to `redirect_to` (another host), which records what it was sent
  bearer/…        token auth: 401 with a Bearer challenge naming `/token` here, which
                  answers TOKEN (`token_requests` records each query and Authorization);
                  with the token, a small amd64 image (manifest and config)
  anything else   404

`served[behaviour]` counts the body bytes written (until the client hung up);
`auth_seen` records the Authorization header of every request (None when absent).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": []}}).encode()
CONFIG_DIGEST = "sha256:" + hashlib.sha256(CONFIG).hexdigest()
SMALL = json.dumps({
    "schemaVersion": 2, "mediaType": OCI_MANIFEST,
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": CONFIG_DIGEST, "size": len(CONFIG)},
    "layers": [],
}).encode()
TOKEN = "hostile-token"


class _Server:
    """A threaded HTTP/1.1 server on `host`, handling every request with `handle`."""

    def __init__(self, host: str, handle, lifetime: float):
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _any(self):
                handle(self)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _any

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.address = f"{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.timer = threading.Timer(lifetime, self.stop)
        self.timer.daemon = True
        self.timer.start()

    def stop(self):
        self.timer.cancel()
        self.server.shutdown()
        self.server.server_close()


class RecordingServer:
    """Another host (127.0.0.2): records each request's Authorization header, answers 404."""

    def __init__(self, lifetime: float = 300.0):
        self.auth_seen: list[str | None] = []
        self._srv = _Server("127.0.0.2", self._handle, lifetime)
        self.address = self._srv.address

    def _handle(self, h: BaseHTTPRequestHandler):
        self.auth_seen.append(h.headers.get("Authorization"))
        body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"not here"}]}'
        h.send_response(404)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    def stop(self):
        self._srv.stop()


class HostileRegistry:
    def __init__(self, huge: int = 300 * 1024 * 1024, redirect_to: str | None = None,
                 lifetime: float = 300.0):
        self.huge = huge
        self.redirect_to = redirect_to
        self.served: dict[str, int] = {}
        self.auth_seen: list[str | None] = []
        self.token_requests: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._srv = _Server("127.0.0.1", self._handle, lifetime)
        self.address = self._srv.address

    def _count(self, what: str, n: int):
        with self.lock:
            self.served[what] = self.served.get(what, 0) + n

    def _handle(self, h: BaseHTTPRequestHandler):
        with self.lock:
            self.auth_seen.append(h.headers.get("Authorization"))
        path = h.path.split("?", 1)[0]
        if path in ("/v2/", "/v2"):
            return self._small(h, 200, b"{}")
        if path == "/token":
            with self.lock:
                self.token_requests.append((h.path, h.headers.get("Authorization")))
            return self._small(h, 200, json.dumps({"token": TOKEN, "expires_in": 300}).encode())
        parts = path.removeprefix("/v2/").split("/")
        behaviour = parts[0]
        if behaviour == "bearer":
            return self._bearer(h, parts)
        if "manifests" not in parts:
            return self._small(h, 404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"no"}]}')
        head = h.command == "HEAD"
        try:
            if behaviour in ("huge-length", "huge-chunked"):
                self._huge(h, behaviour, head)
            elif behaviour == "trickle":
                self._trickle(h, head)
            elif behaviour == "lying":
                self._small(h, 200, SMALL, OCI_MANIFEST)
            elif behaviour == "redirect" and self.redirect_to:
                h.send_response(307)
                h.send_header("Location", f"http://{self.redirect_to}{h.path}")
                h.send_header("Content-Length", "0")
                h.end_headers()
            else:
                self._small(h, 404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"no"}]}')
        except (BrokenPipeError, ConnectionResetError, OSError):
            h.close_connection = True

    def _bearer(self, h, parts: list[str]):
        if h.headers.get("Authorization") != f"Bearer {TOKEN}":
            h.send_response(401)
            h.send_header("WWW-Authenticate",
                          f'Bearer realm="http://{self.address}/token",service="hostile"')
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        if "manifests" in parts:
            return self._small(h, 200, SMALL, OCI_MANIFEST)
        if parts[-1] == CONFIG_DIGEST:
            return self._small(h, 200, CONFIG, "application/octet-stream")
        return self._small(h, 404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"no"}]}')

    def _small(self, h, code: int, body: bytes, ctype: str = "application/json"):
        h.send_response(code)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    def _huge(self, h, behaviour: str, head: bool):
        h.send_response(200)
        h.send_header("Content-Type", OCI_MANIFEST)
        chunked = behaviour == "huge-chunked"
        if chunked:
            h.send_header("Transfer-Encoding", "chunked")
        else:
            h.send_header("Content-Length", str(self.huge))
        h.end_headers()
        if head:
            return
        block = b"{" + b" " * (64 * 1024 - 1)
        sent = 0
        h.close_connection = True
        while sent < self.huge and not self.stopping.is_set():
            n = min(len(block), self.huge - sent)
            if chunked:
                h.wfile.write(b"%x\r\n" % n + block[:n] + b"\r\n")
            else:
                h.wfile.write(block[:n])
            sent += n
            self._count(behaviour, n)
        if chunked:
            h.wfile.write(b"0\r\n\r\n")

    def _trickle(self, h, head: bool):
        h.send_response(200)
        h.send_header("Content-Type", OCI_MANIFEST)
        h.send_header("Content-Length", str(len(SMALL)))
        h.end_headers()
        if head:
            return
        h.close_connection = True
        for b in SMALL:
            if self.stopping.wait(1.0):
                return
            h.wfile.write(bytes([b]))
            h.wfile.flush()
            self._count("trickle", 1)

    def stop(self):
        self.stopping.set()
        self._srv.stop()


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for {pid}")


def wait_until(cond, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()

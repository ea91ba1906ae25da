"""A fault-injecting HTTP proxy for the test world: loopback only, one upstream, faults
consumed in order per rule, stopped by its fixture (and by itself after `lifetime` seconds).

A rule matches a request by method and a regular expression on the path; each matching
request takes the rule's next fault until none is left, then passes through untouched.
Faults:
  ("status", code)               answer `code` with an empty JSON error body
  ("status", code, retry_after)  the same with a Retry-After header
  ("reset_body",)                forward, send the status and headers, then half the body
                                 and close the connection (a reset mid-body)
  ("stall", seconds)             wait, then forward
  ("stored_then", code)          forward (the upstream stores it), then answer `code`
  ("garbage",)                   200 with a body that is not what the client expects
  ("answer", code, body)         answer `code` with `body` (e.g. an AWS error document)
  ("hang",)                      accept and never answer (until the proxy stops)
  ("drop_query",)                forward without the query string (a blob mount becomes a
                                 plain upload start: a registry that will not mount)
  ("trickle_body", seconds)      forward, send the status and headers, then the body one
                                 byte every `seconds` (a registry that stalls mid-body)
"""

from __future__ import annotations

import http.client
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te"}


class FaultProxy:
    def __init__(self, upstream: str, lifetime: float = 600.0):
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.rules: list[tuple[str, re.Pattern, list]] = []
        self.log: list[tuple[str, str, str]] = []  # (method, path, what happened)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        # Stalled requests held at once, and the most seen: concurrency, observed.
        self.stalled_now = 0
        self.stalled_max = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _any(self):
                proxy.handle(self)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.timer = threading.Timer(lifetime, self.stop)
        self.timer.daemon = True
        self.timer.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add(self, method: str, path_regex: str, *faults):
        with self.lock:
            self.rules.append((method, re.compile(path_regex), list(faults)))

    def clear(self):
        with self.lock:
            self.rules.clear()

    def injected(self) -> list[tuple[str, str, str]]:
        with self.lock:
            return [e for e in self.log if e[2] != "pass"]

    def _take(self, method: str, path: str):
        with self.lock:
            for m, rx, faults in self.rules:
                if m == method and rx.search(path) and faults:
                    return faults.pop(0)
        return None

    def _record(self, method, path, what):
        with self.lock:
            self.log.append((method, path, what))

    def handle(self, h: BaseHTTPRequestHandler):
        method, path = h.command, h.path
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        fault = self._take(method, path)
        self._record(method, path, fault[0] if fault else "pass")
        if fault and fault[0] == "hang":
            self.stopping.wait()
            h.close_connection = True
            return
        if fault and fault[0] == "status":
            self._answer(h, fault[1], b'{"errors":[{"code":"UNAVAILABLE","message":"injected"}]}',
                         {"Retry-After": str(fault[2])} if len(fault) > 2 else {})
            return
        if fault and fault[0] == "answer":
            self._answer(h, fault[1], fault[2], {})
            return
        if fault and fault[0] == "garbage":
            self._answer(h, 200, b"\x00\x01 this is not json", {"Content-Type": "application/json"})
            return
        if fault and fault[0] == "stall":
            with self.lock:
                self.stalled_now += 1
                self.stalled_max = max(self.stalled_max, self.stalled_now)
            stopped = self.stopping.wait(fault[1])
            with self.lock:
                self.stalled_now -= 1
            if stopped:
                return
        if fault and fault[0] == "drop_query":
            path = path.split("?", 1)[0]
        status, headers, resp_body = self._forward(method, path, h.headers, body)
        if fault and fault[0] == "stored_then":
            self._answer(h, fault[1], b'{"errors":[{"code":"UNKNOWN","message":"injected after store"}]}', {})
            return
        if fault and fault[0] == "reset_body" and len(resp_body) > 1:
            h.send_response(status)
            for k, v in headers:
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(resp_body)))
            h.end_headers()
            h.wfile.write(resp_body[: len(resp_body) // 2])
            h.wfile.flush()
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            h.close_connection = True
            return
        if fault and fault[0] == "trickle_body" and method != "HEAD":
            self._trickle(h, status, headers, resp_body, fault[1])
            return
        h.send_response(status)
        for k, v in headers:
            h.send_header(k, v)
        if method != "HEAD":
            h.send_header("Content-Length", str(len(resp_body)))
        h.end_headers()
        if method != "HEAD":
            h.wfile.write(resp_body)

    def _trickle(self, h, status, headers, body, seconds):
        h.send_response(status)
        for k, v in headers:
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.close_connection = True
        try:
            for b in body:
                if self.stopping.wait(seconds):
                    return
                h.wfile.write(bytes([b]))
                h.wfile.flush()
        except OSError:
            pass

    def _forward(self, method, path, headers, body):
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            out = {k: v for k, v in headers.items() if k.lower() not in HOP and k.lower() != "content-length"}
            if body or method in ("PUT", "POST", "PATCH"):
                out["Content-Length"] = str(len(body))
            conn.request(method, path, body=body or None, headers=out)
            resp = conn.getresponse()
            data = resp.read()
            hdrs = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP and k.lower() != "content-length"]
            if method == "HEAD":
                # No body follows a HEAD: keep the upstream's length as it said it.
                hdrs.append(("Content-Length", resp.getheader("Content-Length") or "0"))
            return resp.status, hdrs, data
        finally:
            conn.close()

    def _answer(self, h, code, body, headers):
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    def stop(self):
        self.stopping.set()
        self.timer.cancel()
        self.server.shutdown()
        self.server.server_close()


class StallServer:
    """Accepts TCP connections and never answers: an ECR API endpoint that hangs."""

    def __init__(self, lifetime: float = 300.0):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.stopping = threading.Event()
        self.accepted = 0
        self.deadline = time.monotonic() + lifetime
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self):
        self.sock.settimeout(0.5)
        while not self.stopping.is_set() and time.monotonic() < self.deadline:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            self.conns.append(c)

    def stop(self):
        self.stopping.set()
        for c in self.conns:
            c.close()
        self.sock.close()

"""Helpers of `make bench`: a minimal registry client that pushes generated images straight
over the distribution API (no tool under test is used to prepare the data), and the access-log
reader that counts requests per repository."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import ssl
import time
import urllib.parse

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


class Registry:
    """One registry host: plain HTTP or TLS (trusting the test CA), optional basic auth."""

    def __init__(self, host: str, tls: bool, user: str | None = None, password: str | None = None,
                 data_dir: str | None = None, log: str | None = None):
        self.host, self.tls, self.data_dir, self.log = host, tls, data_dir, log
        self.auth = None
        if user:
            self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.ctx = None
        if tls:
            self.ctx = ssl.create_default_context()
            ca = os.environ.get("TEST_CA_CERT")
            if ca and os.path.exists(ca):
                self.ctx.load_verify_locations(ca)

    def _conn(self):
        h, _, p = self.host.partition(":")
        if self.tls:
            return http.client.HTTPSConnection(h, int(p or 443), context=self.ctx, timeout=600)
        return http.client.HTTPConnection(h, int(p or 80), timeout=600)

    def request(self, method: str, path: str, body=None, headers: dict | None = None):
        headers = dict(headers or {})
        if self.auth:
            headers["Authorization"] = self.auth
        c = self._conn()
        try:
            c.request(method, path, body=body, headers=headers)
            r = c.getresponse()
            data = r.read()
            return r.status, dict(r.getheaders()), data
        finally:
            c.close()

    def push_blob(self, repo: str, data: bytes | None = None, path: str | None = None) -> dict:
        """Uploads bytes (or a file, streamed) unless the repository has the blob already."""
        if path is not None:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            digest, size = "sha256:" + h.hexdigest(), os.path.getsize(path)
        else:
            digest, size = "sha256:" + hashlib.sha256(data).hexdigest(), len(data)
        st, _, _ = self.request("HEAD", f"/v2/{repo}/blobs/{digest}")
        if st != 200:
            st, hdrs, body = self.request("POST", f"/v2/{repo}/blobs/uploads/")
            assert st == 202, (st, body)
            loc = hdrs.get("Location") or hdrs.get("location")
            u = urllib.parse.urlsplit(loc)
            q = (u.query + "&" if u.query else "") + "digest=" + urllib.parse.quote(digest)
            hdr = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
            if path is not None:
                with open(path, "rb") as f:
                    st, _, body = self.request("PUT", f"{u.path}?{q}", body=f, headers=hdr)
            else:
                st, _, body = self.request("PUT", f"{u.path}?{q}", body=data, headers=hdr)
            assert st == 201, (st, body)
        return {"digest": digest, "size": size}

    def push_manifest(self, repo: str, ref: str, manifest: dict, media_type: str) -> dict:
        body = json.dumps(manifest, separators=(",", ":")).encode()
        st, _, resp = self.request("PUT", f"/v2/{repo}/manifests/{ref}", body=body,
                                   headers={"Content-Type": media_type})
        assert st == 201, (st, resp)
        return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(body).hexdigest(),
                "size": len(body)}

    def get_manifest(self, repo: str, ref: str) -> dict:
        st, _, body = self.request("GET", f"/v2/{repo}/manifests/{ref}", headers={
            "Accept": ",".join([DOCKER_LIST, DOCKER_MANIFEST,
                                "application/vnd.oci.image.index.v1+json",
                                "application/vnd.oci.image.manifest.v1+json"])})
        assert st == 200, (st, body)
        return json.loads(body)

    def push_image(self, repo: str, tag: str, platform: dict, layers: list[dict]) -> dict:
        """A single-platform Docker image: a config naming `platform`, the given layers."""
        config = {"architecture": platform["architecture"], "os": platform["os"],
                  "config": {}, "rootfs": {"type": "layers", "diff_ids": [l["digest"] for l in layers]},
                  # History too: the registry converts to schema 1 for clients that HEAD
                  # without Accept (containerd, under imagetools), and refuses an empty one.
                  "created": "2026-01-01T00:00:00Z",
                  "history": [{"created": "2026-01-01T00:00:00Z", "created_by": f"layer {i}"}
                              for i in range(len(layers))]}
        if platform.get("variant"):
            config["variant"] = platform["variant"]
        cfg = self.push_blob(repo, json.dumps(config, sort_keys=True).encode())
        manifest = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                    "config": {"mediaType": DOCKER_CONFIG, **cfg},
                    "layers": [{"mediaType": DOCKER_LAYER, **l} for l in layers]}
        return self.push_manifest(repo, tag, manifest, DOCKER_MANIFEST)

    def blob_size(self, digest: str) -> int | None:
        """A blob's size from the registry's own storage (filesystem driver)."""
        if not self.data_dir:
            return None
        algo, hexd = digest.split(":", 1)
        p = os.path.join(self.data_dir, "docker", "registry", "v2", "blobs", algo, hexd[:2], hexd, "data")
        try:
            return os.path.getsize(p)
        except OSError:
            return None


# The access log's combined-format lines (one per request, written after the response).
LINE = re.compile(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) /v2/(\S*?)/(manifests|blobs|tags)/(\S*) HTTP/[\d.]+" (\d{3})')


class AccessLog:
    """Requests of the bench's own repositories in a registry's access log, from a mark on
    (the log is shared with everyone using the test world: every line is filtered by
    repository name, which is unique to this bench run)."""

    def __init__(self, path: str):
        self.path = path
        self.offset = 0

    def mark(self):
        self.offset = os.path.getsize(self.path)

    def lines(self, repos: set[str], settle: float = 0.3) -> list[tuple]:
        """(method, repo, kind, rest, status) of each request to one of `repos`. Waits until the
        log stops growing for a moment (lines are written after each response)."""
        time.sleep(settle)
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            text = f.read().decode(errors="replace")
        out = []
        for line in text.splitlines():
            if not line.startswith("127.0.0.1 - "):
                continue
            m = LINE.search(line)
            if m and m.group(2) in repos:
                out.append((m.group(1), m.group(2), m.group(3), m.group(4), int(m.group(5))))
        return out

    @staticmethod
    def uploaded(lines: list[tuple]) -> list[str]:
        """Digests of the blob uploads completed (PUT …/uploads/…?digest=, or a monolithic POST
        with ?digest=, answered 201); mounts are not uploads."""
        out = []
        for method, _, kind, rest, status in lines:
            if kind != "blobs" or status != 201 or "mount=" in rest:
                continue
            if method in ("PUT", "POST") and "digest=" in rest:
                q = urllib.parse.parse_qs(urllib.parse.urlsplit("/x" + rest[rest.index("?"):]).query)
                out.extend(q.get("digest", []))
        return out

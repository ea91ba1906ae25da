"""Registries as they are: a hostile registry on loopback (tests/hostile_registry.py) sends
an oversized manifest (with an honest Content-Length, and chunked without one) or trickles
one; the provider answers with a clear error naming the operation and the reference, in
bounded memory (its peak RSS, VmHWM) and without waiting out the trickle. A lying digest is
refused; credentials do not follow a redirect to another host.

The idle deadline is lowered to 2 s here through MULTIARCH_REGISTRY_IDLE_TIMEOUT."""

from __future__ import annotations

import time

import grpc
import pytest

from faultproxy import FaultProxy
from harness import IMAGE, ML, Provider, raw_manifest, unique
from hostile_registry import SMALL, TOKEN, HostileRegistry, RecordingServer, peak_rss_mb
from test_copy_floor import make_sources

IDLE_ENV = {"MULTIARCH_REGISTRY_IDLE_TIMEOUT": "2"}
# Generous: the provider idles at a few tens of MiB; reading a 300 MB manifest whole took 321.
RSS_LIMIT_MB = 100


@pytest.fixture
def hostile():
    other = RecordingServer()
    h = HostileRegistry(redirect_to=other.address)
    h.other = other
    yield h
    h.stop()
    other.stop()


@pytest.fixture
def hp(engine, provider_env, hostile, world):
    """A provider configured for the hostile registry (plain HTTP, basic credentials)."""
    p = Provider(engine, env={**provider_env, **IDLE_ENV})
    p.handshake()
    p.configure({"registries": [
        {"address": hostile.address, "insecure": True, "username": "u", "password": "hostile-pw"},
        {"address": world["PLAIN_REGISTRY"], "insecure": True},
    ]})
    yield p
    p.close()


def manifest_list_fails(p, world, source: str) -> tuple[str, float]:
    tag = f"{world['PLAIN_REGISTRY']}/{unique('hostile')}:1"
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        p.create(ML, {"tags": [tag], "sources": [source]})
    return e.value.details(), time.monotonic() - t0


def image_fails(p, tmp_path, tag: str) -> tuple[str, float]:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        p.create(IMAGE, {"context": {"location": str(tmp_path)}, "platforms": ["linux/amd64"],
                         "tags": [tag]})
    return e.value.details(), time.monotonic() - t0


@pytest.mark.parametrize("mode", ["huge-length", "huge-chunked"])
def test_oversized_manifest_source_is_refused_in_bounded_memory(hp, hostile, world, mode):
    ref = f"{hostile.address}/{mode}/app:1"
    msg, secs = manifest_list_fails(hp, world, ref)
    rss = peak_rss_mb(hp.proc.pid)
    print(f"\nManifestList {mode}: error after {secs:.1f} s, provider peak RSS {rss:.0f} MiB, "
          f"served {hostile.served.get(mode, 0) / 2**20:.1f} MiB: {msg}")
    assert "read manifest" in msg and f"{mode}/app:1" in msg and hostile.address in msg, msg
    assert "4194304-byte limit" in msg, msg
    assert rss < RSS_LIMIT_MB, f"peak RSS {rss:.0f} MiB"
    # The answer was not read to its end (300 MB).
    assert hostile.served.get(mode, 0) < 100 * 2**20, hostile.served


@pytest.mark.parametrize("mode", ["huge-length", "huge-chunked"])
def test_oversized_manifest_fails_the_image_tag_precheck(hp, hostile, tmp_path, mode):
    tag = f"{hostile.address}/{mode}/app:1"
    msg, secs = image_fails(hp, tmp_path, tag)
    rss = peak_rss_mb(hp.proc.pid)
    print(f"\nImage {mode}: error after {secs:.1f} s, provider peak RSS {rss:.0f} MiB: {msg}")
    assert "tags[0]" in msg and "nothing was built or pushed" in msg, msg
    assert "4194304-byte limit" in msg and f"{mode}/app:1" in msg, msg
    assert rss < RSS_LIMIT_MB, f"peak RSS {rss:.0f} MiB"


def test_trickling_manifest_is_an_error_naming_the_stall(hp, hostile, world):
    ref = f"{hostile.address}/trickle/app:1"
    msg, secs = manifest_list_fails(hp, world, ref)
    print(f"\nManifestList trickle: error after {secs:.1f} s "
          f"({hostile.served.get('trickle', 0)} bytes served): {msg}")
    assert "read manifest" in msg and "trickle/app:1" in msg and hostile.address in msg, msg
    assert "stalled" in msg and "in 2 s" in msg, msg
    # Not retried: the whole manifest was never sent.
    assert hostile.served.get("trickle", 0) < len(SMALL), hostile.served


def test_trickling_manifest_fails_the_image_tag_precheck(hp, hostile, tmp_path):
    msg, secs = image_fails(hp, tmp_path, f"{hostile.address}/trickle/app:1")
    print(f"\nImage trickle: error after {secs:.1f} s: {msg}")
    assert "tags[0]" in msg and "stalled" in msg, msg


def test_a_lying_digest_is_refused(hp, hostile, world):
    asked = "sha256:" + "ab" * 32
    msg, _ = manifest_list_fails(hp, world, f"{hostile.address}/lying/app@{asked}")
    assert "read manifest" in msg and asked in msg and "not " + asked in msg, msg


def test_credentials_do_not_follow_a_redirect_to_another_host(hp, hostile, world):
    msg, _ = manifest_list_fails(hp, world, f"{hostile.address}/redirect/app:1")
    assert "does not exist" in msg, msg
    # The registry got the credentials; the other host it redirected to got the request
    # without them.
    assert any(a and a.startswith("Basic ") for a in hostile.auth_seen), hostile.auth_seen
    assert hostile.other.auth_seen, "the redirect was not followed"
    assert all(a is None for a in hostile.other.auth_seen), hostile.other.auth_seen


def test_a_layer_copy_that_stalls_is_an_error_naming_the_blob(engine, provider_env, world):
    """A cross-registry copy streams the layer from the source into the target; the source
    stalls mid-body: the copy fails after the idle deadline, once (not retried)."""
    proxy = FaultProxy(world["PLAIN_REGISTRY"])
    p = Provider(engine, env={**provider_env, **IDLE_ENV})
    try:
        p.handshake()
        p.configure({"registries": [{"address": proxy.address, "insecure": True}]})
        src, dst = unique("stall-src"), unique("stall-dst")
        make_sources(world, world["PLAIN_REGISTRY"], src, 1)
        plain = raw_manifest(f"{world['PLAIN_REGISTRY']}/{src}:src0", insecure=True)
        layer = plain["layers"][0]["digest"]
        proxy.add("GET", rf"/v2/{src}/blobs/{layer}$", *([("trickle_body", 1.0)] * 5))
        with pytest.raises(grpc.RpcError) as e:
            p.create(ML, {"tags": [f"{world['ECR_REGISTRY']}/{dst}:v1"],
                          "sources": [f"{proxy.address}/{src}:src0"]})
        msg = e.value.details()
        print(f"\nlayer copy stall: {msg}")
        assert "copy blob to" in msg and dst in msg and layer in msg, msg
        assert "stalled" in msg, msg
        assert len(proxy.injected()) == 1, proxy.injected()
    finally:
        p.close()
        proxy.stop()


def test_a_token_registry_is_read_with_one_pull_token(hp, hostile, world):
    """Bearer challenges are answered by the provider's own bounded reads: one token for the
    repository (asked with the registry's credentials), the manifest and config read with it."""
    tag = f"{world['PLAIN_REGISTRY']}/{unique('bearer')}:1"
    _, state = hp.create(ML, {"tags": [tag], "sources": [f"{hostile.address}/bearer/app:1"]},
                         preview=True)
    assert state["platforms"] == ["linux/amd64"], state
    assert len(hostile.token_requests) == 1, hostile.token_requests
    query, auth = hostile.token_requests[0]
    assert "scope=repository%3Abearer%2Fapp%3Apull" in query and "service=hostile" in query, query
    assert auth and auth.startswith("Basic "), auth
    assert f"Bearer {TOKEN}" in hostile.auth_seen

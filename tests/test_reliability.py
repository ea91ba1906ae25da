"""Reliability as a user meets it, against the real test world: unknowns go back exactly
where they came from, schema secrets are marked at any depth, the ECR token is in no log at
any verbosity, a stalled ECR API is a clear error in bounded time that holds up nobody else,
registry faults (500, 503, 429 + Retry-After, resets mid-body, stalls, a PUT stored then
failed) are retried or reported clearly, and nothing is pushed that the provider cannot read."""

import base64
import threading
import time

import grpc
import pytest
from pulumi.runtime.proto import provider_pb2

from faultproxy import FaultProxy, StallServer
from harness import (
    IMAGE, ML, SECRET_SIG, SIG, UNKNOWN, FakeEngine, Provider, RegistryLog, from_struct,
    raw_manifest, secret, skopeo_copy, to_struct, unique,
)

CONFIG_URN = "urn:pulumi:test::p::pulumi:providers:multiarch::default"


def check_config(p, news):
    resp = p.stub.CheckConfig(provider_pb2.CheckRequest(urn=CONFIG_URN, news=to_struct(news)))
    return from_struct(resp.inputs), [(f.property, f.reason) for f in resp.failures]


# ---- values: unknowns and secrets -------------------------------------------------------

def test_nested_unknown_password_stays_in_its_entry(bare_provider):
    news = {"registries": [
        {"address": "r.example:5000", "username": "u", "password": UNKNOWN},
        {"address": "s.example:5000"},
    ]}
    out, failures = check_config(bare_provider, news)
    assert failures == []
    regs = out["registries"]
    assert len(regs) == 2, regs
    assert regs[0]["address"] == "r.example:5000" and regs[0]["username"] == "u"
    # The unknown password is back in its own entry, marked secret by the schema.
    assert regs[0]["password"] == {SIG: SECRET_SIG, "value": UNKNOWN}
    assert regs[1] == {"address": "s.example:5000"}


def test_unknown_list_elements_come_back_at_their_index(provider):
    news = {"tags": [UNKNOWN, "127.0.0.1:5000/a:1", UNKNOWN], "sources": ["127.0.0.1:5000/a:src"],
            "annotations": {"k": UNKNOWN}}
    out, failures = provider.check(ML, news)
    assert failures == []
    assert out["tags"] == [UNKNOWN, "127.0.0.1:5000/a:1", UNKNOWN]
    assert out["annotations"] == {"k": UNKNOWN}
    _, props = provider.create(ML, out, preview=True)
    assert props["tags"] == [UNKNOWN, "127.0.0.1:5000/a:1", UNKNOWN]
    assert props["digest"] == UNKNOWN


def test_plain_schema_secrets_come_back_secret_from_check_and_check_config(provider, tmp_path):
    out, failures = check_config(provider, {
        "registries": [{"address": "ghcr.io", "username": "me", "password": "hunter2"},
                       {"address": "quay.io"}],
    })
    assert failures == []
    # Only the password is wrapped, not the whole list.
    assert out["registries"][0]["password"] == {SIG: SECRET_SIG, "value": "hunter2"}
    assert out["registries"][0]["address"] == "ghcr.io"
    assert out["registries"][1] == {"address": "quay.io"}

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    inputs, failures = provider.check(IMAGE, {
        "context": {"location": str(tmp_path)}, "tags": ["127.0.0.1:5000/s:1"],
        "secrets": {"npm": "plain-but-secret"},
    })
    assert failures == []
    assert inputs["secrets"] == {SIG: SECRET_SIG, "value": {"npm": "plain-but-secret"}}


# ---- the ECR token at every verbosity ---------------------------------------------------

@pytest.mark.parametrize("flags, env", [
    (["-v=0"], {}),
    (["-v=3"], {}),
    (["-v=6"], {}),
    (["-v=9"], {}),
    (["-v=9"], {"MULTIARCH_LOG": "trace", "RUST_LOG": "trace"}),
    (["-v=9"], {"MULTIARCH_LOG": "aws_smithy_runtime=trace,hyper=trace,h2=trace,trace"}),
])
def test_ecr_token_in_no_log_at_any_verbosity(engine, provider_env, world, tmp_path, flags, env):
    import subprocess

    from harness import binary

    token = "123456789012-auth-token"
    encoded = base64.b64encode(f"AWS:{token}".encode()).decode()
    stderr = tmp_path / "stderr"
    full = dict(__import__("os").environ)
    full.update(provider_env)
    full.update(env)
    with open(stderr, "wb") as err:
        proc = subprocess.Popen([binary(), "--logtostderr", *flags, engine.address],
                                stdout=subprocess.PIPE, stderr=err, env=full)
        try:
            port = int(proc.stdout.readline().decode().strip())
            chan = grpc.insecure_channel(f"127.0.0.1:{port}")
            from pulumi.runtime.proto import provider_pb2_grpc
            stub = provider_pb2_grpc.ResourceProviderStub(chan)
            stub.Configure(provider_pb2.ConfigureRequest(args=to_struct({}), acceptSecrets=True))
            news = {"tags": [f"{world['ECR_REGISTRY']}/{unique('tok')}:1"],
                    "sources": [world["BASE_IMAGE_ECR_AMD64"]]}
            # A preview resolves the sources on the ECR look-alike: a token fetch, then reads.
            resp = stub.Create(provider_pb2.CreateRequest(
                urn="urn:pulumi:t::p::multiarch:index:ManifestList::m", type=ML,
                properties=to_struct(news), preview=True), timeout=120)
            assert from_struct(resp.properties)["platforms"] == ["linux/amd64"]
            chan.close()
        finally:
            proc.terminate()
            proc.wait(10)
    text = stderr.read_text(errors="replace")
    for leak in (token, encoded):
        assert leak not in text, f"token in stderr with {flags} {env}"
        assert all(leak not in m for m in engine.messages())


# ---- a stalled ECR API --------------------------------------------------------------------

def test_stalled_ecr_api_is_a_clear_error_in_bounded_time_and_blocks_nobody(engine, provider_env, world):
    stall = StallServer()
    stalled_host = "123456789012.dkr.ecr.us-west-2.amazonaws.com"
    p = Provider(engine, env=provider_env)
    try:
        p.handshake()
        p.configure({"registries": [
            {"address": world["PLAIN_REGISTRY"], "insecure": True},
            {"address": stalled_host, "ecr": {"endpoint": stall.url}},
        ]})
        result = {}

        def stalled():
            t0 = time.monotonic()
            try:
                # Not a preview: a preview only warns when it cannot resolve the sources yet.
                p.create(ML, {"tags": [f"{stalled_host}/app:1"], "sources": [f"{stalled_host}/app:src"]},
                         name="stalled")
                result["error"] = None
            except grpc.RpcError as e:
                result["error"] = e.details()
            result["seconds"] = time.monotonic() - t0

        t = threading.Thread(target=stalled)
        t.start()
        # Wait until the stalled call is under way: its connection reached the silent API.
        deadline = time.monotonic() + 30
        while stall.accepted < 1:
            assert time.monotonic() < deadline and t.is_alive(), result
            time.sleep(0.05)
        # Meanwhile an ECR host with a working API, and the plain registry, answer at once.
        t0 = time.monotonic()
        _, props = p.create(ML, {"tags": [f"{world['ECR_REGISTRY']}/{unique('ok')}:1"],
                                 "sources": [world["BASE_IMAGE_ECR_ARM64"]]}, preview=True, name="ok")
        assert props["platforms"] == ["linux/arm64"]
        _, props = p.create(ML, {"tags": [f"{world['PLAIN_REGISTRY']}/{unique('ok')}:1"],
                                 "sources": [world["BASE_IMAGE_PLAIN_AMD64"]]}, preview=True, name="ok2")
        assert time.monotonic() - t0 < 10, "other registries were held up by the stalled one"
        assert t.is_alive(), "the stalled call should still be waiting"
        t.join(60)
        assert not t.is_alive()
        assert result["error"], "a stalled ECR API cannot succeed"
        assert "GetAuthorizationToken" in result["error"] and stalled_host in result["error"], result
        assert result["seconds"] <= 35, result
        assert stall.accepted >= 1
    finally:
        p.close()
        stall.stop()


# ---- registry faults through a proxy ------------------------------------------------------

@pytest.fixture
def proxy(world):
    fp = FaultProxy(world["PLAIN_REGISTRY"])
    yield fp
    fp.stop()


@pytest.fixture
def via_proxy(engine, provider_env, proxy, world):
    p = Provider(engine, env=provider_env)
    p.handshake()
    p.configure({"registries": [
        {"address": proxy.address, "insecure": True},
        {"address": world["PLAIN_REGISTRY"], "insecure": True},
    ]})
    yield p
    p.close()


def two_sources(world, proxy):
    """amd64 and arm64 sources in a repository of their own, named through the proxy."""
    repo = unique("faults")
    skopeo_copy(world["BASE_IMAGE_PLAIN_AMD64"], f"{world['PLAIN_REGISTRY']}/{repo}:amd64")
    skopeo_copy(world["BASE_IMAGE_PLAIN_ARM64"], f"{world['PLAIN_REGISTRY']}/{repo}:arm64")
    return repo, [f"{proxy.address}/{repo}:amd64", f"{proxy.address}/{repo}:arm64"]


def created_index_is_whole(world, repo, tag, state):
    index = raw_manifest(f"{world['PLAIN_REGISTRY']}/{repo}:{tag}", insecure=True)
    assert len(index["manifests"]) == 2
    assert {m["platform"]["architecture"] for m in index["manifests"]} == {"amd64", "arm64"}
    assert state["platforms"] == ["linux/amd64", "linux/arm64"]


@pytest.mark.parametrize("name, method, path, faults", [
    ("manifest GET 503 three times", "GET", r"/manifests/(amd64|arm64)$", [("status", 503)] * 3),
    ("manifest GET reset mid-body", "GET", r"/manifests/amd64$", [("reset_body",)]),
    ("config blob GET 500 once", "GET", r"/blobs/sha256:", [("status", 500)]),
    ("index PUT stored, then 500", "PUT", r"/manifests/v1$", [("stored_then", 500)]),
    ("index PUT 503 once", "PUT", r"/manifests/v1$", [("status", 503)]),
    # (Tags get no HEAD outside ECR: only IMMUTABLE repositories need one.)
    ("index PUT stalled 5 s", "PUT", r"/manifests/v1$", [("stall", 5)]),
])
def test_manifest_list_create_survives_registry_faults(via_proxy, proxy, world, name, method, path, faults):
    repo, sources = two_sources(world, proxy)
    proxy.add(method, path, *faults)
    _, state = via_proxy.create(ML, {"tags": [f"{proxy.address}/{repo}:v1"], "sources": sources})
    assert proxy.injected(), f"{name}: no fault was injected"
    created_index_is_whole(world, repo, "v1", state)
    # Refresh matches the registry.
    _, read, _ = via_proxy.read(ML, f"{proxy.address}/{repo}:v1", state)
    assert read["digest"] == state["digest"]


def test_retry_after_is_honoured(via_proxy, proxy, world):
    repo, sources = two_sources(world, proxy)
    proxy.add("GET", r"/manifests/amd64$", ("status", 429, 2))
    t0 = time.monotonic()
    _, state = via_proxy.create(ML, {"tags": [f"{proxy.address}/{repo}:v1"], "sources": sources})
    elapsed = time.monotonic() - t0
    assert proxy.injected()
    assert elapsed >= 2.0, f"retried after {elapsed:.2f}s, before Retry-After: 2"
    created_index_is_whole(world, repo, "v1", state)


def test_cross_repository_copy_retries_500_on_blob_mounts(via_proxy, proxy, world):
    # The registry answers 500 now and then under concurrent mounts: retried.
    repo, sources = two_sources(world, proxy)
    target = unique("faults-target")
    proxy.add("POST", r"/v2/" + target + r"/blobs/uploads/\?mount=", ("status", 500), ("status", 500))
    _, state = via_proxy.create(ML, {"tags": [f"{proxy.address}/{target}:v1"], "sources": sources})
    assert len(proxy.injected()) == 2
    created_index_is_whole(world, target, "v1", state)


def test_cross_registry_copy_retries_500_on_blob_checks(via_proxy, proxy, world):
    # Sources on the plain registry itself, target through the proxy: another registry
    # host, so blobs are checked (HEAD) and uploaded, not mounted.
    repo = unique("faults")
    skopeo_copy(world["BASE_IMAGE_PLAIN_AMD64"], f"{world['PLAIN_REGISTRY']}/{repo}:amd64")
    skopeo_copy(world["BASE_IMAGE_PLAIN_ARM64"], f"{world['PLAIN_REGISTRY']}/{repo}:arm64")
    sources = [f"{world['PLAIN_REGISTRY']}/{repo}:amd64", f"{world['PLAIN_REGISTRY']}/{repo}:arm64"]
    target = unique("faults-target")
    proxy.add("HEAD", r"/v2/" + target + r"/blobs/", ("status", 500), ("status", 500))
    proxy.add("PUT", r"/v2/" + target + r"/blobs/uploads/", ("status", 503))
    _, state = via_proxy.create(ML, {"tags": [f"{proxy.address}/{target}:v1"], "sources": sources})
    assert len(proxy.injected()) == 3
    created_index_is_whole(world, target, "v1", state)


def test_delete_survives_a_reset_while_reading_tags(via_proxy, proxy, world):
    repo, sources = two_sources(world, proxy)
    tag = f"{proxy.address}/{repo}:v1"
    id, state = via_proxy.create(ML, {"tags": [tag], "sources": sources})
    proxy.add("GET", r"/tags/list", ("reset_body",))
    via_proxy.delete(ML, id, state)
    assert proxy.injected()
    _, read, _ = via_proxy.read(ML, id, state)
    assert read == {}, "the tag should be gone"


def test_persistent_faults_are_a_clear_error_naming_the_reference(via_proxy, proxy, world):
    repo, sources = two_sources(world, proxy)
    proxy.add("GET", r"/manifests/arm64$", *([("status", 503)] * 20))
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        via_proxy.create(ML, {"tags": [f"{proxy.address}/{repo}:v1"], "sources": sources})
    assert time.monotonic() - t0 < 60
    assert f"{repo}:arm64" in e.value.details(), e.value.details()
    # Nothing half-written: the tag does not exist.
    with pytest.raises(Exception):
        raw_manifest(f"{world['PLAIN_REGISTRY']}/{repo}:v1", insecure=True)


# ---- an Image is not pushed where the provider cannot read --------------------------------

def test_image_on_an_unconfigured_plain_http_registry_fails_before_pushing(engine, provider_env, world, tmp_path):
    (tmp_path / "Dockerfile").write_text(f"FROM {world['BASE_IMAGE_PLAIN']}\nRUN true\n")
    log = RegistryLog(world["PLAIN_REGISTRY_LOG"])
    p = Provider(engine, env=provider_env)
    try:
        p.handshake()
        p.configure({})  # no `insecure` entry for 127.0.0.1:5000
        repo = unique("unconfigured")
        tag = f"{world['PLAIN_REGISTRY']}/{repo}:1"
        log.mark()
        with pytest.raises(grpc.RpcError) as e:
            p.create(IMAGE, {"context": {"location": str(tmp_path)}, "platforms": ["linux/amd64"],
                             "tags": [tag]})
        msg = e.value.details()
        assert "tags[0]" in msg and "insecure: true" in msg and "nothing was built or pushed" in msg, msg
        assert [w for w in log.writes() if repo in w] == [], "something was pushed"
    finally:
        p.close()


# ---- ECR API faults through a proxy in front of moto ------------------------------------

THROTTLED = b'{"__type":"ThrottlingException","message":"Rate exceeded"}'


@pytest.mark.parametrize("faults, ok", [
    ([("answer", 400, THROTTLED)], True),
    ([("status", 503), ("status", 500)], True),
    ([("garbage",)] * 5, False),
    ([("answer", 400, THROTTLED)] * 10, False),
])
def test_ecr_api_faults(engine, provider_env, world, faults, ok):
    api = FaultProxy(world["AWS_ENDPOINT_URL_ECR"].removeprefix("http://"))
    p = Provider(engine, env=provider_env)
    try:
        p.handshake()
        p.configure({"registries": [{"address": world["ECR_REGISTRY"], "ecr": {"endpoint": f"http://{api.address}"}}]})
        api.add("POST", r"^/", *faults)
        t0 = time.monotonic()
        news = {"tags": [f"{world['ECR_REGISTRY']}/{unique('api')}:1"], "sources": [world["BASE_IMAGE_ECR_AMD64"]]}
        if ok:
            _, state = p.create(ML, news)
            assert state["platforms"] == ["linux/amd64"]
        else:
            with pytest.raises(grpc.RpcError) as e:
                p.create(ML, news)
            msg = e.value.details()
            assert "GetAuthorizationToken" in msg and world["ECR_REGISTRY"] in msg, msg
        assert time.monotonic() - t0 < 35
        assert api.injected()
    finally:
        p.close()
        api.stop()

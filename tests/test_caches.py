"""Typed `cacheFrom` / `cacheTo` entries through the Pulumi front, end to end: a typed registry
export read back by a builder that never ran the Dockerfile (the step comes from the cache),
Check failures naming the property inside the entry, and credentials (gha `token`, s3
`secretAccessKey`) that stay secret in Check's answer, in the state and out of every log.
The string form is covered where it always was (tests/test_builders.py, test_bad_input.py)."""

import base64
import json

import pytest

from harness import (
    DIFF_NONE, DIFF_SOME, IMAGE, SECRET_SIG, SIG, Provider, raw_manifest, secret, unique,
)


def dockerfile(tmp_path, world, marker):
    # A step no builder has run before: only a cache can make it CACHED.
    (tmp_path / "Dockerfile").write_text(
        f"FROM {world['BASE_IMAGE_PLAIN']}\n"
        f"RUN echo {marker} > /m && i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done\n")


def configured(engine, provider_env, world, builder=None, **config):
    p = Provider(engine, env=provider_env)
    p.handshake()
    config["registries"] = [{"address": world["PLAIN_REGISTRY"], "insecure": True}]
    if builder:
        config["builder"] = builder
    p.configure(config)
    return p


def buildkitd(world):
    """The standalone buildkitd (the Engines' BuildKit has no s3 cache)."""
    read = lambda k: open(world[k]).read()
    return {"builder": world["BUILDKITD_ADDR"],
            "builderTls": {"caCert": read("BUILDKITD_CA_CERT"),
                           "cert": read("BUILDKITD_CLIENT_CERT"),
                           "key": secret(read("BUILDKITD_CLIENT_KEY")),
                           "serverName": world["BUILDKITD_SERVER_NAME"]}}


def cached(engine, marker):
    return any("CACHED" in m and marker in m for m in engine.messages())


def build(p, inputs):
    checked, failures = p.check(IMAGE, inputs)
    assert failures == []
    return p.create(IMAGE, checked)


def test_typed_registry_cache_is_exported_and_imported_by_another_builder(
        engine, provider_env, world, tmp_path):
    """Build 1 on the first Engine exports `{registry: {ref, mode: max}}`; build 2 on the
    second Engine (its own BuildKit and build cache, never saw this Dockerfile) imports
    `{registry: {ref}}` and gets the RUN step from the registry cache."""
    marker = unique("typed-cache")
    dockerfile(tmp_path, world, marker)
    repo = f"{world['PLAIN_REGISTRY']}/{unique('typed-cache')}"
    base = {"context": {"location": str(tmp_path)}, "platforms": ["linux/amd64"],
            "network": "none"}
    p = configured(engine, provider_env, world)
    try:
        _, state = build(p, {**base, "tags": [f"{repo}:v1"],
                             "cacheTo": [{"registry": {"ref": f"{repo}:cache", "mode": "max"}}]})
        assert state["cacheTo"] == [{"registry": {"ref": f"{repo}:cache", "mode": "max"}}]
        assert not cached(engine, marker), "a fresh Dockerfile: the step runs"
    finally:
        p.close()

    e2 = type(engine)()
    p2 = configured(e2, provider_env, world, builder="docker+" + world["DOCKER2_HOST"])
    try:
        _, state = build(p2, {**base, "tags": [f"{repo}:v2"],
                              "cacheFrom": [{"registry": {"ref": f"{repo}:cache"}}]})
        assert cached(e2, marker), "the second Engine gets the step from the registry cache"
        assert state["cacheFrom"] == [{"registry": {"ref": f"{repo}:cache"}}]
    finally:
        p2.close()
        e2.stop()


def test_typed_registry_export_to_ecr_gets_an_oci_image_manifest_unless_set(
        provider, world, tmp_path):
    """ECR refuses BuildKit's default cache manifest list: a typed registry export to an ECR
    host gets `image-manifest=true,oci-mediatypes=true`, as the string form does; an explicit
    `imageManifest: false` is kept (documented: the user asked for it)."""
    marker = unique("ecr-cache")
    (tmp_path / "Dockerfile").write_text(f"FROM {world['BASE_IMAGE_ECR']}\nRUN echo {marker} > /m\n")
    repo = f"{world['ECR_REGISTRY']}/{unique('typed-ecr-cache')}"
    build(provider, {"context": {"location": str(tmp_path)}, "platforms": ["linux/amd64"],
                     "network": "none", "tags": [f"{repo}:v1"],
                     "cacheTo": [{"registry": {"ref": f"{repo}:cache", "mode": "max"}},
                                 {"registry": {"ref": f"{repo}:cache-list",
                                               "imageManifest": False}}]})
    m = raw_manifest(f"{repo}:cache")
    assert m["mediaType"] == "application/vnd.oci.image.manifest.v1+json", m
    m = raw_manifest(f"{repo}:cache-list")
    assert m["mediaType"] == "application/vnd.oci.image.index.v1+json", m


def test_string_and_typed_entries_mix_in_one_list(provider, engine, world, tmp_path):
    marker = unique("mixed-cache")
    dockerfile(tmp_path, world, marker)
    repo = f"{world['PLAIN_REGISTRY']}/{unique('mixed-cache')}"
    inputs = {"context": {"location": str(tmp_path)}, "platforms": ["linux/amd64"],
              "network": "none", "tags": [f"{repo}:v1"],
              "cacheFrom": [f"{repo}:cache", {"registry": {"ref": f"{repo}:typed"}}],
              "cacheTo": [f"type=registry,ref={repo}:cache,mode=max", {"inline": {}}]}
    checked, failures = provider.check(IMAGE, inputs)
    assert failures == []
    assert checked["cacheTo"] == inputs["cacheTo"]
    _, state = provider.create(IMAGE, checked)
    assert state["cacheFrom"] == inputs["cacheFrom"]
    assert state["digest"].startswith("sha256:")


P = "127.0.0.1:5000"


def img(**kw):
    base = {"dockerfile": {"inline": "FROM scratch\n"}, "tags": [f"{P}/bad:1"]}
    base.update(kw)
    return base


BAD = [
    (img(cacheTo=["ok.example/a:c", {"registry": {"ref": "not a ref"}}]),
     "cacheTo[1].registry.ref", "not a valid reference"),
    (img(cacheTo=[{"registry": {"ref": "app:cache"}}]), "cacheTo[0].registry.ref",
     "registry host"),
    (img(cacheTo=[{}]), "cacheTo[0]", "set exactly one of registry, local, inline, gha, s3, raw"),
    (img(cacheTo=[{"inline": {}, "raw": "type=inline"}]), "cacheTo[0]", "set exactly one of"),
    (img(cacheFrom=[{"inline": {}}]), "cacheFrom[0].inline", "inline is a cache export only"),
    (img(cacheFrom=[{}]), "cacheFrom[0]", "set exactly one of registry, local, gha, s3, raw"),
    (img(cacheTo=[{"registry": {"ref": f"{P}/a:c", "mode": "maximum"}}]),
     "cacheTo[0].registry.mode", "unknown variant"),
    (img(cacheFrom=[{"registry": {"ref": f"{P}/a:c", "mode": "max"}}]),
     "cacheFrom[0].registry.mode", "unknown field"),
    (img(cacheTo=[{"registry": {"reff": f"{P}/a:c"}}]), "cacheTo[0].registry.reff",
     "unknown field"),
    (img(cacheTo=[{"local": {}}]), "cacheTo[0].local.dest", "missing field"),
    (img(cacheTo=[{"local": {"dest": " "}}]), "cacheTo[0].local.dest", "a directory is required"),
    (img(cacheTo=[{"local": {"dest": "/etc/hostname"}}]), "cacheTo[0].local.dest",
     "exists and is not a directory"),
    (img(cacheFrom=["type=local,src=/etc/hostname"]), "cacheFrom[0]",
     "exists and is not a directory"),
    (img(cacheFrom=[{"local": {"dest": "/tmp/c", "src": "/tmp/c"}}]), "cacheFrom[0].local.dest",
     "unknown field"),
    (img(cacheTo=[{"s3": {"bucket": "b"}}]), "cacheTo[0].s3.region", "missing field"),
    (img(cacheTo=[{"s3": {"bucket": "", "region": "r"}}]), "cacheTo[0].s3.bucket", "empty"),
    (img(cacheFrom=[{"gha": {"ignoreError": True}}]), "cacheFrom[0].gha.ignoreError",
     "unknown field"),
    (img(cacheTo=[{"raw": "type=nosuch"}]), "cacheTo[0].raw", "unknown type"),
    (img(cacheTo=[{"raw": "type=registry,mode=max"}]), "cacheTo[0].raw", "needs ref"),
    (img(cacheTo=[3]), "cacheTo[0]", "a buildx cache string or a CacheTo object"),
    (img(cacheTo=["type=registry,ref=x,garbage"]), "cacheTo[0]", "not key=value"),
]


@pytest.mark.parametrize("inputs,prop,reason", BAD, ids=[f"{c[1]}-{i}" for i, c in enumerate(BAD)])
def test_bad_typed_entries_are_check_failures_naming_the_property(provider, inputs, prop, reason):
    _, failures = provider.check(IMAGE, inputs)
    assert failures, f"no failure for {inputs}"
    props = [f[0] for f in failures]
    assert prop in props, failures
    assert any(reason in r for p, r in failures if p == prop), failures


def _b64(d):
    return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")


# A JWT as the Actions runtime hands out (BuildKit reads its claims); the signature is the
# part to look for in logs.
GHA_SIG = "sig" + "7" * 29  # valid base64url: BuildKit decodes it
GHA_TOKEN = ".".join([_b64({"alg": "HS256", "typ": "JWT"}),
                      _b64({"ac": json.dumps([{"Scope": "refs/heads/main", "Permission": 3}]),
                            "exp": 4102444800}), GHA_SIG])
S3_KEY = "s3secret" + "9" * 20
S3_SESSION = "s3session" + "5" * 20


def no_secrets(text):
    for s in (GHA_SIG, S3_KEY, S3_SESSION):
        assert s not in text, f"a credential leaked: {s[:6]}…"


@pytest.fixture
def on_buildkitd(engine, provider_env, world):
    p = configured(engine, provider_env, world, **buildkitd(world))
    yield p
    p.close()


def test_cache_credentials_stay_secret_in_state_and_logs(on_buildkitd, engine, world, tmp_path):
    """The program sends the token and keys as plain strings; Check and the state wrap them
    as secrets at their own path; a real build (gha import and s3 export against unreachable
    services, the export with `ignoreError`), the engine's messages and the provider's log
    at -v=9 never show them."""
    marker = unique("secret-cache")
    dockerfile(tmp_path, world, marker)
    repo = f"{world['PLAIN_REGISTRY']}/{unique('secret-cache')}"
    inputs = {
        "context": {"location": str(tmp_path)}, "platforms": ["linux/amd64"], "network": "none",
        "tags": [f"{repo}:v1"],
        "cacheFrom": [{"gha": {"scope": "app", "url": "http://127.0.0.1:9/", "token": GHA_TOKEN}}],
        "cacheTo": [{"s3": {"bucket": "b", "region": "us-east-1", "accessKeyId": "AKIAX",
                            "secretAccessKey": S3_KEY, "sessionToken": S3_SESSION,
                            "endpointUrl": "http://127.0.0.1:9", "usePathStyle": True,
                            "ignoreError": True}}],
    }
    checked, failures = on_buildkitd.check(IMAGE, inputs)
    assert failures == []
    wrapped = {SIG: SECRET_SIG, "value": GHA_TOKEN}
    assert checked["cacheFrom"][0]["gha"]["token"] == wrapped
    s3 = checked["cacheTo"][0]["s3"]
    assert s3["secretAccessKey"] == {SIG: SECRET_SIG, "value": S3_KEY}
    assert s3["sessionToken"] == {SIG: SECRET_SIG, "value": S3_SESSION}
    assert s3["accessKeyId"] == "AKIAX"
    _, state = on_buildkitd.create(IMAGE, checked)
    assert state["digest"].startswith("sha256:")
    # The engine sent them as secrets (Check's answer), so each whole property comes back
    # secret (the front's rule); inside, each value is at its own path.
    for key in ("cacheFrom", "cacheTo"):
        assert state[key][SIG] == SECRET_SIG, state[key]
    assert state["cacheFrom"]["value"][0]["gha"]["token"] in (GHA_TOKEN, wrapped)
    assert state["cacheTo"]["value"][0]["s3"]["secretAccessKey"] in (
        S3_KEY, {SIG: SECRET_SIG, "value": S3_KEY})
    # Outside the secret properties the values appear nowhere in the state.
    bare = {k: v for k, v in state.items() if k not in ("cacheFrom", "cacheTo")}
    no_secrets(json.dumps(bare))
    # BuildKit got them: both caches were tried (and failed, the services being unreachable).
    messages = "\n".join(engine.messages())
    assert "importing cache manifest from gha" in messages, messages
    assert "exporting cache to Amazon S3" in messages, messages
    no_secrets(on_buildkitd.stderr())
    no_secrets("\n".join(engine.messages()))
    # A rotated token is no change (x-diff ignore), another scope is.
    news = json.loads(json.dumps(checked))
    news["cacheFrom"][0]["gha"]["token"] = secret("another-token")
    assert on_buildkitd.diff(IMAGE, "r", state, news).changes == DIFF_NONE
    news["cacheFrom"][0]["gha"]["scope"] = "other"
    assert on_buildkitd.diff(IMAGE, "r", state, news).changes == DIFF_SOME
    no_secrets(on_buildkitd.stderr())


def test_local_caches_pass_check_string_or_typed(provider, tmp_path):
    for entry in [{"local": {"dest": str(tmp_path / "c")}}, f"type=local,dest={tmp_path}/c"]:
        _, failures = provider.check(IMAGE, img(cacheTo=[entry]))
        assert failures == [], failures
    _, failures = provider.check(IMAGE, img(cacheFrom=[f"type=local,src={tmp_path}/c"]))
    assert failures == [], failures


def oci_index(cache_dir):
    return json.loads((cache_dir / "index.json").read_text())


@pytest.mark.parametrize("form", ["typed", "string"])
def test_typed_local_cache_round_trip(engine, provider_env, world, tmp_path, form):
    """`{local: {dest}}` (or `type=local,dest=…`) writes an OCI layout into a directory on the
    provider's host through the session's content store, its index.json naming the cache
    `latest`; `{local: {src}}` on another builder (the second Engine: its own BuildKit and
    build cache, never saw this Dockerfile) imports it and gets the RUN step CACHED."""
    marker = unique("local-cache")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    dockerfile(ctx, world, marker)
    cache_dir = tmp_path / "cache"
    repo = f"{world['PLAIN_REGISTRY']}/{unique('local-cache')}"
    base = {"context": {"location": str(ctx)}, "platforms": ["linux/amd64"], "network": "none"}
    if form == "typed":
        to, frm = {"local": {"dest": str(cache_dir), "mode": "max"}}, {"local": {"src": str(cache_dir)}}
    else:
        to, frm = f"type=local,dest={cache_dir},mode=max", f"type=local,src={cache_dir}"
    p = configured(engine, provider_env, world)
    try:
        # Nothing to import yet: the first build warns and goes on.
        build(p, {**base, "tags": [f"{repo}:v1"], "cacheFrom": [frm], "cacheTo": [to]})
        assert not cached(engine, marker), "a fresh Dockerfile: the step runs"
    finally:
        p.close()
    index = oci_index(cache_dir)
    assert index["schemaVersion"] == 2
    [m] = index["manifests"]
    assert m["annotations"]["org.opencontainers.image.ref.name"] == "latest"
    hexd = m["digest"].split(":", 1)[1]
    assert (cache_dir / "blobs" / "sha256" / hexd).is_file()
    assert (cache_dir / "oci-layout").is_file()
    # Every blob is whole: its name is its digest.
    import hashlib
    blobs = list((cache_dir / "blobs" / "sha256").iterdir())
    assert len(blobs) >= 3
    for b in blobs:
        assert hashlib.sha256(b.read_bytes()).hexdigest() == b.name
    assert not [f for f in cache_dir.iterdir() if f.name.startswith(".multiarch")]
    e2 = type(engine)()
    p2 = configured(e2, provider_env, world, builder="docker+" + world["DOCKER2_HOST"])
    try:
        build(p2, {**base, "tags": [f"{repo}:v2"], "cacheFrom": [frm]})
        assert cached(e2, marker), "the second Engine gets the step from the local cache"
    finally:
        p2.close()
        e2.stop()


def test_each_node_keeps_its_own_tag_in_one_local_cache(engine, provider_env, world, tmp_path):
    """Split over two nodes, both export into one local cache directory, each under its own
    tag (`latest-linux-amd64`, `latest-linux-arm64`); another layout (amd64 on the second
    Engine, arm64 on the standalone buildkitd: neither built that platform of this Dockerfile)
    gets the RUN step from it on both platforms."""
    marker = unique("nodes-local-cache")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    dockerfile(ctx, world, marker)
    cache_dir = tmp_path / "cache"
    repo = f"{world['PLAIN_REGISTRY']}/{unique('nodes-local-cache')}"
    node = buildkitd(world)
    layouts = {
        "A": [{"endpoint": "docker+" + world["DOCKER_HOST"], "platforms": ["linux/amd64"]},
              {"endpoint": "docker+" + world["DOCKER2_HOST"], "platforms": ["linux/arm64"]}],
        "B": [{"endpoint": "docker+" + world["DOCKER2_HOST"], "platforms": ["linux/amd64"]},
              {"endpoint": node["builder"], "platforms": ["linux/arm64"],
               "tls": node["builderTls"]}],
    }
    for layout, tag in (("A", "v1"), ("B", "v2")):
        e = type(engine)()
        p = Provider(e, env=provider_env)
        try:
            p.handshake()
            p.configure({"registries": [{"address": world["PLAIN_REGISTRY"], "insecure": True}],
                         "builders": layouts[layout]})
            build(p, {"context": {"location": str(ctx)}, "network": "none",
                      "platforms": ["linux/amd64", "linux/arm64"], "tags": [f"{repo}:{tag}"],
                      "cacheFrom": [{"local": {"src": str(cache_dir)}}],
                      "cacheTo": [{"local": {"dest": str(cache_dir), "mode": "max"}}]})
            hits = {n: any(f"[builders[{n}] " in m and "CACHED" in m and marker in m
                           for m in e.messages()) for n in (0, 1)}
        finally:
            p.close()
            e.stop()
        if layout == "A":
            assert hits == {0: False, 1: False}, "a fresh Dockerfile: the step runs"
            names = {m["annotations"]["org.opencontainers.image.ref.name"]
                     for m in oci_index(cache_dir)["manifests"]}
            assert names == {"latest-linux-amd64", "latest-linux-arm64"}, names
        else:
            assert hits == {0: True, 1: True}, hits


TF_CONFIG = """
terraform {
  required_providers {
    multiarch = { source = "example.com/multiarch/multiarch" }
  }
}

provider "multiarch" {
  registries = [{ address = "%(registry)s", insecure = true }]
}

resource "multiarch_image" "app" {
  context {
    location = "%(context)s"
  }
  platforms  = ["linux/amd64"]
  tags       = ["%(repo)s:v1"]
  network    = "none"
  cache_from = %(cache_from)s
  cache_to   = ["type=registry,ref=%(repo)s:cache,mode=max"]
}
"""


def test_terraform_takes_the_string_form(tmp_path, world):
    """Terraform has no unions: `cache_from`/`cache_to` stay `list(string)` (the model's plain
    form of the union), so buildx strings plan and an object is Terraform's own type error."""
    from test_terraform import Terraform

    marker = unique("tf-cache")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    dockerfile(ctx, world, marker)
    repo = f"{world['PLAIN_REGISTRY']}/{unique('tf-cache')}"
    values = {"registry": world["PLAIN_REGISTRY"], "context": str(ctx), "repo": repo}
    for name, cache_from, ok in (
        ("strings", f'["{repo}:cache"]', True),
        ("object", f'[{{ registry = {{ ref = "{repo}:cache" }} }}]', False),
    ):
        d = tmp_path / name
        d.mkdir()
        (d / "main.tf").write_text(TF_CONFIG % {**values, "cache_from": cache_from})
        tf = Terraform(d, world)
        p = tf("plan", "-input=false", ok=(0, 1))
        if ok:
            assert p.returncode == 0, p.stderr
            assert f'"{repo}:cache"' in p.stdout, p.stdout
        else:
            assert p.returncode == 1
            assert "string required" in p.stderr, p.stderr

"""Bad input, as users write it, through both fronts: every case is a failure naming its
property, the plugin never crashes, and the registries see no write."""

import pytest
from pulumi.runtime.proto import provider_pb2

from harness import IMAGE, ML, RegistryLog, from_struct, to_struct

P = "127.0.0.1:5000"
T = [f"{P}/bad:1"]
SRC = [f"{P}/bad:src"]
PEM_NOT = "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n"


def img(**kw):
    base = {"dockerfile": {"inline": "FROM scratch\n"}, "tags": T}
    base.update(kw)
    return base


def ml(**kw):
    base = {"tags": T, "sources": SRC}
    base.update(kw)
    return base


IMAGE_CASES = [
    (img(context={"location": "/nonexistent"}), "context.location", "not a directory"),
    (img(context={"location": "/etc/hostname"}), "context.location", "not a directory"),
    ({"dockerfile": {"location": "/nonexistent/Dockerfile"}, "tags": T}, "dockerfile.location", "not a file"),
    ({"dockerfile": {"location": "/etc/hostname", "inline": "FROM scratch"}, "tags": T}, "dockerfile", "not both"),
    ({"tags": T}, "dockerfile", "dockerfile.inline is required"),
    (img(dockerfile={"inline": "FROM scratch\n\x00RUN x\n"}), "dockerfile.inline", "NUL"),
    (img(platforms=["linux/sparc"]), "platforms[0]", "unknown architecture"),
    (img(platforms=["linux/amd64", ""]), "platforms[1]", ""),
    (img(platforms=["linux/arm64", "linux/aarch64"]), "platforms[1]", "same platform"),
    (img(platforms=["linux/amd64", "linux/x86_64"]), "platforms[1]", "same platform"),
    (img(platforms=["linux/arm/v7/extra"]), "platforms[0]", ""),
    (img(tags=["app"]), "tags[0]", "registry host"),
    (img(tags=["app:1"]), "tags[0]", "registry host"),
    (img(tags=[f"{P}/ok:1", ""]), "tags[1]", "empty"),
    (img(tags=[f"{P}/UPPER:1"]), "tags[0]", "not a valid image reference"),
    (img(tags=[f"{P}/a@sha256:" + "0" * 64]), "tags[0]", "digest"),
    (img(tags=[]), "tags", "no tags"),
    (img(network="bridge"), "network", "unknown variant"),
    (img(cacheFrom=["type=nosuch,ref=x"]), "cacheFrom[0]", "unknown type"),
    (img(cacheFrom=["type=registry,mode=max"]), "cacheFrom[0]", "needs ref"),
    (img(cacheTo=["type=registry,ref=x,garbage"]), "cacheTo[0]", "not key=value"),
    (img(cacheTo=["type=local"]), "cacheTo[0]", "needs src or dest"),
    (img(cacheTo=[""]), "cacheTo[0]", "empty"),
    (img(buildArgs={"A=B": "1"}), 'buildArgs["A=B"]', "without '='"),
    (img(labels={"": "x"}), 'labels[""]', "non-empty"),
    (img(sbomGenerator="scanner:1"), "sbomGenerator", "only used with sbom"),
    (img(sbom=True, sbomGenerator="scanner"), "sbomGenerator", "registry host"),
    (img(push="yes"), "push", "invalid type"),
    (img(platforms="linux/amd64"), "platforms", "invalid type"),
    (img(bogus=1), "", "unknown field"),
]

ML_CASES = [
    (ml(tags=[]), "tags", "at least one tag"),
    (ml(tags=["app"]), "tags[0]", "registry host"),
    (ml(tags=[f"{P}/a:1", "quay.io"]), "tags[1]", "registry host"),
    (ml(tags=[f"{P}/a@sha256:" + "1" * 64]), "tags[0]", "digest"),
    (ml(tags=[f"{P}/a:bad tag"]), "tags[0]", "not a valid image reference"),
    (ml(sources=[]), "sources", "at least one source"),
    (ml(sources=["busybox"]), "sources[0]", "registry host"),
    (ml(sources=[f"{P}/a:1", f"{P}/a:1"]), "sources[1]", "listed twice"),
    (ml(sources=[f"{P}/a:1", ""]), "sources[1]", "empty"),
    (ml(sources=[f"{P}/a@sha256:short"]), "sources[0]", "not a valid image reference"),
    (ml(platformOverrides={f"{P}/other:1": "linux/arm64"}), f'platformOverrides["{P}/other:1"]', "not one of the sources"),
    (ml(platformOverrides={SRC[0]: "linux/sparc"}), f'platformOverrides["{SRC[0]}"]', "unknown architecture"),
    (ml(platformOverrides={SRC[0]: ""}), f'platformOverrides["{SRC[0]}"]', ""),
    (ml(mediaType="docker", annotations={"a": "b"}), "annotations", "set mediaType to oci"),
    (ml(mediaType="v2"), "mediaType", "unknown variant"),
    (ml(annotations=["a"]), "annotations", "invalid type"),
    (ml(keepRemotely="no"), "keepRemotely", "invalid type"),
    (ml(tags=f"{P}/a:1"), "tags", "invalid type"),
    (ml(extra=True), "", "unknown field"),
    ({"sources": SRC}, "tags", "missing field"),
]

CONFIG_CASES = [
    ({"registries": [{"address": ""}]}, "registries[0].address", "is empty"),
    ({"registries": [{"address": "   "}]}, "registries[0].address", "is empty"),
    ({"registries": [{"address": "a b.example"}]}, "registries[0].address", "not a registry host"),
    ({"registries": [{"address": "user@ghcr.io"}]}, "registries[0].address", "not a registry host"),
    ({"registries": [{"address": "ghcr.io", "password": "p"}]}, "registries[0].username", "required when password"),
    ({"registries": [{"address": "ghcr.io", "username": "u"}]}, "registries[0].password", "required when username"),
    ({"registries": [{"address": "ghcr.io", "caCert": "hello"}]}, "registries[0].caCert", "no PEM certificate"),
    ({"registries": [{"address": "ghcr.io"}, {"address": "quay.io", "caCert": PEM_NOT}]},
     "registries[1].caCert", "not valid PEM"),
    ({"registries": [{"address": "ghcr.io"}, {"address": "GHCR.io"}]}, "registries[1].address", "already configured"),
    ({"registries": [{"adress": "x"}]}, "registries", "adress"),
    ({"registries": [{"address": "ghcr.io", "insecure": "yes"}]}, "registries[0].insecure", "invalid type"),
    ({"registries": "ghcr.io"}, "registries", "invalid type"),
    ({"builder": "ftp://x"}, "builder", ""),
    ({"builder": "tcp://"}, "builder", ""),
    ({"builderTls": {"caCert": "x"}}, "builderTls", ""),
    ({"aws": {"region": 1}}, "aws.region", "invalid type"),
    ({"nope": 1}, "", "unknown field"),
]


def test_table_is_large_enough():
    assert len(IMAGE_CASES) + len(ML_CASES) + len(CONFIG_CASES) >= 60


@pytest.fixture(scope="module")
def checked(world):
    """One provider for the whole table: it must survive every case."""
    from harness import FakeEngine, Provider

    keys = ["AWS_ENDPOINT_URL_ECR", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION",
            "SSL_CERT_FILE", "DOCKER_HOST"]
    engine = FakeEngine()
    p = Provider(engine, env={k: world[k] for k in keys if k in world})
    p.handshake()
    p.configure({"registries": [{"address": P, "insecure": True}]})
    log = RegistryLog(world["PLAIN_REGISTRY_LOG"])
    log.mark()
    yield p
    assert p.proc.poll() is None, "the plugin crashed on bad input"
    assert [w for w in log.writes() if "/bad/" in w] == [], "bad input reached a registry"
    p.close()
    engine.stop()


def matches(failures, prop, words):
    return any((prop == "" or p == prop) and words.lower() in r.lower() for p, r in failures)


@pytest.mark.parametrize("inputs, prop, words", IMAGE_CASES)
def test_bad_image_input(checked, inputs, prop, words):
    _, failures = checked.check(IMAGE, inputs)
    assert failures, "accepted"
    assert matches(failures, prop, words), failures


@pytest.mark.parametrize("inputs, prop, words", ML_CASES)
def test_bad_manifest_list_input(checked, inputs, prop, words):
    _, failures = checked.check(ML, inputs)
    assert failures, "accepted"
    assert matches(failures, prop, words), failures


@pytest.mark.parametrize("news, prop, words", CONFIG_CASES)
def test_bad_provider_configuration(checked, news, prop, words):
    resp = checked.stub.CheckConfig(provider_pb2.CheckRequest(news=to_struct(news)))
    failures = [(f.property, f.reason) for f in resp.failures]
    assert failures, "accepted"
    assert any((p == prop or p.startswith(prop)) and words.lower() in r.lower() for p, r in failures), failures
    # And the engine's Configure refuses it too.
    import grpc
    with pytest.raises(grpc.RpcError) as e:
        checked.stub.Configure(provider_pb2.ConfigureRequest(args=to_struct(news), acceptSecrets=True))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # The provider keeps its previous, good configuration.
    checked.configure({"registries": [{"address": P, "insecure": True}]})


# ---- the same through the real Terraform CLI ------------------------------------------------

TF_HEADER = """
terraform {
  required_providers {
    multiarch = { source = "example.com/multiarch/multiarch" }
  }
}
"""

TF_RESOURCES = """
provider "multiarch" {
  registries = [{ address = "127.0.0.1:5000", insecure = true }]
}
resource "multiarch_image" "bad_tag" {
  dockerfile { inline = "FROM scratch" }
  tags = ["app"]
}
resource "multiarch_image" "bad_network" {
  dockerfile { inline = "FROM scratch" }
  tags    = ["127.0.0.1:5000/bad:1"]
  network = "bridge"
}
resource "multiarch_image" "bad_cache" {
  dockerfile { inline = "FROM scratch" }
  tags       = ["127.0.0.1:5000/bad:1"]
  cache_from = ["type=nosuch,ref=x"]
}
resource "multiarch_image" "bad_build_arg" {
  dockerfile { inline = "FROM scratch" }
  tags       = ["127.0.0.1:5000/bad:1"]
  build_args = { "A=B" = "1" }
}
resource "multiarch_manifest_list" "bad_tag" {
  tags    = ["quay.io"]
  sources = ["127.0.0.1:5000/bad:src"]
}
resource "multiarch_manifest_list" "bad_override" {
  tags               = ["127.0.0.1:5000/bad:1"]
  sources            = ["127.0.0.1:5000/bad:src"]
  platform_overrides = { "127.0.0.1:5000/bad:src" = "linux/sparc" }
}
resource "multiarch_manifest_list" "bad_media_type" {
  tags       = ["127.0.0.1:5000/bad:1"]
  sources    = ["127.0.0.1:5000/bad:src"]
  media_type = "v2"
}
"""

TF_PROVIDER = """
provider "multiarch" {
  registries = [
    { address = "127.0.0.1:5000", insecure = true },
    { address = "ghcr.io", ca_cert = "hello" },
  ]
}
resource "multiarch_manifest_list" "x" {
  tags    = ["127.0.0.1:5000/bad:1"]
  sources = ["127.0.0.1:5000/bad:src"]
}
"""


def tf_plan_errors(tmp_path, world, body):
    from test_terraform import Terraform

    d = tmp_path / "tf"
    d.mkdir()
    (d / "main.tf").write_text(TF_HEADER + body)
    tf = Terraform(d, world)
    p = tf("plan", "-input=false", ok=(1,))
    return p.stderr


def test_bad_values_through_terraform(tmp_path, world):
    log = RegistryLog(world["PLAIN_REGISTRY_LOG"])
    log.mark()
    err = " ".join(tf_plan_errors(tmp_path, world, TF_RESOURCES).split())
    for expected in [
        "multiarch_image: invalid tags[0]",
        "multiarch_image: invalid network",
        "multiarch_image: invalid cache_from[0]",
        'multiarch_image: invalid build_args["A=B"]',
        "multiarch_manifest_list: invalid tags[0]",
        'multiarch_manifest_list: invalid platform_overrides["127.0.0.1:5000/bad:src"]',
        "multiarch_manifest_list: invalid media_type",
    ]:
        assert expected in err, f"{expected!r} not in:\n{err}"
    assert [w for w in log.writes() if "/bad/" in w] == []


def test_bad_provider_configuration_through_terraform(tmp_path, world):
    err = " ".join(tf_plan_errors(tmp_path, world, TF_PROVIDER).split())
    assert "invalid provider configuration: registries[1].ca_cert" in err, err
    assert "no PEM certificate" in err

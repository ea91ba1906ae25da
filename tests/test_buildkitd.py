"""A standalone buildkitd over tcp:// with mutual TLS (`builder` + `builderTls`), driven as the
engine drives the provider.

The buildkitd is the test world's own (scripts/testenv.sh): built from BuildKit's Go module,
listening only on tcp://127.0.0.1 and requiring a client certificate signed by the test CA
(`harness.WorldBuildkitd`). Its build history, read over the same mutual TLS with buildctl,
shows which builds it ran."""

import pytest

from harness import IMAGE, UNKNOWN, Provider, raw_manifest, secret, to_struct, unique
from pulumi.runtime.proto import provider_pb2


@pytest.fixture
def buildkitd(world_buildkitd):
    return world_buildkitd


@pytest.fixture
def certs(buildkitd):
    return buildkitd.certs


def read(path):
    with open(path) as f:
        return f.read()


def tls_config(certs, **override):
    cfg = {
        "caCert": read(certs["ca.pem"]),
        "cert": read(certs["client.pem"]),
        "key": secret(read(certs["client.key"])),
        "serverName": "buildkitd.test",  # the server certificate's name
    }
    cfg.update(override)
    return cfg


def test_image_built_on_a_tls_buildkitd(engine, provider_env, world, certs, buildkitd, tmp_path):
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

        # The daemon listens only on its mutual-TLS port: a record of this build there is the
        # build having gone through TLS with the client certificate.
        records = buildkitd.builds_exporting(repo)
        assert records, "the TLS buildkitd has no record of a build exporting " + repo
        produced = [d for r in records for d in buildkitd.result_digests(r)]
        assert state["digest"] in produced, (state["digest"], produced)
        key_body = key.splitlines()[1]
        for where, text in [("stderr", p.stderr()), ("engine log", "\n".join(engine.messages())),
                            ("state", repr(state))]:
            assert key_body not in text, f"the client key leaked into the {where}"
    finally:
        p.close()


@pytest.mark.parametrize("config,property,reason", [
    ({"builder": "http://somewhere"}, "builder", "expected"),
    ({"builder": "ssh://somewhere/var/run/docker.sock"}, "builder", "without a path"),
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

"""The plugin as the engine sees it: start-up, handshake, schema, config, value encoding."""

import json
import time
import tomllib

import grpc
import pytest
from google.protobuf import empty_pb2

from harness import (
    DIFF_NONE, DIFF_SOME, IMAGE, ML, OUTPUT_SIG, ROOT, SECRET_SIG, SIG, UNKNOWN, secret,
    to_struct, from_struct,
)
from pulumi.runtime.proto import provider_pb2

PLAIN = "127.0.0.1:5000"


def test_handshake_and_plugin_info(bare_provider):
    r = bare_provider.handshake()
    assert r.accept_secrets and r.accept_resources
    info = bare_provider.stub.GetPluginInfo(empty_pb2.Empty())
    version = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["version"]
    assert info.version == version


def test_configure_answers_preview_support(bare_provider):
    bare_provider.handshake()
    r = bare_provider.configure({"registries": [{"address": PLAIN, "insecure": True}]})
    assert r.supportsPreview and r.acceptSecrets and r.acceptResources


def test_schema_is_the_checked_in_one(provider):
    r = provider.stub.GetSchema(provider_pb2.GetSchemaRequest(version=0))
    served = json.loads(r.schema)
    on_disk = json.loads((ROOT / "schema" / "schema.json").read_text())
    assert served == on_disk
    assert set(served["resources"]) == {IMAGE, ML}
    assert served["resources"][IMAGE]["inputProperties"]["secrets"]["secret"] is True


def test_check_config_keeps_internal_key_and_secrets(bare_provider):
    news = {
        "__internal": {"pluginDownloadURL": ""},
        "version": "0.1.0",
        "registries": [{"address": "ghcr.io", "username": "me", "password": secret("hunter2")}],
    }
    resp = bare_provider.stub.CheckConfig(
        provider_pb2.CheckRequest(urn="urn:pulumi:test::p::pulumi:providers:multiarch::default", news=to_struct(news))
    )
    assert list(resp.failures) == []
    out = from_struct(resp.inputs)
    assert out["__internal"] == {"pluginDownloadURL": ""}
    # A secret nested in registries keeps the whole property secret.
    assert out["registries"][SIG] == SECRET_SIG
    assert out["registries"]["value"][0]["password"] == "hunter2"


def test_check_config_names_bad_property(bare_provider):
    resp = bare_provider.stub.CheckConfig(
        provider_pb2.CheckRequest(news=to_struct({"registries": [{"adress": "x"}]}))
    )
    assert len(resp.failures) == 1
    assert "registries" in resp.failures[0].property
    assert "adress" in resp.failures[0].reason


def test_diff_config_ignores_passwords_and_never_replaces(bare_provider):
    def diff(old_pw, new_addr="ghcr.io"):
        olds = {"registries": [{"address": "ghcr.io", "username": "u", "password": secret(old_pw)}]}
        news = {"registries": [{"address": new_addr, "username": "u", "password": secret("rotated")}]}
        return bare_provider.stub.DiffConfig(
            provider_pb2.DiffRequest(olds=to_struct(olds), news=to_struct(news))
        )

    assert diff("old-token").changes == DIFF_NONE
    changed = diff("old-token", new_addr="quay.io")
    assert changed.changes == DIFF_SOME
    assert list(changed.replaces) == []


def test_check_accepts_unknowns_and_keeps_them(provider):
    inputs, failures = provider.check(
        ML, {"tags": [UNKNOWN], "sources": UNKNOWN, "annotations": {"a": UNKNOWN}}
    )
    assert failures == []
    assert inputs["tags"] == [UNKNOWN]
    assert inputs["sources"] == UNKNOWN
    assert inputs["annotations"] == {"a": UNKNOWN}


def test_check_accepts_typed_unknowns_and_output_values(provider):
    inputs, failures = provider.check(
        ML,
        {
            "tags": {SIG: OUTPUT_SIG, "dependencies": ["urn:x"]},
            "sources": "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",
        },
    )
    assert failures == []
    assert inputs["tags"] == UNKNOWN
    assert inputs["sources"] == UNKNOWN


def test_create_preview_with_unknowns_echoes_inputs_and_unknown_outputs(provider, plain_log):
    _, props = provider.create(
        ML, {"tags": [f"{PLAIN}/x:1"], "sources": UNKNOWN}, preview=True
    )
    assert props["tags"] == [f"{PLAIN}/x:1"]
    assert props["sources"] == UNKNOWN
    for out in ["digest", "ref", "manifests", "platforms"]:
        assert props[out] == UNKNOWN, out
    assert plain_log.writes() == []


def test_secret_inputs_stay_secret_in_outputs(provider, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    news = {
        "context": {"location": str(tmp_path)},
        "platforms": ["linux/amd64"],
        "tags": [f"{PLAIN}/s:1"],
        "secrets": {"token": secret("s3cr3t")},
        "buildArgs": {"A": "b"},
    }
    inputs, failures = provider.check(IMAGE, news)
    assert failures == []
    assert inputs["secrets"][SIG] == SECRET_SIG
    assert "s3cr3t" not in provider.stderr()


def test_diff_treats_lists_as_sets(provider):
    olds = {"tags": [f"{PLAIN}/a:1", f"{PLAIN}/a:2"], "sources": [f"{PLAIN}/a:x@sha256:" + "0" * 64]}
    news = {"tags": [f"{PLAIN}/a:2", f"{PLAIN}/a:1"], "sources": olds["sources"]}
    assert provider.diff(ML, "id", olds, news).changes == DIFF_NONE
    news["tags"].append(f"{PLAIN}/a:3")
    d = provider.diff(ML, "id", olds, news)
    assert d.changes == DIFF_SOME
    assert list(d.diffs) == ["tags"]
    assert d.detailedDiff["tags"].kind == provider_pb2.PropertyDiff.UPDATE
    assert list(d.replaces) == []


def test_unknown_type_and_unimplemented_calls_are_clear(provider):
    with pytest.raises(grpc.RpcError) as e:
        provider.check("multiarch:index:Nope", {})
    assert "unknown resource type" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        provider.stub.Construct(provider_pb2.ConstructRequest())
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_cancel_is_accepted(provider):
    provider.stub.Cancel(empty_pb2.Empty())
    with pytest.raises(grpc.RpcError) as e:
        provider.diff(ML, "id", {"tags": ["127.0.0.1:1/a:1"], "sources": ["127.0.0.1:1/a:1"]},
                      {"tags": ["127.0.0.1:1/a:1"], "sources": ["127.0.0.1:1/a:1"]})
    assert e.value.code() == grpc.StatusCode.CANCELLED


def test_startup_prints_only_the_port(engine, provider_env):
    from harness import Provider

    t0 = time.monotonic()
    p = Provider(engine, env=provider_env)
    try:
        assert time.monotonic() - t0 < 5
        p.handshake()
        # Nothing else may appear on stdout: the engine would take it as garbage.
        p.proc.terminate()
        rest = p.proc.stdout.read()
        assert rest == b""
    finally:
        p.close()

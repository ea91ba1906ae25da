"""AWS identities as pipelines have them, end to end: the provider binary driven as the engine
drives it, moto's STS (AssumeRole, AssumeRoleWithWebIdentity) and ECR APIs, and two ECR
look-alike hosts of two accounts (scripts/testenv.sh).

moto gives each caller the ECR token `<account>-auth-token` of the account its access key
belongs to; an assumed role's keys belong to the role's account. The second account's
registry (ECR_B_REGISTRY) takes only `210987654321-auth-token`, so a push there proves the
role was used; moto's API (`/moto-api/data.json`) shows which role was assumed, with which
session name and external ID, and the session credentials it handed out (which the tests
then look for in every log)."""

import base64
import json
import os
import subprocess
import time
import urllib.request

import grpc
import pytest
from pulumi.runtime.proto import provider_pb2

from harness import (
    IMAGE, ML, UNKNOWN, Provider, RegistryLog, binary, from_struct, raw_manifest, run, secret,
    skopeo_copy, to_struct, unique,
)

# The test world's parts for these tests (scripts/testenv.sh writes them to its env file;
# the same values stand here for an env file written before they existed: if the parts are
# not running the tests fail on them, they never skip).
AWS_WORLD = {
    "ECR_B_REGISTRY": "210987654321.dkr.ecr.us-east-1.amazonaws.com",
    "ECR_B_ACCOUNT_ID": "210987654321",
    "ECR_B_REGISTRY_LOG": "/var/lib/multiarch-testenv/logs/registry-ecr-b.log",
    "PUBLIC_REGISTRY": "public.ecr.aws",
    "PUBLIC_REGISTRY_TOKEN": "ecr-public-auth-token",
    "PUBLIC_REGISTRY_LOG": "/var/lib/multiarch-testenv/logs/registry-public-nginx.log",
}


@pytest.fixture(scope="session")
def world(world):
    state = world.get("MULTIARCH_TESTENV_STATE", "/var/lib/multiarch-testenv")
    defaults = {k: v.replace("/var/lib/multiarch-testenv", state) for k, v in AWS_WORLD.items()}
    return {**defaults, **world}


# Everything the SDK's default chain could find besides what a test gives it.
CHAIN_VARS = [
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
    "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
]


def moto_assumed_roles(world) -> list[dict]:
    with urllib.request.urlopen(f"{world['MOTO_ENDPOINT']}/moto-api/data.json", timeout=10) as r:
        data = json.load(r)
    return data.get("sts", {}).get("AssumedRole", [])


def sessions(world, name: str) -> list[dict]:
    """The roles moto handed out under session name `name`."""
    return [r for r in moto_assumed_roles(world) if r["session_name"] == name]


def role_secrets(role: dict) -> list[str]:
    return [role["secret_access_key"], role["session_token"]]


@pytest.fixture
def aws_home(tmp_path, monkeypatch, world):
    """An environment with no AWS identity but what the test adds: no keys, no profile,
    empty config files, no instance metadata; moto for ECR and STS."""
    for k in CHAIN_VARS:
        monkeypatch.delenv(k, raising=False)
    config = tmp_path / "aws-config"
    creds = tmp_path / "aws-credentials"
    config.write_text("")
    creds.write_text("")
    return {
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(creds),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL_ECR": world["AWS_ENDPOINT_URL_ECR"],
        "AWS_ENDPOINT_URL_STS": world["MOTO_ENDPOINT"],
        "AWS_REGION": "us-east-1",
        "SSL_CERT_FILE": world["SSL_CERT_FILE"],
        "DOCKER_HOST": world["DOCKER_HOST"],
    }


STATIC_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def start(engine, env, config, flags=None):
    p = Provider(engine, env=env)
    p.handshake()
    p.configure(config)
    return p


def role_arn(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:role/{name}"


def seed_b(world, repo_b: str):
    """`<repo_b>:amd64` and `:arm64` in the second account's registry (its own password)."""
    creds = f"AWS:{world['ECR_B_ACCOUNT_ID']}-auth-token"
    skopeo_copy(world["BASE_IMAGE_ECR_AMD64"], f"{repo_b}:amd64", "--dest-creds", creds)
    skopeo_copy(world["BASE_IMAGE_ECR_ARM64"], f"{repo_b}:arm64", "--dest-creds", creds)


def inspect_b(world, ref: str) -> dict:
    creds = f"AWS:{world['ECR_B_ACCOUNT_ID']}-auth-token"
    return json.loads(run("skopeo", "inspect", "--raw", "--creds", creds, f"docker://{ref}").stdout)


# ---- web identity (OIDC in CI): nothing configured ------------------------------------------

def test_web_identity_only_builds_and_pushes_an_image(engine, aws_home, world, tmp_path):
    session = unique("oidc")
    role = role_arn(world["AWS_ACCOUNT_ID"], unique("ci-oidc"))
    token = tmp_path / "web-identity-token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOm11bHRpYXJjaCJ9.c2lnbmF0dXJl")
    env = dict(aws_home, AWS_ROLE_ARN=role, AWS_WEB_IDENTITY_TOKEN_FILE=str(token),
               AWS_ROLE_SESSION_NAME=session)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    # The base image comes from the ECR host too: BuildKit's pull asks the provider.
    (ctx / "Dockerfile").write_text(f"FROM {world['BASE_IMAGE_ECR']}\nRUN echo oidc > /how\n")
    repo = f"{world['ECR_REGISTRY']}/{unique('oidc')}"
    p = start(engine, env, {})
    try:
        log = RegistryLog(world["ECR_REGISTRY_LOG"])
        log.mark()
        inputs = {"context": {"location": str(ctx)}, "platforms": ["linux/amd64"],
                  "tags": [f"{repo}:v1"], "network": "none"}
        checked, failures = p.check(IMAGE, inputs)
        assert failures == []
        _, state = p.create(IMAGE, checked)
        assert raw_manifest(f"{repo}:v1")["schemaVersion"] == 2
        assert any(f"/v2/{repo.split('/', 1)[1]}/manifests/" in w for w in log.writes())
        # STS was asked once, for the role of AWS_ROLE_ARN (AssumeRoleWithWebIdentity).
        got = sessions(world, session)
        assert [r["role_arn"] for r in got] == [role]
        stderr = p.stderr()
    finally:
        p.close()
    for s in role_secrets(got[0]):
        assert s not in stderr and s not in json.dumps(state)
        assert all(s not in m for m in engine.messages())


def test_web_identity_failure_names_the_role_and_the_call(engine, aws_home, world, tmp_path):
    role = role_arn(world["AWS_ACCOUNT_ID"], unique("ci-oidc"))
    env = dict(aws_home, AWS_ROLE_ARN=role,
               AWS_WEB_IDENTITY_TOKEN_FILE=str(tmp_path / "no-such-token"))
    p = start(engine, env, {})
    try:
        with pytest.raises(grpc.RpcError) as e:
            p.create(ML, {"tags": [f"{world['ECR_REGISTRY']}/{unique('x')}:1"],
                          "sources": [world["BASE_IMAGE_ECR_AMD64"]]})
    finally:
        p.close()
    msg = e.value.details()
    assert "STS AssumeRoleWithWebIdentity" in msg and role in msg, msg
    assert world["ECR_REGISTRY"] in msg


def test_web_identity_then_assume_role_into_another_account(engine, aws_home, world, tmp_path):
    """OIDC gives the CI role; aws.assumeRole chains from it into account B."""
    oidc_session, role_session = unique("oidc"), unique("chained")
    ci_role = role_arn(world["AWS_ACCOUNT_ID"], unique("ci-oidc"))
    b_role = role_arn(world["ECR_B_ACCOUNT_ID"], unique("ecr-push"))
    token = tmp_path / "web-identity-token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjaSJ9.c2ln")
    env = dict(aws_home, AWS_ROLE_ARN=ci_role, AWS_WEB_IDENTITY_TOKEN_FILE=str(token),
               AWS_ROLE_SESSION_NAME=oidc_session)
    repo_b = f"{world['ECR_B_REGISTRY']}/{unique('app')}"
    seed_b(world, repo_b)
    p = start(engine, env, {"aws": {"assumeRole": {"roleArn": b_role, "sessionName": role_session}}})
    try:
        _, state = p.create(ML, {"tags": [f"{repo_b}:v1"],
                                 "sources": [f"{repo_b}:amd64", f"{repo_b}:arm64"]})
    finally:
        p.close()
    assert state["platforms"] == ["linux/amd64", "linux/arm64"]
    assert len(inspect_b(world, f"{repo_b}:v1")["manifests"]) == 2
    assert [r["role_arn"] for r in sessions(world, oidc_session)] == [ci_role]
    assert [r["role_arn"] for r in sessions(world, role_session)] == [b_role]


# ---- credential_process profiles: nothing configured but AWS_PROFILE -----------------------

def test_credential_process_profile_from_the_environment(engine, aws_home, world, tmp_path):
    marker = tmp_path / "process-ran"
    script = tmp_path / "credential-process.sh"
    script.write_text(
        "#!/bin/sh\n"
        f"echo ran >> {marker}\n"
        'echo \'{"Version": 1, "AccessKeyId": "AKIDPROCESS0000000001", '
        '"SecretAccessKey": "process-secret-key-value"}\'\n'
    )
    script.chmod(0o755)
    config = tmp_path / "aws-config"
    config.write_text(f"[profile ci]\ncredential_process = {script}\nregion = us-east-1\n")
    env = dict(aws_home, AWS_PROFILE="ci")
    p = start(engine, env, {})
    try:
        news = {"tags": [f"{world['ECR_REGISTRY']}/{unique('proc')}:1"],
                "sources": [world["BASE_IMAGE_ECR_AMD64"], world["BASE_IMAGE_ECR_ARM64"]]}
        _, preview = p.create(ML, news, preview=True)
        assert preview["platforms"] == ["linux/amd64", "linux/arm64"]
        _, state = p.create(ML, news)
        assert state["platforms"] == ["linux/amd64", "linux/arm64"]
        stderr = p.stderr()
    finally:
        p.close()
    # The chain ran the profile's program, once for the preview and the update together.
    assert marker.read_text().splitlines() == ["ran"]
    assert "process-secret-key-value" not in stderr


# ---- assumeRole in the provider configuration ----------------------------------------------

def test_assume_role_push_uses_the_roles_token(engine, aws_home, world):
    session = unique("push")
    role = role_arn(world["ECR_B_ACCOUNT_ID"], unique("ecr-push"))
    external_id = unique("tenant")
    repo_b = f"{world['ECR_B_REGISTRY']}/{unique('app')}"
    seed_b(world, repo_b)
    config = {"aws": {"assumeRole": {"roleArn": role, "sessionName": session,
                                     "externalId": secret(external_id), "durationSeconds": 900}}}
    p = start(engine, dict(aws_home, **STATIC_KEYS), config)
    log = RegistryLog(world["ECR_B_REGISTRY_LOG"])
    try:
        inputs = {"tags": [f"{repo_b}:v1"], "sources": [f"{repo_b}:amd64", f"{repo_b}:arm64"]}
        checked, failures = p.check(ML, inputs)
        assert failures == []
        log.mark()
        _, preview = p.create(ML, checked, preview=True)
        assert log.writes() == [] and preview["digest"] == UNKNOWN
        assert preview["platforms"] == ["linux/amd64", "linux/arm64"]
        _, state = p.create(ML, checked)
        assert any("/manifests/v1" in w for w in log.writes())
        stderr = p.stderr()
    finally:
        p.close()
    index = inspect_b(world, f"{repo_b}:v1")
    assert len(index["manifests"]) == 2
    got = sessions(world, session)
    # One AssumeRole for preview and update (cached), with the configured external ID.
    assert [(r["role_arn"], r["external_id"], r["account_id"]) for r in got] == [
        (role, external_id, world["ECR_B_ACCOUNT_ID"])]
    for s in role_secrets(got[0]) + [external_id]:
        assert s not in stderr and s not in json.dumps(state)
        assert all(s not in m for m in engine.messages())


def test_sts_failure_names_the_role_and_the_call(engine, aws_home, world):
    role = role_arn(world["ECR_B_ACCOUNT_ID"], unique("ecr-push"))
    env = dict(aws_home, **STATIC_KEYS)
    env["AWS_ENDPOINT_URL_STS"] = "http://127.0.0.1:9"  # nothing listens: refused at once
    p = start(engine, env, {"aws": {"assumeRole": {"roleArn": role}}})
    try:
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            p.create(ML, {"tags": [f"{world['ECR_B_REGISTRY']}/{unique('x')}:1"],
                          "sources": [f"{world['ECR_B_REGISTRY']}/{unique('x')}:src"]})
        assert time.monotonic() - t0 < 60
    finally:
        p.close()
    msg = e.value.details()
    assert f"STS AssumeRole for role {role}" in msg, msg
    assert world["ECR_B_REGISTRY"] in msg and "testing" not in msg


# ---- cross-account: a role per registry ----------------------------------------------------

def test_cross_account_manifest_list_with_a_role_per_registry(engine, aws_home, world):
    """Sources in account B (through B's role), the list in account A (the chain's own
    identity): each host with its own credentials, children copied across registries."""
    session = unique("artifacts")
    role = role_arn(world["ECR_B_ACCOUNT_ID"], unique("artifacts-read"))
    repo_b = f"{world['ECR_B_REGISTRY']}/{unique('app')}"
    seed_b(world, repo_b)
    target = f"{world['ECR_REGISTRY']}/{unique('promoted')}"
    config = {"registries": [{"address": world["ECR_B_REGISTRY"],
                              "aws": {"assumeRole": {"roleArn": role, "sessionName": session}}}]}
    p = start(engine, dict(aws_home, **STATIC_KEYS), config)
    log_a, log_b = RegistryLog(world["ECR_REGISTRY_LOG"]), RegistryLog(world["ECR_B_REGISTRY_LOG"])
    try:
        inputs = {"tags": [f"{target}:v1"], "sources": [f"{repo_b}:amd64", f"{repo_b}:arm64"]}
        checked, failures = p.check(ML, inputs)
        assert failures == []
        log_a.mark()
        log_b.mark()
        _, preview = p.create(ML, checked, preview=True)
        assert log_a.writes() == [] and log_b.writes() == [], "preview wrote"
        assert preview["platforms"] == ["linux/amd64", "linux/arm64"]
        id, state = p.create(ML, checked)
        assert log_b.writes() == [], "account B is only read"
        stderr = p.stderr()
    finally:
        p.close()
    index = raw_manifest(f"{target}:v1")
    assert sorted(m["digest"] for m in index["manifests"]) == sorted(
        m["digest"] for m in state["manifests"])
    # The children were copied into account A: pulls by digest work there.
    for m in state["manifests"]:
        assert raw_manifest(f"{target}@{m['digest']}")["schemaVersion"] == 2
    got = sessions(world, session)
    assert [(r["role_arn"], r["account_id"]) for r in got] == [(role, world["ECR_B_ACCOUNT_ID"])]
    for s in role_secrets(got[0]):
        assert s not in stderr


def test_the_provider_role_does_not_open_another_account(engine, aws_home, world):
    """Without B's entry, B's host gets the provider's identity (account A): refused."""
    repo_b = f"{world['ECR_B_REGISTRY']}/{unique('app')}"
    seed_b(world, repo_b)
    p = start(engine, dict(aws_home, **STATIC_KEYS), {})
    try:
        with pytest.raises(grpc.RpcError) as e:
            p.create(ML, {"tags": [f"{world['ECR_REGISTRY']}/{unique('x')}:1"],
                          "sources": [f"{repo_b}:amd64"]})
    finally:
        p.close()
    assert world["ECR_B_REGISTRY"] in e.value.details()


# ---- configuration errors --------------------------------------------------------------------

@pytest.mark.parametrize("config, prop, words", [
    ({"aws": {"assumeRole": {"roleArn": "ecr-push"}}}, "aws.assumeRole.roleArn",
     "is not an IAM role ARN"),
    ({"aws": {"assumeRole": {"roleArn": "arn:aws:iam::123456789012:role/r",
                             "durationSeconds": 60}}}, "aws.assumeRole.durationSeconds", "900"),
    ({"registries": [{"address": "210987654321.dkr.ecr.us-east-1.amazonaws.com",
                      "aws": {"assumeRole": {"roleArn": "arn:aws:iam::210987654321:role/r",
                                             "externalId": "x"}}}]},
     "registries[0].aws.assumeRole.externalId", "2 to 1224"),
    ({"registries": [{"address": "210987654321.dkr.ecr.us-east-1.amazonaws.com",
                      "username": "AWS", "password": "p", "aws": {}}]},
     "registries[0].aws", "not both"),
    ({"aws": {"assumeRole": {}}}, "aws.assumeRole.roleArn", "missing"),
    ({"registries": [{"address": "ghcr.io", "aws": {}}]}, "registries[0].aws",
     "neither an ECR host nor public.ecr.aws"),
])
def test_bad_aws_configuration_names_the_property(bare_provider, config, prop, words):
    resp = bare_provider.stub.CheckConfig(provider_pb2.CheckRequest(news=to_struct(config)))
    failures = [(f.property, f.reason) for f in resp.failures]
    assert len(failures) == 1, failures
    assert failures[0][0] == prop and words in failures[0][1], failures


# ---- secrets at every verbosity ------------------------------------------------------------

@pytest.mark.parametrize("flags, env", [
    (["-v=0"], {}),
    (["-v=9"], {}),
    (["-v=9"], {"MULTIARCH_LOG": "trace", "RUST_LOG": "trace"}),
    (["-v=9"], {"MULTIARCH_LOG": "aws_config=trace,aws_smithy_runtime=trace,aws_sdk_sts=trace,"
                                 "hyper=trace,trace"}),
])
def test_role_credentials_in_no_log_at_any_verbosity(engine, aws_home, world, tmp_path, flags, env):
    session = unique("verbose")
    external_id = unique("ext")
    role = role_arn(world["ECR_B_ACCOUNT_ID"], unique("ecr-read"))
    repo_b = f"{world['ECR_B_REGISTRY']}/{unique('app')}"
    seed_b(world, repo_b)
    stderr = tmp_path / "stderr"
    full = dict(os.environ)
    full.update(aws_home, **STATIC_KEYS, **env)
    with open(stderr, "wb") as err:
        proc = subprocess.Popen([binary(), "--logtostderr", *flags, engine.address],
                                stdout=subprocess.PIPE, stderr=err, env=full)
        try:
            port = int(proc.stdout.readline().decode().strip())
            chan = grpc.insecure_channel(f"127.0.0.1:{port}")
            from pulumi.runtime.proto import provider_pb2_grpc
            stub = provider_pb2_grpc.ResourceProviderStub(chan)
            config = {"registries": [{"address": world["ECR_B_REGISTRY"], "aws": {"assumeRole": {
                "roleArn": role, "sessionName": session, "externalId": secret(external_id)}}}]}
            stub.Configure(provider_pb2.ConfigureRequest(args=to_struct(config), acceptSecrets=True))
            news = {"tags": [f"{repo_b}:v1"], "sources": [f"{repo_b}:amd64"]}
            resp = stub.Create(provider_pb2.CreateRequest(
                urn="urn:pulumi:t::p::multiarch:index:ManifestList::m", type=ML,
                properties=to_struct(news), preview=True), timeout=120)
            assert from_struct(resp.properties)["platforms"] == ["linux/amd64"]
            chan.close()
        finally:
            proc.terminate()
            proc.wait(10)
    got = sessions(world, session)
    assert len(got) == 1
    token = f"{world['ECR_B_ACCOUNT_ID']}-auth-token"
    # The key ID is no secret, but nothing prints it either.
    leaks = role_secrets(got[0]) + [got[0]["access_key_id"], external_id, token,
                                    base64.b64encode(f"AWS:{token}".encode()).decode()]
    text = stderr.read_text(errors="replace")
    for leak in leaks:
        assert leak not in text, f"a secret in stderr with {flags} {env}"
        assert all(leak not in m for m in engine.messages())


# ---- ECR Public ------------------------------------------------------------------------------
# The registry is the test world's public.ecr.aws look-alike (nginx before a registry: reads
# anonymous, writes with AWS:<token>). moto has no ecr-public API, so its one call, the
# token, is answered here: a JSON 1.1 endpoint that records each request's target and SigV4
# credential scope (who signed, for which region and service) and answers the token the
# look-alike takes.

class EcrPublicApi:
    def __init__(self, token: str):
        import http.server
        import threading

        api = self
        self.calls = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                api.calls.append({"target": self.headers.get("X-Amz-Target", ""),
                                  "authorization": self.headers.get("Authorization", "")})
                body = json.dumps({"authorizationData": {
                    "authorizationToken": base64.b64encode(f"AWS:{token}".encode()).decode(),
                    "expiresAt": time.time() + 12 * 3600}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


@pytest.fixture
def ecr_public_api(world):
    api = EcrPublicApi(world["PUBLIC_REGISTRY_TOKEN"])
    yield api
    api.stop()


def seed_public(world, repo: str):
    creds = f"AWS:{world['PUBLIC_REGISTRY_TOKEN']}"
    skopeo_copy(world["BASE_IMAGE_ECR_AMD64"], f"{repo}:amd64", "--dest-creds", creds)
    skopeo_copy(world["BASE_IMAGE_ECR_ARM64"], f"{repo}:arm64", "--dest-creds", creds)


def public_log_lines(world, repo: str, log: RegistryLog) -> list[str]:
    """The provider's requests for `repo` (the seeding copies are skopeo's)."""
    path = repo.split("/", 1)[1]
    return [l for l in log.requests() if f"/v2/{path}/" in l and '"multiarch/' in l]


def test_ecr_public_push_uses_the_ecr_public_token_from_us_east_1(engine, aws_home, world,
                                                                   ecr_public_api):
    repo = f"{world['PUBLIC_REGISTRY']}/{unique('alias')}/app"
    seed_public(world, repo)
    # Another region everywhere: ECR Public's token still comes from us-east-1.
    env = dict(aws_home, **STATIC_KEYS, AWS_REGION="eu-west-1",
               AWS_ENDPOINT_URL_ECR_PUBLIC=ecr_public_api.url)
    log = RegistryLog(world["PUBLIC_REGISTRY_LOG"])
    log.mark()
    p = start(engine, env, {"aws": {"region": "eu-west-1"}})
    try:
        inputs = {"tags": [f"{repo}:v1"], "sources": [f"{repo}:amd64", f"{repo}:arm64"]}
        _, preview = p.create(ML, inputs, preview=True)
        assert preview["platforms"] == ["linux/amd64", "linux/arm64"]
        _, state = p.create(ML, inputs)
        stderr = p.stderr()
    finally:
        p.close()
    assert len(inspect_public(world, f"{repo}:v1")["manifests"]) == 2
    assert [c["target"] for c in ecr_public_api.calls] == [
        "SpencerFrontendService.GetAuthorizationToken"]
    scope = ecr_public_api.calls[0]["authorization"]
    assert "Credential=testing/" in scope and "/us-east-1/ecr-public/aws4_request" in scope, scope
    writes = [l for l in public_log_lines(world, repo, log) if '"PUT ' in l]
    assert writes and all(" - AWS [" in l for l in writes), writes
    assert world["PUBLIC_REGISTRY_TOKEN"] not in stderr
    assert world["PUBLIC_REGISTRY_TOKEN"] not in json.dumps(state)


def inspect_public(world, ref: str) -> dict:
    return json.loads(run("skopeo", "inspect", "--raw", f"docker://{ref}").stdout)


def test_ecr_public_pulls_anonymously_without_credentials(engine, aws_home, world, ecr_public_api):
    repo = f"{world['PUBLIC_REGISTRY']}/{unique('alias')}/base"
    seed_public(world, repo)
    target = f"{world['PLAIN_REGISTRY']}/{unique('from-public')}"
    env = dict(aws_home, AWS_ENDPOINT_URL_ECR_PUBLIC=ecr_public_api.url)
    log = RegistryLog(world["PUBLIC_REGISTRY_LOG"])
    log.mark()
    p = start(engine, env, {"registries": [{"address": world["PLAIN_REGISTRY"], "insecure": True}]})
    try:
        inputs = {"tags": [f"{target}:v1"], "sources": [f"{repo}:amd64", f"{repo}:arm64"]}
        _, state = p.create(ML, inputs)
    finally:
        p.close()
    assert state["platforms"] == ["linux/amd64", "linux/arm64"]
    assert raw_manifest(f"{target}:v1", insecure=True)["manifests"]
    # No token was asked for and every request to ECR Public went without credentials.
    assert ecr_public_api.calls == []
    lines = public_log_lines(world, repo, log)
    assert lines and all(" - - [" in l for l in lines), lines


# ---- Terraform: the same blocks as provider attributes ---------------------------------------

TF_CROSS_ACCOUNT = """
terraform {
  required_providers {
    multiarch = { source = "example.com/multiarch/multiarch" }
  }
}

variable "role_arn" { type = string }
variable "session_name" { type = string }
variable "external_id" {
  type      = string
  sensitive = true
}
variable "registry_b" { type = string }
variable "tags" { type = list(string) }
variable "sources" { type = list(string) }

provider "multiarch" {
  registries = [{
    address = var.registry_b
    aws = {
      assume_role = {
        role_arn         = var.role_arn
        session_name     = var.session_name
        external_id      = var.external_id
        duration_seconds = 900
      }
    }
  }]
}

resource "multiarch_manifest_list" "promoted" {
  tags    = var.tags
  sources = var.sources
}
"""


def test_terraform_cross_account_with_assume_role(tmp_path, aws_home, world):
    from test_terraform import Terraform

    d = tmp_path / "tf"
    d.mkdir()
    (d / "main.tf").write_text(TF_CROSS_ACCOUNT)
    tf = Terraform(d, world)
    tf.env.update(aws_home, **STATIC_KEYS)
    session, external_id = unique("tf"), unique("tf-ext")
    role = role_arn(world["ECR_B_ACCOUNT_ID"], unique("artifacts-read"))
    repo_b = f"{world['ECR_B_REGISTRY']}/{unique('app')}"
    seed_b(world, repo_b)
    target = f"{world['ECR_REGISTRY']}/{unique('tf-promoted')}"
    tf.vars(role_arn=role, session_name=session, external_id=external_id,
            registry_b=world["ECR_B_REGISTRY"], tags=[f"{target}:v1"],
            sources=[f"{repo_b}:amd64", f"{repo_b}:arm64"])
    tf("apply", "-input=false", "-auto-approve")
    state = tf.state()["multiarch_manifest_list.promoted"]
    assert state["platforms"] == ["linux/amd64", "linux/arm64"]
    assert len(raw_manifest(f"{target}:v1")["manifests"]) == 2
    # Terraform starts the provider once for plan and once for apply: one AssumeRole each.
    got = sessions(world, session)
    assert {(r["role_arn"], r["external_id"]) for r in got} == {(role, external_id)}
    assert len(got) == 2
    assert tf.plan()[0] == 0  # no changes
    state_text = (d / "terraform.tfstate").read_text()
    for s in [x for r in got for x in role_secrets(r)] + [external_id]:
        assert s not in state_text

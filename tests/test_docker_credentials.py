"""Credentials as Docker finds them: `docker login`'s `auths`, a credential helper per host
(`credHelpers`), a helper for every host (`credsStore`), amazon-ecr-credential-helper for an
ECR host. The registry used here (AUTH_REGISTRY) takes a password that only the Docker config
a test writes holds: the provider configuration names no credentials for it."""

import base64
import json
import os
import stat

import grpc
import pytest

from harness import IMAGE, ML, FakeEngine, Provider, raw_manifest, run, unique

ARCH_DOCKERFILE = """\
FROM {base}
RUN uname -m > /built-on
"""


@pytest.fixture(scope="module")
def auth(world):
    """(host, user, password) of the registry whose credentials live only in Docker's config."""
    password = open(world["AUTH_REGISTRY_PASSWORD_FILE"]).read().strip()
    assert password, "the test world's AUTH_REGISTRY password file is empty"
    return world["AUTH_REGISTRY"], world["AUTH_REGISTRY_USER"], password


@pytest.fixture(scope="module")
def seeded(world, auth):
    """`app:amd64` and `app:arm64` in a fresh repository of the auth registry."""
    host, user, password = auth
    repo = f"{host}/{unique('creds')}"
    for arch in ("amd64", "arm64"):
        run("skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-creds",
            f"{user}:{password}", f"docker://{world[f'BASE_IMAGE_PLAIN_{arch.upper()}']}",
            f"docker://{repo}:{arch}")
    return repo


def write_helper(directory, name: str, body: str) -> str:
    path = directory / f"docker-credential-{name}"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


def serving_helper(directory, name: str, host: str, user: str, password: str) -> str:
    """A helper holding credentials for `host` alone; it logs each address it is asked."""
    log = directory / f"{name}.log"
    body = f"""[ "$1" = get ] || exit 3
read addr
echo "$addr" >> {log}
if [ "$addr" = "{host}" ]; then
  printf '{{"ServerURL":"%s","Username":"{user}","Secret":"%s"}}' "$addr" "$(cat {directory}/{name}.secret)"
else
  echo 'credentials not found in native keychain'; exit 1
fi"""
    (directory / f"{name}.secret").write_text(password)
    write_helper(directory, name, body)
    return str(log)


def provider_with(world, provider_env, docker_dir, extra_env=None, registries=None):
    engine = FakeEngine()
    env = {**provider_env, "DOCKER_CONFIG": str(docker_dir),
           "PATH": f"{docker_dir}:{os.environ['PATH']}", **(extra_env or {})}
    p = Provider(engine, env=env)
    p.handshake()
    p.configure({"registries": registries or [
        {"address": world["PLAIN_REGISTRY"], "insecure": True}]})
    return p


@pytest.fixture
def docker_dir(tmp_path):
    d = tmp_path / "docker"
    d.mkdir()
    return d


def write_config(docker_dir, config: dict):
    (docker_dir / "config.json").write_text(json.dumps(config))


def assert_secret_kept(p, secret: str, *outputs):
    for o in outputs:
        assert secret not in json.dumps(o)
    assert secret not in p.stderr()
    assert all(secret not in m for m in p.engine.messages())


def manifest_list_job(p, seeded, tag):
    inputs = {"tags": [f"{seeded}:{tag}"], "sources": [f"{seeded}:amd64", f"{seeded}:arm64"]}
    checked, failures = p.check(ML, inputs)
    assert failures == []
    _, preview = p.create(ML, checked, preview=True)
    assert preview["platforms"] == ["linux/amd64", "linux/arm64"]
    id, state = p.create(ML, checked)
    return id, state


def test_docker_login_auths_serve_both_resources(world, provider_env, auth, seeded, docker_dir, tmp_path):
    host, user, password = auth
    # Without the Docker config the registry refuses: the config is what makes it work.
    write_config(docker_dir, {})
    p = provider_with(world, provider_env, docker_dir)
    try:
        inputs = {"tags": [f"{seeded}:nocreds"], "sources": [f"{seeded}:amd64"]}
        with pytest.raises(grpc.RpcError) as e:
            p.create(ML, p.check(ML, inputs)[0])
        assert host in e.value.details()
    finally:
        p.close()

    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    write_config(docker_dir, {"auths": {f"https://{host}": {"auth": encoded}}})
    p = provider_with(world, provider_env, docker_dir)
    try:
        id, state = manifest_list_job(p, seeded, "all")
        index = raw_manifest_auth(f"{seeded}:all", user, password)
        assert {m["digest"] for m in index["manifests"]} == {m["digest"] for m in state["manifests"]}

        # A two-platform build pushed there: BuildKit asks the provider for the credentials.
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(ARCH_DOCKERFILE.format(base=world["BASE_IMAGE_PLAIN"]))
        inputs = {"context": {"location": str(ctx)}, "platforms": ["linux/amd64", "linux/arm64"],
                  "tags": [f"{seeded}:built"], "network": "none"}
        checked, failures = p.check(IMAGE, inputs)
        assert failures == []
        img_id, img = p.create(IMAGE, checked)
        pushed = raw_manifest_auth(f"{seeded}:built", user, password)
        assert {m["platform"]["architecture"] for m in pushed["manifests"]
                if m["platform"]["os"] == "linux"} == {"amd64", "arm64"}
        assert img["digest"]
        p.delete(IMAGE, img_id, img)
        p.delete(ML, id, state)
        assert_secret_kept(p, password, state, img)
    finally:
        p.close()


def raw_manifest_auth(ref: str, user: str, password: str) -> dict:
    out = run("skopeo", "inspect", "--raw", "--creds", f"{user}:{password}", f"docker://{ref}")
    return json.loads(out.stdout)


@pytest.mark.parametrize("kind", ["credHelpers", "credsStore"])
def test_a_credential_helper_serves_the_registry(world, provider_env, auth, seeded, docker_dir, kind):
    host, user, password = auth
    log = serving_helper(docker_dir, "fake", host, user, password)
    config = {"credHelpers": {host: "fake"}} if kind == "credHelpers" else {"credsStore": "fake"}
    write_config(docker_dir, config)
    p = provider_with(world, provider_env, docker_dir)
    try:
        id, state = manifest_list_job(p, seeded, f"via-{kind.lower()}")
        assert raw_manifest_auth(f"{seeded}:via-{kind.lower()}", user, password)["manifests"]
        asked = open(log).read().split()
        assert host in asked
        # Answers are reused: one operation does not start the helper for every request.
        assert asked.count(host) <= 2, asked
        p.delete(ML, id, state)
        assert_secret_kept(p, password, state)
    finally:
        p.close()


def test_a_failing_or_hanging_helper_is_named(world, provider_env, seeded, docker_dir, auth):
    host, _, _ = auth
    write_helper(docker_dir, "broken", "echo 'the keychain is locked'; exit 1")
    write_helper(docker_dir, "stuck", "sleep 60")
    for helper, words in [("broken", "the keychain is locked"), ("stuck", "did not answer within 1 s")]:
        write_config(docker_dir, {"credHelpers": {host: helper}})
        p = provider_with(world, provider_env, docker_dir,
                          extra_env={"MULTIARCH_CREDENTIAL_HELPER_TIMEOUT": "1"})
        try:
            inputs = {"tags": [f"{seeded}:x-{helper}"], "sources": [f"{seeded}:amd64"]}
            with pytest.raises(grpc.RpcError) as e:
                p.create(ML, p.check(ML, inputs)[0])
            msg = e.value.details()
            assert f"docker-credential-{helper}" in msg and words in msg, msg
            assert "credHelpers" in msg and "config.json" in msg, msg
        finally:
            p.close()


def test_ecr_login_helper_for_an_ecr_host(world, provider_env, docker_dir, tmp_path):
    """amazon-ecr-credential-helper (built from its Go module) named for the ECR host in
    `credHelpers` is used for it: the host's explicit helper comes before the provider's own
    IAM token look-up."""
    helper = world["ECR_LOGIN_HELPER"]
    assert os.access(helper, os.X_OK), f"{helper} missing: run scripts/testenv.sh"
    os.symlink(helper, docker_dir / "docker-credential-ecr-login")
    ecr = world["ECR_REGISTRY"]
    write_config(docker_dir, {"credHelpers": {ecr: "ecr-login"}})
    home = tmp_path / "home"
    home.mkdir()
    repo = f"{ecr}/{unique('ecrlogin')}"
    from harness import skopeo_copy
    skopeo_copy(world["BASE_IMAGE_ECR_AMD64"], f"{repo}:amd64")
    skopeo_copy(world["BASE_IMAGE_ECR_ARM64"], f"{repo}:arm64")
    p = provider_with(world, provider_env, docker_dir, extra_env={"HOME": str(home)})
    try:
        id, state = manifest_list_job(p, repo, "both")
        assert raw_manifest(f"{repo}:both")["manifests"]
        # ecr-login keeps its own log and token cache under $HOME/.ecr.
        assert (home / ".ecr").is_dir(), "ecr-login was not run"
        p.delete(ML, id, state)
        password = open(world["ECR_PASSWORD_FILE"]).read().strip()
        assert_secret_kept(p, password, state)
    finally:
        p.close()


def test_terraform_reads_docker_login_credentials(world, auth, docker_dir, tmp_path):
    """The same main job through Terraform: the provider Terraform starts reads the Docker
    config of its environment; the password is in neither the state nor Terraform's log."""
    import shutil
    from pathlib import Path

    from test_terraform import Terraform

    host, user, password = auth
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    write_config(docker_dir, {"auths": {host: {"auth": encoded}}})
    d = tmp_path / "tf"
    shutil.copytree(Path(__file__).resolve().parent / "terraform_docker_hosts", d)
    app = d / "app"
    app.mkdir()
    (app / "Dockerfile").write_text(ARCH_DOCKERFILE.format(base=world["BASE_IMAGE_PLAIN"]))
    tf = Terraform(d, world)
    tf.env["DOCKER_CONFIG"] = str(docker_dir)
    repo = f"{host}/{unique('tfcreds')}"
    tf.vars(repository=repo, context=str(app))
    tf("init", "-input=false", ok=(0, 1))
    p = tf("apply", "-input=false", "-auto-approve")
    assert "Apply complete! Resources: 2 added" in p.stdout, p.stdout
    listed = raw_manifest_auth(f"{repo}:list", user, password)
    built = raw_manifest_auth(f"{repo}:v1", user, password)
    assert sorted(m["digest"] for m in listed["manifests"]) == sorted(
        m["digest"] for m in built["manifests"])
    p = tf("plan", "-input=false", "-detailed-exitcode", ok=(0, 2))
    assert p.returncode == 0, p.stdout
    assert password not in (d / "terraform.tfstate").read_text()
    assert password not in (d / "terraform.log").read_text(errors="replace")
    tf("destroy", "-input=false", "-auto-approve")

"""Any Docker host, any Engine: the main job (a two-platform Image with push, then a
ManifestList of its platforms) on the test world's third Engine, which has the classic image
store (overlay2: its BuildKit has no `image` exporter), reached through DOCKER_HOST=tcp://
with TLS (DOCKER_TLS_VERIFY/DOCKER_CERT_PATH) and without, ssh:// (`docker system
dial-stdio` through the test world's sshd), and a Docker context; and `load` of two
platforms there, which the Engine cannot hold: a clear error."""

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from harness import IMAGE, Provider, raw_manifest, run, unique

MANIFEST_LIST = "multiarch:index:ManifestList"

DOCKERFILE = """\
FROM {base}
RUN uname -m > /built-on
CMD ["uname", "-m"]
"""


@pytest.fixture
def ctx_dir(tmp_path, world):
    d = tmp_path / "ctx"
    d.mkdir()
    (d / "Dockerfile").write_text(DOCKERFILE.format(base=world["BASE_IMAGE_PLAIN"]))
    return d


def docker_env(world, **docker):
    """The provider's environment with only the given Docker settings."""
    keep = ["AWS_ENDPOINT_URL_ECR", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION",
            "AWS_DEFAULT_REGION", "SSL_CERT_FILE"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env.update({k: world[k] for k in keep if k in world})
    env.update(docker)
    return env


def started(engine, world, env):
    p = Provider(engine, env=env)
    p.handshake()
    p.configure({"registries": [{"address": world["PLAIN_REGISTRY"], "insecure": True}]})
    return p


def main_job(p, world, ctx_dir):
    """Two-platform Image with push, then a ManifestList of its two platform manifests."""
    repo = f"{world['PLAIN_REGISTRY']}/{unique('anyengine')}"
    inputs = {"context": {"location": str(ctx_dir)}, "platforms": ["linux/amd64", "linux/arm64"],
              "tags": [f"{repo}:v1"], "network": "none"}
    checked, failures = p.check(IMAGE, inputs)
    assert failures == []
    _, state = p.create(IMAGE, checked)
    index = raw_manifest(f"{repo}:v1", insecure=True)
    got = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
           for m in index["manifests"]}
    assert sorted(got) == ["linux/amd64", "linux/arm64"]
    raw = run("skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{repo}:v1").stdout
    assert state["digest"] == "sha256:" + hashlib.sha256(raw.encode()).hexdigest()
    for arch, machine in [("arm64", "aarch64"), ("amd64", "x86_64")]:
        out = run("docker", "run", "--rm", "--pull", "always", "--network", "none",
                  "--platform", f"linux/{arch}", f"{repo}:v1", "cat", "/built-on").stdout.strip()
        assert out == machine
    sources = [f"{repo}@{got['linux/amd64']}", f"{repo}@{got['linux/arm64']}"]
    ml_inputs = {"tags": [f"{repo}:list"], "sources": sources}
    checked, failures = p.check(MANIFEST_LIST, ml_inputs)
    assert failures == []
    _, ml = p.create(MANIFEST_LIST, checked)
    listed = raw_manifest(f"{repo}:list", insecure=True)
    assert sorted(m["digest"] for m in listed["manifests"]) == sorted(got.values())
    return state


def classic_log_says(engine):
    return engine.saw("uses the classic image store (overlay2)")


def test_classic_store_over_tcp_with_tls(engine, world, ctx_dir):
    env = docker_env(world, DOCKER_HOST=world["DOCKER3_TLS_HOST"], DOCKER_TLS_VERIFY="1",
                     DOCKER_CERT_PATH=world["DOCKER3_CERT_PATH"])
    p = started(engine, world, env)
    try:
        main_job(p, world, ctx_dir)
        assert classic_log_says(engine)
    finally:
        p.close()


def test_classic_store_over_plain_tcp(engine, world, ctx_dir):
    p = started(engine, world, docker_env(world, DOCKER_HOST=world["DOCKER3_TCP_HOST"]))
    try:
        main_job(p, world, ctx_dir)
        assert classic_log_says(engine)
    finally:
        p.close()


def test_classic_store_over_ssh(engine, world, ctx_dir):
    p = started(engine, world, docker_env(world, DOCKER_HOST=world["DOCKER3_SSH_HOST"]))
    try:
        main_job(p, world, ctx_dir)
        assert classic_log_says(engine)
    finally:
        p.close()


def test_containerd_store_over_plain_tcp(engine, world, ctx_dir):
    """The main Engine (containerd store) through its TCP door: BuildKit pushes itself."""
    p = started(engine, world, docker_env(world, DOCKER_HOST=world["DOCKER_TCP_HOST"]))
    try:
        main_job(p, world, ctx_dir)
        assert not classic_log_says(engine)
        assert engine.saw(f"Docker Engine at {world['DOCKER_TCP_HOST']} from DOCKER_HOST")
    finally:
        p.close()


def write_context(config_dir, name, host, tls_dir=None):
    """A Docker context as `docker context create` stores it."""
    cid = hashlib.sha256(name.encode()).hexdigest()
    meta = config_dir / "contexts" / "meta" / cid
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({
        "Name": name, "Metadata": {},
        "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": False}}}))
    if tls_dir:
        t = config_dir / "contexts" / "tls" / cid / "docker"
        t.mkdir(parents=True)
        for f in ["ca.pem", "cert.pem", "key.pem"]:
            (t / f).write_bytes((tls_dir / f).read_bytes())


def test_classic_store_through_the_current_docker_context(engine, world, ctx_dir, tmp_path):
    config = tmp_path / "docker-config"
    config.mkdir()
    write_context(config, "classic-tls", world["DOCKER3_TLS_HOST"], Path(world["DOCKER3_CERT_PATH"]))
    (config / "config.json").write_text(json.dumps({"currentContext": "classic-tls"}))
    # The docker CLI reads the same context the same way.
    out = run("docker", "info", "--format", "{{.Driver}}",
              env={**os.environ, "DOCKER_CONFIG": str(config), "DOCKER_HOST": ""}).stdout.strip()
    assert out == "overlay2"
    # Empty is unset (the harness passes its own environment through).
    p = started(engine, world, docker_env(world, DOCKER_CONFIG=str(config), DOCKER_HOST=""))
    try:
        main_job(p, world, ctx_dir)
        assert classic_log_says(engine), engine.messages()
        assert engine.saw('Docker context "classic-tls"'), engine.messages()
    finally:
        p.close()


def test_load_of_two_platforms_on_the_classic_store_is_a_clear_error(engine, world, ctx_dir):
    p = started(engine, world, docker_env(world, DOCKER_HOST=world["DOCKER3_HOST"]))
    try:
        inputs = {"context": {"location": str(ctx_dir)}, "platforms": ["linux/amd64", "linux/arm64"],
                  "tags": [f"{world['PLAIN_REGISTRY']}/{unique('loadme')}:v1"], "push": False, "load": True, "network": "none"}
        checked, failures = p.check(IMAGE, inputs)
        assert failures == []
        with pytest.raises(Exception) as e:
            p.create(IMAGE, checked)
        msg = str(e.value)
        assert "classic image store (overlay2)" in msg, msg
        assert "containerd-snapshotter" in msg and "one platform" in msg, msg
    finally:
        p.close()


def test_a_bad_docker_host_names_the_variable(engine, world, ctx_dir):
    p = started(engine, world, docker_env(world, DOCKER_HOST="tcp://127.0.0.1:2376",
                                          DOCKER_TLS="1"))
    try:
        inputs = {"context": {"location": str(ctx_dir)}, "platforms": ["linux/amd64"],
                  "tags": [f"{world['PLAIN_REGISTRY']}/{unique('bad')}:v1"], "network": "none"}
        checked, _ = p.check(IMAGE, inputs)
        with pytest.raises(Exception) as e:
            p.create(IMAGE, checked)
        assert "DOCKER_TLS" in str(e.value) and "DOCKER_TLS_VERIFY=1" in str(e.value), str(e.value)
    finally:
        p.close()


def test_terraform_runs_the_main_job_on_the_classic_store_over_ssh(world, tmp_path):
    from test_terraform import Terraform
    d = tmp_path / "tf"
    shutil.copytree(Path(__file__).resolve().parent / "terraform_docker_hosts", d)
    app = d / "app"
    app.mkdir()
    (app / "Dockerfile").write_text(DOCKERFILE.format(base=world["BASE_IMAGE_PLAIN"]))
    tf = Terraform(d, world)
    for k in [k for k in tf.env if k.startswith("DOCKER_")]:
        del tf.env[k]
    tf.env["DOCKER_HOST"] = world["DOCKER3_SSH_HOST"]
    repo = f"{world['PLAIN_REGISTRY']}/{unique('tfanyengine')}"
    tf.vars(repository=repo, context=str(app))
    tf("init", "-input=false", ok=(0, 1))
    p = tf("apply", "-input=false", "-auto-approve")
    assert "Apply complete! Resources: 2 added" in p.stdout, p.stdout
    index = raw_manifest(f"{repo}:v1", insecure=True)
    platforms = sorted(f"{m['platform']['os']}/{m['platform']['architecture']}"
                       for m in index["manifests"])
    assert platforms == ["linux/amd64", "linux/arm64"]
    listed = raw_manifest(f"{repo}:list", insecure=True)
    assert sorted(m["digest"] for m in listed["manifests"]) == sorted(
        m["digest"] for m in index["manifests"])
    log = (d / "terraform.log").read_text(errors="replace")
    assert "uses the classic image store (overlay2)" in log
    assert "ssh://root@127.0.0.1" in log
    # Nothing changed: no changes planned.
    p = tf("plan", "-input=false", "-detailed-exitcode", ok=(0, 2))
    assert p.returncode == 0, p.stdout


@pytest.mark.parametrize("host,tls,shown,said", [
    # sshd refuses this user: what ssh said ends the error.
    ("ssh://nobody@127.0.0.1:2222", False, "ssh://nobody@127.0.0.1:2222", "Permission denied"),
    # Nothing listens there.
    ("tcp://127.0.0.1:1", False, "tcp://127.0.0.1:1", "Connection refused"),
    # The TLS port without TLS, TLS without the client certificate the Engine requires, and
    # TLS trusting a CA that did not sign the Engine's certificate.
    ("DOCKER3_TLS_HOST", None, "tcp://127.0.0.1:2376 from", "set DOCKER_TLS_VERIFY=1"),
    ("DOCKER3_TLS_HOST", "ca-only", "tcp://127.0.0.1:2376 (TLS) from",
     "requires a client certificate"),
    ("DOCKER3_TLS_HOST", "foreign-ca", "tcp://127.0.0.1:2376 (TLS) from",
     "not signed by ca.pem in DOCKER_CERT_PATH"),
])
def test_an_unreachable_engine_names_the_host_the_setting_and_the_cause(engine, world, ctx_dir,
                                                                        tmp_path, host, tls,
                                                                        shown, said):
    env = {"DOCKER_HOST": world.get(host, host)}
    certs = Path(world["DOCKER3_CERT_PATH"])
    if tls == "ca-only":
        # The CA only: no cert.pem / key.pem.
        (tmp_path / "ca.pem").write_bytes((certs / "ca.pem").read_bytes())
    elif tls == "foreign-ca":
        # A valid client certificate, but a ca.pem of a CA made here, which signed nothing.
        for f in ["cert.pem", "key.pem"]:
            (tmp_path / f).write_bytes((certs / f).read_bytes())
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "1", "-subj", "/CN=not the Engine's CA",
            "-keyout", str(tmp_path / "foreign-ca.key"), "-out", str(tmp_path / "ca.pem"))
    if tls:
        env.update(DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(tmp_path))
    p = started(engine, world, docker_env(world, **env))
    try:
        inputs = {"context": {"location": str(ctx_dir)}, "platforms": ["linux/amd64"],
                  "tags": [f"{world['PLAIN_REGISTRY']}/{unique('unreach')}:v1"], "network": "none"}
        checked, _ = p.check(IMAGE, inputs)
        with pytest.raises(Exception) as e:
            p.create(IMAGE, checked)
        msg = e.value.details()
        assert f"{shown}" in msg and "DOCKER_HOST" in msg and said in msg, msg
    finally:
        p.close()


def test_a_build_node_over_ssh_on_the_classic_store(engine, world, ctx_dir):
    """builders[0].endpoint = ssh:// (the classic-store Engine) builds linux/arm64 and pushes
    it by digest; the main Engine builds linux/amd64; the provider writes the index."""
    p = Provider(engine, env=docker_env(world, DOCKER_HOST=world["DOCKER_HOST"]))
    try:
        p.handshake()
        p.configure({"registries": [{"address": world["PLAIN_REGISTRY"], "insecure": True}],
                     "builders": [{"endpoint": world["DOCKER3_SSH_HOST"],
                                   "platforms": ["linux/arm64"]}]})
        repo = f"{world['PLAIN_REGISTRY']}/{unique('sshnode')}"
        inputs = {"context": {"location": str(ctx_dir)},
                  "platforms": ["linux/amd64", "linux/arm64"], "tags": [f"{repo}:v1"],
                  "network": "none"}
        checked, failures = p.check(IMAGE, inputs)
        assert failures == []
        _, state = p.create(IMAGE, checked)
        index = raw_manifest(f"{repo}:v1", insecure=True)
        got = {m["platform"]["architecture"]: m["digest"] for m in index["manifests"]}
        assert sorted(got) == ["amd64", "arm64"]
        assert classic_log_says(engine)
        out = run("docker", "run", "--rm", "--pull", "always", "--network", "none",
                  "--platform", "linux/arm64", f"{repo}:v1", "cat", "/built-on").stdout.strip()
        assert out == "aarch64"
    finally:
        p.close()

"""The test world's build nodes, proved end to end with real clients (no provider involved):

- the second, independent Docker Engine (DOCKER2_HOST) builds with RUN steps and pushes an
  arm64 image (QEMU) that runs there as aarch64; its BuildKit's build history has the build,
  for linux/arm64, with the pushed digest (`harness.engine_build_history`), the first's not;
- the two Engines keep separate build caches and image stores;
- the standalone buildkitd (tcp:// + mutual TLS) builds with `buildctl`, and refuses a client
  without a certificate.
"""

import hashlib
import json
import socket
import ssl
import subprocess

import pytest

from harness import WorldBuildkitd, engine_build_history, raw_manifest, run, unique


def docker(env, *args, check=True, timeout=300):
    p = subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def platforms_of(ref):
    """The platforms of `ref` in the plain registry (an index's image entries, or the one image)."""
    m = raw_manifest(ref, insecure=True)
    if "manifests" in m:
        return sorted(f"{d['platform']['os']}/{d['platform']['architecture']}" for d in m["manifests"]
                      if d.get("platform", {}).get("os") != "unknown")
    config = json.loads(run("skopeo", "inspect", "--config", "--tls-verify=false", f"docker://{ref}").stdout)
    return [f"{config['os']}/{config['architecture']}"]


def manifest_digest(ref):
    raw = run("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}").stdout
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def builds_with_marker(world, env, marker):
    """The Engine's BuildKit build records of builds given `--build-arg MARKER=<marker>`."""
    return [r for r in engine_build_history(world, env["DOCKER_HOST"])
            if (r.get("FrontendAttrs") or {}).get("build-arg:MARKER") == marker]


def build_cache_descriptions(env):
    return docker(env, "buildx", "du", "--verbose").stdout


def test_second_engine_builds_and_pushes_arm64(world, docker2_env, tmp_path):
    repo = f"{world['PLAIN_REGISTRY']}/{unique('docker2-arm64')}"
    marker = unique("m")
    (tmp_path / "Dockerfile").write_text(
        f"FROM {world['BASE_IMAGE_PLAIN']}\nRUN echo {marker} > /marker && uname -m > /arch\nCMD cat /arch\n")
    docker(docker2_env, "buildx", "build", "--platform", "linux/arm64", "--provenance=false",
           "--build-arg", f"MARKER={marker}", "--push", "-t", f"{repo}:v1", str(tmp_path))
    assert platforms_of(f"{repo}:v1") == ["linux/arm64"]
    pushed = manifest_digest(f"{repo}:v1")
    # The second Engine's BuildKit recorded the build, for linux/arm64, with the pushed
    # manifest as its result; the first Engine's did not.
    mine = builds_with_marker(world, docker2_env, marker)
    assert [r["FrontendAttrs"].get("platform") for r in mine] == ["linux/arm64"], mine
    assert WorldBuildkitd.result_digests(mine[0]) == [pushed]
    assert builds_with_marker(world, {"DOCKER_HOST": world["DOCKER_HOST"]}, marker) == []
    # The RUN step ran as arm64 (under QEMU), and the image runs there as aarch64.
    out = docker(docker2_env, "run", "--rm", "--pull", "always", "--platform", "linux/arm64", f"{repo}:v1")
    assert out.stdout.strip() == "aarch64"


def test_the_two_engines_have_separate_build_caches_and_images(world, docker1_env, docker2_env, tmp_path):
    assert docker1_env["DOCKER_HOST"] != docker2_env["DOCKER_HOST"]
    ids = {name: docker(env, "info", "--format", "{{.ID}} {{.DockerRootDir}}").stdout.strip()
           for name, env in (("first", docker1_env), ("second", docker2_env))}
    assert ids["first"] != ids["second"], ids

    built = {}
    for name, env in (("first", docker1_env), ("second", docker2_env)):
        marker = unique(f"only-on-{name}")
        ctx = tmp_path / name
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(f"FROM {world['BASE_IMAGE_PLAIN']}\nRUN echo {marker} > /marker\n")
        tag = f"multiarch-test/{marker}:v1"
        docker(env, "buildx", "build", "--platform", "linux/amd64", "--provenance=false", "-t", tag, str(ctx))
        built[name] = (marker, tag)

    for name, env, other in (("first", docker1_env, "second"), ("second", docker2_env, "first")):
        cache = build_cache_descriptions(env)
        own_marker, own_tag = built[name]
        other_marker, other_tag = built[other]
        assert own_marker in cache, f"the {name} Engine's build cache lacks its own RUN step"
        assert other_marker not in cache, f"the {other} Engine's build shows in the {name} Engine's cache"
        assert docker(env, "image", "inspect", own_tag, check=False).returncode == 0
        assert docker(env, "image", "inspect", other_tag, check=False).returncode != 0, \
            f"the {other} Engine's image is in the {name} Engine's image store"
    for name, env in (("first", docker1_env), ("second", docker2_env)):
        docker(env, "image", "rm", built[name][1], check=False)


def test_buildctl_builds_on_the_tls_buildkitd(world, world_buildkitd, tmp_path):
    repo = f"{world['PLAIN_REGISTRY']}/{unique('buildctl-tls')}"
    (tmp_path / "Dockerfile").write_text(
        f"FROM {world['BASE_IMAGE_PLAIN']}\nARG TARGETARCH\n"
        "RUN uname -m > /arch && test \"$(cat /arch)\" = \"$([ $TARGETARCH = arm64 ] && echo aarch64 || echo x86_64)\"\n")
    world_buildkitd.buildctl(
        "build", "--frontend", "dockerfile.v0",
        "--local", f"context={tmp_path}", "--local", f"dockerfile={tmp_path}",
        "--opt", "platform=linux/amd64,linux/arm64",
        "--output", f"type=image,name={repo}:v1,push=true", timeout=600)
    assert platforms_of(f"{repo}:v1") == ["linux/amd64", "linux/arm64"]
    records = world_buildkitd.builds_exporting(repo)
    assert len(records) == 1, records
    assert world_buildkitd.result_digests(records[0]) == [manifest_digest(f"{repo}:v1")]


def test_tls_buildkitd_refuses_a_client_without_certificate(world_buildkitd):
    b = world_buildkitd
    p = run(b.buildctl_bin, "--addr", b.addr, "--tlsservername", b.server_name,
            "--tlscacert", b.certs["ca.pem"], "--timeout", "10", "debug", "workers", check=False, timeout=60)
    assert p.returncode != 0 and "failed to list workers" in p.stderr, p.stderr
    # The server's side of it: a TLS client without a certificate gets the TLS 1.3 alert
    # "certificate required" once the handshake is done.
    ctx = ssl.create_default_context(cafile=b.certs["ca.pem"])
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", b.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=b.server_name) as tls:
            with pytest.raises(ssl.SSLError, match="(?i)certificate.required"):
                tls.recv(1)
    # ...and it answers a client with the test world's client certificate.
    workers = b.buildctl("debug", "workers", timeout=60).stdout
    assert "linux/amd64" in workers and "linux/arm64" in workers, workers

"""Image end to end: BuildKit in Docker Engine 26 (arm64 under QEMU), pushed to the ECR
look-alike with moto's IAM token, driven as the engine drives the provider."""

import json
import os

import grpc
import pytest

from harness import (
    DIFF_NONE, DIFF_SOME, IMAGE, ML, ROOT, SECRET_SIG, SIG, UNKNOWN, pulled_digest, raw_manifest, run,
    secret, unique,
)

ARCH_DOCKERFILE = """\
FROM {base}
RUN uname -m > /built-on
CMD ["uname", "-m"]
"""


@pytest.fixture
def ctx_dir(tmp_path, world):
    d = tmp_path / "ctx"
    d.mkdir()
    (d / "Dockerfile").write_text(ARCH_DOCKERFILE.format(base=world["BASE_IMAGE_ECR"]))
    (d / "app.txt").write_text("version 1\n")
    (d / "ignored.log").write_text("noise\n")
    (d / ".dockerignore").write_text("*.log\n")
    return d


def image_inputs(world, ctx_dir, repo, **extra):
    inputs = {
        "context": {"location": str(ctx_dir)},
        "platforms": ["linux/amd64", "linux/arm64"],
        "tags": [f"{repo}:v1"],
        "network": "none",
    }
    inputs.update(extra)
    return inputs


def test_two_platform_build_pushed_to_ecr(provider, world, ctx_dir, ecr_log):
    repo = f"{world['ECR_REGISTRY']}/{unique('img')}"
    inputs = image_inputs(world, ctx_dir, repo)
    checked, failures = provider.check(IMAGE, inputs)
    assert failures == []

    # Preview with push (the default): the build runs, nothing is written.
    ecr_log.mark()
    _, preview = provider.create(IMAGE, checked, preview=True)
    assert ecr_log.writes() == []
    assert preview["digest"] == UNKNOWN and preview["manifests"] == UNKNOWN
    assert preview["contextHash"] == UNKNOWN

    id, state = provider.create(IMAGE, checked)
    assert id == f"{repo}:v1"
    index = raw_manifest(f"{repo}:v1")
    got = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
           for m in index["manifests"] if m["platform"]["os"] != "unknown"}
    assert got == {m["platform"]: m["digest"] for m in state["manifests"]}
    assert sorted(got) == ["linux/amd64", "linux/arm64"]
    assert state["ref"] == f"{repo}@{state['digest']}"
    assert pulled_digest(f"{repo}:v1", "arm64") == got["linux/arm64"]
    for arch, machine in [("arm64", "aarch64"), ("amd64", "x86_64")]:
        out = run("docker", "run", "--rm", "--pull", "always", "--network", "none",
                  "--platform", f"linux/{arch}", f"{repo}:v1", "cat", "/built-on").stdout.strip()
        assert out == machine

    # Nothing changed: no diff. Reordered sets: no diff.
    assert provider.diff(IMAGE, id, state, checked).changes == DIFF_NONE
    reordered = dict(checked, platforms=["linux/arm64", "linux/amd64"])
    assert provider.diff(IMAGE, id, state, reordered).changes == DIFF_NONE
    # Permission bits other than +x, mtimes, ignored files: no diff.
    os.chmod(ctx_dir / "app.txt", 0o664)
    os.utime(ctx_dir / "app.txt", (1, 1))
    (ctx_dir / "ignored.log").write_text("more noise\n")
    assert provider.diff(IMAGE, id, state, checked).changes == DIFF_NONE
    # New contents: an update, in place.
    (ctx_dir / "app.txt").write_text("version 2\n")
    d = provider.diff(IMAGE, id, state, checked)
    assert d.changes == DIFF_SOME and "contextHash" in d.detailedDiff and list(d.replaces) == []

    password = open(world["ECR_PASSWORD_FILE"]).read().strip()
    assert password not in json.dumps(state) and password not in provider.stderr()

    # Refresh keeps a tag that still points at the pushed digest.
    rid, props, inputs_back = provider.read(IMAGE, id, state, checked)
    assert rid == id and props["tags"] == state["tags"] and props["digest"] == state["digest"]
    assert "digest" not in inputs_back

    provider.delete(IMAGE, id, state)
    assert run("skopeo", "inspect", "--raw", f"docker://{repo}:v1", check=False).returncode != 0
    # Refresh after the tag is gone: the resource is gone.
    assert provider.read(IMAGE, id, state, checked)[0] == ""


def test_broken_dockerfile_fails_the_preview_without_writes(provider, world, tmp_path, plain_log):
    (tmp_path / "Dockerfile").write_text(
        f"FROM {world['BASE_IMAGE_PLAIN']}\nRUN echo about to fail && exit 7\n"
    )
    inputs = {"context": {"location": str(tmp_path)}, "platforms": ["linux/amd64"],
              "tags": [f"{world['PLAIN_REGISTRY']}/{unique('broken')}:1"], "network": "none", "push": True}
    checked, _ = provider.check(IMAGE, inputs)
    with pytest.raises(grpc.RpcError) as e:
        provider.create(IMAGE, checked, preview=True)
    assert "exit code: 7" in e.value.details()
    assert "about to fail" in e.value.details()
    assert [w for w in plain_log.writes() if "buildkit" in w.lower() or "multiarch" in w] == []


def test_a_base_image_without_the_platform_is_an_error_naming_platforms(provider, world, tmp_path):
    """BuildKit says only in words that a base image lacks a platform; the provider turns
    that into an error on `platforms`, at preview, and writes nothing."""
    base = f"{world['PLAIN_REGISTRY']}/{unique('amd64-only')}:1"
    one, _ = provider.check(IMAGE, {"dockerfile": {"inline": f"FROM {world['BASE_IMAGE_PLAIN']}\n"},
                                    "platforms": ["linux/amd64"], "tags": [base]})
    provider.create(IMAGE, one)
    # An index that lists amd64 only (a lone manifest would be taken for any platform).
    index = f"{world['PLAIN_REGISTRY']}/{unique('amd64-index')}:1"
    provider.create(ML, provider.check(ML, {"tags": [index], "sources": [base]})[0])
    inputs = {"dockerfile": {"inline": f"FROM {index}\nRUN true\n"},
              "platforms": ["linux/arm64"], "tags": [f"{world['PLAIN_REGISTRY']}/{unique('derived')}:1"]}
    checked, _ = provider.check(IMAGE, inputs)
    with pytest.raises(grpc.RpcError) as e:
        provider.create(IMAGE, checked, preview=True)
    details = e.value.details()
    assert "platforms" in details and "no manifest for one of the requested platforms" in details, details


def test_cross_compile_pattern(provider, world, tmp_path):
    (tmp_path / "Dockerfile").write_text(
        f"FROM --platform=$BUILDPLATFORM {world['BASE_IMAGE_PLAIN']} AS build\n"
        "ARG TARGETARCH\nARG BUILDARCH\n"
        "RUN echo \"target=$TARGETARCH built-on=$(uname -m)\" > /out\n"
        f"FROM {world['BASE_IMAGE_PLAIN']}\nCOPY --from=build /out /out\n"
    )
    repo = f"{world['PLAIN_REGISTRY']}/{unique('cross')}"
    inputs = {"context": {"location": str(tmp_path)}, "platforms": ["linux/arm64", "linux/amd64"],
              "tags": [f"{repo}:1"], "network": "none"}
    _, state = provider.create(IMAGE, provider.check(IMAGE, inputs)[0])
    assert sorted(m["platform"] for m in state["manifests"]) == ["linux/amd64", "linux/arm64"]
    out = run("docker", "run", "--rm", "--pull", "always", "--network", "none", "--platform", "linux/arm64",
              f"{repo}:1", "cat", "/out").stdout.strip()
    assert out == "target=arm64 built-on=x86_64"


def test_build_secret_is_used_and_kept_out_of_everything(provider, world, tmp_path):
    token = unique("tok-value")
    (tmp_path / "Dockerfile").write_text(
        f"FROM {world['BASE_IMAGE_PLAIN']}\n"
        "RUN --mount=type=secret,id=tok,required=true wc -c < /run/secrets/tok > /secret-length\n"
    )
    repo = f"{world['PLAIN_REGISTRY']}/{unique('secret')}"
    inputs = {"context": {"location": str(tmp_path)}, "platforms": ["linux/amd64"],
              "tags": [f"{repo}:1"], "network": "none", "secrets": {"tok": secret(token)}}
    checked, failures = provider.check(IMAGE, inputs)
    assert failures == []
    assert checked["secrets"][SIG] == SECRET_SIG
    _, state = provider.create(IMAGE, checked)
    assert state["secrets"][SIG] == SECRET_SIG
    assert token not in json.dumps({k: v for k, v in state.items() if k != "secrets"})
    out = run("docker", "run", "--rm", "--pull", "always", "--network", "none", f"{repo}:1",
              "cat", "/secret-length").stdout.strip()
    assert out == str(len(token))
    config = run("skopeo", "inspect", "--tls-verify=false", "--config", f"docker://{repo}:1").stdout
    assert token not in config
    assert token not in provider.stderr()
    assert all(token not in m for m in provider.engine.messages())


@pytest.mark.parametrize(
    "inputs, prop, words",
    [
        ({"context": {"location": "/nonexistent"}, "tags": ["127.0.0.1:5000/a:1"]}, "context.location", "not a directory"),
        ({"dockerfile": {"location": "/nonexistent/Dockerfile"}, "tags": ["127.0.0.1:5000/a:1"]},
         "dockerfile.location", "not a file"),
        ({"dockerfile": {"location": "/etc/hostname", "inline": "FROM scratch"}, "tags": ["127.0.0.1:5000/a:1"]},
         "dockerfile", "not both"),
        ({"dockerfile": {"inline": "FROM scratch"}, "platforms": ["linux/sparc"], "tags": ["127.0.0.1:5000/a:1"]},
         "platforms[0]", "unknown architecture"),
        ({"dockerfile": {"inline": "FROM scratch"}, "platforms": ["linux/arm64", "linux/aarch64"],
          "tags": ["127.0.0.1:5000/a:1"]}, "platforms[1]", "same platform"),
        ({"dockerfile": {"inline": "FROM scratch"}, "tags": ["app"]}, "tags[0]", "registry host"),
        ({"dockerfile": {"inline": "FROM scratch"}}, "tags", "no tags"),
        ({"dockerfile": {"inline": "FROM scratch"}, "tags": ["127.0.0.1:5000/a:1"], "network": "bridge"},
         "network", "unknown variant"),
        ({"dockerfile": {"inline": "FROM scratch"}, "tags": ["127.0.0.1:5000/a:1"],
          "addHosts": ["db.internal:10.0.0.5", "db.internal=10.0.0.6"]}, "addHosts[1]", "not host:ip"),
        ({"dockerfile": {"inline": "FROM scratch"}, "tags": ["127.0.0.1:5000/a:1"],
          "addHosts": ["db.internal:10.0.0"]}, "addHosts[0]", "not an IPv4 or IPv6 address"),
        ({"dockerfile": {"inline": "FROM scratch"}, "tags": ["127.0.0.1:5000/a:1"],
          "addHosts": ["bad host:10.0.0.1"]}, "addHosts[0]", "not a host name"),
    ],
)
def test_bad_image_input_is_a_check_failure(provider, inputs, prop, words):
    _, failures = provider.check(IMAGE, inputs)
    assert any(p == prop and words in r for p, r in failures), failures


def test_cancel_stops_a_running_build(provider, world, tmp_path):
    import threading
    import time

    from google.protobuf import empty_pb2

    marker = unique("m")
    (tmp_path / "Dockerfile").write_text(
        f"FROM {world['BASE_IMAGE_PLAIN']}\nRUN echo {marker} && sleep 120\n"
    )
    inputs = {"context": {"location": str(tmp_path)}, "platforms": ["linux/amd64"],
              "tags": [f"{world['PLAIN_REGISTRY']}/{unique('cancel')}:1"], "network": "none"}
    checked = provider.check(IMAGE, inputs)[0]
    result = {}

    def create():
        try:
            provider.create(IMAGE, checked)
            result["outcome"] = "finished"
        except grpc.RpcError as e:
            result["outcome"] = e.code()
            result["at"] = time.monotonic()

    t = threading.Thread(target=create)
    t.start()
    # Cancel once the long step runs (its progress names it), not after a guessed delay.
    assert provider.engine.saw(marker, timeout=120), provider.engine.messages()
    provider.stub.Cancel(empty_pb2.Empty())
    # The step sleeps 120 s: only a cancelled build ends within the join.
    t.join(timeout=60)
    assert result.get("outcome") == grpc.StatusCode.CANCELLED


SCANNER_SCRIPT = r"""#!/bin/sh
# A minimal generator for BuildKit's SBOM scanning protocol: one SPDX document (inside an
# in-toto statement) naming every file of the scanned root filesystem.
set -eu
out="$BUILDKIT_SCAN_DESTINATION/$(basename "$BUILDKIT_SCAN_SOURCE").spdx.json"
cd "$BUILDKIT_SCAN_SOURCE"
{
  printf '{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://spdx.dev/Document",'
  printf '"predicate":{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"test-scan",'
  printf '"dataLicense":"CC0-1.0","documentNamespace":"https://example.invalid/scan",'
  printf '"creationInfo":{"created":"2026-01-01T00:00:00Z","creators":["Tool: multiarch-test-scanner"]},"files":['
  sep=""
  n=0
  for f in $(find . -type f | sed 's|^\./||' | sort); do
    n=$((n+1))
    printf '%s{"fileName":"%s","SPDXID":"SPDXRef-File-%d"}' "$sep" "$f" "$n"
    sep=","
  done
  printf ']}}'
} > "$out"
"""


def blob_json(registry: str, repo: str, digest: str) -> dict:
    import urllib.request

    with urllib.request.urlopen(f"http://{registry}/v2/{repo}/blobs/{digest}", timeout=30) as r:
        return json.loads(r.read())


def test_sbom_from_a_generator_in_our_own_registry(provider, world, tmp_path):
    """`sbom` with `sbomGenerator`: BuildKit runs the generator image (here a tiny scanner
    pushed to the plain registry, since Docker Hub's syft scanner is out of reach) for each
    platform and attaches the SPDX document; outputs list only the platform manifests."""
    reg = world["PLAIN_REGISTRY"]
    scanner_dir = tmp_path / "scanner"
    scanner_dir.mkdir()
    (scanner_dir / "scan.sh").write_text(SCANNER_SCRIPT)
    (scanner_dir / "Dockerfile").write_text(
        f"FROM {world['BASE_IMAGE_PLAIN']}\nCOPY --chmod=755 scan.sh /scan.sh\nENTRYPOINT [\"/scan.sh\"]\n")
    scanner = f"{reg}/{unique('scanner')}:v1"
    run("docker", "buildx", "build", "-q", "--platform", "linux/amd64", "--provenance=false",
        "--sbom=false", "-t", scanner, "--push", str(scanner_dir))

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY app.txt /srv/app.txt\n")
    (ctx / "app.txt").write_text(unique("content"))
    repo = unique("sbom")
    inputs = {"context": {"location": str(ctx)}, "platforms": ["linux/amd64", "linux/arm64"],
              "tags": [f"{reg}/{repo}:v1"], "sbom": True, "sbomGenerator": scanner}
    checked, failures = provider.check(IMAGE, inputs)
    assert failures == []
    _, state = provider.create(IMAGE, checked)

    index = raw_manifest(f"{reg}/{repo}:v1", insecure=True)
    platform_entries = {m["digest"]: m for m in index["manifests"] if m["platform"]["os"] != "unknown"}
    attestations = [m for m in index["manifests"] if m["platform"]["os"] == "unknown"]
    assert sorted(m["platform"]["architecture"] for m in platform_entries.values()) == ["amd64", "arm64"]
    assert len(attestations) == 2
    assert sorted(m["digest"] for m in state["manifests"]) == sorted(platform_entries)
    for a in attestations:
        assert a["annotations"]["vnd.docker.reference.type"] == "attestation-manifest"
        assert a["annotations"]["vnd.docker.reference.digest"] in platform_entries
        manifest = raw_manifest(f"{reg}/{repo}@{a['digest']}", insecure=True)
        spdx = [layer for layer in manifest["layers"]
                if layer["annotations"]["in-toto.io/predicate-type"] == "https://spdx.dev/Document"]
        assert len(spdx) == 1
        statement = blob_json(reg, repo, spdx[0]["digest"])
        files = [f["fileName"] for f in statement["predicate"]["files"]]
        assert files == ["srv/app.txt"], statement["predicate"]


def test_sbom_generator_without_sbom_is_a_check_failure(provider, tmp_path, world):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    inputs = {"context": {"location": str(ctx)}, "push": False, "sbomGenerator": "not a ref!"}
    _, failures = provider.check(IMAGE, inputs)
    assert sorted(p for p, _ in failures) == ["sbomGenerator", "sbomGenerator"], failures
    assert any("sbom: true" in r for _, r in failures)


def test_push_false_builds_and_reports_empty_digest_and_ref(provider, world, tmp_path, plain_log):
    """digest and ref exist after every create (the SDKs type them non-optional); without a
    push they are empty and nothing reaches a registry."""
    (tmp_path / "Dockerfile").write_text(f"FROM {world['BASE_IMAGE_PLAIN']}\nRUN true\n")
    repo = unique("nopush")
    inputs = {"context": {"location": str(tmp_path)}, "platforms": ["linux/amd64"], "push": False,
              "tags": [f"{world['PLAIN_REGISTRY']}/{repo}:1"]}
    checked, failures = provider.check(IMAGE, inputs)
    assert failures == []
    plain_log.mark()
    id, state = provider.create(IMAGE, checked)
    assert state["digest"] == "" and state["ref"] == ""
    assert state["contextHash"].startswith("sha256:")
    _, read, _ = provider.read(IMAGE, id, state)
    assert read["digest"] == ""
    provider.delete(IMAGE, id, state)
    assert [w for w in plain_log.writes() if repo in w] == []


def test_add_hosts_resolve_names_in_run_steps_and_compare_as_a_set(provider, world, tmp_path):
    """A name that exists only through addHosts resolves in RUN; reordering is no change."""
    (tmp_path / "Dockerfile").write_text(
        f"FROM {world['BASE_IMAGE_PLAIN']}\n"
        # busybox ping resolves through /etc/hosts first (and then fails: no network at all).
        "RUN (ping -c 1 -W 1 db.multiarch.internal 2>&1 || true) > /hosts && cat /etc/hosts >> /hosts\n"
    )
    repo = f"{world['PLAIN_REGISTRY']}/{unique('addhosts')}"
    inputs = {"context": {"location": str(tmp_path)}, "platforms": ["linux/amd64"],
              "tags": [f"{repo}:1"], "network": "none",
              "addHosts": ["db.multiarch.internal:10.11.12.13", "v6.multiarch.internal:fd00::7"]}
    checked, failures = provider.check(IMAGE, inputs)
    assert failures == []
    id_, state = provider.create(IMAGE, checked)
    # One platform, no attestations: the tag is the image manifest itself, still reported.
    assert state["manifests"] == [{"platform": "linux/amd64", "digest": state["digest"]}]
    out = run("docker", "run", "--rm", "--pull", "always", "--network", "none", f"{repo}:1",
              "cat", "/hosts").stdout
    assert "PING db.multiarch.internal (10.11.12.13)" in out, out
    assert "fd00::7" in out and "v6.multiarch.internal" in out, out
    reordered = dict(inputs, addHosts=list(reversed(inputs["addHosts"])))
    diff = provider.diff(IMAGE, id_, state, provider.check(IMAGE, reordered)[0])
    assert diff.changes == DIFF_NONE, diff
    changed = dict(inputs, addHosts=["db.multiarch.internal:10.11.12.14"])
    diff = provider.diff(IMAGE, id_, state, provider.check(IMAGE, changed)[0])
    assert diff.changes == DIFF_SOME and list(diff.diffs) == ["addHosts"], diff


def test_a_changed_up_reads_the_context_once(provider, world, tmp_path):
    """Diff hashes the changed files; Create/Update reuse every digest whose file is
    unchanged since (stat cache, racy timestamps excluded): one read pass per changed up."""
    import re
    import time

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {world['BASE_IMAGE_PLAIN']}\nCOPY . /src\n")
    for i in range(40):
        (ctx / f"f{i}.txt").write_text(f"file {i}\n")
    time.sleep(2.5)  # older than the racy-timestamp window (2 s)
    inputs = {"context": {"location": str(ctx)}, "platforms": ["linux/amd64"], "push": False,
              "network": "none"}
    checked, _ = provider.check(IMAGE, inputs)
    id_, state = provider.create(IMAGE, checked)
    (ctx / "f3.txt").write_text("changed\n")
    time.sleep(2.5)
    diff = provider.diff(IMAGE, id_, state, checked)
    assert diff.changes == DIFF_SOME and list(diff.diffs) == ["contextHash"], diff
    provider.update(IMAGE, id_, state, checked)
    provider.engine.saw("unchanged since hashed")
    reads = [tuple(map(int, m.groups())) for m in
             (re.match(r"contextHash: (\d+) files, (\d+) read", l) for l in provider.engine.messages()) if m]
    # create reads all 41 files (40 + the Dockerfile); the Diff only the changed one; the
    # Update none.
    assert reads[-3:] == [(41, 41), (41, 1), (41, 0)], reads


def test_ssh_agent_is_forwarded_to_run_steps(provider, world, tmp_path):
    """`RUN --mount=type=ssh` sees the keys of the agent given in `ssh` (a test agent with a
    fresh key); the key itself never leaves the agent."""
    import subprocess

    agent_sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(agent_sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(50):
            if agent_sock.exists():
                break
            import time
            time.sleep(0.1)
        key = tmp_path / "id_ed25519"
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
        env = dict(os.environ, SSH_AUTH_SOCK=str(agent_sock))
        subprocess.run(["ssh-add", "-q", str(key)], env=env, check=True)
        fp = subprocess.run(["ssh-add", "-l", "-E", "sha256"], env=env, check=True,
                            capture_output=True, text=True).stdout.split()[1]
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        # A static program that asks the agent for its identities (busybox has no ssh-add).
        run("go", "build", "-o", str(ctx / "agentls"), ".", cwd=str(ROOT / "tests" / "ssh_agentls"),
            env=dict(os.environ, CGO_ENABLED="0", GOOS="linux", GOARCH="amd64", GOFLAGS="-mod=mod"))
        (ctx / "Dockerfile").write_text(
            f"FROM {world['BASE_IMAGE_PLAIN']}\nCOPY agentls /agentls\nARG FP\n"
            "RUN --mount=type=ssh,id=deploy /agentls > /fps && grep -qx \"$FP\" /fps\n"
        )
        inputs = {"context": {"location": str(ctx)}, "platforms": ["linux/amd64"], "push": False,
                  "network": "none", "buildArgs": {"FP": fp},
                  "ssh": [{"id": "deploy", "paths": [str(tmp_path / "missing.sock"), str(agent_sock)]}]}
        checked, failures = provider.check(IMAGE, inputs)
        assert failures == []
        provider.create(IMAGE, checked)
        # Another fingerprint: the RUN step fails, so the check above can fail.
        wrong = dict(inputs, buildArgs={"FP": "SHA256:not-this-key"})
        with pytest.raises(grpc.RpcError) as e:
            provider.create(IMAGE, provider.check(IMAGE, wrong)[0])
        assert "grep" in e.value.details()
        # A path that is no agent socket is a Check failure naming it.
        bad = dict(inputs, ssh=[{"id": "deploy", "paths": [str(key)]}])
        _, failures = provider.check(IMAGE, bad)
        assert any(p == "ssh[0].paths[0]" and "only agent sockets" in r for p, r in failures), failures
    finally:
        agent.terminate()

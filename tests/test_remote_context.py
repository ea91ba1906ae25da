"""Remote build contexts, as `docker buildx build <url>` takes them: a Git repository on the
test world's Git server (smart HTTP over TLS on loopback, `GIT_HTTP_URL`) with `#ref:subdir`,
and an HTTP tarball. BuildKit (in the Engine, host network) fetches them itself; the
provider resolves the ref read-only (`git ls-remote`) for the contextHash."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import re
import signal
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest

from harness import DIFF_NONE, DIFF_SOME, IMAGE, Provider, run, unique


class GitRepo:
    """A bare repository served by the test world's Git server, and a work tree to commit in."""

    def __init__(self, world, tmp_path: Path):
        self.name = unique("ctx")
        self.bare = Path(world["GIT_HTTP_ROOT"]) / f"{self.name}.git"
        self.url = f"{world['GIT_HTTP_URL']}/{self.name}.git"
        self.work = tmp_path / "work"
        run("git", "init", "-q", "--bare", "-b", "main", str(self.bare))
        run("git", "init", "-q", "-b", "main", str(self.work))

    def commit(self, files: dict[str, str], branch: str = "main") -> str:
        for path, text in files.items():
            p = self.work / path
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        git = ["git", "-C", str(self.work), "-c", "user.name=t", "-c", "user.email=t@localhost"]
        run(*git, "add", "-A")
        run(*git, "commit", "-q", "-m", "change")
        run(*git, "push", "-q", "-f", str(self.bare), f"HEAD:refs/heads/{branch}")
        return run(*git, "rev-parse", "HEAD").stdout.strip()


def dockerfile(world) -> str:
    return f"FROM {world['BASE_IMAGE_PLAIN']}\nCOPY msg.txt /msg.txt\n"


def cat_msg(tag: str, arch: str) -> str:
    return run("docker", "run", "--rm", "--pull", "always", "--network", "none",
               "--platform", f"linux/{arch}", tag, "cat", "/msg.txt").stdout.strip()


def test_git_context_with_ref_and_subdir_builds_and_a_moved_branch_is_an_update(
        provider, world, tmp_path, plain_log):
    repo = GitRepo(world, tmp_path)
    repo.commit({"README": "top\n", "app/Dockerfile": dockerfile(world), "app/msg.txt": "one\n"})
    repo.commit({"app/msg.txt": "on a branch\n"}, branch="other")
    tag = f"{world['PLAIN_REGISTRY']}/{unique('remote')}:v1"
    inputs = {"context": {"location": f"{repo.url}#main:app"},
              "platforms": ["linux/amd64", "linux/arm64"], "tags": [tag], "network": "none"}
    checked, failures = provider.check(IMAGE, inputs)
    assert failures == []

    # Preview builds and writes nothing.
    _, preview = provider.create(IMAGE, checked, preview=True)
    assert [w for w in plain_log.writes() if tag.split("/")[1].split(":")[0] in w] == []

    id, state = provider.create(IMAGE, checked)
    assert cat_msg(tag, "amd64") == "one" and cat_msg(tag, "arm64") == "one"
    assert provider.diff(IMAGE, id, state, checked).changes == DIFF_NONE

    # The branch moves: the contextHash changes, an update builds the new commit.
    repo.commit({"app/msg.txt": "two\n"})
    d = provider.diff(IMAGE, id, state, checked)
    assert d.changes == DIFF_SOME and list(d.diffs) == ["contextHash"], d
    updated = provider.update(IMAGE, id, state, checked)
    assert updated["contextHash"] != state["contextHash"]
    assert cat_msg(tag, "amd64") == "two"
    assert provider.diff(IMAGE, id, updated, checked).changes == DIFF_NONE

    # Another ref of the same repository is another context.
    other = dict(checked, context={"location": f"{repo.url}#other:app"})
    assert provider.diff(IMAGE, id, updated, other).changes == DIFF_SOME


def test_bad_remote_contexts_are_refused_at_check_naming_the_property(provider, world):
    base = f"{world['GIT_HTTP_URL']}/nothing.git"
    for location, reason in [
        (f"https://user:token@{base.removeprefix('https://')}", "credentials"),
        (f"{base}?ref=main", "query options"),
        (f"{base}#main:../..", "may not leave the repository"),
        ("https://127.0.0.1:5480/ctx.tar.gz#main", "tarball"),
        ("git@127.0.0.1:org/app.git#main", "SSH agent"),
    ]:
        _, failures = provider.check(IMAGE, {"context": {"location": location},
                                             "tags": [f"{world['PLAIN_REGISTRY']}/x:1"]})
        assert [p for p, _ in failures] == ["context.location"], (location, failures)
        assert reason in failures[0][1], (location, failures)


def test_a_missing_branch_fails_the_preview_naming_context_location(provider, world, tmp_path):
    repo = GitRepo(world, tmp_path)
    repo.commit({"Dockerfile": dockerfile(world), "msg.txt": "x\n"})
    inputs = {"context": {"location": f"{repo.url}#no-such-branch"},
              "tags": [f"{world['PLAIN_REGISTRY']}/{unique('remote')}:v1"]}
    checked, failures = provider.check(IMAGE, inputs)
    assert failures == []
    with pytest.raises(grpc.RpcError) as e:
        provider.create(IMAGE, checked, preview=True)
    msg = e.value.details()
    assert "context.location" in msg and "no-such-branch" in msg and repo.name in msg, msg


@pytest.fixture
def tarball_server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def write_tarball(path: Path, files: dict[str, str]) -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1
            t.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())
    return "sha256:" + hashlib.sha256(buf.getvalue()).hexdigest()


def test_tarball_context_builds_and_new_bytes_are_an_update(provider, world, tarball_server):
    root, url = tarball_server
    write_tarball(root / "ctx.tar.gz", {"Dockerfile": dockerfile(world), "msg.txt": "tar one\n"})
    tag = f"{world['PLAIN_REGISTRY']}/{unique('remote-tar')}:v1"
    inputs = {"context": {"location": f"{url}/ctx.tar.gz"}, "platforms": ["linux/amd64"],
              "tags": [tag], "network": "none"}
    checked, failures = provider.check(IMAGE, inputs)
    assert failures == []
    id, state = provider.create(IMAGE, checked)
    assert cat_msg(tag, "amd64") == "tar one"
    assert provider.diff(IMAGE, id, state, checked).changes == DIFF_NONE
    write_tarball(root / "ctx.tar.gz", {"Dockerfile": dockerfile(world), "msg.txt": "tar two\n"})
    d = provider.diff(IMAGE, id, state, checked)
    assert d.changes == DIFF_SOME and list(d.diffs) == ["contextHash"], d


@pytest.fixture
def ssh_agent(tmp_path, world):
    """An SSH agent holding the key the test world's sshd (127.0.0.1:2222) lets root in with."""
    key = Path(world["MULTIARCH_TESTENV_STATE"]) / "sshd" / "id_ed25519"
    sock = tmp_path / "agent.sock"
    out = run("ssh-agent", "-a", str(sock), "-s").stdout
    pid = re.search(r"SSH_AGENT_PID=(\d+)", out).group(1)
    try:
        run("ssh-add", str(key), env={**os.environ, "SSH_AUTH_SOCK": str(sock)})
        yield sock
    finally:
        os.kill(int(pid), signal.SIGTERM)


def test_ssh_git_context_builds_with_the_default_agent(engine, provider_env, world, tmp_path,
                                                       ssh_agent):
    """`ssh://` through the test world's sshd: the provider resolves the ref with its own
    `git` (the agent in SSH_AUTH_SOCK), BuildKit clones with the session's `default` agent."""
    repo = GitRepo(world, tmp_path)
    repo.commit({"app/Dockerfile": dockerfile(world), "app/msg.txt": "over ssh\n"})
    location = f"ssh://root@127.0.0.1:2222{repo.bare}#main:app"
    tag = f"{world['PLAIN_REGISTRY']}/{unique('remote-ssh')}:v1"
    env = {**provider_env, "SSH_AUTH_SOCK": str(ssh_agent),
           "GIT_SSH_COMMAND": "ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"}
    p = Provider(engine, env=env)
    try:
        p.handshake()
        p.configure({"registries": [{"address": world["PLAIN_REGISTRY"], "insecure": True}]})
        inputs = {"context": {"location": location}, "platforms": ["linux/amd64"],
                  "tags": [tag], "network": "none"}
        _, failures = p.check(IMAGE, inputs)
        assert [f for f, _ in failures] == ["context.location"], failures
        inputs["ssh"] = [{"id": "default"}]
        checked, failures = p.check(IMAGE, inputs)
        assert failures == []
        id, state = p.create(IMAGE, checked)
        assert cat_msg(tag, "amd64") == "over ssh"
        assert p.diff(IMAGE, id, state, checked).changes == DIFF_NONE
    finally:
        p.close()

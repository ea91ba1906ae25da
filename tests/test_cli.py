"""The command line of the built binaries, run as a user or a tool runs them: --version and
--help answer and exit at once, anything unknown is a usage error (exit 2) instead of a
server waiting for an engine, and what the Pulumi engine passes still starts the server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from harness import ROOT, binary

VERSION = re.search(r'^version = "(.+)"$', (ROOT / "Cargo.toml").read_text(), re.M).group(1)
BINS = [binary(), str(Path(binary()).with_name("terraform-provider-multiarch"))]


def cli(bin_path: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full = dict(os.environ)
    full.update(env or {})
    start = time.monotonic()
    # A server would never exit: the timeout turns "it hangs" into a failure.
    p = subprocess.run([bin_path, *args], capture_output=True, text=True, timeout=10,
                       env=full, stdin=subprocess.DEVNULL)
    p.elapsed = time.monotonic() - start
    return p


@pytest.mark.parametrize("bin_path", BINS, ids=["pulumi", "terraform"])
@pytest.mark.parametrize("env", [{}, {"TF_PLUGIN_MAGIC_COOKIE": "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"}],
                         ids=["plain", "under-terraform"])
def test_version_and_help_exit_at_once(bin_path, env):
    name = Path(bin_path).name
    p = cli(bin_path, "--version", env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout == f"{name} {VERSION}\n"
    assert p.elapsed < 5
    p = cli(bin_path, "--help", env=env)
    assert p.returncode == 0, p.stderr
    for s in ("ENGINE_ADDRESS", "TF_PLUGIN_MAGIC_COOKIE", "--schema", "--docs DIR", "--version",
              "-v=N", "--logtostderr", "--tracing URL", "exit code 2"):
        assert s in p.stdout, s
    assert p.stdout.startswith(f"{name} {VERSION}")
    assert cli(bin_path, "-h").stdout == p.stdout


@pytest.mark.parametrize("args,message", [
    (["version"], 'unexpected argument "version"'),
    (["help"], 'unexpected argument "help"'),
    (["http://version"], "unexpected argument"),
    (["--bogus"], "unknown flag --bogus"),
    (["--port", "1234"], "unknown flag --port"),
    (["-v=loud", "127.0.0.1:1"], "-v needs a number"),
    (["--tracing"], "--tracing needs a URL"),
    (["127.0.0.1:1", "127.0.0.1:2"], "more than one engine address"),
    (["--version", "--schema"], "cannot be combined"),
])
def test_unknown_arguments_are_usage_errors(args, message):
    p = cli(binary(), *args)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert p.stdout == ""  # no port printed: no server started
    assert message in p.stderr
    assert "--help" in p.stderr
    assert p.elapsed < 5


def test_engine_arguments_start_the_server(tmp_path):
    """What Pulumi's buildPluginArguments passes: [--logtostderr] [-v=N] [--tracing URL] ADDRESS."""
    for args in (["127.0.0.1:1"],
                 ["--logtostderr", "-v=3", "--tracing", "http://127.0.0.1:9/spans", "127.0.0.1:1"],
                 ["--logflow", "--v=9", "--tracing=http://127.0.0.1:9/", "[::1]:1"]):
        proc = subprocess.Popen([binary(), *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL)
        try:
            line = proc.stdout.readline().decode().strip()
            assert line.isdigit() and 0 < int(line) < 65536, (args, line)
            assert proc.poll() is None  # serving
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_schema_and_docs_match_the_checked_in_files(tmp_path):
    p = cli(binary(), "--schema")
    assert p.returncode == 0
    assert json.loads(p.stdout) == json.loads((ROOT / "schema" / "schema.json").read_text())
    p = cli(binary(), "--docs", str(tmp_path / "docs"))
    assert p.returncode == 0, p.stderr
    written = sorted(str(Path(l).relative_to(tmp_path / "docs")) for l in p.stdout.splitlines())
    assert written == ["_index.md", "data-sources/image.md", "index.md",
                       "installation-configuration.md", "resources/image.md",
                       "resources/manifest_list.md"]
    for rel in written:
        assert (tmp_path / "docs" / rel).read_text() == (ROOT / "docs" / rel).read_text(), rel

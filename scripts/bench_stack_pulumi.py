"""The `stack` rows of `make bench` driven by the real `pulumi` CLI (scripts/bench_stack.py):
each run generates a Pulumi YAML program (an explicit `pulumi:providers:multiarch` with the
`builders` of the row, one `multiarch:index:Image` per context) into a new stack of a
temporary `file://` backend and times `pulumi up --yes --skip-preview --parallel N` end to
end (CLI start, YAML language host, plugin start, Configure, every Check and Create, state
writes). `pulumi` is tests/pulumicli.py's PulumiCLI (the CLI of `make pulumi`, its own
PULUMI_HOME and backend, PULUMI_CONFIG_PASSPHRASE set); it finds the plugin under test on
PATH, as scripts/demo.py has it (no tarball to pack and install per bench)."""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from harness import EMPTY_DOCKER_CONFIG, binary
from pulumicli import PulumiCLI

PROJECT = "multiarch-stack-bench"


class _Dumper(yaml.SafeDumper):
    # Pulumi YAML refuses YAML aliases ("alias nodes are not supported"): a list shared by
    # every Image (the platforms) is written out each time.
    def ignore_aliases(self, data):
        return True


def program(builders: list[dict] | None, registries: list[dict], images: dict[str, dict]) -> str:
    """Pulumi.yaml: the provider resource and one Image per entry of `images` (name -> its
    properties), each Image's digest a stack output. No `builders`, no images: the empty
    program whose `up` is the CLI's own floor."""
    doc: dict = {"name": PROJECT, "runtime": "yaml"}
    if builders is None:
        return yaml.dump(doc, Dumper=_Dumper, sort_keys=False)
    resources: dict = {"nodes": {"type": "pulumi:providers:multiarch",
                                 "properties": {"builders": builders, "registries": registries}}}
    for name, props in images.items():
        resources[name] = {"type": "multiarch:index:Image", "properties": props,
                           "options": {"provider": "${nodes}"}}
    doc["resources"] = resources
    doc["outputs"] = {name: f"${{{name}.digest}}" for name in images}
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False)


class PulumiUp:
    """One temporary project directory; every `up` runs on a new stack of it, so each one
    creates every resource (nothing to diff against)."""

    def __init__(self, tmp: str, env: dict[str, str], parallel: int):
        base = Path(tmp) / "pulumi"
        # The plugin's environment as the gRPC rows give it (harness.Provider): no Docker
        # config of the machine's.
        self.cli = PulumiCLI(base, {**env, "DOCKER_CONFIG": EMPTY_DOCKER_CONFIG})
        plugin_dir = Path(binary()).resolve().parent
        self.cli.env["PATH"] = f"{plugin_dir}:{self.cli.env['PATH']}"
        self.proj = base / "project"
        self.proj.mkdir(parents=True, exist_ok=True)
        self.parallel = parallel
        self.runs = 0
        self.t0 = 0.0  # when the running `up` started

    def up(self, text: str, during=None) -> tuple[float, dict]:
        """Writes the program, inits a new stack (not timed), times `pulumi up`; `during`, if
        given, runs on this thread while `up` runs on another. Returns the time and the stack's
        outputs."""
        self.runs += 1
        stack = f"run{self.runs}"
        (self.proj / "Pulumi.yaml").write_text(text)
        self.cli("stack", "init", stack, cwd=self.proj)

        def timed() -> float:
            self.t0 = t0 = time.perf_counter()
            self.cli("up", "--yes", "--skip-preview", "--parallel", str(self.parallel),
                     "--stack", stack, cwd=self.proj)
            return time.perf_counter() - t0

        if during is None:
            elapsed = timed()
        else:
            with ThreadPoolExecutor(max_workers=1) as pool:
                fut = pool.submit(timed)
                try:
                    during(fut)
                finally:
                    elapsed = fut.result()
        outputs = self.cli.json("stack", "output", "--stack", stack, cwd=self.proj)
        return elapsed, outputs


class NodeWatch:
    """Build records of one buildkitd (`buildctl debug histories`, which lists the running
    builds with the finished ones): `started()` is true once a build this watch did not see at
    its creation is there, i.e. the stack has reached the node."""

    def __init__(self, buildctl: str, addr: str):
        self.cmd = [buildctl, "--addr", addr, "debug", "histories", "--format", "{{json .}}"]
        self.before = self.refs()

    def refs(self) -> set[str]:
        p = subprocess.run(self.cmd, capture_output=True, text=True, timeout=30)
        found = set()
        for line in p.stdout.splitlines():
            if line.strip():
                ev = json.loads(line)
                rec = ev.get("record") or ev.get("Record") or {}
                found.add(rec.get("Ref") or rec.get("ref") or line)
        return found

    def wait_started(self, fut, timeout: float = 300) -> bool:
        """Polls until a new build is there; false if `fut` (the `up`) ends first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if fut.done():
                return False
            try:
                if self.refs() - self.before:
                    return True
            except (subprocess.TimeoutExpired, json.JSONDecodeError):
                pass
            time.sleep(0.1)
        return False

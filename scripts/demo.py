"""The main job, end to end on this machine, with the real `pulumi` CLI: a Pulumi YAML program
publishes one multi-arch tag on the ECR look-alike from two per-architecture tags (preview
writes nothing, then up), then the demo shows what the registry holds, runs each
architecture, and previews again (nothing to do). `pulumi` finds the built plugin on PATH, as
it finds any locally built provider (packing the debug binary into a release tarball for
`pulumi plugin install` would cost about 15 s); the stack lives in a temporary `file://`
backend.

Run through `make demo`, which starts the test world and builds the provider and the Pulumi
CLI first (`make pulumi`, cached after its first build)."""

import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from harness import (  # noqa: E402
    RegistryLog, binary, raw_manifest, run, skopeo_copy, testenv, unique,
)
from pulumicli import PulumiCLI  # noqa: E402

# What the Pulumi engine sends for a value not known until `up`.
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

PROGRAM = """\
name: demo
runtime: yaml
config:
  repository:
    type: string
resources:
  app10:
    type: multiarch:index:ManifestList
    properties:
      tags:
        - ${repository}:10
      sources:
        - ${repository}:10.10
        - ${repository}:10.20
outputs:
  ref: ${app10.ref}
  platforms: ${app10.platforms}
  manifests: ${app10.manifests}
"""


# How Pulumi's own preview shows a value not known until `up`.
PULUMI_UNKNOWNS = ("[unknown]", "output<string>")


def shown(v):
    """A value as the demo prints it: Pulumi's unknown sentinel as `<unknown>`."""
    if v == UNKNOWN:
        return "<unknown>"
    if isinstance(v, list):
        return [shown(x) for x in v]
    if isinstance(v, dict):
        return {k: shown(x) for k, x in v.items()}
    return v


def preview_outputs(text: str) -> str:
    """The `Outputs:` section of `pulumi preview`, every unknown written `<unknown>`."""
    section = text.split("\nOutputs:\n", 1)[-1].split("\n\n", 1)[0]
    for marker in PULUMI_UNKNOWNS:
        section = section.replace(marker, "<unknown>")
    return section.replace(UNKNOWN, "<unknown>")


def main():
    world = testenv()
    env = {k: v for k, v in world.items() if k.startswith("AWS_") or k == "SSL_CERT_FILE"}
    repo = f"{world['ECR_REGISTRY']}/{unique('demo-app')}"
    print(f"== publishing {repo}:10.10 (amd64) and {repo}:10.20 (arm64), as CI would")
    skopeo_copy(world["BASE_IMAGE_ECR_AMD64"], f"{repo}:10.10")
    skopeo_copy(world["BASE_IMAGE_ECR_ARM64"], f"{repo}:10.20")

    # The built plugin first on PATH: `pulumi` takes it from there.
    os.environ["PATH"] = f"{Path(binary()).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    ecr = RegistryLog(world["ECR_REGISTRY_LOG"])
    with tempfile.TemporaryDirectory(prefix="multiarch-demo-pulumi.") as tmp:
        base = Path(tmp)
        cli = PulumiCLI(base, env)
        proj = base / "demo"
        proj.mkdir()
        (proj / "Pulumi.yaml").write_text(PROGRAM)
        cli("stack", "init", "dev", cwd=proj)
        cli("config", "set", "repository", repo, cwd=proj)
        ecr.mark()
        text = cli("preview", cwd=proj).stdout
        writes = [w for w in ecr.writes() if f"/v2/{repo.split('/', 1)[1]}/" in w]
        assert writes == [], f"preview wrote to the registry: {writes}"
        print("== pulumi preview (nothing written), the stack's outputs:")
        print(preview_outputs(text))
        cli("up", "--yes", "--skip-preview", cwd=proj)
        out = cli.json("stack", "output", cwd=proj)
        print("== pulumi up:", json.dumps(shown(out), indent=2))
        index = raw_manifest(f"{repo}:10")
        print("== the registry holds", index["mediaType"])
        for m in index["manifests"]:
            print(f"   {m['platform']['os']}/{m['platform']['architecture']}  {m['digest']}")
        for arch in ["amd64", "arm64"]:
            got = run("docker", "run", "--rm", "--network", "none", "--platform",
                      f"linux/{arch}", f"{repo}:10", "uname", "-m").stdout.strip()
            print(f"== docker run --platform linux/{arch} {repo}:10 uname -m  ->  {got}")
        again = cli.json("preview", cwd=proj)
        changes = {k: v for k, v in again.get("changeSummary", {}).items() if k != "same"}
        print("== second pulumi preview: changes =", "none" if not changes else changes)


if __name__ == "__main__":
    main()

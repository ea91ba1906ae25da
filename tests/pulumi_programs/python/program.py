"""The Python program of tests/test_pulumi_programs.py: one Image for linux/amd64 + linux/arm64
(a RUN under QEMU) pushed to the ECR look-alike, a ManifestList promoting it, stack outputs for
`ref` and the per-platform digests. Run by the real `pulumi` CLI through the Automation API (an
inline program: the SDK serves the language runtime itself).

    python program.py preview|up|destroy   (REPOSITORY, CONTEXT, PLATFORMS in the environment)
"""

from __future__ import annotations

import json
import os
import sys

import pulumi
from pulumi import automation as auto

import pulumi_multiarch as multiarch


def program() -> None:
    config = pulumi.Config()
    repository = config.require("repository")
    image = multiarch.Image(
        "app",
        context=multiarch.BuildContextArgs(location=config.require("context")),
        platforms=config.require_object("platforms"),
        tags=[f"{repository}:1.0"],
        network=multiarch.NetworkMode.NONE,
        secrets={"token": config.require_secret("token")},
    )
    stable = multiarch.ManifestList(
        "stable", tags=[f"{repository}:stable"], sources=[image.ref])
    # Required outputs are typed non-optional.
    ref: pulumi.Output[str] = stable.ref
    digests: pulumi.Output[dict[str, str]] = image.manifests.apply(
        lambda ms: {m.platform: m.digest for m in ms})
    pulumi.export("ref", ref)
    pulumi.export("imageRef", image.ref)
    pulumi.export("digests", digests)
    pulumi.export("platforms", stable.platforms)


def main() -> None:
    command = sys.argv[1]
    stack = auto.create_or_select_stack(
        stack_name="dev", project_name="multiarch-py", program=program)
    stack.set_all_config({
        "repository": auto.ConfigValue(os.environ["REPOSITORY"]),
        "context": auto.ConfigValue(os.environ["CONTEXT"]),
        "platforms": auto.ConfigValue(os.environ["PLATFORMS"]),
        "token": auto.ConfigValue(os.environ["TOKEN"], secret=True),
    })
    result: dict[str, object]
    if command == "preview":
        p = stack.preview(on_output=lambda s: print(s, file=sys.stderr))
        result = {"changes": p.change_summary}
    elif command == "up":
        u = stack.up(on_output=lambda s: print(s, file=sys.stderr))
        result = {"changes": u.summary.resource_changes,
                  "outputs": {k: v.value for k, v in u.outputs.items()}}
    elif command == "destroy":
        d = stack.destroy(on_output=lambda s: print(s, file=sys.stderr))
        result = {"changes": d.summary.resource_changes}
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()

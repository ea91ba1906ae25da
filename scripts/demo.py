"""The main job, end to end on this machine: drive the built provider exactly as the Pulumi
engine does (Pulumi's own gRPC stubs) to publish one multi-arch tag on the ECR look-alike,
then show what the registry holds and run each architecture.

Run through `make demo`, which starts the test world and builds the provider first."""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from harness import ML, FakeEngine, Provider, raw_manifest, run, skopeo_copy, testenv, unique  # noqa: E402


def main():
    world = testenv()
    os.environ.update({k: v for k, v in world.items() if k.startswith("AWS_") or k == "SSL_CERT_FILE"})
    repo = f"{world['ECR_REGISTRY']}/{unique('demo-app')}"
    print(f"== publishing {repo}:10.10 (amd64) and {repo}:10.20 (arm64), as CI would")
    skopeo_copy(world["BASE_IMAGE_ECR_AMD64"], f"{repo}:10.10")
    skopeo_copy(world["BASE_IMAGE_ECR_ARM64"], f"{repo}:10.20")

    engine = FakeEngine()
    provider = Provider(engine)
    try:
        provider.handshake()
        provider.configure({})
        inputs = {"tags": [f"{repo}:10"], "sources": [f"{repo}:10.10", f"{repo}:10.20"]}
        checked, failures = provider.check(ML, inputs, name="app10")
        assert not failures, failures
        _, preview = provider.create(ML, checked, preview=True, name="app10")
        print("== preview (nothing written):", json.dumps({k: preview[k] for k in ["platforms", "digest"]}))
        id, state = provider.create(ML, checked, name="app10")
        print("== up:", json.dumps({k: state[k] for k in ["ref", "platforms", "manifests"]}, indent=2))
        index = raw_manifest(f"{repo}:10")
        print("== the registry holds", index["mediaType"])
        for m in index["manifests"]:
            print(f"   {m['platform']['os']}/{m['platform']['architecture']}  {m['digest']}")
        for arch in ["amd64", "arm64"]:
            out = run("docker", "run", "--rm", "--network", "none", "--platform", f"linux/{arch}",
                      f"{repo}:10", "uname", "-m").stdout.strip()
            print(f"== docker run --platform linux/{arch} {repo}:10 uname -m  ->  {out}")
        d = provider.diff(ML, id, state, inputs, name="app10")
        print("== second preview: changes =", "none" if d.changes == 1 else "some")
    finally:
        provider.close()
        engine.stop()


if __name__ == "__main__":
    main()

"""One image for Graviton and Intel, built by BuildKit and pushed to ECR under one tag.
./app holds the Dockerfile and the files it copies."""

import pulumi
import pulumi_multiarch as multiarch

config = pulumi.Config()
repository = config.get("repository") or "123456789012.dkr.ecr.us-east-1.amazonaws.com/app"

app = multiarch.Image(
    "app",
    context=multiarch.BuildContextArgs(location="./app"),
    # Omit platforms and BuildKit builds for its own platform only.
    platforms=["linux/amd64", "linux/arm64"],
    tags=[f"{repository}:1.2.3"],
    build_args={"VERSION": "1.2.3"},
    # ECR credentials come from the AWS credential chain: nothing to configure.
)

# A pinned reference for task definitions: repository@sha256:…
pulumi.export("ref", app.ref)
pulumi.export("digests", app.manifests.apply(lambda ms: [f"{m.platform} {m.digest}" for m in ms]))

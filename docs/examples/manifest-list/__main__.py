"""One tag for Graviton and Intel from two single-architecture images already in ECR (built
elsewhere, e.g. on an arm64 and an amd64 CI runner), like `docker buildx imagetools create`."""

import pulumi
import pulumi_multiarch as multiarch

config = pulumi.Config()
repository = config.get("repository") or "123456789012.dkr.ecr.us-east-1.amazonaws.com/app"

app10 = multiarch.ManifestList(
    "app10",
    tags=[f"{repository}:10"],
    sources=[
        f"{repository}:10.10",  # linux/amd64
        f"{repository}:10.20",  # linux/arm64
    ],
)

pulumi.export("ref", app10.ref)
pulumi.export("platforms", app10.platforms)

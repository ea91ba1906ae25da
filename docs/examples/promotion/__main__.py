"""Promotion dev → prod: the index tested in the dev repository is published, unchanged, in the
prod repository. One source that is an index: the same children, the same index digest."""

import pulumi
import pulumi_multiarch as multiarch

config = pulumi.Config()
dev = config.get("devRepository") or "123456789012.dkr.ecr.us-east-1.amazonaws.com/app-dev"
prod = config.get("prodRepository") or "123456789012.dkr.ecr.us-east-1.amazonaws.com/app-prod"
version = config.get("version") or "1.2.3"

release = multiarch.ManifestList(
    "release",
    sources=[f"{dev}:{version}"],
    tags=[f"{prod}:{version}"],
    # Prod tags stay when this stack is destroyed.
    keep_remotely=True,
)

pulumi.export("ref", release.ref)
pulumi.export("digest", release.digest)

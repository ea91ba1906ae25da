"""Native build nodes: each platform builds on a machine of its own CPU (no QEMU), in parallel;
the provider assembles one index. Here amd64 builds on the local Docker Engine and arm64 on
a Graviton host running buildkitd with mutual TLS."""

import pulumi
import pulumi_multiarch as multiarch

config = pulumi.Config()
repository = config.get("repository") or "123456789012.dkr.ecr.us-east-1.amazonaws.com/app"
arm64_builder = config.get("arm64Builder") or "tcp://graviton-builder.internal:1234"

nodes = multiarch.Provider(
    "nodes",
    builders=[
        multiarch.BuilderNodeConfigArgs(endpoint="docker", platforms=["linux/amd64"]),
        multiarch.BuilderNodeConfigArgs(
            endpoint=arm64_builder,
            platforms=["linux/arm64"],
            tls=multiarch.BuilderTlsConfigArgs(
                ca_cert=config.require("builderCaCert"),
                cert=config.require("builderCert"),
                key=config.require_secret("builderKey"),
            ),
        ),
    ],
)

app = multiarch.Image(
    "app",
    context=multiarch.BuildContextArgs(location="./app"),
    platforms=["linux/amd64", "linux/arm64"],
    tags=[f"{repository}:1.2.3"],
    opts=pulumi.ResourceOptions(provider=nodes),
)

pulumi.export("ref", app.ref)

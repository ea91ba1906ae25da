// Native build nodes: each platform builds on a machine of its own CPU (no QEMU), in parallel;
// the provider assembles one index. Here amd64 builds on the local Docker Engine and arm64 on
// a Graviton host running buildkitd with mutual TLS.
import * as pulumi from "@pulumi/pulumi";
import * as multiarch from "@multiarch/pulumi";

const config = new pulumi.Config();
const repository = config.get("repository") ?? "123456789012.dkr.ecr.us-east-1.amazonaws.com/app";
const arm64Builder = config.get("arm64Builder") ?? "tcp://graviton-builder.internal:1234";

const nodes = new multiarch.Provider("nodes", {
    builders: [
        { endpoint: "docker", platforms: ["linux/amd64"] },
        {
            endpoint: arm64Builder,
            platforms: ["linux/arm64"],
            tls: {
                caCert: config.require("builderCaCert"),
                cert: config.require("builderCert"),
                key: config.requireSecret("builderKey"),
            },
        },
    ],
});

const app = new multiarch.Image("app", {
    context: { location: "./app" },
    platforms: ["linux/amd64", "linux/arm64"],
    tags: [`${repository}:1.2.3`],
}, { provider: nodes });

export const ref = app.ref;

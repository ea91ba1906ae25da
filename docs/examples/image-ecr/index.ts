// One image for Graviton and Intel, built by BuildKit and pushed to ECR under one tag.
// ./app holds the Dockerfile and the files it copies.
import * as pulumi from "@pulumi/pulumi";
import * as multiarch from "@multiarch/pulumi";

const config = new pulumi.Config();
const repository = config.get("repository") ?? "123456789012.dkr.ecr.us-east-1.amazonaws.com/app";

const app = new multiarch.Image("app", {
    context: { location: "./app" },
    // Omit platforms and BuildKit builds for its own platform only.
    platforms: ["linux/amd64", "linux/arm64"],
    tags: [`${repository}:1.2.3`],
    buildArgs: { VERSION: "1.2.3" },
    // ECR credentials come from the AWS credential chain: nothing to configure.
});

// A pinned reference for task definitions: repository@sha256:…
export const ref = app.ref;
export const digests = app.manifests.apply(ms => ms.map(m => `${m.platform} ${m.digest}`));

// One tag for Graviton and Intel from two single-architecture images already in ECR (built
// elsewhere, e.g. on an arm64 and an amd64 CI runner), like `docker buildx imagetools create`.
import * as pulumi from "@pulumi/pulumi";
import * as multiarch from "@multiarch/pulumi";

const config = new pulumi.Config();
const repository = config.get("repository") ?? "123456789012.dkr.ecr.us-east-1.amazonaws.com/app";

const app10 = new multiarch.ManifestList("app10", {
    tags: [`${repository}:10`],
    sources: [
        `${repository}:10.10`, // linux/amd64
        `${repository}:10.20`, // linux/arm64
    ],
});

export const ref = app10.ref;
export const platforms = app10.platforms;

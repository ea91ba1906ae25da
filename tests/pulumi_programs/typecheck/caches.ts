// Type-checked only (tests/test_pulumi_sdk.py): typed cache entries next to buildx strings.
import * as pulumi from "@pulumi/pulumi";
import * as multiarch from "@multiarch/pulumi";

const config = new pulumi.Config();
const repository = config.require("repository");

export const image = new multiarch.Image("cached", {
    context: { location: "." },
    platforms: ["linux/amd64", "linux/arm64"],
    tags: [`${repository}:1.0`],
    cacheFrom: [
        `${repository}:cache`,
        { registry: { ref: `${repository}:cache` } },
        { gha: { scope: "app" } },
    ],
    cacheTo: [
        { registry: { ref: `${repository}:cache`, mode: "max", imageManifest: true } },
        { inline: {} },
        { s3: { bucket: "ci-cache", region: "us-east-1", secretAccessKey: config.requireSecret("s3Key") } },
        { raw: "type=gha,scope=app,mode=max" },
        "type=registry,ref=r.example/app:cache2",
    ],
});
export const cacheTo = image.cacheTo;

// A registry build cache in ECR: every build reads the layers the last one wrote, so CI
// runners without a local cache rebuild only what changed. ECR takes the cache as an OCI image
// manifest; the provider sets that (image-manifest, oci-mediatypes) for ECR hosts.
import * as pulumi from "@pulumi/pulumi";
import * as multiarch from "@multiarch/pulumi";

const config = new pulumi.Config();
const repository = config.get("repository") ?? "123456789012.dkr.ecr.us-east-1.amazonaws.com/app";
const cache = `${repository}:buildcache`;

const app = new multiarch.Image("app", {
    context: { location: "./app" },
    platforms: ["linux/amd64", "linux/arm64"],
    tags: [`${repository}:1.2.3`],
    cacheFrom: [{ registry: { ref: cache } }],
    // mode max: the layers of every stage, not only the final one.
    cacheTo: [{ registry: { ref: cache, mode: "max" } }],
});

export const ref = app.ref;

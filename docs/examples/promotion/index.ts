// Promotion dev → prod: the index tested in the dev repository is published, unchanged, in the
// prod repository. One source that is an index: the same children, the same index digest.
import * as pulumi from "@pulumi/pulumi";
import * as multiarch from "@multiarch/pulumi";

const config = new pulumi.Config();
const dev = config.get("devRepository") ?? "123456789012.dkr.ecr.us-east-1.amazonaws.com/app-dev";
const prod = config.get("prodRepository") ?? "123456789012.dkr.ecr.us-east-1.amazonaws.com/app-prod";
const version = config.get("version") ?? "1.2.3";

const release = new multiarch.ManifestList("release", {
    sources: [`${dev}:${version}`],
    tags: [`${prod}:${version}`],
    // Prod tags stay when this stack is destroyed.
    keepRemotely: true,
});

export const ref = release.ref;
export const digest = release.digest;

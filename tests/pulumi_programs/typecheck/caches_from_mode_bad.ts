// Must NOT type-check (tests/test_pulumi_sdk.py): `mode` is an export option, so a cacheFrom
// entry has no such field.
import * as multiarch from "@multiarch/pulumi";

export const image = new multiarch.Image("bad", {
    tags: ["r.example/app:1"],
    cacheFrom: [{ registry: { ref: "r.example/app:cache", mode: "max" } }],
});

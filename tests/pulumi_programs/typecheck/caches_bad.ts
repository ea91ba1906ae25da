// Must NOT type-check (tests/test_pulumi_sdk.py): a mode that is neither min nor max.
import * as multiarch from "@multiarch/pulumi";

export const image = new multiarch.Image("bad", {
    tags: ["r.example/app:1"],
    cacheTo: [{ registry: { ref: "r.example/app:cache", mode: "maximum" } }],
});

// The TypeScript program of tests/test_pulumi_programs.py: one Image for linux/amd64 +
// linux/arm64 (a RUN under QEMU) pushed to the ECR look-alike, a ManifestList promoting it, stack
// outputs for `ref` and the per-platform digests. Run by the real `pulumi` CLI through the
// Automation API (an inline program: the SDK serves the language runtime itself).
//
//   node program.js preview|up|destroy   (REPOSITORY, CONTEXT, PLATFORMS in the environment)
import * as pulumi from "@pulumi/pulumi";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import * as multiarch from "@multiarch/pulumi";

function program() {
    const config = new pulumi.Config();
    const repository = config.require("repository");
    const image = new multiarch.Image("app", {
        context: { location: config.require("context") },
        platforms: config.requireObject<string[]>("platforms"),
        tags: [`${repository}:1.0`],
        network: "none",
        secrets: { token: config.requireSecret("token") },
    });
    const stable = new multiarch.ManifestList("stable", {
        tags: [`${repository}:stable`],
        sources: [image.ref],
    });
    // Required outputs are typed non-optional: no `!` or `?? ""` needed here.
    const digests: pulumi.Output<Record<string, string>> = image.manifests.apply((ms) =>
        Object.fromEntries(ms.map((m) => [m.platform, m.digest])),
    );
    const ref: pulumi.Output<string> = stable.ref;
    return Promise.resolve({ ref, imageRef: image.ref, digests, platforms: stable.platforms });
}

async function main(): Promise<void> {
    const command = process.argv[2];
    const stack = await LocalWorkspace.createOrSelectStack({
        stackName: "dev",
        projectName: "multiarch-ts",
        program,
    });
    await stack.setAllConfig({
        repository: { value: process.env.REPOSITORY ?? "" },
        context: { value: process.env.CONTEXT ?? "" },
        platforms: { value: process.env.PLATFORMS ?? "[]" },
        token: { value: process.env.TOKEN ?? "", secret: true },
    });
    const onOutput = (s: string) => process.stderr.write(s);
    let result: unknown;
    if (command === "preview") {
        const r = await stack.preview({ onOutput });
        result = { changes: r.changeSummary };
    } else if (command === "up") {
        const r = await stack.up({ onOutput });
        const outputs = Object.fromEntries(Object.entries(r.outputs).map(([k, v]) => [k, v.value]));
        result = { changes: r.summary.resourceChanges, outputs };
    } else if (command === "destroy") {
        const r = await stack.destroy({ onOutput });
        result = { changes: r.summary.resourceChanges };
    } else {
        throw new Error(`unknown command ${command}`);
    }
    process.stdout.write(JSON.stringify(result) + "\n");
}

main().catch((e) => {
    process.stderr.write(`${e}\n`);
    process.exit(1);
});

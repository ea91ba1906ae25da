// The Go program of tests/test_pulumi_programs.py: one Image for linux/amd64 + linux/arm64 (a
// RUN under QEMU) pushed to the ECR look-alike, a ManifestList promoting it, stack outputs for
// `ref` and the per-platform digests. Run by the real `pulumi` CLI through the Automation API
// (an inline program: the SDK serves the language runtime itself).
//
//	go run . preview|up|destroy   (REPOSITORY, CONTEXT, PLATFORMS in the environment)
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/multiarch-dev/multiarch/sdk/go/multiarch"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

func program(ctx *pulumi.Context) error {
	cfg := config.New(ctx, "")
	repository := cfg.Require("repository")
	var platforms []string
	cfg.RequireObject("platforms", &platforms)
	image, err := multiarch.NewImage(ctx, "app", &multiarch.ImageArgs{
		Context:   &multiarch.BuildContextArgs{Location: pulumi.String(cfg.Require("context"))},
		Platforms: pulumi.ToStringArray(platforms),
		Tags:      pulumi.StringArray{pulumi.String(repository + ":1.0")},
		Network:   multiarch.NetworkModeNone,
		Secrets:   pulumi.StringMap{"token": cfg.RequireSecret("token")},
	})
	if err != nil {
		return err
	}
	stable, err := multiarch.NewManifestList(ctx, "stable", &multiarch.ManifestListArgs{
		Tags:    pulumi.StringArray{pulumi.String(repository + ":stable")},
		Sources: pulumi.StringArray{image.Ref},
	})
	if err != nil {
		return err
	}
	// Required outputs are typed non-optional: StringOutput, not StringPtrOutput.
	var ref pulumi.StringOutput = stable.Ref
	digests := image.Manifests.ApplyT(func(ms []multiarch.PlatformManifest) map[string]string {
		out := map[string]string{}
		for _, m := range ms {
			out[m.Platform] = m.Digest
		}
		return out
	}).(pulumi.StringMapOutput)
	ctx.Export("ref", ref)
	ctx.Export("imageRef", image.Ref)
	ctx.Export("digests", digests)
	ctx.Export("platforms", stable.Platforms)
	return nil
}

func run(command string) (any, error) {
	ctx := context.Background()
	stack, err := auto.UpsertStackInlineSource(ctx, "dev", "multiarch-go", program)
	if err != nil {
		return nil, err
	}
	err = stack.SetAllConfig(ctx, auto.ConfigMap{
		"repository": {Value: os.Getenv("REPOSITORY")},
		"context":    {Value: os.Getenv("CONTEXT")},
		"platforms":  {Value: os.Getenv("PLATFORMS")},
		"token":      {Value: os.Getenv("TOKEN"), Secret: true},
	})
	if err != nil {
		return nil, err
	}
	switch command {
	case "preview":
		r, err := stack.Preview(ctx, optpreview.ProgressStreams(os.Stderr))
		return map[string]any{"changes": r.ChangeSummary}, err
	case "up":
		r, err := stack.Up(ctx, optup.ProgressStreams(os.Stderr))
		if err != nil {
			return nil, err
		}
		outputs := map[string]any{}
		for k, v := range r.Outputs {
			outputs[k] = v.Value
		}
		return map[string]any{"changes": r.Summary.ResourceChanges, "outputs": outputs}, nil
	case "destroy":
		r, err := stack.Destroy(ctx, optdestroy.ProgressStreams(os.Stderr))
		return map[string]any{"changes": r.Summary.ResourceChanges}, err
	}
	return nil, fmt.Errorf("unknown command %q", command)
}

func main() {
	result, err := run(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(result)
}

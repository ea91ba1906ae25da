// One image for Graviton and Intel, built by BuildKit and pushed to ECR under one tag.
// ./app holds the Dockerfile and the files it copies.
package main

import (
	"github.com/multiarch-dev/multiarch/sdk/go/multiarch"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

func main() {
	pulumi.Run(func(ctx *pulumi.Context) error {
		repository := config.Get(ctx, "repository")
		if repository == "" {
			repository = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app"
		}
		app, err := multiarch.NewImage(ctx, "app", &multiarch.ImageArgs{
			Context: &multiarch.BuildContextArgs{Location: pulumi.String("./app")},
			// Omit Platforms and BuildKit builds for its own platform only.
			Platforms: pulumi.StringArray{pulumi.String("linux/amd64"), pulumi.String("linux/arm64")},
			Tags:      pulumi.StringArray{pulumi.String(repository + ":1.2.3")},
			BuildArgs: pulumi.StringMap{"VERSION": pulumi.String("1.2.3")},
			// ECR credentials come from the AWS credential chain: nothing to configure.
		})
		if err != nil {
			return err
		}
		// A pinned reference for task definitions: repository@sha256:…
		ctx.Export("ref", app.Ref)
		ctx.Export("digests", app.Manifests.ApplyT(func(ms []multiarch.PlatformManifest) []string {
			out := make([]string, 0, len(ms))
			for _, m := range ms {
				out = append(out, m.Platform+" "+m.Digest)
			}
			return out
		}).(pulumi.StringArrayOutput))
		return nil
	})
}

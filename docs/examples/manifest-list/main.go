// One tag for Graviton and Intel from two single-architecture images already in ECR (built
// elsewhere, e.g. on an arm64 and an amd64 CI runner), like `docker buildx imagetools create`.
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
		app10, err := multiarch.NewManifestList(ctx, "app10", &multiarch.ManifestListArgs{
			Tags: pulumi.StringArray{pulumi.String(repository + ":10")},
			Sources: pulumi.StringArray{
				pulumi.String(repository + ":10.10"), // linux/amd64
				pulumi.String(repository + ":10.20"), // linux/arm64
			},
		})
		if err != nil {
			return err
		}
		ctx.Export("ref", app10.Ref)
		ctx.Export("platforms", app10.Platforms)
		return nil
	})
}

// A registry build cache in ECR: every build reads the layers the last one wrote, so CI
// runners without a local cache rebuild only what changed. ECR takes the cache as an OCI image
// manifest; the provider sets that (image-manifest, oci-mediatypes) for ECR hosts.
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
		cache := pulumi.String(repository + ":buildcache")
		app, err := multiarch.NewImage(ctx, "app", &multiarch.ImageArgs{
			Context:   &multiarch.BuildContextArgs{Location: pulumi.String("./app")},
			Platforms: pulumi.StringArray{pulumi.String("linux/amd64"), pulumi.String("linux/arm64")},
			Tags:      pulumi.StringArray{pulumi.String(repository + ":1.2.3")},
			CacheFrom: pulumi.Array{
				multiarch.CacheFromArgs{Registry: &multiarch.CacheFromRegistryArgs{Ref: cache}},
			},
			// mode max: the layers of every stage, not only the final one.
			CacheTo: pulumi.Array{
				multiarch.CacheToArgs{Registry: &multiarch.CacheToRegistryArgs{Ref: cache, Mode: multiarch.CacheModeMax}},
			},
		})
		if err != nil {
			return err
		}
		ctx.Export("ref", app.Ref)
		return nil
	})
}

// Promotion dev → prod: the index tested in the dev repository is published, unchanged, in the
// prod repository. One source that is an index: the same children, the same index digest.
package main

import (
	"github.com/multiarch-dev/multiarch/sdk/go/multiarch"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

func main() {
	pulumi.Run(func(ctx *pulumi.Context) error {
		dev := orDefault(config.Get(ctx, "devRepository"), "123456789012.dkr.ecr.us-east-1.amazonaws.com/app-dev")
		prod := orDefault(config.Get(ctx, "prodRepository"), "123456789012.dkr.ecr.us-east-1.amazonaws.com/app-prod")
		version := orDefault(config.Get(ctx, "version"), "1.2.3")
		release, err := multiarch.NewManifestList(ctx, "release", &multiarch.ManifestListArgs{
			Sources: pulumi.StringArray{pulumi.String(dev + ":" + version)},
			Tags:    pulumi.StringArray{pulumi.String(prod + ":" + version)},
			// Prod tags stay when this stack is destroyed.
			KeepRemotely: pulumi.Bool(true),
		})
		if err != nil {
			return err
		}
		ctx.Export("ref", release.Ref)
		ctx.Export("digest", release.Digest)
		return nil
	})
}

// Native build nodes: each platform builds on a machine of its own CPU (no QEMU), in parallel;
// the provider assembles one index. Here amd64 builds on the local Docker Engine and arm64 on
// a Graviton host running buildkitd with mutual TLS.
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
		arm64Builder := config.Get(ctx, "arm64Builder")
		if arm64Builder == "" {
			arm64Builder = "tcp://graviton-builder.internal:1234"
		}
		nodes, err := multiarch.NewProvider(ctx, "nodes", &multiarch.ProviderArgs{
			Builders: multiarch.BuilderNodeConfigArray{
				multiarch.BuilderNodeConfigArgs{
					Endpoint:  pulumi.String("docker"),
					Platforms: pulumi.StringArray{pulumi.String("linux/amd64")},
				},
				multiarch.BuilderNodeConfigArgs{
					Endpoint:  pulumi.String(arm64Builder),
					Platforms: pulumi.StringArray{pulumi.String("linux/arm64")},
					Tls: &multiarch.BuilderTlsConfigArgs{
						CaCert: pulumi.String(config.Require(ctx, "builderCaCert")),
						Cert:   pulumi.String(config.Require(ctx, "builderCert")),
						Key:    config.RequireSecret(ctx, "builderKey"),
					},
				},
			},
		})
		if err != nil {
			return err
		}
		app, err := multiarch.NewImage(ctx, "app", &multiarch.ImageArgs{
			Context:   &multiarch.BuildContextArgs{Location: pulumi.String("./app")},
			Platforms: pulumi.StringArray{pulumi.String("linux/amd64"), pulumi.String("linux/arm64")},
			Tags:      pulumi.StringArray{pulumi.String(repository + ":1.2.3")},
		}, pulumi.Provider(nodes))
		if err != nil {
			return err
		}
		ctx.Export("ref", app.Ref)
		return nil
	})
}

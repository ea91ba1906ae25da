"""A registry build cache in ECR: every build reads the layers the last one wrote, so CI
runners without a local cache rebuild only what changed. ECR takes the cache as an OCI image
manifest; the provider sets that (image-manifest, oci-mediatypes) for ECR hosts."""

import pulumi
import pulumi_multiarch as multiarch

config = pulumi.Config()
repository = config.get("repository") or "123456789012.dkr.ecr.us-east-1.amazonaws.com/app"
cache = f"{repository}:buildcache"

app = multiarch.Image(
    "app",
    context=multiarch.BuildContextArgs(location="./app"),
    platforms=["linux/amd64", "linux/arm64"],
    tags=[f"{repository}:1.2.3"],
    cache_from=[multiarch.CacheFromArgs(registry=multiarch.CacheFromRegistryArgs(ref=cache))],
    # mode max: the layers of every stage, not only the final one.
    cache_to=[multiarch.CacheToArgs(
        registry=multiarch.CacheToRegistryArgs(ref=cache, mode=multiarch.CacheMode.MAX))],
)

pulumi.export("ref", app.ref)

"""Type-checked only (tests/test_pulumi_sdk.py, mypy --strict): typed cache entries next to
buildx strings."""

import pulumi
import pulumi_multiarch as multiarch

config = pulumi.Config()
repository = config.require("repository")

image = multiarch.Image(
    "cached",
    context=multiarch.BuildContextArgs(location="."),
    platforms=["linux/amd64", "linux/arm64"],
    tags=[f"{repository}:1.0"],
    cache_from=[
        f"{repository}:cache",
        multiarch.CacheFromArgs(registry=multiarch.CacheFromRegistryArgs(ref=f"{repository}:cache")),
        multiarch.CacheFromArgs(gha=multiarch.CacheFromGhaArgs(scope="app")),
    ],
    cache_to=[
        multiarch.CacheToArgs(registry=multiarch.CacheToRegistryArgs(
            ref=f"{repository}:cache", mode=multiarch.CacheMode.MAX, image_manifest=True)),
        # The generator leaves the empty CacheInlineArgs() untyped for mypy --strict: a dict.
        {"inline": {}},
        multiarch.CacheToArgs(s3=multiarch.CacheToS3Args(
            bucket="ci-cache", region="us-east-1",
            secret_access_key=config.require_secret("s3Key"))),
        {"raw": "type=gha,scope=app,mode=max"},
        "type=registry,ref=r.example/app:cache2",
    ],
)
pulumi.export("cacheTo", image.cache_to)

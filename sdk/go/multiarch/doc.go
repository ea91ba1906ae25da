// Multi-architecture container images: BuildKit builds and manifest lists pushed to ECR and other registries.
package multiarch

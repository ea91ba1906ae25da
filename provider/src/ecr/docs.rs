//! The "AWS credentials" and "IAM permissions" sections of the generated registry docs
//! (Terraform and Pulumi pages): every way an identity reaches ECR, with an example in both
//! syntaxes and the policy each needs. Kept beside the code it describes.

/// The sections, under headings of level `h` (e.g. `##`).
pub fn section(h: &str) -> String {
    credentials(h) + &permissions(h)
}

/// The "AWS credentials" section, under a heading of level `h`.
fn credentials(h: &str) -> String {
    format!(
        "\
{h} AWS credentials

Private ECR hosts (`<account>.dkr.ecr.<region>.amazonaws.com`, also `.amazonaws.com.cn` and
`-fips`) and ECR Public (`public.ecr.aws`) need no `registries` entry: at operation time the
provider asks `ecr:GetAuthorizationToken` (ECR Public: `ecr-public:GetAuthorizationToken` in
us-east-1) for a registry password, with the AWS identity described below. One token per
registry and one set of credentials per identity per process, kept in memory until 5 minutes
before they expire and fetched by one caller at a time; tokens, keys, session tokens and
`externalId` never reach the state, outputs, logs or error messages. The registry's region
comes from its host name (`ecr.region`, then `aws.region`, for hosts that do not carry it).
Pulls from ECR Public are anonymous when no AWS credentials exist anywhere.

The identity is the AWS SDK's default credential chain, as the `aws` CLI has it: environment
keys, web identity (`AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE`, as GitHub Actions and
GitLab OIDC set them), shared profiles (`AWS_PROFILE` or `aws.profile`, with SSO,
`credential_process`, `role_arn` + `source_profile`), container and instance roles. The SDK's
endpoint variables are honoured (`AWS_ENDPOINT_URL_ECR`, `AWS_ENDPOINT_URL_STS`,
`AWS_ENDPOINT_URL_ECR_PUBLIC`). `aws.assumeRole` then assumes a role with those credentials
(STS `AssumeRole`): `roleArn`, `sessionName` (default `multiarch-<time>`), `externalId`
(secret), `durationSeconds` (900 to 43200). A `registries` entry's own `aws` block replaces
the provider's for that host, as a whole (`aws: {{}}` there means the plain chain). Every
STS and ECR call has the same deadlines (5 s to connect, 10 s per attempt, 30 s in all,
retries included); a failure names the host, the STS call and the role, e.g. `AWS
credentials for <host>: STS AssumeRole for role arn:aws:iam::210987654321:role/ecr-push: …`.

**CI with OIDC, nothing configured.** The job's OIDC step sets `AWS_ROLE_ARN` and
`AWS_WEB_IDENTITY_TOKEN_FILE` (GitHub Actions: `aws-actions/configure-aws-credentials` with
`role-to-assume`); the provider calls STS `AssumeRoleWithWebIdentity` for that role.

**A deployer role** (after OIDC or any other source):

```yaml
# Pulumi (stack configuration)
config:
  multiarch:aws:
    assumeRole:
      roleArn: arn:aws:iam::123456789012:role/image-deployer
      sessionName: ci-deploy
      externalId:
        secure: AAABA…   # pulumi config set --path --secret multiarch:aws.assumeRole.externalId …
```

```terraform
provider \"multiarch\" {{
  aws = {{
    assume_role = {{
      role_arn     = \"arn:aws:iam::123456789012:role/image-deployer\"
      session_name = \"ci-deploy\"
      external_id  = var.deployer_external_id
    }}
  }}
}}
```

**Another account's registry** (a shared artifacts account; dev stacks push there, prod stacks
promote from it): each host gets its own role, the others keep the provider's identity.

```yaml
# Pulumi
config:
  multiarch:registries:
    - address: 210987654321.dkr.ecr.us-east-1.amazonaws.com
      aws:
        assumeRole:
          roleArn: arn:aws:iam::210987654321:role/artifacts-ecr
```

```terraform
provider \"multiarch\" {{
  registries = [{{
    address = \"210987654321.dkr.ecr.us-east-1.amazonaws.com\"
    aws     = {{ assume_role = {{ role_arn = \"arn:aws:iam::210987654321:role/artifacts-ecr\" }} }}
  }}]
}}
```

A `ManifestList` in account A whose `sources` are in account B then reads B with B's role and
writes A with the provider's identity, copying the children across as for any two registries.

**A profile** (SSO or `credential_process`, as on a workstation): `AWS_PROFILE=dev` or
`aws: {{profile: dev}}` (Terraform `aws = {{ profile = \"dev\" }}`).

**ECR Public**: tags under `public.ecr.aws/<alias>/…` need only an identity allowed to push
there; its token always comes from us-east-1.

"
    )
}

/// The "IAM permissions" section, under a heading of level `h`.
fn permissions(h: &str) -> String {
    format!(
        "\
{h} IAM permissions

| action | needed for |
|---|---|
| `ecr:GetAuthorizationToken` | every private ECR registry (resource `*`) |
| `ecr:BatchGetImage`, `ecr:GetDownloadUrlForLayer`, `ecr:BatchCheckLayerAvailability` | reading tags and manifests (preview, refresh, import, `sources`, base images and caches) |
| `ecr:InitiateLayerUpload`, `ecr:UploadLayerPart`, `ecr:CompleteLayerUpload`, `ecr:PutImage` | pushing layers, manifests and indexes |
| `ecr:BatchDeleteImage` | removing tags on delete and when `tags` shrink (not needed with `keepRemotely`) |
| `sts:AssumeRole` on the role | `aws.assumeRole` (and the role's trust policy must name the caller) |
| `sts:AssumeRoleWithWebIdentity` | OIDC (the role's trust policy names the OIDC provider) |
| `ecr-public:GetAuthorizationToken`, `sts:GetServiceBearerToken` | pushing to ECR Public (plus `ecr-public:InitiateLayerUpload`, `UploadLayerPart`, `CompleteLayerUpload`, `PutImage`, `BatchCheckLayerAvailability` on the repository) |

A policy for one repository:

```json
{{
  \"Version\": \"2012-10-17\",
  \"Statement\": [
    {{ \"Effect\": \"Allow\", \"Action\": \"ecr:GetAuthorizationToken\", \"Resource\": \"*\" }},
    {{
      \"Effect\": \"Allow\",
      \"Action\": [
        \"ecr:BatchGetImage\",
        \"ecr:GetDownloadUrlForLayer\",
        \"ecr:BatchCheckLayerAvailability\",
        \"ecr:InitiateLayerUpload\",
        \"ecr:UploadLayerPart\",
        \"ecr:CompleteLayerUpload\",
        \"ecr:PutImage\",
        \"ecr:BatchDeleteImage\"
      ],
      \"Resource\": \"arn:aws:ecr:us-east-1:123456789012:repository/app\"
    }}
  ]
}}
```

Sources or base images in other repositories need the read actions there too. ECR
repositories with `IMMUTABLE` tags work: a tag that already holds the same digest is not
pushed again.

**Push and promote across accounts.** The role in the artifacts account (B, `210987654321`)
that dev stacks push with and prod stacks read with; its trust policy names the CI roles of
account A (`123456789012`):

```json
{{
  \"Version\": \"2012-10-17\",
  \"Statement\": [
    {{
      \"Effect\": \"Allow\",
      \"Principal\": {{ \"AWS\": \"arn:aws:iam::123456789012:role/image-deployer\" }},
      \"Action\": \"sts:AssumeRole\",
      \"Condition\": {{ \"StringEquals\": {{ \"sts:ExternalId\": \"<externalId>\" }} }}
    }}
  ]
}}
```

and its permissions policy:

```json
{{
  \"Version\": \"2012-10-17\",
  \"Statement\": [
    {{ \"Effect\": \"Allow\", \"Action\": \"ecr:GetAuthorizationToken\", \"Resource\": \"*\" }},
    {{
      \"Effect\": \"Allow\",
      \"Action\": [
        \"ecr:BatchGetImage\", \"ecr:GetDownloadUrlForLayer\", \"ecr:BatchCheckLayerAvailability\",
        \"ecr:InitiateLayerUpload\", \"ecr:UploadLayerPart\", \"ecr:CompleteLayerUpload\",
        \"ecr:PutImage\"
      ],
      \"Resource\": \"arn:aws:ecr:us-east-1:210987654321:repository/*\"
    }}
  ]
}}
```

A prod stack that only promotes from B needs the three read actions there (drop the upload
actions and `ecr:PutImage` from B's role for it) and the push actions on its own repositories
in A; the caller in A needs `sts:AssumeRole` on B's role.
"
    )
}

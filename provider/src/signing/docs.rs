//! The "Signing" section of the registry docs (kept beside the signing code).

/// The section, under a heading of level `h`.
pub fn section(h: &str) -> String {
    format!(
        "
{h} Signing

With a `signing` block in the provider configuration, every Image and ManifestList push is
signed in [cosign](https://github.com/sigstore/cosign)'s format: the index **and each platform
manifest** (attestation manifests are not signed: they are not images, and the signed index
lists them). The signatures are stored where `cosign verify` looks for them, the
`sha256-<hex>.sig` tag of the signed manifest's repository, in every repository a resource
tags. Signatures already there (another key's, a pipeline's) are kept; a manifest this key
already signed is not signed again. Nothing is written during preview; the `signatures`
output records the key's fingerprint (`sha256:` of its public key, DER) and the digests
signed, never the signatures. `sign: false` opts a resource out. Where the registry serves
the OCI 1.1 referrers API, each signature is also pushed as an artifact (`artifactType`
`application/vnd.dev.cosign.artifact.sig.v1+json`) whose `subject` is the signed manifest,
which `cosign verify --experimental-oci11` finds; elsewhere the tag scheme alone. No transparency log
(Rekor) or certificate (Fulcio) is involved: verify with the key and `--insecure-ignore-tlog`.

Make a key (ECDSA P-256, PKCS#8 PEM) and give the private key to the provider as a secret:

```sh
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out signing-key.pem
openssl pkey -in signing-key.pem -pubout -out signing-pub.pem
pulumi config set --secret --path 'multiarch:signing.key' < signing-key.pem
```

In Terraform: `provider \"multiarch\" {{ signing = {{ key = file(\"signing-key.pem\") }} }}`
(`key` is sensitive). Verify what was pushed, the tag or any platform digest:

```sh
cosign verify --key signing-pub.pem --insecure-ignore-tlog=true <registry>/<repo>:<tag>
cosign verify --key signing-pub.pem --insecure-ignore-tlog=true <registry>/<repo>@<platform digest>
```

Or keep the key in AWS KMS (spec `ECC_NIST_P256`, usage `SIGN_VERIFY`) and name it in
`signing.kmsKeyId` (Terraform: `kms_key_id`), e.g. `alias/image-signing`, instead of `key`. The provider signs with `kms:Sign` (`ECDSA_SHA_256`) and reads the
public key with `kms:GetPublicKey`, with the AWS identity ECR tokens use (the provider's `aws`
block, else the SDK's default chain; `AWS_ENDPOINT_URL_KMS` is honoured); the private key never
leaves KMS. The identity needs:

```json
{{
  \"Version\": \"2012-10-17\",
  \"Statement\": [{{
    \"Effect\": \"Allow\",
    \"Action\": [\"kms:Sign\", \"kms:GetPublicKey\"],
    \"Resource\": \"arn:aws:kms:<region>:<account>:key/<key id>\"
  }}]
}}
```

The public key for `cosign verify` is `aws kms get-public-key --key-id <id> --query PublicKey
--output text | base64 -d | openssl pkey -pubin -inform DER -out signing-pub.pem`.

Deleting a resource removes its key's signatures of the digests it signed where no remaining
tag of the repository uses the digest (directly or as a platform of a tagged index); other
keys' signatures, and the `.sig` tags that hold them, stay.

A ManifestList can refuse unsigned sources: `requireSignedBy` lists PEM public keys, and
every source, index and platform manifest, must carry a valid signature by one of them. It is
checked at preview (read-only) and again before anything is written; a failure names the
source and the digest. A promotion (one source index whose digest is kept) copies the
source's signatures of the index and its platform manifests into each target repository, so
`cosign verify` with the key that signed the source passes on the promoted tag.

"
    )
}

//! AWS KMS signing with the identity ECR tokens use (the provider's `aws` block, else the
//! SDK's default chain): `kms:GetPublicKey` once, `kms:Sign` per signature. The private key
//! never leaves KMS.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};

use super::{chain::timeouts, env, with_deadline, EcrTokens};

impl EcrTokens {
    /// A KMS client in the identity's region (the `aws` block's, then `AWS_REGION`, then
    /// us-east-1); `AWS_ENDPOINT_URL_KMS` is honoured.
    async fn kms(&self) -> Result<aws_sdk_kms::Client, String> {
        let region = self
            .aws
            .as_ref()
            .and_then(|a| a.region.clone())
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_owned());
        let (base, creds) = self
            .identities
            .resolve(self.aws.as_ref(), &region)
            .await
            .map_err(|e| e.to_string())?;
        let conf = aws_sdk_kms::config::Builder::from(&base.sdk)
            .region(aws_config::Region::new(region))
            .credentials_provider(creds)
            .timeout_config(timeouts());
        Ok(aws_sdk_kms::Client::from_conf(conf.build()))
    }

    /// The DER SubjectPublicKeyInfo of KMS key `key_id`.
    pub async fn kms_public_key(&self, key_id: &str) -> Result<Vec<u8>, String> {
        let client = self.kms().await?;
        with_deadline(async {
            let resp = client
                .get_public_key()
                .key_id(key_id)
                .send()
                .await
                .map_err(|e| aws_sdk_kms::error::DisplayErrorContext(e).to_string())?;
            resp.public_key()
                .map(|b| b.as_ref().to_vec())
                .ok_or_else(|| "the answer holds no public key".to_owned())
        })
        .await
    }

    /// An ECDSA_SHA_256 signature (ASN.1 DER) of `message` (at most 4096 bytes: KMS hashes
    /// it, as cosign's verification expects) by KMS key `key_id`.
    pub async fn kms_sign(&self, key_id: &str, message: &[u8]) -> Result<Vec<u8>, String> {
        let client = self.kms().await?;
        with_deadline(async {
            let resp = client
                .sign()
                .key_id(key_id)
                .message(Blob::new(message.to_vec()))
                .message_type(MessageType::Raw)
                .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
                .send()
                .await
                .map_err(|e| aws_sdk_kms::error::DisplayErrorContext(e).to_string())?;
            resp.signature()
                .map(|b| b.as_ref().to_vec())
                .ok_or_else(|| "the answer holds no signature".to_owned())
        })
        .await
    }
}

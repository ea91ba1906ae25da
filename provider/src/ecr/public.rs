//! ECR Public's registry password: `ecr-public:GetAuthorizationToken`, which answers in
//! us-east-1 only, whatever region the identity is set up for.

use std::time::SystemTime;

use aws_config::SdkConfig;
use aws_credential_types::Credentials;

use super::chain::timeouts;
use super::host::PUBLIC_REGION;
use super::token::{decode, Token};

/// One `GetAuthorizationToken` with `creds` against ECR Public (`AWS_ENDPOINT_URL_ECR_PUBLIC`
/// or `endpoint` override the address).
pub(super) async fn token(
    sdk: &SdkConfig,
    creds: Credentials,
    endpoint: Option<&str>,
) -> Result<Token, String> {
    let mut conf = aws_sdk_ecrpublic::config::Builder::from(sdk)
        .region(aws_config::Region::new(PUBLIC_REGION))
        .credentials_provider(creds)
        .timeout_config(timeouts());
    if let Some(e) = endpoint {
        conf = conf.endpoint_url(e);
    }
    let client = aws_sdk_ecrpublic::Client::from_conf(conf.build());
    let resp = client
        .get_authorization_token()
        .send()
        .await
        .map_err(|e| aws_sdk_ecrpublic::error::DisplayErrorContext(e).to_string())?;
    let data = resp
        .authorization_data()
        .ok_or_else(|| "the answer holds no authorization data".to_owned())?;
    let encoded = data
        .authorization_token()
        .ok_or_else(|| "the answer holds no token".to_owned())?;
    let expires = data
        .expires_at()
        .and_then(|t| SystemTime::try_from(*t).ok());
    decode(encoded, expires)
}

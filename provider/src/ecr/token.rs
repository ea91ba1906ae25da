//! A private ECR host's registry password: `ecr:GetAuthorizationToken`.

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use base64::Engine as _;

use super::chain::timeouts;
use crate::config::SecretString;

/// A registry password from ECR (or ECR Public), with the time it stops being good.
#[derive(Clone)]
pub(super) struct Token {
    pub(super) username: String,
    pub(super) password: SecretString,
    pub(super) good_until: SystemTime,
}

/// Tokens are refreshed this long before they expire.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// How long a token whose expiry already looked past is used (some ECR look-alikes report
/// a fixed expiry in the past): refreshing it would only loop.
const STALE_EXPIRY_USE: Duration = Duration::from_secs(60 * 60);
/// ECR's documented token lifetime, for an answer that gives none.
const DEFAULT_LIFE: Duration = Duration::from_secs(12 * 3600);

/// The `user:password` of a base64 authorization token, good until shortly before
/// `expires`. Messages never quote the token.
pub(super) fn decode(encoded: &str, expires: Option<SystemTime>) -> Result<Token, String> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| "the token is not base64".to_owned())?;
    let text = String::from_utf8(decoded).map_err(|_| "the token is not text".to_owned())?;
    let (user, password) = text
        .split_once(':')
        .ok_or_else(|| "the token is not user:password".to_owned())?;
    let now = SystemTime::now();
    let expires = expires.unwrap_or(now + DEFAULT_LIFE);
    let good_until = if expires > now + REFRESH_MARGIN {
        expires - REFRESH_MARGIN
    } else {
        now + STALE_EXPIRY_USE
    };
    Ok(Token {
        username: user.to_owned(),
        password: SecretString::new(password.to_owned()),
        good_until,
    })
}

/// One `GetAuthorizationToken` with `creds` against the ECR API of `region`.
pub(super) async fn token(
    sdk: &SdkConfig,
    creds: Credentials,
    region: &str,
    endpoint: Option<&str>,
) -> Result<Token, String> {
    let client = client(sdk, creds, region, endpoint);
    // One token serves every registry the principal may use; registry IDs are deprecated.
    let resp = client
        .get_authorization_token()
        .send()
        .await
        .map_err(|e| aws_sdk_ecr::error::DisplayErrorContext(e).to_string())?;
    let data = resp
        .authorization_data()
        .first()
        .ok_or_else(|| "the answer holds no authorization data".to_owned())?;
    let encoded = data
        .authorization_token()
        .ok_or_else(|| "the answer holds no token".to_owned())?;
    let expires = data
        .expires_at()
        .and_then(|t| SystemTime::try_from(*t).ok());
    decode(encoded, expires)
}

/// An ECR client for `region` with `creds` (tag deletion).
pub(super) fn client(
    sdk: &SdkConfig,
    creds: Credentials,
    region: &str,
    endpoint: Option<&str>,
) -> aws_sdk_ecr::Client {
    let mut conf = aws_sdk_ecr::config::Builder::from(sdk)
        .region(aws_config::Region::new(region.to_owned()))
        .credentials_provider(creds)
        .timeout_config(timeouts());
    if let Some(e) = endpoint {
        conf = conf.endpoint_url(e);
    }
    aws_sdk_ecr::Client::from_conf(conf.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_never_quotes_the_token() {
        let enc = base64::engine::general_purpose::STANDARD.encode("AWS:tok-123");
        let t = decode(&enc, None).unwrap();
        assert_eq!(t.username, "AWS");
        assert_eq!(t.password.expose(), "tok-123");
        // An expiry in the past (moto's) is used for a while, not refreshed in a loop.
        let past = SystemTime::UNIX_EPOCH + Duration::from_secs(1_420_070_400);
        assert!(decode(&enc, Some(past)).unwrap().good_until > SystemTime::now());
        let bad = base64::engine::general_purpose::STANDARD.encode("no-colon-secret");
        let e = decode(&bad, None).err().unwrap();
        assert!(!e.contains("no-colon-secret"), "{e}");
        assert!(decode("%%%", None).is_err());
    }
}

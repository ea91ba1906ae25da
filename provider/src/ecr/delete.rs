//! Tag removal on private ECR: `BatchDeleteImage` removes the tag alone, never an image
//! another tag still uses.

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_sdk_ecr::types::{ImageFailureCode, ImageIdentifier};

use super::with_deadline;

/// The tag to remove and where.
pub(super) struct Target<'a> {
    pub(super) region: &'a str,
    pub(super) endpoint: Option<&'a str>,
    /// The registry's account (from the host name), when known.
    pub(super) account: Option<&'a str>,
    pub(super) repository: &'a str,
    pub(super) tag: &'a str,
}

/// Ok(false) when ECR does not know the image or repository.
pub(super) async fn delete_tag(
    sdk: &SdkConfig,
    creds: Credentials,
    t: &Target<'_>,
) -> Result<bool, String> {
    let sent = with_deadline(async {
        let client = super::token::client(sdk, creds, t.region, t.endpoint);
        let req = client
            .batch_delete_image()
            .repository_name(t.repository)
            .image_ids(ImageIdentifier::builder().image_tag(t.tag).build())
            .set_registry_id(t.account.map(str::to_owned));
        Ok(req.send().await)
    })
    .await?;
    let resp = match sent {
        Ok(resp) => resp,
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_repository_not_found_exception()) =>
        {
            return Ok(false)
        }
        Err(e) => return Err(aws_sdk_ecr::error::DisplayErrorContext(&e).to_string()),
    };
    if !resp.image_ids().is_empty() {
        return Ok(true);
    }
    match resp.failures().first() {
        None => Ok(false),
        Some(f)
            if matches!(
                f.failure_code(),
                Some(
                    ImageFailureCode::ImageNotFound | ImageFailureCode::ImageTagDoesNotMatchDigest
                )
            ) =>
        {
            Ok(false)
        }
        Some(f) => Err(format!(
            "{}: {}",
            f.failure_code().map(|c| c.as_str()).unwrap_or_default(),
            f.failure_reason().unwrap_or("no reason given")
        )),
    }
}

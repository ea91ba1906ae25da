//! The `aws` blocks of the provider configuration, checked at Configure: each failure
//! names the field (relative to the block) and what is wrong, never a secret's value.

use crate::config::{AssumeRoleConfig, AwsConfig, RegistryConfig};

/// A failing field, relative to where the block sits (e.g. `.assumeRole.roleArn`), and why.
pub type Failure = (String, String);

fn fail(field: &str, reason: impl Into<String>) -> Failure {
    (field.to_owned(), reason.into())
}

/// `provider.aws` or `registries[i].aws`.
pub fn aws(a: &AwsConfig) -> Result<(), Failure> {
    if let Some(r) = &a.region {
        if r.is_empty()
            || !r
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(fail(
                ".region",
                format!("{r:?} is not an AWS region, e.g. us-east-1"),
            ));
        }
    }
    if a.profile.as_deref().is_some_and(|p| p.trim().is_empty()) {
        return Err(fail(
            ".profile",
            "is empty; name a profile of the AWS config files or leave it out",
        ));
    }
    if let Some(role) = &a.assume_role {
        assume_role(role).map_err(|(f, r)| (format!(".assumeRole{f}"), r))?;
    }
    Ok(())
}

/// One registry entry's `aws` block, and how it sits with the entry's other fields.
pub fn registry(r: &RegistryConfig) -> Result<(), Failure> {
    let Some(a) = &r.aws else { return Ok(()) };
    if r.username.is_some() || r.password.is_some() {
        return Err(fail(
            ".aws",
            "an entry authenticates either with AWS (aws) or with username/password, not both",
        ));
    }
    let host = r
        .address
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or(host);
    if r.ecr.is_none() && !super::is_aws_registry(host) {
        return Err(fail(
            ".aws",
            format!(
                "{host:?} is neither an ECR host nor public.ecr.aws; add `ecr: {{}}` to \
                 authenticate it with an ECR token"
            ),
        ));
    }
    aws(a).map_err(|(f, reason)| (format!(".aws{f}"), reason))
}

/// `arn:<partition>:iam::<12 digits>:role/<path and name>`.
fn is_role_arn(arn: &str) -> bool {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(res)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    partition.starts_with("aws")
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && res.strip_prefix("role/").is_some_and(|n| !n.is_empty())
}

fn assume_role(role: &AssumeRoleConfig) -> Result<(), Failure> {
    if !is_role_arn(&role.role_arn) {
        return Err(fail(
            ".roleArn",
            format!(
                "{:?} is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)",
                role.role_arn
            ),
        ));
    }
    let name_char = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
    if let Some(s) = &role.session_name {
        if !(2..=64).contains(&s.len()) || !s.chars().all(name_char) {
            return Err(fail(
                ".sessionName",
                format!("{s:?} must be 2 to 64 characters of letters, digits and +=,.@_-"),
            ));
        }
    }
    if let Some(id) = &role.external_id {
        let id = id.expose();
        let ok = (2..=1224).contains(&id.len())
            && id.chars().all(|c| name_char(c) || c == ':' || c == '/');
        if !ok {
            // The value is secret: the message says what is wrong, not what it is.
            return Err(fail(
                ".externalId",
                "must be 2 to 1224 characters of letters, digits and +=,.@:/_-",
            ));
        }
    }
    if let Some(d) = role.duration_seconds {
        if !(900..=43200).contains(&d) {
            return Err(fail(
                ".durationSeconds",
                format!("{d} is outside 900 to 43200 (15 minutes to 12 hours)"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretString;

    fn with_role(role: AssumeRoleConfig) -> AwsConfig {
        AwsConfig {
            assume_role: Some(role),
            ..Default::default()
        }
    }

    fn role(arn: &str) -> AssumeRoleConfig {
        AssumeRoleConfig {
            role_arn: arn.into(),
            ..Default::default()
        }
    }

    #[test]
    fn role_arns() {
        assert!(is_role_arn("arn:aws:iam::123456789012:role/ecr-push"));
        assert!(is_role_arn("arn:aws-cn:iam::123456789012:role/path/to/r"));
        assert!(!is_role_arn("arn:aws:iam::123456789012:user/bob"));
        assert!(!is_role_arn("arn:aws:sts::123456789012:role/r"));
        assert!(!is_role_arn("arn:aws:iam::1234:role/r"));
        assert!(!is_role_arn("ecr-push"));
        assert!(!is_role_arn("arn:aws:iam::123456789012:role/"));
    }

    #[test]
    fn each_failure_names_its_field() {
        let e = aws(&with_role(role("push"))).unwrap_err();
        assert_eq!(e.0, ".assumeRole.roleArn");
        assert!(e.1.contains("\"push\" is not an IAM role ARN"), "{}", e.1);

        let ok = "arn:aws:iam::123456789012:role/r";
        let e = aws(&with_role(AssumeRoleConfig {
            duration_seconds: Some(60),
            ..role(ok)
        }))
        .unwrap_err();
        assert_eq!(e.0, ".assumeRole.durationSeconds");

        let e = aws(&with_role(AssumeRoleConfig {
            session_name: Some("has space".into()),
            ..role(ok)
        }))
        .unwrap_err();
        assert_eq!(e.0, ".assumeRole.sessionName");

        let e = aws(&with_role(AssumeRoleConfig {
            external_id: Some(SecretString::new("x")),
            ..role(ok)
        }))
        .unwrap_err();
        assert_eq!(e.0, ".assumeRole.externalId");

        let e = aws(&AwsConfig {
            region: Some("US East".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.0, ".region");

        assert!(aws(&with_role(AssumeRoleConfig {
            session_name: Some("ci-run.42".into()),
            external_id: Some(SecretString::new("tenant:42/x")),
            duration_seconds: Some(900),
            ..role(ok)
        }))
        .is_ok());
    }

    #[test]
    fn an_external_id_is_never_quoted() {
        let e = aws(&with_role(AssumeRoleConfig {
            external_id: Some(SecretString::new("secret id with spaces")),
            ..role("arn:aws:iam::123456789012:role/r")
        }))
        .unwrap_err();
        assert!(!e.1.contains("secret id"), "{}", e.1);
    }

    #[test]
    fn an_entry_with_aws_and_a_password_is_refused() {
        let r = RegistryConfig {
            address: "123456789012.dkr.ecr.us-east-1.amazonaws.com".into(),
            username: Some("AWS".into()),
            password: Some(SecretString::new("p")),
            aws: Some(AwsConfig::default()),
            ..Default::default()
        };
        assert_eq!(registry(&r).unwrap_err().0, ".aws");
        let r = RegistryConfig {
            aws: Some(with_role(role("nope"))),
            username: None,
            password: None,
            ..r
        };
        assert_eq!(registry(&r).unwrap_err().0, ".aws.assumeRole.roleArn");
        let ghcr = RegistryConfig {
            address: "ghcr.io".into(),
            aws: Some(AwsConfig::default()),
            ..Default::default()
        };
        assert!(registry(&ghcr)
            .unwrap_err()
            .1
            .contains("neither an ECR host"));
        let with_ecr = RegistryConfig {
            ecr: Some(Default::default()),
            ..ghcr
        };
        assert!(registry(&with_ecr).is_ok());
    }
}

//! What a registry host name says about ECR.

/// What an ECR host name says: `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrHost {
    pub account: String,
    pub region: String,
}

/// ECR Public's registry host. Its tokens come from `ecr-public` in us-east-1.
pub const PUBLIC_HOST: &str = "public.ecr.aws";
/// The only region ECR Public's API answers in.
pub const PUBLIC_REGION: &str = "us-east-1";

pub fn parse_host(host: &str) -> Option<EcrHost> {
    let host = host.split(':').next()?.to_ascii_lowercase();
    let rest = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let mut parts = rest.split('.');
    let account = parts.next()?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if parts.next()? != "dkr" {
        return None;
    }
    let ecr = parts.next()?;
    if ecr != "ecr" && ecr != "ecr-fips" {
        return None;
    }
    let region = parts.next()?;
    if parts.next().is_some() || region.is_empty() {
        return None;
    }
    Some(EcrHost {
        account: account.to_owned(),
        region: region.to_owned(),
    })
}

/// True for ECR Public (`public.ecr.aws`, any port).
pub fn is_public(host: &str) -> bool {
    host.split(':')
        .next()
        .is_some_and(|h| h.eq_ignore_ascii_case(PUBLIC_HOST))
}

/// True when the host name alone makes it an AWS registry (private ECR or ECR Public).
pub fn is_aws_registry(host: &str) -> bool {
    is_public(host) || parse_host(host).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_hosts() {
        assert_eq!(
            parse_host("123456789012.dkr.ecr.us-east-1.amazonaws.com"),
            Some(EcrHost {
                account: "123456789012".into(),
                region: "us-east-1".into()
            })
        );
        assert_eq!(
            parse_host("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn").map(|h| h.region),
            Some("cn-north-1".into())
        );
        assert!(parse_host("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com").is_some());
        assert!(parse_host("public.ecr.aws").is_none());
        assert!(parse_host("12345.dkr.ecr.us-east-1.amazonaws.com").is_none());
        assert!(parse_host("127.0.0.1:5000").is_none());
        assert!(parse_host("123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.io").is_none());
    }

    #[test]
    fn public_host() {
        assert!(is_public("public.ecr.aws"));
        assert!(is_public("PUBLIC.ECR.AWS:443"));
        assert!(!is_public("public.ecr.aws.evil.io"));
        assert!(!is_public("ecr.aws"));
        assert!(is_aws_registry("public.ecr.aws"));
        assert!(is_aws_registry(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com"
        ));
        assert!(!is_aws_registry("ghcr.io"));
    }
}

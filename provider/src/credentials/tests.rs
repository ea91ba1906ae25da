use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::docker_config::{HostHelper, StoreAndAuths};
use super::helper::Helpers;
use super::*;

/// A source that always answers the same.
struct Fixed(Result<Option<&'static str>, &'static str>);

#[async_trait]
impl Source for Fixed {
    async fn lookup(&self, _host: &str) -> Result<Option<Credential>, CredentialError> {
        match self.0 {
            Ok(Some(u)) => Ok(Some(Credential {
                username: u.into(),
                secret: SecretString::new("pw"),
            })),
            Ok(None) => Ok(None),
            Err(reason) => Err(CredentialError::DockerConfig {
                path: "fixed".into(),
                reason: reason.into(),
            }),
        }
    }
}

fn chain(sources: Vec<Fixed>) -> Credentials {
    Credentials::from_sources(
        sources
            .into_iter()
            .map(|s| Box::new(s) as Box<dyn Source>)
            .collect(),
    )
}

async fn user(c: &Credentials) -> Result<Option<String>, String> {
    c.lookup("r.example")
        .await
        .map(|o| o.map(|c| c.username))
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn the_first_source_that_answers_wins() {
    let c = chain(vec![
        Fixed(Ok(None)),
        Fixed(Ok(Some("a"))),
        Fixed(Ok(Some("b"))),
    ]);
    assert_eq!(user(&c).await, Ok(Some("a".into())));
}

#[tokio::test]
async fn a_failed_source_is_reported_only_when_no_later_one_answers() {
    let c = chain(vec![Fixed(Err("ecr down")), Fixed(Ok(Some("b")))]);
    assert_eq!(user(&c).await, Ok(Some("b".into())));
    let c = chain(vec![
        Fixed(Err("ecr down")),
        Fixed(Err("later")),
        Fixed(Ok(None)),
    ]);
    assert!(user(&c).await.unwrap_err().contains("ecr down"));
    let c = chain(vec![Fixed(Ok(None))]);
    assert_eq!(user(&c).await, Ok(None));
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn helper_script(dir: &Path, name: &str, body: &str) {
    let p = dir.join(format!("docker-credential-{name}"));
    write(&p, &format!("#!/bin/sh\n{body}\n"));
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn files(config: &str, deadline: Duration) -> (tempfile::TempDir, Arc<DockerConfigFile>) {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("config.json"), config);
    let helpers = Helpers::in_dir(dir.path().to_owned(), deadline);
    let file = DockerConfigFile::with_helpers(dir.path().join("config.json"), helpers);
    (dir, Arc::new(file))
}

async fn store(
    file: &Arc<DockerConfigFile>,
    host: &str,
) -> Result<Option<(String, String)>, String> {
    StoreAndAuths::new(file.clone())
        .lookup(host)
        .await
        .map(|o| o.map(|c| (c.username, c.secret.expose().to_owned())))
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn docker_login_auths_are_read_by_host() {
    // base64("ci:s3cr3t"); Docker Hub is keyed by its v1 address.
    let (_d, file) = files(
        r#"{"auths": {"https://127.0.0.1:5443": {"auth": "Y2k6czNjcjN0"},
                      "https://index.docker.io/v1/": {"username": "hub", "password": "pw"}}}"#,
        Duration::from_secs(5),
    );
    assert_eq!(
        store(&file, "127.0.0.1:5443").await,
        Ok(Some(("ci".into(), "s3cr3t".into())))
    );
    assert_eq!(
        store(&file, "docker.io").await,
        Ok(Some(("hub".into(), "pw".into())))
    );
    assert_eq!(store(&file, "other.example").await, Ok(None));
}

#[tokio::test]
async fn a_bad_auth_entry_names_the_entry_and_not_the_value() {
    let (_d, file) = files(
        r#"{"auths": {"r.example": {"auth": "%%not-base64-s3cr3t%%"}}}"#,
        Duration::from_secs(5),
    );
    let e = store(&file, "r.example").await.unwrap_err();
    assert!(
        e.contains("auths[\"r.example\"]") && e.contains("not base64"),
        "{e}"
    );
    assert!(!e.contains("s3cr3t"), "{e}");
    let (_d, file) = files("{not json", Duration::from_secs(5));
    let e = store(&file, "r.example").await.unwrap_err();
    assert!(
        e.contains("config.json") && e.contains("not valid JSON"),
        "{e}"
    );
}

#[tokio::test]
async fn a_missing_config_file_means_no_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let file = Arc::new(DockerConfigFile::at(dir.path().join("config.json")));
    assert_eq!(store(&file, "r.example").await, Ok(None));
}

#[tokio::test]
async fn helpers_speak_the_helper_protocol() {
    let (d, file) = files(
        r#"{"credHelpers": {"r.example": "fake"}, "credsStore": "store",
            "auths": {"r.example": {"auth": "Y2k6czNjcjN0"}}}"#,
        Duration::from_secs(5),
    );
    // The helper must get the host on stdin and `get` as its argument.
    helper_script(
        d.path(),
        "fake",
        r#"[ "$1" = get ] || exit 3; read h; printf '{"ServerURL":"%s","Username":"u-%s","Secret":"tok"}' "$h" "$h""#,
    );
    helper_script(
        d.path(),
        "store",
        "echo 'credentials not found in native keychain'; exit 1",
    );
    let by_host = HostHelper::new(file.clone())
        .lookup("r.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (by_host.username.as_str(), by_host.secret.expose()),
        ("u-r.example", "tok")
    );
    assert!(HostHelper::new(file.clone())
        .lookup("x.example")
        .await
        .unwrap()
        .is_none());
    // The store holds nothing for it: `auths` answers.
    assert_eq!(
        store(&file, "r.example").await,
        Ok(Some(("ci".into(), "s3cr3t".into())))
    );
}

#[tokio::test]
async fn a_failing_or_hanging_helper_is_named_and_has_a_deadline() {
    let (d, file) = files(
        r#"{"credHelpers": {"bad.example": "bad", "slow.example": "slow", "gone.example": "gone"}}"#,
        Duration::from_millis(300),
    );
    helper_script(d.path(), "bad", "echo 'keychain locked'; exit 1");
    helper_script(d.path(), "slow", "sleep 30");
    let h = HostHelper::new(file.clone());
    let e = h.lookup("bad.example").await.unwrap_err().to_string();
    assert!(
        e.contains("docker-credential-bad") && e.contains("keychain locked"),
        "{e}"
    );
    let e = h.lookup("slow.example").await.unwrap_err().to_string();
    assert!(
        e.contains("docker-credential-slow") && e.contains("did not answer"),
        "{e}"
    );
    let e = h.lookup("gone.example").await.unwrap_err().to_string();
    assert!(
        e.contains("docker-credential-gone") && e.contains("not on PATH"),
        "{e}"
    );
}

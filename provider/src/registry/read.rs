//! Reads from registries (manifests, digests, JSON blobs, tag lists) through the provider's
//! own requests, every body bounded ([`super::body`]): basic or no auth first, and on a
//! `401` with a Bearer challenge a pull token from the registry's token service, then the
//! request again with it. oci-client reads whole bodies into memory without a limit, so
//! no read goes through it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use oci_client::secrets::RegistryAuth;
use oci_client::Reference;
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::Method;
use serde_json::Value as Json;
use sha2::{Digest, Sha256, Sha512};

use super::body::{self, BodyError};
use super::manifest::{self, RawManifest};
use super::retry::{retry, HttpFailure, Retried, Timeout};
use super::{retryable_status, Registries, RegistryError};

/// The largest token-service answer read.
const TOKEN_MAX: u64 = 1024 * 1024;
/// The largest error answer read (for its message).
const ERROR_MAX: u64 = 64 * 1024;
/// One request, its body included (the idle deadline usually ends a bad one sooner).
const REQUEST_TIME: Duration = Duration::from_secs(30);

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("the registry sent content whose digest is {actual}, not {expected}")]
    Digest { expected: String, actual: String },
    #[error("not authorized (HTTP {code}){message}")]
    Denied { code: u16, message: String },
    #[error("HTTP {code}{message}")]
    Status { code: u16, message: String },
    #[error("{0}")]
    Request(Retried<HttpFailure>),
    #[error("getting a pull token from {realm}: {message}")]
    Token { realm: String, message: String },
    #[error("{0}")]
    Content(String),
}

/// Pull tokens by repository, kept in memory only, until shortly before they expire.
#[derive(Default)]
pub(super) struct Tokens {
    map: Mutex<HashMap<String, (String, Instant)>>,
}

impl Tokens {
    fn get(&self, key: &str) -> Option<String> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(t, _)| t.clone())
    }

    fn put(&self, key: String, token: String, lifetime: Duration) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(key, (token, Instant::now() + lifetime));
    }
}

/// A Bearer challenge (`WWW-Authenticate: Bearer realm="…",service="…"`).
#[derive(Debug, PartialEq, Eq)]
struct Challenge {
    realm: String,
    service: Option<String>,
}

fn bearer_challenge(headers: &HeaderMap) -> Option<Challenge> {
    let v = headers.get(WWW_AUTHENTICATE)?.to_str().ok()?.trim();
    let (scheme, params) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    // key="value" pairs, commas between (values here never contain `",`).
    for part in params.split("\",") {
        let Some((k, v)) = part.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').to_owned();
        match k.trim().to_ascii_lowercase().as_str() {
            "realm" => realm = Some(v),
            "service" => service = Some(v),
            _ => {}
        }
    }
    Some(Challenge {
        realm: realm?,
        service,
    })
}

/// How a request is authorized.
#[derive(Clone)]
enum Authz {
    Creds(RegistryAuth),
    Bearer(String),
}

/// What one attempt found.
enum Attempt {
    Found(HeaderMap, Bytes),
    NotFound,
    Challenge(Challenge),
    Refused(ReadError),
}

/// True (or false) when `body` hashes to `digest`; None for an algorithm we do not know.
fn digest_matches(digest: &str, body: &[u8]) -> Option<bool> {
    let (alg, hex_part) = digest.split_once(':')?;
    let actual = match alg {
        "sha256" => hex::encode(Sha256::digest(body)),
        "sha512" => hex::encode(Sha512::digest(body)),
        _ => return None,
    };
    Some(actual == hex_part)
}

/// A short message from an error answer's body (bounded; not every registry sends one).
async fn error_message(resp: reqwest::Response) -> String {
    match body::read_capped(resp, ERROR_MAX).await {
        Ok(b) if !b.is_empty() => {
            let text = String::from_utf8_lossy(&b);
            let text: String = text.chars().take(300).collect();
            format!(": {}", text.trim())
        }
        _ => String::new(),
    }
}

fn repo_key(r: &Reference) -> String {
    format!("{}/{}", r.resolve_registry(), r.repository())
}

impl Registries {
    /// One bounded read of `path` in the repository of `r`.
    async fn read(
        &self,
        operation: &'static str,
        r: &Reference,
        method: Method,
        path: &str,
        limit: u64,
    ) -> Result<Option<(HeaderMap, Bytes)>, RegistryError> {
        let fail = |source: ReadError| RegistryError::Read {
            operation,
            reference: r.whole(),
            source,
        };
        let creds = self.credentials(r.registry()).await?;
        let mut authz = match self.inner.tokens.get(&repo_key(r)) {
            Some(t) => Authz::Bearer(t),
            None => Authz::Creds(creds.clone()),
        };
        for round in 0..2 {
            let got = retry(Timeout::Manifest, || {
                self.attempt(method.clone(), r, path, &authz, limit)
            })
            .await
            .map_err(|e| fail(ReadError::Request(e)))?;
            match got {
                Attempt::Found(h, b) => return Ok(Some((h, b))),
                Attempt::NotFound => return Ok(None),
                Attempt::Refused(e) => return Err(fail(e)),
                Attempt::Challenge(c) if round == 0 => {
                    let token = self.token(r, &creds, &c).await.map_err(fail)?;
                    authz = Authz::Bearer(token);
                }
                Attempt::Challenge(_) => {
                    return Err(fail(ReadError::Denied {
                        code: 401,
                        message: ": the registry refused its own token".into(),
                    }))
                }
            }
        }
        unreachable!("the loop returns in its second round")
    }

    async fn attempt(
        &self,
        method: Method,
        r: &Reference,
        path: &str,
        authz: &Authz,
        limit: u64,
    ) -> Result<Attempt, HttpFailure> {
        let permit = self.permit(r.registry()).await;
        // A token fetched while this request waited for its turn serves it too (the
        // requests that start together would otherwise each meet the challenge).
        let fresh = match authz {
            Authz::Creds(_) => self.inner.tokens.get(&repo_key(r)).map(Authz::Bearer),
            Authz::Bearer(_) => None,
        };
        let req = match fresh.as_ref().unwrap_or(authz) {
            Authz::Creds(a) => self.direct_request(method.clone(), r, path, a),
            Authz::Bearer(t) => self
                .direct_request(method.clone(), r, path, &RegistryAuth::Anonymous)
                .header(AUTHORIZATION, format!("Bearer {t}")),
        };
        let resp = req
            .header(ACCEPT, manifest::ACCEPTED.join(", "))
            .timeout(REQUEST_TIME)
            .send()
            .await?;
        permit.answered(resp.version());
        let resp = retryable_status(resp)?;
        let code = resp.status().as_u16();
        Ok(match code {
            200 => {
                let headers = resp.headers().clone();
                let bytes = if method == Method::HEAD {
                    Bytes::new()
                } else {
                    body::read_capped(resp, limit)
                        .await
                        .map_err(HttpFailure::Body)?
                };
                Attempt::Found(headers, bytes)
            }
            404 => Attempt::NotFound,
            // (A cached token that expired is challenged again: a new one is fetched.)
            401 => match bearer_challenge(resp.headers()) {
                Some(c) => Attempt::Challenge(c),
                None => Attempt::Refused(ReadError::Denied {
                    code,
                    message: error_message(resp).await,
                }),
            },
            403 => Attempt::Refused(ReadError::Denied {
                code,
                message: error_message(resp).await,
            }),
            _ => Attempt::Refused(ReadError::Status {
                code,
                message: error_message(resp).await,
            }),
        })
    }

    /// A pull token for the repository of `r` from the challenge's token service (with the
    /// registry's credentials, if any), kept for its lifetime.
    async fn token(
        &self,
        r: &Reference,
        creds: &RegistryAuth,
        c: &Challenge,
    ) -> Result<String, ReadError> {
        let failed = |message: String| ReadError::Token {
            realm: c.realm.clone(),
            message,
        };
        let scope = format!("repository:{}:pull", r.repository());
        let mut query = vec![("scope", scope.as_str())];
        if let Some(s) = &c.service {
            query.push(("service", s.as_str()));
        }
        let resp = retry(Timeout::Manifest, || async {
            let mut req = self.inner.http.get(&c.realm).query(&query);
            if let RegistryAuth::Basic(u, p) = creds {
                req = req.basic_auth(u, Some(p));
            }
            let resp = retryable_status(req.timeout(REQUEST_TIME).send().await?)?;
            if resp.status().as_u16() != 200 {
                return Ok(Err(resp.status().as_u16()));
            }
            body::read_capped(resp, TOKEN_MAX)
                .await
                .map(Ok)
                .map_err(HttpFailure::Body)
        })
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|code| failed(format!("HTTP {code}")))?;
        let json: Json =
            serde_json::from_slice(&resp).map_err(|e| failed(format!("not JSON: {e}")))?;
        let token = json
            .get("token")
            .or_else(|| json.get("access_token"))
            .and_then(Json::as_str)
            .ok_or_else(|| failed("the answer holds no token".into()))?
            .to_owned();
        let lifetime = json
            .get("expires_in")
            .and_then(Json::as_u64)
            .unwrap_or(60)
            .saturating_sub(10)
            .clamp(1, 3600);
        self.inner
            .tokens
            .put(repo_key(r), token.clone(), Duration::from_secs(lifetime));
        Ok(token)
    }

    /// The digest a tag (or digest reference) points to; None when it does not exist.
    /// A registry that does not say it in `Docker-Content-Digest` gets a (bounded) GET.
    pub async fn digest_of(&self, r: &Reference) -> Result<Option<String>, RegistryError> {
        let path = Self::manifest_path(r);
        let head = match self.read("look up", r, Method::HEAD, &path, 0).await {
            // A registry that does not answer HEAD (405, …) may still answer GET.
            Err(RegistryError::Read {
                source: ReadError::Status { .. },
                ..
            }) => return Ok(self.manifest(r).await?.map(|m| m.digest)),
            other => other?,
        };
        let Some((headers, _)) = head else {
            return Ok(None);
        };
        let said = headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok());
        match (said, r.digest()) {
            (Some(d), Some(asked)) if d != asked => Err(RegistryError::Read {
                operation: "look up",
                reference: r.whole(),
                source: ReadError::Digest {
                    expected: asked.to_owned(),
                    actual: d.to_owned(),
                },
            }),
            (Some(d), _) => Ok(Some(d.to_owned())),
            (None, _) => Ok(self.manifest(r).await?.map(|m| m.digest)),
        }
    }

    /// The manifest at `r` (at most [`body::MANIFEST_MAX`] bytes); None when it does not
    /// exist. Read by digest, its content must hash to that digest.
    pub async fn manifest(&self, r: &Reference) -> Result<Option<RawManifest>, RegistryError> {
        let operation = "read manifest";
        let Some((_, bytes)) = self
            .read(
                operation,
                r,
                Method::GET,
                &Self::manifest_path(r),
                body::MANIFEST_MAX,
            )
            .await?
        else {
            return Ok(None);
        };
        let fail = |source| RegistryError::Read {
            operation,
            reference: r.whole(),
            source,
        };
        if let Some(d) = r.digest() {
            if digest_matches(d, &bytes) == Some(false) {
                return Err(fail(ReadError::Digest {
                    expected: d.to_owned(),
                    actual: manifest::sha256_digest(&bytes),
                }));
            }
        }
        RawManifest::from_bytes(bytes)
            .map(Some)
            .map_err(|e| fail(ReadError::Content(e)))
    }

    /// A small JSON blob (an image config, at most [`body::JSON_BLOB_MAX`] bytes) from the
    /// repository of `r`; its content must hash to `digest`.
    pub async fn json_blob(&self, r: &Reference, digest: &str) -> Result<Json, RegistryError> {
        let bytes = self.small_blob(r, digest).await?;
        serde_json::from_slice(&bytes).map_err(|e| RegistryError::Read {
            operation: "read blob",
            reference: format!("{}@{digest}", r.whole()),
            source: ReadError::Content(format!("not JSON: {e}")),
        })
    }

    /// A small blob's exact bytes (at most [`body::JSON_BLOB_MAX`]: a signature payload);
    /// its content must hash to `digest`.
    pub async fn small_blob(
        &self,
        r: &Reference,
        digest: &str,
    ) -> Result<bytes::Bytes, RegistryError> {
        let operation = "read blob";
        let fail = |source| RegistryError::Read {
            operation,
            reference: format!("{}@{digest}", r.whole()),
            source,
        };
        let path = format!("blobs/{digest}");
        let bytes = self
            .read(operation, r, Method::GET, &path, body::JSON_BLOB_MAX)
            .await?
            .ok_or_else(|| fail(ReadError::Content("the blob does not exist".into())))?
            .1;
        if digest_matches(digest, &bytes) == Some(false) {
            return Err(fail(ReadError::Digest {
                expected: digest.to_owned(),
                actual: manifest::sha256_digest(&bytes),
            }));
        }
        Ok(bytes)
    }

    /// The OCI 1.1 referrers API's answer for `digest` in `r`'s repository: None where the
    /// registry does not serve the API (404) or the answer is no index.
    pub async fn referrers(
        &self,
        r: &Reference,
        digest: &str,
    ) -> Result<Option<Json>, RegistryError> {
        let path = format!("referrers/{digest}");
        let Some((_, bytes)) = self
            .read(
                "list referrers of",
                r,
                Method::GET,
                &path,
                body::JSON_BLOB_MAX,
            )
            .await?
        else {
            return Ok(None);
        };
        Ok(serde_json::from_slice::<Json>(&bytes)
            .ok()
            .filter(|v| v.get("manifests").is_some_and(Json::is_array)))
    }

    /// Tags in the repository of `r` (at most [`body::TAG_LIST_MAX`] bytes of them).
    pub async fn tags(&self, r: &Reference) -> Result<Vec<String>, RegistryError> {
        let operation = "list tags of";
        let Some((_, bytes)) = self
            .read(operation, r, Method::GET, "tags/list", body::TAG_LIST_MAX)
            .await?
        else {
            return Ok(Vec::new());
        };
        let json: Json = serde_json::from_slice(&bytes).map_err(|e| RegistryError::Read {
            operation,
            reference: r.whole(),
            source: ReadError::Content(format!("not JSON: {e}")),
        })?;
        Ok(json
            .get("tags")
            .and_then(Json::as_array)
            .map(|t| {
                t.iter()
                    .filter_map(Json::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_parse() {
        let mut h = HeaderMap::new();
        h.insert(
            WWW_AUTHENTICATE,
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull""#
                .parse()
                .unwrap(),
        );
        assert_eq!(
            bearer_challenge(&h),
            Some(Challenge {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
            })
        );
        h.insert(WWW_AUTHENTICATE, r#"Basic realm="x""#.parse().unwrap());
        assert_eq!(bearer_challenge(&h), None);
    }

    #[test]
    fn digests_are_checked_by_their_algorithm() {
        let body = b"{}";
        let good = manifest::sha256_digest(body);
        assert_eq!(digest_matches(&good, body), Some(true));
        assert_eq!(digest_matches(&good, b"{ }"), Some(false));
        assert_eq!(digest_matches("md5:00", body), None);
    }

    #[test]
    fn tokens_expire() {
        let t = Tokens::default();
        t.put("a".into(), "tok".into(), Duration::from_secs(60));
        assert_eq!(t.get("a").as_deref(), Some("tok"));
        t.put("b".into(), "tok".into(), Duration::ZERO);
        assert_eq!(t.get("b"), None);
    }
}

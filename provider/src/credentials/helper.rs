//! Docker credential helpers: `docker-credential-<name> get`, the server address on stdin,
//! `{"ServerURL", "Username", "Secret"}` on stdout (docker/docker-credential-helpers).
//! Each run has a deadline; answers are kept in memory for a few minutes so one operation
//! does not start the helper for every request.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use super::Credential;
use crate::secret::SecretString;

/// How long a helper may take (ecr-login calls the AWS API; keychains may prompt).
const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);
/// How long an answer is reused.
const KEEP: Duration = Duration::from_secs(5 * 60);
/// What helpers print when they hold nothing for the address.
const NOT_FOUND: &str = "credentials not found in native keychain";

fn deadline() -> Duration {
    std::env::var("MULTIARCH_CREDENTIAL_HELPER_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_DEADLINE)
}

#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: SecretString,
}

type Cell = Arc<Mutex<Option<(Instant, Option<Credential>)>>>;

/// Runs helpers, one run at a time per (helper, address); answers cached for [`KEEP`].
pub struct Helpers {
    /// Held only to find a cell, never across an await.
    cells: SyncMutex<HashMap<(String, String), Cell>>,
    deadline: Duration,
    /// Where helpers are found: None for `PATH` (tests point it at a directory).
    dir: Option<PathBuf>,
}

impl Default for Helpers {
    fn default() -> Self {
        Helpers {
            cells: SyncMutex::default(),
            deadline: deadline(),
            dir: None,
        }
    }
}

impl Helpers {
    /// Helpers found in `dir` with the given deadline.
    #[cfg(test)]
    pub fn in_dir(dir: PathBuf, deadline: Duration) -> Self {
        Helpers {
            cells: SyncMutex::default(),
            deadline,
            dir: Some(dir),
        }
    }

    /// The helper's credentials for `server`; None when it holds none. The error is the
    /// reason, without the helper's name (the caller adds it).
    pub async fn get(&self, helper: &str, server: &str) -> Result<Option<Credential>, String> {
        if helper.is_empty()
            || !helper
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err("not a helper name (letters, digits, '-', '_', '.')".into());
        }
        let cell = {
            let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
            cells
                .entry((helper.to_owned(), server.to_owned()))
                .or_default()
                .clone()
        };
        let mut cached = cell.lock().await;
        if let Some((at, answer)) = cached.as_ref() {
            if at.elapsed() < KEEP {
                return Ok(answer.clone());
            }
        }
        let program = format!("docker-credential-{helper}");
        let path = match &self.dir {
            Some(d) => d.join(&program),
            None => PathBuf::from(&program),
        };
        let answer = run(&program, &path, server, self.deadline).await?;
        *cached = Some((Instant::now(), answer.clone()));
        Ok(answer)
    }
}

async fn run(
    program: &str,
    path: &Path,
    server: &str,
    limit: Duration,
) -> Result<Option<Credential>, String> {
    let mut child = tokio::process::Command::new(path)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("`{program}` is not on PATH"),
            _ => format!("`{program}` could not be started: {e}"),
        })?;
    let talk = async {
        if let Some(mut stdin) = child.stdin.take() {
            // A helper may exit without reading its input (a locked keychain): its exit
            // status and output say why, not the broken pipe.
            let _ = stdin.write_all(server.as_bytes()).await;
            let _ = stdin.shutdown().await;
        }
        child.wait_with_output().await
    };
    let output = tokio::time::timeout(limit, talk)
        .await
        .map_err(|_| {
            format!(
                "did not answer within {:.0} s (MULTIARCH_CREDENTIAL_HELPER_TIMEOUT)",
                limit.as_secs_f64()
            )
        })?
        .map_err(|e| format!("failed to run: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        // On failure helpers print the reason (never a secret) on stdout.
        let reason = stdout.trim();
        if reason == NOT_FOUND {
            return Ok(None);
        }
        let reason: String = reason.chars().take(300).collect();
        return Err(format!("exited with {}: {reason}", output.status));
    }
    let answer: Answer = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("its answer is not the helper protocol's JSON: {e}"))?;
    if answer.username == "<token>" {
        return Err(
            "answered with an identity token (OAuth refresh token), which multiarch does not use"
                .into(),
        );
    }
    if answer.username.is_empty() && answer.secret.expose().is_empty() {
        return Ok(None);
    }
    Ok(Some(Credential {
        username: answer.username,
        secret: answer.secret,
    }))
}

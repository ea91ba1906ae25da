//! One connection to a Docker Engine's API, however the Engine is reached: its unix socket,
//! TCP (plain, or TLS with the rustls/aws-lc-rs configuration of `tls.rs`), or ssh running
//! `docker system dial-stdio` on the remote host (as the docker CLI does: the Engine API
//! spoken over the process's stdin and stdout).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use crate::docker::{DockerHost, Engine};

/// How long a TCP connect or TLS handshake may take; an ssh connection gets ssh's own
/// `ConnectTimeout` with the same value, and every request its own deadline on top.
const CONNECT: Duration = Duration::from_secs(20);
/// The most of ssh's error output kept for an error message.
const STDERR_CAP: usize = 4096;
/// The largest JSON answer read from the Engine (`/info` is a few KiB).
const MAX_JSON: usize = 4 << 20;

/// A connection to the Engine's API.
pub(crate) struct EngineConn {
    io: Pin<Box<dyn Io>>,
    diag: Diag,
}

/// ssh's error output so far, and the signal that it has ended.
type Stderr = (Arc<Mutex<Vec<u8>>>, Arc<tokio::sync::Notify>);

/// What explains a failed connection: ssh's error output.
#[derive(Clone, Default)]
pub(crate) struct Diag {
    stderr: Option<Stderr>,
}

impl Diag {
    /// `e`, with what ssh said (once it has said it; a short wait at most).
    pub(crate) async fn explain(&self, e: String) -> String {
        let Some((buf, done)) = &self.stderr else {
            return e;
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), done.notified()).await;
        let said = buf.lock().map(|b| b.clone()).unwrap_or_default();
        let said = String::from_utf8_lossy(&said).trim().to_owned();
        if said.is_empty() {
            e
        } else {
            format!("{e}; ssh said: {said}")
        }
    }
}

/// The Engine connection failures whose cause and fix are known, told apart where the
/// typed error still exists (a rustls error inside the io or hyper error, the status of the
/// Engine's answer), so no message text is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KnownFailure {
    /// The Engine asked for a client certificate and got none (TLS 1.3 sends the
    /// `certificate_required` alert after the handshake, so it surfaces on the first read).
    ClientCertificateRequired,
    /// The Engine's certificate chains to no trusted CA.
    UntrustedCertificate,
    /// Plain HTTP sent to the Engine's TLS port: Go's TLS server answers that with a bare
    /// `HTTP/1.0 400`, while the Engine API itself answers in HTTP/1.1.
    PlainHttpToTls,
}

impl KnownFailure {
    /// The failure behind a transport error, found by walking its sources (and the errors
    /// `std::io::Error` wraps, which its `source()` skips) down to a `rustls::Error`.
    pub(crate) fn of_error(e: &(dyn std::error::Error + 'static)) -> Option<KnownFailure> {
        use rustls::{AlertDescription, CertificateError};
        match rustls_error(e)? {
            rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => {
                Some(KnownFailure::ClientCertificateRequired)
            }
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
                Some(KnownFailure::UntrustedCertificate)
            }
            _ => None,
        }
    }

    /// The failure behind an unexpected answer from the Engine.
    pub(crate) fn of_answer(status: http::StatusCode, version: http::Version) -> Option<Self> {
        (status == http::StatusCode::BAD_REQUEST && version == http::Version::HTTP_10)
            .then_some(KnownFailure::PlainHttpToTls)
    }

    /// The fix, as the docker CLI's settings name it.
    pub(crate) fn hint(self) -> &'static str {
        match self {
            KnownFailure::ClientCertificateRequired => {
                "the Engine requires a client certificate: cert.pem and key.pem in \
                 DOCKER_CERT_PATH, or in the Docker context's TLS files"
            }
            KnownFailure::PlainHttpToTls => {
                "the Engine speaks TLS: set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to the \
                 directory holding ca.pem, cert.pem and key.pem"
            }
            KnownFailure::UntrustedCertificate => {
                "the Engine's certificate is not signed by ca.pem in DOCKER_CERT_PATH, nor by a \
                 system root"
            }
        }
    }
}

/// ` (<hint>)` when `failure` is a known one, else nothing: appended to an error message.
pub(crate) fn hint(failure: Option<KnownFailure>) -> String {
    failure
        .map(|f| format!(" ({})", f.hint()))
        .unwrap_or_default()
}

/// The first `rustls::Error` in `e`'s chain.
fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        let wrapped = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref());
        if let Some(r) = wrapped.and_then(|inner| rustls_error(inner)) {
            return Some(r);
        }
        cur = e.source();
    }
    None
}

impl EngineConn {
    pub(crate) fn diag(&self) -> Diag {
        self.diag.clone()
    }
}

impl AsyncRead for EngineConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.io.as_mut().poll_read(cx, buf)
    }
}

impl AsyncWrite for EngineConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.io.as_mut().poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.io.as_mut().poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.io.as_mut().poll_shutdown(cx)
    }
}

/// Connects to the Engine (no request sent yet).
pub(crate) async fn connect(engine: &Engine) -> Result<EngineConn, String> {
    let plain = |io: Pin<Box<dyn Io>>| EngineConn {
        io,
        diag: Diag::default(),
    };
    match &engine.host {
        DockerHost::Unix(path) => {
            let s = tokio::net::UnixStream::connect(path)
                .await
                .map_err(|e| format!("connect to {engine}: {e}"))?;
            Ok(plain(Box::pin(s)))
        }
        DockerHost::Tcp { address, tls } => {
            let tcp = tokio::time::timeout(CONNECT, tokio::net::TcpStream::connect(address))
                .await
                .map_err(|_| {
                    format!(
                        "connect to {engine}: no answer within {} s",
                        CONNECT.as_secs()
                    )
                })?
                .map_err(|e| format!("connect to {engine}: {e}"))?;
            tcp.set_nodelay(true).ok();
            let Some(t) = tls else {
                return Ok(plain(Box::pin(tcp)));
            };
            let client = super::tls::client(t, address).map_err(|e| {
                format!(
                    "{engine}: {}: {}",
                    crate::docker::tls_file_of(e.field),
                    e.reason("TLS")
                )
            })?;
            // The Engine speaks HTTP/1.1 to us (the upgrade to h2c needs it): no `h2` offer.
            let mut config = (*client.config).clone();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            let stream = tokio::time::timeout(CONNECT, connector.connect(client.server_name, tcp))
                .await
                .map_err(|_| format!("TLS handshake with {engine}: no answer"))?
                .map_err(|e| {
                    let known = KnownFailure::of_error(&e);
                    format!("TLS handshake with {engine}: {e}{}", hint(known))
                })?;
            Ok(plain(Box::pin(stream)))
        }
        DockerHost::Ssh { user, host, port } => ssh(engine, user.as_deref(), host, *port),
    }
}

/// `ssh … host docker system dial-stdio`, its stdio as the connection. The process ends
/// with the connection (killed when dropped).
fn ssh(
    engine: &Engine,
    user: Option<&str>,
    host: &str,
    port: Option<u16>,
) -> Result<EngineConn, String> {
    let mut cmd = tokio::process::Command::new("ssh");
    // BatchMode: a password or host-key prompt fails at once instead of waiting for a
    // terminal the provider does not have.
    cmd.args(["-o", "BatchMode=yes", "-o"])
        .arg(format!("ConnectTimeout={}", CONNECT.as_secs()))
        .arg("-T");
    if let Some(u) = user {
        cmd.arg("-l").arg(u);
    }
    if let Some(p) = port {
        cmd.arg("-p").arg(p.to_string());
    }
    cmd.arg("--")
        .arg(host)
        .args(["docker", "system", "dial-stdio"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{engine}: cannot run ssh ({e}); the ssh client must be on PATH"))?;
    let (Some(stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(format!("{engine}: ssh started without its pipes"));
    };
    let buf = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(tokio::sync::Notify::new());
    let (b, d) = (buf.clone(), done.clone());
    tokio::spawn(async move {
        let mut chunk = [0u8; 1024];
        while let Ok(n) = stderr.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            if let Ok(mut b) = b.lock() {
                let room = STDERR_CAP.saturating_sub(b.len());
                b.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
        d.notify_waiters();
        d.notify_one();
    });
    Ok(EngineConn {
        io: Box::pin(SshIo {
            _child: child,
            stdin,
            stdout,
        }),
        diag: Diag {
            stderr: Some((buf, done)),
        },
    })
}

struct SshIo {
    _child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::process::ChildStdout,
}

impl AsyncRead for SshIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for SshIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}

/// `GET <path>` on the Engine's API, its JSON answer (bounded in size), within `deadline`.
pub(crate) async fn get_json(
    engine: &Engine,
    path: &str,
    deadline: Duration,
) -> Result<serde_json::Value, String> {
    let work = async {
        let (resp, _task) = send(engine, http::Method::GET, path).await?;
        let (status, version) = (resp.status(), resp.version());
        let body = http_body_util::Limited::new(resp.into_body(), MAX_JSON)
            .collect()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?
            .to_bytes();
        if !status.is_success() {
            return Err(format!(
                "GET {path}: {status}: {}{}",
                String::from_utf8_lossy(&body).trim(),
                hint(KnownFailure::of_answer(status, version))
            ));
        }
        serde_json::from_slice(&body).map_err(|e| format!("GET {path}: not JSON: {e}"))
    };
    tokio::time::timeout(deadline, work).await.map_err(|_| {
        format!(
            "GET {path} on {engine}: no answer within {} s",
            deadline.as_secs()
        )
    })?
}

/// Sends a body-less request; the answer's head (its body streams on the connection task).
async fn send(
    engine: &Engine,
    method: http::Method,
    path: &str,
) -> Result<
    (
        http::Response<hyper::body::Incoming>,
        super::AbortOnDrop<()>,
    ),
    String,
> {
    let conn = tokio::time::timeout(CONNECT, connect(engine))
        .await
        .map_err(|_| {
            format!(
                "connect to {engine}: no answer within {} s",
                CONNECT.as_secs()
            )
        })??;
    let diag = conn.diag();
    let attempt = async move {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(conn))
            .await
            .map_err(|e| format!("HTTP handshake: {e}"))?;
        let task = super::AbortOnDrop(tokio::spawn(async move {
            let _ = conn.await;
        }));
        let req = http::Request::builder()
            .method(method.clone())
            .uri(path)
            .header(http::header::HOST, "docker")
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("building request: {e}"))?;
        let resp = sender.send_request(req).await.map_err(|e| {
            let known = KnownFailure::of_error(&e);
            let chain = error_chain(&e);
            format!("{method} {path}: {chain}{}", hint(known))
        })?;
        Ok::<_, String>((resp, task))
    };
    match attempt.await {
        Ok(r) => Ok(r),
        Err(e) => Err(diag.explain(e).await),
    }
}

/// `DELETE /images/{name}?force=1`, within 30 s.
pub(crate) async fn delete_image(engine: &Engine, name: &str) -> Result<(), String> {
    let path = format!("/images/{name}?force=1");
    let work = async {
        let (resp, _task) = send(engine, http::Method::DELETE, &path).await?;
        let status = resp.status();
        let body = http_body_util::Limited::new(resp.into_body(), MAX_JSON)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!(
                "DELETE {path}: {status}: {}",
                String::from_utf8_lossy(&body).trim()
            ))
        }
    };
    tokio::time::timeout(Duration::from_secs(30), work)
        .await
        .map_err(|_| format!("DELETE {path} on {engine}: no answer within 30 s"))?
}

/// `GET <path>` into the file `dest`; each read of the body may wait `idle` at most.
pub(crate) async fn download(
    engine: &Engine,
    path: &str,
    dest: &std::path::Path,
    idle: Duration,
) -> Result<(), String> {
    use tokio::io::AsyncWriteExt;
    let (resp, _task) = tokio::time::timeout(idle, send(engine, http::Method::GET, path))
        .await
        .map_err(|_| {
            format!(
                "GET {path} on {engine}: no answer within {} s",
                idle.as_secs()
            )
        })??;
    let status = resp.status();
    let mut body = resp.into_body();
    if !status.is_success() {
        let text = http_body_util::Limited::new(body, MAX_JSON)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Err(format!(
            "GET {path}: {status}: {}",
            String::from_utf8_lossy(&text).trim()
        ));
    }
    let mut file = tokio::fs::File::create(dest)
        .await
        .map_err(|e| format!("{}: {e}", dest.display()))?;
    loop {
        let frame = tokio::time::timeout(idle, body.frame())
            .await
            .map_err(|_| format!("GET {path} on {engine}: idle for {} s", idle.as_secs()))?;
        match frame {
            None => break,
            Some(Err(e)) => return Err(format!("GET {path}: {e}")),
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data() {
                    file.write_all(&data)
                        .await
                        .map_err(|e| format!("{}: {e}", dest.display()))?;
                }
            }
        }
    }
    file.flush().await.map_err(|e| e.to_string())
}

/// A byte stream a connection runs over (unix, TCP, TLS or an ssh child's pipes).
pub(crate) trait Io:
    tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static
{
}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Io for T {}

/// An error and its sources, `: `-separated (tonic and hyper nest the useful part).
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::{hint, KnownFailure};
    use rustls::{AlertDescription, CertificateError};
    use std::io;

    /// An error whose source is `inner`, as hyper wraps the io error it read.
    #[derive(Debug, thiserror::Error)]
    #[error("error reading a body from connection")]
    struct Wrapper(#[source] io::Error);

    fn read_error(e: rustls::Error) -> Wrapper {
        Wrapper(io::Error::new(io::ErrorKind::InvalidData, e))
    }

    #[test]
    fn tls_failures_are_found_inside_the_io_error() {
        let alert = read_error(rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired,
        ));
        assert_eq!(
            KnownFailure::of_error(&alert),
            Some(KnownFailure::ClientCertificateRequired)
        );
        assert!(hint(KnownFailure::of_error(&alert)).contains("cert.pem and key.pem"));
        let issuer = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        assert_eq!(
            KnownFailure::of_error(&issuer),
            Some(KnownFailure::UntrustedCertificate)
        );
        assert!(hint(KnownFailure::of_error(&issuer)).contains("not signed by ca.pem"));
    }

    #[test]
    fn other_failures_get_no_hint() {
        let other = read_error(rustls::Error::AlertReceived(
            AlertDescription::HandshakeFailure,
        ));
        assert_eq!(KnownFailure::of_error(&other), None);
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(KnownFailure::of_error(&refused), None);
        assert_eq!(hint(None), "");
    }

    #[test]
    fn a_bare_http_1_0_bad_request_is_the_tls_port() {
        let known = KnownFailure::of_answer(http::StatusCode::BAD_REQUEST, http::Version::HTTP_10);
        assert_eq!(known, Some(KnownFailure::PlainHttpToTls));
        assert!(hint(known).contains("DOCKER_TLS_VERIFY=1"));
        // The Engine API's own 400s are HTTP/1.1 and mean a bad request, not the wrong port.
        let api = KnownFailure::of_answer(http::StatusCode::BAD_REQUEST, http::Version::HTTP_11);
        assert_eq!(api, None);
    }
}

//! Reaching BuildKit: through the Docker Engine API (`POST /grpc` and
//! `POST /session` upgraded to h2c; the Engine on a unix socket, TCP with or without TLS,
//! or ssh, see `engine_conn`) or a standalone
//! buildkitd (gRPC on unix://, or tcp:// with optional TLS, the session
//! tunnelled through `Control.Session`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bollard_buildkit_proto::moby::buildkit::v1::control_client::ControlClient;
use bollard_buildkit_proto::moby::buildkit::v1::{BytesMessage, InfoRequest};
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Uri};

use super::engine_conn::{self, error_chain, Io};
use super::session::{self, EXPOSED_METHODS};
use super::{AbortOnDrop, Endpoint};
use crate::docker::Engine;

pub(crate) type Control = ControlClient<Channel>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Largest message we accept from BuildKit's control API (status updates
/// can be large).
const MAX_CONTROL_MSG: usize = 64 << 20;

/// The session's identity, sent as `X-Docker-Expose-Session-*` headers.
pub(crate) struct SessionMeta {
    pub id: String,
    pub name: String,
    pub shared_key: String,
}

impl SessionMeta {
    fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![
            ("X-Docker-Expose-Session-Uuid", self.id.clone()),
            ("X-Docker-Expose-Session-Name", self.name.clone()),
            ("X-Docker-Expose-Session-Sharedkey", self.shared_key.clone()),
        ];
        for m in EXPOSED_METHODS {
            h.push(("X-Docker-Expose-Session-Grpc-Method", m.to_string()));
        }
        h
    }
}

/// `POST <path>` on the Engine's API with `Upgrade: h2c`; returns the raw connection after
/// `101 Switching Protocols`.
async fn engine_upgrade(
    engine: &Engine,
    path: &str,
    headers: &[(&'static str, String)],
) -> Result<hyper::upgrade::Upgraded, String> {
    // An Engine that accepts the connection but never answers must not hold a build forever.
    match tokio::time::timeout(UPGRADE_DEADLINE, engine_upgrade_once(engine, path, headers)).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "POST {path} on {engine}: no answer within {} s",
            UPGRADE_DEADLINE.as_secs()
        )),
    }
}

const UPGRADE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);

async fn engine_upgrade_once(
    engine: &Engine,
    path: &str,
    headers: &[(&'static str, String)],
) -> Result<hyper::upgrade::Upgraded, String> {
    let conn = engine_conn::connect(engine).await?;
    let diag = conn.diag();
    let attempt = async move {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(conn))
            .await
            .map_err(|e| format!("HTTP handshake: {e}"))?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!("engine connection ended: {e}");
            }
        });
        let mut req = http::Request::post(path)
            .header(http::header::HOST, "docker")
            .header(http::header::CONNECTION, "Upgrade")
            .header(http::header::UPGRADE, "h2c");
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let req = req
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("building request: {e}"))?;
        let resp = sender.send_request(req).await.map_err(|e| {
            let known = engine_conn::KnownFailure::of_error(&e);
            format!(
                "POST {path}: {}{}",
                error_chain(&e),
                engine_conn::hint(known)
            )
        })?;
        if resp.status() != http::StatusCode::SWITCHING_PROTOCOLS {
            let (status, version) = (resp.status(), resp.version());
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_string())
                .unwrap_or_default();
            let known = engine_conn::KnownFailure::of_answer(status, version);
            return Err(format!(
                "POST {path}: expected 101 Switching Protocols, got {status}: {body}{}",
                engine_conn::hint(known)
            ));
        }
        hyper::upgrade::on(resp)
            .await
            .map_err(|e| format!("POST {path}: upgrade failed: {e}"))
    };
    match attempt.await {
        Ok(io) => Ok(io),
        Err(e) => Err(diag.explain(e).await),
    }
}

/// `POST /images/load` on the Engine's API with the tarball at `tar` (an OCI archive;
/// the containerd image store loads every platform of it). The Engine's answer is a stream
/// of JSON messages; one carrying an error fails the load. Returns what it loaded.
pub(crate) async fn engine_load(engine: &Engine, tar: &Path) -> Result<Vec<String>, String> {
    use tokio::io::AsyncReadExt;
    let stream = tokio::time::timeout(UPGRADE_DEADLINE, engine_conn::connect(engine))
        .await
        .map_err(|_| {
            format!(
                "connect to {engine}: no answer within {} s",
                UPGRADE_DEADLINE.as_secs()
            )
        })??;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    let _conn = AbortOnDrop(tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("engine connection ended: {e}");
        }
    }));
    let mut file = tokio::fs::File::open(tar)
        .await
        .map_err(|e| format!("{}: {e}", tar.display()))?;
    let (tx, rx) =
        tokio::sync::mpsc::channel::<Result<hyper::body::Frame<Bytes>, std::io::Error>>(4);
    let _reader = AbortOnDrop(tokio::spawn(async move {
        loop {
            let mut buf = vec![0u8; 256 << 10];
            match file.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx
                        .send(Ok(hyper::body::Frame::data(buf.into())))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    break;
                }
            }
        }
    }));
    let body = http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    let req = http::Request::post("/images/load?quiet=1")
        .header(http::header::HOST, "docker")
        .header(http::header::CONTENT_TYPE, "application/x-tar")
        .body(body)
        .map_err(|e| format!("building request: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("POST /images/load: {e}"))?;
    let status = resp.status();
    let text = resp
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .map_err(|e| format!("POST /images/load: {e}"))?;
    if !status.is_success() {
        return Err(format!("POST /images/load: {status}: {}", text.trim()));
    }
    let mut loaded = Vec::new();
    let messages = serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>();
    for m in messages {
        let m = m.map_err(|e| format!("POST /images/load: unreadable answer: {e}"))?;
        let error = m
            .pointer("/errorDetail/message")
            .or_else(|| m.get("error"))
            .and_then(|v| v.as_str());
        if let Some(e) = error {
            return Err(format!("the Engine refused the image: {e}"));
        }
        if let Some(s) = m.get("stream").and_then(|v| v.as_str()) {
            loaded.extend(
                s.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_owned),
            );
        }
    }
    Ok(loaded)
}

/// A TCP connection to buildkitd, wrapped in TLS when configured. TLS is done here rather
/// than by tonic so one rustls configuration (aws-lc-rs) serves every TLS client we have.
async fn tcp_connect(
    address: &str,
    tls: Option<&super::tls::TlsClient>,
    first_error: FirstError,
) -> Result<TokioIo<Box<dyn Io>>, BoxError> {
    let tcp = tokio::time::timeout(UPGRADE_DEADLINE, tokio::net::TcpStream::connect(address))
        .await
        .map_err(|_| {
            format!(
                "connect to {address}: no answer within {} s",
                UPGRADE_DEADLINE.as_secs()
            )
        })??;
    tcp.set_nodelay(true)?;
    let io: Box<dyn Io> = match tls {
        None => Box::new(tcp),
        Some(t) => {
            let connector = tokio_rustls::TlsConnector::from(t.config.clone());
            let stream = connector
                .connect(t.server_name.clone(), tcp)
                .await
                .map_err(|e| format!("TLS handshake with {address}: {e}"))?;
            Box::new(Recording {
                inner: stream,
                first_error,
            })
        }
    };
    Ok(TokioIo::new(io))
}

/// The first I/O error a connection met (a TLS alert such as `CertificateRequired`).
type FirstError = Arc<std::sync::Mutex<Option<String>>>;

/// A stream that remembers its first error in a [`FirstError`].
struct Recording<T> {
    inner: T,
    first_error: FirstError,
}

impl<T> Recording<T> {
    fn note<R>(&self, r: std::io::Result<R>) -> std::io::Result<R> {
        if let Err(e) = &r {
            if let Ok(mut slot) = self.first_error.lock() {
                slot.get_or_insert_with(|| e.to_string());
            }
        }
        r
    }
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Recording<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        r.map(|r| self.note(r))
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Recording<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        r.map(|r| self.note(r))
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_flush(cx);
        r.map(|r| self.note(r))
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A gRPC client for BuildKit's Control service at `endpoint`.
pub(crate) async fn connect_control(endpoint: &Endpoint) -> Result<Control, String> {
    let base = tonic::transport::Endpoint::from_static("http://buildkit.invalid")
        .connect_timeout(std::time::Duration::from_secs(20));
    let first_tls_error = FirstError::default();
    let channel = match endpoint {
        Endpoint::DockerEngine(engine) => {
            let engine = engine.clone();
            base.connect_with_connector(tower::service_fn(move |_: Uri| {
                let engine = engine.clone();
                async move {
                    engine_upgrade(&engine, "/grpc", &[])
                        .await
                        .map_err(BoxError::from)
                }
            }))
            .await
        }
        Endpoint::Unix(path) => {
            let path: PathBuf = path.clone();
            base.connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    UnixStream::connect(&path)
                        .await
                        .map(TokioIo::new)
                        .map_err(BoxError::from)
                }
            }))
            .await
        }
        Endpoint::Tcp { address, tls } => {
            let address = address.clone();
            let tls = match tls {
                Some(t) => Some(Arc::new(
                    super::tls::client(t, &address).map_err(|e| e.to_string())?,
                )),
                None => None,
            };
            let first_error = first_tls_error.clone();
            base.connect_with_connector(tower::service_fn(move |_: Uri| {
                let (address, tls, first_error) =
                    (address.clone(), tls.clone(), first_error.clone());
                async move { tcp_connect(&address, tls.as_deref(), first_error).await }
            }))
            .await
        }
    }
    // A refused client certificate may already break the connection attempt.
    .map_err(|e| tls_refusal(&first_tls_error, endpoint).unwrap_or_else(|| error_chain(&e)))?;
    let mut control = ControlClient::new(channel)
        .max_decoding_message_size(MAX_CONTROL_MSG)
        .max_encoding_message_size(MAX_CONTROL_MSG);
    if let Endpoint::Tcp { tls: Some(_), .. } = endpoint {
        // With TLS 1.3 a server that refuses our client certificate says so only after the
        // handshake; ask once now so that refusal is reported as such, not as a failed solve.
        let probe = control.info(InfoRequest {});
        match tokio::time::timeout(std::time::Duration::from_secs(20), probe).await {
            Ok(Ok(_)) => {}
            Ok(Err(status)) => {
                return Err(tls_refusal(&first_tls_error, endpoint).unwrap_or_else(|| {
                    let why = match std::error::Error::source(&status) {
                        Some(source) => error_chain(source),
                        None => status.message().to_string(),
                    };
                    format!(
                        "buildkitd refused the TLS connection: {why}{}",
                        missing_cert_hint(endpoint)
                    )
                }));
            }
            Err(_) => return Err("buildkitd did not answer within 20 s".into()),
        }
    }
    Ok(control)
}

/// The refusal the TLS connection recorded, if it met one: the alert says why, where hyper
/// may report only that the connection went away.
fn tls_refusal(first: &FirstError, endpoint: &Endpoint) -> Option<String> {
    let seen = first.lock().ok()?.clone()?;
    Some(format!(
        "buildkitd refused the TLS connection: {seen}{}",
        missing_cert_hint(endpoint)
    ))
}

/// Why a TLS buildkitd may hang up on us when we offered no client certificate.
fn missing_cert_hint(endpoint: &Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Tcp { tls: Some(t), .. } if t.cert.is_none() => {
            " (no client certificate was offered: set builderTls.cert and builderTls.key \
             if buildkitd requires one)"
        }
        _ => "",
    }
}

/// A gRPC status with its message and the transport errors under it.
pub(crate) fn status_chain(status: &tonic::Status) -> String {
    let mut msg = status.message().to_string();
    if let Some(source) = std::error::Error::source(status) {
        let more = error_chain(source);
        if !msg.contains(&more) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&more);
        }
    }
    if msg.is_empty() {
        msg = format!("{:?}", status.code());
    }
    msg
}

/// Opens the session and serves `services` on it in the background. The
/// session lasts until the returned guard is dropped (or BuildKit hangs up).
/// How the session connection is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionVia {
    /// `POST /session` upgraded to h2c (Docker Engine only).
    EngineUpgrade,
    /// Tunnelled through the `Control.Session` bidi stream (buildkitd; the
    /// Engine's embedded BuildKit answers it too).
    ControlStream,
}

impl SessionVia {
    pub(crate) fn default_for(endpoint: &Endpoint) -> Self {
        match endpoint {
            Endpoint::DockerEngine(_) => SessionVia::EngineUpgrade,
            Endpoint::Unix(_) | Endpoint::Tcp { .. } => SessionVia::ControlStream,
        }
    }
}

pub(crate) async fn start_session(
    endpoint: &Endpoint,
    via: SessionVia,
    control: &Control,
    meta: &SessionMeta,
    services: session::SessionServices,
) -> Result<AbortOnDrop<()>, String> {
    let routes = services.routes();
    match (endpoint, via) {
        (Endpoint::DockerEngine(engine), SessionVia::EngineUpgrade) => {
            let io = engine_upgrade(engine, "/session", &meta.headers()).await?;
            Ok(AbortOnDrop(tokio::spawn(async move {
                if let Err(e) = session::serve(io, routes).await {
                    tracing::debug!("session connection ended: {e}");
                }
            })))
        }
        (_, SessionVia::EngineUpgrade) => {
            Err("a session over POST /session needs the Docker Engine".to_string())
        }
        (_, SessionVia::ControlStream) => {
            // The session's h2 connection is tunnelled as raw bytes through
            // the Control.Session bidi stream; the headers go as metadata.
            let (ours, theirs) = tokio::io::duplex(256 * 1024);
            let (rd, mut wr) = tokio::io::split(ours);
            let outbound = tokio_util::io::ReaderStream::new(rd)
                .take_while(|r| futures::future::ready(r.is_ok()))
                .filter_map(|r| async move { r.ok().map(|b| BytesMessage { data: b.to_vec() }) });
            let mut req = tonic::Request::new(outbound);
            for (k, v) in meta.headers() {
                let key =
                    tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
                        .map_err(|e| format!("session header {k}: {e}"))?;
                let val = v.parse().map_err(|e| format!("session header {k}: {e}"))?;
                req.metadata_mut().append(key, val);
            }
            let mut control = control.clone();
            Ok(AbortOnDrop(tokio::spawn(async move {
                let server = AbortOnDrop(tokio::spawn(async move {
                    if let Err(e) = session::serve(TokioIo::new(theirs), routes).await {
                        tracing::debug!("session connection ended: {e}");
                    }
                }));
                match control.session(req).await {
                    Ok(resp) => {
                        let mut inbound = resp.into_inner();
                        while let Ok(Some(msg)) = inbound.message().await {
                            if wr.write_all(&msg.data).await.is_err() {
                                break;
                            }
                        }
                        let _ = wr.shutdown().await;
                    }
                    Err(e) => tracing::warn!("BuildKit session stream failed: {e}"),
                }
                drop(server);
            })))
        }
    }
}

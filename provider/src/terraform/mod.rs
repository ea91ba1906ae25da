//! The Terraform front: plugin protocol 6 over go-plugin's gRPC transport with AutoMTLS.
//! The same binary serves it when Terraform starts it (`TF_PLUGIN_MAGIC_COOKIE`).

pub mod data_source;
pub mod diagnostics;
pub mod identity;
pub mod schema;
pub mod server;
pub mod tls;
pub mod value;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio_stream::wrappers::ReceiverStream;

#[allow(clippy::all, clippy::pedantic, dead_code)]
pub mod proto {
    tonic::include_proto!("tfplugin6");
}

#[allow(clippy::all, clippy::pedantic, dead_code)]
pub mod plugin {
    tonic::include_proto!("plugin");
}

/// go-plugin's handshake for Terraform providers.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
const PROTOCOL_VERSION: u32 = 6;

/// Terraform's client accepts up to 256 MiB per message; so do we.
const MAX_MESSAGE: usize = 256 * 1024 * 1024;

/// Whether Terraform (or another go-plugin client) started this process.
pub fn started_by_terraform() -> bool {
    std::env::var_os(MAGIC_COOKIE_KEY).is_some()
}

/// A TLS connection handed to tonic.
struct Conn(tokio_rustls::server::TlsStream<TcpStream>);

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

/// go-plugin's controller: Terraform asks the plugin to stop through it.
struct Controller(Arc<Notify>);

#[tonic::async_trait]
impl plugin::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(
        &self,
        _: tonic::Request<plugin::Empty>,
    ) -> Result<tonic::Response<plugin::Empty>, tonic::Status> {
        self.0.notify_one();
        Ok(tonic::Response::new(plugin::Empty {}))
    }
}

/// Checks the handshake environment, prints the handshake line and serves until Terraform
/// stops the plugin.
pub async fn serve() -> anyhow::Result<()> {
    if std::env::var(MAGIC_COOKIE_KEY).as_deref() != Ok(MAGIC_COOKIE_VALUE) {
        anyhow::bail!(
            "this binary is a plugin: Terraform runs it; it is not meant to be run directly"
        );
    }
    if let Ok(versions) = std::env::var("PLUGIN_PROTOCOL_VERSIONS") {
        if !versions
            .split(',')
            .any(|v| v.trim() == PROTOCOL_VERSION.to_string())
        {
            anyhow::bail!(
                "Terraform offers plugin protocol versions {versions}; this provider speaks 6 (Terraform 1.0 or later)"
            );
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let tls = match std::env::var("PLUGIN_CLIENT_CERT") {
        Ok(pem) if !pem.trim().is_empty() => Some(tls::server(&pem)?),
        _ => None,
    };

    let stop = Arc::new(Notify::new());
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;
    let provider = proto::provider_server::ProviderServer::new(server::Provider::new())
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let router = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(plugin::grpc_controller_server::GrpcControllerServer::new(
            Controller(stop.clone()),
        ))
        .add_service(provider);

    {
        use std::io::Write;
        let cert = tls.as_ref().map(|t| t.cert_line.as_str()).unwrap_or("");
        let mut out = std::io::stdout().lock();
        let mut line = format!("1|{PROTOCOL_VERSION}|tcp|{addr}|grpc");
        if !cert.is_empty() {
            line.push('|');
            line.push_str(cert);
        }
        writeln!(out, "{line}")?;
        out.flush()?;
    }

    let shutdown = shutdown(stop);
    match tls {
        None => {
            router
                .serve_with_incoming_shutdown(crate::net::nodelay(listener), shutdown)
                .await?
        }
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.config);
            let (tx, rx) = mpsc::channel::<std::io::Result<Conn>>(16);
            tokio::spawn(async move {
                loop {
                    let Ok((tcp, peer)) = listener.accept().await else {
                        continue;
                    };
                    let _ = tcp.set_nodelay(true);
                    let acceptor = acceptor.clone();
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        match acceptor.accept(tcp).await {
                            Ok(s) => {
                                let _ = tx.send(Ok(Conn(s))).await;
                            }
                            Err(e) => tracing::warn!("TLS handshake with {peer} refused: {e}"),
                        }
                    });
                }
            });
            router
                .serve_with_incoming_shutdown(ReceiverStream::new(rx), shutdown)
                .await?
        }
    }
    Ok(())
}

/// Stops on the controller's Shutdown or SIGTERM. Interrupts are Terraform's to handle
/// (it forwards them as StopProvider), as go-plugin plugins do.
async fn shutdown(stop: Arc<Notify>) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler installs");
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .expect("a SIGINT handler installs");
    // A plugin whose Terraform died (crash, kill -9) never hears Shutdown: stop when the
    // parent process changes.
    let parent = std::os::unix::process::parent_id();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if std::os::unix::process::parent_id() != parent {
                    tracing::warn!("Terraform went away; stopping");
                    return;
                }
            }
            _ = stop.notified() => return,
            _ = term.recv() => return,
            _ = int.recv() => tracing::debug!("interrupt ignored; Terraform stops the provider"),
        }
    }
}

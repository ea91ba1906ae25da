//! The Pulumi front: the `ResourceProvider` gRPC service the engine talks to.

pub mod engine;
pub mod server;
pub mod value;

use tokio::net::TcpListener;

use pulumi_gestalt_proto::pulumi::pulumirpc::resource_provider_server::ResourceProviderServer;

/// Gives the engine up to this much per message (schemas, large states).
const MAX_MESSAGE: usize = 256 * 1024 * 1024;

/// Binds a free loopback port, prints it as the first and only line of stdout, and serves
/// until the process is told to stop.
pub async fn serve(engine_address: Option<String>) -> anyhow::Result<()> {
    let engine = engine::Engine::default();
    if let Some(addr) = engine_address.as_deref() {
        engine.connect(addr);
    }
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{port}")?;
        out.flush()?;
    }
    let service = ResourceProviderServer::new(server::Provider::new(engine))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(crate::net::nodelay(listener), shutdown())
        .await?;
    Ok(())
}

async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler installs");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

//! The services we serve to BuildKit over the session connection: health,
//! registry credentials, secrets, SSH agents, local directories, the files and
//! directories exporters send back, and content stores (local caches, OCI layouts).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bollard_buildkit_proto::health::health_check_response::ServingStatus;
use bollard_buildkit_proto::health::health_server::{Health, HealthServer};
use bollard_buildkit_proto::health::{
    HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse,
};
use bollard_buildkit_proto::moby::buildkit::secrets::v1::secrets_server::{Secrets, SecretsServer};
use bollard_buildkit_proto::moby::buildkit::secrets::v1::{GetSecretRequest, GetSecretResponse};
use bollard_buildkit_proto::moby::filesync::v1::auth_server::{Auth, AuthServer};
use bollard_buildkit_proto::moby::filesync::v1::file_sync_server::FileSyncServer;
use bollard_buildkit_proto::moby::filesync::v1::{
    CredentialsRequest, CredentialsResponse, FetchTokenRequest, FetchTokenResponse,
    GetTokenAuthorityRequest, GetTokenAuthorityResponse, VerifyTokenAuthorityRequest,
    VerifyTokenAuthorityResponse,
};
use bollard_buildkit_proto::moby::sshforward::v1::ssh_server::{Ssh, SshServer};
use bollard_buildkit_proto::moby::sshforward::v1::{
    BytesMessage, CheckAgentRequest, CheckAgentResponse,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status};

use super::content::{ContentService, Layout};
use super::filesend::{FileSendServer, Receipts};
use super::filesync::{DirSource, FileSyncService};
use super::RegistryAuth;

/// The gRPC methods we announce in the session headers.
pub(crate) const EXPOSED_METHODS: &[&str] = &[
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/moby.filesync.v1.FileSync/DiffCopy",
    "/moby.filesync.v1.FileSend/DiffCopy",
    "/moby.filesync.v1.Auth/Credentials",
    "/moby.filesync.v1.Auth/FetchToken",
    "/moby.filesync.v1.Auth/GetTokenAuthority",
    "/moby.filesync.v1.Auth/VerifyTokenAuthority",
    "/moby.buildkit.secrets.v1.Secrets/GetSecret",
    "/moby.sshforward.v1.SSH/CheckAgent",
    "/moby.sshforward.v1.SSH/ForwardAgent",
    "/containerd.services.content.v1.Content/Info",
    "/containerd.services.content.v1.Content/Update",
    "/containerd.services.content.v1.Content/List",
    "/containerd.services.content.v1.Content/Delete",
    "/containerd.services.content.v1.Content/Read",
    "/containerd.services.content.v1.Content/Status",
    "/containerd.services.content.v1.Content/ListStatuses",
    "/containerd.services.content.v1.Content/Write",
    "/containerd.services.content.v1.Content/Abort",
];

/// Session message size limits, like buildkit's defaults (16 MiB).
const MAX_MSG: usize = 16 << 20;

struct HealthService;

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        Ok(Response::new(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }))
    }

    async fn list(
        &self,
        _request: Request<HealthListRequest>,
    ) -> Result<Response<HealthListResponse>, Status> {
        Err(Status::unimplemented("list"))
    }

    type WatchStream = ReceiverStream<Result<HealthCheckResponse, Status>>;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tokio::spawn(async move {
            let _ = tx
                .send(Ok(HealthCheckResponse {
                    status: ServingStatus::Serving as i32,
                }))
                .await;
            // keep the stream open until the peer goes away
            tx.closed().await;
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

struct AuthService {
    auth: Arc<dyn RegistryAuth>,
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn credentials(
        &self,
        request: Request<CredentialsRequest>,
    ) -> Result<Response<CredentialsResponse>, Status> {
        let host = request.into_inner().host;
        let resp = match self.auth.basic(&host).await {
            Some((username, secret)) => {
                tracing::debug!(%host, "buildkit asked for registry credentials: supplied");
                CredentialsResponse { username, secret }
            }
            None => {
                tracing::debug!(%host, "buildkit asked for registry credentials: anonymous");
                CredentialsResponse::default()
            }
        };
        Ok(Response::new(resp))
    }

    async fn fetch_token(
        &self,
        _request: Request<FetchTokenRequest>,
    ) -> Result<Response<FetchTokenResponse>, Status> {
        Err(Status::unimplemented("fetch token: use basic credentials"))
    }

    async fn get_token_authority(
        &self,
        _request: Request<GetTokenAuthorityRequest>,
    ) -> Result<Response<GetTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented("no token authority"))
    }

    async fn verify_token_authority(
        &self,
        _request: Request<VerifyTokenAuthorityRequest>,
    ) -> Result<Response<VerifyTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented("no token authority"))
    }
}

struct SecretsService {
    secrets: Arc<BTreeMap<String, Vec<u8>>>,
}

#[tonic::async_trait]
impl Secrets for SecretsService {
    async fn get_secret(
        &self,
        request: Request<GetSecretRequest>,
    ) -> Result<Response<GetSecretResponse>, Status> {
        let id = request.into_inner().id;
        match self.secrets.get(&id) {
            // never log or echo the value
            Some(data) => Ok(Response::new(GetSecretResponse { data: data.clone() })),
            None => Err(Status::not_found(format!("secret {id} not found"))),
        }
    }
}

/// SSH agents by id (`RUN --mount=type=ssh,id=<id>`; `default` without one): each
/// forwarded connection is a new connection to the agent's socket, bytes relayed both ways.
struct SshService {
    agents: Arc<BTreeMap<String, PathBuf>>,
}

/// The metadata key BuildKit names the agent with (sshforward.KeySSHID).
const SSH_ID_KEY: &str = "buildkit.ssh.id";

impl SshService {
    fn socket(&self, id: &str) -> Result<&PathBuf, Status> {
        let id = if id.is_empty() { "default" } else { id };
        self.agents.get(id).ok_or_else(|| {
            Status::not_found(format!(
                "no SSH agent {id:?} is configured for this build (Image input ssh)"
            ))
        })
    }
}

#[tonic::async_trait]
impl Ssh for SshService {
    async fn check_agent(
        &self,
        request: Request<CheckAgentRequest>,
    ) -> Result<Response<CheckAgentResponse>, Status> {
        self.socket(&request.into_inner().id)?;
        Ok(Response::new(CheckAgentResponse {}))
    }

    type ForwardAgentStream = ReceiverStream<Result<BytesMessage, Status>>;

    async fn forward_agent(
        &self,
        request: Request<tonic::Streaming<BytesMessage>>,
    ) -> Result<Response<Self::ForwardAgentStream>, Status> {
        let id = request
            .metadata()
            .get(SSH_ID_KEY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let path = self.socket(&id)?.clone();
        let agent = tokio::net::UnixStream::connect(&path)
            .await
            .map_err(|e| Status::unavailable(format!("SSH agent {}: {e}", path.display())))?;
        let (mut from_agent, mut to_agent) = agent.into_split();
        let mut from_build = request.into_inner();
        tokio::spawn(async move {
            while let Some(Ok(m)) = from_build.next().await {
                if to_agent.write_all(&m.data).await.is_err() {
                    break;
                }
            }
            let _ = to_agent.shutdown().await;
        });
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 << 10];
            loop {
                match from_agent.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let m = BytesMessage {
                            data: buf[..n].to_vec(),
                        };
                        if tx.send(Ok(m)).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Everything the session serves for one build.
pub(crate) struct SessionServices {
    pub dirs: BTreeMap<String, DirSource>,
    pub auth: Arc<dyn RegistryAuth>,
    pub secrets: BTreeMap<String, Vec<u8>>,
    /// SSH agent sockets by id.
    pub ssh: BTreeMap<String, PathBuf>,
    /// Where file and directory exporters write (none: BuildKit's calls are refused).
    pub exports: Receipts,
    /// Content stores by id (local caches, OCI layout exports); none: BuildKit's calls
    /// are refused as naming no store.
    pub content: BTreeMap<String, Layout>,
}

impl SessionServices {
    pub(crate) fn routes(self) -> tonic::service::Routes {
        let filesync = FileSyncServer::new(FileSyncService {
            dirs: Arc::new(self.dirs),
        })
        .max_decoding_message_size(MAX_MSG)
        .max_encoding_message_size(MAX_MSG);
        let auth = AuthServer::new(AuthService { auth: self.auth });
        let secrets = SecretsServer::new(SecretsService {
            secrets: Arc::new(self.secrets),
        })
        .max_decoding_message_size(MAX_MSG)
        .max_encoding_message_size(MAX_MSG);
        let ssh = SshServer::new(SshService {
            agents: Arc::new(self.ssh),
        });
        let filesend = FileSendServer::new(self.exports, MAX_MSG);
        let content = ContentService::new(self.content).server(MAX_MSG);
        tonic::service::Routes::new(HealthServer::new(HealthService))
            .add_service(filesync)
            .add_service(filesend)
            .add_service(auth)
            .add_service(secrets)
            .add_service(ssh)
            .add_service(content)
    }
}

/// Serves `routes` as an HTTP/2 (h2c) server on `io` until the connection
/// ends. BuildKit is the client on this connection.
pub(crate) async fn serve<I>(io: I, routes: tonic::service::Routes) -> Result<(), String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = hyper_util::service::TowerToHyperService::new(routes);
    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
        .max_concurrent_streams(None)
        .serve_connection(io, svc)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposed_methods_are_served() {
        // each exposed service name must be one of ours
        for m in EXPOSED_METHODS {
            let svc = m.trim_start_matches('/').split('/').next().unwrap();
            assert!(
                [
                    "grpc.health.v1.Health",
                    "moby.filesync.v1.FileSync",
                    "moby.filesync.v1.FileSend",
                    "moby.filesync.v1.Auth",
                    "moby.buildkit.secrets.v1.Secrets",
                    "moby.sshforward.v1.SSH",
                    "containerd.services.content.v1.Content"
                ]
                .contains(&svc),
                "{m}"
            );
        }
    }
}

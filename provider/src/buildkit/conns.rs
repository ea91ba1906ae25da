//! One BuildKit control connection per endpoint per provider process: every Image of a stack
//! that builds on a node multiplexes its solves, status streams and (for buildkitd) session
//! tunnels over that node's one HTTP/2 connection, instead of each opening its own. The
//! channel reconnects by itself after the node restarts; a connection that cannot be made is
//! not kept, so the next build tries again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bollard_buildkit_proto::moby::buildkit::v1::InfoRequest;
use tokio::sync::OnceCell;

use super::transport::{self, Control};
use super::Endpoint;

/// Longest wait for a new connection (TCP or socket connect, TLS, the Engine's upgrade).
const CONNECT_DEADLINE: Duration = Duration::from_secs(20);

type Cell = Arc<OnceCell<Control>>;

fn cache() -> &'static Mutex<HashMap<String, Cell>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Cell>>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

/// What tells two endpoints apart: the address and the TLS settings (secrets are `***` in
/// `Debug`, and the certificates beside them differ anyway). And the runtime: a channel's
/// background task lives on the runtime that made it, so a channel is shared only within it
/// (the plugin has one; tests and embedders may run several, one after another or at once).
fn key(endpoint: &Endpoint) -> String {
    let runtime = tokio::runtime::Handle::try_current().map(|h| h.id().to_string());
    format!("{}|{endpoint:?}", runtime.unwrap_or_default())
}

/// The control client of `endpoint`: the cached one, or a new connection made once however
/// many builds ask at the same time.
pub(crate) async fn control(endpoint: &Endpoint) -> Result<Control, String> {
    let k = key(endpoint);
    let cell = {
        let mut map = cache().lock().unwrap_or_else(|p| p.into_inner());
        map.entry(k.clone()).or_default().clone()
    };
    let made = cell
        .get_or_try_init(|| async {
            match tokio::time::timeout(CONNECT_DEADLINE, transport::connect_control(endpoint)).await
            {
                Ok(r) => r,
                Err(_) => Err(format!(
                    "no connection within {} s",
                    CONNECT_DEADLINE.as_secs()
                )),
            }
        })
        .await
        .cloned();
    if made.is_err() {
        forget_cell(&k, &cell);
    }
    made
}

/// Drops the cached connection of `endpoint` (its node went away): the next build
/// connects anew.
pub(crate) fn forget(endpoint: &Endpoint) {
    let mut map = cache().lock().unwrap_or_else(|p| p.into_inner());
    map.remove(&key(endpoint));
}

fn forget_cell(k: &str, cell: &Cell) {
    let mut map = cache().lock().unwrap_or_else(|p| p.into_inner());
    if map.get(k).is_some_and(|c| Arc::ptr_eq(c, cell)) {
        map.remove(k);
    }
}

/// Is the node there and answering? BuildKit's `Info` over the (cached) control connection,
/// the whole within `deadline`. A failed probe drops the cached connection.
pub async fn probe(endpoint: &Endpoint, deadline: Duration) -> Result<(), String> {
    let attempt = async {
        let mut control = control(endpoint).await?;
        control
            .info(InfoRequest {})
            .await
            .map(|_| ())
            .map_err(|s| format!("Info: {}", s.message()))
    };
    let r = match tokio::time::timeout(deadline, attempt).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} ms", deadline.as_millis())),
    };
    if r.is_err() {
        forget(endpoint);
    }
    r
}

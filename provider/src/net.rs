//! Accepting gRPC connections from the engine.

use tokio::net::{TcpListener, TcpStream};
use tokio_stream::{wrappers::TcpListenerStream, Stream, StreamExt};

/// Incoming connections with Nagle's algorithm off: engines make many small request/answer
/// round trips, and Nagle plus delayed ACKs would add ~40 ms to each.
pub fn nodelay(listener: TcpListener) -> impl Stream<Item = std::io::Result<TcpStream>> {
    TcpListenerStream::new(listener).map(|conn| {
        conn.inspect(|s| {
            let _ = s.set_nodelay(true);
        })
    })
}

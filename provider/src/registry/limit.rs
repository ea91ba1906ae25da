//! How many requests the process has in flight to one registry host.
//!
//! A cold client that starts 16 requests at once to a host opens 16 TCP+TLS connections:
//! hyper-util's pool learns that a host speaks HTTP/2 only when a connection's ALPN says
//! so, and every request that found no connection before that starts its own (all but
//! one are then dropped). So the first request to a host goes alone; its answer says which
//! HTTP version the host speaks, and then the bound opens: [`H2_STREAMS`] streams over
//! the one HTTP/2 connection, or [`PER_HOST`] HTTP/1.1 connections. The probe costs one
//! round trip once per host and process; it saves the connections and TLS handshakes.

use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Requests in flight to a host that speaks HTTP/1.1 (each one a connection), or whose
/// version no answer has told yet.
pub(super) const PER_HOST: usize = 32;
/// Requests in flight to a host that speaks HTTP/2: streams of its one connection.
/// Servers allow 100 (nginx 128, Go 250); more are queued by the h2 client anyway.
pub(super) const H2_STREAMS: usize = 100;

/// The bound of one host: a semaphore that starts with one permit (the probe).
pub(super) struct HostLimit {
    slots: Arc<Semaphore>,
    size: Mutex<usize>,
}

impl HostLimit {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(HostLimit {
            slots: Arc::new(Semaphore::new(1)),
            size: Mutex::new(1),
        })
    }

    /// A turn to send a request (held until its answer is read).
    pub(super) async fn acquire(self: Arc<Self>) -> HostPermit {
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        HostPermit {
            _permit: permit,
            limit: self,
        }
    }

    fn raise_to(&self, n: usize) {
        let mut size = self.size.lock().unwrap_or_else(|e| e.into_inner());
        if n > *size {
            self.slots.add_permits(n - *size);
            *size = n;
        }
    }
}

/// A turn to send one request to a host.
pub(crate) struct HostPermit {
    _permit: OwnedSemaphorePermit,
    limit: Arc<HostLimit>,
}

impl HostPermit {
    /// The host answered: its HTTP version sets the bound.
    pub(super) fn answered(&self, version: reqwest::Version) {
        self.limit.raise_to(if version == reqwest::Version::HTTP_2 {
            H2_STREAMS
        } else {
            PER_HOST
        });
    }
}

impl Drop for HostPermit {
    /// A request that failed, or whose answer was not looked at, still lets the others go
    /// (with the HTTP/1.1 bound, the bound of a host not known to speak HTTP/2).
    fn drop(&mut self) {
        self.limit.raise_to(PER_HOST);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_request_until_an_answer_then_the_protocol_bound() {
        let limit = HostLimit::new();
        let probe = limit.clone().acquire().await;
        assert_eq!(limit.slots.available_permits(), 0);
        probe.answered(reqwest::Version::HTTP_2);
        assert_eq!(limit.slots.available_permits(), H2_STREAMS - 1);
        drop(probe);
        assert_eq!(limit.slots.available_permits(), H2_STREAMS);

        let h1 = HostLimit::new();
        let probe = h1.clone().acquire().await;
        probe.answered(reqwest::Version::HTTP_11);
        drop(probe);
        assert_eq!(h1.slots.available_permits(), PER_HOST);

        // A failed probe opens the HTTP/1.1 bound; an HTTP/2 answer later raises it.
        let failed = HostLimit::new();
        drop(failed.clone().acquire().await);
        assert_eq!(failed.slots.available_permits(), PER_HOST);
        failed
            .clone()
            .acquire()
            .await
            .answered(reqwest::Version::HTTP_2);
        assert_eq!(failed.slots.available_permits(), H2_STREAMS);
    }
}

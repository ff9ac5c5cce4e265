//! A client's transport, whatever it is: the [`Client`] trait the sessions talk to, and
//! the timed deliveries and idle deadline both transports share. The websocket is
//! [`crate::ws_client`], a `--share-socket` client [`crate::unix_client`].

use std::time::{Duration, Instant};

use crate::admission::Denied;
use crate::ending::{ClientFault, Ending};

/// A client connection: websocket or the shared Unix socket. One QMP message per call.
#[allow(async_fn_in_trait)]
pub trait Client {
    /// The next frame from the client (`Err(Denied)` for one that is not text); an
    /// `Err(Ending)` ends the session. Cancel-safe.
    async fn recv(&mut self) -> Result<Result<String, Denied>, Ending>;
    /// Queues one message without flushing.
    async fn feed(&mut self, text: String) -> Result<(), Ending>;
    /// Flushes what was fed.
    async fn flush(&mut self) -> Result<(), Ending>;
    /// Sends one message now.
    async fn send(&mut self, text: String) -> Result<(), Ending> {
        self.feed(text).await?;
        self.flush().await
    }
    /// Ends the session, telling the client why when it can be told.
    async fn close(&mut self, ending: &Ending);
}

/// Runs a delivery to a client within `limit`: a failed one means the client left, one
/// that takes longer ends the session as too slow.
pub(crate) async fn deliver_within<E>(
    limit: Duration,
    delivery: impl std::future::Future<Output = Result<(), E>>,
) -> Result<(), Ending> {
    match tokio::time::timeout(limit, delivery).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(Ending::ClientLeft),
        Err(_) => Err(ClientFault::TooSlow(limit).into()),
    }
}

/// Resolves when a session has been idle for `timeout` (never when there is none).
pub(crate) async fn idle_deadline(timeout: Option<Duration>, since: Instant) {
    match timeout {
        Some(t) => tokio::time::sleep_until((since + t).into()).await,
        None => std::future::pending().await,
    }
}

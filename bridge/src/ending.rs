//! How a client session ends, typed where it happens. Each transport says it in its own
//! terms, once: the websocket layer as a close code and reason ([`crate::ws_client`]),
//! the `--share-socket` layer as a QMP error line ([`crate::unix_client`]).

use std::sync::Arc;
use std::time::Duration;

use crate::upstream::UpstreamError;

/// How a session ended.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Ending {
    /// The client closed or vanished.
    #[error("client left")]
    ClientLeft,
    /// The bridge is stopping.
    #[error("qmp-bridge is shutting down")]
    ShuttingDown,
    /// The client broke one of the bridge's rules.
    #[error(transparent)]
    Client(#[from] ClientFault),
    /// This session's own QMP connection could not be opened or failed (relay mode).
    #[error(transparent)]
    Upstream(Arc<UpstreamError>),
    /// Shared mode: the multiplexer lost QEMU and is reconnecting.
    #[error("{why}; qmp-bridge is reconnecting to {target}: reconnect to continue")]
    Reconnecting {
        why: Arc<UpstreamError>,
        target: String,
    },
    /// Shared mode: QEMU cannot be reached now; the multiplexer keeps trying.
    #[error("QMP at {target} unavailable, qmp-bridge keeps retrying: {why}")]
    Unavailable {
        why: Arc<UpstreamError>,
        target: String,
    },
    /// Shared mode: the VM is no longer served (its socket left `--qmp-dir`).
    #[error("the VM is no longer served: its QMP socket is gone")]
    Retired,
    /// Shared mode: the multiplexer ended without saying why.
    #[error("the QMP multiplexer stopped")]
    MuxStopped,
}

impl From<UpstreamError> for Ending {
    fn from(e: UpstreamError) -> Ending {
        Ending::Upstream(Arc::new(e))
    }
}

/// A rule of the bridge's the client broke.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientFault {
    /// A delivery to it waited past `--send-timeout`.
    #[error("client too slow: a message waited over {0:?} to be sent")]
    TooSlow(Duration),
    /// Shared mode: this many bytes waited for it while it took nothing.
    #[error("client too slow: {0} bytes waiting for it; dropped so the others are not held up")]
    Backlog(u64),
    /// It answered no pings for this long.
    #[error("client silent for {0:?}: no reply to pings")]
    Silent(Duration),
    /// It sent no command for this long (`--idle-timeout`).
    #[error("idle: no command for {0:?} (--idle-timeout)")]
    Idle(Duration),
    /// A frame over `--max-message-bytes`.
    #[error("frame over the {0}-byte limit (--max-message-bytes)")]
    TooBig(usize),
    /// It broke the websocket protocol.
    #[error("websocket error: {0}")]
    Protocol(String),
    /// Its byte stream is not QMP (a `--share-socket` client).
    #[error("client sent invalid QMP: {0}")]
    NotQmp(String),
    /// A message stayed unfinished for this long (`--request-timeout`).
    #[error("a message stayed unfinished for over {0:?} (--request-timeout)")]
    Unfinished(Duration),
    /// `--max-clients` sessions were running already.
    #[error("qmp-bridge: too many clients (--max-clients {0})")]
    TooMany(usize),
}

/// Counts for a session's closing log line.
#[derive(Debug, Clone)]
pub struct Summary {
    pub to_qemu: u64,
    pub to_client: u64,
    /// Frames refused as malformed.
    pub rejected: u64,
    /// Commands refused by the policy.
    pub refused: u64,
    pub ending: Ending,
}

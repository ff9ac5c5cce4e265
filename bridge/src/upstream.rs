//! The QEMU side: a [`Monitor`] is something a QMP connection can be opened to, and
//! [`MonitorConn`] is that connection: whole messages in, whole messages out. The
//! multiplexer and the relay talk to these two traits only, so a monitor reached some
//! other way than a socket (libvirt: request/response calls and an event stream) is
//! another implementation of them, not another multiplexer.
//!
//! [`SocketMonitor`] is the one there is: a `unix:` or `tcp:` QMP socket, opened up to
//! its greeting, which a monitor held by another client never sends ("busy").
//!
//! Failures are typed here, where they happen ([`UpstreamError`]); the websocket layer
//! turns them into close codes ([`crate::ws_client`]) and the fleet into a VM state
//! ([`Fault`]).

use std::future::Future;
use std::time::Duration;

use qmp::FrameError;

use crate::stream::{Framed, StreamError};
use crate::target::QmpTarget;

/// Why a QMP connection could not be opened, or ended.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Nothing listens at the target (no socket, connection refused).
    #[error("cannot reach QMP at {target}: {source}")]
    Unreachable {
        target: String,
        source: std::io::Error,
    },
    /// Connected, but no greeting came: another client holds the monitor.
    #[error(
        "QMP monitor busy: {target} sent no greeting within {waited:?}; another client holds it"
    )]
    Busy { target: String, waited: Duration },
    /// What came first was not a QMP greeting.
    #[error("{target} sent no QMP greeting: {why}")]
    NoGreeting { target: String, why: String },
    /// Greeted, but the capabilities negotiation got no answer.
    #[error("QMP at {target} did not answer qmp_capabilities")]
    NoAnswer { target: String },
    /// QEMU refused the bridge's negotiation.
    #[error("QMP at {target} refused negotiation: {desc}")]
    Refused { target: String, desc: String },
    /// QEMU closed the monitor before greeting.
    #[error("QEMU closed the monitor at {target} before greeting")]
    ClosedBeforeGreeting { target: String },
    /// QEMU closed the monitor (after `quit`, say).
    #[error("QEMU closed the monitor")]
    Closed,
    /// QEMU closed the monitor with part of a message unsent.
    #[error("QEMU closed the monitor at {target} in the middle of a message")]
    ClosedMidMessage { target: String },
    /// What came is not QMP.
    #[error("{target} is not speaking QMP: {error}")]
    NotQmp { target: String, error: FrameError },
    /// A message over `--max-message-bytes`.
    #[error("QEMU sent a message over the {limit}-byte limit (--max-message-bytes)")]
    TooBig { limit: usize },
    /// QEMU answered without an id: it could not read what it was sent, and whose it
    /// was cannot be told.
    #[error("QEMU answered without an id (it could not read a command): {text}")]
    Unmatched { text: String },
    /// QEMU did not take a command within `--send-timeout`.
    #[error("QMP at {target} stopped reading for {waited:?}")]
    StoppedReading { target: String, waited: Duration },
    #[error("reading QMP at {target}: {source}")]
    Read {
        target: String,
        source: std::io::Error,
    },
    #[error("writing to QMP at {target}: {source}")]
    Write {
        target: String,
        source: std::io::Error,
    },
}

/// Why a monitor is not up, as the VM list shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Nothing listens at the target (no socket, connection refused).
    Unreachable,
    /// Connected, but QEMU did not greet or answer: another client holds the monitor.
    Busy,
    /// The connection broke, or what came was not QMP.
    Broken,
}

impl UpstreamError {
    /// What kind of failure this is.
    pub fn fault(&self) -> Fault {
        match self {
            UpstreamError::Unreachable { .. } => Fault::Unreachable,
            UpstreamError::Busy { .. } | UpstreamError::NoAnswer { .. } => Fault::Busy,
            _ => Fault::Broken,
        }
    }

    /// The connection ended as QEMU meant it to (it closed the monitor).
    pub fn is_close(&self) -> bool {
        matches!(
            self,
            UpstreamError::Closed | UpstreamError::ClosedMidMessage { .. }
        )
    }
}

/// Something a QMP connection can be opened to.
pub trait Monitor: Send + Sync + 'static {
    type Conn: MonitorConn;

    /// Opens a connection and reads QEMU's greeting (not negotiated yet).
    fn open(&self) -> impl Future<Output = Result<(Self::Conn, String), UpstreamError>> + Send;

    /// Where it is, for messages (`unix:/run/vm1.qmp`).
    fn describe(&self) -> String;
}

/// An open QMP connection: whole messages both ways.
pub trait MonitorConn: Send {
    /// Sends one message (a command).
    fn send(&mut self, text: &str) -> impl Future<Output = Result<(), UpstreamError>> + Send;

    /// The next message from QEMU (a reply or an event). Cancel-safe.
    fn recv(&mut self) -> impl Future<Output = Result<String, UpstreamError>> + Send;

    /// The next message that has already arrived, without waiting: what QEMU said before
    /// a connection that failed went away.
    fn recv_ready(&mut self) -> Option<String>;
}

/// A QMP socket (`--qmp unix:PATH` or `tcp:HOST:PORT`).
#[derive(Debug, Clone)]
pub struct SocketMonitor {
    pub target: QmpTarget,
    /// How long connecting and the greeting may take.
    pub greeting_timeout: Duration,
    pub max_message_bytes: usize,
    /// How long QEMU may take to read one command.
    pub send_timeout: Duration,
}

impl SocketMonitor {
    /// The monitor a session's settings name.
    pub fn of(settings: &crate::session::Settings) -> SocketMonitor {
        SocketMonitor {
            target: settings.target.clone(),
            greeting_timeout: settings.greeting_timeout,
            max_message_bytes: settings.max_message_bytes,
            send_timeout: settings.send_timeout,
        }
    }
}

impl Monitor for SocketMonitor {
    type Conn = SocketConn;

    async fn open(&self) -> Result<(SocketConn, String), UpstreamError> {
        let target = self.target.to_string();
        let io = self
            .target
            .connect(self.greeting_timeout)
            .await
            .map_err(|source| UpstreamError::Unreachable {
                target: target.clone(),
                source,
            })?;
        let mut conn = SocketConn {
            framed: Framed::new(io, self.max_message_bytes, "\n"),
            target,
            send_timeout: self.send_timeout,
            failed: None,
        };
        let waited = self.greeting_timeout;
        let greeting = match tokio::time::timeout(waited, conn.recv()).await {
            Err(_) => {
                return Err(UpstreamError::Busy {
                    target: conn.target,
                    waited,
                })
            }
            Ok(Err(e)) if e.is_close() => {
                return Err(UpstreamError::ClosedBeforeGreeting {
                    target: conn.target,
                })
            }
            Ok(r) => r?,
        };
        Ok((conn, greeting))
    }

    fn describe(&self) -> String {
        self.target.to_string()
    }
}

/// An open QMP socket.
#[derive(Debug)]
pub struct SocketConn {
    framed: Framed,
    target: String,
    send_timeout: Duration,
    /// A failure [`MonitorConn::recv_ready`] met, for the next `recv` to return.
    failed: Option<UpstreamError>,
}

impl SocketConn {
    fn error(&self, e: StreamError) -> UpstreamError {
        let target = self.target.clone();
        match e {
            StreamError::Frame(FrameError::TooLarge { limit }) => UpstreamError::TooBig { limit },
            StreamError::Frame(error) => UpstreamError::NotQmp { target, error },
            StreamError::EndedMidMessage => UpstreamError::ClosedMidMessage { target },
            StreamError::Io(source) => UpstreamError::Read { target, source },
        }
    }
}

impl MonitorConn for SocketConn {
    async fn send(&mut self, text: &str) -> Result<(), UpstreamError> {
        let waited = self.send_timeout;
        self.framed.send(text, waited).await.map_err(|source| {
            let target = self.target.clone();
            match source.kind() {
                std::io::ErrorKind::TimedOut => UpstreamError::StoppedReading { target, waited },
                _ => UpstreamError::Write { target, source },
            }
        })
    }

    async fn recv(&mut self) -> Result<String, UpstreamError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        match self.framed.recv().await {
            Ok(Some(message)) => Ok(message),
            Ok(None) => Err(UpstreamError::Closed),
            Err(e) => Err(self.error(e)),
        }
    }

    fn recv_ready(&mut self) -> Option<String> {
        if self.failed.is_some() {
            return None;
        }
        match self.framed.recv_ready() {
            Ok(message) => message,
            Err(e) => {
                self.failed = Some(self.error(e));
                None
            }
        }
    }
}

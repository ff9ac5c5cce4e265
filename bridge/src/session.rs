//! What every client session shares, whatever the mode and transport: its settings, how
//! it ends (close codes with readable reasons), the admission of client frames (well
//! formed, allowed by the policy), its tally and audit records, and the [`Client`]
//! transport trait with its websocket implementation [`WsClient`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::Value;

use crate::audit::{self, AuditLog, Outcome, Pending};
use crate::policy::Policy;
use crate::target::QmpTarget;

/// Websocket close codes the bridge uses.
pub mod close_code {
    /// QEMU closed the monitor (after `quit`, say).
    pub const NORMAL: u16 = 1000;
    /// The bridge is shutting down, the client went silent or idle.
    pub const GOING_AWAY: u16 = 1001;
    /// The client broke the websocket protocol.
    pub const PROTOCOL: u16 = 1002;
    /// The client does not read what it is sent.
    pub const POLICY: u16 = 1008;
    /// A message over `--max-message-bytes`.
    pub const TOO_BIG: u16 = 1009;
    /// The QMP peer is unreachable or broke the protocol.
    pub const UPSTREAM_ERROR: u16 = 1011;
    /// Shared mode: QEMU went away; the bridge reconnects, and so may the client.
    pub const RESTART: u16 = 1012;
    /// The monitor is busy or not yet reachable: try again later.
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// The default `--max-command-bytes`: a command is rarely over a few KB, and QEMU takes
/// about 0.13 s to read this much.
pub const DEFAULT_MAX_COMMAND_BYTES: usize = 64 * 1024;

/// What a session needs to know.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The VM's name (for logs and the audit log); empty for an unnamed single target.
    pub vm: String,
    pub target: QmpTarget,
    /// How long QEMU may take to connect and greet before the monitor counts as busy.
    pub greeting_timeout: Duration,
    pub max_message_bytes: usize,
    /// The largest command a client may send (`--max-command-bytes`).
    pub max_command_bytes: usize,
    /// How long QEMU may take to answer a command before its client is told it is
    /// stalled (`--command-timeout`).
    pub command_timeout: Duration,
    /// Negotiate `oob` with QEMU and let clients use `exec-oob` (`--allow-oob`).
    pub allow_oob: bool,
    /// How long one delivery, to the client or to QEMU, may wait before the session is
    /// closed as stalled.
    pub send_timeout: Duration,
    /// How often websocket clients are pinged; two intervals of silence end the session.
    pub ping_interval: Duration,
    /// Close a session whose client sent no frame for this long.
    pub idle_timeout: Option<Duration>,
    /// Which commands clients may run.
    pub policy: Policy,
    /// Where each command and its outcome is recorded.
    pub audit: Option<Arc<AuditLog>>,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The client closed or vanished.
    ClientLeft,
    /// The bridge closed the session with this code and reason.
    Closed { code: u16, reason: String },
}

/// An ending with a close code and reason.
pub fn closed(code: u16, reason: impl Into<String>) -> Ending {
    Ending::Closed {
        code,
        reason: reason.into(),
    }
}

/// The ending every session gets when the bridge stops.
pub fn shutting_down() -> Ending {
    closed(close_code::GOING_AWAY, "qmp-bridge is shutting down")
}

/// Counts for the closing log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub to_qemu: u64,
    pub to_client: u64,
    /// Frames refused as malformed.
    pub rejected: u64,
    /// Commands refused by the policy.
    pub refused: u64,
    pub ending: Ending,
}

/// A session's bookkeeping: counts, and commands awaiting replies for the audit log.
#[derive(Debug)]
pub struct Tally {
    audit: Option<Arc<AuditLog>>,
    vm: String,
    /// Who the client is, for logs and the audit log.
    pub peer: String,
    pub to_qemu: u64,
    pub to_client: u64,
    pub rejected: u64,
    pub refused: u64,
    pending: Pending,
}

impl Tally {
    pub fn new(settings: &Settings, peer: String) -> Tally {
        Tally {
            audit: settings.audit.clone(),
            vm: settings.vm.clone(),
            peer,
            to_qemu: 0,
            to_client: 0,
            rejected: 0,
            refused: 0,
            pending: Pending::default(),
        }
    }

    fn audit(&self, command: &str, id: Option<&Value>, outcome: Outcome) {
        if let Some(log) = &self.audit {
            log.record(audit::Entry {
                vm: &self.vm,
                client: &self.peer,
                command,
                id,
                outcome,
            });
        }
    }

    /// A command went upstream.
    pub fn sent(&mut self, frame: &qmp::ClientFrame) {
        self.to_qemu += 1;
        if self.audit.is_some() {
            let command = frame.command().to_owned();
            self.pending.push(frame.id().cloned(), command);
        }
    }

    /// A frame was denied.
    pub fn denied(&mut self, denied: &Denied) {
        match denied {
            Denied::Refused { frame, why, .. } => {
                self.refused += 1;
                tracing::info!(peer = %self.peer, "refused by policy: {why}");
                self.audit(frame.command(), frame.id(), Outcome::Refused(why.clone()));
            }
            Denied::Malformed { .. } => self.rejected += 1,
        }
    }

    /// A message went to the client; a reply closes its command's audit record.
    pub fn delivered(&mut self, text: &str) {
        self.to_client += 1;
        if self.audit.is_none() || self.pending.is_empty() {
            return;
        }
        let Ok(outline) = qmp::outline(text) else {
            return;
        };
        let outcome = match outline.kind {
            qmp::Kind::Return => Outcome::Ok,
            qmp::Kind::Error => Outcome::Error(outline.error_class.unwrap_or_default()),
            _ => return,
        };
        if let Some((id, command)) = self.pending.take(outline.id.as_ref()) {
            self.audit(&command, id.as_ref(), outcome);
        }
    }

    /// Ends the session: unanswered commands are recorded as such.
    pub fn finish(mut self, ending: Ending) -> Summary {
        let left: Vec<_> = self.pending.drain().collect();
        for (id, command) in left {
            self.audit(&command, id.as_ref(), Outcome::Unanswered);
        }
        Summary {
            to_qemu: self.to_qemu,
            to_client: self.to_client,
            rejected: self.rejected,
            refused: self.refused,
            ending,
        }
    }
}

/// A client frame that does not go upstream.
#[derive(Debug)]
pub enum Denied {
    /// Not one JSON object; the QMP-shaped error reply.
    Malformed { reply: String },
    /// Refused by the policy.
    Refused {
        reply: String,
        frame: qmp::ClientFrame,
        why: String,
    },
}

impl Denied {
    /// The QMP-shaped error reply for the client.
    pub fn reply(&self) -> &str {
        match self {
            Denied::Malformed { reply } | Denied::Refused { reply, .. } => reply,
        }
    }

    fn malformed(desc: &str) -> Denied {
        Denied::Malformed {
            reply: qmp::Rejection {
                id: None,
                desc: desc.into(),
            }
            .to_reply(),
        }
    }
}

/// Checks a client frame: within `max_bytes` (`--max-command-bytes`), one QMP command
/// that QEMU reads as the bridge does, and allowed by the policy.
pub fn admit(text: &str, policy: &Policy, max_bytes: usize) -> Result<qmp::ClientFrame, Denied> {
    if text.len() > max_bytes {
        let rejection = qmp::Rejection {
            id: qmp::inbound::salvage_id(text),
            desc: format!(
                "command of {} bytes is over the {max_bytes}-byte limit (--max-command-bytes)",
                text.len()
            ),
        };
        return Err(Denied::Malformed {
            reply: rejection.to_reply(),
        });
    }
    let frame = qmp::parse_client_frame(text).map_err(|r| Denied::Malformed {
        reply: r.to_reply(),
    })?;
    if let Err(why) = policy.check(&frame) {
        let desc = format!("refused by qmp-bridge policy: {why}");
        let reply = qmp::message::error_reply(frame.raw_id(), "GenericError", &desc);
        return Err(Denied::Refused { reply, frame, why });
    }
    Ok(frame)
}

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

/// A close reason must fit a control frame (123 bytes).
pub fn truncate_reason(reason: &str) -> String {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}

/// A browser (or any websocket client), with pings, an idle bound and send timeouts.
pub struct WsClient<W, R> {
    tx: W,
    rx: R,
    send_timeout: Duration,
    ping_interval: Duration,
    idle_timeout: Option<Duration>,
    max_message_bytes: usize,
    ping: tokio::time::Interval,
    last_heard: Instant,
    last_frame: Instant,
}

impl<W, R> WsClient<W, R>
where
    W: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    pub fn new(tx: W, rx: R, settings: &Settings) -> Self {
        let mut ping = tokio::time::interval(settings.ping_interval);
        ping.reset();
        WsClient {
            tx,
            rx,
            send_timeout: settings.send_timeout,
            ping_interval: settings.ping_interval,
            idle_timeout: settings.idle_timeout,
            max_message_bytes: settings.max_message_bytes,
            ping,
            last_heard: Instant::now(),
            last_frame: Instant::now(),
        }
    }
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
        Err(_) => Err(closed(
            close_code::POLICY,
            format!("client too slow: a message waited over {limit:?} to be sent"),
        )),
    }
}

/// Resolves when a session has been idle for `timeout` (never when there is none).
pub(crate) async fn idle_deadline(timeout: Option<Duration>, since: Instant) {
    match timeout {
        Some(t) => tokio::time::sleep_until((since + t).into()).await,
        None => std::future::pending().await,
    }
}

impl<W, R> Client for WsClient<W, R>
where
    W: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    async fn recv(&mut self) -> Result<Result<String, Denied>, Ending> {
        loop {
            tokio::select! {
                _ = idle_deadline(self.idle_timeout, self.last_frame) => {
                    return Err(closed(close_code::GOING_AWAY, format!(
                        "idle: no command for {:?} (--idle-timeout)", self.last_frame.elapsed())));
                }
                _ = self.ping.tick() => {
                    if self.last_heard.elapsed() > self.ping_interval * 2 {
                        return Err(closed(close_code::GOING_AWAY, format!(
                            "client silent for {:?}: no reply to pings", self.last_heard.elapsed())));
                    }
                    let ping = self.tx.send(Message::Ping(Default::default()));
                    deliver_within(self.send_timeout, ping).await?;
                }
                frame = self.rx.next() => {
                    self.last_heard = Instant::now();
                    let text = match frame {
                        None | Some(Ok(Message::Close(_))) => return Err(Ending::ClientLeft),
                        Some(Err(e)) => {
                            let text = e.to_string();
                            return Err(if text.contains("Space limit exceeded") {
                                closed(close_code::TOO_BIG, format!(
                                    "frame over the {}-byte limit (--max-message-bytes)", self.max_message_bytes))
                            } else {
                                closed(close_code::PROTOCOL, format!("websocket error: {text}"))
                            });
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                        Some(Ok(Message::Text(t))) => Ok(t.as_str().to_owned()),
                        Some(Ok(Message::Binary(b))) => String::from_utf8(b.to_vec())
                            .map_err(|_| Denied::malformed("binary frame is not UTF-8 JSON text")),
                    };
                    self.last_frame = Instant::now();
                    return Ok(text);
                }
            }
        }
    }

    async fn feed(&mut self, text: String) -> Result<(), Ending> {
        let fut = self.tx.feed(Message::Text(text.into()));
        deliver_within(self.send_timeout, fut).await
    }

    async fn flush(&mut self) -> Result<(), Ending> {
        deliver_within(self.send_timeout, self.tx.flush()).await
    }

    async fn close(&mut self, ending: &Ending) {
        if let Ending::Closed { code, reason } = ending {
            let frame = CloseFrame {
                code: *code,
                reason: truncate_reason(reason).into(),
            };
            let tx = &mut self.tx;
            let _ = tokio::time::timeout(self.send_timeout, async {
                let _ = tx.send(Message::Close(Some(frame))).await;
                let _ = tx.close().await;
            })
            .await;
        }
    }
}

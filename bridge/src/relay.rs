//! One websocket relayed to its own QMP connection (the transparent relay).
//!
//! The browser does the greeting and negotiation itself; the relay only moves whole
//! messages: QEMU's byte stream is cut by [`qmp::Framer`] into one text frame per message,
//! and each client frame goes upstream only after [`qmp::check_client_frame`] accepts it.
//! A session ends with a close frame whose reason a person can read: upstream missing,
//! monitor busy (no greeting), QEMU gone, oversized message, slow or silent browser,
//! or the bridge shutting down. Generic over `Sink`/`Stream`, so tests can drive it with
//! channels.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use qmp::{FrameError, Framer};
use tokio::sync::watch;

use crate::audit::{self, AuditLog, Outcome, Pending};
use crate::policy::Policy;
use crate::target::{QmpTarget, Upstream};

/// Websocket close codes the relay uses.
pub mod close_code {
    /// QEMU closed the monitor (after `quit`, say).
    pub const NORMAL: u16 = 1000;
    /// The browser broke the websocket protocol (or sent a frame over the limit).
    pub const PROTOCOL: u16 = 1002;
    /// The bridge is shutting down, or the browser stopped answering pings.
    pub const GOING_AWAY: u16 = 1001;
    /// The browser does not read what it is sent.
    pub const POLICY: u16 = 1008;
    /// A message over `--max-message-bytes`.
    pub const TOO_BIG: u16 = 1009;
    /// The QMP peer is unreachable or broke the protocol.
    pub const UPSTREAM_ERROR: u16 = 1011;
    /// The monitor is busy: another client holds it.
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// What a relay session needs to know.
#[derive(Debug, Clone)]
pub struct Settings {
    pub target: QmpTarget,
    /// How long QEMU may take to connect and greet before the monitor counts as busy.
    pub greeting_timeout: Duration,
    pub max_message_bytes: usize,
    /// How long one delivery, to the browser or to QEMU, may wait before the session is
    /// closed as stalled.
    pub send_timeout: Duration,
    /// How often the browser is pinged; two intervals of silence close the session.
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
    /// The browser closed or vanished.
    ClientLeft,
    /// The relay closed the websocket with this code and reason.
    Closed { code: u16, reason: String },
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

/// One session's bookkeeping: counts, and commands awaiting replies for the audit log.
struct Counts<'a> {
    settings: &'a Settings,
    peer: SocketAddr,
    to_qemu: u64,
    to_client: u64,
    rejected: u64,
    refused: u64,
    pending: Pending,
}

impl Counts<'_> {
    fn audit(&self, command: &str, id: Option<&serde_json::Value>, outcome: Outcome) {
        if let Some(log) = &self.settings.audit {
            log.record(audit::Entry {
                client: self.peer,
                command,
                id,
                outcome,
            });
        }
    }

    /// Notes a reply going to the client, for the audit log.
    fn reply_seen(&mut self, text: &str) {
        if self.settings.audit.is_none() || self.pending.is_empty() {
            return;
        }
        let Ok(outline) = qmp::outline(text) else { return };
        let outcome = match outline.kind {
            qmp::Kind::Return => Outcome::Ok,
            qmp::Kind::Error => Outcome::Error(outline.error_class.unwrap_or_default()),
            _ => return,
        };
        if let Some((id, command)) = self.pending.take(outline.id.as_ref()) {
            self.audit(&command, id.as_ref(), outcome);
        }
    }
}

/// A client frame that does not go upstream.
#[derive(Debug)]
pub enum Denied {
    /// Not one JSON object; the QMP-shaped error reply.
    Malformed { reply: String },
    /// Refused by the policy.
    Refused { reply: String, frame: qmp::ClientFrame, why: String },
}

impl Denied {
    /// The QMP-shaped error reply for the client.
    pub fn reply(&self) -> &str {
        match self {
            Denied::Malformed { reply } | Denied::Refused { reply, .. } => reply,
        }
    }
}

/// Checks a client frame: well-formed, and allowed by the policy.
pub fn admit(text: &str, policy: &Policy) -> Result<qmp::ClientFrame, Denied> {
    let frame = qmp::parse_client_frame(text).map_err(|r| Denied::Malformed { reply: r.to_reply() })?;
    if let Err(why) = policy.check(&frame) {
        let desc = format!("refused by qmp-bridge policy: {why}");
        let reply = qmp::message::error_reply(frame.id(), "GenericError", &desc);
        return Err(Denied::Refused { reply, frame, why });
    }
    Ok(frame)
}

fn closed(code: u16, reason: impl Into<String>) -> Ending {
    Ending::Closed {
        code,
        reason: reason.into(),
    }
}

/// Relays one websocket (`ws_tx`, `ws_rx`) until either side ends or `shutdown` flips.
pub async fn relay<W, R>(
    mut ws_tx: W,
    mut ws_rx: R,
    settings: &Settings,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) -> Summary
where
    W: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let mut counts = Counts {
        settings,
        peer,
        to_qemu: 0,
        to_client: 0,
        rejected: 0,
        refused: 0,
        pending: Pending::default(),
    };
    let ending = session(&mut ws_tx, &mut ws_rx, settings, &mut shutdown, &mut counts).await;
    let unanswered: Vec<_> = counts.pending.drain().collect();
    for (id, command) in unanswered {
        counts.audit(&command, id.as_ref(), Outcome::Unanswered);
    }
    if let Ending::Closed { code, reason } = &ending {
        let frame = CloseFrame {
            code: *code,
            reason: truncate_reason(reason).into(),
        };
        let _ = tokio::time::timeout(settings.send_timeout, async {
            ws_tx.send(Message::Close(Some(frame))).await.ok();
            ws_tx.close().await.ok();
        })
        .await;
    }
    Summary {
        to_qemu: counts.to_qemu,
        to_client: counts.to_client,
        rejected: counts.rejected,
        refused: counts.refused,
        ending,
    }
}

/// A close reason must fit a control frame (123 bytes).
fn truncate_reason(reason: &str) -> String {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}

enum Read {
    Data,
    Nothing,
    Eof,
}

/// Reads what the socket holds into the framer, without keeping a buffer between reads.
fn read_available(upstream: &Upstream, framer: &mut Framer) -> std::io::Result<Read> {
    let mut buf = [0u8; 16 * 1024];
    let mut got = Read::Nothing;
    for _ in 0..8 {
        match upstream.try_read(&mut buf) {
            Ok(0) => return Ok(Read::Eof),
            Ok(n) => {
                framer.push(&buf[..n]);
                got = Read::Data;
                if n < buf.len() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            // QEMU exiting with our bytes unread resets the socket: it closed all the same.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(Read::Eof),
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

async fn session<W, R>(
    ws_tx: &mut W,
    ws_rx: &mut R,
    settings: &Settings,
    shutdown: &mut watch::Receiver<bool>,
    counts: &mut Counts<'_>,
) -> Ending
where
    W: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let target = &settings.target;
    let mut upstream = tokio::select! {
        r = target.connect(settings.greeting_timeout) => match r {
            Ok(u) => u,
            Err(e) => return closed(close_code::UPSTREAM_ERROR, format!("cannot reach QMP at {target}: {e}")),
        },
        _ = shutdown.changed() => return closed(close_code::GOING_AWAY, "qmp-bridge is shutting down"),
    };
    let mut framer = Framer::new(settings.max_message_bytes);

    // The greeting. Client frames wait in the socket meanwhile: none is read or dropped.
    let deadline = tokio::time::Instant::now() + settings.greeting_timeout;
    let greeting = loop {
        match framer.next_message() {
            Ok(Some(greeting)) => break greeting,
            Ok(None) => {}
            Err(e) => return frame_error(e, target),
        }
        tokio::select! {
            r = tokio::time::timeout_at(deadline, upstream.readable()) => match r {
                Err(_) => return closed(close_code::TRY_AGAIN_LATER, format!(
                    "QMP monitor busy: {target} sent no greeting within {:?}; another client holds it",
                    settings.greeting_timeout)),
                Ok(r) => match r.and_then(|()| read_available(&upstream, &mut framer)) {
                    Ok(Read::Eof) => return closed(close_code::UPSTREAM_ERROR,
                        format!("QEMU closed the monitor at {target} before greeting")),
                    Ok(_) => {}
                    Err(e) => return closed(close_code::UPSTREAM_ERROR, format!("reading QMP at {target}: {e}")),
                },
            },
            _ = shutdown.changed() => return closed(close_code::GOING_AWAY, "qmp-bridge is shutting down"),
        }
    };
    tracing::debug!(target: "qmp_bridge::wire", to = "client", "{greeting}");
    if let Err(ending) = send_text(ws_tx, greeting, settings).await {
        return ending;
    }
    counts.to_client += 1;
    if let Err(ending) = deliver(ws_tx, &mut framer, settings, counts).await {
        return ending;
    }

    let mut ping = tokio::time::interval(settings.ping_interval);
    ping.reset();
    let mut last_heard = Instant::now();
    let mut last_frame = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return closed(close_code::GOING_AWAY, "qmp-bridge is shutting down"),
            _ = idle_deadline(settings.idle_timeout, last_frame) => {
                return closed(close_code::GOING_AWAY, format!(
                    "idle: no command for {:?} (--idle-timeout)", last_frame.elapsed()));
            }
            frame = ws_rx.next() => {
                last_heard = Instant::now();
                let text = match frame {
                    None | Some(Ok(Message::Close(_))) => return Ending::ClientLeft,
                    Some(Err(e)) => return websocket_error(e, settings),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Text(t))) => Ok(t.as_str().to_owned()),
                    Some(Ok(Message::Binary(b))) => String::from_utf8(b.to_vec()).map_err(|_| Denied::Malformed {
                        reply: qmp::Rejection { id: None, desc: "binary frame is not UTF-8 JSON text".into() }.to_reply(),
                    }),
                };
                last_frame = Instant::now();
                let admitted = text.and_then(|t| admit(&t, &settings.policy).map(|frame| (t, frame)));
                match admitted {
                    Ok((mut t, frame)) => {
                        tracing::debug!(target: "qmp_bridge::wire", to = "qemu", "{t}");
                        t.push('\n');
                        match tokio::time::timeout(settings.send_timeout, upstream.write_all(t.as_bytes())).await {
                            Ok(Ok(())) => counts.to_qemu += 1,
                            Ok(Err(e)) => return closed(close_code::UPSTREAM_ERROR, format!("writing to QMP at {target}: {e}")),
                            Err(_) => return closed(close_code::UPSTREAM_ERROR,
                                format!("QMP at {target} stopped reading for {:?}", settings.send_timeout)),
                        }
                        if settings.audit.is_some() {
                            let command = frame.command().unwrap_or("?").to_owned();
                            counts.pending.push(frame.id().cloned(), command);
                        }
                    }
                    Err(denied) => {
                        match &denied {
                            Denied::Refused { frame, why, .. } => {
                                counts.refused += 1;
                                tracing::info!(peer = %counts.peer, "refused by policy: {why}");
                                counts.audit(frame.command().unwrap_or("?"), frame.id(), Outcome::Refused(why.clone()));
                            }
                            Denied::Malformed { .. } => counts.rejected += 1,
                        }
                        let reply = denied.reply().to_owned();
                        tracing::debug!(target: "qmp_bridge::wire", to = "client", "{reply}");
                        if let Err(ending) = send_text(ws_tx, reply, settings).await {
                            return ending;
                        }
                    }
                }
            }
            r = upstream.readable() => {
                let read = r.and_then(|()| read_available(&upstream, &mut framer));
                let delivered = deliver(ws_tx, &mut framer, settings, counts).await;
                match (read, delivered) {
                    (_, Err(ending)) => return ending,
                    (Ok(Read::Eof), Ok(())) => {
                        let reason = if framer.pending_bytes() > 0 {
                            format!("QEMU closed the monitor at {target} in the middle of a message")
                        } else {
                            "QEMU closed the monitor".to_owned()
                        };
                        return closed(close_code::NORMAL, reason);
                    }
                    (Err(e), _) => return closed(close_code::UPSTREAM_ERROR, format!("reading QMP at {target}: {e}")),
                    (Ok(_), Ok(())) => {}
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > settings.ping_interval * 2 {
                    return closed(close_code::GOING_AWAY, format!(
                        "browser silent for {:?}: no reply to pings", last_heard.elapsed()));
                }
                if let Err(ending) = send(ws_tx, Message::Ping(Default::default()), settings).await {
                    return ending;
                }
            }
        }
    }
}

/// Sends every whole message the framer holds, then flushes once.
async fn deliver<W>(
    ws_tx: &mut W,
    framer: &mut Framer,
    settings: &Settings,
    counts: &mut Counts<'_>,
) -> Result<(), Ending>
where
    W: Sink<Message> + Unpin,
{
    let mut sent = 0;
    let outcome = loop {
        match framer.next_message() {
            Ok(Some(text)) => {
                tracing::debug!(target: "qmp_bridge::wire", to = "client", "{text}");
                counts.reply_seen(&text);
                match tokio::time::timeout(settings.send_timeout, ws_tx.feed(Message::Text(text.into()))).await {
                    Ok(Ok(())) => {
                        sent += 1;
                        counts.to_client += 1;
                    }
                    Ok(Err(_)) => return Err(Ending::ClientLeft),
                    Err(_) => return Err(too_slow(settings)),
                }
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(frame_error(e, &settings.target)),
        }
    };
    if sent > 0 {
        match tokio::time::timeout(settings.send_timeout, ws_tx.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(Ending::ClientLeft),
            Err(_) => return Err(too_slow(settings)),
        }
    }
    outcome
}

/// A broken or oversized frame from the client ends its session, with the reason.
fn websocket_error(e: axum::Error, settings: &Settings) -> Ending {
    let text = e.to_string();
    if text.contains("Space limit exceeded") {
        closed(close_code::TOO_BIG, format!(
            "frame over the {}-byte limit (--max-message-bytes)", settings.max_message_bytes))
    } else {
        closed(close_code::PROTOCOL, format!("websocket error: {text}"))
    }
}

/// Resolves when a session has been idle for `timeout` (never when there is none).
async fn idle_deadline(timeout: Option<Duration>, since: Instant) {
    match timeout {
        Some(t) => tokio::time::sleep_until((since + t).into()).await,
        None => std::future::pending().await,
    }
}

fn frame_error(e: FrameError, target: &QmpTarget) -> Ending {
    match e {
        FrameError::TooLarge { limit } => closed(
            close_code::TOO_BIG,
            format!("QEMU sent a message over the {limit}-byte limit (--max-message-bytes)"),
        ),
        other => closed(close_code::UPSTREAM_ERROR, format!("{target} is not speaking QMP: {other}")),
    }
}

fn too_slow(settings: &Settings) -> Ending {
    closed(
        close_code::POLICY,
        format!("browser too slow: a message waited over {:?} to be sent", settings.send_timeout),
    )
}

async fn send_text<W>(ws_tx: &mut W, text: String, settings: &Settings) -> Result<(), Ending>
where
    W: Sink<Message> + Unpin,
{
    send(ws_tx, Message::Text(text.into()), settings).await
}

async fn send<W>(ws_tx: &mut W, msg: Message, settings: &Settings) -> Result<(), Ending>
where
    W: Sink<Message> + Unpin,
{
    match tokio::time::timeout(settings.send_timeout, ws_tx.send(msg)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(Ending::ClientLeft),
        Err(_) => Err(too_slow(settings)),
    }
}

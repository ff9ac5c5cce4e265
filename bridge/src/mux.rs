//! Shared mode: one QMP connection to QEMU, negotiated by the bridge, shared by every
//! client (the multiplexer).
//!
//! One actor task owns the upstream connection. Clients [`Mux::attach`] and get QEMU's
//! real greeting, a bounded queue of commands to the actor and a bounded queue of
//! messages back. The actor gives every upstream command a fresh `id` (`qmpc-N`) and
//! restores the client's own `id` (or its absence) on the reply, which goes to that client
//! only; events go to every negotiated client.
//!
//! Fair and bounded: the actor takes commands from the clients' queues in turn, with at
//! most [`MAX_IN_FLIGHT`] upstream at once, so a client flooding commands only fills its
//! own queue; a client that stops reading is dropped with a reason once over
//! [`CLIENT_QUEUE_BYTES`] wait for it for [`STALL`] (or over [`CLIENT_QUEUE_MAX_BYTES`] at
//! all), instead of slowing the fan-out. Each client also has a budget of command bytes
//! in flight at QEMU (one `--max-command-bytes`), since QEMU reads commands slowly.
//! When QEMU goes away every client is closed with 1012 and the actor reconnects with
//! backoff; new clients reach the new QEMU.
//!
//! Every reply is matched by the id the actor gave its command. A reply without one can
//! only be QEMU failing to read what the bridge wrote, so the stream is out of step: the
//! actor counts it and reconnects rather than guess whose it was. A command unanswered
//! for `--command-timeout` gets its client a [`STALL_EVENT`] (the reply still follows),
//! and the stall shows in [`MonitorState::stalled`] until QEMU answers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::time::Instant;

use futures_util::stream::{self, BoxStream, SelectAll};
use futures_util::StreamExt;
use qmp::client::{Handshake, Progress, RunState};
use qmp::{ClientFrame, Envelope, Id, Kind, Message, QmpError};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit};

use crate::ending::{ClientFault, Ending};
use crate::metrics::VmMetrics;
use crate::session::Settings;
use crate::upstream::{Fault, Monitor, MonitorConn, SocketMonitor, UpstreamError};

/// Upstream commands awaiting their replies, at most.
pub const MAX_IN_FLIGHT: usize = 8;
/// Bytes waiting for a client that has taken nothing for [`STALL`] before it is dropped.
pub const CLIENT_QUEUE_BYTES: u64 = 1 << 20;
/// Bytes waiting for any client before it is dropped, even one still reading.
pub const CLIENT_QUEUE_MAX_BYTES: u64 = 32 << 20;
/// How long a client with a full queue may take nothing before it is dropped.
pub const STALL: Duration = Duration::from_secs(1);
/// Commands one client may queue before its own sends wait.
const COMMAND_QUEUE: usize = 8;
const NEGOTIATION_ID: &str = "qmp-bridge-negotiation";
/// The event a client gets for its command QEMU has not answered in `--command-timeout`.
pub const STALL_EVENT: &str = "QMP_BRIDGE_COMMAND_STALLED";

/// The upstream's state, as clients, `/healthz` and the VM list see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonitorState {
    /// QEMU's greeting while connected.
    pub greeting: Option<String>,
    /// Why the last connection attempt failed or the connection ended.
    pub last_error: Option<String>,
    /// What kind of failure that was.
    pub fault: Option<Fault>,
    /// The VM's run state (`query-status`), kept current by events.
    pub run_state: Option<String>,
    /// A command QEMU has not answered within `--command-timeout`, while one has not.
    pub stalled: Option<String>,
}

impl MonitorState {
    pub fn is_up(&self) -> bool {
        self.greeting.is_some()
    }
}

const STATUS_ID: &str = "qmp-bridge-status";

/// What a client sends the actor.
#[derive(Debug)]
pub enum ToUpstream {
    /// The client finished its own capabilities negotiation: it gets events from now on.
    Negotiated,
    /// A command, holding its share of the client's budget of bytes in flight.
    Command(ClientFrame, OwnedSemaphorePermit),
}

/// A client's link to the multiplexer.
#[derive(Debug)]
pub struct Attachment {
    /// QEMU's greeting, as QEMU sent it.
    pub greeting: String,
    /// Out-of-band execution is on upstream (QEMU offers it and `--allow-oob`).
    pub oob_offered: bool,
    pub commands: mpsc::Sender<ToUpstream>,
    pub messages: MessageQueue,
    /// Why the multiplexer dropped this client, once it has.
    pub dropped: Arc<OnceLock<Ending>>,
}

/// Messages waiting for one client; the bytes it has taken tell the multiplexer whether
/// it is still reading.
#[derive(Debug)]
pub struct MessageQueue {
    rx: mpsc::UnboundedReceiver<Arc<str>>,
    taken: Arc<AtomicU64>,
}

impl MessageQueue {
    /// The next message; `None` once the multiplexer dropped this client and the queue
    /// is empty.
    pub async fn recv(&mut self) -> Option<Arc<str>> {
        let m = self.rx.recv().await?;
        self.taken.fetch_add(m.len() as u64, Ordering::Relaxed);
        Some(m)
    }

    /// A message already waiting, if any.
    pub fn try_recv(&mut self) -> Option<Arc<str>> {
        let m = self.rx.try_recv().ok()?;
        self.taken.fetch_add(m.len() as u64, Ordering::Relaxed);
        Some(m)
    }
}

struct AttachRequest {
    reply: oneshot::Sender<Result<Attachment, Ending>>,
}

/// Handle on the multiplexer actor.
#[derive(Debug, Clone)]
pub struct Mux {
    requests: mpsc::Sender<AttachRequest>,
    state: watch::Receiver<MonitorState>,
    /// Cuts a reconnect's backoff short.
    wake: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for AttachRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AttachRequest")
    }
}

impl Mux {
    /// Starts the actor; it connects at once and keeps reconnecting until `shutdown`.
    pub fn start(
        settings: Arc<Settings>,
        metrics: Arc<VmMetrics>,
        shutdown: watch::Receiver<bool>,
    ) -> Mux {
        let monitor = SocketMonitor::of(&settings);
        Mux::start_on(monitor, settings, metrics, shutdown)
    }

    /// Starts the actor on any [`Monitor`] (the socket one, or a test's in-memory QEMU).
    pub fn start_on<M: Monitor>(
        monitor: M,
        settings: Arc<Settings>,
        metrics: Arc<VmMetrics>,
        shutdown: watch::Receiver<bool>,
    ) -> Mux {
        let (requests, requests_rx) = mpsc::channel(64);
        let (state_tx, state) = watch::channel(MonitorState::default());
        let wake = Arc::new(tokio::sync::Notify::new());
        let woken = wake.clone();
        tokio::spawn(async move {
            let channels = (requests_rx, state_tx, shutdown);
            actor(monitor, settings, metrics, channels, woken).await
        });
        Mux {
            requests,
            state,
            wake,
        }
    }

    /// Tries to connect now rather than at the end of the backoff (the monitor is known to
    /// be back: a libvirt domain started).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The upstream's state now.
    pub fn state(&self) -> MonitorState {
        self.state.borrow().clone()
    }

    /// Joins the session, waiting up to `wait` for the upstream to come up.
    pub async fn attach(&self, wait: Duration) -> Result<Attachment, Ending> {
        let mut state = self.state.clone();
        let _ = tokio::time::timeout(wait, state.wait_for(MonitorState::is_up)).await;
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(AttachRequest { reply })
            .await
            .map_err(|_| Ending::ShuttingDown)?;
        answer.await.map_err(|_| Ending::ShuttingDown)?
    }
}

/// What the actor is reached through: clients attaching, the state it publishes, the
/// bridge's shutdown.
type Channels = (
    mpsc::Receiver<AttachRequest>,
    watch::Sender<MonitorState>,
    watch::Receiver<bool>,
);

async fn actor<M: Monitor>(
    monitor: M,
    settings: Arc<Settings>,
    metrics: Arc<VmMetrics>,
    (mut requests, state, mut shutdown): Channels,
    wake: Arc<tokio::sync::Notify>,
) {
    let target = monitor.describe();
    let mut backoff = Duration::from_millis(100);
    loop {
        let attempt = tokio::select! {
            r = connect(&monitor, &settings) => r,
            _ = shutdown.changed() => return,
        };
        let why = match attempt {
            Ok((conn, greeting, oob_offered, run_state)) => {
                backoff = Duration::from_millis(100);
                tracing::info!(%target, "shared QMP session up");
                state.send_replace(MonitorState {
                    greeting: Some(greeting.clone()),
                    run_state: run_state.status().map(str::to_owned),
                    ..MonitorState::default()
                });
                let mut up = Connected {
                    settings: &settings,
                    metrics: &metrics,
                    state: &state,
                    run_state,
                    conn,
                    greeting,
                    oob_offered,
                    clients: HashMap::new(),
                    inbound: SelectAll::new(),
                    in_flight: HashMap::new(),
                    next_client: 0,
                    next_id: 0,
                };
                let Some(why) = up.run(&mut requests, &mut shutdown).await else {
                    up.drop_all(&Ending::ShuttingDown);
                    return;
                };
                let why = Arc::new(why);
                up.drop_all(&Ending::Reconnecting {
                    why: why.clone(),
                    target: target.clone(),
                });
                metrics.reconnects.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%target, "shared QMP session down: {why}");
                why
            }
            Err(why) => Arc::new(why),
        };
        state.send_replace(MonitorState {
            last_error: Some(why.to_string()),
            fault: Some(why.fault()),
            ..MonitorState::default()
        });
        let until = tokio::time::Instant::now() + backoff;
        backoff = (backoff * 2).min(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => break,
                _ = wake.notified() => break,
                _ = shutdown.changed() => return,
                Some(req) = requests.recv() => {
                    let _ = req.reply.send(Err(Ending::Unavailable {
                        why: why.clone(),
                        target: target.clone(),
                    }));
                }
            }
        }
    }
}

/// Opens the monitor, negotiates it (enabling `oob` when QEMU offers it and
/// `--allow-oob`) and learns the VM's run state.
async fn connect<M: Monitor>(
    monitor: &M,
    settings: &Settings,
) -> Result<(M::Conn, String, bool, RunState), UpstreamError> {
    let (mut conn, greeting) = monitor.open().await?;
    let target = monitor.describe();
    let deadline = tokio::time::Instant::now() + settings.greeting_timeout;
    let negotiated = negotiate(settings, &mut conn, greeting, &target);
    match tokio::time::timeout_at(deadline, negotiated).await {
        Ok(r) => r.map(|(greeting, oob, run_state)| (conn, greeting, oob, run_state)),
        Err(_) => Err(UpstreamError::NoAnswer { target }),
    }
}

/// The handshake ([`Handshake`]) and the first `query-status` on a fresh connection. The
/// greeting returned is the one clients get: without `oob` unless it is on.
async fn negotiate<C: MonitorConn>(
    settings: &Settings,
    conn: &mut C,
    greeting: String,
    target: &str,
) -> Result<(String, bool, RunState), UpstreamError> {
    let want: &[&str] = if settings.allow_oob { &["oob"] } else { &[] };
    let mut handshake = Handshake::new(NEGOTIATION_ID, want);
    let mut run_state = RunState::new(STATUS_ID);
    let mut text = greeting.clone();
    let oob = loop {
        match handshake.on_message(&text) {
            Progress::Waiting => {}
            Progress::Send(negotiate) => {
                conn.send(&negotiate).await?;
                if let Some(query) = run_state.query() {
                    conn.send(&query).await?;
                }
            }
            Progress::Ready { enabled, .. } => break enabled.iter().any(|c| c == "oob"),
            Progress::Refused(error) => {
                return Err(UpstreamError::Refused {
                    target: target.to_owned(),
                    desc: error.desc,
                })
            }
            Progress::NotQmp(why) => {
                return Err(UpstreamError::NoGreeting {
                    target: target.to_owned(),
                    why,
                })
            }
        }
        text = conn.recv().await?;
    };
    while run_state.is_asking() {
        let text = conn.recv().await?;
        match Message::parse(&text) {
            Ok(Message::Return { id, value }) => run_state.on_reply(id.as_ref(), Ok(&value)),
            Ok(Message::Error { id, error }) => run_state.on_reply(id.as_ref(), Err(&error)),
            _ => false,
        };
    }
    let greeting = if oob {
        greeting
    } else {
        qmp::message::without_capability(&greeting, "oob")
    };
    Ok((greeting, oob, run_state))
}

struct ClientSlot {
    /// One event's text is shared by every client's queue.
    messages: mpsc::UnboundedSender<Arc<str>>,
    /// Bytes queued for the client so far, and taken by it so far.
    given: u64,
    taken: Arc<AtomicU64>,
    /// When `taken` last moved.
    last_taken: u64,
    last_progress: Instant,
    dropped: Arc<OnceLock<Ending>>,
    negotiated: bool,
}

/// A command upstream, awaiting its reply.
struct InFlight {
    client: u64,
    /// The client's own id as it wrote it, restored on the reply.
    id: Option<Id>,
    command: String,
    sent: Instant,
    /// Its client was told it is overdue.
    overdue: bool,
    /// Its share of the client's budget of bytes in flight, given back with the reply.
    _budget: OwnedSemaphorePermit,
}

/// Messages already received that are routed in one go, before looking at the clients
/// again.
const ROUTE_BATCH: usize = 256;

/// The actor while the monitor is connected.
struct Connected<'a, C> {
    settings: &'a Settings,
    metrics: &'a VmMetrics,
    state: &'a watch::Sender<MonitorState>,
    /// The VM's run state, asked again after events that may change it.
    run_state: RunState,
    conn: C,
    greeting: String,
    oob_offered: bool,
    clients: HashMap<u64, ClientSlot>,
    /// Every client's command queue, taken in turn.
    inbound: SelectAll<BoxStream<'static, (u64, Option<ToUpstream>)>>,
    in_flight: HashMap<String, InFlight>,
    next_client: u64,
    next_id: u64,
}

impl<C: MonitorConn> Connected<'_, C> {
    /// Serves until the monitor fails (`Some(why)`) or the bridge shuts down (`None`).
    async fn run(
        &mut self,
        requests: &mut mpsc::Receiver<AttachRequest>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<UpstreamError> {
        let timeout = self.settings.command_timeout;
        let mut overdue_check = tokio::time::interval(
            (timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(1)),
        );
        loop {
            if let Some(ask) = self.run_state.query() {
                if let Err(e) = self.conn.send(&ask).await {
                    return Some(self.last_words(e));
                }
            }
            let room = self.in_flight.len() < MAX_IN_FLIGHT;
            tokio::select! {
                _ = shutdown.changed() => return None,
                _ = overdue_check.tick() => self.check_overdue(),
                Some(req) = requests.recv() => self.attach(req),
                Some((client, msg)) = self.inbound.next(), if room => match msg {
                    None => {
                        self.clients.remove(&client);
                    }
                    Some(ToUpstream::Negotiated) => {
                        if let Some(slot) = self.clients.get_mut(&client) {
                            slot.negotiated = true;
                        }
                    }
                    Some(ToUpstream::Command(frame, budget)) => {
                        if let Err(e) = self.forward(client, frame, budget).await {
                            return Some(self.last_words(e));
                        }
                    }
                },
                message = self.conn.recv() => {
                    let routed = message.and_then(|text| self.route(text));
                    if let Err(e) = routed.and_then(|()| self.route_ready()) {
                        return Some(e);
                    }
                }
            }
        }
    }

    fn attach(&mut self, req: AttachRequest) {
        let id = self.next_client;
        self.next_client += 1;
        let (commands, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        let (messages_tx, messages_rx) = mpsc::unbounded_channel();
        let taken = Arc::new(AtomicU64::new(0));
        let messages = MessageQueue {
            rx: messages_rx,
            taken: taken.clone(),
        };
        let dropped = Arc::new(OnceLock::new());
        let queue = stream::unfold(commands_rx, |mut rx| async move {
            rx.recv().await.map(|m| (m, rx))
        })
        .map(move |m| (id, Some(m)))
        .chain(stream::once(async move { (id, None) }))
        .boxed();
        let attachment = Attachment {
            greeting: self.greeting.clone(),
            oob_offered: self.oob_offered,
            commands,
            messages,
            dropped: dropped.clone(),
        };
        if req.reply.send(Ok(attachment)).is_ok() {
            self.inbound.push(queue);
            self.clients.insert(
                id,
                ClientSlot {
                    messages: messages_tx,
                    given: 0,
                    taken,
                    last_taken: 0,
                    last_progress: Instant::now(),
                    dropped,
                    negotiated: false,
                },
            );
        }
    }

    /// Sends a client's command upstream under a fresh id: its canonical text, never the
    /// client's bytes.
    async fn forward(
        &mut self,
        client: u64,
        frame: ClientFrame,
        budget: OwnedSemaphorePermit,
    ) -> Result<(), UpstreamError> {
        if !self.clients.contains_key(&client) {
            return Ok(()); // dropped meanwhile
        }
        let upstream_id = format!("qmpc-{}", self.next_id);
        self.next_id += 1;
        let command = frame.command().to_owned();
        let (text, id) = frame.relabel(&upstream_id);
        tracing::debug!(target: "qmp_bridge::wire", to = "qemu", client, "{text}");
        self.in_flight.insert(
            upstream_id,
            InFlight {
                client,
                id,
                command,
                sent: Instant::now(),
                overdue: false,
                _budget: budget,
            },
        );
        self.conn.send(&text).await
    }

    /// Routes the messages that have already arrived (up to [`ROUTE_BATCH`]).
    fn route_ready(&mut self) -> Result<(), UpstreamError> {
        for _ in 0..ROUTE_BATCH {
            let Some(text) = self.conn.recv_ready() else {
                break;
            };
            self.route(text)?;
        }
        Ok(())
    }

    /// A write failed (QEMU closed the monitor, after `quit` say): what QEMU sent before
    /// it went (the `quit` reply, SHUTDOWN) still reaches its clients; then `why`.
    fn last_words(&mut self, why: UpstreamError) -> UpstreamError {
        while let Some(text) = self.conn.recv_ready() {
            if let Err(other) = self.route(text) {
                return other;
            }
        }
        why
    }

    /// The state shows a stall.
    fn shows_stall(&self) -> bool {
        self.state.borrow().stalled.is_some()
    }

    /// Tells the clients of commands overdue (newly) that QEMU has not answered, and shows
    /// or clears the stall in the state.
    fn check_overdue(&mut self) {
        let timeout = self.settings.command_timeout;
        let mut notices = Vec::new();
        let mut oldest: Option<&InFlight> = None;
        for f in self.in_flight.values_mut() {
            if f.sent.elapsed() < timeout {
                continue;
            }
            if !f.overdue {
                f.overdue = true;
                notices.push((f.client, stall_event(f)));
            }
        }
        for f in self.in_flight.values().filter(|f| f.overdue) {
            if oldest.is_none_or(|o| f.sent < o.sent) {
                oldest = Some(f);
            }
        }
        let stalled = oldest.map(|f| {
            format!(
                "QEMU has not answered '{}' for {} s (--command-timeout {} s)",
                f.command,
                f.sent.elapsed().as_secs(),
                timeout.as_secs_f64()
            )
        });
        for (client, notice) in notices {
            tracing::warn!(client, "{notice}");
            self.deliver(client, Arc::from(notice));
        }
        if stalled.is_some() || self.shows_stall() {
            self.state.send_modify(|s| s.stalled = stalled);
        }
    }

    fn route(&mut self, text: String) -> Result<(), UpstreamError> {
        let Ok(mut envelope) = Envelope::parse(&text) else {
            return Ok(()); // the framer only yields JSON objects
        };
        match envelope.kind() {
            Kind::Event => {
                tracing::debug!(target: "qmp_bridge::wire", to = "clients", "{text}");
                self.metrics.events.fetch_add(1, Ordering::Relaxed);
                if let Some(name) = envelope.event_name() {
                    self.run_state.on_event(&name);
                }
                let negotiated: Vec<u64> = self
                    .clients
                    .iter()
                    .filter(|(_, c)| c.negotiated)
                    .map(|(id, _)| *id)
                    .collect();
                let text: Arc<str> = Arc::from(text);
                for client in negotiated {
                    self.deliver(client, text.clone());
                }
            }
            Kind::Return | Kind::Error if envelope.id() == Some(json!(STATUS_ID)) => {
                let value = envelope.member("return").unwrap_or_default();
                let error = QmpError {
                    class: String::new(),
                    desc: String::new(),
                };
                let answer = match envelope.kind() {
                    Kind::Return => Ok(&value),
                    _ => Err(&error),
                };
                self.run_state.on_reply(Some(&json!(STATUS_ID)), answer);
                let status = self.run_state.status().map(str::to_owned);
                self.state.send_modify(|s| s.run_state = status);
            }
            Kind::Return | Kind::Error => {
                let counter = if envelope.kind() == Kind::Return {
                    &self.metrics.commands_ok
                } else {
                    &self.metrics.commands_error
                };
                let pending = match envelope.id() {
                    Some(Value::String(id)) => self.in_flight.remove(&id),
                    Some(_) => None,
                    None => {
                        // QEMU could not read a command the bridge wrote: whose it was
                        // cannot be told, and what follows may be out of step.
                        self.metrics
                            .unmatched_replies
                            .fetch_add(1, Ordering::Relaxed);
                        return Err(UpstreamError::Unmatched {
                            text: qmp::message::abbreviate(&text, 200),
                        });
                    }
                };
                let Some(pending) = pending else {
                    self.metrics
                        .unmatched_replies
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("reply matches no command in flight, dropped: {text}");
                    return Ok(());
                };
                counter.fetch_add(1, Ordering::Relaxed);
                self.metrics.observe_latency(pending.sent.elapsed());
                envelope.set_id(pending.id.as_ref());
                let reply = envelope.to_text();
                tracing::debug!(target: "qmp_bridge::wire", to = "client", client = pending.client, "{reply}");
                self.deliver(pending.client, Arc::from(reply));
                if self.shows_stall() && !self.in_flight.values().any(|f| f.overdue) {
                    self.state.send_modify(|s| s.stalled = None);
                }
            }
            Kind::Greeting | Kind::Unknown => {
                tracing::warn!("unexpected message from QEMU: {text}");
            }
        }
        Ok(())
    }

    /// Queues a message for a client; one that cannot keep up is dropped.
    fn deliver(&mut self, client: u64, text: Arc<str>) {
        let Some(slot) = self.clients.get_mut(&client) else {
            return;
        };
        let taken = slot.taken.load(Ordering::Relaxed);
        if taken != slot.last_taken {
            slot.last_taken = taken;
            slot.last_progress = Instant::now();
        }
        let waiting = slot.given - taken;
        let stalled = waiting > CLIENT_QUEUE_BYTES && slot.last_progress.elapsed() > STALL;
        if stalled || waiting > CLIENT_QUEUE_MAX_BYTES {
            let _ = slot.dropped.set(ClientFault::Backlog(waiting).into());
            tracing::warn!(client, waiting, "dropped a client that stopped reading");
            self.clients.remove(&client);
            return;
        }
        slot.given += text.len() as u64;
        if slot.messages.send(text).is_err() {
            self.clients.remove(&client);
        }
    }

    /// Ends every client's session with `why`.
    ///
    /// (Unanswered commands go with the connection, and their budgets with them.)
    fn drop_all(&mut self, why: &Ending) {
        for (_, slot) in self.clients.drain() {
            let _ = slot.dropped.set(why.clone());
        }
        self.in_flight.clear();
    }
}

/// The event telling a client QEMU has not answered its command in time: its `command`,
/// its `id` as the client wrote it, and the `seconds` waited so far.
fn stall_event(f: &InFlight) -> String {
    #[derive(serde::Serialize)]
    struct Stall<'a> {
        command: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Id>,
        seconds: u64,
    }
    let data = Stall {
        command: &f.command,
        id: f.id.as_ref(),
        seconds: f.sent.elapsed().as_secs(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    qmp::message::event(STALL_EVENT, &data, now)
}

#[cfg(test)]
mod tests;

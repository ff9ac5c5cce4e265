//! The console's state as plain Rust: connection phase and QMP handshake, requests and
//! their replies matched by `id`, the schema, the VM status, and the event log.
//!
//! The socket feeds [`Input`]s to [`Console::handle`], the page feeds [`Request`]s to
//! [`Console::send`]; both update the state and return the frames to send. The handshake
//! (the server greets, the client sends `qmp_capabilities`, its success means commands may
//! flow) is `qmp`'s [`Handshake`], the VM status its [`RunState`] (`query-status`, asked
//! again after run-state events), as in the bridge. Once ready the console reads
//! `query-qmp-schema`, `query-status`, `query-name` and the device drivers
//! (`qom-list-types`) itself (not shown in the transcript), and a driver's properties when
//! the form names it ([`Console::ask_device`]): they make the schema the page uses
//! ([`qmp::Schema::with_devices`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;

use qmp::client::{Handshake, Progress, RunState};
use qmp::devices::{self, DeviceProperty};
use qmp::{Greeting, Message, QmpError, Schema};
use serde_json::{json, Value};

use crate::events::EventLog;

/// Where the connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// The websocket is opening.
    Connecting,
    /// Open; waiting for QEMU's greeting.
    Greeting,
    /// `qmp_capabilities` sent; waiting for its reply.
    Negotiating,
    /// Commands may be sent.
    Ready,
    /// The websocket closed (code and reason as the bridge gave them).
    Closed { code: u16, reason: String },
}

impl Phase {
    /// The word the page shows (`data-testid="connection-state"`).
    pub fn label(&self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::Greeting => "greeting",
            Phase::Negotiating => "negotiating",
            Phase::Ready => "ready",
            Phase::Closed { .. } => "closed",
        }
    }
}

/// Something that happened on the socket. Times are milliseconds (the page's clock).
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Opened,
    /// One message's text and when it arrived.
    Received(String, f64),
    /// Messages that arrived together, delivered at once so the page renders once.
    Batch(Vec<(String, f64)>),
    Closed {
        code: u16,
        reason: String,
    },
}

/// The id of the handshake's `qmp_capabilities` command.
pub const CAPABILITIES_ID: &str = "qmp-console-capabilities";
/// The id of the console's own `query-status`.
const STATUS_ID: &str = "qmp-console-query-status";
/// Id prefix of the console's own requests (schema, status).
const OWN_ID: &str = "qmp-console-";
/// Transcript entries kept (older ones drop off the page).
pub const TRANSCRIPT_CAP: usize = 200;

/// The console's handshake: it asks for `oob` (if QEMU offers it) when `oob`.
fn handshake(oob: bool) -> Handshake {
    Handshake::new(CAPABILITIES_ID, if oob { &["oob"] } else { &[] })
}

/// How long to wait before reconnect attempt `attempt` (0, 1, ...): 1 s, doubling, at
/// most 30 s.
pub fn backoff_ms(attempt: u32) -> u32 {
    1000u32.saturating_mul(1 << attempt.min(5)).min(30_000)
}

/// A problem to show the user, without ending the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice(pub String);

/// What the user asks to send.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `execute` with optional `arguments`; the console adds a fresh `id`.
    Command { name: String, args: Option<Value> },
    /// Any text, sent exactly as typed (e.g. `exec-oob`).
    Raw(String),
    /// An HMP command line, through `human-monitor-command`.
    Hmp(String),
}

impl Request {
    /// `execute` `name` with no arguments.
    pub fn command(name: &str) -> Request {
        Request::Command {
            name: name.to_owned(),
            args: None,
        }
    }

    /// What the transcript calls it: the command name, or `hmp` / `raw` with the text.
    pub fn title(&self) -> String {
        match self {
            Request::Command { name, .. } => name.clone(),
            Request::Hmp(line) => format!("hmp: {line}"),
            Request::Raw(text) => match qmp::parse_client_frame(text) {
                Ok(frame) => format!("raw: {}", frame.command()),
                Err(_) => "raw".to_owned(),
            },
        }
    }
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The `return` value (`Null` for an error).
    pub value: Rc<Value>,
    pub error: Option<QmpError>,
    pub latency_ms: f64,
}

impl Reply {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// One transcript entry: a request and, once it came, its reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Position in the session (1, 2, ...).
    pub seq: u64,
    /// The request's `id` as the page shows it (`data-id`); empty when it had none.
    pub id: String,
    pub request: Request,
    /// The frame as sent.
    pub text: String,
    pub sent_ms: f64,
    pub reply: Option<Reply>,
}

/// Whose reply an id awaits.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Waiter {
    Entry(u64),
    Schema,
    Name,
    Drivers,
    Properties(String),
}

/// What is known of a driver's properties.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Known {
    Asked,
    Found(Vec<DeviceProperty>),
    /// QEMU would not say (asked once per connection).
    Failed,
}

/// The whole console state. Its fields are private: the page reads them through the
/// accessors and changes them through [`Console::handle`], [`Console::send`] and the few
/// methods for what the user does (dismiss notices, clear events, ask for `oob`).
#[derive(Debug, Clone)]
pub struct Console {
    url: String,
    phase: Phase,
    /// This connection's negotiation: QEMU's greeting, the capabilities enabled.
    handshake: Handshake,
    notices: Vec<Notice>,
    /// Ask for `oob` when QEMU offers it (takes effect at the next negotiation).
    want_oob: bool,
    /// The schema the page uses: QEMU's, with what is known of its devices folded in.
    schema: Option<Rc<Schema>>,
    /// QEMU's schema as it sent it.
    qemu_schema: Option<Rc<Schema>>,
    /// The device drivers QEMU has (`qom-list-types`), once read on this connection.
    drivers: Vec<String>,
    /// Drivers' properties asked of QEMU on this connection.
    properties: BTreeMap<String, Known>,
    /// QEMU's run state (`running`, `paused`, `prelaunch`, `shutdown`, ...).
    run_state: RunState,
    /// QEMU's `-name` (`query-name`), when it has one.
    qemu_name: Option<String>,
    /// Oldest first, at most [`TRANSCRIPT_CAP`].
    transcript: VecDeque<Rc<Entry>>,
    events: EventLog,
    /// Reply id (as JSON text) -> who waits for it.
    pending: HashMap<String, Waiter>,
    /// Entries sent without an id, oldest first: id-less replies go to them in order.
    idless: VecDeque<u64>,
    next_seq: u64,
    next_id: u64,
    own_count: u64,
}

fn id_key(id: &Value) -> String {
    id.to_string()
}

/// The `data-id` text of an id: a string as itself, anything else as JSON.
pub fn id_label(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Console {
    pub fn new(url: String) -> Self {
        Console {
            url,
            phase: Phase::Connecting,
            handshake: handshake(false),
            notices: Vec::new(),
            want_oob: false,
            schema: None,
            qemu_schema: None,
            drivers: Vec::new(),
            properties: BTreeMap::new(),
            run_state: RunState::new(STATUS_ID),
            qemu_name: None,
            transcript: VecDeque::new(),
            events: EventLog::default(),
            pending: HashMap::new(),
            idless: VecDeque::new(),
            next_seq: 1,
            next_id: 1,
            own_count: 0,
        }
    }

    /// A new connection attempt begins (first or after a close); the transcript and the
    /// events stay.
    pub fn connecting(&mut self) {
        self.fail_unanswered("the console reconnected");
        self.phase = Phase::Connecting;
        self.handshake = handshake(self.want_oob);
        // the QEMU behind the next connection may have other devices
        self.drivers.clear();
        self.properties.clear();
        self.fold_devices();
    }

    /// The schema the page uses, from QEMU's and what is known of its devices.
    fn fold_devices(&mut self) {
        let known: BTreeMap<String, Vec<DeviceProperty>> = self
            .properties
            .iter()
            .filter_map(|(d, k)| match k {
                Known::Found(p) => Some((d.clone(), p.clone())),
                _ => None,
            })
            .collect();
        self.schema = self.qemu_schema.as_ref().map(|s| {
            if self.drivers.is_empty() {
                s.clone()
            } else {
                Rc::new(s.with_devices(&self.drivers, &known))
            }
        });
    }

    /// Asks QEMU for `driver`'s properties (for `device_add`), once per connection: the
    /// frame to send, if it is a driver QEMU has and was not asked about yet.
    pub fn ask_device(&mut self, driver: &str) -> Option<String> {
        if !self.is_ready()
            || self.properties.contains_key(driver)
            || self
                .drivers
                .binary_search_by(|d| d.as_str().cmp(driver))
                .is_err()
        {
            return None;
        }
        self.properties.insert(driver.to_owned(), Known::Asked);
        Some(self.own_request_with(
            devices::LIST_PROPERTIES,
            Some(devices::list_properties_args(driver)),
            Waiter::Properties(driver.to_owned()),
        ))
    }

    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// The websocket URL the console connects to.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// QEMU's greeting on this connection, once it came.
    pub fn greeting(&self) -> Option<&Greeting> {
        self.handshake.greeting()
    }

    /// Problems to show, oldest first.
    pub fn notices(&self) -> &[Notice] {
        &self.notices
    }

    /// Whether `oob` is asked for when QEMU offers it.
    pub fn want_oob(&self) -> bool {
        self.want_oob
    }

    /// Capabilities enabled by the last negotiation.
    pub fn enabled(&self) -> &[String] {
        self.handshake.enabled()
    }

    /// QEMU's schema, once read (a new `Rc` for each QEMU the console reads it from).
    pub fn schema(&self) -> Option<&Rc<Schema>> {
        self.schema.as_ref()
    }

    /// QEMU's run state (`running`, `paused`, `prelaunch`, `shutdown`, ...), when known.
    pub fn vm_status(&self) -> Option<&str> {
        self.run_state.status()
    }

    /// QEMU's name for the VM (its `-name`), once known.
    pub fn qemu_name(&self) -> Option<&str> {
        self.qemu_name.as_deref()
    }

    /// Requests and their replies, oldest first, at most [`TRANSCRIPT_CAP`].
    pub fn transcript(&self) -> &VecDeque<Rc<Entry>> {
        &self.transcript
    }

    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// Asks for `oob` (or not) from the next negotiation on. Returns whether the current
    /// connection negotiated otherwise: capabilities are negotiated once per connection,
    /// so applying the choice means reconnecting.
    pub fn set_want_oob(&mut self, on: bool) -> bool {
        self.want_oob = on;
        if self.handshake.greeting().is_none() {
            // QEMU has not greeted yet: this connection's negotiation asks as chosen
            self.handshake = handshake(on);
        }
        let negotiated = self.enabled().iter().any(|c| c == "oob");
        self.is_ready() && negotiated != on
    }

    /// Something to tell the user (e.g. a send or a copy that failed).
    pub fn notify(&mut self, text: String) {
        self.notices.push(Notice(text));
    }

    pub fn dismiss_notices(&mut self) {
        self.notices.clear();
    }

    /// Empties the event log (the page's Clear).
    pub fn clear_events(&mut self) {
        self.events.clear();
    }

    /// Applies one input; returns the frames to send, in order.
    pub fn handle(&mut self, input: Input) -> Vec<String> {
        match input {
            Input::Opened => {
                self.phase = Phase::Greeting;
                Vec::new()
            }
            Input::Closed { code, reason } => {
                self.close(code, reason);
                Vec::new()
            }
            Input::Received(text, at) => self.receive(&text, at),
            Input::Batch(items) => items
                .into_iter()
                .flat_map(|(text, at)| self.receive(&text, at))
                .collect(),
        }
    }

    fn close(&mut self, code: u16, reason: String) {
        self.fail_unanswered(&format!("the connection closed ({reason})"));
        self.phase = Phase::Closed { code, reason };
    }

    /// Ends the wait of every request still waiting: no reply comes on a lost connection.
    fn fail_unanswered(&mut self, why: &str) {
        let unanswered: Vec<u64> = self
            .pending
            .values()
            .filter_map(|w| match w {
                Waiter::Entry(seq) => Some(*seq),
                _ => None,
            })
            .chain(self.idless.iter().copied())
            .collect();
        for seq in unanswered {
            let error = QmpError {
                class: "ConnectionClosed".into(),
                desc: format!("no reply: {why}"),
            };
            self.answer(seq, Value::Null, Some(error), f64::NAN);
        }
        self.pending.clear();
        self.idless.clear();
        self.run_state.reconnected();
    }

    fn fresh_id(&mut self) -> String {
        let id = format!("c{}", self.next_id);
        self.next_id += 1;
        id
    }

    /// Sends a user request: returns the frame for the socket, or why it can not go.
    pub fn send(&mut self, request: Request, now_ms: f64) -> Result<String, String> {
        if !self.is_ready() {
            return Err(format!("not connected ({})", self.phase.label()));
        }
        let (text, id) = match &request {
            Request::Command { name, args } => {
                let id = Value::String(self.fresh_id());
                (
                    qmp::message::command(name, args.clone(), Some(id.clone())),
                    Some(id),
                )
            }
            Request::Hmp(line) => {
                let id = Value::String(self.fresh_id());
                let args = json!({ "command-line": line });
                let text =
                    qmp::message::command("human-monitor-command", Some(args), Some(id.clone()));
                (text, Some(id))
            }
            Request::Raw(text) => {
                let id = match qmp::parse_client_frame(text) {
                    Ok(frame) => frame.id().cloned(),
                    Err(rejection) => rejection.id.map(|id| id.value()),
                };
                (text.clone(), id)
            }
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        match &id {
            Some(id) => {
                self.pending.insert(id_key(id), Waiter::Entry(seq));
            }
            None => self.idless.push_back(seq),
        }
        self.transcript.push_back(Rc::new(Entry {
            seq,
            id: id.as_ref().map(id_label).unwrap_or_default(),
            request,
            text: text.clone(),
            sent_ms: now_ms,
            reply: None,
        }));
        while self.transcript.len() > TRANSCRIPT_CAP {
            self.transcript.pop_front();
        }
        Ok(text)
    }

    fn own_request(&mut self, command: &str, waiter: Waiter) -> String {
        self.own_request_with(command, None, waiter)
    }

    fn own_request_with(&mut self, command: &str, args: Option<Value>, waiter: Waiter) -> String {
        self.own_count += 1;
        let id = Value::String(format!("{OWN_ID}{command}-{}", self.own_count));
        self.pending.insert(id_key(&id), waiter);
        qmp::message::command(command, args, Some(id))
    }

    fn answer(&mut self, seq: u64, value: Value, error: Option<QmpError>, at: f64) {
        if let Some(entry) = self.transcript.iter_mut().rev().find(|e| e.seq == seq) {
            let e = Rc::make_mut(entry);
            e.reply = Some(Reply {
                value: Rc::new(value),
                error,
                latency_ms: at - e.sent_ms,
            });
        }
    }

    fn receive(&mut self, text: &str, at: f64) -> Vec<String> {
        let message = match Message::parse(text) {
            Ok(m) => m,
            Err(e) => {
                self.notices
                    .push(Notice(format!("unreadable message from the bridge: {e}")));
                return Vec::new();
            }
        };
        if matches!(self.phase, Phase::Greeting | Phase::Negotiating) {
            if let Some(out) = self.negotiate(text) {
                return out;
            }
        }
        match message {
            Message::Greeting(_) => {
                self.notices
                    .push(Notice("unexpected second greeting".into()));
                Vec::new()
            }
            Message::Event(event) => {
                // shows the likely state at once; QEMU's own word follows
                let moved = self.run_state.on_event(&event.name);
                self.events.push(event, text);
                if moved && self.is_ready() {
                    self.run_state.query().into_iter().collect()
                } else {
                    Vec::new()
                }
            }
            Message::Return { id, value } => self.reply(id, value, None, at),
            Message::Error { id, error } => self.reply(id, Value::Null, Some(error), at),
        }
    }

    /// The handshake's part of a message (the greeting, the `qmp_capabilities` reply):
    /// the frames to send, or `None` when the message is not the handshake's.
    fn negotiate(&mut self, text: &str) -> Option<Vec<String>> {
        match self.handshake.on_message(text) {
            Progress::Send(capabilities) => {
                self.phase = Phase::Negotiating;
                Some(vec![capabilities])
            }
            Progress::Ready { .. } => {
                self.phase = Phase::Ready;
                let schema = self.own_request("query-qmp-schema", Waiter::Schema);
                let name = self.own_request("query-name", Waiter::Name);
                let drivers = self.own_request_with(
                    devices::LIST_TYPES,
                    Some(devices::list_types_args()),
                    Waiter::Drivers,
                );
                Some(
                    std::iter::once(schema)
                        .chain(self.run_state.query())
                        .chain([name, drivers])
                        .collect(),
                )
            }
            Progress::Refused(error) => {
                self.notices.push(Notice(format!(
                    "capabilities negotiation failed: {} ({})",
                    error.desc, error.class
                )));
                Some(Vec::new())
            }
            // not the handshake's (an event, another reply, anything before the greeting):
            // handled as any message
            Progress::Waiting | Progress::NotQmp(_) => None,
        }
    }

    fn reply(
        &mut self,
        id: Option<Value>,
        value: Value,
        error: Option<QmpError>,
        at: f64,
    ) -> Vec<String> {
        let waiter = match &id {
            Some(id) => self.pending.remove(&id_key(id)),
            None => self.idless.pop_front().map(Waiter::Entry),
        };
        match waiter {
            Some(Waiter::Entry(seq)) => self.answer(seq, value, error, at),
            // what QEMU says of its devices; a refusal (a policy) leaves device_add as the
            // schema has it
            Some(Waiter::Drivers) => {
                if let (None, Ok(drivers)) = (&error, devices::drivers(&value)) {
                    self.drivers = drivers;
                    self.fold_devices();
                }
            }
            Some(Waiter::Properties(driver)) => {
                let known = match (&error, devices::properties(&value)) {
                    (None, Ok(p)) => Known::Found(p),
                    _ => Known::Failed,
                };
                self.properties.insert(driver, known);
                self.fold_devices();
            }
            // QEMU's -name ({} without one); a refusal (a policy) leaves it unknown
            Some(Waiter::Name) => {
                self.qemu_name = value
                    .get("name")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty() && error.is_none())
                    .map(str::to_owned);
            }
            Some(Waiter::Schema) => match (error, Schema::from_value(&value)) {
                (None, Ok(schema)) => {
                    self.qemu_schema = Some(Rc::new(schema));
                    self.fold_devices();
                }
                (Some(e), _) => self
                    .notices
                    .push(Notice(format!("query-qmp-schema failed: {}", e.desc))),
                (None, Err(e)) => self
                    .notices
                    .push(Notice(format!("cannot use QEMU's schema: {e}"))),
            },
            None if self.run_state.is_asking()
                && self
                    .run_state
                    .on_reply(id.as_ref(), error.as_ref().map_or(Ok(&value), Err)) => {}
            None => {
                let id = id.map_or_else(|| "no id".to_owned(), |i| format!("id {i}"));
                self.notices
                    .push(Notice(format!("a reply nobody waits for ({id})")));
            }
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18"}, "capabilities": ["oob"]}}"#;

    fn rx(c: &mut Console, text: &str) -> Vec<String> {
        c.handle(Input::Received(text.into(), 0.0))
    }

    fn parse(frame: &str) -> Value {
        serde_json::from_str(frame).expect("frames are JSON")
    }

    /// A console that went through the handshake; returns it and its own first frames.
    fn ready() -> (Console, Vec<String>) {
        let mut c = Console::new("ws://h/ws".into());
        c.handle(Input::Opened);
        rx(&mut c, GREETING);
        let out = rx(
            &mut c,
            &format!(r#"{{"return": {{}}, "id": "{CAPABILITIES_ID}"}}"#),
        );
        (c, out)
    }

    #[test]
    fn handshake_reaches_ready() {
        let mut c = Console::new("ws://h/ws".into());
        assert_eq!(c.phase, Phase::Connecting);
        assert!(c.handle(Input::Opened).is_empty());
        assert_eq!(c.phase.label(), "greeting");
        let out = rx(&mut c, GREETING);
        assert_eq!(c.phase, Phase::Negotiating);
        let sent = parse(&out[0]);
        assert_eq!(sent["execute"], "qmp_capabilities");
        assert_eq!(sent["id"], CAPABILITIES_ID);
        assert!(sent.get("arguments").is_none(), "oob only when asked for");
        assert_eq!(c.greeting().unwrap().version.to_string(), "7.2.22");
        let out = rx(
            &mut c,
            &format!(r#"{{"return": {{}}, "id": "{CAPABILITIES_ID}"}}"#),
        );
        assert_eq!(c.phase, Phase::Ready);
        let asked: Vec<Value> = out.iter().map(|f| parse(f)["execute"].clone()).collect();
        assert_eq!(
            asked,
            [
                json!("query-qmp-schema"),
                json!("query-status"),
                json!("query-name"),
                json!("qom-list-types")
            ]
        );
        assert_eq!(
            parse(&out[3])["arguments"],
            json!({"implements": "device", "abstract": false})
        );
    }

    #[test]
    fn oob_is_enabled_when_wanted_and_offered() {
        let mut c = Console::new(String::new());
        c.set_want_oob(true);
        c.handle(Input::Opened);
        let out = rx(&mut c, GREETING);
        assert_eq!(parse(&out[0])["arguments"], json!({"enable": ["oob"]}));
        assert_eq!(c.enabled(), ["oob"]);
        // not offered: not asked for
        let mut c = Console::new(String::new());
        c.set_want_oob(true);
        c.handle(Input::Opened);
        let out = rx(&mut c, &GREETING.replace(r#"["oob"]"#, "[]"));
        assert!(parse(&out[0]).get("arguments").is_none());
        assert!(c.enabled().is_empty());
    }

    #[test]
    fn oob_choice_says_when_a_reconnect_applies_it() {
        let mut c = Console::new(String::new());
        assert!(
            !c.set_want_oob(true),
            "not connected: the next negotiation asks"
        );
        assert!(c.want_oob());
        c.handle(Input::Opened);
        rx(&mut c, GREETING);
        rx(
            &mut c,
            &format!(r#"{{"return": {{}}, "id": "{CAPABILITIES_ID}"}}"#),
        );
        assert_eq!(c.enabled(), ["oob"]);
        assert!(!c.set_want_oob(true), "already on");
        assert!(
            c.set_want_oob(false),
            "on: turning it off needs a new negotiation"
        );
        assert!(!c.want_oob());
    }

    #[test]
    fn notices_and_events_are_cleared_on_request() {
        let (mut c, _) = ready();
        c.notify("copy failed".into());
        assert_eq!(c.notices(), [Notice("copy failed".into())]);
        c.dismiss_notices();
        assert!(c.notices().is_empty());
        rx(
            &mut c,
            r#"{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 0}}"#,
        );
        assert_eq!(c.events().total(), 1);
        c.clear_events();
        assert_eq!(c.events().total(), 0);
    }

    #[test]
    fn negotiation_failure_is_shown() {
        let mut c = Console::new(String::new());
        c.handle(Input::Opened);
        rx(&mut c, GREETING);
        let reply = format!(
            r#"{{"error": {{"class": "GenericError", "desc": "nope"}}, "id": "{CAPABILITIES_ID}"}}"#
        );
        rx(&mut c, &reply);
        assert_eq!(c.phase, Phase::Negotiating);
        assert!(c.notices[0].0.contains("nope"));
    }

    #[test]
    fn close_keeps_the_reason_and_garbage_is_a_notice() {
        let mut c = Console::new(String::new());
        c.handle(Input::Opened);
        assert!(rx(&mut c, "not json").is_empty());
        assert_eq!(c.notices.len(), 1);
        c.handle(Input::Closed {
            code: 1013,
            reason: "QMP monitor busy".into(),
        });
        assert_eq!(
            c.phase,
            Phase::Closed {
                code: 1013,
                reason: "QMP monitor busy".into()
            }
        );
    }

    #[test]
    fn nothing_is_sent_before_ready() {
        let mut c = Console::new(String::new());
        let r = c.send(Request::command("stop"), 0.0);
        assert_eq!(r, Err("not connected (connecting)".into()));
        assert!(c.transcript.is_empty());
    }

    #[test]
    fn replies_match_by_id_out_of_order() {
        let (mut c, _) = ready();
        let a = parse(&c.send(Request::command("query-status"), 10.0).unwrap());
        assert_eq!(
            a["id"], "c1",
            "the console's own requests use ids of their own"
        );
        let b = parse(
            &c.send(
                Request::Command {
                    name: "device_del".into(),
                    args: Some(json!({"id": "x"})),
                },
                20.0,
            )
            .unwrap(),
        );
        assert_ne!(a["id"], b["id"], "fresh ids");
        assert_eq!(b["arguments"], json!({"id": "x"}));
        // b answers first
        let reply_b = json!({"error": {"class": "DeviceNotFound", "desc": "Device 'x' not found"}, "id": b["id"]});
        c.handle(Input::Received(reply_b.to_string(), 21.5));
        let reply_a = json!({"return": {"status": "paused", "running": false}, "id": a["id"]});
        c.handle(Input::Received(reply_a.to_string(), 30.0));
        let e0 = &c.transcript[0];
        let e1 = &c.transcript[1];
        assert_eq!(e0.id, a["id"].as_str().unwrap());
        let r0 = e0.reply.as_ref().unwrap();
        assert!(r0.ok());
        assert_eq!(r0.value["status"], "paused");
        assert_eq!(r0.latency_ms, 20.0);
        let r1 = e1.reply.as_ref().unwrap();
        assert!(!r1.ok());
        assert_eq!(r1.error.as_ref().unwrap().class, "DeviceNotFound");
        assert_eq!(r1.latency_ms, 1.5);
        assert!(c.notices.is_empty());
        // a reply to nobody is a notice, not a crash
        rx(&mut c, r#"{"return": {}, "id": "zzz"}"#);
        assert!(c.notices[0].0.contains("zzz"));
    }

    #[test]
    fn raw_and_hmp_requests() {
        let (mut c, _) = ready();
        let raw = r#"{"exec-oob": "migrate-pause", "id": 42}"#;
        assert_eq!(
            c.send(Request::Raw(raw.into()), 0.0).unwrap(),
            raw,
            "sent as typed"
        );
        assert_eq!(c.transcript[0].id, "42");
        assert_eq!(c.transcript[0].request.title(), "raw: migrate-pause");
        c.send(Request::Raw(r#"{"execute": "stop"}"#.into()), 0.0)
            .unwrap();
        assert_eq!(c.transcript[1].id, "");
        let hmp = parse(&c.send(Request::Hmp("info status".into()), 0.0).unwrap());
        assert_eq!(hmp["execute"], "human-monitor-command");
        assert_eq!(hmp["arguments"]["command-line"], "info status");
        // the id-less reply goes to the id-less request
        rx(&mut c, r#"{"return": {}}"#);
        assert!(c.transcript[1].reply.is_some());
        assert!(c.transcript[0].reply.is_none());
        rx(
            &mut c,
            &json!({"return": "VM status: paused\r\n", "id": hmp["id"]}).to_string(),
        );
        assert_eq!(
            *c.transcript[2].reply.as_ref().unwrap().value,
            json!("VM status: paused\r\n")
        );
    }

    #[test]
    fn close_fails_what_is_unanswered() {
        let (mut c, _) = ready();
        c.send(Request::command("quit"), 0.0).unwrap();
        c.handle(Input::Closed {
            code: 1000,
            reason: "QEMU closed the monitor".into(),
        });
        let r = c.transcript[0].reply.as_ref().unwrap();
        assert_eq!(r.error.as_ref().unwrap().class, "ConnectionClosed");
        c.connecting();
        assert_eq!(c.phase, Phase::Connecting);
        // reconnecting while a request waits fails it too
        let (mut c, _) = ready();
        c.send(Request::command("query-status"), 0.0).unwrap();
        c.connecting();
        let r = c.transcript[0].reply.as_ref().unwrap();
        assert_eq!(
            r.error.as_ref().unwrap().desc,
            "no reply: the console reconnected"
        );
        assert!(c.greeting().is_none());
        assert_eq!(c.transcript.len(), 1, "the transcript survives a reconnect");
    }

    #[test]
    fn schema_and_status_arrive() {
        let (mut c, out) = ready();
        let schema_id = parse(&out[0])["id"].clone();
        let status_id = parse(&out[1])["id"].clone();
        let schema: Value =
            serde_json::from_str(include_str!("../../qmp/tests/data/qemu-7.2-schema.json"))
                .unwrap();
        c.handle(Input::Received(
            json!({"return": schema, "id": schema_id}).to_string(),
            0.0,
        ));
        assert_eq!(c.schema.as_ref().unwrap().commands().len(), 216);
        rx(
            &mut c,
            &json!({"return": {"status": "prelaunch", "running": false}, "id": status_id})
                .to_string(),
        );
        assert_eq!(c.vm_status(), Some("prelaunch"));
        assert!(
            c.transcript.is_empty(),
            "the console's own requests stay out of the transcript"
        );
        assert!(c.notices.is_empty(), "{:?}", c.notices);
    }

    #[test]
    fn events_move_the_status_and_ask_again_once() {
        let (mut c, out) = ready();
        let status_id = parse(&out[1])["id"].clone();
        rx(
            &mut c,
            &json!({"return": {"status": "prelaunch"}, "id": status_id}).to_string(),
        );
        let resume = r#"{"event": "RESUME", "timestamp": {"seconds": 1, "microseconds": 0}}"#;
        let out = rx(&mut c, resume);
        assert_eq!(c.vm_status(), Some("running"));
        assert_eq!(parse(&out[0])["execute"], "query-status");
        let stop = r#"{"event": "STOP", "timestamp": {"seconds": 2, "microseconds": 0}}"#;
        assert!(rx(&mut c, stop).is_empty(), "one status query at a time");
        assert_eq!(c.vm_status(), Some("paused"));
        rx(
            &mut c,
            &json!({"return": {"status": "paused"}, "id": parse(&out[0])["id"]}).to_string(),
        );
        let shutdown = r#"{"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}, "timestamp": {"seconds": 3, "microseconds": 0}}"#;
        assert_eq!(rx(&mut c, shutdown).len(), 1);
        assert_eq!(c.vm_status(), Some("shutdown"));
        let other = r#"{"event": "JOB_STATUS_CHANGE", "data": {"id": "j", "status": "created"}, "timestamp": {"seconds": 4, "microseconds": 0}}"#;
        assert!(rx(&mut c, other).is_empty());
        assert_eq!(c.events.total(), 4);
        assert_eq!(c.events.count("STOP"), 1);
    }

    #[test]
    fn the_status_outlives_a_refused_query_and_a_reconnect() {
        let (mut c, out) = ready();
        let status_id = parse(&out[1])["id"].clone();
        rx(
            &mut c,
            &json!({"return": {"status": "running"}, "id": status_id}).to_string(),
        );
        let stop = r#"{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 0}}"#;
        let out = rx(&mut c, stop);
        let refused = json!({"error": {"class": "GenericError", "desc": "refused by qmp-bridge policy: query-status"}, "id": parse(&out[0])["id"]});
        rx(&mut c, &refused.to_string());
        assert_eq!(c.vm_status(), Some("paused"), "the event's word stands");
        assert!(c.notices.is_empty(), "{:?}", c.notices);
        assert!(c.transcript.is_empty());
        c.handle(Input::Closed {
            code: 1006,
            reason: "gone".into(),
        });
        c.connecting();
        assert_eq!(c.vm_status(), Some("paused"), "shown until QEMU says again");
        c.handle(Input::Opened);
        rx(&mut c, GREETING);
        let out = rx(
            &mut c,
            &format!(r#"{{"return": {{}}, "id": "{CAPABILITIES_ID}"}}"#),
        );
        assert_eq!(parse(&out[1])["execute"], "query-status", "asked again");
    }

    #[test]
    fn oob_chosen_before_the_greeting_applies_to_this_connection() {
        let mut c = Console::new(String::new());
        c.handle(Input::Opened);
        assert!(!c.set_want_oob(true));
        let out = rx(&mut c, GREETING);
        assert_eq!(parse(&out[0])["arguments"], json!({"enable": ["oob"]}));
        assert!(!c.set_want_oob(false), "not ready yet: nothing to redo");
        assert_eq!(c.enabled(), ["oob"], "this negotiation asked already");
    }

    #[test]
    fn a_batch_is_handled_in_order() {
        let (mut c, _) = ready();
        let id = parse(&c.send(Request::command("stop"), 0.0).unwrap())["id"].clone();
        let ev = r#"{"event": "STOP", "timestamp": {"seconds": 2, "microseconds": 0}}"#;
        let batch = vec![
            (ev.to_owned(), 1.0),
            (json!({"return": {}, "id": id}).to_string(), 2.0),
        ];
        c.handle(Input::Batch(batch));
        assert_eq!(c.events.total(), 1);
        assert_eq!(c.transcript[0].reply.as_ref().unwrap().latency_ms, 2.0);
    }

    #[test]
    fn reconnect_backs_off() {
        let waits: Vec<u32> = (0..8).map(backoff_ms).collect();
        assert_eq!(waits, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    }

    #[test]
    fn transcript_is_capped() {
        let (mut c, _) = ready();
        for _ in 0..TRANSCRIPT_CAP + 5 {
            c.send(Request::command("query-status"), 0.0).unwrap();
        }
        assert_eq!(c.transcript.len(), TRANSCRIPT_CAP);
        assert_eq!(c.transcript[0].seq, 6);
        // the newest still gets its reply
        let last = c.transcript.back().unwrap().id.clone();
        rx(&mut c, &json!({"return": {}, "id": last}).to_string());
        assert!(c.transcript.back().unwrap().reply.is_some());
    }

    #[test]
    fn qemu_s_name_is_asked_once_ready() {
        let (mut c, out) = ready();
        let name_id = parse(&out[2])["id"].clone();
        assert_eq!(c.qemu_name(), None);
        rx(
            &mut c,
            &json!({"return": {"name": "web1"}, "id": name_id}).to_string(),
        );
        assert_eq!(c.qemu_name(), Some("web1"));
        assert!(c.transcript.is_empty() && c.notices.is_empty());
        // without -name QEMU answers {}; a refusal is no notice either
        let (mut c, out) = ready();
        rx(
            &mut c,
            &json!({"return": {}, "id": parse(&out[2])["id"]}).to_string(),
        );
        assert_eq!(c.qemu_name(), None);
        let (mut c, out) = ready();
        let refused = json!({"error": {"class": "GenericError", "desc": "refused by qmp-bridge policy: query-name"}, "id": parse(&out[2])["id"]});
        rx(&mut c, &refused.to_string());
        assert_eq!(c.qemu_name(), None);
        assert!(c.notices.is_empty(), "{:?}", c.notices);
    }

    #[test]
    fn device_add_learns_the_drivers_and_their_properties() {
        let (mut c, out) = ready();
        let id = |f: &str| parse(f)["id"].clone();
        let schema: Value =
            serde_json::from_str(include_str!("../../qmp/tests/data/qemu-7.2-schema.json"))
                .unwrap();
        rx(
            &mut c,
            &json!({"return": schema, "id": id(&out[0])}).to_string(),
        );
        let nic = json!({"driver": "virtio-net-pci", "netdev": "n1"});
        let problems = |c: &Console| {
            c.schema()
                .unwrap()
                .validate("device_add", Some(&nic))
                .unwrap()
                .len()
        };
        assert_eq!(problems(&c), 1, "netdev is unknown to QEMU's schema");
        assert_eq!(c.ask_device("virtio-net-pci"), None, "no drivers known yet");
        let types = json!([{"name": "virtio-net-pci"}, {"name": "e1000"}]);
        rx(
            &mut c,
            &json!({"return": types, "id": id(&out[3])}).to_string(),
        );
        // asked once, for a driver QEMU has
        let ask = c.ask_device("virtio-net-pci").expect("asked");
        assert_eq!(parse(&ask)["execute"], "device-list-properties");
        assert_eq!(
            parse(&ask)["arguments"],
            json!({"typename": "virtio-net-pci"})
        );
        assert_eq!(c.ask_device("virtio-net-pci"), None, "once");
        assert_eq!(c.ask_device("no-such-nic"), None);
        let before = c.schema().cloned().unwrap();
        let props = json!([{"name": "netdev", "type": "str"}, {"name": "mac", "type": "str"}]);
        rx(
            &mut c,
            &json!({"return": props, "id": parse(&ask)["id"]}).to_string(),
        );
        assert!(
            !Rc::ptr_eq(&before, c.schema().unwrap()),
            "a new schema for the page"
        );
        assert_eq!(problems(&c), 0);
        assert!(
            c.transcript.is_empty() && c.notices.is_empty(),
            "{:?}",
            c.notices
        );
        // a driver QEMU will not describe is not asked again
        let ask = c.ask_device("e1000").unwrap();
        let error =
            json!({"error": {"class": "GenericError", "desc": "no"}, "id": parse(&ask)["id"]});
        rx(&mut c, &error.to_string());
        assert_eq!(c.ask_device("e1000"), None);
        assert!(c.notices.is_empty());
        // a new connection (perhaps another QEMU) learns again
        c.connecting();
        assert_eq!(problems(&c), 1);
    }
}

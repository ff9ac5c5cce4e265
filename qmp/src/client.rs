//! The client side of a QMP session, without I/O, for whoever holds the connection (the
//! bridge's multiplexer, the page): [`Handshake`] (greeting, then capabilities
//! negotiation) and [`RunState`] (the VM's `query-status`, kept current from events).
//!
//! Each takes the server's messages as text and says what to send; the caller does the
//! sending, so both sides share one implementation whatever carries the bytes.

use serde_json::{json, Value};

use crate::message::{self, Greeting, Message, QmpError, RUN_STATE_EVENTS};

/// Where a [`Handshake`] is.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Nothing to do yet.
    Waiting,
    /// Send this command (`qmp_capabilities`).
    Send(String),
    /// Negotiated: the server's greeting, and the capabilities enabled.
    Ready {
        greeting: Greeting,
        enabled: Vec<String>,
    },
    /// The server refused the negotiation.
    Refused(QmpError),
    /// What came first was not a QMP greeting.
    NotQmp(String),
}

/// QMP's opening, seen from the client: the server greets, the client enables the
/// capabilities it wants that the server offers, and a success reply ends it.
#[derive(Debug, Clone)]
pub struct Handshake {
    id: String,
    want: Vec<String>,
    greeting: Option<Greeting>,
    enabled: Vec<String>,
}

impl Handshake {
    /// A handshake whose `qmp_capabilities` carries `id`, enabling those of `want` the
    /// server offers.
    pub fn new(id: &str, want: &[&str]) -> Handshake {
        Handshake {
            id: id.to_owned(),
            want: want.iter().map(|c| (*c).to_owned()).collect(),
            greeting: None,
            enabled: Vec::new(),
        }
    }

    /// The server's greeting, once it came.
    pub fn greeting(&self) -> Option<&Greeting> {
        self.greeting.as_ref()
    }

    /// The capabilities asked for: those wanted that the greeting offered (enabled once
    /// the negotiation succeeds). Empty before the greeting.
    pub fn enabled(&self) -> &[String] {
        &self.enabled
    }

    /// Takes the server's next message and says what comes next. Messages that are not
    /// part of the handshake (events, other replies) are `Waiting`.
    pub fn on_message(&mut self, text: &str) -> Progress {
        let message = Message::parse(text);
        let Some(greeting) = &self.greeting else {
            return match message {
                Ok(Message::Greeting(greeting)) => {
                    self.enabled = self
                        .want
                        .iter()
                        .filter(|c| greeting.capabilities.contains(c))
                        .cloned()
                        .collect();
                    self.greeting = Some(greeting);
                    let enable: Vec<&str> = self.enabled.iter().map(String::as_str).collect();
                    let id = Some(json!(self.id));
                    Progress::Send(message::qmp_capabilities(&enable, id))
                }
                Ok(other) => Progress::NotQmp(format!("expected a greeting, got {other:?}")),
                Err(e) => Progress::NotQmp(e.to_string()),
            };
        };
        let ours = |id: &Option<Value>| id.as_ref().and_then(Value::as_str) == Some(&self.id);
        match message {
            Ok(Message::Return { id, .. }) if ours(&id) => Progress::Ready {
                greeting: greeting.clone(),
                enabled: self.enabled.clone(),
            },
            Ok(Message::Error { id, error }) if ours(&id) => Progress::Refused(error),
            _ => Progress::Waiting,
        }
    }
}

/// A VM's run state (`query-status`'s `status`), kept current: after an event that may
/// change it, ask again, one question at a time. Until QEMU answers, the state the event
/// most likely left (STOP: `paused`, ...) stands in for it.
#[derive(Debug, Clone)]
pub struct RunState {
    id: String,
    /// QEMU's last answer.
    answered: Option<String>,
    /// What the events since that answer suggest.
    likely: Option<&'static str>,
    wanted: bool,
    asking: bool,
}

/// The run state an event most likely leaves the VM in, before QEMU says.
fn likely_after(event: &str) -> Option<&'static str> {
    match event {
        "STOP" => Some("paused"),
        "RESUME" | "WAKEUP" => Some("running"),
        "SHUTDOWN" => Some("shutdown"),
        "SUSPEND" => Some("suspended"),
        "GUEST_PANICKED" => Some("guest-panicked"),
        _ => None,
    }
}

impl RunState {
    /// A tracker whose queries carry `id`; it wants the status at once.
    pub fn new(id: &str) -> RunState {
        RunState {
            id: id.to_owned(),
            answered: None,
            likely: None,
            wanted: true,
            asking: false,
        }
    }

    /// The status (`running`, `paused`, `prelaunch`, ...): the likely one after an event,
    /// else the one last answered (unknown after an error answer).
    pub fn status(&self) -> Option<&str> {
        self.likely.or(self.answered.as_deref())
    }

    /// A query is out and not answered yet.
    pub fn is_asking(&self) -> bool {
        self.asking
    }

    /// Notes an event; `true` when it may have changed the status (then a query is due).
    pub fn on_event(&mut self, name: &str) -> bool {
        if !RUN_STATE_EVENTS.contains(&name) {
            return false;
        }
        self.wanted = true;
        if let Some(likely) = likely_after(name) {
            self.likely = Some(likely);
        }
        true
    }

    /// The connection is new: the query out on the old one gets no answer, so ask again.
    /// The status stays as it was until then.
    pub fn reconnected(&mut self) {
        self.asking = false;
        self.wanted = true;
    }

    /// The `query-status` to send now, if one is due.
    pub fn query(&mut self) -> Option<String> {
        if !self.wanted || self.asking {
            return None;
        }
        self.wanted = false;
        self.asking = true;
        Some(message::command("query-status", None, Some(json!(self.id))))
    }

    /// Takes a reply: `true` when it answered this tracker's query. The status is then
    /// QEMU's answer; after an error answer, what events since the last answer suggest,
    /// if anything.
    pub fn on_reply(&mut self, id: Option<&Value>, value: Result<&Value, &QmpError>) -> bool {
        if id.and_then(Value::as_str) != Some(&self.id) {
            return false;
        }
        self.asking = false;
        self.answered = value
            .ok()
            .and_then(|v| v["status"].as_str())
            .map(str::to_owned);
        if self.answered.is_some() {
            self.likely = None;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}"#;

    #[test]
    fn a_handshake_enables_what_is_wanted_and_offered() {
        let mut h = Handshake::new("caps", &["oob", "bogus"]);
        let Progress::Send(cmd) = h.on_message(GREETING) else {
            panic!()
        };
        let cmd: Value = serde_json::from_str(&cmd).unwrap();
        assert_eq!(cmd["arguments"]["enable"], json!(["oob"]));
        assert_eq!(cmd["id"], json!("caps"));
        let event = r#"{"event": "X", "data": {}, "timestamp": {"seconds": 1, "microseconds": 0}}"#;
        assert_eq!(h.on_message(event), Progress::Waiting);
        assert_eq!(
            h.on_message(r#"{"return": {}, "id": "other"}"#),
            Progress::Waiting
        );
        let Progress::Ready { greeting, enabled } = h.on_message(r#"{"return": {}, "id": "caps"}"#)
        else {
            panic!()
        };
        assert_eq!(enabled, ["oob"]);
        assert_eq!(greeting.version.minor, 2);
    }

    #[test]
    fn a_handshake_says_when_it_fails() {
        let mut h = Handshake::new("caps", &[]);
        assert!(matches!(
            h.on_message(r#"{"return": {}}"#),
            Progress::NotQmp(_)
        ));
        let mut h = Handshake::new("caps", &[]);
        let Progress::Send(cmd) = h.on_message(GREETING) else {
            panic!()
        };
        assert!(!cmd.contains("enable"), "{cmd}");
        let refused = r#"{"error": {"class": "GenericError", "desc": "no"}, "id": "caps"}"#;
        assert!(matches!(h.on_message(refused), Progress::Refused(e) if e.desc == "no"));
    }

    #[test]
    fn a_handshake_keeps_the_greeting_and_what_it_asked_for() {
        let mut h = Handshake::new("caps", &["oob"]);
        assert!(h.greeting().is_none() && h.enabled().is_empty());
        h.on_message(GREETING);
        assert_eq!(h.greeting().map(|g| g.version.minor), Some(2));
        assert_eq!(h.enabled(), ["oob"], "asked for, before the reply");
        let mut h = Handshake::new("caps", &["oob"]);
        h.on_message(&GREETING.replace(r#"["oob"]"#, "[]"));
        assert!(h.enabled().is_empty(), "not offered");
    }

    #[test]
    fn the_run_state_shows_what_an_event_suggests_until_qemu_answers() {
        let mut r = RunState::new("st");
        r.query();
        assert!(r.on_reply(Some(&json!("st")), Ok(&json!({"status": "running"}))));
        assert!(r.on_event("STOP"));
        assert_eq!(r.status(), Some("paused"));
        assert!(r.on_event("RESET"), "asks, with no guess");
        assert_eq!(r.status(), Some("paused"));
        assert!(!r.on_event("DEVICE_DELETED"));
        r.query();
        let error = QmpError {
            class: "GenericError".into(),
            desc: "refused".into(),
        };
        assert!(r.on_reply(Some(&json!("st")), Err(&error)));
        assert_eq!(r.status(), Some("paused"), "an error leaves the guess");
        r.on_event("RESUME");
        r.query();
        assert!(r.on_reply(Some(&json!("st")), Ok(&json!({"status": "inmigrate"}))));
        assert_eq!(r.status(), Some("inmigrate"), "QEMU's word wins");
    }

    #[test]
    fn the_run_state_asks_again_on_a_new_connection() {
        let mut r = RunState::new("st");
        r.query();
        r.on_reply(Some(&json!("st")), Ok(&json!({"status": "paused"})));
        r.on_event("RESUME");
        assert!(r.query().is_some());
        assert_eq!(r.query(), None);
        r.reconnected();
        assert_eq!(r.status(), Some("running"), "kept until answered");
        assert!(r.query().is_some(), "the old question is not waited for");
    }

    #[test]
    fn the_run_state_asks_once_per_change() {
        let mut r = RunState::new("st");
        let q = r.query().expect("asks at once");
        assert!(q.contains("query-status") && q.contains("\"st\""), "{q}");
        assert_eq!(r.query(), None, "one question at a time");
        r.on_event("STOP");
        assert_eq!(r.query(), None, "still waiting for the answer");
        assert!(!r.on_reply(Some(&json!("other")), Ok(&json!({"status": "x"}))));
        assert!(r.on_reply(Some(&json!("st")), Ok(&json!({"status": "paused"}))));
        assert_eq!(r.status(), Some("paused"));
        assert!(
            r.query().is_some(),
            "the STOP seen meanwhile is asked about"
        );
        let error = QmpError {
            class: "GenericError".into(),
            desc: "x".into(),
        };
        assert!(r.on_reply(Some(&json!("st")), Err(&error)));
        assert_eq!(r.status(), None);
        r.on_event("DEVICE_DELETED");
        assert_eq!(r.query(), None, "not a run-state event");
    }
}

//! The console's state: connection phase and the QMP handshake, as plain Rust.
//!
//! The socket feeds [`Input`]s to [`Console::handle`], which updates the state and returns
//! the frames to send. Handshake, per QEMU's qmp-spec: the server greets, the client sends
//! `qmp_capabilities`, and its success means commands may flow.

use qmp::{Greeting, Message};
use serde_json::Value;

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

/// Something that happened on the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Opened,
    Received(String),
    Closed { code: u16, reason: String },
}

/// The id of the handshake's `qmp_capabilities` command.
pub const CAPABILITIES_ID: &str = "qmp-console-capabilities";

/// A problem to show the user, without ending the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice(pub String);

/// The whole console state.
#[derive(Debug, Clone, PartialEq)]
pub struct Console {
    pub url: String,
    pub phase: Phase,
    pub greeting: Option<Greeting>,
    pub notices: Vec<Notice>,
}

impl Console {
    pub fn new(url: String) -> Self {
        Console {
            url,
            phase: Phase::Connecting,
            greeting: None,
            notices: Vec::new(),
        }
    }

    /// Applies one input; returns the frames to send, in order.
    pub fn handle(&mut self, input: Input) -> Vec<String> {
        match input {
            Input::Opened => {
                self.phase = Phase::Greeting;
                Vec::new()
            }
            Input::Closed { code, reason } => {
                self.phase = Phase::Closed { code, reason };
                Vec::new()
            }
            Input::Received(text) => self.receive(&text),
        }
    }

    fn receive(&mut self, text: &str) -> Vec<String> {
        let message = match Message::parse(text) {
            Ok(m) => m,
            Err(e) => {
                self.notices.push(Notice(format!("unreadable message from the bridge: {e}")));
                return Vec::new();
            }
        };
        match (&self.phase, message) {
            (Phase::Greeting, Message::Greeting(greeting)) => {
                self.greeting = Some(greeting);
                self.phase = Phase::Negotiating;
                vec![qmp::message::qmp_capabilities(
                    &[],
                    Some(Value::String(CAPABILITIES_ID.into())),
                )]
            }
            (Phase::Negotiating, Message::Return { id: Some(Value::String(id)), .. })
                if id == CAPABILITIES_ID =>
            {
                self.phase = Phase::Ready;
                Vec::new()
            }
            (Phase::Negotiating, Message::Error { id: Some(Value::String(id)), error })
                if id == CAPABILITIES_ID =>
            {
                self.notices.push(Notice(format!(
                    "capabilities negotiation failed: {} ({})",
                    error.desc, error.class
                )));
                Vec::new()
            }
            (_, Message::Greeting(_)) => {
                self.notices.push(Notice("unexpected second greeting".into()));
                Vec::new()
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18"}, "capabilities": ["oob"]}}"#;

    #[test]
    fn handshake_reaches_ready() {
        let mut c = Console::new("ws://h/ws".into());
        assert_eq!(c.phase, Phase::Connecting);
        assert!(c.handle(Input::Opened).is_empty());
        assert_eq!(c.phase.label(), "greeting");
        let out = c.handle(Input::Received(GREETING.into()));
        assert_eq!(c.phase, Phase::Negotiating);
        let sent: Value = serde_json::from_str(&out[0]).unwrap();
        assert_eq!(sent["execute"], "qmp_capabilities");
        assert_eq!(sent["id"], CAPABILITIES_ID);
        assert_eq!(c.greeting.as_ref().unwrap().version.to_string(), "7.2.22");
        let reply = format!(r#"{{"return": {{}}, "id": "{CAPABILITIES_ID}"}}"#);
        assert!(c.handle(Input::Received(reply)).is_empty());
        assert_eq!(c.phase, Phase::Ready);
    }

    #[test]
    fn negotiation_failure_is_shown() {
        let mut c = Console::new(String::new());
        c.handle(Input::Opened);
        c.handle(Input::Received(GREETING.into()));
        let reply = format!(
            r#"{{"error": {{"class": "GenericError", "desc": "nope"}}, "id": "{CAPABILITIES_ID}"}}"#
        );
        c.handle(Input::Received(reply));
        assert_eq!(c.phase, Phase::Negotiating);
        assert!(c.notices[0].0.contains("nope"));
    }

    #[test]
    fn close_keeps_the_reason_and_garbage_is_a_notice() {
        let mut c = Console::new(String::new());
        c.handle(Input::Opened);
        assert!(c.handle(Input::Received("not json".into())).is_empty());
        assert_eq!(c.notices.len(), 1);
        c.handle(Input::Closed { code: 1013, reason: "QMP monitor busy".into() });
        assert_eq!(
            c.phase,
            Phase::Closed { code: 1013, reason: "QMP monitor busy".into() }
        );
    }
}

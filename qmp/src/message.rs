//! What a QMP message is, and the messages a client or a bridge builds.
//!
//! Server to client: a greeting (`{"QMP": ...}`), a success (`{"return": ..., "id": ...}`),
//! an error (`{"error": {"class", "desc"}, "id": ...}`) or an event
//! (`{"event", "data", "timestamp"}`). See QEMU's docs/interop/qmp-spec.rst.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use crate::inbound::Id;

/// QEMU's version triple from the greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub micro: u64,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.micro)
    }
}

/// The greeting QEMU sends first on every QMP connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    pub version: Version,
    /// Distribution package string, e.g. `Debian 1:7.2+dfsg-7+deb12u18`.
    pub package: String,
    /// Capabilities the server offers, e.g. `oob`.
    pub capabilities: Vec<String>,
}

/// The `error` member of a failed command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QmpError {
    pub class: String,
    pub desc: String,
}

/// An asynchronous event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    pub data: Value,
    /// Seconds and microseconds since the Unix epoch, as QEMU stamped it.
    pub seconds: i64,
    pub microseconds: i64,
}

impl Event {
    /// The timestamp in milliseconds since the Unix epoch.
    pub fn timestamp_ms(&self) -> f64 {
        self.seconds as f64 * 1000.0 + self.microseconds as f64 / 1000.0
    }
}

/// One message from a QMP server.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Greeting(Greeting),
    Return { id: Option<Value>, value: Value },
    Error { id: Option<Value>, error: QmpError },
    Event(Event),
}

/// Why text is not a QMP server message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("not JSON: {0}")]
    Json(String),
    #[error("not a JSON object")]
    NotObject,
    #[error("not a QMP message: no QMP, return, error or event member")]
    Unknown,
    #[error("malformed {member}: {reason}")]
    Malformed {
        member: &'static str,
        reason: String,
    },
}

#[derive(Deserialize)]
struct RawGreeting {
    version: RawVersion,
    #[serde(default)]
    capabilities: Vec<String>,
}

#[derive(Deserialize)]
struct RawVersion {
    qemu: Version,
    #[serde(default)]
    package: String,
}

#[derive(Deserialize)]
struct RawTimestamp {
    seconds: i64,
    microseconds: i64,
}

fn member<T: serde::de::DeserializeOwned>(
    obj: &mut Map<String, Value>,
    name: &'static str,
) -> Result<T, MessageError> {
    let value = obj.remove(name).unwrap_or(Value::Null);
    serde_json::from_value(value).map_err(|e| MessageError::Malformed {
        member: name,
        reason: e.to_string(),
    })
}

impl Message {
    /// Parses one message's text.
    pub fn parse(text: &str) -> Result<Message, MessageError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| MessageError::Json(e.to_string()))?;
        Message::from_value(value)
    }

    /// Classifies a parsed JSON value.
    pub fn from_value(value: Value) -> Result<Message, MessageError> {
        let Value::Object(mut obj) = value else {
            return Err(MessageError::NotObject);
        };
        let id = obj.remove("id");
        match Kind::of(|m| obj.contains_key(m)) {
            Kind::Greeting => {
                let raw: RawGreeting = member(&mut obj, "QMP")?;
                Ok(Message::Greeting(Greeting {
                    version: raw.version.qemu,
                    package: raw.version.package,
                    capabilities: raw.capabilities,
                }))
            }
            Kind::Return => {
                let value = obj.remove("return").unwrap_or(Value::Null);
                Ok(Message::Return { id, value })
            }
            Kind::Error => {
                let error: QmpError = member(&mut obj, "error")?;
                Ok(Message::Error { id, error })
            }
            Kind::Event => {
                let name: String = member(&mut obj, "event")?;
                let ts: RawTimestamp = member(&mut obj, "timestamp")?;
                let data = obj.remove("data").unwrap_or_else(|| json!({}));
                Ok(Message::Event(Event {
                    name,
                    data,
                    seconds: ts.seconds,
                    microseconds: ts.microseconds,
                }))
            }
            Kind::Unknown => Err(MessageError::Unknown),
        }
    }

    /// The `id` a reply carries, if any.
    pub fn id(&self) -> Option<&Value> {
        match self {
            Message::Return { id, .. } | Message::Error { id, .. } => id.as_ref(),
            _ => None,
        }
    }
}

/// What kind of server message a text is, read without building its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Greeting,
    Return,
    Error,
    Event,
    Unknown,
}

impl Kind {
    /// The kind of a message whose top-level members `has` says it holds: the one
    /// classifier every reading of a message uses.
    pub fn of(has: impl Fn(&str) -> bool) -> Kind {
        if has("QMP") {
            Kind::Greeting
        } else if has("return") {
            Kind::Return
        } else if has("error") {
            Kind::Error
        } else if has("event") {
            Kind::Event
        } else {
            Kind::Unknown
        }
    }
}

/// A server message's kind, `id` and error class: enough to match replies to requests
/// without materialising a 200 KB `return`.
#[derive(Debug, Clone, PartialEq)]
pub struct Outline {
    pub kind: Kind,
    pub id: Option<Value>,
    pub error_class: Option<String>,
}

/// Outlines one message's text (its members kept raw, so a 200 KB `return` is not
/// materialised).
pub fn outline(text: &str) -> Result<Outline, MessageError> {
    let envelope = Envelope::parse(text)?;
    let error_class = envelope
        .members
        .get("error")
        .and_then(|raw| serde_json::from_str::<RawErrorClass>(raw.get()).ok())
        .map(|e| e.class);
    Ok(Outline {
        kind: envelope.kind(),
        id: envelope.id(),
        error_class,
    })
}

#[derive(Deserialize)]
struct RawErrorClass {
    class: String,
}

/// Events after which a VM's run state (`query-status`) may have changed: clients that
/// show it ask QEMU again.
pub const RUN_STATE_EVENTS: &[&str] = &[
    "STOP",
    "RESUME",
    "SHUTDOWN",
    "RESET",
    "SUSPEND",
    "SUSPEND_DISK",
    "WAKEUP",
    "POWERDOWN",
    "GUEST_PANICKED",
    "GUEST_CRASHLOADED",
    "JOB_STATUS_CHANGE",
];

/// A server message with its top-level members kept as raw JSON, so its `id` can be
/// rewritten without parsing (or re-serialising) a 200 KB `return`.
#[derive(Debug, Clone)]
pub struct Envelope {
    members: std::collections::BTreeMap<String, Box<serde_json::value::RawValue>>,
}

impl Envelope {
    pub fn parse(text: &str) -> Result<Envelope, MessageError> {
        let members = serde_json::from_str(text).map_err(|e| MessageError::Json(e.to_string()))?;
        Ok(Envelope { members })
    }

    pub fn kind(&self) -> Kind {
        Kind::of(|m| self.members.contains_key(m))
    }

    /// The `id`, parsed.
    pub fn id(&self) -> Option<Value> {
        self.members
            .get("id")
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
    }

    /// The event's name, for an event.
    pub fn event_name(&self) -> Option<String> {
        self.members
            .get("event")
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
    }

    /// A top-level member, parsed (e.g. `return` of a small reply).
    pub fn member(&self, name: &str) -> Option<Value> {
        self.members
            .get(name)
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
    }

    /// Replaces the `id` (or removes it, for `None`).
    pub fn set_id(&mut self, id: Option<&Id>) {
        match id {
            Some(id) => {
                self.members.insert("id".into(), id.raw().to_owned());
            }
            None => {
                self.members.remove("id");
            }
        }
    }

    pub fn to_text(&self) -> String {
        serde_json::to_string(&self.members).unwrap_or_default()
    }
}

/// An event as QEMU sends it, `{"event": name, "data": data, "timestamp": ...}`, stamped
/// `since_epoch` (a bridge's own notices to its clients).
pub fn event(name: &str, data: &impl Serialize, since_epoch: std::time::Duration) -> String {
    #[derive(Serialize)]
    struct Stamp {
        seconds: u64,
        microseconds: u32,
    }
    #[derive(Serialize)]
    struct Ev<'a, D> {
        event: &'a str,
        data: &'a D,
        timestamp: Stamp,
    }
    serde_json::to_string(&Ev {
        event: name,
        data,
        timestamp: Stamp {
            seconds: since_epoch.as_secs(),
            microseconds: since_epoch.subsec_micros(),
        },
    })
    .unwrap_or_default()
}

/// A greeting with `capability` no longer offered (e.g. `oob`, when a bridge does not
/// enable it upstream); unchanged if it is not a greeting.
pub fn without_capability(greeting: &str, capability: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<Value>(greeting) else {
        return greeting.to_owned();
    };
    if let Some(caps) = value
        .get_mut("QMP")
        .and_then(|q| q.get_mut("capabilities"))
        .and_then(Value::as_array_mut)
    {
        caps.retain(|c| c != capability);
    }
    value.to_string()
}

/// At most `max` bytes of `text` (on a character boundary), marked when cut: for logs and
/// error messages quoting what a peer sent.
pub fn abbreviate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &text[..end], text.len())
}

/// QEMU's answer to a negotiation asking for `oob` on a monitor without it.
pub const NO_OOB: &str = "This monitor does not support Out-Of-Band (OOB)";

/// A command as a client sends it: `{"execute": name, "arguments": args, "id": id}`.
pub fn command(name: &str, arguments: Option<Value>, id: Option<Value>) -> String {
    let mut obj = Map::new();
    obj.insert("execute".into(), Value::String(name.into()));
    if let Some(args) = arguments {
        obj.insert("arguments".into(), args);
    }
    if let Some(id) = id {
        obj.insert("id".into(), id);
    }
    Value::Object(obj).to_string()
}

/// The capabilities negotiation command, enabling `enable` (e.g. `["oob"]`).
pub fn qmp_capabilities(enable: &[&str], id: Option<Value>) -> String {
    let args = if enable.is_empty() {
        None
    } else {
        Some(json!({ "enable": enable }))
    };
    command("qmp_capabilities", args, id)
}

/// An empty success reply, `{"return": {}, "id": ...}`, the id as its client wrote it.
pub fn command_reply(id: Option<&Id>) -> String {
    reply("return", &json!({}), id)
}

/// A QMP-shaped error reply, as QEMU itself would send it, for errors a bridge produces.
pub fn error_reply(id: Option<&Id>, class: &str, desc: &str) -> String {
    reply("error", &json!({ "class": class, "desc": desc }), id)
}

fn reply(member: &str, value: &Value, id: Option<&Id>) -> String {
    let mut obj: std::collections::BTreeMap<&str, &RawValue> = std::collections::BTreeMap::new();
    let value = serde_json::value::to_raw_value(value).unwrap_or_default();
    obj.insert(member, &value);
    if let Some(id) = id {
        obj.insert("id", id.raw());
    }
    serde_json::to_string(&obj).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_real_qemu_greeting() {
        let text = r#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18"}, "capabilities": ["oob"]}}"#;
        let Message::Greeting(g) = Message::parse(text).unwrap() else {
            panic!("not a greeting")
        };
        assert_eq!(g.version.to_string(), "7.2.22");
        assert_eq!(g.package, "Debian 1:7.2+dfsg-7+deb12u18");
        assert_eq!(g.capabilities, vec!["oob"]);
    }

    #[test]
    fn classifies_replies_and_events() {
        let ok = Message::parse(r#"{"return": {"status": "paused"}, "id": "a"}"#).unwrap();
        assert_eq!(ok.id(), Some(&json!("a")));
        let err = Message::parse(
            r#"{"id": 3, "error": {"class": "CommandNotFound", "desc": "The command x has not been found"}}"#,
        )
        .unwrap();
        assert!(matches!(&err, Message::Error { error, .. } if error.class == "CommandNotFound"));
        assert_eq!(err.id(), Some(&json!(3)));
        let ev = Message::parse(
            r#"{"timestamp": {"seconds": 1700000000, "microseconds": 500}, "event": "STOP"}"#,
        )
        .unwrap();
        let Message::Event(ev) = ev else { panic!() };
        assert_eq!(ev.name, "STOP");
        assert_eq!(ev.data, json!({}));
        assert_eq!(ev.timestamp_ms(), 1_700_000_000_000.5);
    }

    #[test]
    fn outlines_without_the_payload() {
        let o = outline(r#"{"return": [{"big": [1, 2, 3]}], "id": {"n": 1}}"#).unwrap();
        assert_eq!(
            (o.kind, o.id, o.error_class),
            (Kind::Return, Some(json!({"n": 1})), None)
        );
        let o = outline(r#"{"error": {"class": "DeviceNotFound", "desc": "x"}, "id": 2}"#).unwrap();
        assert_eq!(
            (o.kind, o.error_class.as_deref()),
            (Kind::Error, Some("DeviceNotFound"))
        );
        let o = outline(r#"{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}"#)
            .unwrap();
        assert_eq!((o.kind, o.id), (Kind::Event, None));
        assert_eq!(outline(r#"{"QMP": {}}"#).unwrap().kind, Kind::Greeting);
        assert_eq!(outline(r#"{"x": 1}"#).unwrap().kind, Kind::Unknown);
        assert!(outline("[").is_err());
    }

    #[test]
    fn envelope_rewrites_ids_only() {
        let text = r#"{"return": {"status": "running", "id": "inner"}, "id": "qmpc-7"}"#;
        let mut env = Envelope::parse(text).unwrap();
        assert_eq!(env.kind(), Kind::Return);
        assert_eq!(env.id(), Some(json!("qmpc-7")));
        env.set_id(Some(&Id::from_value(&json!({"mine": [1]}))));
        let back: Value = serde_json::from_str(&env.to_text()).unwrap();
        assert_eq!(
            back,
            json!({"return": {"status": "running", "id": "inner"}, "id": {"mine": [1]}})
        );
        env.set_id(None);
        let back: Value = serde_json::from_str(&env.to_text()).unwrap();
        assert_eq!(
            back,
            json!({"return": {"status": "running", "id": "inner"}})
        );
        let ev =
            Envelope::parse(r#"{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 0}}"#)
                .unwrap();
        assert_eq!((ev.kind(), ev.id()), (Kind::Event, None));
        assert_eq!(ev.event_name().as_deref(), Some("STOP"));
        assert_eq!(
            ev.member("timestamp"),
            Some(json!({"seconds": 1, "microseconds": 0}))
        );
    }

    #[test]
    fn rejects_what_is_not_qmp() {
        assert!(matches!(Message::parse("[]"), Err(MessageError::NotObject)));
        assert!(matches!(Message::parse("{"), Err(MessageError::Json(_))));
        assert!(matches!(
            Message::parse(r#"{"x": 1}"#),
            Err(MessageError::Unknown)
        ));
        assert!(matches!(
            Message::parse(r#"{"event": "STOP"}"#),
            Err(MessageError::Malformed {
                member: "timestamp",
                ..
            })
        ));
    }

    #[test]
    fn bridge_notices_and_greetings() {
        let e = event(
            "X",
            &json!({"a": 1}),
            std::time::Duration::from_micros(1_500_002),
        );
        let Message::Event(ev) = Message::parse(&e).unwrap() else {
            panic!("{e}")
        };
        assert_eq!(
            (ev.name.as_str(), ev.seconds, ev.microseconds),
            ("X", 1, 500_002)
        );
        let g = r#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}"#;
        let Message::Greeting(stripped) = Message::parse(&without_capability(g, "oob")).unwrap()
        else {
            panic!()
        };
        assert!(stripped.capabilities.is_empty());
        assert_eq!(abbreviate("héllo", 2), "h... (6 bytes)");
        assert_eq!(abbreviate("ok", 2), "ok");
    }

    #[test]
    fn builds_commands_and_errors() {
        let caps: Value =
            serde_json::from_str(&qmp_capabilities(&["oob"], Some(json!(1)))).unwrap();
        assert_eq!(
            caps,
            json!({"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}, "id": 1})
        );
        assert_eq!(command("stop", None, None), r#"{"execute":"stop"}"#);
        let e = error_reply(Some(&Id::from_value(&json!("x"))), "GenericError", "bad");
        let Message::Error { id, error } = Message::parse(&e).unwrap() else {
            panic!()
        };
        assert_eq!(id, Some(json!("x")));
        assert_eq!(error.desc, "bad");
    }
}

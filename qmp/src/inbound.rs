//! The check a client's frame passes before it is written to QEMU.
//!
//! QEMU's parser is a byte stream: half an object written upstream would swallow every
//! command after it, for everyone. So a frame goes upstream only when it is exactly one
//! complete JSON object; anything else is answered with a QMP-shaped error that carries the
//! frame's `id` whenever one can be read, even from a truncated frame.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

/// A frame that must not go upstream, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{desc}")]
pub struct Rejection {
    /// The frame's `id`, when one could be read.
    pub id: Option<Value>,
    pub desc: String,
}

impl Rejection {
    /// The QMP-shaped error reply for the client (class `GenericError`, as QEMU uses for
    /// its own JSON parse errors).
    pub fn to_reply(&self) -> String {
        crate::message::error_reply(self.id.as_ref(), "GenericError", &self.desc)
    }
}

/// A client frame that may go upstream: exactly one JSON object, no duplicate keys.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientFrame {
    pub object: Map<String, Value>,
}

impl ClientFrame {
    /// The frame's `id`, if any.
    pub fn id(&self) -> Option<&Value> {
        self.object.get("id")
    }

    /// The command it executes (`execute`, or `exec-oob` for out-of-band), if named.
    pub fn command(&self) -> Option<&str> {
        self.object
            .get("execute")
            .or_else(|| self.object.get("exec-oob"))
            .and_then(Value::as_str)
    }

    /// Every command name the frame would have QEMU run: `execute` and `exec-oob` (both,
    /// if a frame names both), and for a `transaction` the `type` of each action.
    pub fn commands(&self) -> Vec<&str> {
        let mut names: Vec<&str> = ["execute", "exec-oob"]
            .iter()
            .filter_map(|k| self.object.get(*k).and_then(Value::as_str))
            .collect();
        if names.contains(&"transaction") {
            let actions = self
                .object
                .get("arguments")
                .and_then(|a| a.get("actions"))
                .and_then(Value::as_array);
            for action in actions.into_iter().flatten() {
                names.push(action.get("type").and_then(Value::as_str).unwrap_or("?"));
            }
        }
        names
    }
}

/// Accepts `text` when it is exactly one JSON object (surrounding whitespace allowed) with
/// no key repeated at any depth: QEMU's parser and serde could disagree on which of two
/// `execute` members counts, and a policy must see what QEMU will run.
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, Rejection> {
    match serde_json::from_str::<Strict>(text) {
        Ok(Strict(Value::Object(object))) => Ok(ClientFrame { object }),
        Ok(Strict(other)) => Err(Rejection {
            id: None,
            desc: format!(
                "frame is not a JSON object but {}: send one QMP command object per frame",
                kind(&other)
            ),
        }),
        Err(e) if text.trim().is_empty() => Err(Rejection {
            id: None,
            desc: format!("empty frame: send one QMP command object per frame ({e})"),
        }),
        Err(e) => Err(Rejection {
            id: salvage_id(text),
            desc: format!("frame is not one JSON object: {e}"),
        }),
    }
}

/// A JSON value whose objects have no repeated keys.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if object.insert(key.clone(), value).is_some() {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
        }
        Ok(Value::Object(object))
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads the value of a top-level `"id"` member from possibly broken JSON text, as long as
/// the text is sound up to the end of that value.
pub fn salvage_id(text: &str) -> Option<Value> {
    let bytes = text.as_bytes();
    let mut depth = 0u32;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'"' => {
                let start = i + 1;
                i = start;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                let end = i.min(bytes.len());
                if depth == 1 && &bytes[start..end] == b"id" {
                    let rest = text.get(end + 1..)?.trim_start();
                    if let Some(value_text) = rest.strip_prefix(':') {
                        let mut values =
                            serde_json::Deserializer::from_str(value_text).into_iter::<Value>();
                        if let Some(Ok(v)) = values.next() {
                            return Some(v);
                        }
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check_client_frame(text: &str) -> Result<(), Rejection> {
        parse_client_frame(text).map(|_| ())
    }

    #[test]
    fn accepts_one_object() {
        let f = parse_client_frame(r#"{"execute": "query-status", "id": 1}"#).unwrap();
        assert_eq!(f.command(), Some("query-status"));
        assert_eq!(f.id(), Some(&json!(1)));
        assert!(check_client_frame("  {\n\"execute\": \"stop\"\n}\n").is_ok());
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        let r =
            check_client_frame(r#"{"execute": "query-status", "execute": "stop"}"#).unwrap_err();
        assert!(r.desc.contains("duplicate key \"execute\""), "{}", r.desc);
        assert!(check_client_frame(r#"{"execute": "x", "arguments": {"a": 1, "a": 2}}"#).is_err());
        assert!(check_client_frame(
            r#"{"execute": "x", "arguments": {"l": [{"t": 1}, {"t": 1}]}}"#
        )
        .is_ok());
    }

    #[test]
    fn commands_include_transaction_actions_and_oob() {
        let f = parse_client_frame(
            r#"{"execute": "transaction", "arguments": {"actions": [
                {"type": "blockdev-snapshot-sync", "data": {}}, {"type": "abort"}, {"data": 1}]}}"#,
        )
        .unwrap();
        assert_eq!(
            f.commands(),
            vec!["transaction", "blockdev-snapshot-sync", "abort", "?"]
        );
        let f = parse_client_frame(r#"{"exec-oob": "migrate-pause", "id": 1}"#).unwrap();
        assert_eq!(f.command(), Some("migrate-pause"));
        assert_eq!(f.commands(), vec!["migrate-pause"]);
        let f = parse_client_frame(r#"{"execute": "query-status", "exec-oob": "quit"}"#).unwrap();
        assert_eq!(f.commands(), vec!["query-status", "quit"]);
        let f = parse_client_frame(r#"{"arguments": {}}"#).unwrap();
        assert!(f.commands().is_empty());
    }

    #[test]
    fn numbers_survive_strict_parsing() {
        let f = parse_client_frame(r#"{"id": -5, "a": 1.5, "b": 18446744073709551615, "c": null}"#)
            .unwrap();
        assert_eq!(f.object["id"], json!(-5));
        assert_eq!(f.object["a"], json!(1.5));
        assert_eq!(f.object["b"], json!(u64::MAX));
        assert_eq!(f.object["c"], Value::Null);
    }

    #[test]
    fn rejects_two_objects_and_non_objects() {
        let r = check_client_frame(r#"{"execute":"stop"}{"execute":"cont"}"#).unwrap_err();
        assert!(r.desc.contains("not one JSON object"), "{}", r.desc);
        let r = check_client_frame("[1,2]").unwrap_err();
        assert!(r.desc.contains("an array"));
        assert!(check_client_frame("").unwrap_err().desc.contains("empty"));
        assert!(check_client_frame("nul").is_err());
    }

    #[test]
    fn truncated_frame_keeps_its_id() {
        let r = check_client_frame(r#"{"id": "req-7", "execute": "query-sta"#).unwrap_err();
        assert_eq!(r.id, Some(json!("req-7")));
        let reply: Value = serde_json::from_str(&r.to_reply()).unwrap();
        assert_eq!(reply["id"], json!("req-7"));
        assert_eq!(reply["error"]["class"], json!("GenericError"));
    }

    #[test]
    fn salvage_ignores_nested_and_string_ids() {
        assert_eq!(
            salvage_id(r#"{"arguments": {"id": 1}, "id": 2, "x""#),
            Some(json!(2))
        );
        assert_eq!(
            salvage_id(r#"{"execute": "id", "arguments": {"id": 1}"#),
            None
        );
        assert_eq!(
            salvage_id(r#"{"a": "\"id\": 5", "id": {"n": [1]}, "#),
            Some(json!({"n": [1]}))
        );
        assert_eq!(salvage_id(r#"{"id": "#), None);
        assert_eq!(salvage_id(r#"{"id"#), None);
    }
}

//! The check a client's frame passes before it is written to QEMU.
//!
//! QEMU's parser is a byte stream: half an object written upstream would swallow every
//! command after it, for everyone. So a frame goes upstream only when it is exactly one
//! complete JSON object; anything else is answered with a QMP-shaped error that carries the
//! frame's `id` whenever one can be read, even from a truncated frame.

use serde_json::Value;

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

/// Accepts `text` when it is exactly one JSON object (surrounding whitespace allowed).
pub fn check_client_frame(text: &str) -> Result<(), Rejection> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(_)) => Ok(()),
        Ok(other) => Err(Rejection {
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

    #[test]
    fn accepts_one_object() {
        assert!(check_client_frame(r#"{"execute": "query-status", "id": 1}"#).is_ok());
        assert!(check_client_frame("  {\n\"execute\": \"stop\"\n}\n").is_ok());
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
        assert_eq!(salvage_id(r#"{"arguments": {"id": 1}, "id": 2, "x""#), Some(json!(2)));
        assert_eq!(salvage_id(r#"{"execute": "id", "arguments": {"id": 1}"#), None);
        assert_eq!(salvage_id(r#"{"a": "\"id\": 5", "id": {"n": [1]}, "#), Some(json!({"n": [1]})));
        assert_eq!(salvage_id(r#"{"id": "#), None);
        assert_eq!(salvage_id(r#"{"id"#), None);
    }
}

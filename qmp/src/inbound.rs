//! The check a client's frame passes before it is written to QEMU, and the text QEMU gets.
//!
//! QEMU's parser is a byte stream (qobject/json-streamer.c): half an object written
//! upstream would swallow every command after it, for everyone, and an object past its
//! limits (2,097,152 tokens, 64 MiB, nesting 1,024) is dropped while the rest of its bytes
//! are read as new top-level commands. So what goes upstream is never the client's bytes:
//! a frame is accepted only when it is exactly one QMP command object well inside those
//! limits ([`MAX_TOKENS`], [`MAX_DEPTH`]) whose every string QEMU decodes to the same
//! characters, and QEMU gets its canonical re-serialization. Anything else is answered
//! with a QMP-shaped error that carries the frame's `id` whenever one can be read, even
//! from a truncated frame.
//!
//! Where QEMU's grammar and serde's disagree, the frame is refused, never guessed at:
//! - strings holding U+0000 or one of Unicode's 66 noncharacters (QEMU's
//!   `mod_utf8_codepoint` rejects those, or stores U+0000 as `\xC0\x80`);
//! - negative zero (`-0` is an integer to QEMU, `-0.0` to serde).
//!
//! Single-quoted strings, `%` escapes, comments and the like are not JSON and never get
//! past serde; integers beyond 64 bits become the same IEEE double on both sides
//! (`float_roundtrip`).
//!
//! A request's `id` is kept as the client wrote it ([`Id`]), so a bridge that answers or
//! re-labels a command returns the id byte for byte.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Tokens one command may hold (QEMU's streamer gives up at 2,097,152).
pub const MAX_TOKENS: usize = 100_000;
/// Arrays and objects one inside the other (QEMU's streamer gives up past 1,024).
pub const MAX_DEPTH: usize = 64;
/// The members QEMU reads in a command object.
const MEMBERS: [&str; 4] = ["execute", "exec-oob", "arguments", "id"];

/// A request's `id` exactly as its sender wrote it: the raw JSON text.
#[derive(Debug, Clone)]
pub struct Id(Box<RawValue>);

impl Id {
    /// The id of a parsed value (re-serialized).
    pub fn from_value(value: &Value) -> Id {
        Id(serde_json::value::to_raw_value(value).unwrap_or_else(|_| null_raw()))
    }

    /// The JSON text, as written.
    pub fn raw(&self) -> &RawValue {
        &self.0
    }

    /// The id, parsed.
    pub fn value(&self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }
}

fn null_raw() -> Box<RawValue> {
    Box::<RawValue>::default()
}

impl PartialEq for Id {
    fn eq(&self, other: &Id) -> bool {
        self.0.get() == other.0.get()
    }
}

impl serde::Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// A frame that must not go upstream, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{desc}")]
pub struct Rejection {
    /// The frame's `id`, when one could be read.
    pub id: Option<Id>,
    pub desc: String,
}

impl Rejection {
    /// The QMP-shaped error reply for the client (class `GenericError`, as QEMU uses for
    /// its own JSON parse errors).
    pub fn to_reply(&self) -> String {
        crate::message::error_reply(self.id.as_ref(), "GenericError", &self.desc)
    }
}

/// A client frame that may go upstream: exactly one QMP command object (`execute` or
/// `exec-oob`, optional `arguments` object and `id`), no duplicate keys, inside QEMU's
/// parser limits, meaning to QEMU what it means here.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientFrame {
    object: Map<String, Value>,
    raw_id: Option<Id>,
}

impl ClientFrame {
    /// The frame's `id`, if any, parsed.
    pub fn id(&self) -> Option<&Value> {
        self.object.get("id")
    }

    /// The frame's `id` as the client wrote it.
    pub fn raw_id(&self) -> Option<&Id> {
        self.raw_id.as_ref()
    }

    /// The command it executes (`execute`, or `exec-oob` for out-of-band).
    pub fn command(&self) -> &str {
        self.object
            .get("execute")
            .or_else(|| self.object.get("exec-oob"))
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// Whether it asks for out-of-band execution (`exec-oob`).
    pub fn is_oob(&self) -> bool {
        self.object.contains_key("exec-oob")
    }

    /// The `arguments` object, if any.
    pub fn arguments(&self) -> Option<&Map<String, Value>> {
        self.object.get("arguments").and_then(Value::as_object)
    }

    /// The capabilities a `qmp_capabilities` frame asks to enable (none for any other
    /// frame, or without an `enable` list).
    pub fn enables(&self) -> &[Value] {
        let enable = (self.command() == "qmp_capabilities")
            .then(|| self.arguments()?.get("enable")?.as_array())
            .flatten();
        enable.map_or(&[], Vec::as_slice)
    }

    /// Every command name the frame would have QEMU run: the command, and for a
    /// `transaction` the `type` of each action (`?` where an action names none).
    pub fn commands(&self) -> Vec<&str> {
        let mut names = vec![self.command()];
        if self.command() == "transaction" {
            let actions = self
                .arguments()
                .and_then(|a| a.get("actions"))
                .and_then(Value::as_array);
            for action in actions.into_iter().flatten() {
                names.push(action.get("type").and_then(Value::as_str).unwrap_or("?"));
            }
        }
        names
    }

    /// The text QEMU gets: the frame re-serialized (compact, one line, members sorted).
    pub fn upstream_text(&self) -> String {
        serde_json::to_string(&self.object).unwrap_or_default()
    }

    /// The text QEMU gets with `id` in place of the client's, and the client's id as it
    /// wrote it, to restore on the reply.
    pub fn relabel(mut self, id: &str) -> (String, Option<Id>) {
        self.object.insert("id".into(), Value::String(id.into()));
        (self.upstream_text(), self.raw_id)
    }
}

/// Accepts `text` when it is exactly one QMP command object (surrounding whitespace
/// allowed) with no key repeated at any depth (QEMU's parser and serde could disagree on
/// which of two `execute` members counts, and a policy must see what QEMU will run),
/// within [`MAX_TOKENS`] and [`MAX_DEPTH`], holding nothing QEMU would read differently.
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, Rejection> {
    let counts = Counts::default();
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = Strict {
        counts: &counts,
        depth: 0,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    let object = match parsed {
        Ok(Value::Object(object)) => object,
        Ok(other) => {
            return Err(Rejection {
                id: None,
                desc: format!(
                "QMP input must be a JSON object, not {}: send one QMP command object per frame",
                kind(&other)
            ),
            })
        }
        Err(e) if text.trim().is_empty() => {
            return Err(Rejection {
                id: None,
                desc: format!("empty frame: send one QMP command object per frame ({e})"),
            })
        }
        Err(e) => {
            return Err(Rejection {
                id: salvage_id(text),
                desc: format!("frame is not one QMP command object: {e}"),
            })
        }
    };
    let raw_id = object.get("id").map(|_| raw_member_id(text));
    let reject = |desc: String| Rejection {
        id: raw_id.clone(),
        desc,
    };
    check_members(&object).map_err(reject)?;
    Ok(ClientFrame { object, raw_id })
}

/// QEMU's own checks on a command object (qmp_dispatch_check_obj), in its words.
fn check_members(object: &Map<String, Value>) -> Result<(), String> {
    if let Some(extra) = object.keys().find(|k| !MEMBERS.contains(&k.as_str())) {
        return Err(format!("QMP input member '{extra}' is unexpected"));
    }
    let exec: Vec<&str> = ["execute", "exec-oob"]
        .into_iter()
        .filter(|k| object.contains_key(*k))
        .collect();
    match exec[..] {
        [] => return Err("QMP input lacks member 'execute'".into()),
        [name] if !object[name].is_string() => {
            return Err(format!("QMP input member '{name}' must be a string"))
        }
        [_] => {}
        _ => return Err("QMP input member 'exec-oob' clashes with 'execute'".into()),
    }
    if object.get("arguments").is_some_and(|a| !a.is_object()) {
        return Err("QMP input member 'arguments' must be an object".into());
    }
    Ok(())
}

/// The top-level `id` member's text in a frame already known to be one sound object.
fn raw_member_id(text: &str) -> Id {
    #[derive(Deserialize)]
    struct IdOnly<'a> {
        #[serde(borrow)]
        id: &'a RawValue,
    }
    match serde_json::from_str::<IdOnly>(text) {
        Ok(found) => Id(found.id.to_owned()),
        Err(_) => Id(null_raw()),
    }
}

/// Tokens seen so far while parsing one frame.
#[derive(Default)]
struct Counts {
    tokens: Cell<usize>,
}

impl Counts {
    fn add<E: de::Error>(&self, n: usize) -> Result<(), E> {
        let tokens = self.tokens.get() + n;
        self.tokens.set(tokens);
        if tokens > MAX_TOKENS {
            return Err(E::custom(format_args!(
                "over {MAX_TOKENS} JSON tokens in one command"
            )));
        }
        Ok(())
    }
}

/// A JSON value whose objects have no repeated keys, within the limits, with no string
/// or number QEMU would read differently.
struct Strict<'a> {
    counts: &'a Counts,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Refuses strings QEMU decodes differently: U+0000 and Unicode's noncharacters.
fn check_string<E: de::Error>(s: &str) -> Result<(), E> {
    let bad = s.chars().find(|&c| {
        let cp = c as u32;
        cp == 0 || (0xFDD0..=0xFDEF).contains(&cp) || cp & 0xFFFE == 0xFFFE
    });
    match bad {
        Some(c) => Err(E::custom(format_args!(
            "string holds U+{:04X}, which QEMU does not read as that character",
            c as u32
        ))),
        None => Ok(()),
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.counts.add(1)?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.counts.add(1)?;
        Ok(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.counts.add(1)?;
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.counts.add(1)?;
        if v == 0.0 && v.is_sign_negative() {
            return Err(E::custom(
                "negative zero: QEMU reads -0 as the integer 0, write 0 (or 0.0)",
            ));
        }
        Ok(Value::from(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.counts.add(1)?;
        check_string(v)?;
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.counts.add(1)?;
        check_string(&v)?;
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.counts.add(1)?;
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let depth = self.enter::<A::Error>()?;
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(Strict {
            counts: self.counts,
            depth,
        })? {
            // the value, and the comma before it
            self.counts.add(usize::from(!items.is_empty()))?;
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let depth = self.enter::<A::Error>()?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            check_string(&key)?;
            // key, colon, and the comma before them
            self.counts.add(2 + usize::from(!object.is_empty()))?;
            let value = map.next_value_seed(Strict {
                counts: self.counts,
                depth,
            })?;
            if object.insert(key.clone(), value).is_some() {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
        }
        Ok(Value::Object(object))
    }
}

impl Strict<'_> {
    /// Opens an array or object: its two brackets, one level deeper.
    fn enter<E: de::Error>(&self) -> Result<usize, E> {
        self.counts.add(2)?;
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format_args!(
                "arrays and objects nested over {MAX_DEPTH} deep"
            )));
        }
        Ok(self.depth + 1)
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
pub fn salvage_id(text: &str) -> Option<Id> {
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
                            serde_json::Deserializer::from_str(value_text).into_iter::<&RawValue>();
                        // (a number past f64's range is JSON, but clients could not read
                        // the reply: such an id is not salvaged)
                        if let Some(Ok(v)) = values.next() {
                            return serde_json::from_str::<Value>(v.get())
                                .is_ok()
                                .then(|| Id(v.to_owned()));
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

    fn refused(text: &str) -> String {
        parse_client_frame(text).unwrap_err().desc
    }

    #[test]
    fn accepts_one_command_object() {
        let f = parse_client_frame(r#"{"execute": "query-status", "id": 1}"#).unwrap();
        assert_eq!(f.command(), "query-status");
        assert_eq!(f.id(), Some(&json!(1)));
        assert!(check_client_frame("  {\n\"execute\": \"stop\"\n}\n").is_ok());
        let f = parse_client_frame(r#"{"execute": "x", "arguments": {"a": [1, {"b": null}]}}"#)
            .unwrap();
        assert_eq!(f.arguments().unwrap()["a"], json!([1, {"b": null}]));
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        let r = refused(r#"{"execute": "query-status", "execute": "stop"}"#);
        assert!(r.contains("duplicate key \"execute\""), "{r}");
        assert!(check_client_frame(r#"{"execute": "x", "arguments": {"a": 1, "a": 2}}"#).is_err());
        assert!(check_client_frame(
            r#"{"execute": "x", "arguments": {"l": [{"t": 1}, {"t": 1}]}}"#
        )
        .is_ok());
    }

    #[test]
    fn only_qemus_members_in_qemus_types() {
        for (text, why) in [
            (r#"{"arguments": {}}"#, "lacks member 'execute'"),
            (r#"{"execute": 5}"#, "'execute' must be a string"),
            (r#"{"exec-oob": ["stop"]}"#, "'exec-oob' must be a string"),
            (r#"{"execute": "stop", "exec-oob": "quit"}"#, "clashes"),
            (
                r#"{"execute": "stop", "arguments": []}"#,
                "must be an object",
            ),
            (
                r#"{"execute": "stop", "control": {}}"#,
                "'control' is unexpected",
            ),
        ] {
            let r = refused(text);
            assert!(r.contains(why), "{text}: {r}");
        }
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
        let caps = r#"{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}"#;
        assert_eq!(parse_client_frame(caps).unwrap().enables(), [json!("oob")]);
        let other = r#"{"execute": "x", "arguments": {"enable": ["oob"]}}"#;
        assert!(parse_client_frame(other).unwrap().enables().is_empty());
        let f = parse_client_frame(r#"{"exec-oob": "migrate-pause", "id": 1}"#).unwrap();
        assert_eq!(f.command(), "migrate-pause");
        assert!(f.is_oob());
        assert_eq!(f.commands(), vec!["migrate-pause"]);
    }

    #[test]
    fn numbers_survive_strict_parsing() {
        let f = parse_client_frame(
            r#"{"execute": "x", "id": -5, "arguments": {"a": 1.5, "b": 18446744073709551615, "c": null}}"#,
        )
        .unwrap();
        assert_eq!(f.id(), Some(&json!(-5)));
        let args = f.arguments().unwrap();
        assert_eq!(args["a"], json!(1.5));
        assert_eq!(args["b"], json!(u64::MAX));
        assert_eq!(args["c"], Value::Null);
    }

    #[test]
    fn negative_zero_is_refused() {
        for zero in ["-0", "-0.0", "-0e5", "-0.0E-3"] {
            let r = refused(&format!(
                r#"{{"execute": "x", "arguments": {{"n": {zero}}}}}"#
            ));
            assert!(r.contains("negative zero"), "{zero}: {r}");
        }
        assert!(check_client_frame(r#"{"execute": "x", "arguments": {"n": 0, "f": 0.0}}"#).is_ok());
    }

    #[test]
    fn strings_qemu_reads_otherwise_are_refused() {
        for s in [
            r"\u0000",
            r"a\u0000b",
            r"\ufdd0",
            r"\uffff",
            r"\ufffe",
            r"\ud83f\udffe",
        ] {
            let r = refused(&format!(
                r#"{{"execute": "x", "arguments": {{"s": "{s}"}}}}"#
            ));
            assert!(r.contains("QEMU does not read"), "{s}: {r}");
            let r = refused(&format!(r#"{{"execute": "x", "arguments": {{"{s}": 1}}}}"#));
            assert!(r.contains("QEMU does not read"), "key {s}: {r}");
        }
        let raw = "{\"execute\": \"x\", \"arguments\": {\"s\": \"\u{fdef}\"}}";
        assert!(refused(raw).contains("U+FDEF"));
        let fine = r#"{"execute": "x", "arguments": {"s": "\u00e9\ud83d\ude00 \t\u001f\ufdcf\ufdf0\ufffd"}}"#;
        assert!(check_client_frame(fine).is_ok());
    }

    #[test]
    fn limits_hold_well_below_qemus() {
        let nested = |n: usize| {
            format!(
                r#"{{"execute": "x", "arguments": {{"a": {}1{}}}}}"#,
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        // the frame and "arguments" are two levels already
        assert!(check_client_frame(&nested(MAX_DEPTH - 2)).is_ok());
        assert!(refused(&nested(MAX_DEPTH - 1)).contains("nested over"));
        assert!(refused(&nested(5000)).contains("nested over"));
        let list = |n: usize| {
            let items = vec!["0"; n].join(",");
            format!(r#"{{"execute":"x","arguments":{{"a":[{items}]}}}}"#)
        };
        // {, "execute", :, "x", ",", "arguments", :, {, "a", :, [, n values, n - 1 commas, ], }, }
        let fits = (MAX_TOKENS - 13) / 2;
        assert!(check_client_frame(&list(fits)).is_ok());
        assert!(refused(&list(fits + 1)).contains("JSON tokens"));
        assert!(refused(&list(1 << 21)).contains("JSON tokens"));
    }

    #[test]
    fn the_smuggled_tail_is_refused() {
        let zeros = "0,".repeat(1 << 20);
        let attack = format!(
            r#"{{"execute":"query-status","id":"a","arguments":{{"a":[{zeros}{{"execute":"cont"}},{{"execute":"migrate","arguments":{{"uri":"exec:touch /tmp/x"}}}}]}}}}"#
        );
        let r = parse_client_frame(&attack).unwrap_err();
        assert!(r.desc.contains("JSON tokens"), "{}", r.desc);
        assert_eq!(r.id.map(|i| i.value()), Some(json!("a")));
    }

    #[test]
    fn upstream_text_is_canonical() {
        let f = parse_client_frame(
            "{ \"id\" : 1e2 , \"execute\":\"x\",\n \"arguments\": {\"s\": \"\\u00e9\\/\", \"n\": 123456789012345678901234567890}}",
        )
        .unwrap();
        assert_eq!(
            f.upstream_text(),
            r#"{"arguments":{"n":1.2345678901234568e+29,"s":"é/"},"execute":"x","id":100.0}"#
        );
        let again = parse_client_frame(&f.upstream_text()).unwrap();
        assert_eq!(
            again.upstream_text(),
            f.upstream_text(),
            "canonical is a fixed point"
        );
        let (text, id) = f.relabel("qmpc-3");
        assert!(text.ends_with(r#""execute":"x","id":"qmpc-3"}"#), "{text}");
        assert_eq!(id.unwrap().raw().get(), "1e2");
    }

    #[test]
    fn ids_are_kept_byte_for_byte() {
        for id in [
            "123456789012345678901234567890",
            r#""\u00e9""#,
            r#"{"b": 1, "a": [1.50]}"#,
            "1e2",
        ] {
            let f = parse_client_frame(&format!(r#"{{"execute": "x", "id": {id}}}"#)).unwrap();
            assert_eq!(f.raw_id().unwrap().raw().get(), id);
        }
    }

    #[test]
    fn rejects_two_objects_and_non_objects() {
        let r = refused(r#"{"execute":"stop"}{"execute":"cont"}"#);
        assert!(r.contains("not one QMP command object"), "{r}");
        assert!(refused("[1,2]").contains("an array"));
        assert!(refused("").contains("empty"));
        assert!(check_client_frame("nul").is_err());
        assert!(check_client_frame("{'execute': 'stop'}").is_err());
    }

    #[test]
    fn truncated_frame_keeps_its_id() {
        let r = check_client_frame(r#"{"id": "req-7", "execute": "query-sta"#).unwrap_err();
        assert_eq!(r.id.as_ref().map(Id::value), Some(json!("req-7")));
        let reply: Value = serde_json::from_str(&r.to_reply()).unwrap();
        assert_eq!(reply["id"], json!("req-7"));
        assert_eq!(reply["error"]["class"], json!("GenericError"));
        let r = check_client_frame(r#"{"id": 123456789012345678901234567890, "execute": 5}"#)
            .unwrap_err();
        assert!(r
            .to_reply()
            .contains(r#""id":123456789012345678901234567890"#));
    }

    #[test]
    fn salvage_ignores_nested_and_string_ids() {
        let salvaged = |t: &str| salvage_id(t).map(|i| i.value());
        assert_eq!(
            salvaged(r#"{"arguments": {"id": 1}, "id": 2, "x""#),
            Some(json!(2))
        );
        assert_eq!(
            salvaged(r#"{"execute": "id", "arguments": {"id": 1}"#),
            None
        );
        assert_eq!(
            salvaged(r#"{"a": "\"id\": 5", "id": {"n": [1]}, "#),
            Some(json!({"n": [1]}))
        );
        assert_eq!(salvaged(r#"{"id": "#), None);
        assert_eq!(salvaged(r#"{"id": 5e999, "#), None);
        assert_eq!(salvaged(r#"{"id"#), None);
    }
}

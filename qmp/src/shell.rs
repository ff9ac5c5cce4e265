//! qmp-shell's one-line syntax: `device_add driver=virtio-net-pci netdev=n1 id=nic1`.
//!
//! A line is a command name, then `key=value` words. A value is JSON when it reads as JSON
//! (`1`, `true`, `null`, `"a b"`, `{"a": [1]}`), and otherwise the text as it is
//! (`virtio-net-pci`, `52:54:00:12:34:56`); `'single quotes'` make a string of what they
//! hold, and `True`/`FALSE` are booleans as in qmp-shell. A dotted key nests:
//! `file.driver=null-co` is `{"file": {"driver": "null-co"}}`. Words are cut at white
//! space outside quotes and outside `{}`/`[]`, so `opts={"a": 1}` is one word (qmp-shell
//! itself would cut it at the space).
//!
//! [`parse_line`] reads a line into the command's name and arguments (`None` without
//! any `key=value`, as a JSON form with no arguments sends none), with where each value
//! sits in the line; [`format_line`] writes a command back as such a line, when it can be;
//! [`complete`] offers what may end a line, from the schema.
//! qmp-shell's `transaction(` ... `)` sub-shell is not part of this syntax.

use std::ops::Range;

use serde_json::{Map, Value};

use crate::schema::{JsonType, Schema, TypeNode};

/// A line read: the command and its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ShellLine {
    pub command: String,
    /// `None` when the line has no `key=value` word.
    pub arguments: Option<Map<String, Value>>,
    /// Each `key=value` word, in the line's order.
    pub words: Vec<Assignment>,
}

/// One `key=value` word of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The key's dotted path, split (`file.driver` is `["file", "driver"]`).
    pub path: Vec<String>,
    /// Where the value's text sits in the line (byte offsets; empty for `key=`).
    pub value: Range<usize>,
}

/// Why a line does not make a command; `at` is the byte offset of the word at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellError {
    #[error("no command name")]
    Empty,
    #[error("expected key=value, got {word:?}")]
    NotKeyValue { word: String, at: usize },
    #[error("{key:?} has an empty name in its path")]
    EmptyKey { key: String, at: usize },
    #[error("{key:?} is set twice")]
    Repeated { key: String, at: usize },
    #[error("{key:?} is used both as a value and as an object")]
    LeafAndObject { key: String, at: usize },
    #[error("a quote opened at byte {at} is not closed")]
    Unclosed { at: usize },
}

impl ShellError {
    /// The byte offset of the word (or quote) at fault, if any.
    pub fn at(&self) -> Option<usize> {
        match self {
            ShellError::Empty => None,
            ShellError::NotKeyValue { at, .. }
            | ShellError::EmptyKey { at, .. }
            | ShellError::Repeated { at, .. }
            | ShellError::LeafAndObject { at, .. }
            | ShellError::Unclosed { at } => Some(*at),
        }
    }
}

/// The line's words with their byte offsets: cut at white space outside quotes and
/// brackets.
fn words(line: &str) -> Result<Vec<(usize, &str)>, ShellError> {
    let mut out = Vec::new();
    let mut chars = line.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut depth = 0usize;
        let mut end = line.len();
        while let Some(&(i, c)) = chars.peek() {
            if c.is_whitespace() && depth == 0 {
                end = i;
                break;
            }
            chars.next();
            match c {
                '"' | '\'' => {
                    let mut closed = false;
                    while let Some((_, q)) = chars.next() {
                        if q == '\\' && c == '"' {
                            chars.next();
                        } else if q == c {
                            closed = true;
                            break;
                        }
                    }
                    if !closed {
                        return Err(ShellError::Unclosed { at: i });
                    }
                }
                '{' | '[' => depth += 1,
                '}' | ']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        out.push((start, &line[start..end]));
    }
    Ok(out)
}

/// A value's text as qmp-shell would mean it.
fn value_of(text: &str) -> Value {
    if text.len() >= 2 && text.starts_with('\'') && text.ends_with('\'') {
        return Value::String(text[1..text.len() - 1].to_owned());
    }
    if text.is_empty() {
        return Value::String(String::new());
    }
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return v;
    }
    match text.to_ascii_lowercase().as_str() {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(text.to_owned()),
    }
}

/// Reads a qmp-shell line: `COMMAND [KEY=VALUE ...]`.
pub fn parse_line(line: &str) -> Result<ShellLine, ShellError> {
    let words = words(line)?;
    let Some(((_, command), rest)) = words.split_first() else {
        return Err(ShellError::Empty);
    };
    let mut arguments = Map::new();
    let mut assigned = Vec::new();
    for &(at, word) in rest {
        let Some((key, value)) = word.split_once('=') else {
            return Err(ShellError::NotKeyValue {
                word: word.to_owned(),
                at,
            });
        };
        let path: Vec<String> = key.split('.').map(str::to_owned).collect();
        if path.iter().any(String::is_empty) {
            return Err(ShellError::EmptyKey {
                key: key.to_owned(),
                at,
            });
        }
        insert(&mut arguments, &path, value_of(value), key, at)?;
        let start = at + key.len() + 1;
        assigned.push(Assignment {
            path,
            value: start..start + value.len(),
        });
    }
    Ok(ShellLine {
        command: (*command).to_owned(),
        arguments: (!rest.is_empty()).then_some(arguments),
        words: assigned,
    })
}

fn insert(
    map: &mut Map<String, Value>,
    path: &[String],
    value: Value,
    key: &str,
    at: usize,
) -> Result<(), ShellError> {
    let both = || ShellError::LeafAndObject {
        key: key.to_owned(),
        at,
    };
    match path {
        [] => Ok(()),
        [last] => match map.get(last) {
            Some(Value::Object(_)) => Err(both()),
            Some(_) => Err(ShellError::Repeated {
                key: key.to_owned(),
                at,
            }),
            None => {
                map.insert(last.clone(), value);
                Ok(())
            }
        },
        [first, rest @ ..] => {
            let inner = map
                .entry(first.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            match inner {
                Value::Object(inner) => insert(inner, rest, value, key, at),
                _ => Err(both()),
            }
        }
    }
}

/// Whether `key` can stand in a dotted path.
fn plain_key(key: &str) -> bool {
    !key.is_empty()
        && !key
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '.' | '=' | '"' | '\'' | '{' | '['))
}

/// A value as a word reads it back: a string bare when it would read back as itself,
/// else JSON.
fn value_text(v: &Value) -> String {
    match v {
        // key= reads as ""
        Value::String(s) if s.is_empty() => String::new(),
        Value::String(s) if value_of(s) == *v && plain_value(s) => s.clone(),
        other => other.to_string(),
    }
}

fn plain_value(s: &str) -> bool {
    !s.chars()
        .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '{' | '[' | '}' | ']'))
}

/// Writes a command as a qmp-shell line, nested objects as dotted keys; `None` when its
/// arguments are not an object, or hold a key a line cannot carry (with a `.`, `=`, quote
/// or white space in it) or an empty object.
pub fn format_line(command: &str, arguments: Option<&Value>) -> Option<String> {
    let mut line = command.to_owned();
    match arguments {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => flatten(map, "", &mut line)?,
        Some(_) => return None,
    }
    Some(line)
}

fn flatten(map: &Map<String, Value>, prefix: &str, line: &mut String) -> Option<()> {
    for (k, v) in map {
        if !plain_key(k) {
            return None;
        }
        match v {
            Value::Object(inner) if inner.is_empty() => return None,
            Value::Object(inner) => flatten(inner, &format!("{prefix}{k}."), line)?,
            _ => {
                line.push(' ');
                line.push_str(&format!("{prefix}{k}={}", value_text(v)));
            }
        }
    }
    Some(())
}

/// What may complete the end of a line: texts that replace `replace` (a byte range at the
/// line's end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub replace: Range<usize>,
    /// Each ends as typing would go on: a command name and a value with a space, a key
    /// with `=`.
    pub candidates: Vec<String>,
}

/// Completes the word at the end of `line` from `schema`: the command name while it is the
/// only word, else a key of the command's arguments (nested ones after a dotted path,
/// required ones first, those already set left out), or after `key=` the values its type
/// lists (an enum's, `true` and `false`). At most `limit`; `None` when nothing applies.
pub fn complete(schema: &Schema, line: &str, limit: usize) -> Option<Completion> {
    let all = words(line).ok()?;
    let ends_in_space = line.ends_with(char::is_whitespace);
    let (start, partial) = match all.last() {
        Some(&(at, w)) if !ends_in_space => (at, w),
        _ => (line.len(), ""),
    };
    let replace = start..line.len();
    if all.len() <= 1 && !ends_in_space {
        let candidates = schema
            .completions(partial, limit)
            .into_iter()
            .map(|c| format!("{c} "))
            .collect();
        return Some(Completion {
            replace,
            candidates,
        });
    }
    let before = parse_line(&line[..start]).ok()?;
    let so_far = before.arguments.map(Value::Object);
    let candidates: Vec<String> = match partial.split_once('=') {
        None => {
            let mut path: Vec<String> = partial.split('.').map(str::to_owned).collect();
            let prefix = path.pop().unwrap_or_default();
            let ty = schema.type_at(&before.command, &path, so_far.as_ref())?;
            let here = path
                .iter()
                .try_fold(so_far.as_ref(), |v, k| Some(v?.get(k.as_str())))
                .flatten();
            let mut members = ty.members_for(here);
            members.retain(|a| {
                a.name.starts_with(&prefix) && here.and_then(|h| h.get(a.name.as_str())).is_none()
            });
            members.sort_by_key(|a| !a.required);
            let dirs: String = path.iter().map(|p| format!("{p}.")).collect();
            members
                .iter()
                .take(limit)
                .map(|a| format!("{dirs}{}=", a.name))
                .collect()
        }
        Some((key, typed)) => {
            let path: Vec<String> = key.split('.').map(str::to_owned).collect();
            let ty = schema.type_at(&before.command, &path, so_far.as_ref())?;
            let values: Vec<String> = match (&ty, ty.enum_values()) {
                (_, Some(v)) => v.to_vec(),
                (TypeNode::Builtin(JsonType::Boolean), None) => {
                    vec!["true".into(), "false".into()]
                }
                _ => Vec::new(),
            };
            values
                .into_iter()
                .filter(|v| v.starts_with(typed))
                .take(limit)
                .map(|v| format!("{key}={v} "))
                .collect()
        }
    };
    Some(Completion {
        replace,
        candidates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::parse(include_str!("../tests/data/qemu-7.2-schema.json")).unwrap()
    }

    #[test]
    fn the_end_of_a_line_completes_from_the_schema() {
        let s = schema();
        let c = |line: &str| complete(&s, line, 8).map(|c| (c.replace, c.candidates));
        // the command name
        let (at, names) = c("query-st").unwrap();
        assert_eq!(at, 0..8);
        assert_eq!(
            names,
            ["query-stats ", "query-stats-schemas ", "query-status "]
        );
        // a key: required ones first, those set left out
        let (at, keys) = c("device_add ").unwrap();
        assert_eq!(at, 11..11);
        assert_eq!(keys, ["driver=", "bus=", "id="]);
        assert_eq!(c("device_add driver=e1000 i").unwrap().1, ["id="]);
        assert_eq!(c("device_add driver=e1000 ").unwrap().1, ["bus=", "id="]);
        // a union's keys follow its tag; dotted paths go inside
        let keys = c("blockdev-add driver=file f").unwrap().1;
        assert!(keys.contains(&"filename=".to_owned()), "{keys:?}");
        let (at, keys) = c("blockdev-add driver=raw file.driver=null-co file.s").unwrap();
        assert_eq!(at, 44..50);
        assert_eq!(keys, ["file.size="]);
        // values an enum lists, and booleans
        let (at, values) = c("blockdev-add driver=qco").unwrap();
        assert_eq!(at, 13..23);
        assert_eq!(values, ["driver=qcow ", "driver=qcow2 "]);
        assert_eq!(
            c("blockdev-add driver=file read-only=").unwrap().1,
            ["read-only=true ", "read-only=false "]
        );
        assert_eq!(c("device_del id=").unwrap().1, Vec::<String>::new());
        // nothing for an unknown command or a broken line
        assert_eq!(c("no-such-command a"), None);
        assert_eq!(c("device_del id=\"x"), None);
    }

    fn args(line: &str) -> Value {
        Value::Object(parse_line(line).unwrap().arguments.unwrap_or_default())
    }

    #[test]
    fn a_line_is_a_command_and_its_arguments() {
        let l = parse_line("device_add driver=virtio-net-pci netdev=n1 id=nic1").unwrap();
        assert_eq!(l.command, "device_add");
        assert_eq!(
            Value::Object(l.arguments.unwrap()),
            json!({"driver": "virtio-net-pci", "netdev": "n1", "id": "nic1"})
        );
        assert_eq!(
            parse_line("  query-status  ").unwrap(),
            ShellLine {
                command: "query-status".into(),
                arguments: None,
                words: vec![]
            }
        );
        assert_eq!(parse_line("   "), Err(ShellError::Empty));
    }

    #[test]
    fn values_are_json_when_they_read_as_json() {
        assert_eq!(
            args(
                r#"c a=1 b=-2.5 c=true d=null e="x y" f={"k": [1, "a b"]} g=[1,2] h=52:54:00:12:34:56"#
            ),
            json!({"a": 1, "b": -2.5, "c": true, "d": null, "e": "x y", "f": {"k": [1, "a b"]},
                   "g": [1, 2], "h": "52:54:00:12:34:56"})
        );
        // as qmp-shell: True/FALSE are booleans; single quotes make a string; key= is ""
        assert_eq!(
            args("c a=True b=FALSE c='1 2' d= e=on"),
            json!({"a": true, "b": false, "c": "1 2", "d": "", "e": "on"})
        );
        // '=' after the first belongs to the value
        assert_eq!(args("c a=x=y"), json!({"a": "x=y"}));
    }

    #[test]
    fn dotted_keys_nest() {
        assert_eq!(
            args("blockdev-add driver=raw node-name=r0 file.driver=null-co file.size=1048576"),
            json!({"driver": "raw", "node-name": "r0", "file": {"driver": "null-co", "size": 1048576}})
        );
        assert_eq!(
            args("c a.b.c=1 a.b.d=2"),
            json!({"a": {"b": {"c": 1, "d": 2}}})
        );
    }

    #[test]
    fn mistakes_are_named_with_their_place() {
        assert_eq!(
            parse_line("c id"),
            Err(ShellError::NotKeyValue {
                word: "id".into(),
                at: 2
            })
        );
        assert_eq!(
            parse_line("c a=1 a=2"),
            Err(ShellError::Repeated {
                key: "a".into(),
                at: 6
            })
        );
        assert!(matches!(
            parse_line("c a=1 a.b=2"),
            Err(ShellError::LeafAndObject { .. })
        ));
        assert!(matches!(
            parse_line("c a.b=1 a=2"),
            Err(ShellError::LeafAndObject { .. })
        ));
        assert!(matches!(
            parse_line("c a..b=1"),
            Err(ShellError::EmptyKey { .. })
        ));
        assert_eq!(
            parse_line(r#"c a="x y"#),
            Err(ShellError::Unclosed { at: 4 })
        );
        assert_eq!(
            ShellError::NotKeyValue {
                word: "id".into(),
                at: 2
            }
            .to_string(),
            "expected key=value, got \"id\""
        );
    }

    #[test]
    fn each_value_has_its_place_in_the_line() {
        let line = r#"device_del id= x.y="é z""#;
        let l = parse_line(line).unwrap();
        assert_eq!(l.words[0].path, ["id"]);
        assert_eq!(l.words[0].value, 14..14, "empty, right after '='");
        assert_eq!(l.words[1].path, ["x", "y"]);
        assert_eq!(&line[l.words[1].value.clone()], r#""é z""#);
    }

    #[test]
    fn commands_write_back_as_lines_that_read_the_same() {
        let cases = [
            json!({"driver": "virtio-net-pci", "netdev": "n1", "id": "nic1"}),
            json!({"driver": "raw", "file": {"driver": "null-co", "size": 1048576}}),
            json!({"a": "1", "b": "true", "c": "x y", "d": "", "e": [1, {"k": "v w"}], "f": null,
                   "g": "'q'", "h": "{", "i": -0.5, "j": "TRUE", "k": "say \"hi\""}),
        ];
        for args in cases {
            let line = format_line("cmd", Some(&args)).unwrap();
            let back = parse_line(&line).unwrap();
            assert_eq!(Value::Object(back.arguments.unwrap()), args, "{line}");
        }
        assert_eq!(
            format_line("device_add", Some(&json!({"driver": "e1000", "id": "n"}))).as_deref(),
            Some("device_add driver=e1000 id=n")
        );
        assert_eq!(format_line("stop", None).as_deref(), Some("stop"));
        assert_eq!(
            format_line("device_del", Some(&json!({"id": ""}))).as_deref(),
            Some("device_del id="),
            "an empty string as qmp-shell writes it"
        );
        assert_eq!(parse_line("c a=1 b").unwrap_err().at(), Some(6));
        // what a line cannot carry
        assert_eq!(format_line("c", Some(&json!({"a.b": 1}))), None);
        assert_eq!(format_line("c", Some(&json!({"a": {}}))), None);
        assert_eq!(format_line("c", Some(&json!([1]))), None);
    }
}

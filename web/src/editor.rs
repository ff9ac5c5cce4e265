//! The command form as plain Rust: mode, command name, the arguments' JSON text, its
//! syntax errors, schema validation, and the history of what was sent.
//!
//! [`Form::check`] decides what the Send button does: send, show a syntax error (nothing
//! is sent), or show schema problems (sent only by an explicit "send anyway").

use qmp::schema::Problem;
use qmp::Schema;
use serde_json::{json, Value};

use crate::state::Request;

/// What the form edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// A command name plus its arguments as JSON, checked against the schema.
    #[default]
    Json,
    /// An HMP command line (`human-monitor-command`).
    Hmp,
    /// Any text, sent as typed.
    Raw,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Json, Mode::Hmp, Mode::Raw];

    pub fn label(self) -> &'static str {
        match self {
            Mode::Json => "JSON",
            Mode::Hmp => "HMP",
            Mode::Raw => "Raw",
        }
    }
}

/// A JSON syntax error, 1-based like an editor shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

/// Parses the arguments' text: empty means no arguments.
pub fn parse_args(text: &str) -> Result<Option<Value>, SyntaxError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str::<Value>(text).map(Some).map_err(|e| {
        // serde_json appends " at line L column C" to its message; keep the message bare
        let message = e.to_string();
        let message = match message.rfind(" at line ") {
            Some(i) => message[..i].to_owned(),
            None => message,
        };
        SyntaxError {
            line: e.line().max(1),
            column: e.column().max(1),
            message,
        }
    })
}

/// Pretty-prints JSON text (2-space indent).
pub fn format(text: &str) -> Result<String, SyntaxError> {
    Ok(match parse_args(text)? {
        Some(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
        None => String::new(),
    })
}

/// JSON text on one line.
pub fn minify(text: &str) -> Result<String, SyntaxError> {
    Ok(parse_args(text)?.map(|v| v.to_string()).unwrap_or_default())
}

/// What pressing Send would do.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// Nothing to send yet (no command name).
    Empty,
    /// The arguments are not JSON: nothing can be sent.
    Syntax(SyntaxError),
    /// The request, and what the schema finds wrong with it (empty: all good, or no
    /// schema yet).
    Request {
        request: Request,
        problems: Vec<String>,
    },
}

/// The form's contents.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Form {
    pub mode: Mode,
    pub name: String,
    pub args: String,
    pub hmp: String,
    pub raw: String,
    pub history: History,
}

impl Form {
    /// What the current contents would send, checked against `schema`.
    pub fn check(&self, schema: Option<&Schema>) -> Check {
        match self.mode {
            Mode::Hmp if self.hmp.trim().is_empty() => Check::Empty,
            Mode::Hmp => Check::Request {
                request: Request::Hmp(self.hmp.trim().to_owned()),
                problems: vec![],
            },
            Mode::Raw if self.raw.trim().is_empty() => Check::Empty,
            // Raw text goes as typed; only a syntax hint is offered, never enforced.
            Mode::Raw => Check::Request {
                request: Request::Raw(self.raw.clone()),
                problems: vec![],
            },
            Mode::Json => {
                let name = self.name.trim();
                if name.is_empty() {
                    return Check::Empty;
                }
                let args = match parse_args(&self.args) {
                    Ok(a) => a,
                    Err(e) => return Check::Syntax(e),
                };
                let problems = match schema {
                    None => vec![],
                    Some(s) => match s.validate(name, args.as_ref()) {
                        Ok(p) => p.iter().map(Problem::to_string).collect(),
                        Err(e) => vec![e.to_string()],
                    },
                };
                Check::Request {
                    request: Request::Command {
                        name: name.to_owned(),
                        args,
                    },
                    problems,
                }
            }
        }
    }

    /// Chooses a command: its name, and a template of its required arguments.
    pub fn choose(&mut self, name: &str, schema: Option<&Schema>) {
        self.mode = Mode::Json;
        self.name = name.to_owned();
        self.args = match schema.and_then(|s| s.template(name).ok()) {
            Some(Value::Object(m)) if m.is_empty() => String::new(),
            Some(t) => serde_json::to_string_pretty(&t).unwrap_or_default(),
            None => String::new(),
        };
    }

    /// Fills the form from a request (history recall, re-run from the transcript).
    pub fn load(&mut self, request: &Request) {
        match request {
            Request::Command { name, args } => {
                self.mode = Mode::Json;
                self.name = name.clone();
                self.args = args
                    .as_ref()
                    .map(|a| serde_json::to_string_pretty(a).unwrap_or_default())
                    .unwrap_or_default();
            }
            Request::Hmp(line) => {
                self.mode = Mode::Hmp;
                self.hmp = line.clone();
            }
            Request::Raw(text) => {
                self.mode = Mode::Raw;
                self.raw = text.clone();
            }
        }
    }

    /// Empties the current mode's fields (Esc).
    pub fn clear(&mut self) {
        match self.mode {
            Mode::Json => {
                self.name.clear();
                self.args.clear();
            }
            Mode::Hmp => self.hmp.clear(),
            Mode::Raw => self.raw.clear(),
        }
        self.history.pos = None;
    }

    /// Walks the history: `older` (up) or newer (down); loads what it finds.
    pub fn recall(&mut self, older: bool) -> bool {
        let found = if older {
            self.history.older()
        } else {
            self.history.newer()
        };
        match found {
            Some(r) => {
                self.load(&r);
                true
            }
            None => false,
        }
    }
}

/// What was sent, newest last, at most [`History::CAP`]; kept in localStorage.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct History {
    items: Vec<Request>,
    /// The recalled item while walking with up/down.
    pos: Option<usize>,
}

impl History {
    pub const CAP: usize = 100;

    pub fn items(&self) -> &[Request] {
        &self.items
    }

    /// Records a sent request (an immediate repeat is kept once) and ends any walk.
    pub fn push(&mut self, request: Request) {
        self.pos = None;
        if self.items.last() != Some(&request) {
            self.items.push(request);
        }
        if self.items.len() > Self::CAP {
            self.items.remove(0);
        }
    }

    fn older(&mut self) -> Option<Request> {
        let pos = match self.pos {
            None => self.items.len().checked_sub(1)?,
            Some(0) => return None,
            Some(p) => p - 1,
        };
        self.pos = Some(pos);
        self.items.get(pos).cloned()
    }

    fn newer(&mut self) -> Option<Request> {
        let pos = self.pos? + 1;
        if pos >= self.items.len() {
            return None;
        }
        self.pos = Some(pos);
        self.items.get(pos).cloned()
    }

    /// The history as stored: a JSON array of `{"mode", ...}` objects.
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.items
                .iter()
                .map(|r| match r {
                    Request::Command { name, args } => {
                        json!({"mode": "json", "name": name, "args": args})
                    }
                    Request::Hmp(line) => json!({"mode": "hmp", "line": line}),
                    Request::Raw(text) => json!({"mode": "raw", "text": text}),
                })
                .collect(),
        )
    }

    /// Reads what [`History::to_json`] wrote; unreadable items are skipped.
    pub fn from_json(value: &Value) -> History {
        let str_of = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let items = value
            .as_array()
            .map(|a| a.as_slice())
            .unwrap_or_default()
            .iter()
            .filter_map(|v| match v.get("mode").and_then(Value::as_str)? {
                "json" => Some(Request::Command {
                    name: str_of(v, "name")?,
                    args: v.get("args").filter(|a| !a.is_null()).cloned(),
                }),
                "hmp" => Some(Request::Hmp(str_of(v, "line")?)),
                "raw" => Some(Request::Raw(str_of(v, "text")?)),
                _ => None,
            })
            .collect();
        History { items, pos: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::parse(include_str!("../../qmp/tests/data/qemu-7.2-schema.json")).unwrap()
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let e = parse_args("{\n  \"id\": \"x\",\n}").unwrap_err();
        assert_eq!((e.line, e.column), (3, 1));
        assert_eq!(e.message, "trailing comma");
        assert_eq!(e.to_string(), "line 3, column 1: trailing comma");
        let e = parse_args("{\"id\" 1}").unwrap_err();
        assert_eq!((e.line, e.column), (1, 7));
        assert_eq!(parse_args("  \n "), Ok(None));
    }

    #[test]
    fn format_and_minify() {
        assert_eq!(
            format("{\"a\":[1,2]}").unwrap(),
            "{\n  \"a\": [\n    1,\n    2\n  ]\n}"
        );
        assert_eq!(minify("{\n \"a\" : [ 1 , 2 ] }").unwrap(), "{\"a\":[1,2]}");
        assert!(format("{").is_err());
        assert_eq!(minify("").unwrap(), "");
    }

    #[test]
    fn invalid_json_can_not_be_sent() {
        let form = Form {
            name: "device_del".into(),
            args: "{\"id\": ".into(),
            ..Form::default()
        };
        assert!(matches!(form.check(Some(&schema())), Check::Syntax(_)));
    }

    #[test]
    fn schema_problems_are_listed_with_the_request() {
        let s = schema();
        let mut form = Form::default();
        assert_eq!(form.check(Some(&s)), Check::Empty);
        form.name = "device_del".into();
        form.args = "{}".into();
        let Check::Request { request, problems } = form.check(Some(&s)) else {
            panic!()
        };
        assert_eq!(problems, ["$.id: required member missing"]);
        assert_eq!(
            request,
            Request::Command {
                name: "device_del".into(),
                args: Some(json!({}))
            }
        );
        form.args = "{\"id\": \"n0\"}".into();
        assert!(
            matches!(form.check(Some(&s)), Check::Request { problems, .. } if problems.is_empty())
        );
        form.name = "no-such-command".into();
        assert!(
            matches!(form.check(Some(&s)), Check::Request { problems, .. } if problems[0].contains("no command"))
        );
        // without a schema nothing is flagged
        assert!(matches!(form.check(None), Check::Request { problems, .. } if problems.is_empty()));
    }

    #[test]
    fn choosing_a_command_fills_the_template() {
        let s = schema();
        let mut form = Form::default();
        form.choose("device_del", Some(&s));
        assert_eq!(form.args, "{\n  \"id\": \"\"\n}");
        form.choose("query-status", Some(&s));
        assert_eq!(form.args, "");
    }

    #[test]
    fn history_walks_and_survives_storage() {
        let mut form = Form::default();
        let a = Request::command("query-status");
        let b = Request::Hmp("info registers".into());
        let c = Request::Command {
            name: "device_del".into(),
            args: Some(json!({"id": "x"})),
        };
        for r in [&a, &b, &b, &c] {
            form.history.push(r.clone());
        }
        assert_eq!(
            form.history.items().len(),
            3,
            "an immediate repeat is kept once"
        );
        assert!(form.recall(true));
        assert_eq!((form.mode, form.name.as_str()), (Mode::Json, "device_del"));
        assert!(form.args.contains("\"x\""));
        assert!(form.recall(true));
        assert_eq!(
            (form.mode, form.hmp.as_str()),
            (Mode::Hmp, "info registers")
        );
        assert!(form.recall(true));
        assert!(!form.recall(true), "the oldest is the end");
        assert_eq!(form.name, "query-status");
        assert!(form.recall(false));
        assert_eq!(form.mode, Mode::Hmp);
        let stored = form.history.to_json();
        let back = History::from_json(&stored);
        assert_eq!(back.items(), form.history.items());
        assert!(
            History::from_json(&json!([{"mode": "zz"}, 3, {"mode": "raw", "text": "{}"}]))
                .items()
                .len()
                == 1
        );
        for _ in 0..History::CAP + 10 {
            form.history
                .push(Request::Raw(format!("{}", form.history.items().len())));
        }
        assert_eq!(form.history.items().len(), History::CAP);
    }
}

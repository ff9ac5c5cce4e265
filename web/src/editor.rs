//! The command form as plain Rust: mode, command name, the arguments' JSON text (or a
//! qmp-shell line, [`qmp::shell`]), its syntax errors, schema validation, completion, and
//! the history of what was sent.
//!
//! The view reports [`FormMsg`]s; [`Form::update`] applies them (Format and Minify
//! included) and says what Send does. [`Form::check`] decides it: send, show a syntax error
//! (nothing is sent), or show schema problems and empty placeholders (sent only by an
//! explicit "send anyway"); [`Check::request`] turns that into the request or the refusal.
//! A refusal for an empty placeholder asks the page to put the caret in it
//! ([`Form::focus`]).

use qmp::schema::{member_path, Problem, ProblemKind};
use qmp::shell::{self, ShellLine};
use qmp::Schema;
use serde_json::{json, Value};

use crate::state::Request;

/// What the form edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// A command name plus its arguments as JSON, checked against the schema.
    #[default]
    Json,
    /// A command in qmp-shell's one-line syntax (`device_add driver=e1000 id=n1`), checked
    /// against the schema as JSON is.
    Shell,
    /// An HMP command line (`human-monitor-command`).
    Hmp,
    /// Any text, sent as typed.
    Raw,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::Json, Mode::Shell, Mode::Hmp, Mode::Raw];

    pub fn label(self) -> &'static str {
        match self {
            Mode::Json => "JSON",
            Mode::Shell => "Shell",
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

/// An empty string value in the arguments: a template's placeholder not filled in yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    /// Where, as problems name places (`$.id`).
    pub path: String,
    /// The caret position between its quotes, in UTF-16 units as a text area counts.
    pub caret: usize,
}

/// The empty string values of JSON `text` (member names aside), in text order. Meant for
/// text that parses; on text that does not, it gives what it found before the fault.
pub fn placeholders(text: &str) -> Vec<Placeholder> {
    let mut utf16 = 0;
    let chars = text
        .chars()
        .map(|c| {
            let at = utf16;
            utf16 += c.len_utf16();
            (c, at)
        })
        .collect();
    let mut walk = Walk {
        chars,
        i: 0,
        found: Vec::new(),
    };
    walk.value("$");
    walk.found
}

/// A walk over JSON text that notes the empty strings' places.
struct Walk {
    /// Each character with its UTF-16 offset.
    chars: Vec<(char, usize)>,
    i: usize,
    found: Vec<Placeholder>,
}

impl Walk {
    fn peek(&mut self) -> Option<char> {
        while self
            .chars
            .get(self.i)
            .is_some_and(|(c, _)| c.is_whitespace())
        {
            self.i += 1;
        }
        self.chars.get(self.i).map(|(c, _)| *c)
    }

    /// A string at the cursor (its opening quote): its text, escapes decoded.
    fn string(&mut self) -> Option<String> {
        self.i += 1;
        let mut s = String::new();
        loop {
            let (c, _) = *self.chars.get(self.i)?;
            self.i += 1;
            match c {
                '"' => return Some(s),
                '\\' => {
                    let (e, _) = *self.chars.get(self.i)?;
                    self.i += 1;
                    s.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        'u' => {
                            let hex: String = self
                                .chars
                                .get(self.i..self.i + 4)?
                                .iter()
                                .map(|(c, _)| c)
                                .collect();
                            self.i += 4;
                            u32::from_str_radix(&hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .unwrap_or('\u{fffd}')
                        }
                        other => other,
                    });
                }
                c => s.push(c),
            }
        }
    }

    fn value(&mut self, path: &str) -> Option<()> {
        match self.peek()? {
            '{' => {
                self.i += 1;
                loop {
                    match self.peek()? {
                        '}' => break,
                        ',' => self.i += 1,
                        '"' => {
                            let key = self.string()?;
                            if self.peek()? != ':' {
                                return None;
                            }
                            self.i += 1;
                            self.value(&member_path(path, &key))?;
                        }
                        _ => return None,
                    }
                }
                self.i += 1;
            }
            '[' => {
                self.i += 1;
                let mut n = 0;
                loop {
                    match self.peek()? {
                        ']' => break,
                        ',' => self.i += 1,
                        _ => {
                            self.value(&format!("{path}[{n}]"))?;
                            n += 1;
                        }
                    }
                }
                self.i += 1;
            }
            '"' => {
                let at = self.chars[self.i].1;
                if self.string()?.is_empty() {
                    self.found.push(Placeholder {
                        path: path.to_owned(),
                        caret: at + 1,
                    });
                }
            }
            _ => {
                // a number or a literal
                while self
                    .chars
                    .get(self.i)
                    .is_some_and(|(c, _)| !matches!(c, ',' | '}' | ']') && !c.is_whitespace())
                {
                    self.i += 1;
                }
            }
        }
        Some(())
    }
}

/// A field of the form, for the keyboard focus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    Args,
    Shell,
    Hmp,
    Raw,
}

/// Where the page should put the keyboard focus: each new request has a new `seq`, so the
/// same place asked twice is still a change for the view to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FocusRequest {
    pub field: Field,
    /// The caret position (UTF-16 units), when it matters.
    pub caret: Option<usize>,
    pub seq: u32,
}

/// What the form's view asks of its owner.
#[derive(Debug, Clone, PartialEq)]
pub enum FormMsg {
    Mode(Mode),
    /// The name field changed.
    Name(String),
    /// A completion was taken (as shown): a command name fills its template (JSON), a
    /// word completes the line's end (Shell).
    Choose(String),
    Args(String),
    /// The qmp-shell line changed.
    Shell(String),
    Hmp(String),
    Raw(String),
    Format,
    Minify,
    /// Walk the history: older (true) or newer.
    Recall(bool),
    Clear,
    /// Send; `true` sends despite schema problems and empty placeholders.
    Send(bool),
    /// Enter in a one-line field: a command name exactly typed sends, one that completes
    /// to one command takes it, one that completes to several sends nothing (ambiguous).
    Enter,
}

impl FormMsg {
    /// Whether the last refusal stays on show: sending and reformatting say their own
    /// outcome, any other edit makes the old one stale.
    pub fn keeps_refusal(&self) -> bool {
        matches!(
            self,
            FormMsg::Send(_) | FormMsg::Enter | FormMsg::Format | FormMsg::Minify
        )
    }
}

/// What pressing Send would do.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// Nothing to send yet (no command name).
    Empty,
    /// The arguments are not JSON: nothing can be sent.
    Syntax(SyntaxError),
    /// The line is not qmp-shell's syntax: nothing can be sent.
    Shell(String),
    /// The request, what the schema finds wrong with it (empty: all good, or no schema
    /// yet), and the empty placeholders left in its arguments.
    Request {
        request: Request,
        problems: Vec<String>,
        placeholders: Vec<Placeholder>,
    },
}

impl Check {
    /// What Send does: the request to send, or why nothing is sent. `anyway` sends despite
    /// schema problems (never despite a syntax error).
    pub fn request(&self, anyway: bool) -> Result<Request, String> {
        match self {
            Check::Empty => Err("not sent: nothing to send".into()),
            Check::Syntax(e) => Err(format!("not sent: the arguments are not JSON ({e})")),
            Check::Shell(e) => Err(format!("not sent: not a qmp-shell line ({e})")),
            Check::Request { placeholders, .. } if !placeholders.is_empty() && !anyway => {
                let paths: Vec<&str> = placeholders.iter().map(|p| p.path.as_str()).collect();
                let (s, are) = if paths.len() == 1 {
                    ("", "is")
                } else {
                    ("s", "are")
                };
                Err(format!(
                    "not sent: placeholder{s} {} {are} empty (fill in, or Send anyway)",
                    paths.join(", ")
                ))
            }
            Check::Request { problems, .. } if !problems.is_empty() && !anyway => {
                let n = problems.len();
                let s = if n == 1 { "" } else { "s" };
                Err(format!(
                    "not sent: {n} schema problem{s} (fix, or Send anyway)"
                ))
            }
            Check::Request { request, .. } => Ok(request.clone()),
        }
    }
}

/// The form's contents.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Form {
    pub mode: Mode,
    pub name: String,
    pub args: String,
    /// The qmp-shell line (Shell mode).
    pub shell: String,
    pub hmp: String,
    pub raw: String,
    pub history: History,
    /// Where the page should put the keyboard focus (the view acts on each new request).
    pub focus: Option<FocusRequest>,
    /// The command the arguments were written for: the one chosen or recalled, or named
    /// while they were edited.
    pub args_for: Option<String>,
    /// The arguments as the form itself last wrote them (a template, a recalled request):
    /// while they read the same, the user has not touched them.
    pub args_filled: String,
    /// Set when the name changed to another command but the arguments, edited for this
    /// one, were kept: the page says so (until they are edited, or replaced).
    pub kept_from: Option<String>,
}

/// Completions the form offers at most (and names in an ambiguity).
pub const COMPLETIONS_SHOWN: usize = 8;

/// What sending command `name` with `args` would do.
fn command_check(
    name: &str,
    args: Option<Value>,
    placeholders: Vec<Placeholder>,
    schema: Option<&Schema>,
) -> Check {
    let problems = match schema {
        None => vec![],
        Some(s) => match s.validate(name, args.as_ref()) {
            // an empty enum placeholder is listed once, as a placeholder
            Ok(p) => p
                .iter()
                .filter(|p| {
                    let empty =
                        matches!(&p.kind, ProblemKind::NotInEnum { value, .. } if value.is_empty());
                    !(empty && placeholders.iter().any(|ph| ph.path == p.path))
                })
                .map(Problem::to_string)
                .collect(),
            Err(e) => vec![match did_you_mean(s, name) {
                Some(meant) => format!("{e}; did you mean {meant}?"),
                None => e.to_string(),
            }],
        },
    };
    Check::Request {
        request: Request::Command {
            name: name.to_owned(),
            args,
        },
        problems,
        placeholders,
    }
}

/// The commands `name` may be a mistyping of, as a question's words: `a`, `a or b`.
fn did_you_mean(schema: &Schema, name: &str) -> Option<String> {
    let meant = schema.similar(name, 3);
    match meant.split_last()? {
        (last, []) => Some((*last).to_owned()),
        (last, rest) => Some(format!("{} or {last}", rest.join(", "))),
    }
}

/// The empty values of a qmp-shell line (`id=`, `id=""`), the caret just after the `=`
/// (inside the quotes).
fn line_placeholders(text: &str, line: &ShellLine) -> Vec<Placeholder> {
    line.words
        .iter()
        .filter_map(|w| {
            let value = &text[w.value.clone()];
            let inside = match value {
                "" => 0,
                "\"\"" | "''" => 1,
                _ => return None,
            };
            let path = w
                .path
                .iter()
                .fold("$".to_owned(), |p, k| member_path(&p, k));
            let caret = text[..w.value.start].encode_utf16().count() + inside;
            Some(Placeholder { path, caret })
        })
        .collect()
}

impl Form {
    /// What the current contents would send, checked against `schema`.
    pub fn check(&self, schema: Option<&Schema>) -> Check {
        match self.mode {
            Mode::Hmp if self.hmp.trim().is_empty() => Check::Empty,
            Mode::Hmp => Check::Request {
                request: Request::Hmp(self.hmp.trim().to_owned()),
                problems: vec![],
                placeholders: vec![],
            },
            Mode::Raw if self.raw.trim().is_empty() => Check::Empty,
            // Raw text goes as typed; only a syntax hint is offered, never enforced.
            Mode::Raw => Check::Request {
                request: Request::Raw(self.raw.clone()),
                problems: vec![],
                placeholders: vec![],
            },
            Mode::Json => {
                let name = self.name.trim();
                if name.is_empty() {
                    return Check::Empty;
                }
                match parse_args(&self.args) {
                    Ok(args) => command_check(name, args, placeholders(&self.args), schema),
                    Err(e) => Check::Syntax(e),
                }
            }
            Mode::Shell if self.shell.trim().is_empty() => Check::Empty,
            Mode::Shell => match shell::parse_line(&self.shell) {
                Ok(line) => {
                    let empty = line_placeholders(&self.shell, &line);
                    let args = line.arguments.map(Value::Object);
                    command_check(&line.command, args, empty, schema)
                }
                Err(e) => Check::Shell(match e.at() {
                    Some(at) => format!("column {}: {e}", self.shell[..at].chars().count() + 1),
                    None => e.to_string(),
                }),
            },
        }
    }

    /// The driver named by the `device_add` being written (the line's last word may be
    /// unfinished), so its properties can be asked for.
    pub fn device_driver(&self) -> Option<String> {
        let (name, args) = match self.mode {
            Mode::Json => (
                self.name.trim().to_owned(),
                parse_args(&self.args).ok().flatten(),
            ),
            Mode::Shell => {
                let line = shell::parse_line(&self.shell).ok().or_else(|| {
                    let cut = self.shell.trim_end().rfind(char::is_whitespace)?;
                    shell::parse_line(&self.shell[..cut]).ok()
                })?;
                (line.command, line.arguments.map(Value::Object))
            }
            Mode::Hmp | Mode::Raw => return None,
        };
        let driver = args?.get("driver")?.as_str()?.to_owned();
        (name == "device_add").then_some(driver)
    }

    /// The command the form names: the name field's (JSON) or the line's first word
    /// (Shell); empty in the other modes.
    pub fn command_name(&self) -> &str {
        match self.mode {
            Mode::Json => self.name.trim(),
            Mode::Shell => self.shell.split_whitespace().next().unwrap_or_default(),
            Mode::Hmp | Mode::Raw => "",
        }
    }

    /// Applies what the view reported. `Ok(Some(request))`: send it (the owner sends, and
    /// records it in the history); `Err` says why nothing was sent or changed (a refused
    /// Send, Format or Minify of text that is not JSON).
    pub fn update(
        &mut self,
        msg: FormMsg,
        schema: Option<&Schema>,
    ) -> Result<Option<Request>, String> {
        match msg {
            FormMsg::Mode(m) => self.switch(m),
            FormMsg::Name(n) => self.rename(n, schema),
            FormMsg::Choose(n) if self.mode == Mode::Shell => self.complete_line(&n, schema),
            FormMsg::Choose(n) => self.choose(&n, schema),
            FormMsg::Args(a) => self.edit_args(a, schema),
            FormMsg::Shell(l) => self.shell = l,
            FormMsg::Hmp(h) => self.hmp = h,
            FormMsg::Raw(r) => self.raw = r,
            FormMsg::Format | FormMsg::Minify => {
                return self
                    .reformat(msg == FormMsg::Format)
                    .map(|()| None)
                    .map_err(|e| format!("cannot format: {e}"));
            }
            FormMsg::Recall(older) => {
                self.recall(older);
            }
            FormMsg::Clear => self.clear(),
            FormMsg::Send(anyway) => return self.send(schema, anyway).map(Some),
            FormMsg::Enter => return self.enter(schema),
        }
        Ok(None)
    }

    /// Enter in a one-line field: a command name alone that is not exactly a command
    /// completes when only one command fits, and sends nothing when several do (they are
    /// on show); anything else is Send.
    fn enter(&mut self, schema: Option<&Schema>) -> Result<Option<Request>, String> {
        let naming = match self.mode {
            Mode::Json => Some(self.name.trim().to_owned()),
            Mode::Shell if self.shell.split_whitespace().nth(1).is_none() => {
                Some(self.shell.trim().to_owned())
            }
            _ => None,
        };
        if let (Some(name), Some(s)) = (naming, schema) {
            if !name.is_empty() && s.command(&name).is_none() {
                let fits = s.completions(&name, COMPLETIONS_SHOWN + 1);
                match fits.as_slice() {
                    [] => {
                        if let Some(meant) = did_you_mean(s, &name) {
                            return Err(format!(
                                "not sent: no command {name}; did you mean {meant}? (Tab takes it)"
                            ));
                        }
                    }
                    [one] => {
                        let one = (*one).to_owned();
                        self.update(FormMsg::Choose(one), schema)?;
                        return Ok(None);
                    }
                    many => {
                        let more = if many.len() > COMPLETIONS_SHOWN {
                            ", ..."
                        } else {
                            ""
                        };
                        let shown = many[..many.len().min(COMPLETIONS_SHOWN)].join(", ");
                        return Err(format!(
                            "not sent: {name} is not a command; it begins {shown}{more} (Tab takes the first)"
                        ));
                    }
                }
            }
        }
        self.send(schema, false).map(Some)
    }

    /// Changes mode; between JSON and Shell the command goes along when it can be written
    /// in the other form.
    fn switch(&mut self, to: Mode) {
        match (self.mode, to) {
            (Mode::Json, Mode::Shell) if !self.name.trim().is_empty() => {
                if let Ok(args) = parse_args(&self.args) {
                    if let Some(line) = shell::format_line(self.name.trim(), args.as_ref()) {
                        self.shell = line;
                    }
                }
            }
            (Mode::Shell, Mode::Json) => {
                if let Ok(line) = shell::parse_line(&self.shell) {
                    let request = Request::Command {
                        name: line.command,
                        args: line.arguments.map(Value::Object),
                    };
                    self.load_json(&request);
                }
            }
            _ => {}
        }
        self.mode = to;
        // each mode walks its own history, from its newest
        self.history.pos = None;
    }

    /// Takes a completion of the line's end, as shown (`label`).
    fn complete_line(&mut self, label: &str, schema: Option<&Schema>) {
        let Some(done) = schema.and_then(|s| shell::complete(s, &self.shell, COMPLETIONS_SHOWN))
        else {
            return;
        };
        if let Some(text) = done.candidates.iter().find(|c| c.trim_end() == label) {
            self.shell.replace_range(done.replace, text);
            let end = self.shell.encode_utf16().count();
            self.focus_on(Field::Shell, Some(end));
        }
    }

    /// What Send does now: the request, or why not. Refused for an empty placeholder, the
    /// caret is asked into the first one.
    pub fn send(&mut self, schema: Option<&Schema>, anyway: bool) -> Result<Request, String> {
        let check = self.check(schema);
        let refused = check.request(anyway);
        if let (Err(_), Check::Request { placeholders, .. }) = (&refused, &check) {
            if let Some(first) = placeholders.first() {
                let field = match self.mode {
                    Mode::Shell => Field::Shell,
                    _ => Field::Args,
                };
                self.focus_on(field, Some(first.caret));
            }
        }
        refused
    }

    /// Asks the page to put the keyboard focus on `field` (and the caret at `caret`).
    pub fn focus_on(&mut self, field: Field, caret: Option<usize>) {
        let seq = self.focus.map_or(1, |f| f.seq.wrapping_add(1));
        self.focus = Some(FocusRequest { field, caret, seq });
    }

    /// The name field changed: naming a known command with no arguments typed yet fills
    /// its template.
    /// The name field changed. Naming another known command replaces the arguments with its
    /// template when they are untouched (empty, as the form wrote them, or the old
    /// command's template reformatted); arguments the user edited stay, and
    /// [`Form::kept_from`] says for which command they were written.
    pub fn rename(&mut self, name: String, schema: Option<&Schema>) {
        self.name = name;
        let new = self.name.trim().to_owned();
        let Some(s) = schema.filter(|s| s.command(&new).is_some()) else {
            return;
        };
        if self.args_for.as_deref() == Some(new.as_str()) {
            self.kept_from = None;
        } else if self.untouched(s) {
            let typed = std::mem::take(&mut self.name);
            self.choose(&new, schema);
            self.name = typed;
        } else if self.args_for.is_some() {
            if self.kept_from.is_none() {
                self.kept_from = self.args_for.clone();
            }
        } else {
            // arguments typed before any command was named: they are this one's
            self.args_for = Some(new);
        }
    }

    /// Whether the arguments are as the form left them, or the template of the command
    /// they were written for (perhaps reformatted), or empty.
    fn untouched(&self, schema: &Schema) -> bool {
        if self.args.trim().is_empty() || self.args == self.args_filled {
            return true;
        }
        let template = self
            .args_for
            .as_deref()
            .and_then(|c| schema.template(c).ok());
        template.is_some_and(|t| parse_args(&self.args) == Ok(Some(t)))
    }

    /// The user edited the arguments: they are now the named command's, as they are.
    fn edit_args(&mut self, args: String, schema: Option<&Schema>) {
        self.args = args;
        self.kept_from = None;
        let name = self.name.trim();
        if schema.is_some_and(|s| s.command(name).is_some()) {
            self.args_for = Some(name.to_owned());
        }
    }

    /// Pretty-prints (`pretty`) or minifies the JSON being edited: the raw text in Raw
    /// mode, else the arguments. Text that is not JSON is left as it is.
    pub fn reformat(&mut self, pretty: bool) -> Result<(), SyntaxError> {
        let text = if self.mode == Mode::Raw {
            &mut self.raw
        } else {
            &mut self.args
        };
        *text = if pretty { format(text)? } else { minify(text)? };
        Ok(())
    }

    /// Up to `limit` completions, as shown: command names completing the name typed (JSON;
    /// none once it names a command exactly), or what may end the line (Shell: a command
    /// name, a key, a value). None in the other modes or without a schema.
    pub fn completions(&self, schema: Option<&Schema>, limit: usize) -> Vec<String> {
        let Some(s) = schema else {
            return Vec::new();
        };
        match self.mode {
            Mode::Json => {
                let name = self.name.trim();
                if name.is_empty() || s.command(name).is_some() {
                    return Vec::new();
                }
                let mut fits = s.completions(name, limit);
                if fits.is_empty() {
                    // nothing begins or holds it: what it may be a mistyping of
                    fits = s.similar(name, limit);
                }
                fits.into_iter().map(str::to_owned).collect()
            }
            Mode::Shell if self.shell.trim().is_empty() => Vec::new(),
            Mode::Shell => {
                let exact = !self.shell.ends_with(char::is_whitespace)
                    && self.shell.split_whitespace().count() == 1
                    && s.command(self.shell.trim()).is_some();
                match shell::complete(s, &self.shell, limit) {
                    Some(c) if !exact => c
                        .candidates
                        .iter()
                        .map(|c| c.trim_end().to_owned())
                        .collect(),
                    _ => Vec::new(),
                }
            }
            Mode::Hmp | Mode::Raw => Vec::new(),
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
        self.filled(name);
    }

    /// The form itself wrote the arguments, for command `name`.
    fn filled(&mut self, name: &str) {
        self.args_for = Some(name.to_owned());
        self.args_filled = self.args.clone();
        self.kept_from = None;
    }

    /// Fills the form from a request (history recall, re-run from the transcript); a
    /// command stays in Shell mode as a line when it can be written as one.
    pub fn load(&mut self, request: &Request) {
        if let (Mode::Shell, Request::Command { name, args }) = (self.mode, request) {
            if let Some(line) = shell::format_line(name, args.as_ref()) {
                self.shell = line;
                return;
            }
        }
        match request {
            Request::Command { .. } => self.load_json(request),
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

    /// Fills the JSON form from a command.
    fn load_json(&mut self, request: &Request) {
        match request {
            Request::Command { name, args } => {
                self.mode = Mode::Json;
                self.name = name.clone();
                self.args = args
                    .as_ref()
                    .map(|a| serde_json::to_string_pretty(a).unwrap_or_default())
                    .unwrap_or_default();
                self.filled(name);
            }
            Request::Hmp(_) | Request::Raw(_) => {}
        }
    }

    /// Empties the current mode's fields (Esc).
    pub fn clear(&mut self) {
        match self.mode {
            Mode::Json => {
                self.name.clear();
                self.args.clear();
                self.args_for = None;
                self.args_filled.clear();
                self.kept_from = None;
            }
            Mode::Shell => self.shell.clear(),
            Mode::Hmp => self.hmp.clear(),
            Mode::Raw => self.raw.clear(),
        }
        self.history.pos = None;
    }

    /// Walks the history: `older` (up) or newer (down); loads what it finds.
    /// Each mode walks its own kind of request: commands (JSON and Shell), HMP lines, raw
    /// texts; so the field keeps the focus.
    pub fn recall(&mut self, older: bool) -> bool {
        let mode = self.mode;
        let mine = move |r: &Request| match r {
            Request::Command { .. } => matches!(mode, Mode::Json | Mode::Shell),
            Request::Hmp(_) => mode == Mode::Hmp,
            Request::Raw(_) => mode == Mode::Raw,
        };
        let found = if older {
            self.history.older(mine)
        } else {
            self.history.newer(mine)
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

    /// The next older item that is `mine`, from where the walk is.
    fn older(&mut self, mine: impl Fn(&Request) -> bool) -> Option<Request> {
        let end = self.pos.unwrap_or(self.items.len());
        let pos = self.items[..end].iter().rposition(mine)?;
        self.pos = Some(pos);
        self.items.get(pos).cloned()
    }

    /// The next newer item that is `mine`, from where the walk is.
    fn newer(&mut self, mine: impl Fn(&Request) -> bool) -> Option<Request> {
        let start = self.pos? + 1;
        let pos = start + self.items.get(start..)?.iter().position(mine)?;
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
        let Check::Request {
            request, problems, ..
        } = form.check(Some(&s))
        else {
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
    fn format_and_minify_edit_the_text_of_the_mode() {
        let mut form = Form {
            args: "{\"a\":[1]}".into(),
            raw: "{\"execute\" : \"stop\"}".into(),
            ..Form::default()
        };
        assert_eq!(form.update(FormMsg::Format, None), Ok(None));
        assert_eq!(form.args, "{\n  \"a\": [\n    1\n  ]\n}");
        assert_eq!(form.raw, "{\"execute\" : \"stop\"}", "not the raw text");
        form.update(FormMsg::Minify, None).unwrap();
        assert_eq!(form.args, "{\"a\":[1]}");
        form.update(FormMsg::Mode(Mode::Raw), None).unwrap();
        form.update(FormMsg::Minify, None).unwrap();
        assert_eq!(form.raw, "{\"execute\":\"stop\"}");
        assert_eq!(form.args, "{\"a\":[1]}", "not the arguments");
        // text that is not JSON stays, and the reason is given
        form.update(FormMsg::Raw("{\"id\" 1}".into()), None)
            .unwrap();
        assert_eq!(
            form.update(FormMsg::Format, None),
            Err("cannot format: line 1, column 7: expected `:`".into())
        );
        assert_eq!(form.raw, "{\"id\" 1}");
        // empty stays empty
        form.update(FormMsg::Mode(Mode::Json), None).unwrap();
        form.update(FormMsg::Args("  ".into()), None).unwrap();
        form.update(FormMsg::Format, None).unwrap();
        assert_eq!(form.args, "");
    }

    #[test]
    fn edits_update_the_form() {
        let s = schema();
        let mut form = Form::default();
        // naming a known command with nothing typed fills its template
        form.update(FormMsg::Name("device_del".into()), Some(&s))
            .unwrap();
        assert_eq!(
            (form.name.as_str(), form.args.as_str()),
            ("device_del", "{\n  \"id\": \"\"\n}")
        );
        // arguments already typed are kept, and the form says so
        form.update(FormMsg::Args("{\"id\": \"n0\"}".into()), Some(&s))
            .unwrap();
        form.update(FormMsg::Name("device_add".into()), Some(&s))
            .unwrap();
        assert_eq!(form.args, "{\"id\": \"n0\"}");
        assert_eq!(form.kept_from.as_deref(), Some("device_del"));
        // an unknown name is just text
        form.update(FormMsg::Clear, Some(&s)).unwrap();
        form.update(FormMsg::Name("query-st".into()), Some(&s))
            .unwrap();
        assert_eq!((form.name.as_str(), form.args.as_str()), ("query-st", ""));
        assert_eq!(
            form.completions(Some(&s), 8),
            ["query-stats", "query-stats-schemas", "query-status"]
        );
        assert!(form.completions(None, 8).is_empty());
        form.update(FormMsg::Choose("query-status".into()), Some(&s))
            .unwrap();
        assert_eq!(form.name, "query-status");
        form.update(FormMsg::Hmp("info status".into()), Some(&s))
            .unwrap();
        form.update(FormMsg::Mode(Mode::Hmp), Some(&s)).unwrap();
        assert!(form.completions(Some(&s), 8).is_empty(), "JSON mode only");
        assert_eq!(
            form.check(Some(&s)),
            Check::Request {
                request: Request::Hmp("info status".into()),
                problems: vec![],
                placeholders: vec![]
            }
        );
        let before = form.clone();
        assert_eq!(
            form.update(FormMsg::Send(false), Some(&s)),
            Ok(Some(Request::Hmp("info status".into()))),
            "the owner sends it"
        );
        assert_eq!(form, before);
        assert!(FormMsg::Send(false).keeps_refusal() && FormMsg::Minify.keeps_refusal());
        assert!(!FormMsg::Args(String::new()).keeps_refusal());
    }

    #[test]
    fn send_says_why_nothing_went() {
        let s = schema();
        let mut form = Form::default();
        assert_eq!(
            form.check(Some(&s)).request(true),
            Err("not sent: nothing to send".into())
        );
        form.name = "device_del".into();
        form.args = "{".into();
        assert!(form
            .check(Some(&s))
            .request(true)
            .is_err_and(|e| e.starts_with("not sent: the arguments are not JSON (line 1")));
        form.args = "{\"idd\": 1}".into();
        let check = form.check(Some(&s));
        assert_eq!(
            check.request(false),
            Err("not sent: 2 schema problems (fix, or Send anyway)".into())
        );
        assert_eq!(
            check.request(true),
            Ok(Request::Command {
                name: "device_del".into(),
                args: Some(json!({"idd": 1}))
            })
        );
        form.args = "{}".into();
        assert_eq!(
            form.check(Some(&s)).request(false),
            Err("not sent: 1 schema problem (fix, or Send anyway)".into())
        );
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
        // JSON mode walks the commands, HMP mode the HMP lines: the mode stays
        assert!(form.recall(true));
        assert_eq!((form.mode, form.name.as_str()), (Mode::Json, "device_del"));
        assert!(form.args.contains("\"x\""));
        assert!(form.recall(true));
        assert_eq!(
            (form.mode, form.name.as_str()),
            (Mode::Json, "query-status")
        );
        assert!(!form.recall(true), "the oldest is the end");
        assert!(form.recall(false));
        assert_eq!(form.name, "device_del");
        assert!(!form.recall(false), "the newest is the end");
        form.update(FormMsg::Mode(Mode::Hmp), None).unwrap();
        assert!(form.recall(true));
        assert_eq!(
            (form.mode, form.hmp.as_str()),
            (Mode::Hmp, "info registers")
        );
        assert!(!form.recall(true), "one HMP line");
        form.update(FormMsg::Mode(Mode::Raw), None).unwrap();
        assert!(!form.recall(true), "no raw text sent");
        assert_eq!(form.mode, Mode::Raw);
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

    #[test]
    fn placeholders_are_the_empty_string_values() {
        let found = placeholders(
            "{\"id\": \"\", \"\": 1, \"a b\": [\"x\", \"\"], \"o\": {\"k\": \"\\\"\", \"e\": \"\"}, \"n\": -1.5e3, \"t\": true}",
        );
        let paths: Vec<&str> = found.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["$.id", "$[\"a b\"][1]", "$.o.e"]);
        assert_eq!(found[0].caret, 8, "between the quotes");
        // the caret counts UTF-16 units, as a text area does
        let text = "{\"é😀\": \"\"}";
        assert_eq!(placeholders(text)[0].caret, 9);
        assert_eq!(placeholders("{\"k\\u0041\": \"\"}")[0].path, "$.kA");
        assert!(placeholders("").is_empty());
        assert!(placeholders("[\"\"").len() == 1, "what came before a fault");
    }

    #[test]
    fn an_empty_placeholder_stops_the_send_and_asks_for_the_caret() {
        let s = schema();
        let mut form = Form::default();
        form.update(FormMsg::Choose("device_del".into()), Some(&s))
            .unwrap();
        assert_eq!(form.focus, None);
        let refused = form.update(FormMsg::Send(false), Some(&s));
        assert_eq!(
            refused,
            Err("not sent: placeholder $.id is empty (fill in, or Send anyway)".into())
        );
        // "{\n  \"id\": \"\"\n}": the caret between the quotes of ""
        let caret = form.args.find("\"\"").unwrap() + 1;
        assert_eq!(
            form.focus,
            Some(FocusRequest {
                field: Field::Args,
                caret: Some(caret),
                seq: 1
            })
        );
        // again: a new request, so the page moves the caret again
        form.update(FormMsg::Send(false), Some(&s)).unwrap_err();
        assert_eq!(form.focus.unwrap().seq, 2);
        // Send anyway sends it as it is
        assert_eq!(
            form.update(FormMsg::Send(true), Some(&s)),
            Ok(Some(Request::Command {
                name: "device_del".into(),
                args: Some(json!({"id": ""}))
            }))
        );
        // filled in, it goes
        form.update(FormMsg::Args("{\"id\": \"nic1\"}".into()), Some(&s))
            .unwrap();
        assert!(form.update(FormMsg::Send(false), Some(&s)).is_ok());
        // an enum left empty is one placeholder, not also a value outside the enum
        form.update(FormMsg::Choose("blockdev-add".into()), Some(&s))
            .unwrap();
        let Check::Request {
            problems,
            placeholders,
            ..
        } = form.check(Some(&s))
        else {
            panic!()
        };
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(placeholders[0].path, "$.driver");
        // two empty ones are named together
        form.update(
            FormMsg::Args("{\"id\": \"\", \"x\": [\"\"]}".into()),
            Some(&s),
        )
        .unwrap();
        assert_eq!(
            form.check(Some(&s)).request(false),
            Err("not sent: placeholders $.id, $.x[0] are empty (fill in, or Send anyway)".into())
        );
    }

    #[test]
    fn a_new_command_name_replaces_untouched_arguments_and_keeps_edited_ones() {
        let s = schema();
        let mut form = Form::default();
        let name =
            |form: &mut Form, n: &str| form.update(FormMsg::Name(n.into()), Some(&s)).unwrap();
        // typed a letter at a time: each known command on the way fills its template
        for n in ["d", "device_d", "device_del"] {
            name(&mut form, n);
        }
        assert_eq!(form.args, "{\n  \"id\": \"\"\n}");
        for n in ["device_de", "device_", "device_a", "device_add"] {
            name(&mut form, n);
        }
        assert_eq!(
            form.args, "{\n  \"driver\": \"\"\n}",
            "the template replaced"
        );
        assert_eq!(form.kept_from, None);
        // a command without arguments empties them
        name(&mut form, "query-status");
        assert_eq!(form.args, "");
        // a template reformatted is still a template
        name(&mut form, "device_del");
        form.update(FormMsg::Minify, Some(&s)).unwrap();
        assert_eq!(form.args, "{\"id\":\"\"}");
        name(&mut form, "device_add");
        assert_eq!(form.args, "{\n  \"driver\": \"\"\n}");
        // edited arguments stay, with the command they were written for
        form.update(
            FormMsg::Args("{\"driver\": \"virtio-net-pci\"}".into()),
            Some(&s),
        )
        .unwrap();
        name(&mut form, "device_del");
        assert_eq!(form.args, "{\"driver\": \"virtio-net-pci\"}");
        assert_eq!(form.kept_from.as_deref(), Some("device_add"));
        name(&mut form, "query-status");
        assert_eq!(
            form.kept_from.as_deref(),
            Some("device_add"),
            "still written for device_add"
        );
        // back to their command: nothing to say
        name(&mut form, "device_add");
        assert_eq!(form.kept_from, None);
        // edited under another name, they become that command's
        name(&mut form, "device_del");
        form.update(FormMsg::Args("{\"id\": \"nic1\"}".into()), Some(&s))
            .unwrap();
        assert_eq!(
            (form.kept_from.as_deref(), form.args_for.as_deref()),
            (None, Some("device_del"))
        );
        // taking the new command's template replaces them
        name(&mut form, "query-status");
        assert!(form.kept_from.is_some());
        form.update(FormMsg::Choose("query-status".into()), Some(&s))
            .unwrap();
        assert_eq!((form.args.as_str(), form.kept_from.as_ref()), ("", None));
        // a recalled request counts as untouched
        form.load(&Request::Command {
            name: "device_del".into(),
            args: Some(json!({"id": "nic1"})),
        });
        name(&mut form, "device_add");
        assert_eq!(form.args, "{\n  \"driver\": \"\"\n}");
        // arguments typed before any command was named are that command's
        form.update(FormMsg::Clear, Some(&s)).unwrap();
        form.update(FormMsg::Args("{\"id\": \"x\"}".into()), Some(&s))
            .unwrap();
        name(&mut form, "device_del");
        assert_eq!(form.args, "{\"id\": \"x\"}");
        assert_eq!(
            (form.kept_from.as_ref(), form.args_for.as_deref()),
            (None, Some("device_del"))
        );
    }

    #[test]
    fn a_qmp_shell_line_makes_the_same_request_as_the_json_form() {
        let s = schema();
        let json = Form {
            name: "blockdev-add".into(),
            args: r#"{"driver": "raw", "node-name": "r0", "file": {"driver": "null-co", "size": 1048576}}"#.into(),
            ..Form::default()
        };
        let line = Form {
            mode: Mode::Shell,
            shell: "blockdev-add driver=raw node-name=r0 file.driver=null-co file.size=1048576"
                .into(),
            ..Form::default()
        };
        assert_eq!(line.command_name(), "blockdev-add");
        let (
            Check::Request {
                request: a,
                problems: pa,
                ..
            },
            Check::Request {
                request: b,
                problems: pb,
                ..
            },
        ) = (json.check(Some(&s)), line.check(Some(&s)))
        else {
            panic!()
        };
        assert_eq!(a, b);
        assert!(pa.is_empty() && pb.is_empty(), "{pa:?} {pb:?}");
        // no arguments: none sent, as from the JSON form
        let mut line = Form {
            mode: Mode::Shell,
            shell: " query-status ".into(),
            ..Form::default()
        };
        assert_eq!(
            line.update(FormMsg::Send(false), Some(&s)),
            Ok(Some(Request::command("query-status")))
        );
        // the schema's problems, as for JSON
        line.update(FormMsg::Shell("device_del idd=x".into()), Some(&s))
            .unwrap();
        assert!(
            matches!(line.check(Some(&s)), Check::Request { problems, .. } if problems == ["$.id: required member missing", "$.idd: unknown member"])
        );
        // a line that is not the syntax says where
        line.update(FormMsg::Shell("device_del é id".into()), Some(&s))
            .unwrap();
        assert_eq!(
            line.check(Some(&s)),
            Check::Shell("column 12: expected key=value, got \"é\"".into())
        );
        assert_eq!(
            line.check(Some(&s)).request(true),
            Err("not sent: not a qmp-shell line (column 12: expected key=value, got \"é\")".into())
        );
    }

    #[test]
    fn an_empty_value_in_a_line_is_a_placeholder() {
        let s = schema();
        let mut form = Form {
            mode: Mode::Shell,
            shell: "device_del id=".into(),
            ..Form::default()
        };
        assert_eq!(
            form.update(FormMsg::Enter, Some(&s)),
            Err("not sent: placeholder $.id is empty (fill in, or Send anyway)".into())
        );
        assert_eq!(
            form.focus.map(|f| (f.field, f.caret)),
            Some((Field::Shell, Some(14)))
        );
        form.update(
            FormMsg::Shell("blockdev-add driver=raw file.driver=\"\"".into()),
            Some(&s),
        )
        .unwrap();
        let Check::Request { placeholders, .. } = form.check(Some(&s)) else {
            panic!()
        };
        assert_eq!(
            placeholders,
            [Placeholder {
                path: "$.file.driver".into(),
                caret: 37
            }]
        );
    }

    #[test]
    fn enter_on_a_name_sends_takes_the_only_fit_or_shows_several() {
        let s = schema();
        let mut form = Form::default();
        form.update(FormMsg::Name("query-st".into()), Some(&s))
            .unwrap();
        assert_eq!(
            form.update(FormMsg::Enter, Some(&s)),
            Err("not sent: query-st is not a command; it begins query-stats, query-stats-schemas, query-status (Tab takes the first)".into())
        );
        assert_eq!(form.name, "query-st", "nothing picked");
        // an exact name wins over the longer ones: it sends
        form.update(FormMsg::Name("query-stats".into()), Some(&s))
            .unwrap();
        assert!(form.completions(Some(&s), 8).is_empty(), "nothing to pick");
        assert_eq!(
            form.update(FormMsg::Enter, Some(&s)),
            Err("not sent: placeholder $.target is empty (fill in, or Send anyway)".into()),
            "its enum left empty to choose"
        );
        // the only fit is taken (and its template filled), not sent
        form.update(FormMsg::Name("device_d".into()), Some(&s))
            .unwrap();
        assert_eq!(form.update(FormMsg::Enter, Some(&s)), Ok(None));
        assert_eq!(
            (form.name.as_str(), form.args.as_str()),
            ("device_del", "{\n  \"id\": \"\"\n}")
        );
        // the same in a line
        let mut line = Form {
            mode: Mode::Shell,
            shell: "device_d".into(),
            ..Form::default()
        };
        assert_eq!(line.update(FormMsg::Enter, Some(&s)), Ok(None));
        assert_eq!(line.shell, "device_del ");
        line.update(FormMsg::Shell("query-st".into()), Some(&s))
            .unwrap();
        assert!(line.update(FormMsg::Enter, Some(&s)).is_err());
        line.update(FormMsg::Shell("query-status".into()), Some(&s))
            .unwrap();
        assert_eq!(
            line.update(FormMsg::Enter, Some(&s)),
            Ok(Some(Request::command("query-status")))
        );
        // no schema: Enter sends what is typed
        let mut bare = Form {
            name: "query-st".into(),
            ..Form::default()
        };
        assert_eq!(
            bare.update(FormMsg::Enter, None),
            Ok(Some(Request::command("query-st")))
        );
    }

    #[test]
    fn a_line_completes_word_by_word() {
        let s = schema();
        let mut form = Form {
            mode: Mode::Shell,
            ..Form::default()
        };
        let take = |form: &mut Form, typed: &str, label: &str| {
            form.update(FormMsg::Shell(typed.into()), Some(&s)).unwrap();
            let offered = form.completions(Some(&s), 8);
            assert!(offered.iter().any(|c| c == label), "{typed:?}: {offered:?}");
            form.update(FormMsg::Choose(label.into()), Some(&s))
                .unwrap();
            form.shell.clone()
        };
        assert_eq!(take(&mut form, "device_a", "device_add"), "device_add ");
        assert_eq!(
            take(&mut form, "device_add ", "driver="),
            "device_add driver="
        );
        assert_eq!(
            take(&mut form, "blockdev-add driver=q", "driver=qcow2"),
            "blockdev-add driver=qcow2 "
        );
        assert_eq!(
            form.focus.map(|f| (f.field, f.caret)),
            Some((Field::Shell, Some(26))),
            "the caret at the end"
        );
        // an exact name alone offers nothing to pick
        form.update(FormMsg::Shell("query-stats".into()), Some(&s))
            .unwrap();
        assert!(form.completions(Some(&s), 8).is_empty());
    }

    #[test]
    fn json_and_shell_modes_carry_the_command_across() {
        let s = schema();
        let mut form = Form::default();
        form.update(FormMsg::Choose("device_del".into()), Some(&s))
            .unwrap();
        form.update(FormMsg::Args("{\"id\": \"nic1\"}".into()), Some(&s))
            .unwrap();
        form.update(FormMsg::Mode(Mode::Shell), Some(&s)).unwrap();
        assert_eq!(form.shell, "device_del id=nic1");
        form.update(
            FormMsg::Shell("device_add driver=e1000 id=n2".into()),
            Some(&s),
        )
        .unwrap();
        form.update(FormMsg::Mode(Mode::Json), Some(&s)).unwrap();
        assert_eq!(form.name, "device_add");
        assert_eq!(
            form.args,
            "{\n  \"driver\": \"e1000\",\n  \"id\": \"n2\"\n}"
        );
        // a line that does not read leaves the JSON form as it was
        form.update(FormMsg::Mode(Mode::Shell), Some(&s)).unwrap();
        form.update(FormMsg::Shell("device_add oops".into()), Some(&s))
            .unwrap();
        form.update(FormMsg::Mode(Mode::Json), Some(&s)).unwrap();
        assert_eq!(form.name, "device_add");
        // recalled in Shell mode, a command is a line
        form.update(FormMsg::Mode(Mode::Shell), Some(&s)).unwrap();
        form.history.push(Request::Command {
            name: "device_del".into(),
            args: Some(json!({"id": "x"})),
        });
        form.update(FormMsg::Recall(true), Some(&s)).unwrap();
        assert_eq!(
            (form.mode, form.shell.as_str()),
            (Mode::Shell, "device_del id=x")
        );
        form.update(FormMsg::Clear, Some(&s)).unwrap();
        assert_eq!(form.shell, "");
    }

    #[test]
    fn a_mistyped_name_asks_did_you_mean() {
        let s = schema();
        let mut form = Form::default();
        form.update(FormMsg::Name("devcie_del".into()), Some(&s))
            .unwrap();
        assert_eq!(form.completions(Some(&s), 8), ["device_del"]);
        assert_eq!(
            form.update(FormMsg::Enter, Some(&s)),
            Err("not sent: no command devcie_del; did you mean device_del? (Tab takes it)".into())
        );
        assert!(matches!(
            form.check(Some(&s)),
            Check::Request { problems, .. } if problems == ["no command \"devcie_del\" in the schema; did you mean device_del?"]
        ));
        // in a line, the problem says it too
        let line = Form {
            mode: Mode::Shell,
            shell: "query-stauts".into(),
            ..Form::default()
        };
        assert!(matches!(
            line.check(Some(&s)),
            Check::Request { problems, .. } if problems[0].ends_with("did you mean query-stats or query-status?")
        ));
    }

    #[test]
    fn the_device_being_added_is_named_while_it_is_written() {
        let mut form = Form {
            name: "device_add".into(),
            args: "{\"driver\": \"e1000\", \"id\": \"n\"}".into(),
            ..Form::default()
        };
        assert_eq!(form.device_driver().as_deref(), Some("e1000"));
        form.args = "{\"driver\": \"e1000\", ".into();
        assert_eq!(form.device_driver(), None, "not JSON yet");
        form.mode = Mode::Shell;
        form.shell = "device_add driver=virtio-net-pci net".into();
        assert_eq!(form.device_driver().as_deref(), Some("virtio-net-pci"));
        form.shell = "device_del id=x".into();
        assert_eq!(form.device_driver(), None);
    }
}

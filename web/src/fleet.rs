//! The VM list of a bridge that serves many VMs: what `/api/vms` says, as plain Rust, and
//! the one-shot QMP exchange behind each row's quick actions.
//!
//! A quick action goes through the VM's own websocket, exactly as a console would (greeting,
//! `qmp_capabilities`, the command), so the bridge's token, policy and audit log apply.

use qmp::Message;
use serde_json::{json, Value};

use crate::state::Input;

/// One VM as the list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct VmRow {
    pub name: String,
    pub target: String,
    /// `up`, `connecting`, `busy`, `gone` or `error`.
    pub state: String,
    pub version: Option<String>,
    pub run_state: Option<String>,
    pub clients: i64,
    pub last_error: Option<String>,
}

/// The whole `/api/vms` answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Listing {
    /// `single`, `fleet` or `relay`.
    pub mode: String,
    pub vms: Vec<VmRow>,
    /// Entries of the bridge's `--qmp-dir` that are not VMs, and why.
    pub problems: Vec<(String, String)>,
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Reads `/api/vms`.
pub fn parse_listing(body: &str) -> Result<Listing, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not a VM list: {e}"))?;
    let vms = v["vms"]
        .as_array()
        .ok_or("not a VM list: no vms")?
        .iter()
        .map(|vm| VmRow {
            name: text(vm, "name").unwrap_or_default(),
            target: text(vm, "target").unwrap_or_default(),
            state: text(vm, "state").unwrap_or_else(|| "unknown".into()),
            version: text(vm, "version"),
            run_state: text(vm, "run_state"),
            clients: vm["clients"].as_i64().unwrap_or(0),
            last_error: text(vm, "last_error"),
        })
        .collect();
    let problems = v["problems"]
        .as_array()
        .map(|p| {
            p.iter()
                .map(|p| {
                    (
                        text(p, "name").unwrap_or_default(),
                        text(p, "reason").unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Listing {
        mode: text(&v, "mode").unwrap_or_default(),
        vms,
        problems,
    })
}

const CAPS_ID: &str = "qmp-console-list-caps";
const COMMAND_ID: &str = "qmp-console-list-action";

/// What one step of a [`OneShot`] produced.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Step {
    pub send: Vec<String>,
    /// Set once: `Ok(())` when QEMU accepted the command, else why not.
    pub done: Option<Result<(), String>>,
}

/// Greeting, negotiation, one command, its reply.
#[derive(Debug, Clone)]
pub struct OneShot {
    command: &'static str,
    finished: bool,
}

impl OneShot {
    pub fn new(command: &'static str) -> OneShot {
        OneShot {
            command,
            finished: false,
        }
    }

    /// Feeds one socket input.
    pub fn step(&mut self, input: Input) -> Step {
        let mut step = Step::default();
        match input {
            Input::Opened => {}
            Input::Received(text, _) => self.message(&text, &mut step),
            Input::Batch(items) => {
                for (text, _) in items {
                    self.message(&text, &mut step);
                }
            }
            Input::Closed { reason, .. } => {
                if !self.finished {
                    self.finished = true;
                    step.done = Some(Err(reason));
                }
            }
        }
        step
    }

    fn message(&mut self, text: &str, step: &mut Step) {
        if self.finished {
            return;
        }
        let finish = |me: &mut OneShot, step: &mut Step, r: Result<(), String>| {
            me.finished = true;
            step.done = Some(r);
        };
        match Message::parse(text) {
            Ok(Message::Greeting(_)) => {
                step.send
                    .push(qmp::message::qmp_capabilities(&[], Some(json!(CAPS_ID))));
            }
            Ok(Message::Return { id: Some(id), .. }) if id == CAPS_ID => {
                step.send.push(qmp::message::command(
                    self.command,
                    None,
                    Some(json!(COMMAND_ID)),
                ));
            }
            Ok(Message::Return { id: Some(id), .. }) if id == COMMAND_ID => {
                finish(self, step, Ok(()))
            }
            Ok(Message::Error {
                id: Some(id),
                error,
            }) if id == CAPS_ID || id == COMMAND_ID => {
                finish(self, step, Err(format!("{}: {}", error.class, error.desc)))
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}"#;

    #[test]
    fn parses_the_bridge_listing() {
        let body = r#"{"mode": "fleet", "vms": [
            {"name": "a", "target": "unix:/r/a.sock", "state": "up", "version": "7.2.22",
             "run_state": "running", "clients": 2, "last_error": null},
            {"name": "b", "target": "unix:/r/b.sock", "state": "gone", "version": null,
             "run_state": null, "clients": 0, "last_error": "cannot reach QMP"}],
            "problems": [{"name": "notes.txt", "reason": "not a socket"}]}"#;
        let l = parse_listing(body).unwrap();
        assert_eq!(l.mode, "fleet");
        assert_eq!(l.vms.len(), 2);
        assert_eq!(l.vms[0].run_state.as_deref(), Some("running"));
        assert_eq!(l.vms[0].clients, 2);
        assert_eq!(l.vms[1].state, "gone");
        assert_eq!(l.vms[1].last_error.as_deref(), Some("cannot reach QMP"));
        assert_eq!(
            l.problems,
            vec![("notes.txt".into(), "not a socket".into())]
        );
        assert!(parse_listing("<html>").is_err());
        assert!(parse_listing("{}").is_err());
    }

    #[test]
    fn one_shot_negotiates_then_runs_its_command() {
        let mut s = OneShot::new("stop");
        assert_eq!(s.step(Input::Opened), Step::default());
        let st = s.step(Input::Received(GREETING.into(), 0.0));
        assert!(st.send[0].contains("qmp_capabilities"));
        let caps = format!(r#"{{"return": {{}}, "id": "{CAPS_ID}"}}"#);
        let st = s.step(Input::Received(caps, 0.0));
        let sent: Value = serde_json::from_str(&st.send[0]).unwrap();
        assert_eq!(sent["execute"], "stop");
        let event = r#"{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 0}}"#;
        let reply = format!(r#"{{"return": {{}}, "id": "{COMMAND_ID}"}}"#);
        let st = s.step(Input::Batch(vec![(event.into(), 0.0), (reply, 0.0)]));
        assert_eq!(st.done, Some(Ok(())));
        // a close after success changes nothing
        assert_eq!(
            s.step(Input::Closed {
                code: 1000,
                reason: "bye".into()
            })
            .done,
            None
        );
    }

    #[test]
    fn one_shot_reports_refusals_and_closes() {
        let mut s = OneShot::new("system_reset");
        s.step(Input::Received(GREETING.into(), 0.0));
        s.step(Input::Received(
            format!(r#"{{"return": {{}}, "id": "{CAPS_ID}"}}"#),
            0.0,
        ));
        let refused = format!(
            r#"{{"error": {{"class": "GenericError", "desc": "refused by qmp-bridge policy"}}, "id": "{COMMAND_ID}"}}"#
        );
        let st = s.step(Input::Received(refused, 0.0));
        assert_eq!(
            st.done,
            Some(Err("GenericError: refused by qmp-bridge policy".into()))
        );

        let mut s = OneShot::new("stop");
        let st = s.step(Input::Closed {
            code: 1013,
            reason: "QMP monitor busy".into(),
        });
        assert_eq!(st.done, Some(Err("QMP monitor busy".into())));
    }
}

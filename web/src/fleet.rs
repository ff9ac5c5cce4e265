//! The VM list of a bridge that serves many VMs: reading what `/api/vms` says (the
//! [`qmp::vm_list`] types the bridge writes it with), and the one-shot QMP exchange behind
//! each row's quick actions.
//!
//! A quick action goes through the VM's own websocket, exactly as a console would (greeting,
//! `qmp_capabilities` through `qmp`'s [`Handshake`], the command), so the bridge's token,
//! policy and audit log apply.

use qmp::client::{Handshake, Progress};
use qmp::Message;
use serde_json::json;

use crate::state::Input;

/// The whole `/api/vms` answer (`qmp`'s `VmList`; here `Listing`, since `VmList` is the
/// view that shows it, [`crate::components::vm_list::VmList`]).
pub use qmp::vm_list::VmList as Listing;

/// Reads `/api/vms`.
pub fn parse_listing(body: &str) -> Result<Listing, String> {
    serde_json::from_str(body).map_err(|e| format!("not a VM list: {e}"))
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

/// Where a [`OneShot`] is.
#[derive(Debug, Clone)]
enum Stage {
    Negotiating(Handshake),
    /// The command is sent; its reply is awaited.
    Running,
    Finished,
}

/// Greeting, negotiation, one command, its reply.
#[derive(Debug, Clone)]
pub struct OneShot {
    command: &'static str,
    stage: Stage,
}

impl OneShot {
    pub fn new(command: &'static str) -> OneShot {
        OneShot {
            command,
            stage: Stage::Negotiating(Handshake::new(CAPS_ID, &[])),
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
            Input::Closed { reason, .. } => self.finish(&mut step, Err(reason)),
        }
        step
    }

    fn finish(&mut self, step: &mut Step, result: Result<(), String>) {
        if !matches!(self.stage, Stage::Finished) {
            self.stage = Stage::Finished;
            step.done = Some(result);
        }
    }

    fn message(&mut self, text: &str, step: &mut Step) {
        match &mut self.stage {
            Stage::Negotiating(handshake) => match handshake.on_message(text) {
                Progress::Send(capabilities) => step.send.push(capabilities),
                Progress::Ready { .. } => {
                    let id = Some(json!(COMMAND_ID));
                    step.send
                        .push(qmp::message::command(self.command, None, id));
                    self.stage = Stage::Running;
                }
                Progress::Refused(error) => {
                    self.finish(step, Err(format!("{}: {}", error.class, error.desc)))
                }
                // events, and anything before the greeting: wait on
                Progress::Waiting | Progress::NotQmp(_) => {}
            },
            Stage::Running => match Message::parse(text) {
                Ok(Message::Return { id: Some(id), .. }) if id == COMMAND_ID => {
                    self.finish(step, Ok(()))
                }
                Ok(Message::Error {
                    id: Some(id),
                    error,
                }) if id == COMMAND_ID => {
                    self.finish(step, Err(format!("{}: {}", error.class, error.desc)))
                }
                _ => {}
            },
            Stage::Finished => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use qmp::vm_list::{ListMode, Problem, VmState};
    use serde_json::Value;

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
        assert_eq!(l.mode, ListMode::Fleet);
        assert_eq!(l.vms.len(), 2);
        assert_eq!(l.vms[0].run_state.as_deref(), Some("running"));
        assert_eq!(l.vms[0].clients, 2);
        assert_eq!(l.vms[1].state, VmState::Gone);
        assert_eq!(l.vms[1].last_error.as_deref(), Some("cannot reach QMP"));
        assert_eq!(
            l.problems,
            vec![Problem {
                name: "notes.txt".into(),
                reason: "not a socket".into()
            }]
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

        let mut s = OneShot::new("quit");
        let refused =
            format!(r#"{{"error": {{"class": "GenericError", "desc": "no"}}, "id": "{CAPS_ID}"}}"#);
        let st = s.step(Input::Batch(vec![
            ("not QMP".into(), 0.0),
            (GREETING.into(), 0.0),
            (refused, 0.0),
        ]));
        assert_eq!(st.send.len(), 1, "the command never goes");
        assert_eq!(st.done, Some(Err("GenericError: no".into())));

        let mut s = OneShot::new("stop");
        let st = s.step(Input::Closed {
            code: 1013,
            reason: "QMP monitor busy".into(),
        });
        assert_eq!(st.done, Some(Err("QMP monitor busy".into())));
    }
}

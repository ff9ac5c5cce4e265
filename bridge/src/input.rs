//! Typing and clicking into a VM's screen: key chords (`POST /vm/NAME/keys`), each sent
//! with one `send-key` (its keys go down in order and come up in reverse), and clicks
//! (`POST /vm/NAME/pointer`) where the VM has an absolute pointer (a USB tablet), each an
//! `input-send-event` moving it and pressing a button, then one releasing it; in order,
//! one request at a time per VM.
//!
//! Both are what a client does with the VM, so the whole policy applies (`send-key`,
//! `input-send-event` must be allowed; `--read-only` refuses them). The audit log gets one
//! entry per burst from one client (a burst ends after [`BURST_GAP`] without input, or
//! after [`BURST_MAX`]): how many chords or clicks, when it began, its outcome; never the
//! keys, which can be passwords, nor where the clicks went.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::json;
use tokio::time::Instant;

use crate::audit::{Entry, Outcome};
use crate::mux::Mux;
use crate::mux_caller::{CallError, MuxCaller};
use crate::session::Settings;

/// Most chords in one request.
pub const MAX_CHORDS: usize = 256;
/// The buttons a click may press (QEMU's `InputButton`s).
pub const BUTTONS: &[&str] = &["left", "middle", "right", "wheel-up", "wheel-down"];
/// An absolute pointer's largest coordinate (QEMU's `INPUT_EVENT_ABS_MAX`).
const ABS_MAX: f64 = 32767.0;
/// How long one request's keys may take to be accepted by QEMU.
pub const KEYS_TIMEOUT: Duration = Duration::from_secs(5);
/// A burst of typing ends after this long without keys.
pub const BURST_GAP: Duration = Duration::from_secs(2);
/// A burst is written to the audit log after this long even if typing goes on.
pub const BURST_MAX: Duration = Duration::from_secs(60);

/// Why input was not sent (or not all of it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("refused by qmp-bridge policy: {0}")]
    Refused(String),
    #[error("{0}")]
    Invalid(String),
    /// A click for a VM without an absolute pointer.
    #[error("this VM has no absolute pointer (a USB tablet: -device usb-tablet), so clicks cannot land where they are aimed")]
    NoPointer,
    #[error("QEMU did not take the input within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Unavailable(String),
    #[error("QEMU refused the input: {0}")]
    Qemu(String),
}

impl InputError {
    /// The HTTP status that says it.
    pub fn status(&self) -> u16 {
        match self {
            InputError::Refused(_) => 403,
            InputError::Invalid(_) => 400,
            InputError::NoPointer => 409,
            InputError::Timeout(_) => 504,
            InputError::Unavailable(_) => 503,
            InputError::Qemu(_) => 502,
        }
    }

    fn outcome(&self) -> Outcome {
        match self {
            InputError::Refused(why) => Outcome::Refused(why.clone()),
            InputError::Timeout(_) | InputError::Unavailable(_) => Outcome::Unanswered,
            InputError::Qemu(_) | InputError::Invalid(_) | InputError::NoPointer => {
                Outcome::Error("GenericError".into())
            }
        }
    }
}

/// A click: where (`x`, `y` from 0 to 1 across the screen, left to right and top to
/// bottom) and which button.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Click {
    pub x: f64,
    pub y: f64,
    #[serde(default = "left")]
    pub button: String,
}

fn left() -> String {
    "left".into()
}

impl Click {
    fn check(&self) -> Result<(), InputError> {
        let inside = |v: f64| (0.0..=1.0).contains(&v);
        if !inside(self.x) || !inside(self.y) {
            return Err(InputError::Invalid(format!(
                "a click at ({}, {}): x and y go from 0 to 1",
                self.x, self.y
            )));
        }
        if !BUTTONS.contains(&self.button.as_str()) {
            return Err(InputError::Invalid(format!(
                "button {:?}: one of {}",
                self.button,
                BUTTONS.join(", ")
            )));
        }
        Ok(())
    }

    /// The two `input-send-event`s: move and press, then release.
    fn events(&self) -> [serde_json::Value; 2] {
        let abs = |axis: &str, v: f64| serde_json::json!({"type": "abs", "data": {"axis": axis, "value": (v * ABS_MAX).round() as i64}});
        let btn = |down: bool| serde_json::json!({"type": "btn", "data": {"button": self.button, "down": down}});
        [
            serde_json::json!({ "events": [abs("x", self.x), abs("y", self.y), btn(true)] }),
            serde_json::json!({ "events": [btn(false)] }),
        ]
    }
}

/// A VM's keyboard and pointer, shared by every page typing or clicking into it.
#[derive(Debug)]
pub struct Input {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: Arc<Settings>,
    mux: Mux,
    caller: tokio::sync::Mutex<Option<MuxCaller>>,
    /// Each client's bursts of typing and of clicking (by client and command) not yet
    /// written to the audit log.
    bursts: Mutex<HashMap<(String, &'static str), Burst>>,
}

#[derive(Debug)]
struct Burst {
    started: SystemTime,
    began: Instant,
    last: Instant,
    keys: u64,
    /// The first failure, or ok.
    outcome: Outcome,
}

impl Input {
    pub fn new(settings: Arc<Settings>, mux: Mux) -> Input {
        Input {
            inner: Arc::new(Inner {
                settings,
                mux,
                caller: tokio::sync::Mutex::new(None),
                bursts: Mutex::default(),
            }),
        }
    }

    /// Types `chords` (QEMU key names) for `client`; returns how many were sent.
    pub async fn send(&self, client: &str, chords: &[Vec<String>]) -> Result<u64, InputError> {
        let commands = check(chords).map(|()| {
            chords
                .iter()
                .map(|chord| vec![qmp::keys::send_key_arguments(chord)])
                .collect()
        });
        self.run(client, "send-key", commands, false).await
    }

    /// Clicks for `client` where its VM has an absolute pointer; returns 1.
    pub async fn click(&self, client: &str, click: &Click) -> Result<u64, InputError> {
        let commands = click.check().map(|()| vec![click.events().to_vec()]);
        self.run(client, "input-send-event", commands, true).await
    }

    /// Runs `command` with each group of arguments in `units` (a unit is what is
    /// counted: a chord, a click), after the policy and, for clicks, the pointer check;
    /// audits the outcome in `client`'s burst.
    async fn run(
        &self,
        client: &str,
        command: &'static str,
        units: Result<Vec<Vec<serde_json::Value>>, InputError>,
        needs_pointer: bool,
    ) -> Result<u64, InputError> {
        let (sent, result) = match self.inner.settings.policy.refuses_for_client(command) {
            Some(why) => (0, Err(InputError::Refused(why))),
            None => match units {
                Ok(units) => self.inner.execute(command, &units, needs_pointer).await,
                Err(e) => (0, Err(e)),
            },
        };
        let outcome = match &result {
            Ok(()) => Outcome::Ok,
            Err(e) => e.outcome(),
        };
        self.inner.note(client, command, sent, outcome);
        result.map(|()| sent)
    }
}

/// Checks a request's chords: 1 to [`MAX_CHORDS`], each of QEMU key names.
fn check(chords: &[Vec<String>]) -> Result<(), InputError> {
    if chords.is_empty() || chords.len() > MAX_CHORDS {
        return Err(InputError::Invalid(format!(
            "{} chords: send 1 to {MAX_CHORDS}",
            chords.len()
        )));
    }
    for chord in chords {
        qmp::keys::check_chord(chord).map_err(InputError::Invalid)?;
    }
    Ok(())
}

/// Whether `query-mice`'s answer lists an absolute pointer.
fn has_absolute_pointer(mice: &serde_json::Value) -> bool {
    mice.as_array()
        .is_some_and(|m| m.iter().any(|mouse| mouse["absolute"] == true))
}

impl Inner {
    /// Runs `command` with the arguments of each unit, in order, within [`KEYS_TIMEOUT`]
    /// (checking first, for clicks, that the VM has an absolute pointer): how many units
    /// went through, and how it ended.
    async fn execute(
        &self,
        command: &str,
        units: &[Vec<serde_json::Value>],
        needs_pointer: bool,
    ) -> (u64, Result<(), InputError>) {
        let qemu = |e: CallError| match e {
            CallError::Qemu(e) => InputError::Qemu(format!("{}: {}", e.class, e.desc)),
            CallError::Unavailable(why) => InputError::Unavailable(why),
        };
        let mut sent = 0;
        let done = tokio::time::timeout(KEYS_TIMEOUT, async {
            let mut caller = self.caller.lock().await;
            if !caller.as_ref().is_some_and(MuxCaller::is_attached) {
                *caller = None;
                let attached = MuxCaller::attach(&self.mux, KEYS_TIMEOUT).await;
                *caller = Some(attached.map_err(|e| InputError::Unavailable(e.to_string()))?);
            }
            let Some(caller) = caller.as_mut() else {
                return Err(InputError::Unavailable("no connection".into()));
            };
            if needs_pointer {
                let mice = caller
                    .execute("query-mice", json!({}))
                    .await
                    .map_err(qemu)?;
                if !has_absolute_pointer(&mice) {
                    return Err(InputError::NoPointer);
                }
            }
            for unit in units {
                for args in unit {
                    caller.execute(command, args.clone()).await.map_err(qemu)?;
                }
                sent += 1;
            }
            Ok(())
        })
        .await;
        (sent, done.unwrap_or(Err(InputError::Timeout(KEYS_TIMEOUT))))
    }

    /// Adds a request's units to its client's burst of `command`; a new burst is written
    /// to the audit log once it ends.
    fn note(self: &Arc<Self>, client: &str, command: &'static str, keys: u64, outcome: Outcome) {
        if self.settings.audit.is_none() {
            return;
        }
        let Ok(mut bursts) = self.bursts.lock() else {
            return;
        };
        let now = Instant::now();
        let key = (client.to_owned(), command);
        match bursts.get_mut(&key) {
            Some(burst) => {
                burst.last = now;
                burst.keys += keys;
                if burst.outcome == Outcome::Ok {
                    burst.outcome = outcome;
                }
            }
            None => {
                bursts.insert(
                    key.clone(),
                    Burst {
                        started: SystemTime::now(),
                        began: now,
                        last: now,
                        keys,
                        outcome,
                    },
                );
                tokio::spawn(self.clone().write_when_over(key));
            }
        }
    }

    /// Waits for the burst of `(client, command)` to end, then writes it.
    async fn write_when_over(self: Arc<Self>, key: (String, &'static str)) {
        loop {
            let due = {
                let Ok(mut bursts) = self.bursts.lock() else {
                    return;
                };
                let Some(burst) = bursts.get(&key) else {
                    return;
                };
                let due = (burst.last + BURST_GAP).min(burst.began + BURST_MAX);
                if due <= Instant::now() {
                    let burst = bursts.remove(&key);
                    drop(bursts);
                    if let Some(burst) = burst {
                        self.write(&key, burst);
                    }
                    return;
                }
                due
            };
            tokio::time::sleep_until(due).await;
        }
    }

    fn write(&self, (client, command): &(String, &'static str), burst: Burst) {
        if let Some(log) = &self.settings.audit {
            let entry = Entry {
                vm: &self.settings.vm,
                client,
                command,
                id: None,
                outcome: burst.outcome,
            };
            let counted = if *command == "send-key" {
                "keys"
            } else {
                "clicks"
            };
            log.record_burst(entry, (counted, burst.keys), burst.started);
        }
    }
}

impl Drop for Inner {
    /// Bursts still open when the VM or the bridge goes are written now.
    fn drop(&mut self) {
        let bursts = match self.bursts.get_mut() {
            Ok(b) => std::mem::take(b),
            Err(_) => return,
        };
        for (key, burst) in bursts {
            self.write(&key, burst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chords_are_checked_before_anything_is_sent() {
        let chord = |keys: &[&str]| keys.iter().map(|k| k.to_string()).collect::<Vec<_>>();
        assert!(check(&[chord(&["ctrl", "alt", "delete"])]).is_ok());
        assert!(matches!(check(&[]), Err(InputError::Invalid(_))));
        assert!(matches!(
            check(&[chord(&["a"]), chord(&["rm -rf"])]),
            Err(InputError::Invalid(_))
        ));
        let many = vec![chord(&["a"]); MAX_CHORDS + 1];
        assert!(matches!(check(&many), Err(InputError::Invalid(_))));
    }

    #[test]
    fn clicks_are_checked_and_scaled_to_qemu_s_range() {
        let click = |x, y, button: &str| Click {
            x,
            y,
            button: button.into(),
        };
        assert!(click(0.0, 1.0, "left").check().is_ok());
        assert!(click(1.5, 0.5, "left").check().is_err());
        assert!(click(0.5, -0.1, "left").check().is_err());
        assert!(click(0.5, 0.5, "nose").check().is_err());
        let [press, release] = click(0.5, 0.25, "right").events();
        assert_eq!(press["events"][0]["data"]["value"], 16384);
        assert_eq!(press["events"][1]["data"]["value"], 8192);
        assert_eq!(press["events"][2]["data"]["down"], true);
        assert_eq!(release["events"][0]["data"]["button"], "right");
        assert_eq!(release["events"][0]["data"]["down"], false);
        assert!(has_absolute_pointer(
            &serde_json::json!([{"absolute": false}, {"absolute": true}])
        ));
        assert!(!has_absolute_pointer(
            &serde_json::json!([{"absolute": false}])
        ));
    }
}

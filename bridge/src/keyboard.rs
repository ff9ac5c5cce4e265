//! Typing into a VM's screen (`POST /vm/NAME/keys`): key chords, each sent with one
//! `send-key` (its keys go down in order and come up in reverse), in order, one request
//! at a time per VM.
//!
//! Typing is what a client does with the VM, so the whole policy applies (`send-key` must
//! be allowed; `--read-only` refuses it). The audit log gets one entry per burst of
//! typing from one client (a burst ends after [`BURST_GAP`] without keys, or after
//! [`BURST_MAX`]): how many chords, when it began, its outcome; never the keys, which can
//! be passwords.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::audit::{Entry, Outcome};
use crate::mux::Mux;
use crate::mux_caller::{CallError, MuxCaller};
use crate::session::Settings;

/// Most chords in one request.
pub const MAX_CHORDS: usize = 256;
/// How long one request's keys may take to be accepted by QEMU.
pub const KEYS_TIMEOUT: Duration = Duration::from_secs(5);
/// A burst of typing ends after this long without keys.
pub const BURST_GAP: Duration = Duration::from_secs(2);
/// A burst is written to the audit log after this long even if typing goes on.
pub const BURST_MAX: Duration = Duration::from_secs(60);

/// Why keys were not sent (or not all of them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("typing is refused by qmp-bridge policy: {0}")]
    Refused(String),
    #[error("{0}")]
    Invalid(String),
    #[error("QEMU did not take the keys within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Unavailable(String),
    #[error("send-key failed: {0}")]
    Qemu(String),
}

impl KeyError {
    /// The HTTP status that says it.
    pub fn status(&self) -> u16 {
        match self {
            KeyError::Refused(_) => 403,
            KeyError::Invalid(_) => 400,
            KeyError::Timeout(_) => 504,
            KeyError::Unavailable(_) => 503,
            KeyError::Qemu(_) => 502,
        }
    }

    fn outcome(&self) -> Outcome {
        match self {
            KeyError::Refused(why) => Outcome::Refused(why.clone()),
            KeyError::Timeout(_) | KeyError::Unavailable(_) => Outcome::Unanswered,
            KeyError::Qemu(_) | KeyError::Invalid(_) => Outcome::Error("GenericError".into()),
        }
    }
}

/// A VM's keyboard, shared by every page typing into it.
#[derive(Debug)]
pub struct Keyboard {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: Arc<Settings>,
    mux: Mux,
    caller: tokio::sync::Mutex<Option<MuxCaller>>,
    /// Each client's burst of typing not yet written to the audit log.
    bursts: Mutex<HashMap<String, Burst>>,
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

impl Keyboard {
    pub fn new(settings: Arc<Settings>, mux: Mux) -> Keyboard {
        Keyboard {
            inner: Arc::new(Inner {
                settings,
                mux,
                caller: tokio::sync::Mutex::new(None),
                bursts: Mutex::default(),
            }),
        }
    }

    /// Types `chords` (QEMU key names) for `client`; returns how many were sent.
    pub async fn send(&self, client: &str, chords: &[Vec<String>]) -> Result<u64, KeyError> {
        let (sent, result) = self.type_chords(chords).await;
        let outcome = match &result {
            Ok(()) => Outcome::Ok,
            Err(e) => e.outcome(),
        };
        self.inner.note(client, sent, outcome);
        result.map(|()| sent)
    }

    async fn type_chords(&self, chords: &[Vec<String>]) -> (u64, Result<(), KeyError>) {
        let inner = &self.inner;
        if let Some(why) = inner.settings.policy.refuses_for_client("send-key") {
            return (0, Err(KeyError::Refused(why)));
        }
        if let Err(e) = check(chords) {
            return (0, Err(e));
        }
        let deadline = Instant::now() + KEYS_TIMEOUT;
        let mut sent = 0;
        let typed = tokio::time::timeout_at(deadline, async {
            let mut caller = inner.caller.lock().await;
            if !caller.as_ref().is_some_and(MuxCaller::is_attached) {
                *caller = None;
                let attached = MuxCaller::attach(&inner.mux, KEYS_TIMEOUT).await;
                *caller = Some(attached.map_err(|e| KeyError::Unavailable(e.to_string()))?);
            }
            let Some(caller) = caller.as_mut() else {
                return Err(KeyError::Unavailable("no connection".into()));
            };
            for chord in chords {
                let args = qmp::keys::send_key_arguments(chord);
                match caller.execute("send-key", args).await {
                    Ok(_) => sent += 1,
                    Err(CallError::Qemu(e)) => {
                        return Err(KeyError::Qemu(format!("{}: {}", e.class, e.desc)))
                    }
                    Err(CallError::Unavailable(why)) => return Err(KeyError::Unavailable(why)),
                }
            }
            Ok(())
        })
        .await;
        let result = typed.unwrap_or(Err(KeyError::Timeout(KEYS_TIMEOUT)));
        (sent, result)
    }
}

/// Checks a request's chords: 1 to [`MAX_CHORDS`], each of QEMU key names.
fn check(chords: &[Vec<String>]) -> Result<(), KeyError> {
    if chords.is_empty() || chords.len() > MAX_CHORDS {
        return Err(KeyError::Invalid(format!(
            "{} chords: send 1 to {MAX_CHORDS}",
            chords.len()
        )));
    }
    for chord in chords {
        qmp::keys::check_chord(chord).map_err(KeyError::Invalid)?;
    }
    Ok(())
}

impl Inner {
    /// Adds a request's keys to its client's burst; a new burst is written to the audit
    /// log once it ends.
    fn note(self: &Arc<Self>, client: &str, keys: u64, outcome: Outcome) {
        if self.settings.audit.is_none() {
            return;
        }
        let Ok(mut bursts) = self.bursts.lock() else {
            return;
        };
        let now = Instant::now();
        match bursts.get_mut(client) {
            Some(burst) => {
                burst.last = now;
                burst.keys += keys;
                if burst.outcome == Outcome::Ok {
                    burst.outcome = outcome;
                }
            }
            None => {
                bursts.insert(
                    client.to_owned(),
                    Burst {
                        started: SystemTime::now(),
                        began: now,
                        last: now,
                        keys,
                        outcome,
                    },
                );
                tokio::spawn(self.clone().write_when_over(client.to_owned()));
            }
        }
    }

    /// Waits for `client`'s burst to end, then writes it.
    async fn write_when_over(self: Arc<Self>, client: String) {
        loop {
            let due = {
                let Ok(mut bursts) = self.bursts.lock() else {
                    return;
                };
                let Some(burst) = bursts.get(&client) else {
                    return;
                };
                let due = (burst.last + BURST_GAP).min(burst.began + BURST_MAX);
                if due <= Instant::now() {
                    let burst = bursts.remove(&client);
                    drop(bursts);
                    if let Some(burst) = burst {
                        self.write(&client, burst);
                    }
                    return;
                }
                due
            };
            tokio::time::sleep_until(due).await;
        }
    }

    fn write(&self, client: &str, burst: Burst) {
        if let Some(log) = &self.settings.audit {
            let entry = Entry {
                vm: &self.settings.vm,
                client,
                command: "send-key",
                id: None,
                outcome: burst.outcome,
            };
            log.record_burst(entry, burst.keys, burst.started);
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
        for (client, burst) in bursts {
            self.write(&client, burst);
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
        assert!(matches!(check(&[]), Err(KeyError::Invalid(_))));
        assert!(matches!(
            check(&[chord(&["a"]), chord(&["rm -rf"])]),
            Err(KeyError::Invalid(_))
        ));
        let many = vec![chord(&["a"]); MAX_CHORDS + 1];
        assert!(matches!(check(&many), Err(KeyError::Invalid(_))));
    }
}

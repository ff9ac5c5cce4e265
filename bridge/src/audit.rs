//! `--audit-log PATH`: one JSON line per command a client sent: time, VM, client address,
//! command, id, outcome (`ok`, QEMU's error class, or `refused` with the policy's reason).
//! Arguments are never written: they can hold secrets (`object-add` of a secret, say).
//!
//! [`Pending`] keeps each session's unanswered commands so a reply can be written with
//! the command it answers: by `id`, or in order for commands sent without one.

use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// The shared audit file.
#[derive(Debug)]
pub struct AuditLog {
    file: Mutex<std::fs::File>,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// QEMU's error class.
    Error(String),
    /// Refused by the bridge's policy, with the reason.
    Refused(String),
    /// The session ended before QEMU answered.
    Unanswered,
}

/// One audit record.
#[derive(Debug)]
pub struct Entry<'a> {
    /// The VM's name (empty for an unnamed single target).
    pub vm: &'a str,
    /// `ADDR:PORT` of a websocket client, `unix:PATH` for the shared socket.
    pub client: &'a str,
    pub command: &'a str,
    pub id: Option<&'a Value>,
    pub outcome: Outcome,
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for a time since the Unix epoch.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // civil-from-days (H. Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

impl AuditLog {
    /// Opens `path` for appending (created if missing).
    pub fn open(path: &Path) -> std::io::Result<AuditLog> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(AuditLog {
            file: Mutex::new(file),
        })
    }

    /// Appends one line.
    pub fn record(&self, entry: Entry<'_>) {
        self.write(&entry, None);
    }

    /// Appends one line for a burst of typing or clicking into the VM's screen: the
    /// command (`send-key`, `input-send-event`), how many chords or clicks went
    /// (`counted`: `("keys", n)`, `("clicks", n)`), when the burst began (`started`) and its
    /// outcome (the first failure, if any); never which keys, nor where.
    pub fn record_burst(&self, entry: Entry<'_>, counted: (&str, u64), started: SystemTime) {
        self.write(&entry, Some((counted, started)));
    }

    fn write(&self, entry: &Entry<'_>, burst: Option<((&str, u64), SystemTime)>) {
        let (outcome, detail) = match &entry.outcome {
            Outcome::Ok => ("ok".to_owned(), None),
            Outcome::Error(class) => (class.clone(), None),
            Outcome::Refused(why) => ("refused".to_owned(), Some(why.as_str())),
            Outcome::Unanswered => ("unanswered".to_owned(), None),
        };
        let mut line = json!({
            "time": rfc3339(SystemTime::now()),
            "client": entry.client,
            "command": entry.command,
            "id": entry.id,
            "outcome": outcome,
        });
        if let Some(detail) = detail {
            line["reason"] = json!(detail);
        }
        if !entry.vm.is_empty() {
            line["vm"] = json!(entry.vm);
        }
        if let Some(((counted, n), started)) = burst {
            line[counted] = json!(n);
            line["started"] = json!(rfc3339(started));
        }
        let mut text = line.to_string();
        text.push('\n');
        if let Ok(mut f) = self.file.lock() {
            if let Err(e) = f.write_all(text.as_bytes()) {
                tracing::warn!("audit log write failed: {e}");
            }
        }
    }
}

/// A session's commands awaiting their replies.
#[derive(Debug, Default)]
pub struct Pending {
    queue: VecDeque<(Option<Value>, String)>,
}

impl Pending {
    pub fn push(&mut self, id: Option<Value>, command: String) {
        self.queue.push_back((id, command));
    }

    /// The command a reply with `id` answers: the one with that id, or for a reply
    /// without one the oldest command sent without one.
    pub fn take(&mut self, id: Option<&Value>) -> Option<(Option<Value>, String)> {
        let pos = self.queue.iter().position(|(i, _)| i.as_ref() == id)?;
        self.queue.remove(pos)
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whatever is left when the session ends.
    pub fn drain(&mut self) -> impl Iterator<Item = (Option<Value>, String)> + '_ {
        self.queue.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_utc_times() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_764_075_845_123);
        assert_eq!(rfc3339(t), "2025-11-25T13:04:05.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(&rfc3339(leap)[..10], "2000-02-29");
    }

    #[test]
    fn pending_matches_by_id_then_order() {
        let mut p = Pending::default();
        p.push(Some(json!(1)), "a".into());
        p.push(None, "b".into());
        p.push(Some(json!(2)), "c".into());
        p.push(None, "d".into());
        assert_eq!(p.take(Some(&json!(2))).unwrap().1, "c");
        assert_eq!(p.take(None).unwrap().1, "b");
        assert_eq!(p.take(Some(&json!(9))), None);
        assert_eq!(p.drain().count(), 2);
        assert!(p.is_empty());
    }
}

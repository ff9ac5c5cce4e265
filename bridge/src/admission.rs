//! What a client's frame passes before it goes to QEMU ([`admit`]: within
//! `--max-command-bytes`, one QMP command that QEMU reads as the bridge does, allowed by
//! the policy), and a session's bookkeeping ([`Ledger`]): counts for its closing log line
//! and the audit log's record of each command and its outcome.

use std::sync::Arc;

use serde_json::Value;

use crate::audit::{self, AuditLog, Outcome, Pending};
use crate::ending::{Ending, Summary};
use crate::policy::Policy;
use crate::session::Settings;

/// A session's bookkeeping: counts, and commands awaiting replies for the audit log.
#[derive(Debug)]
pub struct Ledger {
    audit: Option<Arc<AuditLog>>,
    vm: String,
    /// Who the client is, for logs and the audit log.
    pub peer: String,
    pub to_qemu: u64,
    pub to_client: u64,
    pub rejected: u64,
    pub refused: u64,
    pending: Pending,
}

impl Ledger {
    pub fn new(settings: &Settings, peer: String) -> Ledger {
        Ledger {
            audit: settings.audit.clone(),
            vm: settings.vm.clone(),
            peer,
            to_qemu: 0,
            to_client: 0,
            rejected: 0,
            refused: 0,
            pending: Pending::default(),
        }
    }

    fn audit(&self, command: &str, id: Option<&Value>, outcome: Outcome) {
        if let Some(log) = &self.audit {
            log.record(audit::Entry {
                vm: &self.vm,
                client: &self.peer,
                command,
                id,
                outcome,
            });
        }
    }

    /// A command went upstream.
    pub fn sent(&mut self, frame: &qmp::ClientFrame) {
        self.to_qemu += 1;
        if self.audit.is_some() {
            let command = frame.command().to_owned();
            self.pending.push(frame.id().cloned(), command);
        }
    }

    /// A frame was denied.
    pub fn denied(&mut self, denied: &Denied) {
        match denied {
            Denied::Refused { frame, why, .. } => {
                self.refused += 1;
                tracing::info!(peer = %self.peer, "refused by policy: {why}");
                self.audit(frame.command(), frame.id(), Outcome::Refused(why.clone()));
            }
            Denied::Malformed { .. } => self.rejected += 1,
        }
    }

    /// A message went to the client; a reply closes its command's audit record.
    pub fn delivered(&mut self, text: &str) {
        self.to_client += 1;
        if self.audit.is_none() || self.pending.is_empty() {
            return;
        }
        let Ok(outline) = qmp::outline(text) else {
            return;
        };
        let outcome = match outline.kind {
            qmp::Kind::Return => Outcome::Ok,
            qmp::Kind::Error => Outcome::Error(outline.error_class.unwrap_or_default()),
            _ => return,
        };
        if let Some((id, command)) = self.pending.take(outline.id.as_ref()) {
            self.audit(&command, id.as_ref(), outcome);
        }
    }

    /// Ends the session: unanswered commands are recorded as such.
    pub fn finish(mut self, ending: Ending) -> Summary {
        let left: Vec<_> = self.pending.drain().collect();
        for (id, command) in left {
            self.audit(&command, id.as_ref(), Outcome::Unanswered);
        }
        Summary {
            to_qemu: self.to_qemu,
            to_client: self.to_client,
            rejected: self.rejected,
            refused: self.refused,
            ending,
        }
    }
}

/// A client frame that does not go upstream.
#[derive(Debug)]
pub enum Denied {
    /// Not one JSON object; the QMP-shaped error reply.
    Malformed { reply: String },
    /// Refused by the policy.
    Refused {
        reply: String,
        frame: qmp::ClientFrame,
        why: String,
    },
}

impl Denied {
    /// The QMP-shaped error reply for the client.
    pub fn reply(&self) -> &str {
        match self {
            Denied::Malformed { reply } | Denied::Refused { reply, .. } => reply,
        }
    }

    pub fn malformed(desc: &str) -> Denied {
        Denied::Malformed {
            reply: qmp::Rejection {
                id: None,
                desc: desc.into(),
            }
            .to_reply(),
        }
    }
}

/// Checks a client frame: within `max_bytes` (`--max-command-bytes`), one QMP command
/// that QEMU reads as the bridge does, and allowed by the policy.
pub fn admit(text: &str, policy: &Policy, max_bytes: usize) -> Result<qmp::ClientFrame, Denied> {
    if text.len() > max_bytes {
        let rejection = qmp::Rejection {
            id: qmp::inbound::salvage_id(text),
            desc: format!(
                "command of {} bytes is over the {max_bytes}-byte limit (--max-command-bytes)",
                text.len()
            ),
        };
        return Err(Denied::Malformed {
            reply: rejection.to_reply(),
        });
    }
    let frame = qmp::parse_client_frame(text).map_err(|r| Denied::Malformed {
        reply: r.to_reply(),
    })?;
    if let Err(why) = policy.check(&frame) {
        let desc = format!("refused by qmp-bridge policy: {why}");
        let reply = qmp::message::error_reply(frame.raw_id(), "GenericError", &desc);
        return Err(Denied::Refused { reply, frame, why });
    }
    Ok(frame)
}

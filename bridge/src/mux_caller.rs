//! The bridge's own QMP client of a VM: it attaches to the VM's [`Mux`] like a websocket
//! client does, never negotiates (so it gets no events), and runs one command at a time
//! under its own ids. The screen ([`crate::screen`]) and the keyboard and pointer
//! ([`crate::input`]) use it.
//!
//! Its commands go through the multiplexer's fair queue and its limits like anyone's; they
//! are not client frames, so neither the policy nor the audit log sees them here: their
//! callers decide what is allowed and what is recorded.

use std::sync::Arc;
use std::time::Duration;

use qmp::{Message, QmpError};
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::ending::Ending;
use crate::mux::{Attachment, Mux, ToUpstream};

/// How a command of the bridge's own failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// QEMU answered with an error.
    #[error("{}: {}", .0.class, .0.desc)]
    Qemu(QmpError),
    /// The multiplexer cannot take commands (QEMU unreachable, reconnecting, shutting down).
    #[error("{0}")]
    Unavailable(String),
}

/// An attachment used by the bridge itself.
#[derive(Debug)]
pub struct MuxCaller {
    attachment: Attachment,
    /// Budget of command bytes in flight, as a client's: one command at a time here.
    budget: Arc<Semaphore>,
    next_id: u64,
}

impl MuxCaller {
    /// Attaches to `mux`, waiting up to `wait` for QEMU.
    pub async fn attach(mux: &Mux, wait: Duration) -> Result<MuxCaller, CallError> {
        let attachment = mux
            .attach(wait)
            .await
            .map_err(|e| CallError::Unavailable(unavailable(&e)))?;
        Ok(MuxCaller {
            attachment,
            budget: Arc::new(Semaphore::new(qmp::framing::DEFAULT_MAX_MESSAGE_BYTES)),
            next_id: 0,
        })
    }

    /// False once the multiplexer has let go of this attachment (QEMU went away).
    pub fn is_attached(&self) -> bool {
        self.attachment.dropped.get().is_none() && !self.attachment.commands.is_closed()
    }

    /// Runs `command` and waits for its reply, however long QEMU takes (callers bound it
    /// with a timeout; a reply that comes after a caller gave up is skipped by the next
    /// call).
    pub async fn execute(&mut self, command: &str, arguments: Value) -> Result<Value, CallError> {
        self.next_id += 1;
        let id = format!("qmp-bridge-{}", self.next_id);
        let text = qmp::message::command(command, Some(arguments), Some(Value::from(id.clone())));
        let frame = qmp::parse_client_frame(&text)
            .map_err(|r| CallError::Unavailable(format!("bridge command not sent: {}", r.desc)))?;
        let cost = u32::try_from(text.len()).unwrap_or(u32::MAX);
        let permit = self
            .budget
            .clone()
            .acquire_many_owned(cost)
            .await
            .map_err(|_| self.gone())?;
        self.attachment
            .commands
            .send(ToUpstream::Command(frame, permit))
            .await
            .map_err(|_| self.gone())?;
        loop {
            let Some(text) = self.attachment.messages.recv().await else {
                return Err(self.gone());
            };
            match Message::parse(&text) {
                Ok(Message::Return {
                    id: Some(got),
                    value,
                }) if got == id.as_str() => return Ok(value),
                Ok(Message::Error {
                    id: Some(got),
                    error,
                }) if got == id.as_str() => return Err(CallError::Qemu(error)),
                _ => {} // an earlier command's late reply, or a stall notice
            }
        }
    }

    fn gone(&self) -> CallError {
        let why = self
            .attachment
            .dropped
            .get()
            .cloned()
            .unwrap_or(Ending::MuxStopped);
        CallError::Unavailable(unavailable(&why))
    }
}

/// Why the multiplexer takes no commands, in words.
fn unavailable(ending: &Ending) -> String {
    match ending {
        Ending::ShuttingDown | Ending::Unavailable { .. } => ending.to_string(),
        other => format!("QEMU is not reachable now: {other}"),
    }
}

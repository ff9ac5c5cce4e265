//! What every client session shares, whatever the mode and transport: its [`Limits`],
//! the [`Settings`] of a session on one VM,
//! and [`run_logged`], the bookkeeping around each session (its client slot, the token
//! the server waits on at shutdown, and the opened and ended log lines).
//!
//! The rest of a session lives by job: how it ends in [`crate::ending`], its transport in
//! [`crate::client`] ([`crate::ws_client`], [`crate::unix_client`]), what its frames pass
//! and its audit records in [`crate::admission`].

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, OwnedSemaphorePermit};

use crate::audit::AuditLog;
use crate::ending::{Ending, Summary};
use crate::policy::Policy;
use crate::target::QmpTarget;

/// The default `--max-command-bytes`: a command is rarely over a few KB, and QEMU takes
/// about 0.2 s to read this much.
pub const DEFAULT_MAX_COMMAND_BYTES: usize = 64 * 1024;

/// What every session is held to, whichever VM it is on: limits, timeouts, the policy
/// (with every VM's `NAME:` rules) and the audit log.
#[derive(Debug, Clone)]
pub struct Limits {
    /// How long QEMU may take to connect and greet before the monitor counts as busy.
    pub greeting_timeout: Duration,
    pub max_message_bytes: usize,
    /// The largest command a client may send (`--max-command-bytes`).
    pub max_command_bytes: usize,
    /// How long QEMU may take to answer a command before its client is told it is
    /// stalled (`--command-timeout`).
    pub command_timeout: Duration,
    /// Negotiate `oob` with QEMU and let clients use `exec-oob` (`--allow-oob`).
    pub allow_oob: bool,
    /// How long one delivery, to the client or to QEMU, may wait before the session is
    /// closed as stalled.
    pub send_timeout: Duration,
    /// How often websocket clients are pinged; two intervals of silence end the session.
    pub ping_interval: Duration,
    /// Close a session whose client sent no frame for this long.
    pub idle_timeout: Option<Duration>,
    /// Which commands clients may run.
    pub policy: Policy,
    /// Where each command and its outcome is recorded.
    pub audit: Option<Arc<AuditLog>>,
    /// libvirt domains are served under a guarded policy (`--libvirt-policy guarded`).
    pub libvirt_guarded: bool,
}

impl Limits {
    /// The settings of a session on VM `vm` at `target`: these limits, with the policy
    /// narrowed to the rules for that VM.
    pub fn for_vm(&self, vm: &str, target: QmpTarget) -> Settings {
        Settings {
            vm: vm.to_owned(),
            target,
            limits: Limits {
                policy: self.policy.for_vm(vm),
                ..self.clone()
            },
        }
    }
}

/// What a session on one VM needs to know: which VM, and its [`Limits`] (read through
/// `Deref`: `settings.send_timeout`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The VM's name (for logs and the audit log).
    pub vm: String,
    pub target: QmpTarget,
    pub limits: Limits,
}

impl std::ops::Deref for Settings {
    type Target = Limits;

    fn deref(&self) -> &Limits {
        &self.limits
    }
}

impl std::ops::DerefMut for Settings {
    fn deref_mut(&mut self) -> &mut Limits {
        &mut self.limits
    }
}

/// What a running session holds until it ends: a `--max-clients` slot, and a token the
/// server counts to know when every session has ended.
#[derive(Debug)]
pub struct Held {
    pub slot: OwnedSemaphorePermit,
    pub alive: mpsc::Sender<()>,
}

/// Runs one session between its opened and ended log lines (peer, target, duration,
/// message counts, how it ended in the transport's words (`told`); never the token).
pub async fn run_logged(
    held: Held,
    peer: &str,
    target: &QmpTarget,
    told: fn(&Ending) -> String,
    session: impl Future<Output = Summary>,
) {
    let started = Instant::now();
    tracing::info!(%peer, %target, "session opened");
    let summary = session.await;
    let ending = told(&summary.ending);
    tracing::info!(
        %peer,
        %target,
        duration_ms = started.elapsed().as_millis() as u64,
        to_qemu = summary.to_qemu,
        to_client = summary.to_client,
        rejected = summary.rejected,
        refused = summary.refused,
        "session ended: {ending}"
    );
    drop(held);
}

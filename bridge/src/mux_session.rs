//! Shared mode, one client's side: a complete QMP session of its own on the multiplexer.
//!
//! The client sees what QEMU would show it: QEMU's greeting, then its own capabilities
//! negotiation, answered here with QEMU's own words (commands before `qmp_capabilities`
//! are refused with `CommandNotFound`, a second negotiation too). After that its commands
//! go through the [`Mux`](crate::mux::Mux), which keeps its `id`s apart from everyone else's.

use qmp::ClientFrame;
use tokio::sync::{watch, Semaphore};

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::admission::{admit, Denied, Ledger};
use crate::client::Client;
use crate::ending::{Ending, Summary};
use crate::fleet::Vm;
use crate::mux::{Attachment, MessageQueue, ToUpstream};
use crate::session::Settings;

/// Messages sent to a client in one batch before a flush.
const BATCH: usize = 64;

/// Serves one client of `vm` until it leaves, is dropped, or `shutdown` flips.
pub async fn serve<C: Client>(
    mut client: C,
    vm: &Vm,
    peer: String,
    mut shutdown: watch::Receiver<bool>,
) -> Summary {
    let settings = vm.settings.as_ref();
    let mut ledger = Ledger::new(settings, peer);
    vm.metrics.sessions.fetch_add(1, Ordering::Relaxed);
    let ending = session(&mut client, vm, settings, &mut shutdown, &mut ledger).await;
    vm.metrics.sessions.fetch_sub(1, Ordering::Relaxed);
    client.close(&ending).await;
    ledger.finish(ending)
}

/// The negotiation state of one client.
#[derive(Debug, Default)]
struct Negotiation {
    done: bool,
    oob: bool,
}

fn error(frame: &ClientFrame, class: &str, desc: &str) -> String {
    qmp::message::error_reply(frame.raw_id(), class, desc)
}

impl Negotiation {
    /// QEMU's answer to a frame the bridge handles itself, or `None` to forward it.
    fn answer(&mut self, frame: &ClientFrame, oob_offered: bool) -> Option<String> {
        let command = frame.command();
        if !self.done {
            if command != "qmp_capabilities" {
                return Some(error(
                    frame,
                    "CommandNotFound",
                    "Expecting capabilities negotiation with 'qmp_capabilities'",
                ));
            }
            for cap in frame.enables() {
                match cap.as_str() {
                    Some("oob") if oob_offered => self.oob = true,
                    Some("oob") => return Some(error(frame, "GenericError", qmp::message::NO_OOB)),
                    _ => {
                        return Some(error(
                            frame,
                            "GenericError",
                            &format!("Parameter 'enable' does not accept value {cap}"),
                        ))
                    }
                }
            }
            self.done = true;
            return Some(qmp::message::command_reply(frame.raw_id()));
        }
        if command == "qmp_capabilities" {
            return Some(error(
                frame,
                "CommandNotFound",
                "Capabilities negotiation is already complete, command ignored",
            ));
        }
        if frame.is_oob() && !self.oob {
            return Some(error(
                frame,
                "GenericError",
                "exec-oob needs the oob capability, enabled in qmp_capabilities",
            ));
        }
        None
    }
}

async fn session<C: Client>(
    client: &mut C,
    vm: &Vm,
    settings: &Settings,
    shutdown: &mut watch::Receiver<bool>,
    ledger: &mut Ledger,
) -> Ending {
    let attached = tokio::select! {
        r = vm.mux.attach(settings.greeting_timeout) => r,
        _ = shutdown.changed() => return Ending::ShuttingDown,
    };
    let Attachment {
        greeting,
        oob_offered,
        commands,
        mut messages,
        dropped,
    } = match attached {
        Ok(a) => a,
        Err(ending) => return ending,
    };
    ledger.delivered(&greeting);
    if let Err(ending) = client.send(greeting).await {
        return ending;
    }
    let gone = || dropped.get().cloned().unwrap_or(Ending::MuxStopped);
    let mut negotiation = Negotiation::default();
    let budget = Arc::new(Semaphore::new(settings.max_command_bytes));
    loop {
        tokio::select! {
            _ = shutdown.changed() => return Ending::ShuttingDown,
            first = messages.recv() => {
                let Some(first) = first else { return gone() };
                if let Err(ending) = send_batch(client, first, &mut messages, ledger).await {
                    return ending;
                }
            }
            frame = client.recv() => {
                let text = match frame {
                    Ok(t) => t,
                    Err(ending) => return ending,
                };
                let admitted = text.and_then(|t| {
                    admit(&t, &settings.policy, settings.max_command_bytes).map(|f| (f, t.len()))
                });
                let (frame, size) = match admitted {
                    Ok(admitted) => admitted,
                    Err(denied) => {
                        if matches!(denied, Denied::Refused { .. }) {
                            vm.metrics.commands_refused.fetch_add(1, Ordering::Relaxed);
                        }
                        ledger.denied(&denied);
                        if let Err(ending) = client.send(denied.reply().to_owned()).await {
                            return ending;
                        }
                        continue;
                    }
                };
                let was_done = negotiation.done;
                if let Some(reply) = negotiation.answer(&frame, oob_offered) {
                    if negotiation.done && !was_done && commands.send(ToUpstream::Negotiated).await.is_err() {
                        return gone();
                    }
                    if let Err(ending) = client.send(reply).await {
                        return ending;
                    }
                    continue;
                }
                ledger.sent(&frame);
                // The client's bytes in flight at QEMU are bounded (QEMU reads slowly), and
                // the queue to the multiplexer is short: while either is full, keep
                // delivering.
                let cost = u32::try_from(size.min(settings.max_command_bytes)).unwrap_or(u32::MAX);
                let send = async {
                    let permit = budget.clone().acquire_many_owned(cost).await.ok()?;
                    commands.send(ToUpstream::Command(frame, permit)).await.ok()
                };
                tokio::pin!(send);
                loop {
                    tokio::select! {
                        r = &mut send => {
                            if r.is_none() {
                                return gone();
                            }
                            break;
                        }
                        _ = shutdown.changed() => return Ending::ShuttingDown,
                        msg = messages.recv() => {
                            let Some(msg) = msg else { return gone() };
                            if let Err(ending) = send_batch(client, msg, &mut messages, ledger).await {
                                return ending;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Sends `first` and whatever else is already queued (up to [`BATCH`]), then flushes.
async fn send_batch<C: Client>(
    client: &mut C,
    first: std::sync::Arc<str>,
    messages: &mut MessageQueue,
    ledger: &mut Ledger,
) -> Result<(), Ending> {
    ledger.delivered(&first);
    client.feed(first.to_string()).await?;
    for _ in 1..BATCH {
        match messages.try_recv() {
            Some(more) => {
                ledger.delivered(&more);
                client.feed(more.to_string()).await?;
            }
            None => break,
        }
    }
    client.flush().await
}

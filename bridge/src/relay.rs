//! `--mode relay`: each client gets its own QMP connection (a transparent relay).
//!
//! The client does the greeting and negotiation itself; the relay only moves whole
//! messages: QEMU's byte stream is cut into one message per frame ([`crate::upstream`]), and
//! each client frame goes upstream only once [`admit`] accepts it, as its canonical text
//! (never the client's bytes). Out-of-band execution is hidden from the greeting and
//! refused at negotiation unless `--allow-oob`. A session ends with a
//! close whose reason a person can read: upstream missing, monitor busy (no greeting),
//! QEMU gone, oversized message, slow or silent client, or the bridge shutting down.

use std::net::SocketAddr;

use tokio::sync::watch;

use crate::admission::{admit, Denied, Ledger};
use crate::client::Client;
use crate::ending::{Ending, Summary};
use crate::session::Settings;
use crate::upstream::{Monitor, MonitorConn, SocketMonitor};

/// Relays one client until either side ends or `shutdown` flips.
pub async fn relay<C: Client>(
    mut client: C,
    settings: &Settings,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) -> Summary {
    let mut ledger = Ledger::new(settings, peer.to_string());
    let monitor = SocketMonitor::of(settings);
    let ending = session(&mut client, &monitor, settings, &mut shutdown, &mut ledger).await;
    client.close(&ending).await;
    ledger.finish(ending)
}

async fn session<C: Client, M: Monitor>(
    client: &mut C,
    monitor: &M,
    settings: &Settings,
    shutdown: &mut watch::Receiver<bool>,
    ledger: &mut Ledger,
) -> Ending {
    // Client frames wait in their socket until the greeting: none is read or dropped.
    let opened = tokio::select! {
        r = monitor.open() => r,
        _ = shutdown.changed() => return Ending::ShuttingDown,
    };
    let (mut upstream, greeting) = match opened {
        Ok(o) => o,
        Err(e) => return e.into(),
    };
    let greeting = if settings.allow_oob {
        greeting
    } else {
        qmp::message::without_capability(&greeting, "oob")
    };
    if let Err(ending) = deliver(client, greeting, &mut upstream, ledger).await {
        return ending;
    }
    loop {
        tokio::select! {
            _ = shutdown.changed() => return Ending::ShuttingDown,
            frame = client.recv() => {
                let text = match frame {
                    Ok(t) => t,
                    Err(ending) => return ending,
                };
                let admitted = text
                    .and_then(|t| admit(&t, &settings.policy, settings.max_command_bytes))
                    .and_then(|frame| refuse_oob(frame, settings.allow_oob));
                match admitted {
                    Ok(frame) => {
                        let text = frame.upstream_text();
                        tracing::debug!(target: "qmp_bridge::wire", to = "qemu", "{text}");
                        if let Err(e) = upstream.send(&text).await {
                            return e.into();
                        }
                        ledger.sent(&frame);
                    }
                    Err(denied) => {
                        ledger.denied(&denied);
                        let reply = denied.reply().to_owned();
                        tracing::debug!(target: "qmp_bridge::wire", to = "client", "{reply}");
                        if let Err(ending) = client.send(reply).await {
                            return ending;
                        }
                    }
                }
            }
            message = upstream.recv() => match message {
                Ok(text) => {
                    if let Err(ending) = deliver(client, text, &mut upstream, ledger).await {
                        return ending;
                    }
                }
                // what arrived before the end went out first: recv yields it before the error
                Err(e) => return e.into(),
            },
        }
    }
}

/// Sends `first` and every message that has already arrived after it, then flushes once.
async fn deliver<C: Client>(
    client: &mut C,
    first: String,
    upstream: &mut impl MonitorConn,
    ledger: &mut Ledger,
) -> Result<(), Ending> {
    let mut next = Some(first);
    while let Some(text) = next {
        tracing::debug!(target: "qmp_bridge::wire", to = "client", "{text}");
        ledger.delivered(&text);
        client.feed(text).await?;
        next = upstream.recv_ready();
    }
    client.flush().await
}

/// Refuses a negotiation that enables `oob` unless `--allow-oob`, in QEMU's words for a
/// monitor without it.
fn refuse_oob(frame: qmp::ClientFrame, allow_oob: bool) -> Result<qmp::ClientFrame, Denied> {
    if !allow_oob && frame.enables().iter().any(|c| c == "oob") {
        let reply = qmp::message::error_reply(frame.raw_id(), "GenericError", qmp::message::NO_OOB);
        return Err(Denied::Malformed { reply });
    }
    Ok(frame)
}

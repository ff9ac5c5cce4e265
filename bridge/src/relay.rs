//! `--mode relay`: each client gets its own QMP connection (a transparent relay).
//!
//! The client does the greeting and negotiation itself; the relay only moves whole
//! messages: QEMU's byte stream is cut by [`qmp::Framer`] into one message per frame, and
//! each client frame goes upstream only once [`admit`] accepts it, as its canonical text
//! (never the client's bytes). Out-of-band execution is hidden from the greeting and
//! refused at negotiation unless `--allow-oob`. A session ends with a
//! close whose reason a person can read: upstream missing, monitor busy (no greeting),
//! QEMU gone, oversized message, slow or silent client, or the bridge shutting down.

use std::net::SocketAddr;

use tokio::sync::watch;

use crate::session::{admit, shutting_down, Client, Denied, Ending, Settings, Summary, Tally};
use crate::upstream::{QmpConn, Read};

/// Relays one client until either side ends or `shutdown` flips.
pub async fn relay<C: Client>(
    mut client: C,
    settings: &Settings,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) -> Summary {
    let mut tally = Tally::new(settings, peer.to_string());
    let ending = session(&mut client, settings, &mut shutdown, &mut tally).await;
    client.close(&ending).await;
    tally.finish(ending)
}

async fn session<C: Client>(
    client: &mut C,
    settings: &Settings,
    shutdown: &mut watch::Receiver<bool>,
    tally: &mut Tally,
) -> Ending {
    let target = &settings.target;
    // Client frames wait in their socket until the greeting: none is read or dropped.
    let opened = tokio::select! {
        r = QmpConn::open(target, settings.greeting_timeout, settings.max_message_bytes) => r,
        _ = shutdown.changed() => return shutting_down(),
    };
    let (mut upstream, greeting) = match opened {
        Ok(o) => o,
        Err(ending) => return ending,
    };
    let greeting = if settings.allow_oob {
        greeting
    } else {
        qmp::message::without_capability(&greeting, "oob")
    };
    tracing::debug!(target: "qmp_bridge::wire", to = "client", "{greeting}");
    tally.delivered(&greeting);
    if let Err(ending) = client.send(greeting).await {
        return ending;
    }
    if let Err(ending) = deliver(client, &mut upstream, settings, tally).await {
        return ending;
    }
    loop {
        tokio::select! {
            _ = shutdown.changed() => return shutting_down(),
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
                        if let Err(ending) = upstream.write_line(&text, settings.send_timeout, target).await {
                            return ending;
                        }
                        tally.sent(&frame);
                    }
                    Err(denied) => {
                        tally.denied(&denied);
                        let reply = denied.reply().to_owned();
                        tracing::debug!(target: "qmp_bridge::wire", to = "client", "{reply}");
                        if let Err(ending) = client.send(reply).await {
                            return ending;
                        }
                    }
                }
            }
            r = upstream.io.readable() => {
                let read = r.and_then(|()| upstream.read_available());
                // whatever arrived goes out first, even when the read also saw the end
                if let Err(ending) = deliver(client, &mut upstream, settings, tally).await {
                    return ending;
                }
                match read {
                    Ok(Read::Eof) => return upstream.eof_ending(target),
                    Err(e) => return crate::session::closed(
                        crate::session::close_code::UPSTREAM_ERROR,
                        format!("reading QMP at {target}: {e}")),
                    Ok(_) => {}
                }
            }
        }
    }
}

/// Sends every whole message the framer holds, then flushes once.
async fn deliver<C: Client>(
    client: &mut C,
    upstream: &mut QmpConn,
    settings: &Settings,
    tally: &mut Tally,
) -> Result<(), Ending> {
    let mut sent = 0;
    let outcome = loop {
        match upstream.next_message(&settings.target) {
            Ok(Some(text)) => {
                tracing::debug!(target: "qmp_bridge::wire", to = "client", "{text}");
                tally.delivered(&text);
                client.feed(text).await?;
                sent += 1;
            }
            Ok(None) => break Ok(()),
            Err(ending) => break Err(ending),
        }
    };
    if sent > 0 {
        client.flush().await?;
    }
    outcome
}

/// Refuses a negotiation that enables `oob` unless `--allow-oob`, in QEMU's words for a
/// monitor without it.
fn refuse_oob(frame: qmp::ClientFrame, allow_oob: bool) -> Result<qmp::ClientFrame, Denied> {
    let wants_oob = frame.command() == "qmp_capabilities"
        && frame
            .arguments()
            .and_then(|a| a.get("enable"))
            .and_then(serde_json::Value::as_array)
            .is_some_and(|caps| caps.iter().any(|c| c == "oob"));
    if wants_oob && !allow_oob {
        let reply = qmp::message::error_reply(
            frame.raw_id(),
            "GenericError",
            "This monitor does not support Out-Of-Band (OOB)",
        );
        return Err(Denied::Malformed { reply });
    }
    Ok(frame)
}

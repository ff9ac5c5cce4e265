//! The websocket transport: a browser (or any websocket client) with pings, an idle
//! bound and send timeouts, and the one place where an [`Ending`] becomes a websocket
//! close code and reason ([`close_frame`]).

use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message};
use futures_util::{Sink, SinkExt, Stream, StreamExt};

use crate::admission::Denied;
use crate::client::{deliver_within, idle_deadline, Client};
use crate::ending::{ClientFault, Ending};
use crate::session::Settings;
use crate::upstream::UpstreamError;

/// Websocket close codes the bridge uses.
pub mod close_code {
    /// QEMU closed the monitor (after `quit`, say).
    pub const NORMAL: u16 = 1000;
    /// The bridge is shutting down, the client went silent or idle.
    pub const GOING_AWAY: u16 = 1001;
    /// The client broke the websocket protocol.
    pub const PROTOCOL: u16 = 1002;
    /// The client does not read what it is sent.
    pub const POLICY: u16 = 1008;
    /// A message over `--max-message-bytes`.
    pub const TOO_BIG: u16 = 1009;
    /// The QMP peer is unreachable or broke the protocol.
    pub const UPSTREAM_ERROR: u16 = 1011;
    /// Shared mode: QEMU went away; the bridge reconnects, and so may the client.
    pub const RESTART: u16 = 1012;
    /// The monitor is busy or not yet reachable: try again later.
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// The close code and reason for an ending (none when the client left).
pub fn close_frame(ending: &Ending) -> Option<(u16, String)> {
    use close_code::*;
    let code = match ending {
        Ending::ClientLeft => return None,
        Ending::ShuttingDown | Ending::Retired => GOING_AWAY,
        Ending::Client(fault) => match fault {
            ClientFault::TooSlow(_) | ClientFault::Backlog(_) | ClientFault::Unfinished(_) => {
                POLICY
            }
            ClientFault::Silent(_) | ClientFault::Idle(_) => GOING_AWAY,
            ClientFault::TooBig(_) => TOO_BIG,
            ClientFault::Protocol(_) | ClientFault::NotQmp(_) => PROTOCOL,
            ClientFault::TooMany(_) => TRY_AGAIN_LATER,
        },
        Ending::Upstream(e) => match e.as_ref() {
            UpstreamError::Busy { .. } | UpstreamError::NoAnswer { .. } => TRY_AGAIN_LATER,
            UpstreamError::Closed | UpstreamError::ClosedMidMessage { .. } => NORMAL,
            UpstreamError::TooBig { .. } => TOO_BIG,
            _ => UPSTREAM_ERROR,
        },
        Ending::Reconnecting { .. } => RESTART,
        Ending::Unavailable { .. } => TRY_AGAIN_LATER,
        Ending::MuxStopped => UPSTREAM_ERROR,
    };
    Some((code, ending.to_string()))
}

/// How an ending reads in the log: the close code and reason sent.
pub fn told(ending: &Ending) -> String {
    match close_frame(ending) {
        Some((code, reason)) => format!("closed {code}: {reason}"),
        None => ending.to_string(),
    }
}

/// A browser (or any websocket client), with pings, an idle bound and send timeouts.
pub struct WsClient<W, R> {
    tx: W,
    rx: R,
    send_timeout: Duration,
    ping_interval: Duration,
    idle_timeout: Option<Duration>,
    max_message_bytes: usize,
    ping: tokio::time::Interval,
    last_heard: Instant,
    last_frame: Instant,
}

impl<W, R> WsClient<W, R>
where
    W: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    pub fn new(tx: W, rx: R, settings: &Settings) -> Self {
        let mut ping = tokio::time::interval(settings.ping_interval);
        ping.reset();
        WsClient {
            tx,
            rx,
            send_timeout: settings.send_timeout,
            ping_interval: settings.ping_interval,
            idle_timeout: settings.idle_timeout,
            max_message_bytes: settings.max_message_bytes,
            ping,
            last_heard: Instant::now(),
            last_frame: Instant::now(),
        }
    }
}

/// A close reason must fit a control frame (123 bytes).
pub fn truncate_reason(reason: &str) -> String {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}

impl<W, R> Client for WsClient<W, R>
where
    W: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    async fn recv(&mut self) -> Result<Result<String, Denied>, Ending> {
        loop {
            tokio::select! {
                _ = idle_deadline(self.idle_timeout, self.last_frame) => {
                    return Err(ClientFault::Idle(self.last_frame.elapsed()).into());
                }
                _ = self.ping.tick() => {
                    if self.last_heard.elapsed() > self.ping_interval * 2 {
                        return Err(ClientFault::Silent(self.last_heard.elapsed()).into());
                    }
                    let ping = self.tx.send(Message::Ping(Default::default()));
                    deliver_within(self.send_timeout, ping).await?;
                }
                frame = self.rx.next() => {
                    self.last_heard = Instant::now();
                    let text = match frame {
                        None | Some(Ok(Message::Close(_))) => return Err(Ending::ClientLeft),
                        Some(Err(e)) => {
                            let text = e.to_string();
                            return Err(if text.contains("Space limit exceeded") {
                                ClientFault::TooBig(self.max_message_bytes)
                            } else {
                                ClientFault::Protocol(text)
                            }.into());
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                        Some(Ok(Message::Text(t))) => Ok(t.as_str().to_owned()),
                        Some(Ok(Message::Binary(b))) => String::from_utf8(b.to_vec())
                            .map_err(|_| Denied::malformed("binary frame is not UTF-8 JSON text")),
                    };
                    self.last_frame = Instant::now();
                    return Ok(text);
                }
            }
        }
    }

    async fn feed(&mut self, text: String) -> Result<(), Ending> {
        let fut = self.tx.feed(Message::Text(text.into()));
        deliver_within(self.send_timeout, fut).await
    }

    async fn flush(&mut self) -> Result<(), Ending> {
        deliver_within(self.send_timeout, self.tx.flush()).await
    }

    async fn close(&mut self, ending: &Ending) {
        if let Some((code, reason)) = close_frame(ending) {
            let frame = CloseFrame {
                code,
                reason: truncate_reason(&reason).into(),
            };
            let tx = &mut self.tx;
            let _ = tokio::time::timeout(self.send_timeout, async {
                let _ = tx.send(Message::Close(Some(frame))).await;
                let _ = tx.close().await;
            })
            .await;
        }
    }
}

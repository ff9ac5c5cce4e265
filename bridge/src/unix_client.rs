//! The `--share-socket` transport: a plain-QMP client on a Unix socket (qmp-shell, the
//! `qemu.qmp` library), framed like QEMU's own side, answered with CRLF after each
//! message; told why its session ends with a QMP error line, as QEMU tells a client
//! what it cannot read.

use std::time::{Duration, Instant};

use tokio::net::UnixStream;

use crate::admission::Denied;
use crate::client::{idle_deadline, Client};
use crate::ending::{ClientFault, Ending};
use crate::session::Settings;
use crate::stream::Framed;
use crate::target::Socket;

/// A plain-QMP client on the shared socket.
pub struct UnixClient {
    /// The client's stream, framed like QEMU's own side.
    framed: Framed,
    out: Vec<u8>,
    send_timeout: Duration,
    idle_timeout: Option<Duration>,
    last_frame: Instant,
    /// How long a message may stay unfinished.
    unfinished_timeout: Duration,
    /// Since when part of a message waits for the rest.
    unfinished_since: Option<Instant>,
}

impl UnixClient {
    pub fn new(
        stream: UnixStream,
        settings: &Settings,
        unfinished_timeout: Duration,
    ) -> UnixClient {
        UnixClient {
            framed: Framed::new(Socket::Unix(stream), settings.max_message_bytes, "\r\n"),
            out: Vec::new(),
            send_timeout: settings.send_timeout,
            idle_timeout: settings.idle_timeout,
            last_frame: Instant::now(),
            unfinished_timeout,
            unfinished_since: None,
        }
    }

    /// Tells the client why its session ends, as a QMP error without an id (what QEMU
    /// answers to a message it cannot read), and makes that ending.
    pub async fn tell(&mut self, fault: ClientFault) -> Ending {
        let desc = format!("qmp-bridge closes this session: {fault}");
        let reply = qmp::message::error_reply(None, "GenericError", &desc);
        let _ = self.send(reply).await;
        fault.into()
    }
}

impl Client for UnixClient {
    async fn recv(&mut self) -> Result<Result<String, Denied>, Ending> {
        loop {
            match self.framed.next_buffered() {
                Ok(Some(text)) => {
                    self.last_frame = Instant::now();
                    self.unfinished_since = None;
                    return Ok(Ok(text));
                }
                Ok(None) => {}
                // QEMU would answer a parse error; the stream can not be resynchronised.
                Err(e) => return Err(self.tell(ClientFault::NotQmp(e.to_string())).await),
            }
            if self.framed.is_ended() {
                return Err(Ending::ClientLeft);
            }
            let unfinished = match self.framed.pending_bytes() {
                0 => None,
                _ => Some(*self.unfinished_since.get_or_insert_with(Instant::now)),
            };
            self.unfinished_since = unfinished;
            let fault = tokio::select! {
                _ = idle_deadline(self.idle_timeout, self.last_frame) => {
                    ClientFault::Idle(self.last_frame.elapsed())
                }
                _ = idle_deadline(unfinished.map(|_| self.unfinished_timeout),
                        unfinished.unwrap_or(self.last_frame)) => {
                    ClientFault::Unfinished(self.unfinished_timeout)
                }
                r = self.framed.fill() => match r {
                    Ok(()) => continue,
                    Err(_) => return Err(Ending::ClientLeft),
                },
            };
            return Err(self.tell(fault).await);
        }
    }

    async fn feed(&mut self, text: String) -> Result<(), Ending> {
        self.out.extend_from_slice(text.as_bytes());
        self.out
            .extend_from_slice(self.framed.terminator().as_bytes());
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Ending> {
        let out = std::mem::take(&mut self.out);
        match self.framed.send_bytes(&out, self.send_timeout).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                Err(ClientFault::TooSlow(self.send_timeout).into())
            }
            Err(_) => Err(Ending::ClientLeft),
        }
    }

    async fn close(&mut self, _ending: &Ending) {
        self.framed.shutdown().await;
    }
}

//! A QMP byte stream cut into whole messages: a [`Socket`] and its [`Framer`], both
//! private, behind a cancel-safe [`Framed::recv`] and [`Framed::send`].
//!
//! Used for both directions that speak QMP over a byte stream: the connection to QEMU
//! ([`crate::upstream`]) and a `--share-socket` client ([`crate::unix_client`]). Messages
//! are framed on JSON value boundaries (QEMU's CRLF-terminated and `pretty=on` output
//! alike), with a bounded buffer.

use std::time::Duration;

use qmp::{FrameError, Framer};

use crate::target::Socket;

/// Why a framed stream cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The bytes are not QMP, or a message is over the limit.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The peer closed the stream with part of a message unsent.
    #[error("the stream ended in the middle of a message")]
    EndedMidMessage,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A whole-message QMP stream.
#[derive(Debug)]
pub struct Framed {
    io: Socket,
    framer: Framer,
    /// The peer closed its side.
    ended: bool,
    /// What ends each message sent (`\n` to QEMU, CRLF to QMP clients, as QEMU does).
    terminator: &'static str,
}

impl Framed {
    /// Frames `io`, holding at most `max_message_bytes` of one message; each message sent
    /// is followed by `terminator`.
    pub fn new(io: Socket, max_message_bytes: usize, terminator: &'static str) -> Framed {
        Framed {
            io,
            framer: Framer::new(max_message_bytes),
            ended: false,
            terminator,
        }
    }

    /// The next whole message; `Ok(None)` once the peer closed between messages.
    /// Cancel-safe: bytes are only taken when a message can be framed from them.
    pub async fn recv(&mut self) -> Result<Option<String>, StreamError> {
        loop {
            if let Some(message) = self.next_buffered()? {
                return Ok(Some(message));
            }
            if self.ended {
                return match self.framer.pending_bytes() {
                    0 => Ok(None),
                    _ => Err(StreamError::EndedMidMessage),
                };
            }
            self.fill().await?;
        }
    }

    /// The next whole message among the bytes read so far, if there is one.
    pub fn next_buffered(&mut self) -> Result<Option<String>, StreamError> {
        Ok(self.framer.next_message()?)
    }

    /// Waits for bytes and reads them (or notes the end of the stream). Cancel-safe.
    pub async fn fill(&mut self) -> std::io::Result<()> {
        self.io.readable().await?;
        self.read_available()
    }

    /// The peer closed its side (what was read may still hold messages).
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The next whole message among the bytes the socket holds now, without waiting (a
    /// closed connection's last words).
    pub fn recv_ready(&mut self) -> Result<Option<String>, StreamError> {
        if let Some(message) = self.framer.next_message()? {
            return Ok(Some(message));
        }
        if !self.ended {
            self.read_available()?;
        }
        Ok(self.framer.next_message()?)
    }

    /// Bytes held for a message not yet complete.
    pub fn pending_bytes(&self) -> usize {
        self.framer.pending_bytes()
    }

    /// Reads what the socket holds into the framer, without keeping a buffer between
    /// reads; notes the end of the stream.
    fn read_available(&mut self) -> std::io::Result<()> {
        let mut buf = [0u8; 16 * 1024];
        for _ in 0..8 {
            match self.io.try_read(&mut buf) {
                Ok(0) => {
                    self.ended = true;
                    break;
                }
                Ok(n) => {
                    self.framer.push(&buf[..n]);
                    if n < buf.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                // A peer exiting with our bytes unread resets the socket: it closed all
                // the same.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    self.ended = true;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes one message and its terminator within `timeout` (`TimedOut` after).
    pub async fn send(&mut self, text: &str, timeout: Duration) -> std::io::Result<()> {
        let mut line = String::with_capacity(text.len() + self.terminator.len());
        line.push_str(text);
        line.push_str(self.terminator);
        self.send_bytes(line.as_bytes(), timeout).await
    }

    /// Writes bytes already terminated (a batch of messages) within `timeout`.
    pub async fn send_bytes(&mut self, bytes: &[u8], timeout: Duration) -> std::io::Result<()> {
        match tokio::time::timeout(timeout, self.io.write_all(bytes)).await {
            Ok(r) => r,
            Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
        }
    }

    /// The terminator each message is sent with.
    pub fn terminator(&self) -> &'static str {
        self.terminator
    }

    /// Closes the writing half (the peer reads end of file).
    pub async fn shutdown(&mut self) {
        self.io.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn pair() -> (Framed, tokio::net::UnixStream) {
        let (a, b) = tokio::net::UnixStream::pair().unwrap();
        (Framed::new(Socket::Unix(a), 1024, "\r\n"), b)
    }

    #[tokio::test]
    async fn messages_in_pieces_and_the_end() {
        let (mut framed, mut peer) = pair();
        peer.write_all(b"{\"a\": 1}\r\n{\"b\"").await.unwrap();
        assert_eq!(framed.recv().await.unwrap().as_deref(), Some("{\"a\": 1}"));
        assert_eq!(framed.recv_ready().unwrap(), None);
        peer.write_all(b": 2}").await.unwrap();
        assert_eq!(framed.recv().await.unwrap().as_deref(), Some("{\"b\": 2}"));
        drop(peer);
        assert_eq!(framed.recv().await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_end_mid_message_and_garbage_are_errors() {
        let (mut framed, mut peer) = pair();
        peer.write_all(b"{\"a\": ").await.unwrap();
        drop(peer);
        assert!(matches!(
            framed.recv().await,
            Err(StreamError::EndedMidMessage)
        ));
        let (mut framed, mut peer) = pair();
        peer.write_all(b"nope").await.unwrap();
        assert!(matches!(framed.recv().await, Err(StreamError::Frame(_))));
    }

    #[tokio::test]
    async fn recv_is_cancel_safe() {
        let (mut framed, mut peer) = pair();
        let early = tokio::time::timeout(Duration::from_millis(20), framed.recv()).await;
        assert!(early.is_err(), "nothing to read yet");
        peer.write_all(b"{\"late\": true}\n").await.unwrap();
        assert_eq!(
            framed.recv().await.unwrap().as_deref(),
            Some("{\"late\": true}")
        );
    }

    #[tokio::test]
    async fn sends_with_the_terminator() {
        let (mut framed, peer) = pair();
        framed.send("{}", Duration::from_secs(1)).await.unwrap();
        let mut got = [0u8; 4];
        peer.readable().await.unwrap();
        assert_eq!(peer.try_read(&mut got).unwrap(), 4);
        assert_eq!(&got, b"{}\r\n");
    }
}

//! A QMP connection to QEMU: the socket plus its framer, opened up to the greeting.
//!
//! Both the transparent relay (one connection per client) and the multiplexer (one for
//! everyone) open QEMU the same way: connect, then wait for the greeting, which a monitor
//! held by another client never sends ("busy").

use std::time::Duration;

use qmp::{FrameError, Framer};

use crate::session::{close_code, closed, Ending};
use crate::target::{QmpTarget, Upstream};

/// What one read brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    Data,
    Nothing,
    Eof,
}

/// An open QMP connection.
#[derive(Debug)]
pub struct QmpConn {
    pub io: Upstream,
    pub framer: Framer,
}

impl QmpConn {
    /// Connects to `target` and reads its greeting within `timeout`.
    pub async fn open(
        target: &QmpTarget,
        timeout: Duration,
        max_message_bytes: usize,
    ) -> Result<(QmpConn, String), Ending> {
        let mut conn = QmpConn::connect(target, timeout, max_message_bytes).await?;
        let greeting = conn.greeting(target, timeout).await?;
        Ok((conn, greeting))
    }

    /// Connects to `target` (the ending says it cannot be reached).
    pub async fn connect(
        target: &QmpTarget,
        timeout: Duration,
        max_message_bytes: usize,
    ) -> Result<QmpConn, Ending> {
        let io = target.connect(timeout).await.map_err(|e| {
            closed(
                close_code::UPSTREAM_ERROR,
                format!("cannot reach QMP at {target}: {e}"),
            )
        })?;
        Ok(QmpConn {
            io,
            framer: Framer::new(max_message_bytes),
        })
    }

    /// Waits up to `timeout` for the greeting; none means another client holds the
    /// monitor ("busy", 1013).
    pub async fn greeting(
        &mut self,
        target: &QmpTarget,
        timeout: Duration,
    ) -> Result<String, Ending> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(greeting) = self.next_message(target)? {
                return Ok(greeting);
            }
            let busy = || {
                closed(
                    close_code::TRY_AGAIN_LATER,
                    format!("QMP monitor busy: {target} sent no greeting within {timeout:?}; another client holds it"),
                )
            };
            self.read_more(deadline, target, busy)
                .await
                .map_err(|e| match e {
                    Ending::Closed {
                        code: close_code::NORMAL,
                        ..
                    } => closed(
                        close_code::UPSTREAM_ERROR,
                        format!("QEMU closed the monitor at {target} before greeting"),
                    ),
                    other => other,
                })?;
        }
    }

    /// Waits until `deadline` for more bytes and reads them into the framer; `timed_out`
    /// makes the ending when none come.
    pub async fn read_more(
        &mut self,
        deadline: tokio::time::Instant,
        target: &QmpTarget,
        timed_out: impl FnOnce() -> Ending,
    ) -> Result<(), Ending> {
        match tokio::time::timeout_at(deadline, self.io.readable()).await {
            Err(_) => Err(timed_out()),
            Ok(r) => match r.and_then(|()| self.read_available()) {
                Ok(Read::Eof) => Err(self.eof_ending(target)),
                Ok(_) => Ok(()),
                Err(e) => Err(closed(
                    close_code::UPSTREAM_ERROR,
                    format!("reading QMP at {target}: {e}"),
                )),
            },
        }
    }

    /// Reads what the socket holds into the framer, without keeping a buffer between reads.
    pub fn read_available(&mut self) -> std::io::Result<Read> {
        let mut buf = [0u8; 16 * 1024];
        let mut got = Read::Nothing;
        for _ in 0..8 {
            match self.io.try_read(&mut buf) {
                Ok(0) => return Ok(Read::Eof),
                Ok(n) => {
                    self.framer.push(&buf[..n]);
                    got = Read::Data;
                    if n < buf.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                // QEMU exiting with our bytes unread resets the socket: it closed all the same.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(Read::Eof),
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    }

    /// The next whole message, as an ending when the stream is broken.
    pub fn next_message(&mut self, target: &QmpTarget) -> Result<Option<String>, Ending> {
        self.framer
            .next_message()
            .map_err(|e| frame_error(e, target))
    }

    /// Writes one message and its newline, within `timeout`.
    pub async fn write_line(
        &mut self,
        text: &str,
        timeout: Duration,
        target: &QmpTarget,
    ) -> Result<(), Ending> {
        let mut line = String::with_capacity(text.len() + 1);
        line.push_str(text);
        line.push('\n');
        match tokio::time::timeout(timeout, self.io.write_all(line.as_bytes())).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(closed(
                close_code::UPSTREAM_ERROR,
                format!("writing to QMP at {target}: {e}"),
            )),
            Err(_) => Err(closed(
                close_code::UPSTREAM_ERROR,
                format!("QMP at {target} stopped reading for {timeout:?}"),
            )),
        }
    }

    /// The ending for an upstream that reached end of file.
    pub fn eof_ending(&self, target: &QmpTarget) -> Ending {
        if self.framer.pending_bytes() > 0 {
            closed(
                close_code::NORMAL,
                format!("QEMU closed the monitor at {target} in the middle of a message"),
            )
        } else {
            closed(close_code::NORMAL, "QEMU closed the monitor")
        }
    }
}

fn frame_error(e: FrameError, target: &QmpTarget) -> Ending {
    match e {
        FrameError::TooLarge { limit } => closed(
            close_code::TOO_BIG,
            format!("QEMU sent a message over the {limit}-byte limit (--max-message-bytes)"),
        ),
        other => closed(
            close_code::UPSTREAM_ERROR,
            format!("{target} is not speaking QMP: {other}"),
        ),
    }
}

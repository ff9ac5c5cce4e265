//! A scripted QMP server on a Unix socket, for faults a real QEMU will not produce on
//! demand: slow or missing greetings, garbage, messages split or coalesced, a peer that
//! vanishes mid-message, oversized replies.
//!
//! Each accepted connection runs the test's script, an async closure over a [`PeerConn`].

use std::future::Future;
use std::path::PathBuf;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixListener;

use crate::{Result, TempDir};

/// A greeting like QEMU 7.2's, CRLF-terminated.
pub const GREETING: &str = "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, \"package\": \"fake-peer\"}, \"capabilities\": [\"oob\"]}}\r\n";

#[derive(Debug)]
pub struct FakePeer {
    path: PathBuf,
    _dir: TempDir,
    accept: tokio::task::JoinHandle<()>,
}

/// One client connection to the fake peer.
#[derive(Debug)]
pub struct PeerConn {
    reader: BufReader<OwnedReadHalf>,
    pub writer: OwnedWriteHalf,
}

impl PeerConn {
    /// Writes raw bytes.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.writer.write_all(bytes).await?;
        self.writer.flush().await?;
        Ok(())
    }

    /// Reads one client command (the bridge ends each with a newline); `None` at EOF.
    pub async fn recv(&mut self) -> Result<Option<Value>> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        Ok(Some(serde_json::from_str(&line)?))
    }

    /// Answers every command with `{"return": {}, "id": <its id>}` until EOF.
    pub async fn echo_returns(&mut self) -> Result<()> {
        while let Some(cmd) = self.recv().await? {
            let reply =
                qmp::message::command_reply(cmd.get("id").map(qmp::Id::from_value).as_ref());
            self.send(format!("{reply}\r\n").as_bytes()).await?;
        }
        Ok(())
    }
}

impl FakePeer {
    /// Listens on a fresh socket; runs `script` for every connection.
    pub async fn start<F, Fut>(script: F) -> Result<FakePeer>
    where
        F: Fn(PeerConn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let dir = TempDir::new("fakepeer")?;
        let path = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&path)?;
        let script = std::sync::Arc::new(script);
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (r, w) = stream.into_split();
                let conn = PeerConn {
                    reader: BufReader::new(r),
                    writer: w,
                };
                let script = script.clone();
                tokio::spawn(async move {
                    let _ = script(conn).await;
                });
            }
        });
        Ok(FakePeer {
            path,
            _dir: dir,
            accept,
        })
    }

    /// `unix:PATH`, as `--qmp` takes it.
    pub fn target(&self) -> String {
        format!("unix:{}", self.path.display())
    }
}

impl Drop for FakePeer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

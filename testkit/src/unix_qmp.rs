//! A plain QMP client on a Unix socket (as qmp-shell would be), for `--share-socket`.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

use crate::qmp_client::QmpClient;
use crate::Result;

#[derive(Debug)]
pub struct UnixQmp {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    pub events: Vec<Value>,
    pub timeout: Duration,
}

impl UnixQmp {
    pub async fn connect(path: &Path) -> Result<UnixQmp> {
        let (r, w) = UnixStream::connect(path).await?.into_split();
        Ok(UnixQmp {
            reader: BufReader::new(r),
            writer: w,
            events: Vec::new(),
            timeout: Duration::from_secs(15),
        })
    }
}

impl QmpClient for UnixQmp {
    async fn recv_json(&mut self) -> Result<Value> {
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(self.timeout, self.reader.read_line(&mut line))
                .await
                .map_err(|_| "nothing received on the Unix socket")??;
            if n == 0 {
                return Err("the Unix socket closed".into());
            }
            if !line.trim().is_empty() {
                return Ok(serde_json::from_str(&line)?);
            }
        }
    }

    async fn send_text(&mut self, text: &str) -> Result<()> {
        self.writer.write_all(text.as_bytes()).await?;
        self.writer.write_all(b"\n").await?;
        Ok(())
    }

    fn events(&mut self) -> &mut Vec<Value> {
        &mut self.events
    }
}

//! The measuring client: one QMP connection, straight to the Unix socket or through a
//! websocket relay, with the same send/receive code for every tool.
//!
//! Relays differ in how they frame: qmp-bridge and websocat (line mode) send one QMP
//! message per text frame; websockify relays raw bytes in binary frames, cut wherever a
//! read ended, so its stream is re-framed here with [`qmp::Framer`], as a direct socket is.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::stats::Samples;
use testkit::Result;

/// How a relay carries QMP messages in websocket frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One message per text frame (qmp-bridge, websocat line mode).
    MessagePerFrame,
    /// A byte stream in binary frames (websockify).
    ByteStream,
}

/// Where the client connects.
#[derive(Debug, Clone)]
pub enum Endpoint {
    Unix(PathBuf),
    Ws { url: String, framing: Framing },
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

enum Transport {
    Unix(UnixStream),
    Ws(Box<Ws>, Framing),
}

/// One QMP session.
pub struct Conn {
    transport: Transport,
    framer: qmp::Framer,
    buf: Vec<u8>,
    /// How long one receive may wait.
    pub timeout: Duration,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Conn")
    }
}

impl Conn {
    pub async fn connect(endpoint: &Endpoint) -> Result<Conn> {
        let transport = match endpoint {
            Endpoint::Unix(path) => Transport::Unix(UnixStream::connect(path).await?),
            Endpoint::Ws { url, framing } => {
                let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
                    .await
                    .map_err(|e| format!("{url}: {e}"))?;
                if let MaybeTlsStream::Plain(tcp) = ws.get_ref() {
                    tcp.set_nodelay(true)?;
                }
                Transport::Ws(Box::new(ws), *framing)
            }
        };
        Ok(Conn {
            transport,
            framer: qmp::Framer::new(qmp::framing::DEFAULT_MAX_MESSAGE_BYTES),
            buf: Vec::new(),
            timeout: Duration::from_secs(20),
        })
    }

    /// Connects, reads the greeting and negotiates capabilities.
    pub async fn open(endpoint: &Endpoint) -> Result<Conn> {
        let mut conn = Conn::connect(endpoint).await?;
        let greeting = conn.recv().await?;
        if !greeting.contains("\"QMP\"") {
            return Err(format!("expected a QMP greeting, got {greeting}").into());
        }
        conn.execute(
            &qmp::message::qmp_capabilities(&[], Some(json!("caps"))),
            &json!("caps"),
        )
        .await?;
        Ok(conn)
    }

    /// Sends one QMP message.
    pub async fn send(&mut self, text: &str) -> Result<()> {
        match &mut self.transport {
            Transport::Unix(s) => {
                let mut line = Vec::with_capacity(text.len() + 1);
                line.extend_from_slice(text.as_bytes());
                line.push(b'\n');
                s.write_all(&line).await?;
            }
            Transport::Ws(ws, Framing::MessagePerFrame) => ws.send(Message::text(text)).await?,
            Transport::Ws(ws, Framing::ByteStream) => {
                ws.send(Message::binary(format!("{text}\n").into_bytes()))
                    .await?
            }
        }
        Ok(())
    }

    /// The next QMP message, whole.
    pub async fn recv(&mut self) -> Result<String> {
        loop {
            if let Some(text) = self.framer.next_message()? {
                return Ok(text);
            }
            let timeout = self.timeout;
            match &mut self.transport {
                Transport::Unix(s) => {
                    if self.buf.len() < 64 * 1024 {
                        self.buf.resize(64 * 1024, 0);
                    }
                    let n = tokio::time::timeout(timeout, s.read(&mut self.buf))
                        .await
                        .map_err(|_| "no message within the timeout")??;
                    if n == 0 {
                        return Err("the QMP socket closed".into());
                    }
                    self.framer.push(&self.buf[..n]);
                }
                Transport::Ws(ws, framing) => {
                    let frame = tokio::time::timeout(timeout, ws.next())
                        .await
                        .map_err(|_| "no message within the timeout")?;
                    match frame {
                        None => return Err("websocket ended".into()),
                        Some(Err(e)) => return Err(format!("websocket: {e}").into()),
                        Some(Ok(Message::Text(t))) if *framing == Framing::MessagePerFrame => {
                            return Ok(t.as_str().to_owned())
                        }
                        Some(Ok(Message::Text(t))) => self.framer.push(t.as_bytes()),
                        Some(Ok(Message::Binary(b))) => self.framer.push(&b),
                        Some(Ok(Message::Close(c))) => {
                            return Err(format!("websocket closed: {c:?}").into())
                        }
                        Some(Ok(_)) => {}
                    }
                }
            }
        }
    }

    /// Sends `command` and reads until the reply carrying `id`, skipping events.
    pub async fn execute(&mut self, command: &str, id: &Value) -> Result<Value> {
        self.send(command).await?;
        loop {
            let text = self.recv().await?;
            let msg: Value = serde_json::from_str(&text)?;
            if msg.get("event").is_some() {
                continue;
            }
            if msg.get("id") == Some(id) {
                return Ok(msg);
            }
            return Err(format!("unexpected message while waiting for {id}: {text}").into());
        }
    }

    /// `count` timed round trips of `command_name` (ids 0..count); the first `warmup`
    /// are not kept.
    pub async fn round_trips(
        &mut self,
        command_name: &str,
        warmup: usize,
        count: usize,
    ) -> Result<Samples> {
        let mut samples = Samples::new();
        for i in 0..warmup + count {
            let id = json!(i);
            let command = qmp::message::command(command_name, None, Some(id.clone()));
            let start = Instant::now();
            let reply = self.execute(&command, &id).await?;
            let took = start.elapsed();
            if reply.get("return").is_none() {
                return Err(format!("{command_name} failed: {reply}").into());
            }
            if i >= warmup {
                samples.push(took);
            }
        }
        Ok(samples)
    }

    /// Closes politely (a websocket close frame, or shutting the socket down).
    pub async fn close(self) {
        match self.transport {
            Transport::Unix(mut s) => {
                let _ = s.shutdown().await;
            }
            Transport::Ws(mut ws, _) => {
                let close = WebSocketStream::close(&mut *ws, None);
                let _ = tokio::time::timeout(Duration::from_secs(2), close).await;
            }
        }
    }
}

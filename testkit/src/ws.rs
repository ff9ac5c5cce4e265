//! A websocket client that speaks QMP one message per frame, as the browser app does.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Any byte stream a websocket can run over (TCP, TLS over TCP).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

use crate::qmp_client::QmpClient;
use crate::Result;

fn request(
    url: &str,
    headers: &[(&str, &str)],
) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request> {
    let mut request = url.into_client_request()?;
    for (k, v) in headers {
        request.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes())?,
            v.parse()?,
        );
    }
    Ok(request)
}

/// What the bridge sent next.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Text(String),
    Closed { code: u16, reason: String },
}

pub struct QmpWs {
    ws: WebSocketStream<Box<dyn Io>>,
    /// Events seen while waiting for replies.
    pub events: Vec<Value>,
    /// How long a receive waits.
    pub timeout: Duration,
}

/// The HTTP status an upgrade request to `url` with `headers` gets: 101 when accepted.
pub async fn upgrade_status(url: &str, headers: &[(&str, &str)]) -> Result<u16> {
    match QmpWs::connect_with(url, headers).await {
        Ok(ws) => {
            let _ = ws.close().await;
            Ok(101)
        }
        Err(e) => match e.downcast_ref::<tokio_tungstenite::tungstenite::Error>() {
            Some(tokio_tungstenite::tungstenite::Error::Http(resp)) => Ok(resp.status().as_u16()),
            _ => Err(e),
        },
    }
}

impl QmpClient for QmpWs {
    async fn recv_json(&mut self) -> Result<Value> {
        QmpWs::recv_json(self).await
    }
    async fn send_text(&mut self, text: &str) -> Result<()> {
        QmpWs::send_text(self, text).await
    }
    fn events(&mut self) -> &mut Vec<Value> {
        &mut self.events
    }
}

impl std::fmt::Debug for QmpWs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QmpWs")
            .field("events", &self.events.len())
            .finish()
    }
}

impl QmpWs {
    /// Connects and completes the QMP handshake (greeting, `qmp_capabilities`).
    pub async fn open(url: &str) -> Result<QmpWs> {
        let mut ws = QmpWs::connect(url).await?;
        ws.handshake().await?;
        Ok(ws)
    }

    pub async fn connect(url: &str) -> Result<QmpWs> {
        QmpWs::connect_with(url, &[]).await
    }

    /// Connects with extra request headers (e.g. `Origin`).
    pub async fn connect_with(url: &str, headers: &[(&str, &str)]) -> Result<QmpWs> {
        let request = request(url, headers)?;
        let authority = request
            .uri()
            .authority()
            .ok_or("no host in the URL")?
            .to_string();
        let tcp = TcpStream::connect(&authority).await?;
        tcp.set_nodelay(true)?;
        let (ws, _) =
            tokio_tungstenite::client_async(request, Box::new(tcp) as Box<dyn Io>).await?;
        Ok(QmpWs::from_stream(ws))
    }

    /// Connects over an already established stream (TLS, say) to the server it leads to.
    pub async fn connect_over(stream: impl Io + 'static, url: &str) -> Result<QmpWs> {
        let (ws, _) =
            tokio_tungstenite::client_async(request(url, &[])?, Box::new(stream) as Box<dyn Io>)
                .await?;
        Ok(QmpWs::from_stream(ws))
    }

    fn from_stream(ws: WebSocketStream<Box<dyn Io>>) -> QmpWs {
        QmpWs {
            ws,
            events: Vec::new(),
            timeout: Duration::from_secs(15),
        }
    }

    pub async fn send_text(&mut self, text: &str) -> Result<()> {
        self.ws.send(Message::text(text)).await?;
        Ok(())
    }

    pub async fn send_binary(&mut self, bytes: &[u8]) -> Result<()> {
        self.ws.send(Message::binary(bytes.to_vec())).await?;
        Ok(())
    }

    /// The next text frame or the close, skipping pings.
    pub async fn recv(&mut self) -> Result<Incoming> {
        // one deadline for the whole call: pings must not keep extending it
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .map_err(|_| format!("nothing received within {:?}", self.timeout))?;
            match next {
                None => return Err("websocket ended without a close frame".into()),
                Some(Err(e)) => return Err(format!("websocket error: {e}").into()),
                Some(Ok(Message::Text(t))) => return Ok(Incoming::Text(t.as_str().to_owned())),
                Some(Ok(Message::Binary(b))) => {
                    return Ok(Incoming::Text(String::from_utf8(b.to_vec())?))
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.as_str().to_owned()))
                        .unwrap_or((1005, String::new()));
                    return Ok(Incoming::Closed { code, reason });
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The next message as JSON; a close is an error carrying its reason.
    pub async fn recv_json(&mut self) -> Result<Value> {
        match self.recv().await? {
            Incoming::Text(t) => Ok(serde_json::from_str(&t)?),
            Incoming::Closed { code, reason } => Err(format!("closed {code}: {reason}").into()),
        }
    }

    /// Reads until the close frame; returns the text frames before it, and the close.
    pub async fn until_close(&mut self) -> Result<(Vec<String>, u16, String)> {
        let mut texts = Vec::new();
        loop {
            match self.recv().await? {
                Incoming::Text(t) => texts.push(t),
                Incoming::Closed { code, reason } => return Ok((texts, code, reason)),
            }
        }
    }

    /// Closes from this side.
    pub async fn close(mut self) -> Result<()> {
        self.ws.close(None).await?;
        Ok(())
    }
}

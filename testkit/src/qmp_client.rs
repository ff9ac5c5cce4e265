//! The QMP conversation a test has with the bridge, whatever carries it (a websocket, the
//! shared Unix socket): handshake, commands matched to replies by id, events kept aside.

use serde_json::{json, Value};

use crate::Result;

#[allow(async_fn_in_trait)]
pub trait QmpClient {
    /// The next message; a closed connection is an error.
    async fn recv_json(&mut self) -> Result<Value>;
    async fn send_text(&mut self, text: &str) -> Result<()>;
    /// Events seen while waiting for replies.
    fn events(&mut self) -> &mut Vec<Value>;

    /// Reads the greeting and negotiates capabilities; returns the greeting.
    async fn handshake(&mut self) -> Result<Value> {
        let greeting = self.recv_json().await?;
        if greeting.get("QMP").is_none() {
            return Err(format!("expected a greeting, got {greeting}").into());
        }
        let reply = self
            .execute("qmp_capabilities", None, json!("caps"))
            .await?;
        if reply.get("return").is_none() {
            return Err(format!("negotiation failed: {reply}").into());
        }
        Ok(greeting)
    }

    /// Sends a command and returns the reply carrying `id`.
    async fn execute(&mut self, name: &str, args: Option<Value>, id: Value) -> Result<Value> {
        let cmd = qmp::message::command(name, args, Some(id.clone()));
        self.send_text(&cmd).await?;
        self.reply_to(&id).await
    }

    /// Reads until the reply carrying `id`; any other reply is an error.
    async fn reply_to(&mut self, id: &Value) -> Result<Value> {
        loop {
            let msg = self.recv_json().await?;
            if msg.get("event").is_some() {
                self.events().push(msg);
            } else if msg.get("id") == Some(id) {
                return Ok(msg);
            } else {
                return Err(format!("unexpected message while waiting for {id}: {msg}").into());
            }
        }
    }

    /// Reads until an event named `name` (also looking at events already seen).
    async fn event(&mut self, name: &str) -> Result<Value> {
        if let Some(pos) = self.events().iter().position(|e| e["event"] == name) {
            return Ok(self.events().remove(pos));
        }
        loop {
            let msg = self.recv_json().await?;
            if msg["event"] == name {
                return Ok(msg);
            }
            if msg.get("event").is_some() {
                self.events().push(msg);
            } else {
                return Err(format!("unexpected message while waiting for {name}: {msg}").into());
            }
        }
    }
}

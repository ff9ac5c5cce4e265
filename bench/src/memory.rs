//! Resident memory of a relay process holding many idle sessions.
//!
//! Each session connects, gets the greeting through the relay, negotiates, then sits idle:
//! what an open but unused console tab costs. Sessions open in batches so no listen
//! backlog overflows.

use std::time::Duration;

use futures_util::future::try_join_all;

use crate::client::Conn;
use crate::tools::{rss_bytes, Relay};
use testkit::Result;

#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// RSS after one session came and went (code paths faulted in), none open.
    pub before: u64,
    /// RSS with `sessions` idle sessions open.
    pub with: u64,
    pub sessions: usize,
}

impl Memory {
    pub fn per_session(&self) -> f64 {
        (self.with as f64 - self.before as f64) / self.sessions.max(1) as f64
    }
}

pub async fn idle_sessions(relay: &Relay, sessions: usize) -> Result<Memory> {
    let pid = relay.pid().ok_or("the direct socket has no process")?;
    Conn::open(&relay.endpoint).await?.close().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_bytes(pid)?;
    let mut open = Vec::with_capacity(sessions);
    while open.len() < sessions {
        let batch = (sessions - open.len()).min(50);
        let conns = try_join_all((0..batch).map(|_| Conn::open(&relay.endpoint))).await?;
        open.extend(conns);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let with = rss_bytes(pid)?;
    for conn in open {
        conn.close().await;
    }
    Ok(Memory {
        before,
        with,
        sessions,
    })
}

//! Round-trip latency: one command at a time, send to reply, on one connection per tool.
//!
//! Noise from a shared machine must spread over all tools instead of landing on whichever
//! ran last, so the tools take turns (direct, bridge, websocat, websockify, direct, ...),
//! each turn a short block of round trips whose first few are thrown away. Blocks, not
//! single round trips: a relay still busy finishing one reply (a flush, a Python loop)
//! would otherwise slow the next tool's round trip.
//!
//! A real QEMU serves one client at a time, so there each turn opens a fresh connection
//! ([`Connections::PerTurn`]); the minimal peer serves all at once and each tool keeps
//! one connection for the whole run ([`Connections::Kept`]).

use std::collections::HashMap;
use std::time::Duration;

use crate::client::Conn;
use crate::stats::Samples;
use crate::tools::{Relay, Tool};

/// Per tool: its samples, or why it could not be measured.
pub type Outcome = HashMap<Tool, Result<Samples, String>>;

#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Round trips kept per tool, over all turns.
    pub count: usize,
    /// Round trips thrown away at the start of each turn.
    pub warmup: usize,
    /// Turns per tool.
    pub rounds: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connections {
    /// A fresh connection each turn, closed after it (an upstream with one client at a time).
    PerTurn,
    /// One connection per tool for the whole run.
    Kept,
}

pub async fn interleaved(
    relays: &[Relay],
    command: &str,
    plan: Plan,
    connections: Connections,
) -> Outcome {
    let mut out: Outcome = relays
        .iter()
        .map(|r| (r.tool, Ok(Samples::new())))
        .collect();
    let mut kept: HashMap<Tool, Conn> = HashMap::new();
    let rounds = plan.rounds.max(1);
    for round in 0..rounds {
        let per_round = plan.count / rounds + usize::from(round < plan.count % rounds);
        for relay in relays {
            let Some(Ok(samples)) = out.get_mut(&relay.tool) else {
                continue;
            };
            let turn = async {
                let mut conn = match kept.remove(&relay.tool) {
                    Some(conn) => conn,
                    None => Conn::open(&relay.endpoint).await?,
                };
                let s = conn.round_trips(command, plan.warmup, per_round).await?;
                match connections {
                    Connections::Kept => {
                        kept.insert(relay.tool, conn);
                    }
                    Connections::PerTurn => {
                        conn.close().await;
                        // Let the upstream see this session end before the next connects.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                testkit::Result::Ok(s)
            };
            match turn.await {
                Ok(s) => samples.extend(s),
                Err(e) => {
                    out.insert(relay.tool, Err(format!("{}: {e}", relay.tool.name())));
                }
            }
        }
    }
    for (_, conn) in kept {
        conn.close().await;
    }
    out
}

//! Round-trip latency: one command at a time, send to reply, on one connection per tool.
//!
//! Noise from a shared machine must spread over all tools instead of landing on whichever
//! ran last, so they take turns:
//!
//! - [`interleaved`]: in rounds (direct, bridge, websocat, websockify, direct, ...), each
//!   round on a fresh connection. A real QEMU serves one client at a time; this respects it.
//! - [`alternating`]: every tool's connection open at once, one round trip each in turn.
//!   Finer grained, for an upstream that serves many clients (the minimal peer).

use std::collections::HashMap;
use std::time::Duration;

use crate::client::Conn;
use crate::stats::Samples;
use crate::tools::{Relay, Tool};

/// Per tool: its samples, or why it could not be measured.
pub type Outcome = HashMap<Tool, Result<Samples, String>>;

#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Round trips kept per tool, over all rounds.
    pub count: usize,
    /// Round trips thrown away at the start of each round.
    pub warmup: usize,
    pub rounds: usize,
}

pub async fn interleaved(relays: &[Relay], command: &str, plan: Plan) -> Outcome {
    let mut out: Outcome = relays.iter().map(|r| (r.tool, Ok(Samples::new()))).collect();
    let rounds = plan.rounds.max(1);
    for round in 0..rounds {
        let per_round = plan.count / rounds + usize::from(round < plan.count % rounds);
        for relay in relays {
            let Some(Ok(samples)) = out.get_mut(&relay.tool) else { continue };
            match one_round(relay, command, plan.warmup, per_round).await {
                Ok(s) => samples.extend(s),
                Err(e) => {
                    out.insert(relay.tool, Err(e));
                }
            }
            // Let the upstream see the last session end before the next one connects.
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
    out
}

pub async fn alternating(relays: &[Relay], command: &str, plan: Plan) -> Outcome {
    let mut out = Outcome::new();
    let mut conns = Vec::new();
    for relay in relays {
        match Conn::open(&relay.endpoint).await {
            // One long connection per tool: warm it as much as all the rounds would.
            Ok(mut conn) => match conn.round_trips(command, plan.warmup * 10, 0).await {
                Ok(_) => conns.push((relay.tool, conn, Samples::new())),
                Err(e) => {
                    out.insert(relay.tool, Err(format!("{}: {e}", relay.tool.name())));
                }
            },
            Err(e) => {
                out.insert(relay.tool, Err(format!("{}: {e}", relay.tool.name())));
            }
        }
    }
    for _ in 0..plan.count {
        let mut failed = Vec::new();
        for (i, (tool, conn, samples)) in conns.iter_mut().enumerate() {
            match conn.round_trips(command, 0, 1).await {
                Ok(s) => samples.extend(s),
                Err(e) => {
                    out.insert(*tool, Err(format!("{}: {e}", tool.name())));
                    failed.push(i);
                }
            }
        }
        for i in failed.into_iter().rev() {
            conns.remove(i);
        }
    }
    for (tool, conn, samples) in conns {
        conn.close().await;
        out.insert(tool, Ok(samples));
    }
    out
}

async fn one_round(relay: &Relay, command: &str, warmup: usize, count: usize) -> Result<Samples, String> {
    let run = async {
        let mut conn = Conn::open(&relay.endpoint).await?;
        let samples = conn.round_trips(command, warmup, count).await?;
        conn.close().await;
        testkit::Result::Ok(samples)
    };
    run.await.map_err(|e| format!("{}: {e}", relay.tool.name()))
}

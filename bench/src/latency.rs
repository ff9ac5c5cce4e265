//! Round-trip latency: one command at a time, send to reply, on one connection per tool.
//!
//! Tools take turns in rounds (direct, bridge, websocat, websockify, direct, ...), each
//! round on a fresh connection, so noise from a shared machine spreads over all of them
//! instead of landing on whichever ran last. A real QEMU serves one client at a time, which
//! the turns respect too.

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

async fn one_round(relay: &Relay, command: &str, warmup: usize, count: usize) -> Result<Samples, String> {
    let run = async {
        let mut conn = Conn::open(&relay.endpoint).await?;
        let samples = conn.round_trips(command, warmup, count).await?;
        conn.close().await;
        testkit::Result::Ok(samples)
    };
    run.await.map_err(|e| format!("{}: {e}", relay.tool.name()))
}

//! Events per second relayed to clients: the minimal peer writes events as fast as its
//! socket takes them and the client counts whole messages until it has them all.

use std::time::Instant;

use serde_json::json;

use crate::client::{Conn, Endpoint};
use crate::peer::FLOOD_COMMAND;
use crate::stats::median;
use testkit::Result;

/// Median events/s over `runs` floods of `count` events to one client, after a warm-up.
pub async fn one_client(endpoint: &Endpoint, count: u64, runs: usize) -> Result<f64> {
    let mut conn = Conn::open(endpoint).await?;
    flood(&mut [&mut conn], count / 10).await?;
    let mut rates = Vec::new();
    for _ in 0..runs.max(1) {
        rates.push(flood(&mut [&mut conn], count).await?);
    }
    conn.close().await;
    median(&rates).ok_or_else(|| "no flood finished".into())
}

/// `clients` sessions; the first asks for a flood of `count` events, and every client
/// counts them (in shared mode each sees all). Returns events delivered per second, summed
/// over all clients.
pub async fn fan_out(endpoint: &Endpoint, clients: usize, count: u64) -> Result<f64> {
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        conns.push(Conn::open(endpoint).await?);
    }
    let mut refs: Vec<&mut Conn> = conns.iter_mut().collect();
    let per_client = flood(&mut refs, count).await?;
    for conn in conns {
        conn.close().await;
    }
    Ok(per_client * clients as f64)
}

/// Asks `conns[0]` for `count` events, reads them on every connection, and returns the
/// rate at which the slowest connection received them.
async fn flood(conns: &mut [&mut Conn], count: u64) -> Result<f64> {
    let (first, _) = conns.split_first_mut().ok_or("no connection")?;
    let id = json!("flood");
    let command = qmp::message::command(FLOOD_COMMAND, Some(json!({ "count": count })), Some(id));
    let start = Instant::now();
    first.send(&command).await?;
    let readers = conns.iter_mut().map(|conn| count_events(conn, count));
    futures_util::future::try_join_all(readers).await?;
    Ok(count as f64 / start.elapsed().as_secs_f64())
}

/// Reads until `count` events have arrived.
async fn count_events(conn: &mut Conn, count: u64) -> Result<()> {
    let mut seen = 0;
    while seen < count {
        let text = conn.recv().await?;
        if text.starts_with("{\"event\"") {
            seen += 1;
        }
    }
    Ok(())
}

//! The bench's own parts against each other: the minimal peer answers the measuring
//! client's round trips and floods. No timing is asserted; figures are the bench's job.

use qmp_bench::client::{Conn, Endpoint};
use qmp_bench::peer::{MinimalPeer, PeerOptions};
use qmp_bench::throughput;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_and_floods_through_the_minimal_peer() -> testkit::Result<()> {
    let peer = MinimalPeer::start(PeerOptions::default())?;
    let endpoint = Endpoint::Unix(peer.path().to_owned());
    let mut conn = Conn::open(&endpoint).await?;
    let samples = conn.round_trips("query-status", 5, 50).await?;
    assert_eq!(samples.len(), 50);
    conn.close().await;

    let rate = throughput::one_client(&endpoint, 2_000, 2).await?;
    assert!(rate.is_finite() && rate > 0.0, "{rate}");
    assert_eq!(peer.accepted(), 2);
    Ok(())
}

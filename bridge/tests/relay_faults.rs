//! The relay against a scripted fake QMP peer: faults a real QEMU does not produce on
//! demand. Each test also checks the bridge stays healthy for the next client.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use testkit::fake_peer::{PeerConn, GREETING};
use testkit::QmpClient;
use testkit::{FakePeer, QmpWs};

const PRETTY_EVENT: &str = "{\n    \"timestamp\": {\n        \"seconds\": 1700000000,\n        \"microseconds\": 1\n    },\n    \"event\": \"STOP\"\n}\n";

/// Greeting, a pretty-printed event, then an echo of every command.
async fn greet_pretty_then_echo(mut c: PeerConn) -> testkit::Result<()> {
    c.send(GREETING.as_bytes()).await?;
    c.send(PRETTY_EVENT.as_bytes()).await?;
    c.echo_returns().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pretty_printed_messages_arrive_whole() -> testkit::Result<()> {
    let peer = FakePeer::start(greet_pretty_then_echo).await?;
    let bridge = common::start(common::settings(&peer.target())).await;
    let mut ws = QmpWs::connect(&bridge.ws_url()).await?;
    assert!(ws.recv_json().await?.get("QMP").is_some());
    let ev = ws.recv_json().await?;
    assert_eq!(ev["event"], "STOP");
    assert_eq!(ws.execute("x", None, json!(5)).await?["id"], 5);
    Ok(())
}

/// The bytes of a greeting, a reply and an event, split at `cut`, with a pause between.
fn split_stream() -> String {
    format!("{GREETING}{{\"return\": {{\"s\": \"}}{{\\\"\"}}, \"id\": 1}}\r\n{PRETTY_EVENT}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_split_at_every_byte_boundary() -> testkit::Result<()> {
    let stream = split_stream();
    let cut = Arc::new(AtomicUsize::new(0));
    let c2 = cut.clone();
    let s2 = stream.clone();
    let peer = FakePeer::start(move |mut c: PeerConn| {
        let at = c2.load(Ordering::SeqCst);
        let bytes = s2.clone().into_bytes();
        async move {
            c.send(&bytes[..at]).await?;
            tokio::time::sleep(Duration::from_millis(2)).await;
            c.send(&bytes[at..]).await?;
            c.echo_returns().await
        }
    })
    .await?;
    let bridge = common::start(common::settings(&peer.target())).await;
    for at in 0..=stream.len() {
        cut.store(at, Ordering::SeqCst);
        let mut ws = QmpWs::connect(&bridge.ws_url()).await?;
        let got = [
            ws.recv_json().await?,
            ws.recv_json().await?,
            ws.recv_json().await?,
        ];
        assert!(got[0].get("QMP").is_some(), "cut {at}: {got:?}");
        assert_eq!(
            got[1],
            json!({"return": {"s": "}{\""}, "id": 1}),
            "cut {at}"
        );
        assert_eq!(got[2]["event"], "STOP", "cut {at}");
        ws.close().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_byte_per_write_and_many_messages_per_write() -> testkit::Result<()> {
    let peer = FakePeer::start(|mut c: PeerConn| async move {
        for b in GREETING.bytes() {
            c.send(&[b]).await?;
        }
        let burst: String = (0..1000)
            .map(|i| format!("{{\"event\": \"E\", \"data\": {{\"n\": {i}}}, \"timestamp\": {{\"seconds\": 1, \"microseconds\": 0}}}}\r\n"))
            .collect();
        c.send(burst.as_bytes()).await?;
        c.echo_returns().await
    })
    .await?;
    let bridge = common::start(common::settings(&peer.target())).await;
    let mut ws = QmpWs::connect(&bridge.ws_url()).await?;
    assert!(ws.recv_json().await?.get("QMP").is_some());
    for i in 0..1000 {
        let ev = ws.recv_json().await?;
        assert_eq!(ev["data"]["n"], i, "event order");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_closes_with_a_reason_and_the_bridge_stays_up() -> testkit::Result<()> {
    let peer = FakePeer::start(|mut c: PeerConn| async move {
        c.send(GREETING.as_bytes()).await?;
        c.send(b"{\"return\": {}, \"id\": 1}\r\nthis is not json\r\n")
            .await?;
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok(())
    })
    .await?;
    let bridge = common::start(common::settings(&peer.target())).await;
    for _ in 0..2 {
        let mut ws = QmpWs::connect(&bridge.ws_url()).await?;
        let (texts, code, reason) = ws.until_close().await?;
        assert_eq!(
            texts.len(),
            2,
            "greeting and the valid reply come first: {texts:?}"
        );
        assert_eq!(code, 1011);
        assert!(reason.contains("not speaking QMP"), "{reason}");
        assert!(bridge.healthy());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_vanishing_mid_message_is_reported() -> testkit::Result<()> {
    let peer = FakePeer::start(|mut c: PeerConn| async move {
        c.send(GREETING.as_bytes()).await?;
        c.send(b"{\"return\": {\"status\": \"runn").await?;
        Ok(()) // dropping the connection: the peer is gone
    })
    .await?;
    let bridge = common::start(common::settings(&peer.target())).await;
    let mut ws = QmpWs::connect(&bridge.ws_url()).await?;
    let (texts, code, reason) = ws.until_close().await?;
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert_eq!(code, 1000);
    assert!(reason.contains("in the middle of a message"), "{reason}");
    assert!(bridge.healthy());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_over_the_limit_closes_cleanly() -> testkit::Result<()> {
    let peer = FakePeer::start(|mut c: PeerConn| async move {
        c.send(GREETING.as_bytes()).await?;
        let huge = format!(
            "{{\"return\": \"{}\", \"id\": 1}}\r\n",
            "x".repeat(32 << 20)
        );
        let _ = c.send(huge.as_bytes()).await; // the bridge hangs up part way
        Ok(())
    })
    .await?;
    let bridge = common::start(common::settings(&peer.target())).await;
    let mut ws = QmpWs::connect(&bridge.ws_url()).await?;
    let (texts, code, reason) = ws.until_close().await?;
    assert_eq!(texts.len(), 1);
    assert_eq!(code, 1009);
    assert!(reason.contains("limit"), "{reason}");
    assert!(bridge.healthy());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greeting_timing_decides_busy() -> testkit::Result<()> {
    // A peer that greets after 300 ms is fine; one that never greets is "busy".
    let slow = FakePeer::start(|mut c: PeerConn| async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.send(GREETING.as_bytes()).await?;
        c.echo_returns().await
    })
    .await?;
    let mute = FakePeer::start(|c: PeerConn| async move {
        let _held = c; // accepted, never greets
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(())
    })
    .await?;
    let mut s = common::settings(&slow.target());
    s.greeting_timeout = Duration::from_secs(1);
    let bridge = common::start(s.clone()).await;
    let _ws = QmpWs::open(&bridge.ws_url()).await?;

    s.target = mute.target().parse()?;
    let bridge = common::start(s).await;
    let mut ws = QmpWs::connect(&bridge.ws_url()).await?;
    let started = std::time::Instant::now();
    let (_, code, reason) = ws.until_close().await?;
    assert_eq!(code, 1013);
    assert!(reason.contains("busy"), "{reason}");
    assert!(started.elapsed() < Duration::from_secs(10));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_upstream_names_the_target() -> testkit::Result<()> {
    let peer = FakePeer::start(greet_pretty_then_echo).await?;
    let target = peer.target();
    drop(peer); // removes the socket
    let bridge = common::start(common::settings(&target)).await;
    let mut ws = QmpWs::connect(&bridge.ws_url()).await?;
    let (_, code, reason) = ws.until_close().await?;
    assert_eq!(code, 1011);
    assert!(reason.contains(&target), "{reason}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_sessions_each_get_their_own_replies() -> testkit::Result<()> {
    // Each upstream connection answers with its own serial, so a misrouted reply shows.
    let serial = Arc::new(AtomicUsize::new(0));
    let peer = FakePeer::start(move |mut c: PeerConn| {
        let me = serial.fetch_add(1, Ordering::SeqCst);
        async move {
            c.send(GREETING.as_bytes()).await?;
            while let Some(cmd) = c.recv().await? {
                let reply = json!({ "return": { "upstream": me, "echo": cmd["arguments"] }, "id": cmd["id"] });
                c.send(format!("{reply}\r\n").as_bytes()).await?;
            }
            Ok(())
        }
    })
    .await?;
    let bridge = common::start(common::settings(&peer.target())).await;
    let url = bridge.ws_url();
    let mut tasks = Vec::new();
    for client in 0..200u64 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut ws = QmpWs::connect(&url).await?;
            ws.recv_json().await?; // greeting
            let mut upstream: Option<Value> = None;
            for n in 0..5u64 {
                let reply = ws
                    .execute("echo", Some(json!({ "client": client, "n": n })), json!(n))
                    .await?;
                assert_eq!(reply["return"]["echo"], json!({ "client": client, "n": n }));
                let up = reply["return"]["upstream"].clone();
                // every reply of one session comes from that session's own upstream
                assert_eq!(upstream.get_or_insert(up.clone()), &up);
            }
            ws.close().await?;
            testkit::Result::Ok(upstream)
        }));
    }
    let mut upstreams = std::collections::HashSet::new();
    for t in tasks {
        let up = t.await??.ok_or("no upstream")?;
        assert!(
            upstreams.insert(up.to_string()),
            "two sessions shared upstream {up}"
        );
    }
    assert_eq!(upstreams.len(), 200);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_that_stops_reading_is_cut_off() -> testkit::Result<()> {
    let (gone_tx, mut gone_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let peer = FakePeer::start(move |mut c: PeerConn| {
        let gone_tx = gone_tx.clone();
        async move {
            c.send(GREETING.as_bytes()).await?;
            let event = format!(
                "{{\"event\": \"BIG\", \"data\": {{\"pad\": \"{}\"}}, \"timestamp\": {{\"seconds\": 1, \"microseconds\": 0}}}}\r\n",
                "p".repeat(64 * 1024)
            );
            let mut sent = 0;
            // flood until the bridge hangs up on us
            while c.send(event.as_bytes()).await.is_ok() {
                sent += event.len();
                if sent > 2 << 30 {
                    break;
                }
            }
            let _ = gone_tx.send(sent);
            Ok(())
        }
    })
    .await?;
    let mut s = common::settings(&peer.target());
    s.send_timeout = Duration::from_millis(500);
    let bridge = common::start(s).await;
    let ws = QmpWs::connect(&bridge.ws_url()).await?; // and never read from it
    let sent = tokio::time::timeout(Duration::from_secs(20), gone_rx.recv())
        .await
        .map_err(|_| "the bridge kept the stalled session open")?
        .ok_or("peer script ended")?;
    assert!(
        sent < 1 << 30,
        "the bridge accepted {sent} bytes for a stalled browser"
    );
    assert!(bridge.healthy());
    drop(ws);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_answers_no_pings_is_let_go() -> testkit::Result<()> {
    let (gone_tx, mut gone_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let peer = FakePeer::start(move |mut c: PeerConn| {
        let gone_tx = gone_tx.clone();
        async move {
            c.send(GREETING.as_bytes()).await?;
            c.echo_returns().await?; // until the bridge closes the upstream
            let _ = gone_tx.send(());
            Ok(())
        }
    })
    .await?;
    let mut s = common::settings(&peer.target());
    s.ping_interval = Duration::from_millis(300);
    let bridge = common::start(s).await;
    // a client that never reads, so never answers the bridge's pings
    let silent = QmpWs::connect(&bridge.ws_url()).await?;
    tokio::time::timeout(Duration::from_secs(10), gone_rx.recv())
        .await
        .map_err(|_| "the bridge kept a silent client's session open")?;
    drop(silent);
    // a client that keeps talking (and so answers pings) stays, well past two intervals
    let mut alive = QmpWs::connect(&bridge.ws_url()).await?;
    alive.recv_json().await?;
    for n in 0..10 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(alive
            .execute("x", None, json!(n))
            .await?
            .get("return")
            .is_some());
    }
    Ok(())
}

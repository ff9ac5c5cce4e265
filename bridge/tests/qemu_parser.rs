//! QEMU's own parser as the oracle for what the bridge forwards: every frame the bridge
//! accepts is one command to QEMU, the one the policy saw, in both modes. Hostile frames
//! (token counts around every limit, deep nesting, huge strings, escapes, numbers, two
//! objects, smuggled tails) each get exactly one reply with the client's id and nothing
//! else, and a read-only bridge never changes the VM (checked from another session and by
//! a file a smuggled `migrate exec:` would create). Also: `oob` only with `--allow-oob`,
//! ids returned byte for byte, large commands do not hold up other clients, a command
//! QEMU does not answer gets its client a notice, a reply without an id is never given to
//! anyone.

mod common;

use std::path::Path;
use std::time::Duration;

use qmp_bridge::policy::Policy;
use qmp_bridge::server::Mode;
use serde_json::{json, Value};
use testkit::fake_peer::{PeerConn, GREETING};
use testkit::ws::Incoming;
use testkit::{FakePeer, Qemu, QmpClient, QmpWs, TempDir};

/// A bridge on `qemu` in `mode` with `policy`, commands up to `max_command_bytes`.
async fn bridge(
    target: &str,
    mode: Mode,
    policy: Policy,
    max_command_bytes: usize,
) -> common::TestBridge {
    let mut settings = common::settings(target);
    settings.policy = policy;
    settings.max_command_bytes = max_command_bytes;
    common::start_with(common::config_in(mode, settings)).await
}

fn read_only() -> Policy {
    Policy {
        read_only: true,
        ..Policy::default()
    }
}

/// The exploit of the security review: a query whose arguments hold QEMU's token limit
/// in zeros, then commands QEMU would read as new top-level ones once it gives up.
fn smuggled_tail(id: &str, zeros: usize, file: &Path) -> String {
    format!(
        r#"{{"execute":"query-status","id":"{id}","arguments":{{"a":[{}{{"execute":"cont"}},{{"execute":"migrate","arguments":{{"uri":"exec:touch {}"}}}}]}}}}"#,
        "0,".repeat(zeros),
        file.display()
    )
}

/// Exactly one message answers: a reply (no event first) with `id`.
async fn one_reply(ws: &mut QmpWs, id: &str) -> testkit::Result<Value> {
    let reply = ws.recv_json().await?;
    assert_eq!(
        reply["id"],
        json!(id),
        "the reply carries the client's id: {reply}"
    );
    assert!(
        reply.get("return").is_some() || reply.get("error").is_some(),
        "{reply}"
    );
    Ok(reply)
}

/// Nothing else came before the answer to a fresh query (no second reply, no smuggled
/// command's reply).
async fn nothing_else(ws: &mut QmpWs, n: usize) -> testkit::Result<()> {
    let sentinel = format!("sentinel-{n}");
    ws.send_text(&qmp::message::command(
        "query-status",
        None,
        Some(json!(sentinel)),
    ))
    .await?;
    let next = ws.recv_json().await?;
    assert_eq!(
        next["id"],
        json!(sentinel),
        "a frame brought more than one reply: {next}"
    );
    Ok(())
}

async fn status(ws: &mut QmpWs, id: &str) -> testkit::Result<Value> {
    let reply = ws.execute("query-status", None, json!(id)).await?;
    Ok(reply["return"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smuggled_tail_runs_nothing_in_either_mode() -> testkit::Result<()> {
    let dir = TempDir::new("smuggle")?;
    let deny = Policy {
        deny: vec!["stop".into(), "cont".into(), "migrate".into()],
        ..Policy::default()
    };
    for mode in [Mode::Shared, Mode::Relay] {
        for (policy, limit) in [
            (read_only(), qmp_bridge::session::DEFAULT_MAX_COMMAND_BYTES),
            (read_only(), 16 << 20),
            (deny.clone(), 16 << 20),
        ] {
            let qemu = Qemu::start()?;
            let b = bridge(&qemu.target(), mode, policy, limit).await;
            let mut ws = QmpWs::open(&b.ws_url()).await?;
            let file = dir.path().join(format!("pwned-{mode:?}-{limit}"));
            ws.send_text(&smuggled_tail("a", 1 << 20, &file)).await?;
            let reply = one_reply(&mut ws, "a").await?;
            let desc = reply["error"]["desc"].as_str().unwrap_or_default();
            assert!(
                desc.contains("--max-command-bytes") || desc.contains("JSON tokens"),
                "{mode:?}: {reply}"
            );
            nothing_else(&mut ws, 0).await?;
            let st = status(&mut ws, "st").await?;
            assert_eq!(st["running"], json!(false), "{mode:?}: the VM was resumed");
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert!(!file.exists(), "{mode:?}: the smuggled migrate ran");
            drop(ws);
            b.stop().await?;
        }
    }
    Ok(())
}

/// Hostile frames, each starting `{"id":"c-N",` so a reply can always carry the id.
fn corpus(pwned: &Path) -> Vec<String> {
    let q = |rest: &str| format!(r#""execute":"query-status"{rest}"#);
    let args = |payload: String| q(&format!(r#","arguments":{{"a":{payload}}}}}"#));
    let zeros = |n: usize| format!("[{}0]", "0,".repeat(n));
    let nest = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
    let mut bodies = vec![
        // token counts: well inside, at the bridge's limit, at QEMU's
        args(zeros(1000)),
        args(zeros(qmp::inbound::MAX_TOKENS / 2 - 8)),
        args(zeros(qmp::inbound::MAX_TOKENS / 2 + 8)),
        args(zeros((1 << 21) + 3)),
        // nesting around the bridge's limit and QEMU's
        args(nest(60)),
        args(nest(qmp::inbound::MAX_DEPTH)),
        args(nest(1023)),
        args(nest(1025)),
        args(format!("{}{{}}", "{\"x\":".repeat(2000))),
        // strings: huge, escapes QEMU reads otherwise, escapes both read alike
        args(format!("\"{}\"", "s".repeat(100_000))),
        args(r#""\u0000""#.into()),
        args(r#""\ufdd0""#.into()),
        args(r#""\uffff""#.into()),
        args("\"\u{fdd1}\"".into()),
        args(r#""\ud800""#.into()),
        args(r#""\udc00\ud800""#.into()),
        args(r#""\ud83d\ude00 \u00e9 \/ \b\f\n\r\t""#.into()),
        args(r#""\x41""#.into()),
        args(r#""\'""#.into()),
        args("'single'".into()),
        args("\"raw\ttab\"".into()),
        args("%d".into()),
        args("/* comment */ 1".into()),
        // numbers
        args("-0".into()),
        args("-0.0".into()),
        args("1e400".into()),
        args("123456789012345678901234567890".into()),
        args("-9223372036854775809".into()),
        args("18446744073709551616".into()),
        args("0.1".into()),
        args("1E2".into()),
        args("01".into()),
        args(".5".into()),
        args("+1".into()),
        args("NaN".into()),
        args("Infinity".into()),
        // two objects and smuggled tails
        format!(r#"{}}}{{"execute":"cont"}}"#, q("")),
        format!("{}}}\n{{\"execute\":\"cont\"}}", q("")),
        format!(r#"{}}} {{"execute":"system_reset"}}"#, q("")),
        format!(r#"{}}}]"#, q("")),
        format!(r#"{}}}}}"#, q("")),
        format!(r#"{}}} x"#, q("")),
        format!(r#"{},"arguments":{{"a":[}}}}"#, q("")),
        format!(r#"{},"arguments":{{"a":"unterminated}}}}"#, q("")),
        format!(
            r#"{},"arguments":{{"a":[0,"]}}{{\"execute\":\"cont\"}}"]}}}}"#,
            q("")
        ),
        // members QEMU reads in its own way
        format!(r#"{},"execute":"cont"}}"#, q("")),
        format!(r#"{},"exec-oob":"cont"}}"#, q("")),
        format!(r#"{},"control":{{"run-oob":true}}}}"#, q("")),
        r#""execute":["cont"]}"#.into(),
        r#""arguments":{"execute":"cont"}}"#.into(),
        format!(r#"{},"arguments":[{{"execute":"cont"}}]}}"#, q("")),
        r#""execute":"query-status","arguments":{"a":1,"a":2}}"#.into(),
        format!(
            r#""execute":"transaction","arguments":{{"actions":[{{"type":"migrate","data":{{"uri":"exec:touch {}"}}}}]}}}}"#,
            pwned.display()
        ),
        r#""execute":"human-monitor-command","arguments":{"command-line":"cont"}}"#.into(),
    ];
    // the smuggled tail itself, at the bridge's and QEMU's token limits
    for zeros in [qmp::inbound::MAX_TOKENS, 1 << 20] {
        let full = smuggled_tail("x", zeros, pwned);
        bodies.push(full[1..].replacen(r#""id":"x","#, "", 1));
    }
    bodies
        .into_iter()
        .enumerate()
        .map(|(n, body)| format!(r#"{{"id":"c-{n}",{body}"#))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_frames_each_get_one_reply_and_change_nothing() -> testkit::Result<()> {
    let dir = TempDir::new("corpus")?;
    let pwned = dir.path().join("pwned");
    let frames = corpus(&pwned);
    for mode in [Mode::Shared, Mode::Relay] {
        let qemu = Qemu::start()?;
        let b = bridge(&qemu.target(), mode, read_only(), 16 << 20).await;
        let mut ws = QmpWs::open(&b.ws_url()).await?;
        ws.timeout = Duration::from_secs(30);
        for (n, frame) in frames.iter().enumerate() {
            ws.send_text(frame).await?;
            let reply = one_reply(&mut ws, &format!("c-{n}")).await.map_err(|e| {
                format!(
                    "{mode:?} frame {n} ({}...): {e}",
                    &frame[..frame.len().min(120)]
                )
            })?;
            assert!(
                reply.get("error").is_some(),
                "{mode:?} frame {n} is no valid query: {reply}"
            );
            nothing_else(&mut ws, n).await?;
        }
        let st = status(&mut ws, "end").await?;
        assert_eq!(st["status"], json!("prelaunch"), "{mode:?}: {st}");
        assert!(ws.events.is_empty(), "{mode:?}: events {:?}", ws.events);
        drop(ws);
        b.stop().await?;
        assert!(!pwned.exists(), "{mode:?}: a smuggled migrate ran");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oob_is_offered_only_with_allow_oob() -> testkit::Result<()> {
    let qemu = Qemu::start()?;
    for mode in [Mode::Shared, Mode::Relay] {
        let b = bridge(&qemu.target(), mode, Policy::default(), 64 << 10).await;
        let mut ws = QmpWs::connect(&b.ws_url()).await?;
        let greeting = ws.recv_json().await?;
        assert_eq!(greeting["QMP"]["capabilities"], json!([]), "{mode:?}");
        let caps = qmp::message::qmp_capabilities(&["oob"], Some(json!("c")));
        ws.send_text(&caps).await?;
        let reply = one_reply(&mut ws, "c").await?;
        assert!(
            reply["error"]["desc"]
                .as_str()
                .unwrap_or("")
                .contains("Out-Of-Band"),
            "{mode:?}: {reply}"
        );
        drop(ws);
        b.stop().await?;
    }

    // With --allow-oob: offered, negotiated, and a burst of pipelined commands (QEMU's
    // request queue holds 8) is answered in full.
    let mut settings = common::settings(&qemu.target());
    settings.allow_oob = true;
    let config = common::shared(settings, None);
    let b = common::start_with(config).await;
    let mut ws = QmpWs::connect(&b.ws_url()).await?;
    let greeting = ws.recv_json().await?;
    assert_eq!(greeting["QMP"]["capabilities"], json!(["oob"]));
    let caps = qmp::message::qmp_capabilities(&["oob"], Some(json!("c")));
    ws.send_text(&caps).await?;
    assert!(one_reply(&mut ws, "c").await?.get("return").is_some());
    ws.send_text(r#"{"exec-oob": "migrate-pause", "id": "oob"}"#)
        .await?;
    let reply = one_reply(&mut ws, "oob").await?;
    assert!(reply.get("error").is_some(), "not in postcopy: {reply}");
    for n in 0..64 {
        ws.send_text(&qmp::message::command("query-status", None, Some(json!(n))))
            .await?;
    }
    for n in 0..64 {
        one_reply_any(&mut ws, n).await?;
    }
    assert_eq!(
        status(&mut ws, "alive").await?["status"],
        json!("prelaunch")
    );
    Ok(())
}

async fn one_reply_any(ws: &mut QmpWs, n: u64) -> testkit::Result<()> {
    let reply = ws.recv_json().await?;
    assert_eq!(reply["id"], json!(n), "{reply}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_come_back_byte_for_byte() -> testkit::Result<()> {
    let qemu = Qemu::start()?;
    let b = bridge(&qemu.target(), Mode::Shared, read_only(), 64 << 10).await;
    let mut ws = QmpWs::open(&b.ws_url()).await?;
    for id in [
        "123456789012345678901234567890",
        r#""\u00e9t\u00e9""#,
        "1.50",
        r#"{"b": [1e2], "a": null}"#,
    ] {
        for execute in ["query-status", "stop"] {
            ws.send_text(&format!(r#"{{"execute": "{execute}", "id": {id}}}"#))
                .await?;
            let Incoming::Text(text) = ws.recv().await? else {
                panic!("closed")
            };
            assert!(
                text.contains(&format!(r#""id":{id}"#)),
                "{execute} {id}: {text}"
            );
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_commands_do_not_hold_up_another_client() -> testkit::Result<()> {
    let qemu = Qemu::start()?;
    let b = bridge(&qemu.target(), Mode::Shared, Policy::default(), 64 << 10).await;
    let mut big = QmpWs::open(&b.ws_url()).await?;
    let mut small = QmpWs::open(&b.ws_url()).await?;
    big.timeout = Duration::from_secs(30);
    // QEMU reads commands at a few hundred KB/s: each of these takes it about 0.2 s.
    let pad = "p".repeat(60_000);
    for n in 0..8 {
        let cmd = qmp::message::command(
            "query-status",
            Some(json!({ "pad": pad })),
            Some(json!(format!("big-{n}"))),
        );
        big.send_text(&cmd).await?;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    small.execute("query-name", None, json!("small")).await?;
    // The small client's reply came while most of the big ones were still to be read:
    // with one budget of bytes in flight per client, the big client had at most one of
    // its commands ahead of it (without, all eight).
    big.timeout = Duration::from_millis(100);
    let mut before = 0;
    while let Ok(reply) = big.recv_json().await {
        assert_eq!(reply["id"], json!(format!("big-{before}")), "{reply}");
        before += 1;
    }
    assert!(
        before <= 3,
        "the small client waited behind {before} big commands"
    );
    big.timeout = Duration::from_secs(30);
    for n in before..8 {
        assert_eq!(big.recv_json().await?["id"], json!(format!("big-{n}")));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_qemu_is_reported_to_the_client_and_healthz() -> testkit::Result<()> {
    let qemu = Qemu::start()?;
    let mut settings = common::settings(&qemu.target());
    settings.command_timeout = Duration::from_millis(500);
    let config = common::shared(settings, None);
    let b = common::start_with(config).await;
    let mut ws = QmpWs::open(&b.ws_url()).await?;
    let health = |b: &common::TestBridge| {
        testkit::http::get(&b.addr.to_string(), "/healthz", &[]).map(|r| r.text())
    };
    assert_eq!(health(&b)?, "ok: QMP connected\n");
    let signal = |sig: &str| {
        std::process::Command::new("kill")
            .args([sig, &qemu.pid().to_string()])
            .status()
    };
    signal("-STOP")?;
    ws.send_text(r#"{"execute": "query-status", "id": 123456789012345678901234567890}"#)
        .await?;
    let notice = ws.event(qmp_bridge::mux::STALL_EVENT).await;
    let stalled = health(&b);
    signal("-CONT")?;
    let notice = notice?;
    assert_eq!(notice["data"]["command"], json!("query-status"));
    assert!(notice["data"]["seconds"].as_u64().is_some(), "{notice}");
    assert!(notice["data"].get("id").is_some(), "{notice}");
    let stalled = stalled?;
    assert!(
        stalled.contains("stalled") && stalled.contains("query-status"),
        "{stalled}"
    );
    // the reply still follows, then the stall is over
    let Incoming::Text(reply) = ws.recv().await? else {
        panic!("closed")
    };
    assert!(
        reply.contains(r#""id":123456789012345678901234567890"#),
        "{reply}"
    );
    assert!(
        testkit::wait_until(Duration::from_secs(5), "the stall to clear", || {
            (health(&b).ok()? == "ok: QMP connected\n").then_some(())
        })
        .is_ok()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_without_an_id_goes_to_no_client() -> testkit::Result<()> {
    // A fault QEMU shows only when it cannot read what it was sent: a scripted peer.
    let peer = FakePeer::start(|mut c: PeerConn| async move {
        c.send(GREETING.as_bytes()).await?;
        while let Some(cmd) = c.recv().await? {
            let reply = if cmd["execute"] == "stop" {
                json!({"error": {"class": "GenericError", "desc": "JSON parse error, smuggled"}})
            } else {
                json!({"return": {}, "id": cmd["id"]})
            };
            c.send(format!("{reply}\r\n").as_bytes()).await?;
        }
        Ok(())
    })
    .await?;
    let b = bridge(&peer.target(), Mode::Shared, Policy::default(), 64 << 10).await;
    let mut victim = QmpWs::open(&b.ws_url()).await?;
    let mut other = QmpWs::open(&b.ws_url()).await?;
    victim
        .send_text(r#"{"execute": "query-status", "id": "v"}"#)
        .await?;
    one_reply(&mut victim, "v").await?;
    other.send_text(r#"{"execute": "stop", "id": "s"}"#).await?;
    for ws in [&mut victim, &mut other] {
        let (texts, code, reason) = ws.until_close().await?;
        assert!(
            texts.iter().all(|t| !t.contains("smuggled")),
            "the id-less reply reached a client: {texts:?}"
        );
        assert_eq!(code, 1012, "{reason}");
        assert!(reason.contains("without an id"), "{reason}");
    }
    let metrics = testkit::http::get(&b.addr.to_string(), "/metrics", &[])?.text();
    assert!(
        metrics.contains("qmp_bridge_unmatched_replies_total{vm=\"test-vm\"} 1"),
        "{metrics}"
    );
    Ok(())
}

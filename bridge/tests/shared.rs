//! Shared mode: many clients on one QEMU monitor, each with its own QMP session.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use testkit::fake_peer::{PeerConn, GREETING};
use testkit::{FakePeer, Qemu, QmpClient, QmpWs, TempDir, UnixQmp};

/// A shared-mode bridge on `target`, with a `--share-socket` in `dir` when given.
async fn shared_bridge(target: &str, share: Option<&Path>) -> common::TestBridge {
    let config = common::shared(common::settings(target), share.map(Path::to_owned));
    common::start_with(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_and_a_socket_client_share_one_qemu() -> testkit::Result<()> {
    let qemu = Qemu::start()?;
    let dir = TempDir::new("share")?;
    let share = dir.path().join("shared.sock");
    let bridge = shared_bridge(&qemu.target(), Some(&share)).await;
    let mut a = QmpWs::connect(&bridge.ws_url()).await?;
    let mut b = QmpWs::connect(&bridge.ws_url()).await?;
    let greeting = a.handshake().await?;
    b.handshake().await?;
    assert!(greeting["QMP"]["version"]["qemu"]["major"]
        .as_u64()
        .is_some());
    assert_eq!(
        std::fs::metadata(&share).map(|m| {
            use std::os::unix::fs::PermissionsExt;
            m.permissions().mode() & 0o777
        })?,
        0o600
    );
    let mut c = UnixQmp::connect(&share).await?;
    c.handshake().await?;

    // The same id in two clients: each gets its own reply, and only its own.
    let a_reply = a.execute("cont", None, json!("same")).await?;
    assert_eq!(a_reply, json!({"return": {}, "id": "same"}));
    let b_reply = b.execute("query-status", None, json!("same")).await?;
    assert_eq!(b_reply["return"]["status"], "running");
    a.event("RESUME").await?;
    b.event("RESUME").await?;
    c.event("RESUME").await?;
    a.execute("stop", None, json!("same")).await?;
    // No id at all: the reply has none either.
    c.send_text(r#"{"execute": "query-status"}"#).await?;
    let c_reply = loop {
        let m = c.recv_json().await?;
        if m.get("event").is_none() {
            break m;
        }
        c.events.push(m);
    };
    assert_eq!(
        c_reply,
        json!({"return": {"status": "paused", "singlestep": false, "running": false}})
    );

    // Everyone sees everyone's events.
    a.event("STOP").await?;
    b.event("STOP").await?;
    c.event("STOP").await?;
    c.execute("cont", None, json!(7)).await?;
    a.event("RESUME").await?;
    b.event("RESUME").await?;
    // Nothing else is waiting for A or B: a fresh command's reply is the next message.
    assert_eq!(
        a.execute("query-status", None, json!(1)).await?["return"]["running"],
        true
    );
    assert_eq!(
        b.execute("query-status", None, json!(1)).await?["return"]["running"],
        true
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_negotiates_as_with_qemu() -> testkit::Result<()> {
    let qemu = Qemu::start()?;
    // with --allow-oob, so that oob is offered (tests/qemu_parser.rs: not without)
    let mut settings = common::settings(&qemu.target());
    settings.allow_oob = true;
    let config = common::shared(settings, None);
    let bridge = common::start_with(config).await;
    let mut ws = QmpWs::connect(&bridge.ws_url()).await?;
    let greeting = ws.recv_json().await?;
    assert!(greeting["QMP"]["capabilities"].as_array().is_some());
    let early = ws.execute("query-status", None, json!(1)).await?;
    assert_eq!(early["error"]["class"], "CommandNotFound");
    assert!(early["error"]["desc"]
        .as_str()
        .unwrap_or("")
        .contains("qmp_capabilities"));
    let bad = ws
        .execute(
            "qmp_capabilities",
            Some(json!({"enable": ["bogus"]})),
            json!(2),
        )
        .await?;
    assert_eq!(bad["error"]["class"], "GenericError");
    let ok = ws
        .execute(
            "qmp_capabilities",
            Some(json!({"enable": ["oob"]})),
            json!(3),
        )
        .await?;
    assert_eq!(ok, json!({"return": {}, "id": 3}));
    let again = ws.execute("qmp_capabilities", None, json!(4)).await?;
    assert_eq!(again["error"]["class"], "CommandNotFound");
    // exec-oob works once oob is enabled (QEMU 7.2 offers it)
    ws.send_text(r#"{"exec-oob": "migrate-pause", "id": "oob"}"#)
        .await?;
    let oob = ws.reply_to(&json!("oob")).await?;
    assert!(oob.get("error").is_some(), "no migration to pause: {oob}");
    assert_eq!(
        ws.execute("query-status", None, json!(5)).await?["return"]["status"],
        "prelaunch"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_mid_command_costs_the_others_nothing() -> testkit::Result<()> {
    let qemu = Qemu::start()?;
    let bridge = shared_bridge(&qemu.target(), None).await;
    let mut a = QmpWs::connect(&bridge.ws_url()).await?;
    let mut b = QmpWs::connect(&bridge.ws_url()).await?;
    a.handshake().await?;
    b.handshake().await?;
    a.send_text(r#"{"execute": "query-qmp-schema", "id": 1}"#)
        .await?;
    a.close().await?;
    let reply = b.execute("query-status", None, json!(1)).await?;
    assert_eq!(
        reply["return"]["status"], "prelaunch",
        "B got someone else's reply: {reply}"
    );
    let reply = b.execute("query-name", None, json!(2)).await?;
    assert!(reply.get("return").is_some());
    Ok(())
}

fn python() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("py/bin/python")
}

async fn next_line<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut tokio::io::Lines<R>,
) -> testkit::Result<String> {
    tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .map_err(|_| "the Python client said nothing")??
        .ok_or_else(|| "the Python client exited".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qemu_python_library_on_the_share_socket_beside_a_browser() -> testkit::Result<()> {
    let python = python();
    assert!(
        python.exists(),
        "{} missing: run ./scripts/setup",
        python.display()
    );
    let qemu = Qemu::start()?;
    let dir = TempDir::new("pyshare")?;
    let share = dir.path().join("shared.sock");
    let bridge = shared_bridge(&qemu.target(), Some(&share)).await;
    let mut browser = QmpWs::open(&bridge.ws_url()).await?;

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/share_client.py");
    let mut child = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(&share)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let first: Value = serde_json::from_str(&next_line(&mut lines).await?)?;
    assert_eq!(first["status"], "prelaunch");
    assert!(first["major"].as_u64().is_some());
    assert_eq!(next_line(&mut lines).await?, "ready");
    browser.execute("cont", None, json!("from-browser")).await?;
    browser.execute("stop", None, json!("from-browser")).await?;
    let event: Value = serde_json::from_str(&next_line(&mut lines).await?)?;
    assert_eq!(event["event"], "STOP");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await??;
    assert!(status.success());
    browser.event("STOP").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qemu_restarts_are_survived_without_restarting_the_bridge() -> testkit::Result<()> {
    let dir = TempDir::new("restart")?;
    let socket = dir.path().join("qmp.sock");
    let mut qemu = Qemu::start_at(&socket, false)?;
    let target = format!("unix:{}", socket.display());
    let bridge = shared_bridge(&target, None).await;
    let mut before = QmpWs::open(&bridge.ws_url()).await?;

    qemu.kill();
    let (_, code, reason) = before.until_close().await?;
    assert_eq!(code, 1012, "{reason}");
    assert!(reason.contains("reconnect"), "{reason}");
    // While QEMU is away, a newcomer is told to try again.
    let mut early = QmpWs::connect(&bridge.ws_url()).await?;
    let (_, code, reason) = early.until_close().await?;
    assert_eq!(code, 1013, "{reason}");

    let _qemu = Qemu::start_at(&socket, false)?;
    let mut after = None;
    for _ in 0..40 {
        let mut ws = QmpWs::connect(&bridge.ws_url()).await?;
        if ws.handshake().await.is_ok() {
            after = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut after = after.ok_or("never reached the restarted QEMU")?;
    let status = after.execute("query-status", None, json!(1)).await?;
    assert_eq!(status["return"]["status"], "prelaunch");
    Ok(())
}

/// A fake QEMU that answers the bridge's negotiation, then: `flood` sends `n` events
/// (10,000 by default) padded with `pad` bytes, anything else is echoed after `delay`.
async fn scripted_qemu(delay: Duration) -> testkit::Result<FakePeer> {
    FakePeer::start(move |mut c: PeerConn| async move {
        c.send(GREETING.as_bytes()).await?;
        while let Some(cmd) = c.recv().await? {
            let reply = json!({"return": {}, "id": cmd["id"]});
            if cmd["execute"] == "flood" {
                let count = cmd["arguments"]["n"].as_u64().unwrap_or(10_000);
                let pad = "p".repeat(cmd["arguments"]["pad"].as_u64().unwrap_or(0) as usize);
                c.send(format!("{reply}\r\n").as_bytes()).await?;
                let mut burst = String::new();
                for n in 0..count {
                    burst.push_str(&format!(
                        "{{\"event\": \"TICK\", \"data\": {{\"n\": {n}, \"pad\": \"{pad}\"}}, \"timestamp\": {{\"seconds\": 1, \"microseconds\": 0}}}}\r\n"
                    ));
                    if burst.len() > 1 << 20 {
                        c.send(burst.as_bytes()).await?;
                        burst.clear();
                    }
                }
                c.send(burst.as_bytes()).await?;
            } else {
                if cmd["execute"] != "qmp_capabilities" {
                    tokio::time::sleep(delay).await;
                }
                c.send(format!("{reply}\r\n").as_bytes()).await?;
            }
        }
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_does_not_hold_up_the_fan_out() -> testkit::Result<()> {
    let peer = scripted_qemu(Duration::ZERO).await?;
    let bridge = shared_bridge(&peer.target(), None).await;
    let mut stalled = QmpWs::open(&bridge.ws_url()).await?;
    let mut fast = QmpWs::open(&bridge.ws_url()).await?;

    // (how long it takes is the bench's business; the multiplexer's own tests check the
    // fan-out's timing in virtual time, src/mux/tests.rs)
    fast.execute("flood", None, json!("f")).await?;
    for n in 0..10_000 {
        let ev = fast.recv_json().await?;
        assert_eq!(ev["data"]["n"], n);
    }

    // Keep the events coming for longer than a stalled client may take nothing: it is
    // dropped, while the fast one reads on.
    for round in 0..4 {
        fast.execute(
            "flood",
            Some(json!({"pad": 2048, "n": 5_000})),
            json!(round),
        )
        .await?;
        for n in 0..5_000 {
            assert_eq!(fast.recv_json().await?["data"]["n"], n);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut seen = 0;
    let (code, reason) = loop {
        match stalled.recv().await? {
            testkit::ws::Incoming::Text(_) => seen += 1,
            testkit::ws::Incoming::Closed { code, reason } => break (code, reason),
        }
    };
    assert!(
        seen < 30_000,
        "a stalled client is dropped, not buffered for"
    );
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("too slow"), "{reason}");
    // and the fast one carries on
    assert!(fast
        .execute("x", None, json!(1))
        .await?
        .get("return")
        .is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_client_does_not_starve_another() -> testkit::Result<()> {
    let peer = scripted_qemu(Duration::from_millis(2)).await?;
    let bridge = shared_bridge(&peer.target(), None).await;
    let mut flood = QmpWs::open(&bridge.ws_url()).await?;
    let mut polite = QmpWs::open(&bridge.ws_url()).await?;

    const FLOOD: usize = 300;
    let answered = Arc::new(AtomicUsize::new(0));
    let counter = answered.clone();
    let flooder = tokio::spawn(async move {
        for n in 0..FLOOD {
            flood
                .send_text(&json!({"execute": "work", "id": n}).to_string())
                .await?;
        }
        for _ in 0..FLOOD {
            flood.recv_json().await?;
            counter.fetch_add(1, Ordering::SeqCst);
        }
        testkit::Result::Ok(())
    });
    // let the flood queue up, then ask once
    while answered.load(Ordering::SeqCst) < 5 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    polite.execute("hello", None, json!("me")).await?;
    let done_before_me = answered.load(Ordering::SeqCst);
    assert!(
        done_before_me < FLOOD / 2,
        "the polite client waited behind {done_before_me} of {FLOOD} flood commands"
    );
    flooder.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quit_reply_reaches_its_client_while_others_send() -> testkit::Result<()> {
    // the race (a write failing before the reply is read) is lost in about one round of 10
    for round in 0..10 {
        let qemu = Qemu::start()?;
        let bridge = shared_bridge(&qemu.target(), None).await;
        let mut quitter = QmpWs::open(&bridge.ws_url()).await?;
        let mut flooders = Vec::new();
        for f in 0..2 {
            let mut ws = QmpWs::open(&bridge.ws_url()).await?;
            flooders.push(tokio::spawn(async move {
                // until the bridge closes the session (bounded all the same)
                for n in 0..200_000 {
                    let cmd = qmp::message::command("query-status", None, Some(json!([f, n])));
                    if ws.send_text(&cmd).await.is_err() {
                        break;
                    }
                    if n % 16 == 0 && ws.recv().await.is_err() {
                        break;
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        quitter
            .send_text(r#"{"execute": "quit", "id": "bye"}"#)
            .await?;
        let (texts, code, reason) = quitter.until_close().await?;
        assert!(
            texts
                .iter()
                .any(|t| t.contains(r#""id":"bye""#) && t.contains("return")),
            "round {round}: the quit reply was lost ({code} {reason}): {texts:?}"
        );
        for f in flooders {
            let _ = f.await;
        }
    }
    Ok(())
}

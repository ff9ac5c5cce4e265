//! The relay against a real QEMU: handshake, commands, events, the schema as one frame,
//! `quit`, a busy monitor, bad client frames, `pretty=on`.

mod common;

use std::time::Duration;

use serde_json::{json, Value};
use testkit::QmpClient;
use testkit::{Qemu, QmpWs, TempDir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_status_and_stop_cont_events() -> testkit::Result<()> {
    let qemu = Qemu::start()?;
    let bridge = common::start(common::settings(&qemu.target())).await;
    let mut ws = QmpWs::connect(&bridge.ws_url()).await?;
    let greeting = ws.handshake().await?;
    assert!(greeting["QMP"]["version"]["qemu"]["major"]
        .as_u64()
        .is_some());

    let status = ws.execute("query-status", None, json!(1)).await?;
    assert_eq!(status["return"]["status"], "prelaunch");

    let reply = ws.execute("cont", None, json!("c")).await?;
    assert_eq!(reply["return"], json!({}));
    let resume = ws.event("RESUME").await?;
    assert!(resume["timestamp"]["seconds"].as_i64().is_some());

    ws.execute("stop", None, json!("s")).await?;
    ws.event("STOP").await?;
    let status = ws.execute("query-status", None, json!(2)).await?;
    assert_eq!(status["return"]["status"], "paused");
    bridge.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_reply_arrives_as_one_frame() -> testkit::Result<()> {
    let qemu = Qemu::start()?;
    let bridge = common::start(common::settings(&qemu.target())).await;
    let mut ws = QmpWs::open(&bridge.ws_url()).await?;
    ws.send_text(r#"{"execute": "query-qmp-schema", "id": "schema"}"#)
        .await?;
    let testkit::ws::Incoming::Text(frame) = ws.recv().await? else {
        panic!("closed instead of the schema")
    };
    assert!(
        frame.len() > 100_000,
        "schema frame only {} bytes",
        frame.len()
    );
    let reply: Value = serde_json::from_str(&frame)?;
    assert_eq!(reply["id"], "schema");
    let commands = reply["return"]
        .as_array()
        .ok_or("schema is not an array")?
        .iter()
        .filter(|e| e["meta-type"] == "command")
        .count();
    assert!(commands > 100, "only {commands} commands in the schema");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quit_delivers_reply_and_shutdown_before_the_close() -> testkit::Result<()> {
    let mut qemu = Qemu::start()?;
    let bridge = common::start(common::settings(&qemu.target())).await;
    let mut ws = QmpWs::open(&bridge.ws_url()).await?;
    ws.send_text(r#"{"execute": "quit", "id": "bye"}"#).await?;
    let (texts, code, reason) = ws.until_close().await?;
    let msgs: Vec<Value> = texts
        .iter()
        .map(|t| serde_json::from_str(t))
        .collect::<Result<_, _>>()?;
    assert!(
        msgs.iter()
            .any(|m| m["id"] == "bye" && m.get("return").is_some()),
        "{texts:?}"
    );
    assert!(msgs.iter().any(|m| m["event"] == "SHUTDOWN"), "{texts:?}");
    assert_eq!(code, 1000);
    assert!(reason.contains("QEMU closed the monitor"), "{reason}");
    qemu.wait_exit(Duration::from_secs(10))?;
    assert!(bridge.healthy());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_client_is_told_the_monitor_is_busy_then_gets_it() -> testkit::Result<()> {
    let qemu = Qemu::start()?;
    let mut settings = common::settings(&qemu.target());
    settings.greeting_timeout = Duration::from_millis(1000);
    let bridge = common::start(settings).await;

    let mut first = QmpWs::open(&bridge.ws_url()).await?;
    let mut second = QmpWs::connect(&bridge.ws_url()).await?;
    let (texts, code, reason) = second.until_close().await?;
    assert!(texts.is_empty(), "{texts:?}");
    assert_eq!(code, 1013);
    assert!(reason.contains("QMP monitor busy"), "{reason}");

    // The first keeps working while the second was refused.
    let status = first.execute("query-status", None, json!(1)).await?;
    assert!(status.get("return").is_some());
    first.close().await?;

    // Once the first has left, the monitor is free again.
    let mut third = None;
    for _ in 0..10 {
        let mut ws = QmpWs::connect(&bridge.ws_url()).await?;
        match ws.handshake().await {
            Ok(_) => {
                third = Some(ws);
                break;
            }
            Err(e) => eprintln!("retrying after: {e}"),
        }
    }
    let mut third = third.ok_or("the monitor never came free")?;
    let status = third.execute("query-status", None, json!(2)).await?;
    assert!(status.get("return").is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_qmp_errors_and_the_session_goes_on() -> testkit::Result<()> {
    let qemu = Qemu::start()?;
    let bridge = common::start(common::settings(&qemu.target())).await;
    let mut ws = QmpWs::open(&bridge.ws_url()).await?;

    ws.send_text(r#"{"id": "half", "execute": "query-sta"#)
        .await?;
    let err = ws.recv_json().await?;
    assert_eq!(err["id"], "half");
    assert_eq!(err["error"]["class"], "GenericError");

    for bad in ["", "[1, 2]", "{} {}", "not json at all"] {
        ws.send_text(bad).await?;
        let err = ws.recv_json().await?;
        assert!(err["error"]["desc"].as_str().is_some(), "{bad:?} -> {err}");
        assert!(err.get("id").is_none());
    }
    ws.send_binary(&[0xff, 0xfe, b'{']).await?;
    assert!(ws.recv_json().await?["error"]["desc"]
        .as_str()
        .unwrap_or("")
        .contains("UTF-8"));

    // A binary frame holding JSON is a command like any other.
    ws.send_binary(br#"{"execute": "query-status", "id": "bin"}"#)
        .await?;
    assert_eq!(
        ws.reply_to(&json!("bin")).await?["return"]["status"],
        "prelaunch"
    );
    // And QEMU's parser was never wedged by the rejected frames.
    let status = ws.execute("query-status", None, json!("after")).await?;
    assert!(status.get("return").is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pretty_printing_monitor_works() -> testkit::Result<()> {
    let dir = TempDir::new("pretty")?;
    let socket = dir.path().join("qmp.sock");
    let qemu = Qemu::start_at(&socket, true)?;
    let bridge = common::start(common::settings(&qemu.target())).await;
    let mut ws = QmpWs::open(&bridge.ws_url()).await?;
    ws.send_text(r#"{"execute": "query-status", "id": 1}"#)
        .await?;
    let testkit::ws::Incoming::Text(frame) = ws.recv().await? else {
        panic!("closed")
    };
    assert!(frame.contains('\n'), "pretty=on output expected: {frame}");
    let reply: Value = serde_json::from_str(&frame)?;
    assert_eq!(reply["return"]["status"], "prelaunch");
    Ok(())
}

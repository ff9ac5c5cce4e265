//! `--share-socket` clients are held to the bridge's limits like websockets: they take a
//! `--max-clients` slot, and `--idle-timeout` and `--request-timeout` (for a message left
//! unfinished) end them with a readable QMP error.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use qmp_bridge::server::Config;
use serde_json::{json, Value};
use testkit::{Qemu, QmpClient, QmpWs, TempDir, UnixQmp};

/// A QEMU and a shared-mode bridge on it, `tune`d, serving its share socket at `share`.
struct Setup {
    share: PathBuf,
    bridge: common::TestBridge,
    _dir: TempDir,
    _qemu: Qemu,
}

async fn setup(label: &str, tune: impl FnOnce(&mut Config)) -> testkit::Result<Setup> {
    let qemu = Qemu::start()?;
    let dir = TempDir::new(label)?;
    let share = dir.path().join("shared.sock");
    let mut config = common::shared(common::settings(&qemu.target()), Some(share.clone()));
    tune(&mut config);
    Ok(Setup {
        share,
        bridge: common::start_with(config).await,
        _dir: dir,
        _qemu: qemu,
    })
}

/// A client on the share socket, negotiated, once the bridge serves one (it makes the
/// socket after the test starts it; a freed slot comes back when the bridge sees the
/// client leave); replies are due within 5 s.
async fn negotiated(share: &Path) -> testkit::Result<UnixQmp> {
    for _ in 0..100 {
        if let Ok(mut client) = UnixQmp::connect(share).await {
            client.timeout = Duration::from_secs(5);
            if client.handshake().await.is_ok() {
                return Ok(client);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("{} never served a session", share.display()).into())
}

/// Reads the bridge's parting error and the end of the stream after it; returns its text.
async fn parting_error(client: &mut UnixQmp) -> testkit::Result<String> {
    let msg: Value = client.recv_json().await?;
    assert!(msg.get("id").is_none(), "{msg}");
    assert_eq!(msg["error"]["class"], "GenericError", "{msg}");
    let desc = msg["error"]["desc"].as_str().unwrap_or("").to_owned();
    let rest = client.recv_json().await;
    assert!(
        rest.is_err(),
        "the socket stayed open after {desc:?}: {rest:?}"
    );
    Ok(desc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_socket_sessions_count_toward_max_clients() -> testkit::Result<()> {
    let setup = setup("share-max", |c| c.max_clients = 2).await?;
    let share = &setup.share;
    let ws_url = setup.bridge.ws_url();
    let _browser = QmpWs::open(&ws_url).await?;
    let first = negotiated(share).await?;

    // Both slots taken: a second socket client and a browser are turned away.
    let mut second = UnixQmp::connect(share).await?;
    second.timeout = Duration::from_secs(5);
    let desc = parting_error(&mut second).await?;
    assert!(
        desc.contains("too many clients") && desc.contains("--max-clients 2"),
        "{desc}"
    );
    assert_eq!(testkit::ws::upgrade_status(&ws_url, &[]).await?, 503);

    // A socket client leaving frees its slot.
    drop(first);
    let mut again = negotiated(share).await?;
    let status = again.execute("query-status", None, json!(1)).await?;
    assert_eq!(status["return"]["status"], "prelaunch");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_left_unfinished_ends_the_session_after_the_request_timeout(
) -> testkit::Result<()> {
    let limit = Duration::from_secs(1);
    let setup = setup("share-partial", |c| c.request_timeout = limit).await?;
    let share = &setup.share;
    let mut client = negotiated(share).await?;

    // Written slowly but finished within the bound: answered.
    client.send_text(r#"{"execute": "query-status","#).await?;
    tokio::time::sleep(limit / 2).await;
    client.send_text(r#""id": 1}"#).await?;
    assert_eq!(
        client.reply_to(&json!(1)).await?["return"]["status"],
        "prelaunch"
    );

    // Never finished: the session ends, saying why.
    let started = Instant::now();
    client.send_text(r#"{"execute": "query-sta"#).await?;
    let desc = parting_error(&mut client).await?;
    assert!(
        desc.contains("unfinished") && desc.contains("--request-timeout"),
        "{desc}"
    );
    assert!(
        started.elapsed() >= limit,
        "closed after {:?}",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_share_socket_client_is_told_why_it_is_closed() -> testkit::Result<()> {
    let idle = Some(Duration::from_millis(800));
    let setup = setup("share-idle", |c| c.limits.idle_timeout = idle).await?;
    let share = &setup.share;
    let mut client = negotiated(share).await?;
    let desc = parting_error(&mut client).await?;
    assert!(
        desc.contains("idle") && desc.contains("--idle-timeout"),
        "{desc}"
    );
    Ok(())
}

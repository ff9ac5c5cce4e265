//! The `qmp-bridge` binary as a user runs it: bad flags and targets give one clear line
//! and a non-zero exit; assets go out with the right types, compressed when accepted;
//! SIGTERM closes websockets with 1001 and exits 0; the log has a line per session.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use testkit::QmpClient;
use testkit::{http, BridgeProcess, Qemu, QmpWs};

const BIN: &str = env!("CARGO_BIN_EXE_qmp-bridge");

/// Runs the binary expecting a quick failure; returns (exit code, stderr).
fn fails(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN).args(args).output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "{args:?}: not one line: {stderr}"
    );
    (out.status.code().unwrap_or(-1), stderr)
}

#[test]
fn bad_input_gives_one_clear_line() {
    let (_, e) = fails(&["--qmp", "/nonexistent/qmp.sock"]);
    assert!(
        e.contains("/nonexistent/qmp.sock") && e.contains("No such file"),
        "{e}"
    );
    let (_, e) = fails(&["--qmp", "/etc/hostname"]);
    assert!(e.contains("not a Unix socket"), "{e}");
    let (code, e) = fails(&["--qmp", "/tmp/x.sock", "--bogus"]);
    assert_eq!(code, 2);
    assert!(e.contains("--bogus"), "{e}");
    let (_, e) = fails(&[]);
    assert!(e.contains("--qmp"), "{e}");
    let (_, e) = fails(&["--qmp", "tcp:nohost"]);
    assert!(e.contains("tcp:HOST:PORT"), "{e}");
    let (_, e) = fails(&["--qmp", "tcp:127.0.0.1:1", "--listen", "localhost"]);
    assert!(e.contains("--listen"), "{e}");
    let (_, e) = fails(&["--qmp", "tcp:127.0.0.1:1", "--greeting-timeout", "0"]);
    assert!(e.contains("greeting-timeout"), "{e}");
    let (_, e) = fails(&["--qmp", "tcp:127.0.0.1:1", "--ui-dir", "/nonexistent"]);
    assert!(e.contains("--ui-dir"), "{e}");
}

#[test]
fn port_in_use_is_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let (_, e) = fails(&["--qmp", "tcp:127.0.0.1:1", "--listen", &addr]);
    assert!(e.contains(&addr) && e.contains("in use"), "{e}");
}

#[test]
fn help_and_version_exit_zero() {
    for flag in ["--help", "--version"] {
        let out = Command::new(BIN).arg(flag).output().expect("runs");
        assert!(out.status.success(), "{flag}");
        assert!(!out.stdout.is_empty());
    }
}

#[test]
fn serves_assets_with_types_and_gzip() -> testkit::Result<()> {
    let bridge = BridgeProcess::start(
        Path::new(BIN),
        &["--qmp", "tcp:127.0.0.1:1", "--listen", "127.0.0.1:0"],
    )?;
    let health = http::get(&bridge.addr, "/healthz", &[])?;
    assert_eq!(health.status, 200);

    let index = http::get(&bridge.addr, "/", &[])?;
    assert_eq!(index.status, 200);
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        index.text().contains("qmp_web.js"),
        "UI not embedded: run ./scripts/build web before cargo test"
    );

    let plain = http::get(&bridge.addr, "/qmp_web_bg.wasm", &[])?;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-type"), Some("application/wasm"));
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(&plain.body[..4], b"\0asm");

    let br = http::get(
        &bridge.addr,
        "/qmp_web_bg.wasm",
        &[("Accept-Encoding", "gzip, br")],
    )?;
    assert_eq!(
        br.header("content-encoding"),
        Some("br"),
        "brotli preferred"
    );
    assert!(br.body.len() < plain.body.len() / 2);
    let gz = http::get(
        &bridge.addr,
        "/qmp_web_bg.wasm",
        &[("Accept-Encoding", "gzip")],
    )?;
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(gz.header("content-type"), Some("application/wasm"));
    assert!(
        gz.body.len() < plain.body.len() / 2,
        "gzip {} vs {}",
        gz.body.len(),
        plain.body.len()
    );
    assert_eq!(&gz.body[..2], &[0x1f, 0x8b]);

    assert_eq!(http::get(&bridge.addr, "/nope.js", &[])?.status, 404);
    assert_eq!(http::get(&bridge.addr, "/../Cargo.toml", &[])?.status, 404);
    Ok(())
}

#[test]
fn ui_dir_serves_a_folder() -> testkit::Result<()> {
    let dir = testkit::TempDir::new("uidir")?;
    std::fs::write(dir.path().join("index.html"), "<p>from the folder</p>")?;
    let ui = dir.path().to_string_lossy().into_owned();
    let bridge = BridgeProcess::start(
        Path::new(BIN),
        &[
            "--qmp",
            "tcp:127.0.0.1:1",
            "--listen",
            "127.0.0.1:0",
            "--ui-dir",
            &ui,
        ],
    )?;
    let index = http::get(&bridge.addr, "/", &[("Accept-Encoding", "gzip")])?;
    assert_eq!(index.text(), "<p>from the folder</p>");
    assert_eq!(http::get(&bridge.addr, "/qmp_web.js", &[])?.status, 404);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_sessions_with_1001_and_exits_zero() -> testkit::Result<()> {
    let qemu = Qemu::start()?;
    let mut bridge = BridgeProcess::start(
        Path::new(BIN),
        &["--qmp", &qemu.target(), "--listen", "127.0.0.1:0"],
    )?;
    let mut ws = QmpWs::open(&bridge.ws_url()).await?;
    ws.execute("query-status", None, serde_json::json!(1))
        .await?;
    ws.send_text("oops").await?;
    ws.recv_json().await?;

    bridge.terminate()?;
    let (_, code, reason) = ws.until_close().await?;
    assert_eq!(code, 1001);
    assert!(reason.contains("shutting down"), "{reason}");
    let status = bridge.wait_exit(Duration::from_secs(10))?;
    assert!(status.success(), "exit {status}");

    let log = bridge.log();
    assert!(log.contains("session opened"), "{log}");
    let ended = log
        .lines()
        .find(|l| l.contains("session ended"))
        .ok_or_else(|| format!("no session-ended line: {log}"))?;
    for field in [
        "duration_ms",
        "to_qemu",
        "to_client",
        "rejected",
        "peer",
        "target",
    ] {
        assert!(ended.contains(field), "{field} missing: {ended}");
    }
    assert!(ended.contains("1001"), "{ended}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_logs_every_message() -> testkit::Result<()> {
    let qemu = Qemu::start()?;
    let bridge = BridgeProcess::start(
        Path::new(BIN),
        &["--qmp", &qemu.target(), "--listen", "127.0.0.1:0", "-v"],
    )?;
    let mut ws = QmpWs::open(&bridge.ws_url()).await?;
    ws.execute("query-status", None, serde_json::json!("probe-42"))
        .await?;
    testkit::wait_until(Duration::from_secs(5), "the message in the log", || {
        let log = bridge.log();
        (log.contains("probe-42") && log.contains("query-status")).then_some(())
    })?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn printed_url_carries_a_token_that_is_never_logged() -> testkit::Result<()> {
    let qemu = Qemu::start()?;
    let bridge = BridgeProcess::start(
        Path::new(BIN),
        &["--qmp", &qemu.target(), "--listen", "127.0.0.1:0", "-v"],
    )?;
    let token = bridge.token.clone().ok_or("no token in the printed URL")?;
    assert_eq!(token.len(), 64);
    let bare = format!("ws://{}/ws", bridge.addr);
    assert_eq!(testkit::ws::upgrade_status(&bare, &[]).await?, 401);
    let mut ws = QmpWs::open(&bridge.ws_url()).await?;
    ws.execute("query-status", None, serde_json::json!(1))
        .await?;
    let log = bridge.log();
    assert!(
        log.contains("session opened") && log.contains("websocket refused"),
        "{log}"
    );
    assert!(
        !log.contains(&token),
        "the token leaked into the log:\n{log}"
    );
    Ok(())
}

#[test]
fn token_file_no_auth_and_exposure_warnings() -> testkit::Result<()> {
    let dir = testkit::TempDir::new("tokenfile")?;
    let file = dir.path().join("token");
    std::fs::write(&file, "from-a-file-123456\n")?;
    let path = file.to_string_lossy().into_owned();
    let bridge = BridgeProcess::start(
        Path::new(BIN),
        &[
            "--qmp",
            "tcp:127.0.0.1:1",
            "--listen",
            "127.0.0.1:0",
            "--token-file",
            &path,
        ],
    )?;
    assert_eq!(bridge.token.as_deref(), Some("from-a-file-123456"));

    let open = BridgeProcess::start(
        Path::new(BIN),
        &[
            "--qmp",
            "tcp:127.0.0.1:1",
            "--listen",
            "0.0.0.0:0",
            "--no-auth",
        ],
    )?;
    assert_eq!(open.token, None);
    testkit::wait_until(Duration::from_secs(5), "both warnings", || {
        let log = open.log();
        (log.contains("--no-auth") && log.contains("without TLS")).then_some(())
    })?;

    let (_, e) = fails(&["--qmp", "tcp:127.0.0.1:1", "--token", "x y"]);
    assert!(e.contains("--token"), "{e}");
    let (_, e) = fails(&["--qmp", "tcp:127.0.0.1:1", "--token-file", "/nonexistent/t"]);
    assert!(e.contains("/nonexistent/t"), "{e}");
    let (_, e) = fails(&[
        "--qmp",
        "tcp:127.0.0.1:1",
        "--tls-cert",
        "/nonexistent/c.pem",
        "--tls-key",
        "/nonexistent/k.pem",
    ]);
    assert!(e.contains("--tls-cert"), "{e}");
    let (_, e) = fails(&["--qmp", "tcp:127.0.0.1:1", "--tls-cert", "/etc/hostname"]);
    assert!(e.contains("--tls-key"), "{e}");
    let (_, e) = fails(&["--qmp", "tcp:127.0.0.1:1", "--allow-origin", "evil.example"]);
    assert!(e.contains("origin"), "{e}");
    let (_, e) = fails(&[
        "--qmp",
        "tcp:127.0.0.1:1",
        "--audit-log",
        "/nonexistent/dir/a.jsonl",
    ]);
    assert!(e.contains("--audit-log"), "{e}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_targets_and_a_token_guarded_vm_list() -> testkit::Result<()> {
    let one = Qemu::start()?;
    let two = Qemu::start()?;
    let (a, b) = (
        format!("one={}", one.target()),
        format!("two={}", two.target()),
    );
    let bridge = BridgeProcess::start(
        Path::new(BIN),
        &["--qmp", &a, "--qmp", &b, "--listen", "127.0.0.1:0"],
    )?;
    let token = bridge.token.clone().ok_or("no token")?;
    assert_eq!(http::get(&bridge.addr, "/api/vms", &[])?.status, 401);
    assert_eq!(http::get(&bridge.addr, "/metrics", &[])?.status, 401);
    let list = http::get(&bridge.addr, &format!("/api/vms?token={token}"), &[])?;
    assert_eq!(list.status, 200);
    let list: serde_json::Value = serde_json::from_str(&list.text())?;
    let names: Vec<&str> = list["vms"]
        .as_array()
        .ok_or("no vms")?
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(names, ["one", "two"]);
    let bearer = format!("Bearer {token}");
    let metrics = http::get(&bridge.addr, "/metrics", &[("Authorization", &bearer)])?;
    assert_eq!(metrics.status, 200);
    assert!(metrics.text().contains("qmp_bridge_sessions{vm=\"two\"} 0"));

    let (_, e) = fails(&["--qmp", &a, "--qmp", &format!("one={}", two.target())]);
    assert!(e.contains("\"one\""), "{e}");
    let (_, e) = fails(&["--qmp", &a, "--qmp", &b, "--mode", "relay"]);
    assert!(e.contains("relay"), "{e}");
    let (_, e) = fails(&["--qmp-dir", "/nonexistent/dir"]);
    assert!(e.contains("--qmp-dir"), "{e}");
    Ok(())
}

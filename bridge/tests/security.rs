//! Each protection of the security issue, each test failing if the protection is removed:
//! token (401, for every VM name alike), Origin (403), no framing and no referrer for the
//! UI, command policy with transactions, audit log, frame limit, garbage floods, slow
//! headers, the client cap, wss, idle timeout.

mod common;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use qmp_bridge::assets::Ui;
use qmp_bridge::audit::AuditLog;
use qmp_bridge::policy::Policy;
use qmp_bridge::security::Auth;
use serde_json::{json, Value};
use testkit::fake_peer::PeerConn;
use testkit::ws::upgrade_status;
use testkit::QmpClient;
use testkit::{FakePeer, Qemu, QmpWs, TempDir};

const TOKEN: &str = "test-token-0123456789";

async fn echo_peer() -> testkit::Result<FakePeer> {
    FakePeer::start(|mut c: PeerConn| async move {
        c.send(testkit::fake_peer::GREETING.as_bytes()).await?;
        c.echo_returns().await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_is_required_before_the_upgrade() -> testkit::Result<()> {
    let peer = echo_peer().await?;
    let mut config = common::config(common::settings(&peer.target()));
    config.gate.auth = Auth::Token(TOKEN.into());
    let bridge = common::start_with(config).await;
    let base = bridge.ws_url();
    assert_eq!(upgrade_status(&base, &[]).await?, 401);
    assert_eq!(
        upgrade_status(&format!("{base}?token=wrong-token-0123456789"), &[]).await?,
        401
    );
    assert_eq!(
        upgrade_status(&format!("{base}?token={}", &TOKEN[..TOKEN.len() - 1]), &[]).await?,
        401
    );
    assert_eq!(
        upgrade_status(&format!("{base}?token={TOKEN}"), &[]).await?,
        101
    );
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(
        upgrade_status(&base, &[("Authorization", &bearer)]).await?,
        101
    );
    let mut ws = QmpWs::connect(&format!("{base}?token={TOKEN}")).await?;
    assert!(ws.recv_json().await?.get("QMP").is_some());
    Ok(())
}

/// A fleet bridge with the token on, serving the UI from `static/`: `vm1` is `qemu`.
async fn fleet_with_token(qemu: &Qemu) -> common::TestBridge {
    let vm1 = vec![("vm1".into(), qemu.target().parse().expect("target"))];
    let mut config = common::fleet(common::limits(), vm1, None);
    config.gate.auth = Auth::Token(TOKEN.into());
    config.ui = Ui::Dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../static").into());
    common::start_with(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_token_every_vm_name_is_401() -> testkit::Result<()> {
    let qemu = Qemu::start()?;
    let bridge = fleet_with_token(&qemu).await;
    let addr = bridge.addr.to_string();
    let ws = |path: &str| format!("ws://{addr}{path}");
    for path in ["/ws/vm1", "/ws/made-up", "/ws", "/ws/%FF"] {
        assert_eq!(upgrade_status(&ws(path), &[]).await?, 401, "{path}");
        let wrong = format!("{path}?token=wrong-token-0123456789");
        assert_eq!(upgrade_status(&ws(&wrong), &[]).await?, 401, "{wrong}");
        // a plain GET, no upgrade
        assert_eq!(
            testkit::http::get(&addr, path, &[])?.status,
            401,
            "GET {path}"
        );
    }
    for path in ["/api/vms", "/metrics"] {
        assert_eq!(testkit::http::get(&addr, path, &[])?.status, 401, "{path}");
    }
    // with the token the names are told apart
    let with_token = |path: &str| ws(&format!("{path}?token={TOKEN}"));
    assert_eq!(upgrade_status(&with_token("/ws/made-up"), &[]).await?, 404);
    assert_eq!(upgrade_status(&with_token("/ws"), &[]).await?, 404);
    assert_eq!(upgrade_status(&with_token("/ws/vm1"), &[]).await?, 101);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_responses_forbid_framing_referrers_and_sniffing() -> testkit::Result<()> {
    let qemu = Qemu::start()?;
    let bridge = fleet_with_token(&qemu).await;
    let addr = bridge.addr.to_string();
    let api = format!("/api/vms?token={TOKEN}");
    let pages = [
        ("/", 200),
        (&format!("/?token={TOKEN}"), 200),
        ("/vm/vm1", 200),
        (&format!("/vm/vm1?token={TOKEN}"), 200),
        ("/vm/made-up", 200),
        ("/style.css", 200),
        ("/favicon.svg", 200),
        ("/no-such-file.js", 404),
        ("/.hidden", 404),
        (&api, 200),
        ("/healthz", 200),
    ];
    for (path, status) in pages {
        let r = testkit::http::get(&addr, path, &[("Accept-Encoding", "gzip")])?;
        assert_eq!(r.status, status, "{path}");
        for (name, value) in [
            ("x-frame-options", "DENY"),
            ("content-security-policy", "frame-ancestors 'none'"),
            ("referrer-policy", "no-referrer"),
            ("x-content-type-options", "nosniff"),
        ] {
            assert_eq!(r.header(name), Some(value), "{name} on {path}");
        }
    }
    // the files served are the UI's own
    let index = testkit::http::get(&addr, "/vm/vm1", &[])?;
    assert!(index.text().contains("qmp_web.js"), "{}", index.text());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_origins_are_refused() -> testkit::Result<()> {
    let peer = echo_peer().await?;
    let mut config = common::config(common::settings(&peer.target()));
    config.gate.allowed_origins = vec!["https://console.example".into()];
    let bridge = common::start_with(config).await;
    let url = bridge.ws_url();
    let own = format!("http://{}", bridge.addr);
    assert_eq!(
        upgrade_status(&url, &[("Origin", "http://evil.example")]).await?,
        403
    );
    assert_eq!(upgrade_status(&url, &[("Origin", "null")]).await?, 403);
    assert_eq!(upgrade_status(&url, &[("Origin", &own)]).await?, 101);
    assert_eq!(
        upgrade_status(&url, &[("Origin", "https://console.example")]).await?,
        101
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_refuses_stop_and_hidden_transaction_actions() -> testkit::Result<()> {
    let qemu = Qemu::start()?;
    let dir = TempDir::new("audit")?;
    let audit_path = dir.path().join("audit.jsonl");
    let mut settings = common::settings(&qemu.target());
    settings.policy = Policy {
        read_only: true,
        ..Policy::default()
    };
    settings.audit = Some(Arc::new(AuditLog::open(&audit_path)?));
    let bridge = common::start(settings).await;
    let mut ws = QmpWs::open(&bridge.ws_url()).await?;

    let refused = ws.execute("stop", None, json!("s1")).await?;
    assert_eq!(refused["id"], "s1");
    let desc = refused["error"]["desc"].as_str().unwrap_or("");
    assert!(
        desc.contains("policy") && desc.contains("stop"),
        "{refused}"
    );

    let hidden = json!({"actions": [{"type": "abort", "data": {}}]});
    let refused = ws.execute("transaction", Some(hidden), json!("t1")).await?;
    assert!(
        refused["error"]["desc"]
            .as_str()
            .unwrap_or("")
            .contains("transaction"),
        "{refused}"
    );
    let hmp = json!({"command-line": "stop"});
    assert!(ws
        .execute("human-monitor-command", Some(hmp), json!("h1"))
        .await?
        .get("error")
        .is_some());

    let status = ws.execute("query-status", None, json!("q1")).await?;
    assert_eq!(
        status["return"]["status"], "prelaunch",
        "stop must not have reached QEMU"
    );
    let missing = ws
        .execute("query-nonexistent-thing", None, json!("q2"))
        .await?;
    assert_eq!(missing["error"]["class"], "CommandNotFound");
    ws.close().await?;
    bridge.stop().await?;

    let lines: Vec<Value> = std::fs::read_to_string(&audit_path)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let outcome = |id: &str| {
        lines
            .iter()
            .find(|l| l["id"] == id)
            .map(|l| (l["command"].clone(), l["outcome"].clone()))
    };
    assert_eq!(outcome("s1"), Some((json!("stop"), json!("refused"))));
    assert_eq!(
        outcome("t1"),
        Some((json!("transaction"), json!("refused")))
    );
    assert_eq!(outcome("q1"), Some((json!("query-status"), json!("ok"))));
    assert_eq!(
        outcome("q2"),
        Some((json!("query-nonexistent-thing"), json!("CommandNotFound")))
    );
    assert!(lines
        .iter()
        .all(|l| l["time"].as_str().is_some_and(|t| t.ends_with('Z'))
            && l["client"]
                .as_str()
                .is_some_and(|c| c.starts_with("127.0.0.1:"))));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_reaches_into_transactions() -> testkit::Result<()> {
    let qemu = Qemu::start()?;
    let mut settings = common::settings(&qemu.target());
    settings.policy = Policy {
        deny: vec!["block*".into(), "quit".into()],
        ..Policy::default()
    };
    let bridge = common::start(settings).await;
    let mut ws = QmpWs::open(&bridge.ws_url()).await?;
    let actions = json!({"actions": [
        {"type": "abort", "data": {}},
        {"type": "blockdev-snapshot-sync", "data": {"device": "x", "snapshot-file": "/tmp/y"}}]});
    let refused = ws.execute("transaction", Some(actions), json!(1)).await?;
    assert!(
        refused["error"]["desc"]
            .as_str()
            .unwrap_or("")
            .contains("blockdev-snapshot-sync"),
        "{refused}"
    );
    // the same text as exec-oob is refused too
    ws.send_text(r#"{"exec-oob": "quit", "id": 2}"#).await?;
    assert!(ws.reply_to(&json!(2)).await?["error"]["desc"]
        .as_str()
        .unwrap_or("")
        .contains("quit"));
    // allowed commands still run
    assert_eq!(
        ws.execute("stop", None, json!(3)).await?["return"],
        json!({})
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_garbage_frames_then_a_command() -> testkit::Result<()> {
    let qemu = Qemu::start()?;
    let bridge = common::start(common::settings(&qemu.target())).await;
    let mut ws = QmpWs::open(&bridge.ws_url()).await?;
    for i in 0..10_000 {
        let junk = match i % 4 {
            0 => format!("garbage {i}"),
            1 => format!("{{\"id\": {i}, \"execute\": "),
            2 => "[]".to_owned(),
            _ => "{\"execute\": \"stop\"} trailing".to_owned(),
        };
        ws.send_text(&junk).await?;
    }
    let mut with_id = 0;
    for _ in 0..10_000 {
        let reply = ws.recv_json().await?;
        assert_eq!(reply["error"]["class"], "GenericError", "{reply}");
        with_id += usize::from(reply.get("id").is_some());
    }
    assert_eq!(with_id, 2_500, "truncated frames keep their id");
    let status = ws.execute("query-status", None, json!("after")).await?;
    assert_eq!(status["return"]["status"], "prelaunch");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_over_the_limit_closes_the_session_only() -> testkit::Result<()> {
    let peer = echo_peer().await?;
    let mut settings = common::settings(&peer.target());
    settings.max_message_bytes = 64 * 1024;
    let bridge = common::start(settings).await;
    let mut ws = QmpWs::connect(&bridge.ws_url()).await?;
    ws.recv_json().await?;
    let big = format!(
        "{{\"execute\": \"x\", \"arguments\": {{\"pad\": \"{}\"}}}}",
        "a".repeat(100 * 1024)
    );
    ws.send_text(&big).await?;
    let (_, code, reason) = ws.until_close().await?;
    assert_eq!(code, 1009, "{reason}");
    assert!(
        reason.contains("too") || reason.contains("limit"),
        "{reason}"
    );
    assert!(bridge.healthy());
    let mut again = QmpWs::connect(&bridge.ws_url()).await?;
    assert!(again.recv_json().await?.get("QMP").is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_sent_one_byte_a_second_are_cut_off() -> testkit::Result<()> {
    let peer = echo_peer().await?;
    let mut config = common::config(common::settings(&peer.target()));
    config.request_timeout = Duration::from_secs(2);
    let bridge = common::start_with(config).await;
    let addr = bridge.addr;
    let outcome = tokio::task::spawn_blocking(move || -> testkit::Result<(Duration, usize)> {
        let started = Instant::now();
        let mut s = std::net::TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_millis(50)))?;
        let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        for (sent, b) in request.iter().enumerate() {
            if s.write_all(&[*b]).is_err() {
                return Ok((started.elapsed(), sent));
            }
            let mut buf = [0u8; 256];
            match s.read(&mut buf) {
                Ok(0) => return Ok((started.elapsed(), sent)), // closed by the bridge
                Ok(_) => return Ok((started.elapsed(), sent)), // an error response, then close
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return Ok((started.elapsed(), sent)),
            }
            std::thread::sleep(Duration::from_millis(950));
        }
        Err("the bridge waited for the whole slow request".into())
    })
    .await??;
    let (elapsed, sent) = outcome;
    assert!(
        elapsed < Duration::from_secs(8),
        "cut off only after {elapsed:?}"
    );
    assert!(sent < 10, "{sent} bytes were accepted");
    assert!(bridge.healthy());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_max_clients_are_refused() -> testkit::Result<()> {
    let peer = echo_peer().await?;
    let mut config = common::config(common::settings(&peer.target()));
    config.max_clients = 2;
    let bridge = common::start_with(config).await;
    let url = bridge.ws_url();
    let mut a = QmpWs::connect(&url).await?;
    let mut b = QmpWs::connect(&url).await?;
    a.recv_json().await?;
    b.recv_json().await?;
    assert_eq!(upgrade_status(&url, &[]).await?, 503);
    a.close().await?;
    let mut ok = false;
    for _ in 0..50 {
        if upgrade_status(&url, &[]).await? == 101 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "a slot never came free after a client left");
    assert!(b
        .execute("x", None, json!(1))
        .await?
        .get("return")
        .is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_are_closed() -> testkit::Result<()> {
    let peer = echo_peer().await?;
    let mut settings = common::settings(&peer.target());
    settings.idle_timeout = Some(Duration::from_millis(800));
    let bridge = common::start(settings).await;
    let mut ws = QmpWs::connect(&bridge.ws_url()).await?;
    ws.recv_json().await?;
    let (_, code, reason) = ws.until_close().await?;
    assert_eq!(code, 1001);
    assert!(reason.contains("idle"), "{reason}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_with_a_self_signed_certificate() -> testkit::Result<()> {
    let dir = TempDir::new("tls")?;
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()?;
    assert!(status.success(), "openssl could not make a certificate");

    let qemu = Qemu::start()?;
    let mut config = common::config(common::settings(&qemu.target()));
    config.tls = Some(qmp_bridge::tls::acceptor(&cert, &key)?);
    config.gate.scheme = "https";
    let bridge = common::start_with(config).await;

    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for c in rustls::pki_types::CertificateDer::pem_file_iter(&cert)? {
        roots.add(c?)?;
    }
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(bridge.addr).await?;
    let server_name = rustls::pki_types::ServerName::try_from("localhost")?;
    let tls = connector.connect(server_name, tcp).await?;
    let mut ws =
        QmpWs::connect_over(tls, &format!("wss://localhost:{}/ws", bridge.addr.port())).await?;
    ws.handshake().await?;
    let status = ws.execute("query-status", None, json!(1)).await?;
    assert_eq!(status["return"]["status"], "prelaunch");

    // plain http on the TLS port gets nowhere
    assert!(
        testkit::http::get(&bridge.addr.to_string(), "/healthz", &[])
            .map(|r| r.status != 200)
            .unwrap_or(true)
    );
    Ok(())
}

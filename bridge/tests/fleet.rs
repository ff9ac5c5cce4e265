//! Many VMs from one bridge: a folder of real QEMUs, watched live.

mod common;

use std::sync::Arc;
use std::time::Duration;

use qmp_bridge::audit::AuditLog;
use qmp_bridge::policy::Policy;
use qmp_bridge::server::Mode;
use serde_json::{json, Value};
use testkit::{http, Qemu, QmpClient, QmpWs, TempDir};

fn vms(addr: &str) -> testkit::Result<Value> {
    let r = http::get(addr, "/api/vms", &[])?;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    Ok(serde_json::from_str(&r.text())?)
}

fn row<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list["vms"].as_array()?.iter().find(|v| v["name"] == name)
}

/// Polls the list until `pred` holds for it.
async fn until(addr: &str, what: &str, pred: impl Fn(&Value) -> bool) -> testkit::Result<Value> {
    for _ in 0..100 {
        let list = vms(addr)?;
        if pred(&list) {
            return Ok(list);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("the VM list never showed {what}: {}", vms(addr)?).into())
}

fn state<'a>(list: &'a Value, name: &str) -> Option<&'a str> {
    row(list, name)?["state"].as_str()
}

fn run_state<'a>(list: &'a Value, name: &str) -> Option<&'a str> {
    row(list, name)?["run_state"].as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_of_qemus_is_served_live() -> testkit::Result<()> {
    let dir = TempDir::new("fleet")?;
    let sock = |n: &str| dir.path().join(format!("{n}.sock"));
    let _a = Qemu::start_named(&sock("vm-a"), false, Some("alpha"))?;
    let mut b = Qemu::start_named(&sock("vm-b"), false, Some("bravo"))?;
    let _c = Qemu::start_named(&sock("vm-c"), false, Some("charlie"))?;
    std::fs::write(dir.path().join("notes.txt"), "not a socket")?;
    // a socket that accepts but never greets
    let _mute = std::os::unix::net::UnixListener::bind(sock("mute"))?;
    let audit_dir = TempDir::new("fleet-audit")?;
    let audit = audit_dir.path().join("audit.jsonl");

    let mut settings = common::settings("unix:/unused");
    settings.greeting_timeout = Duration::from_millis(800);
    settings.policy = Policy {
        deny: vec!["vm-c:quit".into()],
        ..Policy::default()
    };
    settings.audit = Some(Arc::new(AuditLog::open(&audit)?));
    let mut config = common::config(settings);
    config.mode = Mode::Shared;
    config.vms = Vec::new();
    config.single = false;
    config.qmp_dir = Some(dir.path().to_owned());
    let bridge = common::start_with(config).await;
    let addr = bridge.addr.to_string();

    let list = until(&addr, "three VMs up and one busy", |l| {
        ["vm-a", "vm-b", "vm-c"]
            .iter()
            .all(|n| state(l, n) == Some("up"))
            && state(l, "mute") == Some("busy")
    })
    .await?;
    for n in ["vm-a", "vm-b", "vm-c"] {
        assert_eq!(run_state(&list, n), Some("prelaunch"), "{list}");
        assert!(row(&list, n)
            .and_then(|r| r["version"].as_str())
            .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit())));
    }
    assert_eq!(list["mode"], "fleet");
    let problems = list["problems"].as_array().ok_or("no problems list")?;
    assert!(
        problems
            .iter()
            .any(|p| p["name"] == "notes.txt" && p["reason"] == "not a socket"),
        "{list}"
    );

    // /ws means nothing with several VMs; /ws/NAME reaches the right QEMU.
    assert_eq!(
        testkit::ws::upgrade_status(&format!("ws://{addr}/ws"), &[]).await?,
        404
    );
    assert_eq!(
        testkit::ws::upgrade_status(&format!("ws://{addr}/ws/nope"), &[]).await?,
        404
    );
    let mut a = QmpWs::connect(&format!("ws://{addr}/ws/vm-a")).await?;
    let mut c = QmpWs::connect(&format!("ws://{addr}/ws/vm-c")).await?;
    a.handshake().await?;
    c.handshake().await?;
    assert_eq!(
        a.execute("query-name", None, json!(1)).await?["return"]["name"],
        "alpha"
    );
    assert_eq!(
        c.execute("query-name", None, json!(1)).await?["return"]["name"],
        "charlie"
    );
    let list = until(&addr, "one client on vm-a", |l| {
        row(l, "vm-a").is_some_and(|r| r["clients"] == 1)
    })
    .await?;
    assert_eq!(
        row(&list, "vm-b").map(|r| r["clients"].clone()),
        Some(json!(0))
    );

    // A stop on one VM flips only its row.
    a.execute("cont", None, json!(2)).await?;
    a.execute("stop", None, json!(3)).await?;
    let list = until(&addr, "vm-a paused", |l| {
        run_state(l, "vm-a") == Some("paused")
    })
    .await?;
    assert_eq!(run_state(&list, "vm-b"), Some("prelaunch"));
    assert_eq!(run_state(&list, "vm-c"), Some("prelaunch"));
    // vm-c's own rule
    let refused = c.execute("quit", None, json!(4)).await?;
    assert!(
        refused["error"]["desc"]
            .as_str()
            .unwrap_or("")
            .contains("--deny"),
        "{refused}"
    );

    // A fourth appears, one killed shows as gone: no restart.
    let _d = Qemu::start_named(&sock("vm-d"), false, Some("delta"))?;
    b.kill();
    let list = until(&addr, "vm-d up and vm-b gone", |l| {
        state(l, "vm-d") == Some("up") && state(l, "vm-b") == Some("gone")
    })
    .await?;
    assert_eq!(state(&list, "vm-a"), Some("up"));
    std::fs::remove_file(sock("vm-b"))?;
    until(&addr, "vm-b still listed once its socket is gone", |l| {
        state(l, "vm-b") == Some("gone")
    })
    .await?;

    // /metrics counts what happened.
    let metrics = http::get(&addr, "/metrics", &[])?.text();
    let value = |line: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(line))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1.0)
    };
    assert_eq!(
        value("qmp_bridge_commands_total{vm=\"vm-a\",outcome=\"ok\"}"),
        3.0,
        "{metrics}"
    );
    assert_eq!(
        value("qmp_bridge_commands_total{vm=\"vm-c\",outcome=\"refused\"}"),
        1.0
    );
    assert_eq!(value("qmp_bridge_sessions{vm=\"vm-a\"}"), 1.0);
    assert!(value("qmp_bridge_events_total{vm=\"vm-a\"}") >= 2.0);
    assert!(value("qmp_bridge_upstream_reconnects_total{vm=\"vm-b\"}") >= 1.0);
    assert_eq!(value("qmp_bridge_command_seconds_count{vm=\"vm-a\"}"), 3.0);

    // The audit log names the VM.
    drop((a, c));
    let lines: Vec<Value> = std::fs::read_to_string(&audit)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert!(lines
        .iter()
        .any(|l| l["vm"] == "vm-c" && l["command"] == "quit" && l["outcome"] == "refused"));
    assert!(lines
        .iter()
        .any(|l| l["vm"] == "vm-a" && l["command"] == "stop" && l["outcome"] == "ok"));
    assert!(bridge.healthy());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_target_keeps_ws_and_reports_single_mode() -> testkit::Result<()> {
    let qemu = Qemu::start()?;
    let mut config = common::config(common::settings(&qemu.target()));
    config.mode = Mode::Shared;
    let bridge = common::start_with(config).await;
    let addr = bridge.addr.to_string();
    let list = until(&addr, "the VM up", |l| state(l, "test-vm") == Some("up")).await?;
    assert_eq!(list["mode"], "single");
    let _ws = QmpWs::open(&bridge.ws_url()).await?;
    let _named = QmpWs::open(&format!("ws://{addr}/ws/test-vm")).await?;
    assert_eq!(http::get(&addr, "/vm/test-vm", &[])?.status, 200);
    Ok(())
}

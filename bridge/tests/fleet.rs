//! Many VMs from one bridge: a folder of real QEMUs, watched live.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use qmp::vm_list::VmState;
use qmp_bridge::audit::AuditLog;
use qmp_bridge::fleet::Fleet;
use qmp_bridge::policy::Policy;
use qmp_bridge::server::Config;
use qmp_bridge::session::Settings;
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

/// A shared-mode bridge config serving the sockets in `dir`.
fn dir_config(settings: Settings, dir: &Path) -> Config {
    common::fleet(settings.limits, Vec::new(), Some(dir.to_owned()))
}

/// A socket file nothing listens on any more (connections are refused).
fn dead_socket(path: &Path) -> std::io::Result<()> {
    std::os::unix::net::UnixListener::bind(path).map(drop)
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
    let bridge = common::start_with(dir_config(settings, dir.path())).await;
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
    let config = common::shared(common::settings(&qemu.target()), None);
    let bridge = common::start_with(config).await;
    let addr = bridge.addr.to_string();
    let list = until(&addr, "the VM up", |l| state(l, "test-vm") == Some("up")).await?;
    assert_eq!(list["mode"], "single");
    let _ws = QmpWs::open(&bridge.ws_url()).await?;
    let _named = QmpWs::open(&format!("ws://{addr}/ws/test-vm")).await?;
    assert_eq!(http::get(&addr, "/vm/test-vm", &[])?.status, 200);
    Ok(())
}

fn problem<'a>(list: &'a Value, file: &str) -> Option<&'a str> {
    list["problems"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == file)?["reason"]
        .as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_socket_is_a_new_vm_and_its_old_name_is_gone() -> testkit::Result<()> {
    let dir = TempDir::new("fleet-rename")?;
    let path = |f: &str| dir.path().join(f);
    let _qemu = Qemu::start_named(&path("vm1.sock"), false, Some("moved"))?;
    let bridge = common::start_with(dir_config(common::settings("unix:/unused"), dir.path())).await;
    let addr = bridge.addr.to_string();
    until(&addr, "vm1 up", |l| state(l, "vm1") == Some("up")).await?;
    let mut before = QmpWs::open(&format!("ws://{addr}/ws/vm1")).await?;

    // Another name: the old one is gone (its session ended, QEMU's monitor let go), the
    // new one reaches the same QEMU through the new path.
    std::fs::rename(path("vm1.sock"), path("vm2.sock"))?;
    let list = until(&addr, "vm1 gone and vm2 up", |l| {
        state(l, "vm1") == Some("gone") && state(l, "vm2") == Some("up")
    })
    .await?;
    assert_eq!(
        row(&list, "vm2").map(|r| r["target"].clone()),
        Some(json!(format!("unix:{}", path("vm2.sock").display())))
    );
    assert!(row(&list, "vm1").is_some_and(|r| r["last_error"]
        .as_str()
        .is_some_and(|e| e.contains("vm1.sock"))));
    before.until_close().await?;
    assert_eq!(
        testkit::ws::upgrade_status(&format!("ws://{addr}/ws/vm1"), &[]).await?,
        404
    );
    let mut after = QmpWs::open(&format!("ws://{addr}/ws/vm2")).await?;
    assert_eq!(
        after.execute("query-name", None, json!(1)).await?["return"]["name"],
        "moved"
    );

    // The same name from another path is a new VM too: it follows the file.
    std::fs::rename(path("vm2.sock"), path("vm2.qmp"))?;
    after.until_close().await?;
    let target = json!(format!("unix:{}", path("vm2.qmp").display()));
    until(&addr, "vm2 served from vm2.qmp", |l| {
        state(l, "vm2") == Some("up") && row(l, "vm2").map(|r| &r["target"]) == Some(&target)
    })
    .await?;
    let mut again = QmpWs::open(&format!("ws://{addr}/ws/vm2")).await?;
    assert_eq!(
        again.execute("query-name", None, json!(2)).await?["return"]["name"],
        "moved"
    );

    // A folder that cannot be read says so, and changes nothing.
    let moved = dir.path().with_extension("away");
    std::fs::rename(dir.path(), &moved)?;
    let shown = dir.path().display().to_string();
    let list = until(&addr, "the folder unreadable", |l| {
        problem(l, &shown).is_some()
    })
    .await;
    std::fs::rename(&moved, dir.path())?;
    assert_eq!(state(&list?, "vm2"), Some("up"));
    assert_eq!(
        again.execute("query-name", None, json!(3)).await?["return"]["name"],
        "moved"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_making_the_same_vm_name_are_reported_and_none_is_served() -> testkit::Result<()> {
    let dir = TempDir::new("fleet-collide")?;
    let path = |f: &str| dir.path().join(f);
    for file in [
        "vm1.sock",
        "vm1.qmp",
        "a b.sock",
        "a_b.sock",
        "solo.sock",
        "web.sock",
    ] {
        dead_socket(&path(file))?;
    }
    // "web" is also a --qmp target: that one keeps the name
    let web = vec![("web".into(), "tcp:127.0.0.1:1".parse()?)];
    let config = common::fleet(common::limits(), web, Some(dir.path().to_owned()));
    let bridge = common::start_with(config).await;
    let addr = bridge.addr.to_string();

    let list = until(&addr, "solo listed", |l| row(l, "solo").is_some()).await?;
    for (file, other) in [
        ("vm1.sock", "vm1.qmp"),
        ("vm1.qmp", "vm1.sock"),
        ("a b.sock", "a_b.sock"),
        ("a_b.sock", "a b.sock"),
    ] {
        let reason = problem(&list, file).ok_or(format!("{file} not reported: {list}"))?;
        assert!(
            reason.contains(file) && reason.contains(other) && reason.contains("none"),
            "{reason}"
        );
    }
    assert!(
        problem(&list, "web.sock").is_some_and(|r| r.contains("--qmp")),
        "{list}"
    );
    assert_eq!(
        row(&list, "web").map(|r| r["target"].clone()),
        Some(json!("tcp:127.0.0.1:1"))
    );
    assert!(
        row(&list, "vm1").is_none() && row(&list, "a_b").is_none(),
        "{list}"
    );
    assert_eq!(
        testkit::ws::upgrade_status(&format!("ws://{addr}/ws/vm1"), &[]).await?,
        404
    );

    // One of the two gone: the other is served, and the problem with it.
    std::fs::remove_file(path("vm1.qmp"))?;
    let list = until(&addr, "vm1 served", |l| row(l, "vm1").is_some()).await?;
    assert_eq!(
        row(&list, "vm1").map(|r| r["target"].clone()),
        Some(json!(format!("unix:{}", path("vm1.sock").display())))
    );
    assert!(problem(&list, "vm1.sock").is_none(), "{list}");
    // ... and a newcomer taking its name makes it gone again.
    dead_socket(&path("vm1.socket"))?;
    let list = until(&addr, "vm1.socket reported", |l| {
        problem(l, "vm1.socket").is_some()
    })
    .await?;
    assert!(
        problem(&list, "vm1.socket").is_some_and(|r| r.contains("vm1.sock,")),
        "{list}"
    );
    assert_eq!(state(&list, "vm1"), Some("gone"), "{list}");
    assert!(
        row(&list, "vm1").is_some_and(|r| r["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("none of them is served"))),
        "{list}"
    );
    assert_eq!(
        testkit::ws::upgrade_status(&format!("ws://{addr}/ws/vm1"), &[]).await?,
        404
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_vms_are_dropped_after_the_grace_period() -> testkit::Result<()> {
    const ROUNDS: usize = 5;
    const SOCKETS: usize = 200;
    let dir = TempDir::new("fleet-churn")?;
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let grace = Duration::from_millis(300);
    let fleet = Fleet::with_grace(common::limits(), Vec::new(), false, shutdown, grace);
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let idle_tasks = tasks();
    let listed = |fleet: &Fleet| fleet.view().vms.len();
    let removed = |fleet: &Fleet| -> testkit::Result<u64> {
        let text = fleet.metrics();
        let line = text
            .lines()
            .find(|l| l.starts_with("qmp_bridge_vms_removed_total "))
            .ok_or("no qmp_bridge_vms_removed_total in /metrics")?;
        Ok(line.rsplit(' ').next().unwrap_or("").parse()?)
    };

    for round in 0..ROUNDS {
        let files: Vec<_> = (0..SOCKETS)
            .map(|n| dir.path().join(format!("r{round}-{n}.sock")))
            .collect();
        for f in &files {
            dead_socket(f)?;
        }
        fleet.scan(dir.path());
        for f in &files {
            std::fs::remove_file(f)?;
        }
        fleet.scan(dir.path());
        let list = fleet.view();
        let gone = list.vms.iter().filter(|r| r.state == VmState::Gone);
        assert_eq!(gone.count(), listed(&fleet), "every row is gone: {list:?}");
        // this round's rows only: the last round's were past their grace
        assert_eq!(listed(&fleet), SOCKETS);
        assert_eq!(removed(&fleet)?, (round * SOCKETS) as u64);
        tokio::time::sleep(grace).await;
    }
    fleet.scan(dir.path());
    assert_eq!(listed(&fleet), 0);
    assert_eq!(removed(&fleet)?, (ROUNDS * SOCKETS) as u64);
    // and no multiplexer is left retrying a socket that is no more
    for _ in 0..100 {
        if tasks() <= idle_tasks {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        tasks() <= idle_tasks,
        "{} tasks left running, {idle_tasks} before",
        tasks()
    );
    Ok(())
}

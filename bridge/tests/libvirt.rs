//! `--libvirt`: libvirt-managed domains through a real libvirtd (started by the harness
//! when none runs) and real TCG domains of the tests' own: listed with their states,
//! followed live through libvirt's lifecycle events, and each a complete QMP session
//! through libvirt (commands, HMP, events caused outside the bridge).
#![cfg(feature = "libvirt")]

mod common;

use std::time::Duration;

use serde_json::{json, Value};
use testkit::libvirt::{ensure_daemon, virsh, TestDomain, URI};
use testkit::{QmpClient, QmpWs};

fn vms(addr: &str) -> testkit::Result<Value> {
    let r = testkit::http::get(addr, "/api/vms", &[])?;
    Ok(serde_json::from_str(&r.text())?)
}

fn state(list: &Value, name: &str) -> Option<String> {
    let row = list["vms"].as_array()?.iter().find(|v| v["name"] == name)?;
    row["state"].as_str().map(str::to_owned)
}

/// Polls the list until `pred` holds for it.
async fn until(addr: &str, what: &str, pred: impl Fn(&Value) -> bool) -> testkit::Result<Value> {
    for _ in 0..300 {
        let list = vms(addr)?;
        if pred(&list) {
            return Ok(list);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("the VM list never showed {what}: {}", vms(addr)?).into())
}

/// Runs a blocking harness call (virsh) off the test's async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> testkit::Result<T> + Send + 'static,
) -> testkit::Result<T> {
    tokio::task::spawn_blocking(f).await?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domains_are_served_and_followed_live() -> testkit::Result<()> {
    blocking(ensure_daemon).await?;
    let running = blocking(|| TestDomain::running("run")).await?;
    let off = blocking(|| TestDomain::define("off")).await?;
    // HMP allowed by name, as an admin would to let HMP through the guarded default
    let mut limits = common::limits();
    limits.policy.allow = vec!["*".into(), "human-monitor-command".into()];
    let bridge = common::start_with(common::libvirt(limits, &[URI])).await;
    let addr = bridge.addr.to_string();
    let (run_name, off_name) = (running.name.clone(), off.name.clone());

    until(&addr, "a running domain up and a defined one off", |l| {
        state(l, &run_name).as_deref() == Some("up")
            && state(l, &off_name).as_deref() == Some("off")
    })
    .await?;

    // a complete QMP session through libvirt
    let mut ws = QmpWs::open(&format!("ws://{addr}/ws/{run_name}")).await?;
    let status = ws.execute("query-status", None, json!("s1")).await?;
    assert_eq!(status["return"]["running"], json!(true), "{status}");
    let hmp = ws
        .execute(
            "human-monitor-command",
            Some(json!({"command-line": "info status"})),
            json!({"hmp": 1}),
        )
        .await?;
    assert!(
        hmp["return"].as_str().unwrap_or("").contains("running"),
        "{hmp}"
    );
    let missing = ws.execute("query-no-such-thing", None, json!(7)).await?;
    assert_eq!(
        missing["error"]["class"],
        json!("CommandNotFound"),
        "{missing}"
    );

    // events caused outside the bridge arrive live
    let name = run_name.clone();
    blocking(move || virsh(&["suspend", &name]).map(drop)).await?;
    let stop = ws.event("STOP").await?;
    assert!(stop["timestamp"]["seconds"].as_i64().is_some(), "{stop}");
    let name = run_name.clone();
    blocking(move || virsh(&["resume", &name]).map(drop)).await?;
    ws.event("RESUME").await?;

    // run-state commands go through libvirt's own API: libvirt knows why it is paused
    let stopped = ws.execute("stop", None, json!("st")).await?;
    assert!(stopped.get("return").is_some(), "{stopped}");
    ws.event("STOP").await?;
    let name = run_name.clone();
    let why = blocking(move || virsh(&["domstate", "--reason", &name])).await?;
    assert!(why.contains("paused (user)"), "{why}");
    ws.execute("cont", None, json!("c")).await?;
    ws.event("RESUME").await?;

    // guarded by default: nothing that changes the domain behind libvirt's back
    let refused = ws
        .execute("device_del", Some(json!({"id": "x"})), json!("d"))
        .await?;
    let desc = refused["error"]["desc"].as_str().unwrap_or("");
    assert!(desc.contains("behind libvirt's back"), "{refused}");

    // a shut-off domain is started through libvirt from the list's endpoint
    let list = vms(&addr)?;
    let row = list["vms"]
        .as_array()
        .and_then(|v| v.iter().find(|r| r["name"] == off_name));
    assert_eq!(
        row.map(|r| r["managed_by"].clone()),
        Some(json!("libvirt")),
        "{list}"
    );
    let started = testkit::http::post(&addr, &format!("/api/vms/{off_name}/start"), &[])?;
    assert_eq!(started.status, 200, "{}", started.text());
    assert_eq!(started.text(), r#"{"return":{}}"#);
    let again = testkit::http::post(&addr, &format!("/api/vms/{off_name}/start"), &[])?;
    assert_eq!(again.status, 409, "already running: {}", again.text());
    until(&addr, "the started domain up", |l| {
        state(l, &off_name).as_deref() == Some("up")
    })
    .await?;
    let off = blocking(move || off.state().map(|s| (s, off))).await?;
    assert_eq!(off.0, "running");
    let off = off.1;

    // undefined outside: gone from the list
    blocking(move || {
        drop(running);
        Ok(())
    })
    .await?;
    until(&addr, "the undefined domain gone", |l| {
        state(l, &run_name).is_none()
    })
    .await?;
    drop(off);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_uris_show_their_domains_apart() -> testkit::Result<()> {
    blocking(ensure_daemon).await?;
    let domain = blocking(|| TestDomain::running("two")).await?;
    // the same host opened twice stands for two hosts: each URI's domains get its name
    let config = common::libvirt(common::limits(), &[URI, "qemu:///system?x=2"]);
    let bridge = common::start_with(config).await;
    let addr = bridge.addr.to_string();
    let (first, second) = (
        format!("local.{}", domain.name),
        format!("local2.{}", domain.name),
    );
    until(&addr, "the domain under both hosts' names", |l| {
        state(l, &first).as_deref() == Some("up") && state(l, &second).as_deref() == Some("up")
    })
    .await?;
    for name in [&first, &second] {
        let mut ws = QmpWs::open(&format!("ws://{addr}/ws/{name}")).await?;
        let status = ws.execute("query-status", None, json!(name)).await?;
        assert_eq!(status["return"]["running"], json!(true), "{status}");
    }
    blocking(move || {
        drop(domain);
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_bridge_starts_nothing() -> testkit::Result<()> {
    blocking(ensure_daemon).await?;
    let off = blocking(|| TestDomain::define("ro")).await?;
    let mut limits = common::limits();
    limits.policy.read_only = true;
    let bridge = common::start_with(common::libvirt(limits, &[URI])).await;
    let addr = bridge.addr.to_string();
    let name = off.name.clone();
    until(&addr, "the domain off", |l| {
        state(l, &name).as_deref() == Some("off")
    })
    .await?;
    let refused = testkit::http::post(&addr, &format!("/api/vms/{name}/start"), &[])?;
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(refused.text().contains("--read-only"), "{}", refused.text());
    let off = blocking(move || off.state().map(|s| (s, off))).await?;
    assert_eq!(off.0, "shut off");
    Ok(())
}

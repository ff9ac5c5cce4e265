//! The screen and keyboard of a libvirt domain (a real libvirtd, a real TCG domain with
//! VGA): its QEMU runs as libvirt's user, so the screen says it is not shown (204, no
//! error for a page), and typing goes through libvirt like any command.
#![cfg(feature = "libvirt")]

mod common;

use std::time::Duration;

use testkit::libvirt::{ensure_daemon, TestDomain, URI};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_libvirt_domain_says_its_screen_is_not_shown_and_takes_keys() -> testkit::Result<()> {
    tokio::task::spawn_blocking(ensure_daemon).await??;
    let domain = tokio::task::spawn_blocking(|| TestDomain::running("screen")).await??;
    let bridge = common::start_with(common::libvirt(common::limits(), &[URI])).await;
    let addr = bridge.addr.to_string();
    let name = domain.name.clone();
    let list_says_up = |addr: &str| -> testkit::Result<bool> {
        let list = testkit::http::get(addr, "/api/vms", &[])?.text();
        let list: serde_json::Value = serde_json::from_str(&list)?;
        Ok(list["vms"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|v| v["name"] == name.as_str() && v["state"] == "up"))
    };
    let mut tries = 0;
    while !list_says_up(&addr)? {
        tries += 1;
        assert!(tries < 300, "the domain never came up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let screen = testkit::http::get(&addr, &format!("/vm/{name}/screen.png"), &[])?;
    assert_eq!(screen.status, 204, "{}", screen.text());
    let why = screen.header("x-screen-problem").unwrap_or_default();
    assert!(why.contains("libvirt"), "{why}");

    let keys = testkit::http::post_json(
        &addr,
        &format!("/vm/{name}/keys"),
        &[],
        r#"{"keys": [["shift"]]}"#,
    )?;
    assert_eq!(keys.status, 200, "{}", keys.text());
    assert_eq!(keys.text(), r#"{"sent":1}"#);
    bridge.stop().await?;
    Ok(())
}

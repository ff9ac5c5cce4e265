//! End to end with libvirt: headless Chromium on the VM list of a real `qmp-bridge
//! --libvirt` against a real libvirtd: a libvirt domain is marked as such, a shut-off one
//! is started from its row (through libvirt), and its row turns up.
//! Set `QMP_CONSOLE_SCREENSHOTS=DIR` to save what the page looked like.
#![cfg(feature = "libvirt")]

use std::path::Path;
use std::time::Duration;

use testkit::libvirt::{ensure_daemon, TestDomain, URI};
use testkit::{BridgeProcess, Browser};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread")]
async fn a_shut_off_domain_is_started_from_the_list() -> testkit::Result<()> {
    tokio::task::spawn_blocking(ensure_daemon).await??;
    let domain = tokio::task::spawn_blocking(|| TestDomain::define("page")).await??;
    let bridge = BridgeProcess::start(
        Path::new(env!("CARGO_BIN_EXE_qmp-bridge")),
        &["--libvirt", URI, "--listen", "127.0.0.1:0"],
    )?;
    bridge.require_ui()?;
    let browser = Browser::launch().await?;
    let page = browser.new_page(&bridge.url).await?;
    let row = format!("[data-testid=vm-row][data-name='{}']", domain.name);
    let in_row = |testid: &str| format!("document.querySelector(\"{row} [data-testid={testid}]\")");
    page.wait_for(
        &format!("{}?.textContent === 'off'", in_row("vm-state")),
        WAIT,
    )
    .await?;
    assert_eq!(
        page.eval(&format!("{}?.textContent", in_row("vm-managed")))
            .await?,
        serde_json::json!("libvirt")
    );
    if let Ok(dir) = std::env::var("QMP_CONSOLE_SCREENSHOTS") {
        page.screenshot(&Path::new(&dir).join("vm-list-libvirt-off.png"))
            .await?;
    }
    page.eval(&format!("{}.click()", in_row("vm-start")))
        .await?;
    page.wait_for(
        &format!("{}?.textContent === 'up'", in_row("vm-state")),
        WAIT,
    )
    .await?;
    page.wait_for(
        &format!(
            "{}?.textContent === 'Start: done'",
            in_row("vm-action-result")
        ),
        WAIT,
    )
    .await?;
    let state = tokio::task::spawn_blocking(move || domain.state().map(|s| (s, domain))).await??;
    assert_eq!(state.0, "running");
    if let Ok(dir) = std::env::var("QMP_CONSOLE_SCREENSHOTS") {
        page.screenshot(&Path::new(&dir).join("vm-list-libvirt-up.png"))
            .await?;
    }
    page.assert_no_errors();
    Ok(())
}

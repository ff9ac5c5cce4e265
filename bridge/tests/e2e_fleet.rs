//! End to end, many VMs: a real browser on the VM list and two consoles of a real
//! `qmp-bridge --qmp-dir` serving a folder of real QEMUs.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use testkit::{BridgeProcess, Browser, Page, Qemu, TempDir};

const WAIT: Duration = Duration::from_secs(30);

fn row_text(name: &str, id: &str) -> String {
    format!(
        "document.querySelector('[data-testid=vm-row][data-name=\"{name}\"] [data-testid={id}]')?.textContent"
    )
}

async fn wait_row(page: &Page, name: &str, id: &str, want: &str) -> testkit::Result<()> {
    page.wait_for(&format!("{} === '{want}'", row_text(name, id)), WAIT)
        .await
        .map(|_| ())
}

async fn row_value(page: &Page, name: &str, id: &str) -> testkit::Result<Value> {
    page.eval(&row_text(name, id)).await
}

/// Clicks a row's action button.
async fn act(page: &Page, name: &str, action: &str) -> testkit::Result<()> {
    let clicked = page
        .eval(&format!(
            "(() => {{ const b = document.querySelector('[data-testid=vm-row][data-name=\"{name}\"] [data-testid=vm-action][data-action={action}]'); if (!b || b.disabled) return false; b.click(); return true; }})()"
        ))
        .await?;
    if clicked != Value::Bool(true) {
        return Err(format!("no enabled {action} button on {name}").into());
    }
    Ok(())
}

/// Sends `command` from a console page and returns the reply's text.
async fn console_command(page: &Page, command: &str) -> testkit::Result<String> {
    page.wait_for(
        "document.querySelector('[data-testid=connection-state]')?.textContent === 'ready'",
        WAIT,
    )
    .await?;
    let answered = format!(
        "[...document.querySelectorAll('[data-testid=response][data-ok]')].filter(e => e.textContent.includes('\"execute\":\"{command}\"'))"
    );
    let before = page
        .eval(&format!("{answered}.length"))
        .await?
        .as_u64()
        .unwrap_or(0);
    page.fill("command-name", command).await?;
    page.key("Enter", true).await?;
    page.wait_for(&format!("{answered}.length > {before}"), WAIT)
        .await?;
    let text = page
        .eval(&format!("{answered}.map(e => e.textContent).join('\\n')"))
        .await?;
    Ok(text.as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vm_list_and_two_consoles_in_one_browser() -> testkit::Result<()> {
    let dir = TempDir::new("e2e-fleet")?;
    let sock = |n: &str| dir.path().join(format!("{n}.sock"));
    let _a = Qemu::start_named(&sock("vm-a"), false, Some("alpha"))?;
    let _b = Qemu::start_named(&sock("vm-b"), false, Some("bravo"))?;
    let mut c = Qemu::start_named(&sock("vm-c"), false, Some("charlie"))?;
    std::fs::write(dir.path().join("README"), "not a socket")?;
    let folder = dir.path().to_string_lossy().into_owned();
    let bridge = BridgeProcess::start(
        Path::new(env!("CARGO_BIN_EXE_qmp-bridge")),
        &[
            "--qmp-dir",
            &folder,
            "--listen",
            "127.0.0.1:0",
            "--deny",
            "vm-b:system_powerdown",
        ],
    )?;
    bridge.require_ui()?;
    let browser = Browser::launch().await?;
    let list = browser.new_page(&bridge.url).await?;
    for vm in ["vm-a", "vm-b", "vm-c"] {
        wait_row(&list, vm, "vm-state", "up").await?;
        wait_row(&list, vm, "vm-run-state", "prelaunch").await?;
        let version = row_value(&list, vm, "vm-version").await?;
        assert!(
            version
                .as_str()
                .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit())),
            "{version}"
        );
    }
    list.wait_for(
        "document.querySelector('[data-testid=vm-problem][data-name=README]') !== null",
        WAIT,
    )
    .await?;

    // Quick actions flip only their own row.
    act(&list, "vm-a", "resume").await?;
    wait_row(&list, "vm-a", "vm-run-state", "running").await?;
    act(&list, "vm-a", "pause").await?;
    wait_row(&list, "vm-a", "vm-run-state", "paused").await?;
    assert_eq!(row_value(&list, "vm-b", "vm-run-state").await?, "prelaunch");
    assert_eq!(row_value(&list, "vm-c", "vm-run-state").await?, "prelaunch");
    // A destructive one asks first, and the bridge's policy still applies.
    act(&list, "vm-b", "powerdown").await?;
    list.click("vm-confirm").await?;
    list.wait_for(
        &format!(
            "({})?.includes('refused by qmp-bridge policy')",
            row_text("vm-b", "vm-action-result")
        ),
        WAIT,
    )
    .await?;

    // Two consoles at once, each on its own QEMU.
    let console_a = browser
        .new_page(&format!(
            "{}vm/vm-a?token={}",
            base(&bridge.url),
            token(&bridge)
        ))
        .await?;
    let console_c = browser
        .new_page(&format!(
            "{}vm/vm-c?token={}",
            base(&bridge.url),
            token(&bridge)
        ))
        .await?;
    let reply_a = console_command(&console_a, "query-name").await?;
    let reply_c = console_command(&console_c, "query-name").await?;
    assert!(
        reply_a.contains("alpha") && !reply_a.contains("charlie"),
        "{reply_a}"
    );
    assert!(
        reply_c.contains("charlie") && !reply_c.contains("alpha"),
        "{reply_c}"
    );
    let status_a = console_command(&console_a, "query-status").await?;
    assert!(
        status_a.contains("paused"),
        "the list's pause reached vm-a: {status_a}"
    );
    wait_row(&list, "vm-a", "vm-clients", "1").await?;

    // A VM that appears later shows up; one that dies shows as gone.
    let _d = Qemu::start_named(&sock("vm-d"), false, Some("delta"))?;
    c.kill();
    wait_row(&list, "vm-d", "vm-state", "up").await?;
    wait_row(&list, "vm-c", "vm-state", "gone").await?;
    assert_eq!(row_value(&list, "vm-a", "vm-state").await?, "up");

    for page in [&list, &console_a, &console_c] {
        page.assert_no_errors();
    }
    Ok(())
}

/// `http://HOST:PORT/` of a printed URL.
fn base(url: &str) -> String {
    url.split_once('?').map_or(url, |(b, _)| b).to_owned()
}

fn token(bridge: &BridgeProcess) -> String {
    bridge.token.clone().unwrap_or_default()
}

/// Shared sessions in real browsers: two pages and a `--share-socket` client on one QEMU.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pages_and_a_qmp_tool_share_one_monitor() -> testkit::Result<()> {
    use testkit::QmpClient;
    let qemu = Qemu::start()?;
    let dir = TempDir::new("e2e-share")?;
    let share = dir.path().join("shared.sock");
    let share_arg = share.to_string_lossy().into_owned();
    let bridge = BridgeProcess::start(
        Path::new(env!("CARGO_BIN_EXE_qmp-bridge")),
        &[
            "--qmp",
            &qemu.target(),
            "--share-socket",
            &share_arg,
            "--listen",
            "127.0.0.1:0",
        ],
    )?;
    let browser = Browser::launch().await?;
    let one = browser.new_page(&bridge.url).await?;
    let two = browser.new_page(&bridge.url).await?;
    let mut tool = testkit::UnixQmp::connect(&share).await?;
    tool.handshake().await?;

    // both pages hold a session at once (QEMU alone would serve only one)
    let status_one = console_command(&one, "query-status").await?;
    let status_two = console_command(&two, "query-status").await?;
    assert!(status_one.contains("prelaunch") && status_two.contains("prelaunch"));

    // the tool resumes and pauses the VM: both pages see the events and flip their badge
    tool.execute("cont", None, serde_json::json!(1)).await?;
    tool.execute("stop", None, serde_json::json!(2)).await?;
    for page in [&one, &two] {
        page.wait_for(
            "document.querySelector('[data-testid=event][data-name=STOP]') !== null",
            WAIT,
        )
        .await?;
        page.wait_for(
            "document.querySelector('[data-testid=vm-status]')?.textContent.includes('paused')",
            WAIT,
        )
        .await?;
    }
    // a page's command: its reply only on that page, the event everywhere
    one.click("action-cont").await?;
    tool.event("RESUME").await?;
    two.wait_for(
        "document.querySelector('[data-testid=event][data-name=RESUME]') !== null",
        WAIT,
    )
    .await?;
    one.wait_for("[...document.querySelectorAll('[data-testid=response][data-ok=true]')].some(e => e.textContent.includes('\"execute\":\"cont\"'))", WAIT).await?;
    let on_two = two
        .eval("[...document.querySelectorAll('[data-testid=response]')].filter(e => e.textContent.includes('\"execute\":\"cont\"')).length")
        .await?;
    assert_eq!(on_two, 0, "page two shows page one's reply");
    for page in [&one, &two] {
        page.assert_no_errors();
    }
    Ok(())
}

//! End to end, the VM's screen: headless Chromium on the console and the VM list of a real
//! `qmp-bridge`, on real QEMUs with `-vga std` running SeaBIOS (waiting at "Press ESC for
//! boot menu"): the console shows the screen, a key typed into it reaches the VM (ESC
//! opens the boot menu), a click lands on the VM's USB tablet where it was aimed (QEMU's
//! own input trace says so), Ctrl-Alt-Del restarts it, a hidden page reads nothing, and
//! the list shows thumbnails (or says a VM has no display).
//!
//! Set `QMP_CONSOLE_SCREENSHOTS=DIR` to save what the pages looked like.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use testkit::{BridgeProcess, Browser, Page, Qemu, TempDir};

const WAIT: Duration = Duration::from_secs(30);

/// SeaBIOS on a standard VGA, waiting 30 s for ESC; its socket at `socket`, if given.
fn seabios(socket: Option<&Path>) -> testkit::Result<Qemu> {
    let mut builder = Qemu::builder()
        .vga("std")
        .running()
        .args(["-boot", "menu=on,splash-time=30000"]);
    if let Some(socket) = socket {
        builder = builder.socket(socket);
    }
    builder.start()
}

/// Lit pixels in rows `from..to` of the picture in the `<img>` that `selector` finds, as
/// the page has it: `null` until it is loaded, else `{width, height, lit}`.
fn lit_expr(selector: &str, from: u32, to: u32) -> String {
    format!(
        "(() => {{ const img = document.querySelector({selector:?}); \
         if (!img || !img.complete || !img.naturalWidth) return null; \
         const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight; \
         const g = c.getContext('2d'); g.drawImage(img, 0, 0); \
         const h = Math.max(0, Math.min({to}, c.height) - {from}); \
         const d = h ? g.getImageData(0, {from}, c.width, h).data : []; let lit = 0; \
         for (let i = 0; i < d.length; i += 4) if (d[i] > 64 || d[i+1] > 64 || d[i+2] > 64) lit++; \
         return {{width: c.width, height: c.height, lit}}; }})()"
    )
}

async fn lit(page: &Page, selector: &str, from: u32, to: u32) -> testkit::Result<Value> {
    page.eval(&lit_expr(selector, from, to)).await
}

/// Waits until the picture's rows `from..to` have more than `min` lit pixels (or, with
/// `min` 0, none).
async fn wait_lit(
    page: &Page,
    selector: &str,
    (from, to): (u32, u32),
    want: impl Fn(u64) -> bool,
    what: &str,
) -> testkit::Result<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let v = lit(page, selector, from, to).await?;
        if v["lit"].as_u64().is_some_and(&want) {
            return Ok(v);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}: last {v}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Presses and releases a key as a real keyboard would (trusted events), on whatever has
/// the focus.
async fn press(page: &Page, code: &str, key: &str, key_code: u32) -> testkit::Result<()> {
    for kind in ["rawKeyDown", "keyUp"] {
        page.call(
            "Input.dispatchKeyEvent",
            json!({"type": kind, "code": code, "key": key, "windowsVirtualKeyCode": key_code}),
        )
        .await?;
    }
    Ok(())
}

fn screendumps(bridge: &BridgeProcess, vm: &str) -> testkit::Result<u64> {
    let token = bridge.token.clone().unwrap_or_default();
    let metrics = testkit::http::get(&bridge.addr, &format!("/metrics?token={token}"), &[])?;
    let prefix = format!("qmp_bridge_screendumps_total{{vm=\"{vm}\"}} ");
    let line = metrics
        .text()
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
        .ok_or("no screendumps counter")?;
    Ok(line.trim().parse()?)
}

/// With `QMP_CONSOLE_SCREENSHOTS=DIR`, `DIR/NAME.png`.
async fn screenshot(page: &Page, name: &str) -> testkit::Result<()> {
    if let Ok(dir) = std::env::var("QMP_CONSOLE_SCREENSHOTS") {
        std::fs::create_dir_all(&dir)?;
        page.screenshot(&Path::new(&dir).join(format!("{name}.png")))
            .await?;
    }
    Ok(())
}

const SCREEN_IMG: &str = "[data-testid=screen] img";

/// The last value QEMU's input trace gives `axis`, as a fraction of its range.
fn traced(trace: &str, axis: &str) -> Option<f64> {
    let prefix = format!("axis {axis}, value 0x");
    let hex = trace
        .rsplit(&prefix)
        .next()
        .filter(|_| trace.contains(&prefix))?;
    let hex: String = hex.chars().take_while(char::is_ascii_hexdigit).collect();
    Some(f64::from(u32::from_str_radix(&hex, 16).ok()?) / 32767.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_the_screen_and_types_into_it() -> testkit::Result<()> {
    let dir = TempDir::new("e2e-screen")?;
    let trace = dir.path().join("input.trace");
    let qemu = Qemu::builder()
        .vga("std")
        .running()
        .args(["-boot", "menu=on,splash-time=30000"])
        .usb_tablet()
        .input_trace(&trace)
        .start()?;
    let bridge = BridgeProcess::start(
        Path::new(env!("CARGO_BIN_EXE_qmp-bridge")),
        &["--qmp", &qemu.target(), "--listen", "127.0.0.1:0"],
    )?;
    bridge.require_ui()?;
    let browser = Browser::launch().await?;
    let page = browser.new_page(&bridge.url).await?;

    // SeaBIOS's text, at QEMU's resolution; no boot menu yet
    let shown = wait_lit(
        &page,
        SCREEN_IMG,
        (0, 16),
        |n| n > 200,
        "SeaBIOS's first line",
    )
    .await?;
    assert_eq!(
        (shown["width"].as_u64(), shown["height"].as_u64()),
        (Some(720), Some(400))
    );
    assert_eq!(
        lit(&page, SCREEN_IMG, 90, 120).await?["lit"],
        0,
        "no menu yet"
    );
    page.wait_for(
        "document.querySelector('[data-testid=send-ctrl-alt-del]') !== null",
        WAIT,
    )
    .await?;

    // ESC typed into the focused screen opens the boot menu: the next frames show it
    page.eval("document.querySelector('[data-testid=screen]').focus()")
        .await?;
    let frames_before = page
        .eval("Number(document.querySelector('[data-testid=screen]').dataset.frames)")
        .await?;
    press(&page, "Escape", "Escape", 27).await?;
    wait_lit(
        &page,
        SCREEN_IMG,
        (90, 120),
        |n| n > 200,
        "the boot menu after ESC",
    )
    .await?;
    let frames_after = page
        .eval("Number(document.querySelector('[data-testid=screen]').dataset.frames)")
        .await?;
    assert!(
        frames_after.as_u64() > frames_before.as_u64(),
        "a new frame came"
    );
    screenshot(&page, "console-screen").await?;

    // a click a quarter across and three quarters down the picture lands there
    let at = page
        .eval(&format!(
            "(() => {{ const r = document.querySelector('{SCREEN_IMG}').getBoundingClientRect(); \
             return [r.left + r.width / 4, r.top + r.height * 3 / 4]; }})()"
        ))
        .await?;
    let (x, y) = (at[0].as_f64().unwrap_or(0.0), at[1].as_f64().unwrap_or(0.0));
    for kind in ["mousePressed", "mouseReleased"] {
        page.call(
            "Input.dispatchMouseEvent",
            json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
        )
        .await?;
    }
    let log = testkit::wait_until(WAIT, "the click in QEMU's input trace", || {
        let t = std::fs::read_to_string(&trace).ok()?;
        t.contains("button left, down 0").then_some(t)
    })?;
    let (tx, ty) = (traced(&log, "x"), traced(&log, "y"));
    assert!(
        tx.is_some_and(|v| (v - 0.25).abs() < 0.02) && ty.is_some_and(|v| (v - 0.75).abs() < 0.02),
        "the click landed at {tx:?}, {ty:?}"
    );
    assert_eq!(
        page.testid_text("screen-note").await?,
        Value::Null,
        "no click error"
    );

    // Ctrl-Alt-Del restarts the VM: SeaBIOS starts over, without the menu
    page.click("send-ctrl-alt-del").await?;
    wait_lit(
        &page,
        SCREEN_IMG,
        (90, 120),
        |n| n == 0,
        "the menu gone after Ctrl-Alt-Del",
    )
    .await?;
    assert_eq!(
        page.testid_text("screen-note").await?,
        Value::Null,
        "no typing error"
    );

    // a hidden page reads no screen (another tab, a minimised window)
    page.eval("Object.defineProperty(document, 'hidden', {configurable: true, get: () => true})")
        .await?;
    tokio::time::sleep(Duration::from_millis(1500)).await; // a read under way ends
    let before = screendumps(&bridge, "qmp")?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        screendumps(&bridge, "qmp")?,
        before,
        "screendumps while hidden"
    );
    page.eval("delete document.hidden").await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    while screendumps(&bridge, "qmp")? == before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reading once shown again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    page.assert_no_errors();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vm_list_shows_thumbnails() -> testkit::Result<()> {
    let dir = TempDir::new("e2e-thumbs")?;
    let _screen = seabios(Some(&dir.path().join("bios.sock")))?;
    let _headless = Qemu::builder()
        .socket(&dir.path().join("headless.sock"))
        .vga("none")
        .start()?;
    let folder = dir.path().to_string_lossy().into_owned();
    let bridge = BridgeProcess::start(
        Path::new(env!("CARGO_BIN_EXE_qmp-bridge")),
        &["--qmp-dir", &folder, "--listen", "127.0.0.1:0"],
    )?;
    bridge.require_ui()?;
    let browser = Browser::launch().await?;
    let list = browser.new_page(&bridge.url).await?;

    let thumb = "[data-testid=vm-row][data-name=bios] [data-testid=screen-thumb] img";
    let shown = wait_lit(&list, thumb, (0, 16), |n| n > 200, "bios's thumbnail").await?;
    assert_eq!(shown["width"], 720);
    let none = "document.querySelector('[data-testid=vm-row][data-name=headless] [data-testid=screen-thumb]')?.textContent";
    let text = list
        .wait_for(
            &format!("({none} || '').includes('no display') && {none}"),
            WAIT,
        )
        .await?;
    assert!(
        text.as_str().is_some_and(|t| t.contains("no display")),
        "{text}"
    );
    screenshot(&list, "vm-list-thumbnails").await?;

    // the thumbnail leads to the console, whose screen is the same VM's
    let href = list
        .eval("document.querySelector('[data-testid=vm-row][data-name=bios] [data-testid=screen-thumb]').getAttribute('href')")
        .await?;
    let base = bridge
        .url
        .split_once('?')
        .map_or(bridge.url.as_str(), |(b, _)| b);
    let console = browser
        .new_page(&format!(
            "{}{}",
            base.trim_end_matches('/'),
            href.as_str().unwrap_or_default()
        ))
        .await?;
    wait_lit(
        &console,
        SCREEN_IMG,
        (0, 16),
        |n| n > 200,
        "the console's screen",
    )
    .await?;
    for page in [&list, &console] {
        page.assert_no_errors();
    }
    Ok(())
}

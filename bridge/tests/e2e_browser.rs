//! End to end: headless Chromium opens the page a real `qmp-bridge` serves, pointed at a
//! real QEMU; the app mounts, performs the QMP handshake and shows QEMU's greeting; the
//! module is served compressed as the browser accepts.

use std::path::Path;
use std::time::Duration;

use testkit::{BridgeProcess, Browser, Qemu};

fn qemu_version() -> String {
    let out = std::process::Command::new(testkit::qemu::binary())
        .arg("--version")
        .output()
        .expect("qemu-system-x86_64 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)
        .expect("a version in `qemu-system-x86_64 --version`")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn page_performs_handshake_and_shows_the_greeting() -> testkit::Result<()> {
    let qemu = Qemu::start()?;
    let bridge = BridgeProcess::start(
        Path::new(env!("CARGO_BIN_EXE_qmp-bridge")),
        &["--qmp", &qemu.target(), "--listen", "127.0.0.1:0"],
    )?;
    bridge.require_ui()?;

    let browser = Browser::launch().await?;
    let page = browser.new_page(&bridge.url).await?;
    page.wait_for(
        "document.querySelector('[data-testid=connection-state]')?.textContent === 'ready'",
        Duration::from_secs(30),
    )
    .await?;
    let greeting = page.testid_text("greeting").await?;
    let greeting = greeting.as_str().unwrap_or_default();
    let version = qemu_version();
    assert!(
        greeting.starts_with(&format!("QEMU {version}")),
        "greeting {greeting:?} does not show QEMU {version}"
    );
    page.assert_no_errors();

    // the module Chromium ran went brotli-compressed (the build's .br), gzip to those
    // that take only gzip, whole to the rest
    for (accept, encoding) in [
        ("gzip, deflate, br", Some("br")),
        ("gzip", Some("gzip")),
        ("identity", None),
    ] {
        let r = testkit::http::get(
            &bridge.addr,
            "/qmp_web_bg.wasm",
            &[("Accept-Encoding", accept)],
        )?;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-encoding"), encoding, "{accept}");
        assert_eq!(r.header("content-type"), Some("application/wasm"));
        if encoding.is_none() {
            assert!(r.body.starts_with(b"\0asm"), "a wasm module");
        }
    }
    Ok(())
}

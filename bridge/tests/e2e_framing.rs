//! End to end, clickjacking: a page of another origin puts the console, with its valid
//! token, into an `<iframe>`; headless Chromium must refuse to show it (`X-Frame-Options`,
//! `frame-ancestors`), so no session is opened on the bridge. The same URL opened
//! directly does open one, so the refusal is the headers' doing.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use testkit::{BridgeProcess, Browser, Qemu};

const WAIT: Duration = Duration::from_secs(30);

/// Serves `html` for every request on `127.0.0.1:0`, from a thread that lives as long as
/// the test; returns the port.
fn serve_page(html: String) -> testkit::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
                html.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    Ok(port)
}

/// How many websocket clients the bridge has on `vm`.
fn clients(bridge: &BridgeProcess, vm: &str) -> testkit::Result<u64> {
    let token = bridge
        .token
        .as_deref()
        .ok_or("the bridge printed no token")?;
    let r = testkit::http::get(&bridge.addr, &format!("/api/vms?token={token}"), &[])?;
    let list: Value = serde_json::from_str(&r.text())?;
    list["vms"]
        .as_array()
        .and_then(|vms| vms.iter().find(|v| v["name"] == vm))
        .and_then(|v| v["clients"].as_u64())
        .ok_or_else(|| format!("no client count for {vm}: {list}").into())
}

#[tokio::test(flavor = "multi_thread")]
async fn another_site_cannot_frame_the_console() -> testkit::Result<()> {
    let qemu = Qemu::start()?;
    let target = format!("vm1={}", qemu.target());
    let bridge = BridgeProcess::start(
        Path::new(env!("CARGO_BIN_EXE_qmp-bridge")),
        &["--qmp", &target, "--listen", "127.0.0.1:0"],
    )?;
    bridge.require_ui()?;
    let token = bridge.token.clone().ok_or("the bridge printed no token")?;
    let console = format!("http://{}/vm/vm1?token={token}", bridge.addr);

    // `localhost` rather than 127.0.0.1: another port is another origin already, another
    // host makes it another site too.
    let port = serve_page(format!(
        "<!doctype html><title>elsewhere</title>\
         <iframe id=f src=\"{console}\" width=800 height=600 \
          onload=\"document.body.dataset.loaded = 'yes'\"></iframe>"
    ))?;
    let browser = Browser::launch().await?;
    let page = browser
        .new_page(&format!("http://localhost:{port}/"))
        .await?;
    page.wait_for("document.body?.dataset.loaded === 'yes'", WAIT)
        .await?;
    // The console, had it loaded, would connect within a few seconds: watch for that
    // session a while (it is found within a second when the headers are gone).
    let started = tokio::time::Instant::now();
    while started.elapsed() < Duration::from_secs(6) {
        assert_eq!(
            clients(&bridge, "vm1")?,
            0,
            "the framed console opened a session after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!bridge.log().contains("session opened"), "{}", bridge.log());
    // and Chromium says why it showed nothing
    let errors = page.errors();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("X-Frame-Options") || e.contains("frame-ancestors")),
        "Chromium reported no refused frame; errors: {errors:#?}"
    );

    // The same URL at the top level is the working console.
    let direct = browser.new_page(&console).await?;
    direct
        .wait_for(
            "document.querySelector('[data-testid=connection-state]')?.textContent === 'ready'",
            WAIT,
        )
        .await?;
    assert_eq!(clients(&bridge, "vm1")?, 1);
    direct.assert_no_errors();
    Ok(())
}

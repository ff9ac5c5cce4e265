//! The VM's screen, keyboard and pointer through the bridge, against a real QEMU with
//! `-vga std` running SeaBIOS (which waits at "Press ESC for boot menu"):
//! `/vm/NAME/screen.png`, `/vm/NAME/keys` and `/vm/NAME/pointer`, with their token,
//! policy, sharing, timeout and audit rules.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use qmp_bridge::audit::AuditLog;
use qmp_bridge::policy::Policy;
use qmp_bridge::security::Auth;
use qmp_bridge::server::Mode;
use qmp_bridge::session::Settings;
use serde_json::json;
use testkit::http::HttpResponse;
use testkit::{Qemu, QmpClient, QmpWs, TempDir};

const TOKEN: &str = "screen-test-token";

/// SeaBIOS on a standard VGA, waiting 30 s for ESC.
fn seabios() -> testkit::Result<Qemu> {
    Qemu::builder()
        .vga("std")
        .running()
        .args(["-boot", "menu=on,splash-time=30000"])
        .start()
}

/// An in-process shared-mode bridge on `qemu` with a token.
async fn bridge(settings: Settings, mode: Mode) -> common::TestBridge {
    let mut config = common::config_in(mode, settings);
    config.gate.auth = Auth::Token(TOKEN.into());
    common::start_with(config).await
}

async fn get(bridge: &common::TestBridge, path: &str) -> testkit::Result<HttpResponse> {
    get_with(bridge, path, &[]).await
}

async fn get_with(
    bridge: &common::TestBridge,
    path: &str,
    headers: &[(&str, &str)],
) -> testkit::Result<HttpResponse> {
    request(bridge, path, headers, None).await
}

async fn post(
    bridge: &common::TestBridge,
    path: &str,
    headers: &[(&str, &str)],
    body: serde_json::Value,
) -> testkit::Result<HttpResponse> {
    request(bridge, path, headers, Some(body)).await
}

/// A GET, or a POST of `body`, off the test's runtime threads.
async fn request(
    bridge: &common::TestBridge,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<serde_json::Value>,
) -> testkit::Result<HttpResponse> {
    let addr = bridge.addr.to_string();
    let path = path.to_owned();
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        match body {
            Some(body) => testkit::http::post_json(&addr, &path, &headers, &body.to_string()),
            None => testkit::http::get(&addr, &path, &headers),
        }
    })
    .await?
}

fn screen_path() -> String {
    format!("/vm/test-vm/screen.png?token={TOKEN}")
}

fn keys_path() -> String {
    format!("/vm/test-vm/keys?token={TOKEN}")
}

fn pointer_path() -> String {
    format!("/vm/test-vm/pointer?token={TOKEN}")
}

/// The screen once SeaBIOS has drawn its first line.
async fn seabios_screen(bridge: &common::TestBridge) -> testkit::Result<testkit::png::Image> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = get(bridge, &screen_path()).await?;
        if r.status == 200 {
            let image = testkit::png::decode(&r.body)?;
            if image.lit_in_rows(0..16) > 200 {
                return Ok(image);
            }
        }
        if Instant::now() > deadline {
            return Err(format!("no SeaBIOS text on screen: {} {}", r.status, r.text()).into());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// `qmp_bridge_screendumps_total` of the test VM.
async fn screendumps(bridge: &common::TestBridge) -> testkit::Result<u64> {
    let metrics = get(bridge, &format!("/metrics?token={TOKEN}"))
        .await?
        .text();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("qmp_bridge_screendumps_total{vm=\"test-vm\"}"))
        .ok_or("no screendumps counter")?;
    Ok(line.rsplit(' ').next().unwrap_or("").parse()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_screen_is_seabios_text_behind_the_token() -> testkit::Result<()> {
    let qemu = seabios()?;
    let bridge = bridge(common::settings(&qemu.target()), Mode::Shared).await;

    for path in [
        "/screen.png",
        "/vm/test-vm/screen.png",
        "/vm/nope/screen.png",
    ] {
        let r = get(&bridge, path).await?;
        assert_eq!(r.status, 401, "{path} without the token: {}", r.text());
        let wrong = get(&bridge, &format!("{path}?token=wrong-token")).await?;
        assert_eq!(wrong.status, 401, "{path} with a wrong token");
    }
    let foreign = get_with(
        &bridge,
        &screen_path(),
        &[("Origin", "http://evil.example")],
    )
    .await?;
    assert_eq!(foreign.status, 403, "a foreign page's request");
    let unknown = get(&bridge, &format!("/vm/nope/screen.png?token={TOKEN}")).await?;
    assert_eq!(unknown.status, 404);

    let image = seabios_screen(&bridge).await?;
    assert_eq!((image.width, image.height), (720, 400));
    assert!(
        image.lit() > 1000,
        "SeaBIOS's text: {} lit pixels",
        image.lit()
    );
    assert_eq!(image.lit_in_rows(200..400), 0, "the lower half is empty");

    let r = get(&bridge, &screen_path()).await?;
    assert_eq!(r.header("content-type"), Some("image/png"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    let etag = r.header("etag").ok_or("no ETag")?.to_owned();
    let same = get_with(&bridge, &screen_path(), &[("If-None-Match", &etag)]).await?;
    assert_eq!(same.status, 304, "the same frame again");
    assert!(same.body.is_empty());
    // the single VM's screen is at /screen.png too, as its websocket is at /ws
    let single = get(&bridge, &format!("/screen.png?token={TOKEN}")).await?;
    assert_eq!(single.status, 200);
    assert_eq!(
        single.header("authorization"),
        None,
        "nothing of the token comes back"
    );
    bridge.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_viewers_cause_one_screendump_per_interval() -> testkit::Result<()> {
    let qemu = seabios()?;
    let bridge = bridge(common::settings(&qemu.target()), Mode::Shared).await;
    assert_eq!(screendumps(&bridge).await?, 0);

    // ten at once: one screendump, every viewer the same frame
    let addr = bridge.addr.to_string();
    let viewers: Vec<_> = (0..10)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || testkit::http::get(&addr, &screen_path(), &[]))
        })
        .collect();
    let mut tags = Vec::new();
    for v in viewers {
        let r = v.join().map_err(|_| "viewer panicked")??;
        assert_eq!(r.status, 200, "{}", r.text());
        tags.push(r.header("etag").unwrap_or_default().to_owned());
    }
    assert_eq!(
        screendumps(&bridge).await?,
        1,
        "ten viewers, one screendump"
    );
    tags.dedup();
    assert_eq!(tags.len(), 1, "they share one frame");

    // ten viewers polling every 100 ms for 3 s: at most one screendump per 500 ms
    let started = Instant::now();
    let pollers: Vec<_> = (0..10)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || -> testkit::Result<u32> {
                let mut frames = 0;
                while started.elapsed() < Duration::from_secs(3) {
                    let r = testkit::http::get(&addr, &screen_path(), &[])?;
                    assert_eq!(r.status, 200, "{}", r.text());
                    frames += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Ok(frames)
            })
        })
        .collect();
    let mut frames = 0;
    for p in pollers {
        frames += p.join().map_err(|_| "poller panicked")??;
    }
    let dumps = screendumps(&bridge).await? - 1;
    let most = started.elapsed().as_millis() as u64 / 500 + 1;
    assert!(frames >= 100, "{frames} frames served");
    assert!(
        (2..=most).contains(&dumps),
        "{dumps} screendumps for {frames} frames in {:?} (at most {most})",
        started.elapsed()
    );
    bridge.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_reaches_the_vm_and_is_audited_once_per_burst() -> testkit::Result<()> {
    let qemu = seabios()?;
    let dir = TempDir::new("screen-audit")?;
    let audit = dir.path().join("audit.jsonl");
    let mut settings = common::settings(&qemu.target());
    settings.audit = Some(Arc::new(AuditLog::open(&audit)?));
    let bridge = bridge(settings, Mode::Shared).await;
    let before = seabios_screen(&bridge).await?;
    assert_eq!(before.lit_in_rows(90..120), 0, "no boot menu yet");

    // without the token, from a foreign page, or with keys QEMU does not have: refused
    let esc = json!({"keys": [["esc"]]});
    let r = post(&bridge, "/vm/test-vm/keys", &[], esc.clone()).await?;
    assert_eq!(r.status, 401);
    let r = post(
        &bridge,
        &keys_path(),
        &[("Origin", "http://evil.example")],
        esc.clone(),
    )
    .await?;
    assert_eq!(r.status, 403, "a cross-site POST: {}", r.text());
    let r = post(
        &bridge,
        &keys_path(),
        &[],
        json!({"keys": [["esc", "nope"]]}),
    )
    .await?;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("nope"));
    let r = post(&bridge, &keys_path(), &[], json!({"text": "hi"})).await?;
    assert_eq!(r.status, 400, "{}", r.text());
    // no USB tablet here: a click could not land where it is aimed
    let r = post(&bridge, &pointer_path(), &[], json!({"x": 0.5, "y": 0.5})).await?;
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("absolute pointer"), "{}", r.text());

    // ESC opens SeaBIOS's boot menu; then modifiers alone, which change nothing there:
    // one burst of typing
    let r = post(&bridge, &keys_path(), &[], esc).await?;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&r.body)?,
        json!({"sent": 1})
    );
    for chord in [
        json!([["shift"]]),
        json!([["ctrl"], ["alt"]]),
        json!([["shift"]]),
    ] {
        let r = post(&bridge, &keys_path(), &[], json!({ "keys": chord })).await?;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let r = get(&bridge, &screen_path()).await?;
        let image = testkit::png::decode(&r.body)?;
        if image.lit_in_rows(90..120) > 200 {
            break; // "1. Legacy option rom"
        }
        assert!(Instant::now() < deadline, "no boot menu after ESC");
    }
    let line = testkit::wait_until(Duration::from_secs(10), "the burst's audit line", || {
        let text = std::fs::read_to_string(&audit).ok()?;
        (!text.is_empty()).then_some(text)
    })?;
    // the whole burst is one line, written once typing stopped for 2 s
    tokio::time::sleep(Duration::from_secs(3)).await;
    let text = std::fs::read_to_string(&audit)?;
    let entries: Vec<serde_json::Value> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    // one for the typing, one for the click that found no pointer
    assert_eq!(entries.len(), 2, "{text}");
    assert!(text.starts_with(&line), "{text}");
    let e = entries
        .iter()
        .find(|e| e["command"] == "send-key")
        .ok_or("no send-key burst")?;
    assert_eq!(e["vm"], "test-vm");
    assert_eq!(e["client"], "127.0.0.1");
    assert_eq!(e["keys"], 5, "{e}");
    // a request with a key QEMU does not have was part of it: the burst's outcome is its
    assert_eq!(e["outcome"], "GenericError", "{e}");
    assert!(e["started"].is_string() && e["time"].is_string(), "{e}");
    for key in ["esc", "shift", "ctrl", "\"alt\""] {
        assert!(!text.contains(key), "the audit log names a key: {text}");
    }
    bridge.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_serves_the_screen_and_refuses_typing() -> testkit::Result<()> {
    let qemu = seabios()?;
    let dir = TempDir::new("screen-ro")?;
    let audit = dir.path().join("audit.jsonl");
    let mut settings = common::settings(&qemu.target());
    settings.policy = Policy {
        read_only: true,
        ..Policy::default()
    };
    settings.audit = Some(Arc::new(AuditLog::open(&audit)?));
    let bridge = bridge(settings, Mode::Shared).await;
    let image = seabios_screen(&bridge).await?;
    assert_eq!((image.width, image.height), (720, 400));

    let r = post(&bridge, &keys_path(), &[], json!({"keys": [["esc"]]})).await?;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("--read-only"), "{}", r.text());
    let r = post(&bridge, &pointer_path(), &[], json!({"x": 0.5, "y": 0.5})).await?;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("--read-only"), "{}", r.text());
    // nor may a client name a file for screendump itself
    let mut ws = QmpWs::connect(&format!("{}/test-vm?token={TOKEN}", bridge.ws_url())).await?;
    ws.handshake().await?;
    let dump = json!({"filename": dir.path().join("x.png").to_string_lossy(), "format": "png"});
    let refused = ws.execute("screendump", Some(dump), json!(1)).await?;
    assert!(refused["error"]["desc"]
        .as_str()
        .unwrap_or("")
        .contains("--read-only"));
    assert!(!dir.path().join("x.png").exists());

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let still = get(&bridge, &screen_path()).await?;
    let still = testkit::png::decode(&still.body)?;
    assert_eq!(still.lit_in_rows(90..120), 0, "ESC did not reach the VM");
    let log = testkit::wait_until(Duration::from_secs(10), "the refused burst", || {
        std::fs::read_to_string(&audit)
            .ok()
            .filter(|t| t.contains("send-key"))
    })?;
    assert!(log.contains("\"outcome\":\"refused\""), "{log}");
    assert!(log.contains("\"keys\":0"), "{log}");
    bridge.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicks_reach_an_absolute_pointer_and_are_audited_without_where() -> testkit::Result<()> {
    let dir = TempDir::new("screen-click")?;
    let trace = dir.path().join("input.trace");
    let audit = dir.path().join("audit.jsonl");
    let qemu = Qemu::builder()
        .vga("std")
        .running()
        .usb_tablet()
        .input_trace(&trace)
        .start()?;
    let mut settings = common::settings(&qemu.target());
    settings.audit = Some(Arc::new(AuditLog::open(&audit)?));
    let bridge = bridge(settings, Mode::Shared).await;

    let click = json!({"x": 0.5, "y": 0.25});
    let r = post(&bridge, "/vm/test-vm/pointer", &[], click.clone()).await?;
    assert_eq!(r.status, 401, "without the token");
    let r = post(
        &bridge,
        &pointer_path(),
        &[("Origin", "http://evil.example")],
        click.clone(),
    )
    .await?;
    assert_eq!(r.status, 403, "a cross-site click");
    for bad in [
        json!({"x": 1.5, "y": 0}),
        json!({"x": 0, "y": 0, "button": "nose"}),
    ] {
        let r = post(&bridge, &pointer_path(), &[], bad).await?;
        assert_eq!(r.status, 400, "{}", r.text());
    }
    let r = post(&bridge, &pointer_path(), &[], click).await?;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), r#"{"sent":1}"#);
    // QEMU's own trace of its input events: moved to (16384, 8192) of 32767, pressed, released
    let log = testkit::wait_until(Duration::from_secs(10), "the click in QEMU's trace", || {
        let t = std::fs::read_to_string(&trace).ok()?;
        t.contains("button left, down 0").then_some(t)
    })?;
    let at = |s: &str| log.find(s).unwrap_or_else(|| panic!("no {s:?} in {log}"));
    assert!(at("axis x, value 0x4000") < at("button left, down 1"));
    assert!(at("axis y, value 0x2000") < at("button left, down 1"));
    assert!(at("button left, down 1") < at("button left, down 0"));

    let text = testkit::wait_until(Duration::from_secs(10), "the clicks' audit line", || {
        std::fs::read_to_string(&audit)
            .ok()
            .filter(|t| t.contains("input-send-event"))
    })?;
    let e: serde_json::Value = serde_json::from_str(text.lines().next().unwrap_or(""))?;
    assert_eq!(e["command"], "input-send-event", "{e}");
    assert_eq!(e["clicks"], 1, "{e}");
    assert_eq!(
        e["outcome"], "GenericError",
        "the bad ones were part of it: {e}"
    );
    assert!(
        !text.contains("0.25") && !text.contains("8192"),
        "where: {text}"
    );
    bridge.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_can_turn_the_screen_off() -> testkit::Result<()> {
    let qemu = seabios()?;
    let mut settings = common::settings(&qemu.target());
    settings.policy = Policy {
        deny: vec!["screendump".into(), "send-key".into()],
        ..Policy::default()
    };
    let bridge = bridge(settings, Mode::Shared).await;
    let r = get(&bridge, &screen_path()).await?;
    assert_eq!(r.status, 204, "no picture: {}", r.text());
    let why = r.header("x-screen-problem").unwrap_or_default();
    assert!(why.contains("--deny screendump"), "{why}");
    assert_eq!(screendumps(&bridge).await?, 0);
    let r = post(&bridge, &keys_path(), &[], json!({"keys": [["esc"]]})).await?;
    assert_eq!(r.status, 403, "{}", r.text());
    bridge.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_without_a_display_says_so() -> testkit::Result<()> {
    let qemu = Qemu::builder().vga("none").start()?;
    let bridge = bridge(common::settings(&qemu.target()), Mode::Shared).await;
    let r = get(&bridge, &screen_path()).await?;
    assert_eq!(r.status, 204, "no picture, no error: {}", r.text());
    let why = r.header("x-screen-problem").unwrap_or_default();
    assert!(why.contains("no display"), "{why}");
    // relay mode has no shared session to take screendumps on
    let relay = bridge_relay(&qemu).await;
    let r = get(&relay, &screen_path()).await?;
    assert_eq!(r.status, 204, "{}", r.text());
    let why = r.header("x-screen-problem").unwrap_or_default();
    assert!(why.contains("shared mode"), "{why}");
    let keys = post(&relay, &keys_path(), &[], json!({"keys": [["esc"]]})).await?;
    assert_eq!(keys.status, 409, "{}", keys.text());
    relay.stop().await?;
    bridge.stop().await?;
    Ok(())
}

async fn bridge_relay(qemu: &Qemu) -> common::TestBridge {
    bridge(common::settings(&qemu.target()), Mode::Relay).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_qemu_times_out_the_screen_without_blocking_the_session() -> testkit::Result<()> {
    let qemu = seabios()?;
    let bridge = bridge(common::settings(&qemu.target()), Mode::Shared).await;
    seabios_screen(&bridge).await?;
    let mut ws = QmpWs::connect(&format!("{}/test-vm?token={TOKEN}", bridge.ws_url())).await?;
    ws.handshake().await?;
    let dumps = screendumps(&bridge).await?;

    signal("-STOP", qemu.pid())?;
    tokio::time::sleep(Duration::from_millis(600)).await; // past the cached frame
    let asked = Instant::now();
    let r = get(&bridge, &screen_path()).await?;
    assert_eq!(r.status, 504, "{}", r.text());
    let waited = asked.elapsed();
    assert!(
        (Duration::from_secs(4)..Duration::from_secs(8)).contains(&waited),
        "answered after {waited:?}"
    );
    // the next viewer is told at once, and no second screendump joins the first
    let asked = Instant::now();
    let r = get(&bridge, &screen_path()).await?;
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(r.text().contains("last screendump"), "{}", r.text());
    assert!(asked.elapsed() < Duration::from_secs(2));
    assert_eq!(screendumps(&bridge).await?, dumps + 1);
    assert!(bridge.healthy(), "the bridge answers meanwhile");

    signal("-CONT", qemu.pid())?;
    let status = ws.execute("query-status", None, json!("after")).await?;
    assert_eq!(status["return"]["status"], "running", "the session goes on");
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&bridge, &screen_path()).await?.status != 200 {
        assert!(Instant::now() < deadline, "the screen did not come back");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    bridge.stop().await?;
    Ok(())
}

fn signal(which: &str, pid: u32) -> testkit::Result<()> {
    let ok = std::process::Command::new("kill")
        .args([which, &pid.to_string()])
        .status()?
        .success();
    if !ok {
        return Err(format!("kill {which} {pid} failed").into());
    }
    Ok(())
}

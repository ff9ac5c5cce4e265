//! End to end: the console page in headless Chromium, through a real `qmp-bridge`, driving
//! a real QEMU: commands from the form, replies matched by id, events and the VM status
//! badge, checks that keep bad input from being sent, the schema reply as a tree, quick
//! actions with their confirmation. Every test ends with zero browser console errors.
//!
//! Set `QMP_CONSOLE_SCREENSHOTS=DIR` to save what the page looked like.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use testkit::fake_peer::{PeerConn, GREETING};
use testkit::{BridgeProcess, Browser, FakePeer, Page, Qemu};

const WAIT: Duration = Duration::from_secs(30);

struct Session {
    page: Page,
    browser: Browser,
    bridge: BridgeProcess,
    qemu: Option<Qemu>,
}

/// QEMU, the bridge on it with `-v` (every relayed message logged), and the page, ready.
async fn open_console() -> testkit::Result<Session> {
    open_console_with(&[]).await
}

/// As [`open_console`], with more `qmp-bridge` flags.
async fn open_console_with(flags: &[&str]) -> testkit::Result<Session> {
    let qemu = Qemu::start()?;
    let mut s = open_console_on(&qemu.target(), flags).await?;
    s.qemu = Some(qemu);
    Ok(s)
}

/// The bridge on `target` and the page, ready.
/// Waits for the connection state to read `ready`; on timeout says what the header shows.
async fn wait_ready(page: &Page) -> testkit::Result<()> {
    wait_state(page, "ready").await
}

/// Waits for the connection state to read `state`; on timeout says what the header shows.
async fn wait_state(page: &Page, state: &str) -> testkit::Result<()> {
    let expr = format!(
        "document.querySelector('[data-testid=connection-state]')?.textContent === '{state}'"
    );
    if let Err(e) = page.wait_for(&expr, WAIT).await {
        let header = page
            .eval("document.querySelector('header')?.textContent")
            .await?;
        let notices = page
            .eval("document.querySelector('.notices')?.textContent")
            .await?;
        return Err(format!("{e}\nheader: {header}\nnotices: {notices}").into());
    }
    Ok(())
}

async fn open_console_on(target: &str, flags: &[&str]) -> testkit::Result<Session> {
    let mut args = vec!["--qmp", target, "--listen", "127.0.0.1:0", "-v"];
    args.extend_from_slice(flags);
    let bridge = BridgeProcess::start(Path::new(env!("CARGO_BIN_EXE_qmp-bridge")), &args)?;
    bridge.require_ui()?;
    let browser = Browser::launch().await?;
    let page = browser.new_page(&bridge.url).await?;
    wait_ready(&page).await?;
    // and QEMU's schema read (completion, templates and checks need it)
    page.wait_for(
        "!document.querySelector('.notices')?.textContent.includes(\"reading QEMU's schema\")",
        WAIT,
    )
    .await?;
    Ok(Session {
        page,
        browser,
        bridge,
        qemu: None,
    })
}

impl Session {
    /// Waits until the page's VM status badge reads `status`.
    async fn badge(&self, status: &str) -> testkit::Result<()> {
        self.page
            .wait_for(
                &format!(
                    "document.querySelector('[data-testid=vm-status]')?.textContent === '{status}'"
                ),
                WAIT,
            )
            .await
            .map(|_| ())
    }

    /// Waits until an event named `name` is shown.
    async fn event_shown(&self, name: &str) -> testkit::Result<()> {
        let expr = format!("document.querySelector('[data-testid=event][data-name={name}]')");
        self.page.wait_for(&expr, WAIT).await.map(|_| ())
    }

    /// Number of transcript entries.
    async fn responses(&self) -> testkit::Result<u64> {
        let v = self
            .page
            .eval("document.querySelectorAll('[data-testid=response]').length")
            .await?;
        Ok(v.as_u64().unwrap_or(0))
    }

    /// Waits for the newest transcript entry to have its reply; returns `(data-id, data-ok)`.
    async fn newest_reply(&self) -> testkit::Result<(String, String)> {
        let v = self
            .page
            .wait_for(
                "(() => { const e = document.querySelector('[data-testid=response]'); \
                  return e && e.dataset.ok ? [e.dataset.id, e.dataset.ok] : null; })()",
                WAIT,
            )
            .await?;
        let s = |i: usize| v[i].as_str().unwrap_or_default().to_owned();
        Ok((s(0), s(1)))
    }

    /// How many upstream commands the bridge relayed that name `command`.
    fn relayed(&self, command: &str) -> usize {
        self.bridge
            .log()
            .lines()
            .filter(|l| {
                l.contains(&format!("\\\"execute\\\":\\\"{command}\\\""))
                    || l.contains(&format!("\"execute\":\"{command}\""))
            })
            .count()
    }

    /// With `QMP_CONSOLE_SCREENSHOTS=DIR`: `DIR/NAME.png` and, in the dark scheme,
    /// `DIR/NAME-dark.png`.
    async fn screenshot(&self, name: &str) -> testkit::Result<()> {
        let Ok(dir) = std::env::var("QMP_CONSOLE_SCREENSHOTS") else {
            return Ok(());
        };
        for scheme in ["light", "dark"] {
            let features = serde_json::json!([{"name": "prefers-color-scheme", "value": scheme}]);
            self.page
                .call(
                    "Emulation.setEmulatedMedia",
                    serde_json::json!({ "features": features }),
                )
                .await?;
            let file = match scheme {
                "dark" => format!("{name}-dark.png"),
                _ => format!("{name}.png"),
            };
            self.page.screenshot(&Path::new(&dir).join(file)).await?;
        }
        Ok(())
    }

    fn assert_no_errors(&self) {
        self.page.assert_no_errors();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_events_and_the_status_badge() -> testkit::Result<()> {
    let s = open_console().await?;
    let page = &s.page;
    let greeting = page
        .eval("document.querySelector('[data-testid=greeting]').dataset.capabilities")
        .await?;
    // QEMU offers oob; the bridge does not without --allow-oob, and the page offers no
    // oob switch
    assert_eq!(greeting, Value::from("none"));
    assert_eq!(
        page.eval("document.querySelector('[data-testid=oob]') === null")
            .await?,
        Value::Bool(true)
    );
    // the console asked query-status itself: QEMU started with -S
    s.badge("prelaunch").await?;
    // keyboard first: the command name has the focus from the start
    assert_eq!(focus(page).await?.0, "command-name");
    // no -name: the VM is called as the bridge calls it (its socket's name)
    assert_eq!(page.testid_text("vm-name").await?, Value::from("qmp"));
    assert_eq!(
        page.eval("document.title").await?,
        Value::from("qmp · qmp-console")
    );

    // query-status typed into the form, sent with Ctrl+Enter
    page.fill("command-name", "query-status").await?;
    page.key("Enter", true).await?;
    let (id, ok) = s.newest_reply().await?;
    assert_eq!(ok, "true");
    assert!(!id.is_empty());
    let text = page
        .eval(&format!(
            "document.querySelector('[data-testid=response][data-id=\"{id}\"]').textContent"
        ))
        .await?;
    assert!(
        text.as_str().unwrap_or_default().contains("prelaunch"),
        "{text}"
    );

    // cont then stop: RESUME and STOP events, and the badge follows
    page.click("action-cont").await?;
    s.event_shown("RESUME").await?;
    // cont answers {}: ok, empty
    page.wait_for(
        "document.querySelector('[data-testid=response] .ok')?.textContent === 'ok, empty'",
        WAIT,
    )
    .await?;
    s.badge("running").await?;
    // Pause and Resume follow the run state
    let disabled = "[...document.querySelectorAll('.actions button:disabled')].map(b => b.dataset.testid).join()";
    page.wait_for(&format!("{disabled} === 'action-cont'"), WAIT)
        .await?;
    page.click("action-stop").await?;
    s.event_shown("STOP").await?;
    s.badge("paused").await?;
    page.wait_for(&format!("{disabled} === 'action-stop'"), WAIT)
        .await?;
    let count = page
        .eval("document.querySelector('[data-testid=event-count][data-name=STOP]').textContent")
        .await?;
    assert_eq!(count, Value::from("STOP1"));
    // every request got its own id
    let ids = page
        .eval("[...document.querySelectorAll('[data-testid=response]')].map(e => e.dataset.id)")
        .await?;
    let ids: Vec<&str> = ids
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 3, "{ids:?}");

    // HMP: text output
    page.click("mode-hmp").await?;
    page.fill("hmp-line", "info status").await?;
    page.key("Enter", false).await?;
    s.newest_reply().await?;
    page.wait_for(
        "document.querySelector('[data-testid=response] pre.text')?.textContent.includes('VM status: paused')",
        WAIT,
    )
    .await?;
    // Up in HMP walks HMP's history (not query-status) and keeps the focus
    page.fill("hmp-line", "").await?;
    page.key("ArrowUp", false).await?;
    page.wait_for(
        "document.querySelector('[data-testid=hmp-line]')?.value === 'info status'",
        WAIT,
    )
    .await?;
    assert_eq!(focus(page).await?.0, "hmp-line");
    // Copy puts the reply on the clipboard
    let origin = s.bridge.url.trim_end_matches('/').to_owned();
    let grant = serde_json::json!({"origin": origin, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]});
    s.browser.call("Browser.grantPermissions", grant).await?;
    page.call(
        "Emulation.setFocusEmulationEnabled",
        serde_json::json!({"enabled": true}),
    )
    .await?;
    page.eval(&format!(
        "document.querySelector('[data-testid=response][data-id=\"{id}\"] .tools button').click()"
    ))
    .await?;
    let copied = page
        .wait_for(
            "navigator.clipboard.readText().then(t => t.includes('prelaunch') ? t : null)",
            WAIT,
        )
        .await?;
    let copied: Value = serde_json::from_str(copied.as_str().unwrap_or_default())?;
    assert_eq!(copied["status"], "prelaunch");
    s.screenshot("console-events").await?;
    s.assert_no_errors();
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_arguments_are_caught_before_sending() -> testkit::Result<()> {
    let s = open_console().await?;
    let page = &s.page;
    // the schema arrived: completion offers device_del
    page.fill("command-name", "device_d").await?;
    page.wait_for(
        "[...document.querySelectorAll('.completion')].some(b => b.textContent === 'device_del')",
        WAIT,
    )
    .await?;

    // invalid JSON: an error with line and column, and nothing sent
    page.fill("command-name", "device_del").await?;
    page.fill("command-args", "{\n  \"id\": \"x\",\n}").await?;
    let err = page.testid_text("syntax-error").await?;
    assert_eq!(err, Value::from("line 3, column 1: trailing comma"));
    page.click("send").await?;
    page.wait_for("document.querySelector('[data-testid=refused]')", WAIT)
        .await?;
    assert_eq!(s.responses().await?, 0);

    // device_del without its required id: schema validation stops it
    page.fill("command-args", "{}").await?;
    let problems = page.testid_text("problems").await?;
    assert_eq!(problems, Value::from("$.id: required member missing"));
    page.click("send").await?;
    let refused = page.testid_text("refused").await?;
    assert!(
        refused
            .as_str()
            .unwrap_or_default()
            .contains("1 schema problem"),
        "{refused}"
    );
    assert_eq!(s.responses().await?, 0);
    assert_eq!(s.relayed("device_del"), 0, "nothing reached QEMU");
    s.screenshot("console-problems").await?;

    // ... unless sent anyway: QEMU's own error, shown as class and description
    page.click("send-anyway").await?;
    let (_, ok) = s.newest_reply().await?;
    assert_eq!(ok, "false");
    let error = page.testid_text("error").await?;
    assert!(
        error
            .as_str()
            .unwrap_or_default()
            .starts_with("GenericError: "),
        "{error}"
    );
    // (the bridge's log is read by another thread: give it a moment)
    testkit::wait_until(WAIT, "device_del in the bridge's log", || {
        (s.relayed("device_del") == 1).then_some(())
    })?;

    // a union's arguments: the tag's values, and each case's own members on demand
    page.fill("command-args", "").await?;
    page.fill("command-name", "blockdev-add").await?;
    let args = page
        .eval("document.querySelector('[data-testid=command-args]').value")
        .await?;
    let template: Value = serde_json::from_str(args.as_str().unwrap_or_default())?;
    assert_eq!(
        template,
        serde_json::json!({"driver": ""}),
        "the template of the required arguments: the driver to choose"
    );
    let driver = page
        .eval("document.querySelector('[data-testid=args-view] [data-name=driver]').textContent")
        .await?;
    assert!(
        driver
            .as_str()
            .unwrap_or_default()
            .starts_with("driverenumrequiredblkdebug | "),
        "{driver}"
    );
    page.eval("[...document.querySelectorAll('[data-testid=args-view] .variant .toggle')].find(b => b.textContent.includes('driver = file')).click()").await?;
    page.wait_for("document.querySelector('[data-testid=args-view] .variant [data-name=filename]')?.textContent === 'filenamestrrequired'", WAIT).await?;
    s.screenshot("console-args").await?;

    // Format pretty-prints the arguments
    page.fill("command-name", "device_del").await?;
    page.fill("command-args", "{\"id\":\"net0\"}").await?;
    page.click("format").await?;
    let args = page
        .eval("document.querySelector('[data-testid=command-args]').value")
        .await?;
    assert_eq!(args, Value::from("{\n  \"id\": \"net0\"\n}"));
    s.assert_no_errors();
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schema_reply_renders_lazily_and_quit_asks_first() -> testkit::Result<()> {
    let mut s = open_console().await?;
    let page = &s.page;
    page.fill("command-name", "query-qmp-schema").await?;
    page.click("send").await?;
    let (_, ok) = s.newest_reply().await?;
    assert_eq!(ok, "true");
    page.wait_for(
        "document.querySelector('[data-testid=response] .json-tree')",
        WAIT,
    )
    .await?;
    let more = page
        .eval("document.querySelector('[data-testid=response] .json-tree .more')?.textContent")
        .await?;
    assert!(
        more.as_str().unwrap_or_default().contains("not shown"),
        "{more}"
    );
    // lazily: the 1000+ entities are closed lines, a page of them
    let nodes = page
        .eval("document.querySelectorAll('[data-testid=response] .node').length")
        .await?;
    let nodes = nodes.as_u64().unwrap_or(0);
    assert!((100..=102).contains(&nodes), "{nodes} tree nodes rendered");
    // opening one shows its members
    page.eval("document.querySelector('[data-testid=response] .children .toggle').click()")
        .await?;
    page.wait_for(
        "document.querySelectorAll('[data-testid=response] .node').length > 102",
        WAIT,
    )
    .await?;
    s.screenshot("console-schema").await?;

    // Quit asks first; "no" sends nothing
    page.click("action-quit").await?;
    page.wait_for("document.querySelector('[data-testid=confirm]')", WAIT)
        .await?;
    page.click("confirm-no").await?;
    assert_eq!(
        page.eval("document.querySelector('[data-testid=confirm]')")
            .await?,
        Value::Null
    );
    assert_eq!(s.relayed("quit"), 0);
    // "yes" quits: SHUTDOWN shows, the badge says so, QEMU exits, the page says closed
    page.click("action-quit").await?;
    page.click("confirm-yes").await?;
    s.event_shown("SHUTDOWN").await?;
    s.badge("shutdown").await?;
    wait_state(page, "closed").await?;
    s.qemu.as_mut().expect("a QEMU").wait_exit(WAIT)?;
    s.assert_no_errors();
    Ok(())
}

const FLOOD: usize = 5000;

/// A QMP peer that greets, negotiates, serves the real 7.2 schema, and answers a made-up
/// `x-flood` command with a flood of events in one write.
async fn flood_peer(mut c: PeerConn) -> testkit::Result<()> {
    c.send(GREETING.as_bytes()).await?;
    let schema: Value =
        serde_json::from_str(include_str!("../../qmp/tests/data/qemu-7.2-schema.json"))?;
    while let Some(cmd) = c.recv().await? {
        let id = cmd.get("id").cloned().unwrap_or(Value::Null);
        let ret = match cmd["execute"].as_str() {
            Some("query-qmp-schema") => schema.clone(),
            Some("query-status") => serde_json::json!({"status": "running", "running": true}),
            Some("screendump") => {
                // the page's screen: as a QEMU without a display answers
                let error = serde_json::json!({"class": "GenericError", "desc": "There is no console to take a screendump from"});
                c.send(format!("{}\r\n", serde_json::json!({"error": error, "id": id})).as_bytes())
                    .await?;
                continue;
            }
            _ => serde_json::json!({}),
        };
        c.send(format!("{}\r\n", serde_json::json!({"return": ret, "id": id})).as_bytes())
            .await?;
        if cmd["execute"] == "x-flood" {
            let mut burst = String::new();
            for n in 0..FLOOD {
                let name = if n % 10 == 0 {
                    "BLOCK_JOB_READY"
                } else {
                    "JOB_STATUS_CHANGE"
                };
                burst.push_str(&format!(
                    "{{\"event\": \"{name}\", \"data\": {{\"id\": \"j{n}\", \"status\": \"running\"}}, \"timestamp\": {{\"seconds\": 1700000000, \"microseconds\": {n}}}}}\r\n"
                ));
            }
            c.send(burst.as_bytes()).await?;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_flood_is_capped_on_the_page_and_exported_whole() -> testkit::Result<()> {
    let peer = FakePeer::start(flood_peer).await?;
    let s = open_console_on(&peer.target(), &[]).await?;
    let page = &s.page;
    page.click("mode-raw").await?;
    page.fill("raw-text", r#"{"execute": "x-flood", "id": "f"}"#)
        .await?;
    page.click("send").await?;
    page.wait_for(
        &format!("document.querySelector('[data-testid=event-count][data-name=JOB_STATUS_CHANGE]')?.textContent === 'JOB_STATUS_CHANGE{}'", FLOOD - FLOOD / 10),
        WAIT,
    )
    .await?;
    let count = page.eval("document.querySelector('[data-testid=event-count][data-name=BLOCK_JOB_READY]').textContent").await?;
    assert_eq!(count, Value::from(format!("BLOCK_JOB_READY{}", FLOOD / 10)));
    let rows = page
        .eval("document.querySelectorAll('[data-testid=event]').length")
        .await?;
    assert_eq!(rows, Value::from(500), "the page shows the newest 500 only");
    let last = page
        .eval("[...document.querySelectorAll('[data-testid=event]')].pop().textContent")
        .await?;
    assert!(
        last.as_str()
            .unwrap_or_default()
            .contains(&format!("\"j{}\"", FLOOD - 1)),
        "{last}"
    );

    s.screenshot("console-flood").await?;

    // the filter works on the whole log
    page.fill("event-filter", "block_job").await?;
    page.wait_for("document.querySelectorAll('[data-testid=event]').length === 500 && [...document.querySelectorAll('[data-testid=event]')].every(e => e.dataset.name === 'BLOCK_JOB_READY')", WAIT).await?;

    // export: every event, one JSON object per line
    let dir = testkit::TempDir::new("export")?;
    page.call(
        "Page.setDownloadBehavior",
        serde_json::json!({"behavior": "allow", "downloadPath": dir.path()}),
    )
    .await?;
    page.click("events-export").await?;
    let file = dir.path().join("qmp-events.jsonl");
    let text = testkit::wait_until(WAIT, "the exported file", || {
        std::fs::read_to_string(&file)
            .ok()
            .filter(|t| t.lines().count() == FLOOD)
    })?;
    for line in text.lines() {
        let v: Value = serde_json::from_str(line)?;
        assert!(v["event"].is_string(), "{line}");
    }
    s.assert_no_errors();
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn oob_raw_mode_history_and_reconnects() -> testkit::Result<()> {
    let mut s = open_console_with(&["--allow-oob"]).await?;
    let page = &s.page;
    // ask for oob: the console reconnects and negotiates it
    page.click("oob").await?;
    page.wait_for(
        "document.querySelector('.oob')?.textContent === 'oob on'",
        WAIT,
    )
    .await?;
    wait_ready(page).await?;

    // raw mode sends the text as typed: exec-oob, with its own id
    page.click("mode-raw").await?;
    page.fill("raw-text", r#"{"exec-oob": "migrate-pause", "id": "p1"}"#)
        .await?;
    page.key("Enter", true).await?;
    let (id, ok) = s.newest_reply().await?;
    assert_eq!(
        (id.as_str(), ok.as_str()),
        ("p1", "false"),
        "no migration to pause"
    );
    assert_eq!(s.relayed("migrate-pause"), 0, "exec-oob, not execute");
    testkit::wait_until(WAIT, "exec-oob in the bridge's log", || {
        s.bridge.log().contains("exec-oob").then_some(())
    })?;

    // raw text that is not JSON still goes as typed; the bridge's id-less error comes back
    // to it (replies without an id pair with requests without one, in order)
    page.fill("raw-text", r#"{"execute": "#).await?;
    page.click("send").await?;
    page.wait_for(
        "document.querySelector('[data-testid=response]')?.dataset.ok === 'false' && \
         document.querySelector('[data-testid=response]').dataset.id === ''",
        WAIT,
    )
    .await?;
    let error = page.testid_text("error").await?;
    assert!(
        error
            .as_str()
            .unwrap_or_default()
            .contains("not one QMP command object"),
        "{error}"
    );

    // two raw requests in flight with one id: the second reply has nobody to go to, and
    // the page says so (dismissable) instead of pairing it wrongly
    page.fill("raw-text", r#"{"execute": "query-status", "id": "dup"}"#)
        .await?;
    page.eval("for (let i = 0; i < 2; i++) document.querySelector('[data-testid=send]').click()")
        .await?;
    page.wait_for("document.querySelector('.notices')?.textContent.includes('a reply nobody waits for (id \"dup\")')", WAIT).await?;
    page.click("dismiss-notices").await?;
    page.wait_for("!document.querySelector('.notice')", WAIT)
        .await?;

    // history: Ctrl+Up in the raw text recalls the raw requests (each mode walks its
    // own), also after a reload
    page.fill("raw-text", "").await?;
    page.key("ArrowUp", true).await?;
    page.wait_for(
        "document.querySelector('[data-testid=raw-text]')?.value.includes('query-status')",
        WAIT,
    )
    .await?;
    page.goto(&s.bridge.url).await?;
    wait_ready(page).await?;
    // (in JSON mode there is no command in the history: Up leaves the form as it is)
    page.key("ArrowUp", false).await?;
    assert_eq!(focus(page).await?.0, "command-name");
    page.click("mode-raw").await?;
    page.eval("document.querySelector('[data-testid=raw-text]').focus()")
        .await?;
    page.key("ArrowUp", true).await?;
    page.wait_for(
        "document.querySelector('[data-testid=raw-text]')?.value.includes('query-status')",
        WAIT,
    )
    .await?;
    // the oob choice was kept too
    page.wait_for(
        "document.querySelector('.oob')?.textContent === 'oob on'",
        WAIT,
    )
    .await?;

    // re-run from the transcript after the reload is not possible (new page), so re-run here
    page.click("mode-json").await?;
    page.fill("command-name", "query-status").await?;
    page.click("send").await?;
    s.newest_reply().await?;
    page.click("rerun").await?;
    page.wait_for(
        "document.querySelectorAll('[data-testid=response][data-ok=true]').length === 2",
        WAIT,
    )
    .await?;

    // disconnect stays disconnected; connect comes back
    page.click("connect").await?;
    page.wait_for("document.querySelector('[data-testid=close-reason]')?.textContent.startsWith('disconnected by you')", WAIT).await?;
    assert_eq!(
        page.testid_text("retry").await?,
        Value::Null,
        "no automatic retry after Disconnect"
    );
    page.click("connect").await?;
    wait_ready(page).await?;

    // QEMU dies and comes back on the same socket: the console reconnects by itself
    // (the dead one is kept until the end: dropping it would remove its folder)
    let mut dead = s.qemu.take().expect("a QEMU");
    dead.kill();
    wait_state(page, "closed").await?;
    s.qemu = Some(Qemu::start_at(dead.socket(), false)?);
    wait_ready(page).await?;
    s.badge("prelaunch").await?;
    s.assert_no_errors();
    Ok(())
}

/// What of the page lies outside the viewport sideways, or outside the box of an ancestor
/// that clips or scrolls it; and scroll areas that scroll sideways. Empty when it all fits.
const OVERFLOW: &str = r#"(() => {
  const W = document.documentElement.clientWidth;
  const out = [];
  const sw = document.documentElement.scrollWidth;
  if (sw > W) out.push(`the page is ${sw} px wide in a ${W} px viewport`);
  const name = el => el.dataset.testid ? `[data-testid=${el.dataset.testid}]`
    : el.tagName.toLowerCase() + (typeof el.className === 'string' && el.className.trim() ? '.' + el.className.trim().split(/\s+/).join('.') : '');
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    let left = 0, right = W;
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== 'visible') {
        const ar = a.getBoundingClientRect();
        left = Math.max(left, ar.left); right = Math.min(right, ar.right);
      }
    }
    if (r.left < left - 1 || r.right > right + 1)
      out.push(`${name(el)} spans ${Math.round(r.left)}..${Math.round(r.right)} px, outside ${Math.round(left)}..${Math.round(right)}`);
    const s = getComputedStyle(el);
    if (['auto', 'scroll'].includes(s.overflowX) && !['INPUT', 'TEXTAREA'].includes(el.tagName)
        && el.scrollWidth > el.clientWidth + 1)
      out.push(`${name(el)} scrolls sideways (${el.scrollWidth} px in ${el.clientWidth})`);
  }
  return out.slice(0, 20);
})()"#;

/// The controls in `testids` that cannot be seen and clicked once scrolled to: each is
/// scrolled into view and must be what is under its own centre (not clipped, not covered).
async fn unreachable(page: &Page, testids: &[&str]) -> testkit::Result<Vec<String>> {
    let ids = serde_json::to_string(testids)?;
    let v = page
        .eval(&format!(
            r#"(() => {{
  const out = [];
  for (const id of {ids}) {{
    const el = document.querySelector(`[data-testid="${{id}}"]`);
    if (!el) {{ out.push(`${{id}}: absent`); continue; }}
    el.scrollIntoView({{block: 'center', inline: 'center'}});
    const r = el.getBoundingClientRect();
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    if (!hit || !(el.contains(hit) || hit.contains(el)))
      out.push(`${{id}}: at ${{Math.round(r.left)}},${{Math.round(r.top)}} ${{Math.round(r.width)}}x${{Math.round(r.height)}}, under it ${{hit ? hit.tagName + '.' + hit.className : 'nothing'}}`);
  }}
  window.scrollTo(0, 0);
  return out;
}})()"#
        ))
        .await?;
    Ok(serde_json::from_value(v)?)
}

/// Sets the viewport (CSS pixels); `mobile` emulates a phone (its viewport meta applies).
async fn viewport(page: &Page, width: u32, height: u32, mobile: bool) -> testkit::Result<()> {
    page.call(
        "Emulation.setDeviceMetricsOverride",
        serde_json::json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
    )
    .await?;
    // a frame or two for the layout to follow
    page.eval("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_layout_fits_from_760_px_up_and_scrolls_on_a_phone() -> testkit::Result<()> {
    // a VM with a screen, so the page shows it beside the events
    let qemu = Qemu::builder().vga("std").running().name("web1").start()?;
    let mut s = open_console_on(&qemu.target(), &[]).await?;
    s.qemu = Some(qemu);
    let page = &s.page;
    // QEMU's -name names the VM, in the header and the tab's title
    page.wait_for(
        "document.querySelector('[data-testid=vm-name]')?.textContent === 'web1'",
        WAIT,
    )
    .await?;
    assert_eq!(
        page.eval("document.title").await?,
        Value::from("web1 · qmp-console")
    );
    page.wait_for(
        "document.querySelector('[data-testid=screen] img')?.naturalWidth > 0",
        WAIT,
    )
    .await?;
    // error entries: QEMU's own error, and a request sent despite its schema problem
    page.fill("command-name", "device_del").await?;
    page.fill(
        "command-args",
        r#"{"id": "no-such-device-with-a-rather-long-name"}"#,
    )
    .await?;
    page.click("send").await?;
    s.newest_reply().await?;
    page.fill("command-args", "{}").await?;
    page.click("send-anyway").await?;
    page.wait_for(
        "document.querySelectorAll('[data-testid=response][data-ok=false]').length === 2",
        WAIT,
    )
    .await?;
    // HMP output with long lines
    page.click("mode-hmp").await?;
    page.fill("hmp-line", "info qtree").await?;
    page.click("send").await?;
    page.wait_for(
        "document.querySelectorAll('[data-testid=response][data-ok=true]').length === 1",
        WAIT,
    )
    .await?;
    // a command's hints open (a union's arguments), and the refusal of a bad send
    page.click("mode-json").await?;
    page.fill("command-args", "").await?;
    page.fill("command-name", "blockdev-add").await?;
    page.wait_for("document.querySelector('[data-testid=args-view]')", WAIT)
        .await?;
    page.eval("[...document.querySelectorAll('[data-testid=args-view] .variant .toggle')].find(b => b.textContent.includes('driver = file')).click()").await?;
    page.fill("command-args", r#"{"driver": "file"}"#).await?;
    page.click("send").await?;
    page.wait_for("document.querySelector('[data-testid=refused]')", WAIT)
        .await?;
    let controls = [
        "command-name",
        "command-args",
        "send",
        "send-anyway",
        "format",
        "rerun",
        "events-export",
        "event-filter",
        "action-quit",
        "connect",
        "send-ctrl-alt-del",
    ];
    for (width, height, mobile, name) in [
        (1400, 900, false, "layout-1400x900"),
        (800, 900, false, "layout-800x900"),
        (760, 700, false, "layout-760x700"),
        (390, 844, true, "layout-phone"),
    ] {
        viewport(page, width, height, mobile).await?;
        let size = format!("{width}x{height}");
        let overflow: Vec<String> = serde_json::from_value(page.eval(OVERFLOW).await?)?;
        assert!(overflow.is_empty(), "at {size}: {overflow:#?}");
        let lost = unreachable(page, &controls).await?;
        assert!(lost.is_empty(), "at {size}: {lost:#?}");
        // the transcript keeps room to be read, hints open or not
        let transcript = page
            .eval("document.querySelector('.transcript').getBoundingClientRect().height")
            .await?;
        let transcript = transcript.as_f64().unwrap_or(0.0);
        assert!(
            transcript >= 240.0,
            "at {size}: the transcript is {transcript} px high"
        );
        s.screenshot(name).await?;
        // and further down: the error entries, then the events
        page.eval(
            "document.querySelector('[data-testid=response][data-ok=false]').scrollIntoView()",
        )
        .await?;
        s.screenshot(&format!("{name}-errors")).await?;
        page.eval("document.querySelector('[data-testid=events-export]').scrollIntoView()")
            .await?;
        s.screenshot(&format!("{name}-events")).await?;
        page.eval("window.scrollTo(0, 0)").await?;
    }
    s.assert_no_errors();
    Ok(())
}

/// `(data-testid of the focused element, its caret)`.
async fn focus(page: &Page) -> testkit::Result<(String, Option<u64>)> {
    let v = page
        .eval("[document.activeElement?.dataset.testid ?? null, document.activeElement?.selectionStart ?? null]")
        .await?;
    Ok((v[0].as_str().unwrap_or_default().to_owned(), v[1].as_u64()))
}

#[tokio::test(flavor = "multi_thread")]
async fn enter_never_sends_a_half_filled_template() -> testkit::Result<()> {
    let s = open_console().await?;
    let page = &s.page;
    // device_del + Enter: the template's id is empty, so nothing goes, and the caret
    // lands in it
    page.fill("command-name", "device_del").await?;
    page.key("Enter", false).await?;
    let refused = page.testid_text("refused").await?;
    assert_eq!(
        refused,
        Value::from("not sent: placeholder $.id is empty (fill in, or Send anyway)")
    );
    let args = page
        .eval("document.querySelector('[data-testid=command-args]').value")
        .await?;
    let args = args.as_str().unwrap_or_default().to_owned();
    let caret = args.find("\"\"").expect("a placeholder") as u64 + 1;
    assert_eq!(focus(page).await?, ("command-args".to_owned(), Some(caret)));
    // Ctrl+Enter and the Send button refuse it too
    page.key("Enter", true).await?;
    page.click("send").await?;
    assert_eq!(s.responses().await?, 0);
    // typed into the placeholder, it goes
    page.eval(&format!(
        "(() => {{ const a = document.activeElement; a.setRangeText('nic1', {caret}, {caret}); \
         a.dispatchEvent(new InputEvent('input', {{bubbles: true}})); }})()"
    ))
    .await?;
    page.key("Enter", true).await?;
    let (_, ok) = s.newest_reply().await?;
    assert_eq!(ok, "false");
    assert_eq!(
        page.testid_text("error").await?,
        Value::from("DeviceNotFound: Device 'nic1' not found")
    );
    testkit::wait_until(WAIT, "device_del in the bridge's log", || {
        (s.relayed("device_del") == 1).then_some(())
    })?;
    let log = s.bridge.log();
    assert!(
        !log.contains(r#"{\"id\":\"\"}"#) && !log.contains(r#"{"id":""}"#),
        "no empty id went: {log}"
    );

    // a partial name that fits several: Enter picks none, it says so
    page.fill("command-name", "query-st").await?;
    page.key("Enter", false).await?;
    let refused = page.testid_text("refused").await?;
    assert_eq!(
        refused,
        Value::from("not sent: query-st is not a command; it begins query-stats, query-stats-schemas, query-status (Tab takes the first)")
    );
    // a mistyped one: did you mean, and Tab takes it
    page.fill("command-name", "devcie_del").await?;
    page.key("Enter", false).await?;
    let refused = page.testid_text("refused").await?;
    assert_eq!(
        refused,
        Value::from("not sent: no command devcie_del; did you mean device_del? (Tab takes it)")
    );
    page.key("Tab", false).await?;
    page.wait_for(
        "document.querySelector('[data-testid=command-name]').value === 'device_del'",
        WAIT,
    )
    .await?;
    assert_eq!(s.responses().await?, 1, "nothing more sent");
    s.assert_no_errors();
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_command_name_replaces_a_template_and_keeps_edits_with_a_notice(
) -> testkit::Result<()> {
    let s = open_console().await?;
    let page = &s.page;
    let args = || async {
        let v = page
            .eval("document.querySelector('[data-testid=command-args]').value")
            .await?;
        testkit::Result::Ok(v.as_str().unwrap_or_default().to_owned())
    };
    page.fill("command-name", "device_del").await?;
    assert_eq!(args().await?, "{\n  \"id\": \"\"\n}");
    // the untouched template goes with the command it was for
    page.fill("command-name", "query-status").await?;
    assert_eq!(args().await?, "");
    page.fill("command-name", "device_del").await?;
    page.fill("command-name", "device_add").await?;
    assert_eq!(args().await?, "{\n  \"driver\": \"\"\n}");
    assert_eq!(page.testid_text("args-kept").await?, Value::Null);
    // edited arguments stay, and the page says whose they are
    page.fill(
        "command-args",
        r#"{"driver": "virtio-net-pci", "id": "nic1"}"#,
    )
    .await?;
    page.fill("command-name", "device_del").await?;
    assert_eq!(
        args().await?,
        r#"{"driver": "virtio-net-pci", "id": "nic1"}"#
    );
    let kept = page.testid_text("args-kept").await?;
    assert_eq!(
        kept,
        Value::from(
            "These arguments were written for device_add; kept as you edited them. Use device_del's template"
        )
    );
    // and Send does not take them for device_del's as they are
    page.click("send").await?;
    assert!(page
        .testid_text("refused")
        .await?
        .as_str()
        .unwrap_or_default()
        .contains("schema problem"));
    s.screenshot("console-args-kept").await?;
    page.click("use-template").await?;
    assert_eq!(args().await?, "{\n  \"id\": \"\"\n}");
    assert_eq!(page.testid_text("args-kept").await?, Value::Null);
    assert_eq!(s.responses().await?, 0);
    s.assert_no_errors();
    Ok(())
}

/// The frames the newest `n` transcript entries sent, oldest first, without their ids.
async fn sent_frames(page: &Page, n: usize) -> testkit::Result<Vec<Value>> {
    let v = page
        .eval(&format!(
            "[...document.querySelectorAll('[data-testid=response] .request pre')].slice(0, {n}).reverse().map(p => p.textContent)"
        ))
        .await?;
    let mut frames = Vec::new();
    for text in v.as_array().cloned().unwrap_or_default() {
        let mut frame: Value = serde_json::from_str(text.as_str().unwrap_or_default())?;
        frame.as_object_mut().map(|o| o.remove("id"));
        frames.push(frame);
    }
    Ok(frames)
}

/// Waits for `n` answered transcript entries, all ok.
async fn all_ok(s: &Session, n: usize) -> testkit::Result<()> {
    let expr =
        format!("document.querySelectorAll('[data-testid=response][data-ok]').length === {n}");
    s.page.wait_for(&expr, WAIT).await?;
    let failed = s
        .page
        .eval("[...document.querySelectorAll('[data-testid=response][data-ok=false]')].map(e => e.textContent)")
        .await?;
    assert_eq!(failed, serde_json::json!([]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_qmp_shell_line_sends_what_the_json_form_sends() -> testkit::Result<()> {
    let s = open_console().await?;
    let page = &s.page;
    // the JSON form
    page.fill("command-name", "blockdev-add").await?;
    page.fill(
        "command-args",
        r#"{"driver": "raw", "node-name": "r0", "file": {"driver": "null-co", "size": 1048576}}"#,
    )
    .await?;
    page.key("Enter", true).await?;
    all_ok(&s, 1).await?;
    // the same in qmp-shell's syntax, dotted keys for the nested file (after deleting it)
    page.click("mode-shell").await?;
    page.fill("shell-line", "blockdev-del node-name=r0").await?;
    page.key("Enter", false).await?;
    all_ok(&s, 2).await?;
    page.fill(
        "shell-line",
        "blockdev-add driver=raw node-name=r0 file.driver=null-co file.size=1048576",
    )
    .await?;
    page.key("Enter", false).await?;
    all_ok(&s, 3).await?;
    let frames = sent_frames(page, 3).await?;
    assert_eq!(frames[0], frames[2], "the same command");
    assert_eq!(
        frames[2],
        serde_json::json!({"execute": "blockdev-add", "arguments":
            {"driver": "raw", "node-name": "r0", "file": {"driver": "null-co", "size": 1048576}}})
    );
    assert_eq!(
        frames[1],
        serde_json::json!({"execute": "blockdev-del", "arguments": {"node-name": "r0"}})
    );

    // completion: the key, then Enter stops at its empty value with the caret there
    page.fill("shell-line", "device_del ").await?;
    page.wait_for(
        "[...document.querySelectorAll('.completion')].map(b => b.textContent).join() === 'id='",
        WAIT,
    )
    .await?;
    page.key("Tab", false).await?;
    page.wait_for(
        "document.querySelector('[data-testid=shell-line]').value === 'device_del id='",
        WAIT,
    )
    .await?;
    page.key("Enter", false).await?;
    assert_eq!(
        page.testid_text("refused").await?,
        Value::from("not sent: placeholder $.id is empty (fill in, or Send anyway)")
    );
    assert_eq!(focus(page).await?, ("shell-line".to_owned(), Some(14)));

    // a NIC hot-plugged from a line (netdev and mac: the driver's own properties, from
    // the live QEMU)
    page.fill("shell-line", "netdev_add type=user id=n1")
        .await?;
    page.key("Enter", false).await?;
    all_ok(&s, 4).await?;
    page.fill(
        "shell-line",
        "device_add driver=virtio-net-pci netdev=n1 id=nic1 mac=52:54:00:12:34:56",
    )
    .await?;
    no_problems(page).await?;
    page.key("Enter", false).await?;
    all_ok(&s, 5).await?;
    s.screenshot("console-shell").await?;
    // the line, back in JSON
    page.click("mode-json").await?;
    let name = page
        .eval("document.querySelector('[data-testid=command-name]').value")
        .await?;
    assert_eq!(name, Value::from("device_add"));
    s.assert_no_errors();
    Ok(())
}

/// Waits until the form lists no problem (a driver's properties may be on their way).
async fn no_problems(page: &Page) -> testkit::Result<()> {
    page.wait_for("!document.querySelector('[data-testid=problems]')", WAIT)
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread")]
async fn device_add_knows_the_live_vm_s_drivers_and_their_properties() -> testkit::Result<()> {
    let s = open_console().await?;
    let page = &s.page;
    page.fill("command-name", "netdev_add").await?;
    page.fill("command-args", r#"{"type": "user", "id": "n1"}"#)
        .await?;
    page.key("Enter", true).await?;
    all_ok(&s, 1).await?;

    // a virtio-net NIC with its backend and MAC address: no schema problem, no Send anyway
    page.fill("command-name", "device_add").await?;
    page.fill(
        "command-args",
        r#"{"driver": "virtio-net-pci", "netdev": "n1", "mac": "52:54:00:12:34:56", "id": "nic1"}"#,
    )
    .await?;
    no_problems(page).await?;
    // the driver's properties are listed with what QEMU says of them
    page.eval("[...document.querySelectorAll('[data-testid=args-view] .variant .toggle')].find(b => b.textContent.includes('driver = virtio-net-pci')).click()").await?;
    let mac = page
        .wait_for(
            "document.querySelector('[data-testid=args-view] .variant [data-name=mac]')?.textContent",
            WAIT,
        )
        .await?;
    assert_eq!(
        mac,
        Value::from("macstroptionalstr: Ethernet 6-byte MAC Address, example: 52:54:00:12:34:56")
    );
    s.screenshot("console-device-add").await?;
    page.click("send").await?;
    all_ok(&s, 2).await?;
    testkit::wait_until(WAIT, "device_add in the bridge's log", || {
        (s.relayed("device_add") == 1).then_some(())
    })?;
    // QEMU has it, with that address
    page.fill("command-name", "qom-get").await?;
    page.fill(
        "command-args",
        r#"{"path": "/machine/peripheral/nic1", "property": "mac"}"#,
    )
    .await?;
    page.key("Enter", true).await?;
    all_ok(&s, 3).await?;
    let text = page
        .eval("document.querySelector('[data-testid=response]').textContent")
        .await?;
    assert!(
        text.as_str()
            .unwrap_or_default()
            .contains("52:54:00:12:34:56"),
        "{text}"
    );

    // what the driver does not have, or of the wrong type, is caught before sending
    page.fill("command-name", "device_add").await?;
    page.fill(
        "command-args",
        r#"{"driver": "virtio-net-pci", "netdevv": "n1", "mq": "on"}"#,
    )
    .await?;
    let problems = page.testid_text("problems").await?;
    assert_eq!(
        problems,
        Value::from("$.mq: expected bool, found str$.netdevv: unknown member")
    );
    page.fill("command-args", r#"{"driver": "virtio-net-pcx"}"#)
        .await?;
    let problems = page.testid_text("problems").await?;
    assert!(
        problems
            .as_str()
            .unwrap_or_default()
            .starts_with("$.driver: \"virtio-net-pcx\" is not one of"),
        "{problems}"
    );

    // in a line, drivers and their properties complete
    page.click("mode-shell").await?;
    page.fill("shell-line", "device_add driver=virtio-net-p")
        .await?;
    page.wait_for(
        "[...document.querySelectorAll('.completion')].some(b => b.textContent === 'driver=virtio-net-pci')",
        WAIT,
    )
    .await?;
    page.fill("shell-line", "device_add driver=e1000 net")
        .await?;
    page.wait_for(
        "[...document.querySelectorAll('.completion')].some(b => b.textContent === 'netdev=')",
        WAIT,
    )
    .await?;
    s.assert_no_errors();
    Ok(())
}

/// The contrast ratio (WCAG) of the text of `[data-testid=ID]` on its background.
const CONTRAST: &str = r#"(id => {
  const el = document.querySelector(`[data-testid="${id}"]`);
  const s = getComputedStyle(el);
  const rgb = c => c.match(/[\d.]+/g).slice(0, 3).map(Number);
  const lum = c => {
    const [r, g, b] = rgb(c).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const [a, b] = [lum(s.color), lum(s.backgroundColor)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
})"#;

#[tokio::test(flavor = "multi_thread")]
async fn hovered_send_and_active_tab_stay_readable() -> testkit::Result<()> {
    let s = open_console().await?;
    let page = &s.page;
    page.fill("command-name", "query-status").await?;
    for scheme in ["light", "dark"] {
        let features = serde_json::json!([{"name": "prefers-color-scheme", "value": scheme}]);
        page.call(
            "Emulation.setEmulatedMedia",
            serde_json::json!({ "features": features }),
        )
        .await?;
        for id in ["send", "mode-json"] {
            let centre = page
                .eval(&format!(
                    "(() => {{ const r = document.querySelector('[data-testid={id}]').getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
                ))
                .await?;
            page.call(
                "Input.dispatchMouseEvent",
                serde_json::json!({"type": "mouseMoved", "x": centre[0], "y": centre[1]}),
            )
            .await?;
            page.wait_for(
                &format!("document.querySelector('[data-testid={id}]').matches(':hover')"),
                WAIT,
            )
            .await?;
            let ratio = page.eval(&format!("({CONTRAST})('{id}')")).await?;
            let ratio = ratio.as_f64().unwrap_or(0.0);
            assert!(ratio >= 4.5, "{id} hovered, {scheme}: contrast {ratio:.2}");
        }
    }
    s.assert_no_errors();
    Ok(())
}

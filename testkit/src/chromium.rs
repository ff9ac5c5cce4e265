//! Headless Chromium driven over the Chrome DevTools Protocol (CDP).
//!
//! [`Browser::launch`] starts `chromium` with a fresh profile and connects to its DevTools
//! websocket; [`Browser::new_page`] opens a tab whose console errors, uncaught exceptions
//! and failed loads are all recorded, so a test can assert there were none.
//!
//! A small CDP client of its own (tokio-tungstenite and serde_json, already in the
//! workspace) rather than `chromiumoxide` or `fantoccini`: the tests and the bench send
//! raw CDP calls (`Browser.grantPermissions`, `Emulation.setEmulatedMedia`, download and
//! cache settings) and read every event as JSON (console errors, exceptions, `Network.*`).
//! `chromiumoxide` types each call and event against one pinned protocol revision and
//! takes 47 more crates and about two and a half minutes to build on two cores;
//! WebDriver (`fantoccini` over chromedriver, 42 more crates) cannot deliver console
//! events and exceptions as they happen, nor Network events.

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use crate::{wait_for_child, Result, TempDir};

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

#[derive(Debug)]
struct Cdp {
    out: mpsc::UnboundedSender<String>,
    pending: Pending,
    next_id: AtomicU64,
    events: Arc<Mutex<Vec<Value>>>,
}

impl Cdp {
    async fn call(&self, method: &str, params: Value, session: Option<&str>) -> Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let (tx, rx) = oneshot::channel();
        self.pending.lock().map_err(|_| "poisoned")?.insert(id, tx);
        self.out
            .send(msg.to_string())
            .map_err(|_| "DevTools connection gone")?;
        let reply = tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .map_err(|_| format!("{method}: no answer from Chromium"))?
            .map_err(|_| "DevTools connection gone")?;
        if let Some(err) = reply.get("error") {
            return Err(format!("{method}: {err}").into());
        }
        Ok(reply.get("result").cloned().unwrap_or(Value::Null))
    }
}

/// A running headless Chromium.
#[derive(Debug)]
pub struct Browser {
    child: Child,
    cdp: Arc<Cdp>,
    _profile: TempDir,
}

/// One tab.
#[derive(Debug)]
pub struct Page {
    cdp: Arc<Cdp>,
    session: String,
}

impl Browser {
    /// Starts Chromium (`$CHROMIUM` or `chromium`) headless with a fresh profile.
    pub async fn launch() -> Result<Browser> {
        let profile = TempDir::new("chromium")?;
        let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
        let mut child = Command::new(&binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--no-first-run",
                "--no-default-browser-check",
                "--window-size=1280,800",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {binary} (run ./scripts/setup): {e}"))?;
        let port_file = profile.path().join("DevToolsActivePort");
        let url = wait_for_child(
            &mut child,
            Duration::from_secs(30),
            "Chromium's DevTools port",
            || {
                let text = std::fs::read_to_string(&port_file).ok()?;
                let mut lines = text.lines();
                let port = lines.next()?.trim().to_owned();
                let path = lines.next()?.trim().to_owned();
                Some(format!("ws://127.0.0.1:{port}{path}"))
            },
        )?;
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(text) = out_rx.recv().await {
                if sink.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
        });
        let pending: Pending = Arc::default();
        let events: Arc<Mutex<Vec<Value>>> = Arc::default();
        let (p, e) = (pending.clone(), events.clone());
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                if let Some(id) = v.get("id").and_then(Value::as_u64) {
                    if let Some(tx) = p.lock().ok().and_then(|mut m| m.remove(&id)) {
                        let _ = tx.send(v);
                    }
                } else if let Ok(mut ev) = e.lock() {
                    ev.push(v);
                }
            }
        });
        Ok(Browser {
            child,
            cdp: Arc::new(Cdp {
                out,
                pending,
                next_id: AtomicU64::new(1),
                events,
            }),
            _profile: profile,
        })
    }

    /// A raw browser-level CDP call (e.g. `Browser.grantPermissions`).
    pub async fn call(&self, method: &str, params: Value) -> Result<Value> {
        self.cdp.call(method, params, None).await
    }

    /// Opens a new tab at `url` with console and log capture on.
    pub async fn new_page(&self, url: &str) -> Result<Page> {
        let target = self
            .cdp
            .call("Target.createTarget", json!({ "url": "about:blank" }), None)
            .await?;
        let target_id = target["targetId"].as_str().ok_or("no targetId")?.to_owned();
        let attached = self
            .cdp
            .call(
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
                None,
            )
            .await?;
        let session = attached["sessionId"]
            .as_str()
            .ok_or("no sessionId")?
            .to_owned();
        let page = Page {
            cdp: self.cdp.clone(),
            session,
        };
        for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
            page.call(domain, json!({})).await?;
        }
        page.goto(url).await?;
        Ok(page)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole process group: renderers and helpers too.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Page {
    /// A raw CDP call on this tab's session.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value> {
        self.cdp.call(method, params, Some(&self.session)).await
    }

    pub async fn goto(&self, url: &str) -> Result<()> {
        let r = self.call("Page.navigate", json!({ "url": url })).await?;
        if let Some(err) = r.get("errorText") {
            return Err(format!("navigating to {url}: {err}").into());
        }
        Ok(())
    }

    /// Evaluates a JavaScript expression (promises awaited) and returns its value.
    pub async fn eval(&self, expression: &str) -> Result<Value> {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await?;
        if let Some(ex) = r.get("exceptionDetails") {
            return Err(format!("{expression}: {ex}").into());
        }
        Ok(r["result"].get("value").cloned().unwrap_or(Value::Null))
    }

    /// Evaluates `expression` every 50 ms until it is truthy; returns that value.
    pub async fn wait_for(&self, expression: &str, timeout: Duration) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let v = self.eval(expression).await?;
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v != json!("") && v != json!(0);
            if truthy {
                return Ok(v);
            }
            if tokio::time::Instant::now() > deadline {
                let errors = self.errors().join("\n");
                return Err(format!(
                    "timed out after {timeout:?} waiting for `{expression}` (last value {v}); page errors:\n{errors}"
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Text of `[data-testid=ID]`, or null when absent.
    pub async fn testid_text(&self, id: &str) -> Result<Value> {
        self.eval(&format!(
            "document.querySelector('[data-testid=\"{id}\"]')?.textContent ?? null"
        ))
        .await
    }

    /// Sets an input's or text area's value as typing would (an `input` event follows),
    /// for `[data-testid=ID]`.
    pub async fn fill(&self, id: &str, text: &str) -> Result<()> {
        let text = serde_json::to_string(text)?;
        let found = self
            .eval(&format!(
                "(() => {{ const el = document.querySelector('[data-testid=\"{id}\"]'); if (!el) return false; \
                 el.focus(); el.value = {text}; el.dispatchEvent(new InputEvent('input', {{bubbles: true}})); return true; }})()"
            ))
            .await?;
        if found != json!(true) {
            return Err(format!("no [data-testid={id}] to fill").into());
        }
        Ok(())
    }

    /// Clicks `[data-testid=ID]` (the first one).
    pub async fn click(&self, id: &str) -> Result<()> {
        let found = self
            .eval(&format!(
                "(() => {{ const el = document.querySelector('[data-testid=\"{id}\"]'); if (!el) return false; el.click(); return true; }})()"
            ))
            .await?;
        if found != json!(true) {
            return Err(format!("no [data-testid={id}] to click").into());
        }
        Ok(())
    }

    /// Presses a key (e.g. `Enter` with `ctrl`) on the focused element, as a keydown event.
    pub async fn key(&self, key: &str, ctrl: bool) -> Result<()> {
        self.eval(&format!(
            "document.activeElement?.dispatchEvent(new KeyboardEvent('keydown', {{key: {key:?}, ctrlKey: {ctrl}, bubbles: true, cancelable: true}}))"
        ))
        .await?;
        Ok(())
    }

    /// A PNG screenshot of the viewport, written to `path`.
    pub async fn screenshot(&self, path: &std::path::Path) -> Result<()> {
        let r = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await?;
        let data = r["data"].as_str().ok_or("no screenshot data")?;
        std::fs::write(path, base64_decode(data)?)?;
        Ok(())
    }

    /// Every CDP event this tab has received so far (`method` and `params`), in order;
    /// domains such as `Network` report only after their `*.enable` call.
    pub fn events(&self) -> Vec<Value> {
        let events = match self.cdp.events.lock() {
            Ok(events) => events,
            Err(poisoned) => poisoned.into_inner(),
        };
        events
            .iter()
            .filter(|e| e["sessionId"] == self.session.as_str())
            .cloned()
            .collect()
    }

    /// Panics with the list when the tab logged any console error, uncaught exception or
    /// error log entry.
    #[track_caller]
    pub fn assert_no_errors(&self) {
        let errors = self.errors();
        assert!(errors.is_empty(), "browser console errors: {errors:#?}");
    }

    /// Every console error, uncaught exception and error log entry of this tab so far.
    pub fn errors(&self) -> Vec<String> {
        self.events()
            .iter()
            .filter_map(|e| {
                let p = &e["params"];
                match e["method"].as_str()? {
                    "Runtime.exceptionThrown" => Some(format!(
                        "exception: {}",
                        p["exceptionDetails"]["exception"]["description"]
                            .as_str()
                            .or(p["exceptionDetails"]["text"].as_str())
                            .unwrap_or("?")
                    )),
                    "Runtime.consoleAPICalled"
                        if matches!(p["type"].as_str(), Some("error" | "assert")) =>
                    {
                        Some(format!(
                            "console.{}: {}",
                            p["type"].as_str().unwrap_or(""),
                            p["args"]
                        ))
                    }
                    "Log.entryAdded" if p["entry"]["level"] == "error" => Some(format!(
                        "log: {} {}",
                        p["entry"]["text"].as_str().unwrap_or(""),
                        p["entry"]["url"].as_str().unwrap_or("")
                    )),
                    _ => None,
                }
            })
            .collect()
    }
}

/// Standard base64, as CDP sends binary data.
fn base64_decode(text: &str) -> Result<Vec<u8>> {
    Ok(base64::engine::general_purpose::STANDARD.decode(text)?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_decodes() {
        assert_eq!(
            super::base64_decode("aGVsbG8gd29ybGQ=").unwrap(),
            b"hello world"
        );
        assert_eq!(super::base64_decode("AAEC/w==").unwrap(), [0, 1, 2, 255]);
        assert!(super::base64_decode("a*b").is_err());
    }
}

//! The page in headless Chromium, served by a release qmp-bridge.
//!
//! - Download: CDP `Network` events of one uncached load: decoded bytes
//!   (`dataReceived.dataLength`) and bytes on the wire (`loadingFinished.encodedDataLength`,
//!   gzip as the bridge serves it, headers included).
//! - Navigation to greeting: a script injected before the page's own records
//!   `performance.now()` (0 = navigation start) at the first animation frame after
//!   `connection-state` reads `ready` and `greeting` exists.
//! - Schema render and frame times need the full console's hooks ([`hooks`]); until the
//!   page has them those rows are `None`.

use std::time::Duration;

use serde_json::{json, Value};
use testkit::{Browser, Page, Result};

use crate::stats::{median, percentile_sorted};

/// The console's `data-testid`s (README, "Page automation hooks") the browser rows use. The
/// schema row switches to raw mode ([`hooks::MODE_RAW`]), types the command into
/// [`hooks::RAW_TEXT`], clicks [`hooks::SEND`] and waits for one more answered
/// [`hooks::RESPONSE`] (one carrying `data-ok`); the frame-time row needs the event panel
/// ([`hooks::EVENT_PANEL`]).
pub mod hooks {
    pub const MODE_RAW: &str = "mode-raw";
    pub const RAW_TEXT: &str = "raw-text";
    pub const SEND: &str = "send";
    pub const RESPONSE: &str = "response";
    pub const EVENT_PANEL: &str = "event-filter";
}

const OBSERVER: &str = r#"(() => {
  const b = window.__bench = { greetingShown: null };
  const check = () => {
    if (b.greetingShown !== null || b.pending) return;
    const s = document.querySelector('[data-testid="connection-state"]');
    if (s && s.textContent === 'ready' && document.querySelector('[data-testid="greeting"]')) {
      b.pending = true;
      requestAnimationFrame(() => { b.greetingShown = performance.now(); });
    }
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
})();"#;

const SCHEMA: &str = r#"(async () => {
  const q = id => document.querySelector(`[data-testid="${id}"]`);
  const entries = () => document.querySelectorAll('[data-testid="response"][data-ok]');
  q('mode-raw').click();
  await new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
  const input = q('raw-text');
  const before = entries().length;
  const setter = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(input), 'value').set;
  setter.call(input, '{"execute": "query-qmp-schema", "id": "bench-schema"}');
  input.dispatchEvent(new Event('input', { bubbles: true }));
  await new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
  const t0 = performance.now();
  q('send').click();
  return await new Promise((resolve, reject) => {
    const give_up = setTimeout(() => reject(new Error('no answered response within 20 s')), 20000);
    const check = () => {
      if (entries().length > before) {
        observer.disconnect();
        requestAnimationFrame(() => { clearTimeout(give_up); resolve(performance.now() - t0); });
      }
    };
    const observer = new MutationObserver(check);
    observer.observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
    check();
  });
})()"#;

const FRAMES: &str = r#"new Promise(resolve => {
  const deltas = [];
  let last = performance.now();
  const end = last + 3000;
  const frame = t => {
    deltas.push(t - last);
    last = t;
    if (t < end) requestAnimationFrame(frame); else resolve(deltas);
  };
  requestAnimationFrame(frame);
})"#;

/// What one uncached page load downloads.
#[derive(Debug, Clone, Copy)]
pub struct Download {
    pub requests: usize,
    pub decoded_bytes: f64,
    pub wire_bytes: f64,
}

/// Frame intervals while events flood in.
#[derive(Debug, Clone, Copy)]
pub struct Frames {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub frames: usize,
}

fn testid_present(id: &str) -> String {
    format!("!!document.querySelector('[data-testid=\"{id}\"]')")
}

/// A tab with the greeting observer installed, navigated nowhere yet.
pub async fn bench_tab(browser: &Browser) -> Result<Page> {
    let page = browser.new_page("about:blank").await?;
    page.call(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({ "source": OBSERVER }),
    )
    .await?;
    Ok(page)
}

/// Loads `url` and returns milliseconds from navigation start to the greeting shown.
pub async fn load_until_greeting(page: &Page, url: &str) -> Result<f64> {
    page.goto(url).await?;
    greeting_shown(page, url).await
}

/// Reloads the page (uncached) and returns milliseconds to the greeting shown. A reload,
/// unlike navigating away, never keeps the old page (and its QMP session) in the
/// back/forward cache, so the one-client monitor is free for the new page.
pub async fn reload_until_greeting(page: &Page, url: &str) -> Result<f64> {
    page.eval("window.__bench.greetingShown = null; 0").await?;
    page.call("Page.reload", json!({ "ignoreCache": true }))
        .await?;
    greeting_shown(page, url).await
}

async fn greeting_shown(page: &Page, url: &str) -> Result<f64> {
    let shown = page
        .wait_for(
            "window.__bench && window.__bench.greetingShown",
            Duration::from_secs(30),
        )
        .await;
    let shown = match shown {
        Ok(v) => v,
        Err(e) => {
            let state = page
                .testid_text("connection-state")
                .await
                .unwrap_or_default();
            let reason = page.testid_text("close-reason").await.unwrap_or_default();
            return Err(format!(
                "{url}: no greeting shown (connection-state {state}, close-reason {reason}): {e}"
            )
            .into());
        }
    };
    shown
        .as_f64()
        .ok_or_else(|| format!("greetingShown is {shown}").into())
}

/// One uncached load's download, then `loads` more for the median time to greeting.
pub async fn page_load(page: &Page, url: &str, loads: usize) -> Result<(Download, f64)> {
    page.call("Network.enable", json!({})).await?;
    page.call("Network.setCacheDisabled", json!({ "cacheDisabled": true }))
        .await?;
    let mark = page.events().len();
    let mut times = vec![load_until_greeting(page, url).await?];
    let download = download_since(&page.events()[mark..]);
    page.call("Network.disable", json!({})).await?;
    for _ in 1..loads.max(1) {
        times.push(reload_until_greeting(page, url).await?);
    }
    Ok((download, median(&times).unwrap_or(f64::NAN)))
}

fn download_since(events: &[Value]) -> Download {
    let mut requests = 0;
    let (mut decoded, mut wire) = (0.0, 0.0);
    for e in events {
        let p = &e["params"];
        match e["method"].as_str() {
            Some("Network.dataReceived") => decoded += p["dataLength"].as_f64().unwrap_or(0.0),
            Some("Network.loadingFinished") => {
                requests += 1;
                wire += p["encodedDataLength"].as_f64().unwrap_or(0.0);
            }
            _ => {}
        }
    }
    Download {
        requests,
        decoded_bytes: decoded,
        wire_bytes: wire,
    }
}

/// Milliseconds from clicking Send on `query-qmp-schema` to its reply rendered; `None`
/// while the page lacks the hooks.
pub async fn schema_render(page: &Page) -> Result<Option<f64>> {
    for id in [hooks::MODE_RAW, hooks::SEND] {
        if page.eval(&testid_present(id)).await? != json!(true) {
            return Ok(None);
        }
    }
    let ms = page.eval(SCHEMA).await?;
    Ok(Some(
        ms.as_f64()
            .ok_or_else(|| format!("schema render returned {ms}"))?,
    ))
}

/// Frame intervals over 3 s of the page as it is (the caller floods it); `None` while
/// the page has no event log.
pub async fn frames(page: &Page) -> Result<Option<Frames>> {
    if page.eval(&testid_present(hooks::EVENT_PANEL)).await? != json!(true) {
        return Ok(None);
    }
    let deltas = page.eval(FRAMES).await?;
    let mut ms: Vec<f64> = deltas
        .as_array()
        .ok_or("frame deltas are not an array")?
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    ms.sort_by(f64::total_cmp);
    Ok(Some(Frames {
        p50_ms: percentile_sorted(&ms, 50.0).unwrap_or(f64::NAN),
        p99_ms: percentile_sorted(&ms, 99.0).unwrap_or(f64::NAN),
        max_ms: ms.last().copied().unwrap_or(f64::NAN),
        frames: ms.len(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_adds_up_network_events() {
        let events = vec![
            json!({ "method": "Network.dataReceived", "params": { "dataLength": 1000 } }),
            json!({ "method": "Network.dataReceived", "params": { "dataLength": 500 } }),
            json!({ "method": "Network.loadingFinished", "params": { "encodedDataLength": 700 } }),
            json!({ "method": "Network.loadingFinished", "params": { "encodedDataLength": 100 } }),
            json!({ "method": "Runtime.consoleAPICalled", "params": {} }),
        ];
        let d = download_since(&events);
        assert_eq!(d.requests, 2);
        assert_eq!(d.decoded_bytes, 1500.0);
        assert_eq!(d.wire_bytes, 800.0);
    }
}

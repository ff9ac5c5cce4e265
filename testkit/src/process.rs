//! A `qmp-bridge` process: started with flags, its URL read from what it prints, its
//! stderr kept for assertions on the log.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{wait_until, Result};

#[derive(Debug)]
pub struct BridgeProcess {
    child: Child,
    /// `http://127.0.0.1:PORT/` as the bridge printed it.
    pub url: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The token from the printed URL's `?token=`, if it has one.
    pub token: Option<String>,
    log: Arc<Mutex<String>>,
}

impl BridgeProcess {
    /// Starts `binary` with `args` and waits for its "open http://..." line.
    pub fn start(binary: &Path, args: &[&str]) -> Result<BridgeProcess> {
        let mut child = Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if let Ok(mut l) = sink.lock() {
                    l.push_str(&line);
                }
                line.clear();
            }
        });
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if let Some(rest) = line.trim().strip_prefix("open ") {
                    let url = rest.split_whitespace().next().unwrap_or("").to_owned();
                    let _ = tx.send(url);
                }
                line.clear();
            }
            // keep draining so the bridge never blocks on a full pipe
            let _ = reader.read_to_end(&mut Vec::new());
        });
        let mut bridge = BridgeProcess {
            child,
            url: String::new(),
            addr: String::new(),
            token: None,
            log,
        };
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(url) => {
                bridge.addr = url
                    .trim_start_matches("http://")
                    .trim_start_matches("https://")
                    .split('/')
                    .next()
                    .unwrap_or("")
                    .to_owned();
                bridge.token = url
                    .split_once("token=")
                    .map(|(_, t)| t.split('&').next().unwrap_or("").to_owned());
                bridge.url = url;
                Ok(bridge)
            }
            Err(_) => {
                let status = bridge.wait_exit(Duration::from_secs(2)).ok();
                Err(format!(
                    "qmp-bridge printed no URL (exit: {status:?}); log:\n{}",
                    bridge.log()
                )
                .into())
            }
        }
    }

    /// Fails unless the bridge serves the built web UI (it is embedded at build time, so
    /// `./scripts/build web` must run before `cargo test`).
    pub fn require_ui(&self) -> Result<()> {
        let index = crate::http::get(&self.addr, "/", &[])?;
        if !index.text().contains("qmp_web.js") {
            return Err(
                "the UI is not built into qmp-bridge: run ./scripts/build web before cargo test"
                    .into(),
            );
        }
        Ok(())
    }

    /// Everything the bridge has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The websocket URL a client of this bridge uses: `ws(s)://ADDR/ws?token=...`.
    pub fn ws_url(&self) -> String {
        let scheme = if self.url.starts_with("https:") {
            "wss"
        } else {
            "ws"
        };
        match &self.token {
            Some(t) => format!("{scheme}://{}/ws?token={t}", self.addr),
            None => format!("{scheme}://{}/ws", self.addr),
        }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) -> Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            return Err("kill -TERM failed".into());
        }
        Ok(())
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let child = &mut self.child;
        wait_until(timeout, "qmp-bridge to exit", || {
            child.try_wait().ok().flatten()
        })
    }

    /// The process id (e.g. for `/proc/PID/status`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

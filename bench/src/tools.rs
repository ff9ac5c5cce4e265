//! The contenders: the direct socket (the floor) and three websocket relays started as
//! processes in front of the same upstream socket.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use testkit::{wait_for_child, BridgeProcess, Result};

use crate::client::{Endpoint, Framing};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tool {
    Direct,
    Bridge,
    Websocat,
    Websockify,
}

impl Tool {
    pub const ALL: [Tool; 4] = [Tool::Direct, Tool::Bridge, Tool::Websocat, Tool::Websockify];

    pub fn name(self) -> &'static str {
        match self {
            Tool::Direct => "direct socket",
            Tool::Bridge => "qmp-bridge",
            Tool::Websocat => "websocat",
            Tool::Websockify => "websockify",
        }
    }
}

/// Where each relay's program is; `None` for one that is not installed.
#[derive(Debug, Clone)]
pub struct Programs {
    pub bridge: PathBuf,
    pub websocat: Option<PathBuf>,
    pub websockify: Option<PathBuf>,
    /// What `qmp-bridge --help` prints: which flags this build has.
    bridge_help: String,
    /// Sessions the bridge must admit at once (`--max-clients`, where it has the flag).
    pub max_clients: usize,
}

/// How the bridge serves sessions, on builds that have `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeMode {
    /// Whatever the build does by default (what a user gets).
    Default,
    /// Each session its own upstream connection: like for like with websocat and websockify.
    Relay,
    /// One upstream connection shared by all sessions.
    Shared,
}

impl Programs {
    pub fn new(
        bridge: PathBuf,
        websocat: Option<PathBuf>,
        websockify: Option<PathBuf>,
    ) -> Programs {
        let bridge_help = Command::new(&bridge)
            .arg("--help")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        Programs {
            bridge,
            websocat,
            websockify,
            bridge_help,
            max_clients: 1024,
        }
    }

    pub fn has(&self, tool: Tool) -> bool {
        match tool {
            Tool::Direct | Tool::Bridge => true,
            Tool::Websocat => self.websocat.is_some(),
            Tool::Websockify => self.websockify.is_some(),
        }
    }

    /// Whether this bridge has a shared mode (`--mode shared`).
    pub fn bridge_has_shared_mode(&self) -> bool {
        self.bridge_help.contains("--mode")
    }

    /// The bridge's flags for `mode` (none on a build without modes, which relays).
    fn bridge_args(&self, mode: BridgeMode) -> Vec<String> {
        let mut args = Vec::new();
        if self.bridge_has_shared_mode() {
            match mode {
                BridgeMode::Default => {}
                BridgeMode::Relay => args.extend(["--mode".to_owned(), "relay".to_owned()]),
                BridgeMode::Shared => args.extend(["--mode".to_owned(), "shared".to_owned()]),
            }
        }
        if self.bridge_help.contains("--max-clients") {
            args.extend([
                "--max-clients".to_owned(),
                self.max_clients.max(1024).to_string(),
            ]);
        }
        args
    }
}

enum Process {
    None,
    Bridge(BridgeProcess),
    Child(Child),
}

/// A contender running in front of one upstream socket.
pub struct Relay {
    pub tool: Tool,
    pub endpoint: Endpoint,
    process: Process,
    /// For the bridge: the page URL it printed (token included, when it has one).
    pub page_url: Option<String>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("tool", &self.tool)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn spawn_listening(mut command: Command, port: u16, what: &str) -> Result<Child> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    wait_for_child(&mut child, Duration::from_secs(20), what, || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    })?;
    Ok(child)
}

impl Relay {
    /// Starts `tool` in front of the Unix socket `upstream` (nothing for `Direct`); `mode`
    /// only matters to the bridge.
    pub fn start(
        tool: Tool,
        programs: &Programs,
        upstream: &Path,
        mode: BridgeMode,
    ) -> Result<Relay> {
        let unix = upstream.display().to_string();
        let ws = |port: u16, framing| Endpoint::Ws {
            url: format!("ws://127.0.0.1:{port}/"),
            framing,
        };
        let (endpoint, process, page_url) = match tool {
            Tool::Direct => (Endpoint::Unix(upstream.to_owned()), Process::None, None),
            Tool::Bridge => {
                let target = format!("unix:{unix}");
                let mut args = vec![
                    "--qmp".to_owned(),
                    target,
                    "--listen".to_owned(),
                    "127.0.0.1:0".to_owned(),
                ];
                args.extend(programs.bridge_args(mode));
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let bridge = BridgeProcess::start(&programs.bridge, &args)?;
                // From the printed URL, so it works with and without token auth.
                let url = bridge.ws_url();
                let page = bridge.url.clone();
                (
                    Endpoint::Ws {
                        url,
                        framing: Framing::MessagePerFrame,
                    },
                    Process::Bridge(bridge),
                    Some(page),
                )
            }
            Tool::Websocat => {
                let program = programs
                    .websocat
                    .as_ref()
                    .ok_or("websocat is not installed")?;
                let port = free_port()?;
                let mut cmd = Command::new(program);
                // -E: close each session when either side ends (websocat warns without it
                // when serving many clients); line mode: one message per text frame.
                cmd.args(["-E", "-t", "--linemode-strip-newlines"])
                    .arg(format!("ws-l:127.0.0.1:{port}"))
                    .arg(format!("unix:{unix}"));
                let child = spawn_listening(cmd, port, "websocat")?;
                (
                    ws(port, Framing::MessagePerFrame),
                    Process::Child(child),
                    None,
                )
            }
            Tool::Websockify => {
                let program = programs
                    .websockify
                    .as_ref()
                    .ok_or("websockify is not installed")?;
                let port = free_port()?;
                let mut cmd = Command::new(program);
                cmd.arg(format!("--unix-target={unix}"))
                    .arg(format!("127.0.0.1:{port}"));
                let child = spawn_listening(cmd, port, "websockify")?;
                (ws(port, Framing::ByteStream), Process::Child(child), None)
            }
        };
        Ok(Relay {
            tool,
            endpoint,
            process,
            page_url,
        })
    }

    /// The relay's process id (`None` for the direct socket).
    pub fn pid(&self) -> Option<u32> {
        match &self.process {
            Process::None => None,
            Process::Bridge(b) => Some(b.pid()),
            Process::Child(c) => Some(c.id()),
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Process::Child(child) = &mut self.process {
            // websockify forks a process per session: stop the whole family politely first.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = std::time::Instant::now() + Duration::from_secs(3);
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Resident memory of process `pid` in bytes (`VmRSS` in `/proc/PID/status`).
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_vm_rss(&status).ok_or_else(|| format!("no VmRSS in /proc/{pid}/status").into())
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_in_bytes() {
        let status = "Name:\tqmp-bridge\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(5120 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }

    #[test]
    fn own_rss_is_readable() {
        let rss = rss_bytes(std::process::id()).expect("own /proc status");
        assert!(rss > 0);
    }
}

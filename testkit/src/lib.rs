//! Test harness shared by the workspace's integration tests and benchmarks.
//!
//! - [`tempdir`]: a private scratch folder removed on drop (over `tempfile`).
//! - [`qemu`]: a real `qemu-system-x86_64` with its QMP monitor on a Unix socket.
//! - [`process`]: a spawned `qmp-bridge`, its announced URL, and its log.
//! - [`chromium`]: headless Chromium driven over the DevTools protocol, recording every
//!   console error and uncaught exception of the page.
//! - [`libvirt`]: a real libvirtd (started when none runs) and domains of the tests' own.
//! - [`fake_peer`]: a scripted QMP server for fault injection (beside the real QEMU).
//! - [`http`]: a bare HTTP GET, to check what the bridge serves.
//! - [`png`]: decodes the PNGs of the screen tests (QEMU's screendumps, screenshots).
//! - [`qmp_client`]: the QMP conversation (handshake, execute, events) over any carrier.
//! - [`ws`]: a websocket client speaking one QMP message per frame.
//! - [`unix_qmp`]: a plain QMP client on a Unix socket (the bridge's `--share-socket`).

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod chromium;
pub mod fake_peer;
pub mod http;
pub mod libvirt;
pub mod png;
pub mod process;
pub mod qemu;
pub mod qmp_client;
pub mod tempdir;
pub mod unix_qmp;
pub mod ws;

pub use chromium::{Browser, Page};
pub use fake_peer::FakePeer;
pub use process::BridgeProcess;
pub use qemu::{Qemu, QemuBuilder};
pub use qmp_client::QmpClient;
pub use tempdir::TempDir;
pub use unix_qmp::UnixQmp;
pub use ws::QmpWs;

/// The error type of the harness: tests only need a readable message.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, Error>;

/// Polls `probe` every 20 ms until `child` is ready (the probe returns `Some`). Fails,
/// killing the child, when it exits first or `timeout` passes.
pub fn wait_for_child<T>(
    child: &mut std::process::Child,
    timeout: std::time::Duration,
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
) -> Result<T> {
    let ready = wait_until(timeout, what, || {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(Err(format!("{what}: the process exited early ({status})")));
        }
        probe().map(Ok)
    });
    match ready.and_then(|r| r.map_err(Into::into)) {
        Ok(v) => Ok(v),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

/// Polls `f` every 20 ms until it returns `Some`, or fails after `timeout`.
pub fn wait_until<T>(
    timeout: std::time::Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
) -> Result<T> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("timed out after {timeout:?} waiting for {what}").into());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

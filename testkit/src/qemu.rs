//! A real QEMU whose QMP monitor listens on a Unix socket in a scratch folder.
//!
//! No disk and no guest: `-S` keeps the CPU paused, which is all QMP needs to answer every
//! query, emit STOP/RESUME on `stop`/`cont`, and serve `query-qmp-schema`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{wait_for_child, wait_until, Result, TempDir};

/// The QEMU the harness runs: `$QEMU`, or `qemu-system-x86_64`.
pub fn binary() -> String {
    std::env::var("QEMU").unwrap_or_else(|_| "qemu-system-x86_64".into())
}

#[derive(Debug)]
pub struct Qemu {
    child: Child,
    socket: PathBuf,
    _dir: Option<TempDir>,
}

impl Qemu {
    /// Starts QEMU with its monitor at a fresh socket path.
    pub fn start() -> Result<Qemu> {
        let dir = TempDir::new("qemu")?;
        let socket = dir.path().join("qmp.sock");
        let mut q = Qemu::start_at(&socket, false)?;
        q._dir = Some(dir);
        Ok(q)
    }

    /// Starts QEMU with its monitor at `socket` (e.g. to restart on the same path);
    /// `pretty` makes it spread each message over many lines (`-mon ...,pretty=on`).
    pub fn start_at(socket: &Path, pretty: bool) -> Result<Qemu> {
        Qemu::start_named(socket, pretty, None)
    }

    /// As [`Qemu::start_at`], with `-name NAME` (what `query-name` answers).
    pub fn start_named(socket: &Path, pretty: bool, name: Option<&str>) -> Result<Qemu> {
        let _ = std::fs::remove_file(socket);
        let chardev = format!("socket,id=qmp,path={},server=on,wait=off", socket.display());
        let mon = format!(
            "chardev=qmp,mode=control,pretty={}",
            if pretty { "on" } else { "off" }
        );
        let binary = binary();
        let mut child = Command::new(&binary)
            .args([
                "-machine",
                "pc,accel=tcg",
                "-m",
                "64",
                "-nodefaults",
                "-display",
                "none",
                "-S",
            ])
            .args(["-chardev", &chardev, "-mon", &mon])
            .args(name.map(|n| vec!["-name", n]).unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {binary} (run ./scripts/setup): {e}"))?;
        // the file appears at bind(), before listen(): connect to be sure (QEMU greets
        // this probe, sees it leave, and serves the next client)
        wait_for_child(
            &mut child,
            Duration::from_secs(20),
            "QEMU's QMP socket",
            || std::os::unix::net::UnixStream::connect(socket).ok(),
        )?;
        Ok(Qemu {
            child,
            socket: socket.to_owned(),
            _dir: None,
        })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `unix:PATH`, as `--qmp` takes it.
    pub fn target(&self) -> String {
        format!("unix:{}", self.socket.display())
    }

    /// QEMU's process id (to stop and continue it with signals, say).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for QEMU to exit by itself (after `quit`), up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        let child = &mut self.child;
        wait_until(timeout, "QEMU to exit", || child.try_wait().ok().flatten())
    }

    /// Kills QEMU at once (as a crash would).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.socket);
    }
}

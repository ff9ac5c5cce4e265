//! A real QEMU whose QMP monitor listens on a Unix socket in a scratch folder.
//!
//! No disk and no guest: `-S` keeps the CPU paused, which is all QMP needs to answer every
//! query, emit STOP/RESUME on `stop`/`cont`, and serve `query-qmp-schema`.
//!
//! [`QemuBuilder`] starts other kinds: with a display (`-vga std`) and the CPU running, so
//! SeaBIOS draws its text screen, and with extra arguments (`-boot menu=on,...`).

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
        Qemu::builder().start()
    }

    /// Starts QEMU with its monitor at `socket` (e.g. to restart on the same path);
    /// `pretty` makes it spread each message over many lines (`-mon ...,pretty=on`).
    pub fn start_at(socket: &Path, pretty: bool) -> Result<Qemu> {
        Qemu::start_named(socket, pretty, None)
    }

    /// As [`Qemu::start_at`], with `-name NAME` (what `query-name` answers).
    pub fn start_named(socket: &Path, pretty: bool, name: Option<&str>) -> Result<Qemu> {
        let mut builder = Qemu::builder().socket(socket).pretty(pretty);
        if let Some(name) = name {
            builder = builder.name(name);
        }
        builder.start()
    }

    /// A QEMU started otherwise than [`Qemu::start`]'s: see [`QemuBuilder`].
    pub fn builder() -> QemuBuilder {
        QemuBuilder::default()
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

/// How to start a QEMU, from [`Qemu::builder`]: by default as [`Qemu::start`] does (no
/// display, CPU paused, its socket in a scratch folder).
///
/// ```no_run
/// // SeaBIOS on screen, waiting 30 s at "Press ESC for boot menu"
/// let qemu = testkit::Qemu::builder()
///     .vga("std")
///     .running()
///     .args(["-boot", "menu=on,splash-time=30000"])
///     .start()?;
/// # Ok::<(), testkit::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct QemuBuilder {
    socket: Option<PathBuf>,
    pretty: bool,
    name: Option<String>,
    vga: Option<String>,
    running: bool,
    args: Vec<String>,
}

impl QemuBuilder {
    /// The monitor's socket path (default: `qmp.sock` in a scratch folder).
    pub fn socket(mut self, path: &Path) -> Self {
        self.socket = Some(path.to_owned());
        self
    }

    /// Each message spread over many lines (`-mon ...,pretty=on`).
    pub fn pretty(mut self, on: bool) -> Self {
        self.pretty = on;
        self
    }

    /// `-name NAME`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// A display adapter: `-vga KIND` (`std`, `none`, ...); the default has none.
    pub fn vga(mut self, kind: &str) -> Self {
        self.vga = Some(kind.to_owned());
        self
    }

    /// The CPU runs from the start (no `-S`): the firmware draws its screen.
    pub fn running(mut self) -> Self {
        self.running = true;
        self
    }

    /// A USB tablet: an absolute pointer (`-usb -device usb-tablet`).
    pub fn usb_tablet(self) -> Self {
        self.args(["-usb", "-device", "usb-tablet"])
    }

    /// QEMU writes every input event it is given (keys, pointer moves, buttons) to `path`
    /// (its `input_event_*` trace points), e.g. `input_event_btn con -1, button left,
    /// down 1`.
    pub fn input_trace(self, path: &Path) -> Self {
        let path = path.to_string_lossy().into_owned();
        self.args(["-trace", "input_event_*", "-D"]).args([path])
    }

    /// More arguments for QEMU's command line.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Starts QEMU and waits for its monitor.
    pub fn start(self) -> Result<Qemu> {
        let (dir, socket) = match self.socket {
            Some(path) => (None, path),
            None => {
                let dir = TempDir::new("qemu")?;
                let socket = dir.path().join("qmp.sock");
                (Some(dir), socket)
            }
        };
        let _ = std::fs::remove_file(&socket);
        let chardev = format!("socket,id=qmp,path={},server=on,wait=off", socket.display());
        let mon = format!(
            "chardev=qmp,mode=control,pretty={}",
            if self.pretty { "on" } else { "off" }
        );
        let binary = binary();
        let mut command = Command::new(&binary);
        command.args([
            "-machine",
            "pc,accel=tcg",
            "-m",
            "64",
            "-nodefaults",
            "-display",
            "none",
        ]);
        if let Some(vga) = &self.vga {
            command.args(["-vga", vga]);
        }
        if !self.running {
            command.arg("-S");
        }
        let mut child = command
            .args(["-chardev", &chardev, "-mon", &mon])
            .args(self.name.iter().flat_map(|n| ["-name", n.as_str()]))
            .args(&self.args)
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
            || std::os::unix::net::UnixStream::connect(&socket).ok(),
        )?;
        Ok(Qemu {
            child,
            socket,
            _dir: dir,
        })
    }
}
